"""llms.txt, the one file a coding agent reads to integrate, names only what exists: every REST route
(the shim's, or Envoy's from the contract), every gRPC method and every error reason."""

from __future__ import annotations

import ast
import importlib
import re

from lattice.shim import create_app
from tests.gateway_process import REPO

LLMS_TXT = (REPO / "llms.txt").read_text()
ROUTE = re.compile(r"`(GET|POST|DELETE|PATCH|PUT) (/[^`\s]*)`")
RPC = re.compile(r"`lattice\.v1\.(\w+)/(\w+)`")
REASON = re.compile(r"`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|INTERNAL)`")
PROTO_ROUTE = re.compile(r"\b(get|post|delete|patch|put):\s*\"([^\"]+)\"")


def shim_routes() -> set[tuple[str, str]]:
    paths = create_app("127.0.0.1:1").openapi()["paths"]
    return {(method.upper(), path) for path, operations in paths.items() for method in operations} | {
        ("GET", "/openapi.json")
    }


def contract_routes() -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for proto in (REPO / "proto" / "lattice" / "v1").glob("*.proto")
        for method, path in PROTO_ROUTE.findall(proto.read_text())
    }


def string_literals() -> set[str]:
    """Every string constant in the gateway's hand-written code (the reasons it can send are among them)."""
    found: set[str] = set()
    for source in (REPO / "lattice").rglob("*.py"):
        if "v1" in source.relative_to(REPO / "lattice").parts[:1]:
            continue
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.add(node.value)
    return found


def test_it_names_routes_rpcs_and_reasons() -> None:
    assert len(ROUTE.findall(LLMS_TXT)) >= 15
    assert len(RPC.findall(LLMS_TXT)) >= 15
    assert len(error_reasons()) >= 25


def test_every_route_it_names_exists() -> None:
    served = shim_routes() | contract_routes()
    named = set(ROUTE.findall(LLMS_TXT))
    assert named - served == set()
    # and every route the shim serves is named (the dashboard's static files aside)
    assert {r for r in shim_routes() if "static" not in r[1]} - named == set()


def test_every_rpc_it_names_exists() -> None:
    services = {}
    for module in ("chat", "resolve", "swarm", "personal_runtime", "relay", "usage", "operations"):
        descriptor = importlib.import_module(f"lattice.v1.{module}_pb2").DESCRIPTOR
        services.update(descriptor.services_by_name)
    for service, method in RPC.findall(LLMS_TXT):
        assert service in services, service
        assert method in services[service].methods_by_name, f"{service}/{method}"


def error_reasons() -> set[str]:
    """The reasons in the first column of the Errors table."""
    section = LLMS_TXT[LLMS_TXT.index("## Errors") : LLMS_TXT.index("## Personal runtimes")]
    rows = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    return {reason for row in rows for reason in REASON.findall(row)}


def test_every_error_reason_it_names_is_one_the_gateway_sends() -> None:
    literals = string_literals()
    # The shim's own (408, 413) exist only as its lower-case codes.
    sent = {reason for reason in error_reasons() if reason in literals or reason.lower() in literals}
    assert error_reasons() - sent == set()
    # and the reasons it names elsewhere are in the table
    section = LLMS_TXT[LLMS_TXT.index("## Personal runtimes") :]
    assert set(REASON.findall(section)) <= error_reasons()
