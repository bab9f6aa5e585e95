"""The TypeScript SDK knows what the Python SDK knows: every error reason, every capability the
contract names, every field of a model. Read from the sources, so a reason added to one SDK and
forgotten in the other fails here rather than in a user's `instanceof`."""

from __future__ import annotations

import dataclasses
import re

from lattice_client import _errors, _types

from lattice.v1 import resolve_pb2
from tests.gateway_process import REPO

TYPESCRIPT = REPO / "clients" / "typescript" / "src"


def _block(source: str, opening: str) -> str:
    """The text from `opening` to the first line that closes it."""
    start = source.index(opening)
    return source[start : source.index("\n}", start)]


def test_every_python_reason_has_a_typescript_class() -> None:
    errors = (TYPESCRIPT / "errors.ts").read_text()
    classes = set(re.findall(r"^\s+([A-Z_]+): \w+,$", _block(errors, "ERROR_CLASSES"), re.MULTILINE))
    assert set(_errors.REASONS) - classes == set()


def test_typescript_capabilities_are_the_contracts() -> None:
    types = (TYPESCRIPT / "types.ts").read_text()
    union = re.search(r"export type Capability = ([^;]+);", types)
    assert union is not None
    named = set(re.findall(r'"(\w+)"', union.group(1)))
    contract = {name.removeprefix("CAPABILITY_").lower() for name in resolve_pb2.Capability.DESCRIPTOR.values_by_name}
    assert named == contract


def test_typescript_model_has_every_python_field() -> None:
    types = (TYPESCRIPT / "types.ts").read_text()
    fields = set(re.findall(r"^\s+(\w+)\??:", _block(types, "export interface Model {"), re.MULTILINE))
    camel = {re.sub(r"_(\w)", lambda m: m.group(1).upper(), f.name) for f in dataclasses.fields(_types.Model)}
    assert camel - fields == set()
