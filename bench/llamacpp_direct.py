"""The `xllamacpp` target of bench.llamacpp_throughput: `xllamacpp.Server` in a process of its own, as a gateway has.

    python -m bench.llamacpp_direct '{"gguf": "...", "threads": 2, "parallel": 8, "context_tokens": 16384,
                                      "batch_tokens": 256, "streams": 8}'

Loads the GGUF with those options (`server_params`, as `LlamaCppEngine.load` does), prints `ready`, then reads one
request a line from stdin (`{"id", "body"}`, the OpenAI JSON of a streamed chat completion) and runs each on
a thread of its own, blocked in `handle_chat_completions` with a chunk callback that only reads the clock.
Each answer is one JSON line on stdout: `{"id", "start", "first", "last", "tokens", "prompt_tokens"}` (times
are `time.monotonic()`, CLOCK_MONOTONIC, one clock for every process on the machine) or `{"id", "error"}`.
Ends at the end of stdin.
"""

from __future__ import annotations

import json
import pathlib
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def load(options: dict[str, Any]) -> Any:
    import xllamacpp

    from lattice.server.backends.llamacpp.engine import EngineOptions, server_params

    engine = EngineOptions(
        threads=options["threads"],
        parallel=options["parallel"],
        context_tokens=options["context_tokens"],
        batch_tokens=options["batch_tokens"],
    )
    return xllamacpp.Server(server_params(pathlib.Path(options["gguf"]), engine))


def generate(server: Any, body: dict[str, Any]) -> dict[str, Any]:
    first = 0.0
    usage: dict[str, Any] = {}

    def on_chunk(chunk: dict[str, Any]) -> bool:
        nonlocal first, usage
        if not first and any((c.get("delta") or {}).get("content") for c in chunk.get("choices") or []):
            first = time.monotonic()
        usage = chunk.get("usage") or usage
        return False

    start = time.monotonic()
    result = server.handle_chat_completions(body, on_chunk)
    last = time.monotonic()
    if isinstance(result, dict) and "error" in result:
        return {"error": f"xllamacpp: {result['error']}"}
    return {
        "start": start,
        "first": first or last,
        "last": last,
        "tokens": int(usage.get("completion_tokens", 0)),
        "prompt_tokens": int(usage.get("prompt_tokens", 0)),
    }


def main() -> int:
    options = json.loads(sys.argv[1])
    with ThreadPoolExecutor(max_workers=1) as loader:  # as the gateway loads it: not on the main thread
        server = loader.submit(load, options).result()
    write = threading.Lock()

    def run(request: dict[str, Any]) -> None:
        try:
            answer = generate(server, request["body"])
        except Exception as error:
            answer = {"error": f"{type(error).__name__}: {error}"}
        with write:
            sys.stdout.write(json.dumps({"id": request["id"], **answer}) + "\n")
            sys.stdout.flush()

    print("ready", flush=True)
    with ThreadPoolExecutor(max_workers=options["streams"], thread_name_prefix="direct") as threads:
        for line in sys.stdin:
            threads.submit(run, json.loads(line))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
