#!/usr/bin/env bash
# A throwaway PostgreSQL server for the test suite: `scripts/postgres.sh start DIR [PORT]` creates a cluster
# in DIR (Debian's postgresql package), starts it on 127.0.0.1:PORT (default: a free port) and prints its
# SQLAlchemy URL;
# `scripts/postgres.sh stop DIR` stops it. As root, the server runs as the `postgres` user.
set -euo pipefail
action=${1:?usage: scripts/postgres.sh start|stop DIR [PORT]}
dir=${2:?usage: scripts/postgres.sh start|stop DIR [PORT]}
port=${3:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$bin" ] || { echo "PostgreSQL server not installed: apt-get install postgresql" >&2; exit 1; }
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

case $action in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    if [ ! -f "$dir/PG_VERSION" ]; then
      as_owner "$bin/initdb" -D "$dir" -U stanceline --auth=trust -E UTF8 >/dev/null
    fi
    as_owner "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w \
      -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c fsync=on" start >/dev/null
    as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U stanceline stanceline_test 2>/dev/null || true
    echo "postgresql+psycopg://stanceline@127.0.0.1:$port/stanceline_test"
    ;;
  stop)
    as_owner "$bin/pg_ctl" -D "$dir" -m fast stop >/dev/null
    ;;
  *) echo "unknown action $action" >&2; exit 2 ;;
esac
