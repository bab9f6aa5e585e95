"""The key-value header of a GGUF file (chat template, context length), read without loading tensors."""

from __future__ import annotations

import pathlib
import struct
from typing import Any, BinaryIO

_MAGIC = b"GGUF"
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


class NotAGgufFile(ValueError):
    """The file does not start with a GGUF header."""


def read_metadata(path: pathlib.Path) -> dict[str, Any]:
    """Every metadata key of `path` with its value (arrays as lists); tensors are not read."""
    with path.open("rb") as f:
        if f.read(4) != _MAGIC:
            raise NotAGgufFile(f"{path} is not a GGUF file")
        _version, _tensors, count = struct.unpack("<IQQ", f.read(20))
        return {_string(f): _value(f, _read(f, "<I")) for _ in range(count)}


def _read(f: BinaryIO, fmt: str) -> Any:
    return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]


def _string(f: BinaryIO) -> str:
    return f.read(_read(f, "<Q")).decode("utf-8", errors="replace")


def _value(f: BinaryIO, kind: int) -> Any:
    if kind == _STRING:
        return _string(f)
    if kind == _ARRAY:
        item_kind, length = _read(f, "<I"), _read(f, "<Q")
        return [_value(f, item_kind) for _ in range(length)]
    if kind not in _SCALARS:
        raise NotAGgufFile(f"unknown GGUF value type {kind}")
    return _read(f, _SCALARS[kind])
