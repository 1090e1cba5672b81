"""The static GPT-2 name table: TransformerLens names -> Hugging Face ``GPT2LMHeadModel`` parameters.

Pure data and one pure function over it (no torch, no transformers), so it can be unit-tested anywhere.
"""

from __future__ import annotations

from finetuning_scheduler.core import Binding, BindingKind

_ALIAS, _FUSED, _TIED, _SYNTHETIC = BindingKind.ALIAS, BindingKind.FUSED, BindingKind.TIED, BindingKind.SYNTHETIC

# Per block: TransformerLens suffix, Hugging Face suffix, how they relate. W_Q/W_K/W_V (and b_Q/b_K/b_V) are the
# three column (row) slices of GPT-2's fused c_attn weight (bias); W_O is c_proj.weight reshaped per head.
_BLOCK: tuple[tuple[str, str, BindingKind], ...] = (
    ("ln1.w", "ln_1.weight", _ALIAS),
    ("ln1.b", "ln_1.bias", _ALIAS),
    ("attn.W_Q", "attn.c_attn.weight", _FUSED),
    ("attn.W_K", "attn.c_attn.weight", _FUSED),
    ("attn.W_V", "attn.c_attn.weight", _FUSED),
    ("attn.W_O", "attn.c_proj.weight", _ALIAS),
    ("attn.b_Q", "attn.c_attn.bias", _FUSED),
    ("attn.b_K", "attn.c_attn.bias", _FUSED),
    ("attn.b_V", "attn.c_attn.bias", _FUSED),
    ("attn.b_O", "attn.c_proj.bias", _ALIAS),
    ("ln2.w", "ln_2.weight", _ALIAS),
    ("ln2.b", "ln_2.bias", _ALIAS),
    ("mlp.W_in", "mlp.c_fc.weight", _ALIAS),
    ("mlp.b_in", "mlp.c_fc.bias", _ALIAS),
    ("mlp.W_out", "mlp.c_proj.weight", _ALIAS),
    ("mlp.b_out", "mlp.c_proj.bias", _ALIAS),
)


def gpt2_tl_bindings(
    n_layer: int, base: str = "transformer.", head: str | None = "lm_head.", tied: bool = True
) -> tuple[Binding, ...]:
    """The TransformerLens names of a GPT-2 model, bound to its Hugging Face parameter names.

    Args:
        n_layer: the number of blocks.
        base: the path of the ``GPT2Model`` inside the module, with a trailing dot (``model.transformer.``).
        head: the path of the LM head with a trailing dot, or ``None`` for a bare ``GPT2Model`` (no ``unembed``).
        tied: whether the head's weight is the token embedding (GPT-2's default): ``unembed.W_U`` is then a tied
            name of ``wte.weight``, which ``named_parameters()`` lists once.

    >>> bindings = gpt2_tl_bindings(1)
    >>> [(b.view, b.canonical, b.kind.value) for b in bindings if "W_Q" in b.view or "unembed" in b.view]
    [('blocks.0.attn.W_Q', 'transformer.h.0.attn.c_attn.weight', 'fused'), \
('unembed.W_U', 'transformer.wte.weight', 'tied'), ('unembed.b_U', None, 'synthetic')]
    """
    bindings = [
        Binding.of("embed.W_E", f"{base}wte.weight", _ALIAS),
        Binding.of("pos_embed.W_pos", f"{base}wpe.weight", _ALIAS),
    ]
    for i in range(n_layer):
        bindings += [Binding.of(f"blocks.{i}.{tl}", f"{base}h.{i}.{hf}", kind) for tl, hf, kind in _BLOCK]
    bindings += [
        Binding.of("ln_final.w", f"{base}ln_f.weight", _ALIAS),
        Binding.of("ln_final.b", f"{base}ln_f.bias", _ALIAS),
    ]
    if head is not None:
        unembed = (
            Binding.of("unembed.W_U", f"{base}wte.weight", _TIED)
            if tied
            else Binding.of("unembed.W_U", f"{head}weight", _ALIAS)
        )
        # GPT-2's LM head has no bias; TransformerLens shows zeros. Nothing backs it, so it cannot be thawed.
        bindings += [unembed, Binding.of("unembed.b_U", None, _SYNTHETIC)]
    return tuple(bindings)
