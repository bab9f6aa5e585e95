"""A protoc plugin that runs one of grpcio-tools' built-in generators.

buf runs local plugins only, and grpcio-tools compiles the `grpc_python`
generator into its bundled protoc instead of shipping a `protoc-gen-grpc_python`
executable. This plugin bridges the two: it writes the request's descriptors to
a temporary descriptor set, runs grpcio-tools' protoc on it with
`--<generator>_out`, and answers with the files that produced.

Used from buf.gen.yaml as `local: [.venv/bin/python, scripts/protoc_gen_grpc_tools.py, grpc_python]`.
"""

from __future__ import annotations

import pathlib
import sys
import tempfile

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2
from grpc_tools import protoc


def generate(request: plugin_pb2.CodeGeneratorRequest, generator: str) -> plugin_pb2.CodeGeneratorResponse:
    # grpc_python reads proto3 `optional` fine; say so, or buf warns.
    response = plugin_pb2.CodeGeneratorResponse(
        supported_features=plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
    )
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = pathlib.Path(tmp) / "out"
        out_dir.mkdir()
        descriptor_set = pathlib.Path(tmp) / "request.binpb"
        descriptor_set.write_bytes(descriptor_pb2.FileDescriptorSet(file=request.proto_file).SerializeToString())
        out_arg = f"--{generator}_out={request.parameter + ':' if request.parameter else ''}{out_dir}"
        code = protoc.main(["protoc", f"--descriptor_set_in={descriptor_set}", out_arg, *request.file_to_generate])
        if code != 0:
            response.error = f"grpc_tools protoc exited with {code} for generator {generator}"
            return response
        for path in sorted(out_dir.rglob("*")):
            if path.is_file():
                response.file.add(name=str(path.relative_to(out_dir)), content=path.read_text())
    return response


def main() -> None:
    generator = sys.argv[1]
    request = plugin_pb2.CodeGeneratorRequest.FromString(sys.stdin.buffer.read())
    sys.stdout.buffer.write(generate(request, generator).SerializeToString())


if __name__ == "__main__":
    main()
