"""Llama-architecture GGUF tensors and hyperparameters, mapped onto mlx-lm's ``llama`` model.

``mx.load`` reads GGUF natively: Q4_0/Q4_1/Q8_0 tensors arrive as MLX affine-quantized
triples (``.weight`` uint32, ``.scales``, ``.biases``; group size 32), everything else as
plain arrays. This module renames them, undoes llama.cpp's Q/K row permutation and
optionally dequantizes, and derives the ``config.json`` mlx-lm needs.
"""

from __future__ import annotations

import pathlib
import re
from collections import Counter
from typing import Any, cast

import mlx.core as mx

from lattice.config import WeightFormat

# Every quantized type mx.load understands in GGUF uses blocks of 32 values.
GGUF_GROUP_SIZE = 32

_LAYER_NAMES = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}
_GLOBAL_NAMES = {
    "token_embd": "model.embed_tokens",
    "output_norm": "model.norm",
    "output": "lm_head",
}
_TENSOR_RE = re.compile(r"^(?:blk\.(\d+)\.)?(\w+)\.(weight|scales|biases|bias)$")


class UnsupportedGGUFError(ValueError):
    """The GGUF is not a plain llama-architecture model this converter handles."""


def read_gguf(path: pathlib.Path) -> tuple[dict[str, mx.array], dict[str, Any]]:
    """Tensors and metadata of a GGUF, metadata turned into plain Python values."""
    loaded = mx.load(str(path), return_metadata=True)
    tensors, raw_meta = cast(tuple[dict[str, mx.array], dict[str, Any]], loaded)
    meta = {k: v.tolist() if isinstance(v, mx.array) else v for k, v in raw_meta.items()}
    return tensors, meta


def model_config(meta: dict[str, Any], tensors: dict[str, mx.array]) -> dict[str, Any]:
    """The Hugging Face style ``config.json`` for mlx-lm's llama model."""
    arch = meta.get("general.architecture")
    if arch != "llama":
        raise UnsupportedGGUFError(f"only llama GGUFs are supported, got {arch!r}")
    if meta.get("llama.rope.scaling.type", "none") not in ("none", None):
        raise UnsupportedGGUFError("RoPE scaling in GGUF is not supported yet")

    def num(key: str) -> Any:
        if f"llama.{key}" not in meta:
            raise UnsupportedGGUFError(f"GGUF metadata lacks llama.{key}")
        return meta[f"llama.{key}"]

    hidden = int(num("embedding_length"))
    heads = int(num("attention.head_count"))
    head_dim = hidden // heads
    if int(meta.get("llama.rope.dimension_count", head_dim)) != head_dim:
        raise UnsupportedGGUFError("partial rotary embeddings are not supported")
    vocab = meta.get("llama.vocab_size") or len(meta["tokenizer.ggml.tokens"])
    return {
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": hidden,
        "intermediate_size": int(num("feed_forward_length")),
        "num_hidden_layers": int(num("block_count")),
        "num_attention_heads": heads,
        "num_key_value_heads": int(meta.get("llama.attention.head_count_kv", heads)),
        "head_dim": head_dim,
        # GGUF stores these as float32; 7 significant digits gives back e.g. 1e-05.
        "rms_norm_eps": float(f"{float(num('attention.layer_norm_rms_epsilon')):.7g}"),
        "rope_theta": float(f"{float(meta.get('llama.rope.freq_base', 10000.0)):.7g}"),
        "rope_traditional": False,  # valid only because we un-permute Q/K below
        "max_position_embeddings": int(num("context_length")),
        "vocab_size": int(vocab),
        "tie_word_embeddings": "output.weight" not in tensors,
        "attention_bias": False,
        "mlp_bias": False,
        "hidden_act": "silu",
        "bos_token_id": meta.get("tokenizer.ggml.bos_token_id"),
        "eos_token_id": meta.get("tokenizer.ggml.eos_token_id"),
    }


def _mlx_name(gguf_name: str) -> str:
    m = _TENSOR_RE.match(gguf_name)
    if m is None:
        raise UnsupportedGGUFError(f"unexpected tensor {gguf_name!r}")
    layer, base, suffix = m.groups()
    if layer is not None and base in _LAYER_NAMES:
        return f"model.layers.{layer}.{_LAYER_NAMES[base]}.{suffix}"
    if layer is None and base in _GLOBAL_NAMES:
        return f"{_GLOBAL_NAMES[base]}.{suffix}"
    raise UnsupportedGGUFError(f"unexpected tensor {gguf_name!r}")


def _unpermute_rows(x: mx.array, n_heads: int) -> mx.array:
    """Invert llama.cpp's convert_hf_to_gguf ``permute`` on the output rows.

    The converter reorders each head's rows from HF's rotate-half layout [first half,
    second half] to interleaved pairs (GPT-J style) for llama.cpp's RoPE. Rows are
    independent under group-wise quantization, so the same inverse applies to packed
    weights, scales and biases alike.
    """
    rows = x.shape[0]
    return x.reshape(n_heads, rows // n_heads // 2, 2, *x.shape[1:]).swapaxes(1, 2).reshape(x.shape)


def convert_tensors(
    tensors: dict[str, mx.array], config: dict[str, Any], weights: WeightFormat
) -> tuple[dict[str, mx.array], dict[str, Any] | None]:
    """mlx-lm llama weights, plus the ``quantization`` config entry if still quantized."""
    heads = {
        "attn_q": config["num_attention_heads"],
        "attn_k": config["num_key_value_heads"],
    }
    out: dict[str, mx.array] = {}
    for name, arr in tensors.items():
        base = name.split(".")[-2]
        if base in heads:
            arr = _unpermute_rows(arr, heads[base])
        out[_mlx_name(name)] = arr

    if weights == "quantized":
        return out, _quantization_config(out)

    dtype = mx.float32 if weights == "float32" else mx.float16
    dense: dict[str, mx.array] = {}
    for name, arr in out.items():
        if name.endswith((".scales", ".biases")):
            continue
        prefix = name.removesuffix(".weight")
        if name.endswith(".weight") and f"{prefix}.scales" in out:
            scales, biases = out[f"{prefix}.scales"], out[f"{prefix}.biases"]
            # Dequantize in float32 as llama.cpp does (fp16 d*q+m would round twice).
            arr = mx.dequantize(
                arr,
                scales.astype(mx.float32),
                biases.astype(mx.float32),
                group_size=GGUF_GROUP_SIZE,
                bits=_bits(arr, scales),
            )
        dense[name] = arr.astype(dtype)
    return dense, None


def _bits(packed: mx.array, scales: mx.array) -> int:
    in_dims = scales.shape[-1] * GGUF_GROUP_SIZE
    return packed.shape[-1] * 32 // in_dims


def _quantization_config(out: dict[str, mx.array]) -> dict[str, Any]:
    """Most common bit width as default; per-layer entries for the others (e.g. Q8_0 embedding)."""
    per_layer = {
        layer: _bits(arr, out[f"{layer}.scales"])
        for name, arr in out.items()
        if name.endswith(".weight") and f"{(layer := name.removesuffix('.weight'))}.scales" in out
    }
    if not per_layer:
        raise UnsupportedGGUFError("quantized format requested but GGUF has no quantized tensors")
    default_bits = Counter(per_layer.values()).most_common(1)[0][0]
    quant: dict[str, Any] = {"group_size": GGUF_GROUP_SIZE, "bits": default_bits}
    for layer, bits in sorted(per_layer.items()):
        if bits != default_bits:
            quant[layer] = {"group_size": GGUF_GROUP_SIZE, "bits": bits}
    return quant
