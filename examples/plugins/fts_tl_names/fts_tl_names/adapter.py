"""The ``transformerlens_gpt2`` strategy adapter: schedules in TransformerLens names for Hugging Face GPT-2."""

from __future__ import annotations

from returns.result import Failure, Result, Success
from torch import nn

from finetuning_scheduler.core import Diagnostics, FusedPolicy, NameMap, build_name_map, error, identity_map
from finetuning_scheduler.strategy_adapters import NameMapAdapterMixin, StrategyAdapter

from ._gpt2 import gpt2_tl_bindings


def _find_gpt2(module: nn.Module, path: str | None) -> tuple[str, nn.Module] | None:
    from transformers import GPT2LMHeadModel, GPT2Model  # the plugin's own dependency, imported when it is used

    if path is not None:
        return path, module.get_submodule(path)
    return next(
        ((name, sub) for name, sub in module.named_modules() if isinstance(sub, (GPT2LMHeadModel, GPT2Model))),
        None,
    )


class GPT2TransformerLensNamesAdapter(NameMapAdapterMixin, StrategyAdapter):
    """Lets a schedule name a Hugging Face GPT-2's parameters as TransformerLens does.

    ``blocks.9.attn.W_Q`` instead of ``model.transformer.h.9.attn.c_attn.weight``, ``embed.W_E``, ``pos_embed.W_pos``,
    ``blocks.{i}.ln1.w``, ``blocks.{i}.mlp.W_in``, ``ln_final.w``, ``unembed.W_U`` and so on. Parameters outside the
    GPT-2 (a classifier head, say) keep their own names. Logs show TransformerLens names; checkpoints keep the
    module's own keys.

    GPT-2 stores W_Q, W_K and W_V in one tensor (``c_attn``): a phase must thaw all three together (the default
    rejects a phase naming only some, and says why), or pass ``fused="widen"`` to thaw the whole tensor for any of
    them. ``unembed.W_U`` is tied to ``embed.W_E`` (both must be in one phase); ``unembed.b_U`` does not exist in
    GPT-2 and cannot be thawed.

    Args:
        use_tl_names: write schedules in TransformerLens names (``False``: the module's own names).
        fused: ``"error"`` or ``"widen"``: what a phase naming part of a fused tensor does.
        gpt2_module: the path of the GPT-2 inside the LightningModule (default: the first
            ``GPT2LMHeadModel``/``GPT2Model`` found).
        portable_checkpoints: save checkpoints with unwrapped keys (see ``UnwrappedNamesStrategyAdapter``).
    """

    def __init__(
        self,
        use_tl_names: bool = True,
        fused: str = "error",
        gpt2_module: str | None = None,
        portable_checkpoints: bool = False,
    ) -> None:
        super().__init__()
        choices = [policy.value for policy in FusedPolicy]
        if fused not in choices:
            raise ValueError(f"fused must be one of {choices}, got {fused!r}")
        self.use_tl_names = use_tl_names
        self.fused_policy = FusedPolicy(fused)
        self.gpt2_module = gpt2_module
        self.portable_checkpoints = portable_checkpoints

    def build_name_map(self, module: nn.Module, canonical: tuple[str, ...]) -> Result[NameMap, Diagnostics]:
        """Bind the TransformerLens names of the GPT-2 found in ``module``; other parameters keep their names."""
        if not self.use_tl_names:
            return Success(identity_map(canonical))
        found = _find_gpt2(module, self.gpt2_module)
        if found is None:
            message = "no Hugging Face GPT-2 (GPT2LMHeadModel or GPT2Model) found in the LightningModule"
            hint = "give the adapter gpt2_module='path.to.gpt2', or use_tl_names=False"
            return Failure((error("tl-no-gpt2", message, hint=hint),))
        path, gpt2 = found
        prefix = f"{path}." if path else ""
        transformer = getattr(gpt2, "transformer", gpt2)
        base = f"{prefix}transformer." if transformer is not gpt2 else prefix
        head = f"{prefix}lm_head." if transformer is not gpt2 else None
        tied = head is None or f"{head}weight" not in canonical
        bindings = gpt2_tl_bindings(len(transformer.h), base, head, tied)
        return build_name_map(canonical, bindings)
