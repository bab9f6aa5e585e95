"""`python -m bench.relay`: runs the benchmark."""

from bench.relay.run import main

if __name__ == "__main__":
    raise SystemExit(main())
