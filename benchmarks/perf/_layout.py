"""Parameter names of a mixture-of-experts transformer of any size (no torch, no scheduler: both sides import it).

A model with 100k parameter tensors is a mixture-of-experts transformer (DeepSeek-V3 has about 90k): the names
follow the Hugging Face Mixtral/Qwen-MoE layout, so the regexes of :func:`regex_phases` are the ones such users write.
"""

from __future__ import annotations

LAYERS = 64
_ATTENTION = (
    "self_attn.q_proj.weight",
    "self_attn.k_proj.weight",
    "self_attn.v_proj.weight",
    "self_attn.o_proj.weight",
)
_NORMS = ("input_layernorm.weight", "post_attention_layernorm.weight")
_EXPERT = ("gate_proj.weight", "up_proj.weight", "down_proj.weight")
_PER_LAYER_FIXED = len(_ATTENTION) + len(_NORMS) + 1  # + the router, mlp.gate.weight


def moe_names(target: int, layers: int = LAYERS) -> tuple[str, ...]:
    """Names of a MoE transformer with about ``target`` parameter tensors, in registration order.

    >>> names = moe_names(10_000)
    >>> len(names), names[1], names[-1]
    (10051, 'model.layers.0.self_attn.q_proj.weight', 'lm_head.weight')
    """
    experts = max(1, round(((target - 3) / layers - _PER_LAYER_FIXED) / len(_EXPERT)))
    names = ["model.embed_tokens.weight"]
    for i in range(layers):
        layer = f"model.layers.{i}"
        names += [f"{layer}.{part}" for part in _ATTENTION]
        names.append(f"{layer}.mlp.gate.weight")
        names += [f"{layer}.mlp.experts.{j}.{part}" for j in range(experts) for part in _EXPERT]
        names += [f"{layer}.{part}" for part in _NORMS]
    return (*names, "model.norm.weight", "lm_head.weight")


def regex_phases() -> list[list[str]]:
    """A 23-phase schedule of 50 regexes covering every :func:`moe_names` name: head first, then the top layers one
    by one, then ranges of layers, embeddings last; the kind of schedule people write for a 64-layer model.

    >>> phases = regex_phases()
    >>> sum(len(phase) for phase in phases), len(phases)
    (50, 23)
    """
    phases = [["lm_head.*", "model.norm.*"]]
    phases += [
        [
            f"model.layers.{i}.mlp.experts.*",
            f"model.layers.{i}.(self_attn|mlp.gate|input_layernorm|post_attention_layernorm).*",
        ]
        for i in range(LAYERS - 1, 47, -1)
    ]
    phases.append(
        ["model.layers.4[0-7].mlp.*", "model.layers.4[0-7].(self_attn|input_layernorm|post_attention_layernorm).*"]
    )
    phases += [[f"model.layers.{tens}[0-9].*"] for tens in (3, 2, 1)]
    phases.append([f"model.layers.{i}\\..*" for i in range(10)])
    phases.append(["model.embed_tokens.*"])
    return phases
