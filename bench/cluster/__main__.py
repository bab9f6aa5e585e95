"""`python -m bench.cluster`: runs the benchmark."""

from bench.cluster.run import main

if __name__ == "__main__":
    raise SystemExit(main())
