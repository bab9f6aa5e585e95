"""The default model: the GGUF -> MLX conversion, checked against llama.cpp's own output.

tests/data/smollm2_golden_tokens.json comes from llama.cpp (scripts/make_golden_tokens.py),
so the tokenizer and the model are compared with an independent implementation of the
same file, not with themselves. Runs fully offline.
"""

from __future__ import annotations

import functools
import json
import os
import pathlib
import subprocess
import sys
from typing import Any

import mlx.core as mx
import numpy as np
import pytest
from mlx_lm import stream_generate
from mlx_lm.models.cache import make_prompt_cache, trim_prompt_cache
from mlx_lm.sample_utils import make_sampler
from mlx_lm.tokenizer_utils import TokenizerWrapper
from mlx_lm.utils import load

from lattice.server.backends.mlx.gguf_convert import (
    MANIFEST_NAME,
    WeightFormat,
    default_gguf_path,
    prepare_mlx_model,
)

REPO = pathlib.Path(__file__).resolve().parents[2]
GOLDEN: dict[str, Any] = json.loads((REPO / "tests/data/smollm2_golden_tokens.json").read_text(encoding="utf-8"))
FORMATS: list[WeightFormat] = ["float32", "quantized", "float16"]

# llama.cpp multiplies Q4_1 weights with 8-bit-rounded activations, MLX with exact
# dequantized values, so their logits differ by a few tenths. Measured on the golden chats
# (float32 and quantized alike): the runtimes' top-1 choices only differ where llama.cpp's
# own top-1/top-2 margin is below 0.35, and llama.cpp's pick is always within 0.19 of
# MLX's best logit. Steps with a margin below NEAR_TIE are coin flips between the two
# runtimes and end a free-running greedy comparison.
NEAR_TIE = 0.5
TEACHER_FORCED_TOLERANCE = 0.5

# mlx.nn.Module is invisible to mypy (mlx.nn ships no stubs), hence Any for the model.
Loaded = tuple[Any, TokenizerWrapper]


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="session")
def model_dirs(model_cache: pathlib.Path) -> dict[str, pathlib.Path]:
    gguf = default_gguf_path()
    return {weights: prepare_mlx_model(gguf, model_cache, weights) for weights in FORMATS}


@functools.cache
def _load(model_dir: pathlib.Path) -> Loaded:
    # load() is typed as returning 2 or 3 items (return_config=True adds the config).
    model, tokenizer = load(str(model_dir))[:2]
    return model, tokenizer


@pytest.fixture(scope="session", params=FORMATS)
def loaded(request: pytest.FixtureRequest, model_dirs: dict[str, pathlib.Path]) -> Loaded:
    return _load(model_dirs[request.param])


@pytest.fixture(scope="session", params=["float32", "quantized"])
def loaded_distinct(request: pytest.FixtureRequest, model_dirs: dict[str, pathlib.Path]) -> Loaded:
    """The two numerically distinct paths (dense, quantized matmuls) for the costlier checks.

    float16 is float32's dequantization rounded once more, and 2x slower on this CPU.
    """
    return _load(model_dirs[request.param])


class _SharedPrefix:
    """A KV cache holding the prompt prefix all golden chats share (the default system prompt).

    MLX's CPU backend runs only ~10-15 tok/s here even for prefill (the mlx-cpu wheel's
    BLAS is the reference one), so recomputing the prefix for every chat would dominate.
    """

    def __init__(self, model: Any) -> None:
        prompts = [chat["prompt_ids"] for chat in GOLDEN["greedy_chats"]]
        shared = next(
            (i for i, column in enumerate(zip(*prompts, strict=False)) if len(set(column)) > 1),
            min(map(len, prompts)) - 1,
        )
        self.length = shared
        self.cache = make_prompt_cache(model)
        mx.eval(model(mx.array([prompts[0][:shared]]), cache=self.cache))

    def suffix(self, ids: list[int]) -> list[int]:
        return ids[self.length :]

    def rewind(self) -> None:
        trim_prompt_cache(self.cache, self.cache[0].offset - self.length)


def _greedy(loaded: Loaded, prompt: list[int], max_tokens: int, prefix: _SharedPrefix | None = None) -> list[int]:
    model, tokenizer = loaded
    sampler = make_sampler(temp=0.0)
    if prefix is None:
        stream = stream_generate(model, tokenizer, prompt, max_tokens=max_tokens, sampler=sampler)
        return [response.token for response in stream]
    stream = stream_generate(
        model,
        tokenizer,
        prefix.suffix(prompt),
        max_tokens=max_tokens,
        sampler=sampler,
        prompt_cache=prefix.cache,
    )
    ids = [response.token for response in stream]
    prefix.rewind()
    return ids


def _chat_prompt(tokenizer: TokenizerWrapper, messages: list[dict[str, str]]) -> list[int]:
    prompt: list[int] = tokenizer.apply_chat_template(  # type: ignore[no-untyped-call]
        messages, add_generation_prompt=True
    )
    return prompt


def _france_chat() -> dict[str, Any]:
    chat: dict[str, Any] = GOLDEN["greedy_chats"][0]
    assert chat["messages"] == [{"role": "user", "content": "What is the capital of France?"}]
    return chat


def test_model_directory_holds_mlx_lm_files(model_dirs: dict[str, pathlib.Path]) -> None:
    model_dir = model_dirs["float32"]
    assert model_dir.name == "SmolLM2-135M-Instruct.Q4_1-float32"
    config = json.loads((model_dir / "config.json").read_text())
    expected = {
        "model_type": "llama",
        "hidden_size": 576,
        "num_hidden_layers": 30,
        "num_attention_heads": 9,
        "num_key_value_heads": 3,
        "rope_theta": 100000.0,
        "rms_norm_eps": 1e-5,
        "max_position_embeddings": 8192,
        "vocab_size": 49152,
        "tie_word_embeddings": True,
    }
    assert {k: config[k] for k in expected} == expected
    tok_config = json.loads((model_dir / "tokenizer_config.json").read_text())
    assert tok_config["add_bos_token"] is False
    assert tok_config["eos_token"] == "<|im_end|>"
    assert "<|im_start|>" in tok_config["chat_template"]
    for name in ("model.safetensors", "tokenizer.json", "generation_config.json", MANIFEST_NAME):
        assert (model_dir / name).is_file()


def test_quantized_config_keeps_q8_embedding(model_dirs: dict[str, pathlib.Path]) -> None:
    quant = json.loads((model_dirs["quantized"] / "config.json").read_text())["quantization"]
    assert quant["group_size"] == 32
    assert quant["bits"] == 4
    assert quant["model.embed_tokens"] == {"group_size": 32, "bits": 8}


@pytest.mark.parametrize("case", GOLDEN["tokens"], ids=lambda c: repr(c["text"][:24]))
def test_tokenizer_matches_llama_cpp(loaded: Loaded, case: dict[str, Any]) -> None:
    _, tokenizer = loaded
    ids = tokenizer.encode(case["text"])
    assert ids == case["ids"]
    assert tokenizer.decode(ids) == case["text"]


def test_chat_template_matches_llama_cpp_prompt(loaded: Loaded) -> None:
    _, tokenizer = loaded
    for chat in GOLDEN["greedy_chats"]:
        prompt = _chat_prompt(tokenizer, chat["messages"])
        assert prompt == chat["prompt_ids"]


@pytest.mark.slow
def test_greedy_answer_names_paris(loaded: Loaded) -> None:
    _, tokenizer = loaded
    prompt = _chat_prompt(tokenizer, _france_chat()["messages"])
    ids = _greedy(loaded, prompt, max_tokens=24)
    assert "Paris" in tokenizer.decode(ids)
    assert ids[-1] in tokenizer.eos_token_ids  # stopped on <|im_end|>, well within 24 tokens


@pytest.mark.slow
def test_teacher_forced_logits_agree_with_llama_cpp(loaded_distinct: Loaded) -> None:
    """Fed llama.cpp's completions, our model prefers llama.cpp's token at (nearly) every step.

    A conversion error (e.g. Q/K rows left permuted) agrees on almost no step.
    """
    model, _ = loaded_distinct
    prefix = _SharedPrefix(model)
    steps = exact = 0
    for chat in GOLDEN["greedy_chats"]:
        prompt, completion = chat["prompt_ids"], chat["completion_ids"]
        logits = model(mx.array([prefix.suffix(prompt + completion)]), cache=prefix.cache)
        first = len(prompt) - prefix.length - 1  # logits predicting completion[0]
        logits_np = np.array(logits[0, first : first + len(completion)].astype(mx.float32))
        prefix.rewind()
        for step, token in enumerate(completion):
            gap = float(logits_np[step].max() - logits_np[step, token])
            assert gap <= TEACHER_FORCED_TOLERANCE, (chat["messages"], step, gap)
            steps += 1
            exact += gap == 0.0
    assert exact >= 0.85 * steps, f"argmax agrees with llama.cpp on only {exact}/{steps} steps"


@pytest.mark.slow
def test_greedy_tokens_agree_with_llama_cpp(loaded_distinct: Loaded) -> None:
    """Free-running greedy decode reproduces llama.cpp's tokens up to its first near-tie."""
    prefix = _SharedPrefix(loaded_distinct[0])
    long_agreements = 0
    for chat in GOLDEN["greedy_chats"]:
        margins: list[float] = chat["top2_margins"]
        clear = next((i for i, m in enumerate(margins) if m < NEAR_TIE), len(margins))
        if clear == 0:
            continue  # llama.cpp's very first token is a coin flip (the France prompt is one)
        ours = _greedy(loaded_distinct, chat["prompt_ids"], max_tokens=clear, prefix=prefix)
        assert ours == chat["completion_ids"][:clear], chat["messages"]
        long_agreements += clear >= 8
    assert long_agreements >= 3  # the check must not pass vacuously


def test_second_prepare_reuses_directory(model_cache: pathlib.Path, model_dirs: dict[str, pathlib.Path]) -> None:
    first = model_dirs["float32"]
    weights = first / "model.safetensors"
    before = weights.stat().st_mtime_ns
    assert prepare_mlx_model(default_gguf_path(), model_cache, "float32") == first
    assert weights.stat().st_mtime_ns == before
    assert not list(model_cache.glob(".*.tmp-*"))


def test_leftovers_of_a_killed_conversion_are_ignored(tmp_path: pathlib.Path) -> None:
    name = "SmolLM2-135M-Instruct.Q4_1-quantized"
    # A temp dir a killed run left behind, and a destination without a manifest (as if a
    # user copied a directory in by hand): neither may be trusted.
    stale = tmp_path / f".{name}.tmp-killed"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"\0" * 1000)
    (stale / "config.json").write_text("{")
    broken = tmp_path / name
    broken.mkdir()
    (broken / "config.json").write_text("{")

    model_dir = prepare_mlx_model(default_gguf_path(), tmp_path, "quantized")

    assert model_dir == broken
    assert (model_dir / MANIFEST_NAME).is_file()
    assert not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".{name}.lock", name]
    _, tokenizer = load(str(model_dir))[:2]
    assert tokenizer.encode("12345") == [33, 34, 35, 36, 37]


def test_concurrent_prepares_share_one_directory(tmp_path: pathlib.Path) -> None:
    code = (
        "import pathlib, sys\n"
        "from lattice.server.backends.mlx.gguf_convert import default_gguf_path, prepare_mlx_model\n"
        "print(prepare_mlx_model(default_gguf_path(), pathlib.Path(sys.argv[1]), 'quantized'))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert outputs[0] == outputs[1]
    model_dir = pathlib.Path(outputs[0])
    assert (model_dir / MANIFEST_NAME).is_file()
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == [model_dir.name]
