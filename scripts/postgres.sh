#!/usr/bin/env bash
# A throwaway PostgreSQL server on loopback, for the tests and for trying Lattice on PostgreSQL:
#   scripts/postgres.sh start DIR PORT   # initdb into DIR/data (trust auth, user and database "lattice"), start
#   scripts/postgres.sh stop DIR
# Then LATTICE_DATABASE_URL=postgresql://lattice@127.0.0.1:PORT/lattice. DIR must be reachable by the
# postgres user when run as root (PostgreSQL refuses to run as root). Debian's postgresql package
# (scripts/install-system-packages.sh) provides the binaries.
set -euo pipefail
command=$1 dir=$2
bindir=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -1)
if [[ -z "$bindir" ]]; then
  bindir=$(dirname "$(command -v pg_ctl)")
fi
as_owner=()
if [[ $(id -u) -eq 0 ]]; then
  chown postgres "$dir"
  as_owner=(runuser -u postgres --)
fi
case "$command" in
  start)
    port=$3
    "${as_owner[@]}" "$bindir/initdb" -D "$dir/data" -U lattice --auth=trust -E UTF8 >/dev/null
    # fsync off: a test database that dies with the machine loses nothing anyone wants.
    "${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
    "${as_owner[@]}" "$bindir/createdb" -h 127.0.0.1 -p "$port" -U lattice lattice
    ;;
  stop)
    "${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
  *)
    echo "usage: $0 start DIR PORT | stop DIR" >&2
    exit 2
    ;;
esac
