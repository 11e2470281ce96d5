# shellcheck shell=bash
# A throwaway PostgreSQL server on loopback, for the cluster scripts and the test suite.
#
# Usage:   source scripts/lib/postgres.sh
#          pg_up DIR USER [extra server options...]   # initdb DIR/data, start on a free port
#          echo "$PG_PORT"                            # the port it listens on
#          pg_down DIR                                # stop it (fast shutdown)
# PostgreSQL refuses to run as root: when we are root, its commands run as the `postgres` user.

pg_bin_dir() { ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1; }

pg_as() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

pg_up() {
  local dir="$1" user="$2"
  shift 2
  local bin
  bin="$(pg_bin_dir)"
  mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
  pg_as "$bin/initdb" -D "$dir/data" -U "$user" --auth=trust --no-sync >"$dir/initdb.log"
  PG_PORT=$(free_port)
  pg_as "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-h 127.0.0.1 -p $PG_PORT -k $dir $*" start >/dev/null
  echo "$bin" >"$dir/pg_bin"
}

pg_down() {
  local dir="$1"
  [ -f "$dir/pg_bin" ] || return 0
  pg_as "$(cat "$dir/pg_bin")/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
}
