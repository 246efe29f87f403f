"""Phi-3 (and Phi-4-mini): Llama's decoder with the query, key and value maps stored as one matrix
(``qkv_proj``) and the gate and up maps as another (``gate_up_proj``), which is the layout the forward pass
wants anyway; rotary positions on only the first ``partial_rotary_factor`` of each head's dims where the
config says so; and a sliding window on every layer where it gives one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .architecture import Architecture, Params
from .llama import llama_attend, llama_block, llama_config, llama_embed, llama_final
from .rope import rope_of, rope_settings
from .weights import Checkpoint

if TYPE_CHECKING:
    from .model import ModelConfig


def phi3_config(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Llama's reading of config.json; the rotation turns int(d_head · partial_rotary_factor) dims."""
    config = llama_config(raw)
    _, params = rope_settings(raw)  # transformers 5 keeps the factor among the RoPE parameters
    rotated = int(config["d_head"] * float(raw.get("partial_rotary_factor", params.get("partial_rotary_factor", 1.0))))
    ropes = [rope_of(raw, rotated) for _ in range(config["layers"])]
    return config | {"settings": {**config["settings"], "ropes": ropes}}


def phi3_params(ckpt: Checkpoint, config: ModelConfig) -> Params:
    """Hugging Face's names -> the parameters of Llama's blocks: the fused maps read as they are stored."""
    d, h, kv, d_k, eps = config.d_model, config.heads, config.kv_heads, config.d_head, config.eps
    s = config.settings

    def block(i: int) -> Params:
        p = f"layers.{i}."
        return {
            "attn_norm": ckpt.rms_norm(p + "input_layernorm", d, eps),
            "qkv": ckpt.linear(p + "self_attn.qkv_proj", d, (h + 2 * kv) * d_k, bias=False),
            "attn_out": ckpt.linear(p + "self_attn.o_proj", h * d_k, d, bias=False),
            "mlp_norm": ckpt.rms_norm(p + "post_attention_layernorm", d, eps),
            "gate_up": ckpt.linear(p + "mlp.gate_up_proj", d, 2 * s["ff"], bias=False),
            "down": ckpt.linear(p + "mlp.down_proj", s["ff"], d, bias=False),
            "rope": s["ropes"][i], "window": s["windows"][i], "n_kv_head": kv,
        }

    return {
        "wte": ckpt.table("embed_tokens.weight", "vocab", d),
        "blocks": ckpt.blocks(block, config.layers),
        "norm": ckpt.rms_norm("norm", d, eps),
    }


PHI3 = Architecture(
    model_types=("phi3",), config=phi3_config, prefix="model.", marker="embed_tokens.weight",
    params=phi3_params, embed=llama_embed, layer=llama_block, attend=llama_attend, final=llama_final, causal=True,
)
