"""Personal-runtime relay: Lattice's bidirectional stream vs an HTTP long-polling daemon, same run.

    .venv/bin/python -m bench.relay                      # ~3-4 min on 2 cores
    .venv/bin/python -m bench.relay --requests 300 --concurrency 256 --phases round-trip concurrency

Everything runs on 127.0.0.1. The daemons' local provider is `bench.fast_upstream` (answers at once), so
what is measured is the relay. Three measurements:

round trip (real processes)   A chat sent one at a time (closed loop, `--requests` per target in
    `--rounds` rounds, the target order rotated each round), latency from send to the whole answer:
      direct         the provider itself (HTTP, streamed): the baseline
      lattice-proxy  Lattice's StreamChat on the provider as a plain [[upstreams]] model (no relay): reference
      relay-grpc     Lattice's StreamChat on `lattice:personal:<id>`: gateway -> relay stream -> a real
                     `lattice-daemon` (paired with `lattice-ctl relay connect --provider-url`) -> provider
      relay-shim     the same through the REST shim (`POST /v1/chat/completions`, not streamed)
      longpoll       bench/longpoll_relay.py: its gateway -> a daemon long-polling it -> provider
                     (`POST /v1/chat/completions`, not streamed)
    "added" is a target's p50 (p99) minus direct's.
dispatch (in-process harness)  App sent the chat -> the daemon has its work item ("dispatch"), and the
    part of that from the gateway handing the chat to its relay ("relay hop"), p50/p99, one chat at a
    time, then `--burst` at once. Each system runs whole in this one process and event loop, over real
    loopback sockets: Lattice's gRPC server as `lattice serve` assembles it (lattice/server/app.py: a store
    in a temporary SQLite, auth, resolver, admission, ChatService, RelayService; no shim), an app calling
    StreamChat with a key, and the daemon's own RelayClient and Executor dialling it; and
    bench/longpoll_relay.py's gateway (uvicorn), an app POSTing to it, and its daemon. The gateway's
    hand-off is noted by a wrapper around the hub's `run` (the long-poll gateway's `submit`), the
    daemon's receipt by a RelayClient subclass when the item's task starts (after the stream read, before
    unsealing; long polling: when the poll's answer has been read). Nothing in lattice/ changes. The
    long-poll gateway also reports its receipt -> the daemon's for the real processes (CLOCK_MONOTONIC
    is one clock for all processes of a machine): a cross-check of the harness.
concurrency (real processes)   `--concurrency` chats at once (256 and 512) on one daemon (relay-grpc,
    relay-shim, longpoll), the provider holding each for `--hold-ms` and echoing its prompt (so a crossed
    answer shows): every answer must be its own request's. Lost = no answer within the timeout. While
    they run, the gateway's own count of chats running on the runtime (`lattice_running_requests` on
    /metrics; the long-poll gateway's /healthz) and the provider's count of requests it holds are
    sampled: their peaks show how many work items one stream (one long-poll daemon) had in flight at
    once. The Lattice gateway's caps are raised for this (`max_concurrent_total`, `relay_max_in_flight`,
    queue, per-key limits).
"""
