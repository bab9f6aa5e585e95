"""The relay across gateway replicas under load (issue #21): `lattice serve` replicas on loopback sharing
one PostgreSQL database and one `nats-server`, many simulated daemons in this one process, and a steady
load of personal-runtime chats spread over the replicas, against the same load on a single replica.

    .venv/bin/python -m bench.cluster                      # ~1 min: 100 daemons, 20 chats/s for 10 s
    .venv/bin/python -m bench.cluster --daemons 1000 --rate 50 --seconds 30

Everything runs on 127.0.0.1; the parts are the tests' own (tests/cluster/processes.py,
tests/postgres_server.py, tests/gateway_process.py). Two phases, each on a fresh database:

single    one replica, no broker (the in-memory hub, as `lattice serve` runs by default), every daemon on it
cluster   `--replicas` replicas with `LATTICE_BROKER_URL`, daemon i dialling replica i mod N

Each simulated daemon is its own paired runtime: a record created, a bootstrap token minted and redeemed
with its own X25519 key through the store's RuntimeRecords on the shared database (the code the REST API
runs; 3 requests per daemon saved), so it holds its own daemon credential. It opens its own Connect
stream on its own TCP connection, answers each work item at once (one delta: its own runtime id, then the
finish) and each gateway heartbeat with one of its own. The apps' chats (StreamChat with an account key,
open loop at `--rate` per second for `--seconds`) go to a runtime picked at random, on the replicas in
turn; in the cluster phase about (N-1)/N of them land on a replica that does not hold the runtime's
stream and cross NATS. Latency is from sending the chat to its done message.

ok          the answer is the picked runtime's id
misrouted   an answer from any other runtime
lost        no complete answer (an error status or no answer within `--timeout`)
duplicated  work items the daemons received beyond one per chat sent
"""
