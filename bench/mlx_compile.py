"""Does `mx.compile` speed up the MLX decode step on CPU? One decode step of the default model, timed.

    .venv/bin/python -m bench.mlx_compile                  # ~5 min: 3 variants x batch 1 and 8 x 5 repetitions

The step is what mlx_lm's BatchGenerator (and so Lattice's batching) runs per token: the model on one new
token per sequence against its KV cache, then argmax. The whole step cannot be one compiled graph: the
cache grows by a token every step, so a compiled step would be traced again every time. What can be
compiled is the cache-free half of each decoder layer (RMSNorm, the SwiGLU MLP, the residual add); the
rest already runs as fused kernels (mx.fast.rms_norm, rope, scaled_dot_product_attention), and mlx_lm
already compiles the SwiGLU activation. Variants, in turns within each repetition:
  plain     the model as mlx_lm ships it
  compiled  each layer's norm + MLP + residual as one mx.compile'd function, weights passed as inputs,
            traced once per batch size
  captured  the same through mx.compile(shapeless=True) of a closure over the layer (weights captured)
Like `lattice serve`, it re-executes itself once with a system OpenBLAS preloaded when there is one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import mlx.core as mx

from bench.common import REPO, fmt, load_average, machine, machine_line, table, write_results
from lattice.blas import PRELOADED_MARK, reexec_with_blas

VARIANTS = ("plain", "compiled", "captured")
PROMPT_TOKENS = 40


@mx.compile
def _norm_mlp_residual(h: mx.array, norm: mx.array, gate: mx.array, up: mx.array, down: mx.array) -> mx.array:
    x = mx.fast.rms_norm(h, norm, 1e-5)
    g = x @ gate.T
    out: mx.array = h + (g * mx.sigmoid(g) * (x @ up.T)) @ down.T  # SwiGLU: silu(gate) * up
    return out


class _Layer:
    """A llama decoder layer whose second half is `second_half(h)` (inference only: not an nn.Module)."""

    def __init__(self, layer: Any, second_half: Callable[[mx.array], mx.array]) -> None:
        self.layer = layer
        self._second_half = second_half

    def __getattr__(self, name: str) -> Any:  # what the model reads of its layers (e.g. use_sliding)
        return getattr(self.layer, name)

    def __call__(self, x: mx.array, mask: Any = None, cache: Any = None) -> mx.array:
        h = x + self.layer.self_attn(self.layer.input_layernorm(x), mask, cache)
        return self._second_half(h)


def load_variant(model_dir: str, variant: str) -> Any:
    from mlx_lm.utils import load

    model = load(model_dir)[0]
    if variant == "plain":
        return model
    layers = model.model.layers
    for i, layer in enumerate(layers):
        norm, mlp = layer.post_attention_layernorm, layer.mlp
        assert abs(norm.eps - 1e-5) < 1e-12, "the compiled function assumes SmolLM2's eps"
        if variant == "compiled":

            def half(h: mx.array, norm: Any = norm, mlp: Any = mlp) -> mx.array:
                weights = (norm.weight, mlp.gate_proj.weight, mlp.up_proj.weight, mlp.down_proj.weight)
                return _norm_mlp_residual(h, *weights)

        else:
            half = mx.compile(lambda h, norm=norm, mlp=mlp: h + mlp(norm(h)), shapeless=True)
        layers[i] = _Layer(layer, half)
    return model


def step_ms(model: Any, batch: int, steps: int) -> float:
    """Median wall time of one decode step (after a prompt of PROMPT_TOKENS), in ms."""
    from mlx_lm.models.cache import make_prompt_cache

    cache = make_prompt_cache(model)
    prompt = mx.array([[10 + (i * 7 + b) % 1000 for i in range(PROMPT_TOKENS)] for b in range(batch)])
    logits = model(prompt, cache=cache)
    tokens = mx.argmax(logits[:, -1, :], axis=-1)
    mx.eval(tokens)
    times = []
    for _ in range(steps):
        began = time.perf_counter()
        logits = model(tokens[:, None], cache=cache)
        tokens = mx.argmax(logits[:, -1, :], axis=-1)
        mx.eval(tokens)
        times.append(time.perf_counter() - began)
    return statistics.median(times[2:]) * 1000


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8], help="sequences decoded together")
    parser.add_argument("--steps", type=int, default=40, help="decode steps per measurement")
    parser.add_argument("--repeats", type=int, default=5, help="repetitions (medians reported)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    args = parser.parse_args(argv)
    reexec_with_blas("auto", sys.argv[1:] if argv is None else list(argv), module="bench.mlx_compile")
    from tests.upstream_servers import smollm2_mlx_dir

    model_dir = str(smollm2_mlx_dir())
    models = {variant: load_variant(model_dir, variant) for variant in args.variants}
    info = machine()
    info["blas"] = os.environ.get(PRELOADED_MARK, "bundled with mlx")
    print(machine_line(info) + f"; BLAS: {info['blas']}")
    for model in models.values():  # trace and warm up every variant at every batch size first
        for batch in args.batches:
            step_ms(model, batch, 4)
    cells: dict[str, dict[int, list[float]]] = {v: {b: [] for b in args.batches} for v in args.variants}
    for repetition in range(args.repeats):
        for batch in args.batches:
            for variant, model in models.items():
                cells[variant][batch].append(step_ms(model, batch, args.steps))
        print(f"  repetition {repetition + 1}/{args.repeats}, load {load_average()}", flush=True)
    info["load_average_at_end"] = load_average()

    rows = []
    summary: dict[str, dict[str, float]] = {}
    for variant in args.variants:
        for batch in args.batches:
            ms = statistics.median(cells[variant][batch])
            plain = statistics.median(cells["plain"][batch]) if "plain" in cells else float("nan")
            summary[f"{variant}/{batch}"] = {"step_ms": ms, "tok_per_s": 1000 * batch / ms, "vs_plain": plain / ms}
            runs = ", ".join(f"{v:.0f}" for v in cells[variant][batch])
            rows.append([variant, str(batch), fmt(ms, 1), fmt(1000 * batch / ms, 1), fmt(plain / ms), runs])
    text = table(["variant", "batch", "step ms", "tok/s", "speed vs plain", "each repetition, ms"], rows)
    print(f"\nMedian decode step over {args.repeats} repetitions:\n{text}")
    path = write_results(
        "mlx_compile",
        {"benchmark": "mlx_compile", "machine": info, "settings": vars(args), "summary": summary, "cells": cells},
    )
    print(f"\nwritten to {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
