"""The TypeScript SDK knows what the Python SDK knows: every error reason, every capability the
contract names, every field of a model, every call; and both call every RPC an app needs. Read
from the sources, so a reason (or a call, or an RPC) added to one SDK and forgotten in the other
fails here rather than in a user's `instanceof`."""

from __future__ import annotations

import dataclasses
import inspect
import re

from lattice_client import (
    ComputeClient,
    PersonalRuntimes,
    SyncComputeClient,
    SyncPersonalRuntimes,
    _client,
    _errors,
    _types,
)

from lattice.v1 import chat_pb2, completions_pb2, embeddings_pb2, personal_runtime_pb2, resolve_pb2
from tests.gateway_process import REPO

TYPESCRIPT = REPO / "clients" / "typescript" / "src"
# The services an app calls. The relay is the daemon's, swarms, usage and the dashboard are the
# gateway's own surfaces (shim, CLI, operators), not the SDKs' (yet).
APP_SERVICES = (chat_pb2, completions_pb2, embeddings_pb2, personal_runtime_pb2, resolve_pb2)
# Only a daemon redeems a bootstrap token (`lattice-ctl relay connect`).
NOT_FOR_APPS = {"RedeemBootstrapToken"}


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


def _camel(name: str) -> str:
    return re.sub(r"_(\w)", lambda m: m.group(1).upper(), name)


def _python_calls(cls: type) -> set[str]:
    # `close` releases the grpclib channel on its event loop; Connect's transports need no such call.
    return {name for name, _ in inspect.getmembers(cls, inspect.isfunction) if not name.startswith("_")} - {"close"}


def _typescript_calls(opening: str) -> set[str]:
    """The methods of the class `opening` opens in client.ts."""
    block = _block((TYPESCRIPT / "client.ts").read_text(), opening)
    return set(re.findall(r"^  (?:async )?(\w+)\(", block, re.MULTILINE))


def test_the_sync_client_has_every_call() -> None:
    assert _python_calls(SyncComputeClient) == _python_calls(ComputeClient)
    assert _python_calls(SyncPersonalRuntimes) == _python_calls(PersonalRuntimes)


def test_the_typescript_client_has_every_python_call() -> None:
    for python, opening in (
        (ComputeClient, "export class ComputeClient {"),
        (PersonalRuntimes, "export class PersonalRuntimes {"),
    ):
        calls = {_camel(name) for name in _python_calls(python)}
        assert calls and calls - _typescript_calls(opening) == set(), opening


def test_both_sdks_call_every_rpc_an_app_needs() -> None:
    python = inspect.getsource(_client)  # the generated stubs' methods are the RPCs in snake_case
    typescript = (TYPESCRIPT / "client.ts").read_text()  # Connect's clients: the RPCs in lowerCamelCase
    rpcs = {
        method.name
        for module in APP_SERVICES
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    } - NOT_FOR_APPS
    assert {"Complete", "StreamComplete", "Embed", "StreamChat"} <= rpcs
    snake = {rpc: re.sub(r"(?<!^)([A-Z])", r"_\1", rpc).lower() for rpc in rpcs}
    assert {rpc for rpc in rpcs if f".{snake[rpc]}(" not in python} == set()
    assert {rpc for rpc in rpcs if f".{rpc[0].lower()}{rpc[1:]}(" not in typescript} == set()
