"""Hugging Face tokenizer files rebuilt from a GGUF's ``tokenizer.ggml.*`` metadata.

Only byte-level BPE vocabularies (``tokenizer.ggml.model == "gpt2"``) are supported,
which is what SmolLM2 and most llama-architecture GGUFs ship. The output is a
``tokenizer.json`` for the ``tokenizers`` library plus a ``tokenizer_config.json`` that
makes ``transformers.AutoTokenizer`` (and therefore ``mlx_lm.load``) build a
``PreTrainedTokenizerFast`` from local files only.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

# llama.cpp's token types (gguf.TokenType), kept local so we need not import `gguf`.
_TOKEN_CONTROL = 3
_TOKEN_USER_DEFINED = 4

# The pre-tokenizer of each llama.cpp `tokenizer.ggml.pre` name we reproduce. "smollm"
# splits every digit on its own before the GPT-2 byte-level regex, as the original
# Hugging Face tokenizer.json does.
_SUPPORTED_PRE = {"smollm"}


class UnsupportedTokenizerError(ValueError):
    """The GGUF's tokenizer is not a kind this module can rebuild faithfully."""


def _build_tokenizer(tokens: Sequence[str], token_types: Sequence[int], merges: Sequence[str]) -> Tokenizer:
    vocab = {tok: i for i, tok in enumerate(tokens)}
    if len(vocab) != len(tokens):
        raise UnsupportedTokenizerError("GGUF vocabulary holds duplicate tokens")
    # GGUF stores merges as "left right"; byte-level tokens never hold a space.
    pairs: list[tuple[str, str]] = []
    for merge in merges:
        left, sep, right = merge.partition(" ")
        if not sep:
            raise UnsupportedTokenizerError(f"malformed GGUF merge {merge!r}")
        pairs.append((left, right))
    bpe = models.BPE(
        vocab=vocab,
        merges=pairs,
        fuse_unk=False,
        byte_fallback=False,
    )
    tok = Tokenizer(bpe)
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    # Same as the upstream tokenizer.json; it only affects offsets, never ids.
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    # Control tokens (<|im_start|> ...) must be matched whole before BPE, as llama.cpp
    # does when tokenizing with special=True, and be skipped by decode(skip_special).
    added = [
        AddedToken(tokens[i], special=(t == _TOKEN_CONTROL), normalized=False)
        for i, t in enumerate(token_types)
        if t in (_TOKEN_CONTROL, _TOKEN_USER_DEFINED)
    ]
    tok.add_tokens(added)
    return tok


def _token_name(tokens: Sequence[str], meta: Mapping[str, Any], key: str) -> str | None:
    idx = meta.get(f"tokenizer.ggml.{key}_token_id")
    return None if idx is None else tokens[int(idx)]


def write_tokenizer_files(meta: Mapping[str, Any], out_dir: pathlib.Path) -> list[str]:
    """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json.

    ``meta`` is the GGUF metadata with scalars/arrays already turned into Python
    values. Returns the names of the files written.
    """
    model = meta.get("tokenizer.ggml.model")
    pre = meta.get("tokenizer.ggml.pre")
    if model != "gpt2" or pre not in _SUPPORTED_PRE:
        raise UnsupportedTokenizerError(
            f"only byte-level BPE with pre-tokenizer {sorted(_SUPPORTED_PRE)} is "
            f"supported, got tokenizer.ggml.model={model!r}, pre={pre!r}"
        )
    tokens: list[str] = list(meta["tokenizer.ggml.tokens"])
    token_types: list[int] = [int(t) for t in meta["tokenizer.ggml.token_type"]]
    merges: list[str] = list(meta["tokenizer.ggml.merges"])
    tok = _build_tokenizer(tokens, token_types, merges)
    tok.save(str(out_dir / "tokenizer.json"))

    # HF special-token role -> llama.cpp metadata key.
    roles = {"bos": "bos", "eos": "eos", "unk": "unknown", "pad": "padding"}
    specials = {role: name for role, gguf_key in roles.items() if (name := _token_name(tokens, meta, gguf_key))}
    added_decoder = {
        str(i): {
            "content": tokens[i],
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": t == _TOKEN_CONTROL,
        }
        for i, t in enumerate(token_types)
        if t in (_TOKEN_CONTROL, _TOKEN_USER_DEFINED)
    }
    context = meta.get("llama.context_length")
    config: dict[str, Any] = {
        # Without an explicit class, transformers would pick the class for config.json's
        # model_type (LlamaTokenizer), which rebuilds the pipeline from vocab+merges and
        # drops our Digits pre-tokenizer. PreTrainedTokenizerFast takes tokenizer.json as is.
        "tokenizer_class": "PreTrainedTokenizerFast",
        "add_bos_token": bool(meta.get("tokenizer.ggml.add_bos_token", False)),
        "add_eos_token": bool(meta.get("tokenizer.ggml.add_eos_token", False)),
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": int(context) if context is not None else 8192,
        "added_tokens_decoder": added_decoder,
        "additional_special_tokens": [tokens[i] for i, t in enumerate(token_types) if t == _TOKEN_CONTROL],
        **{f"{key}_token": name for key, name in specials.items()},
    }
    if template := meta.get("tokenizer.chat_template"):
        config["chat_template"] = template
    _write_json(out_dir / "tokenizer_config.json", config)
    _write_json(
        out_dir / "special_tokens_map.json",
        {f"{key}_token": name for key, name in specials.items()},
    )
    return ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]


def _write_json(path: pathlib.Path, obj: object) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
