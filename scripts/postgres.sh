# Sourced by scripts/test.sh: a throwaway PostgreSQL cluster for the test suite.
#
# pg_start installs Debian's postgresql if its binaries are missing, creates a cluster in
# a temporary directory (as the postgres user when run as root: PostgreSQL refuses to run
# as root), starts it on a free loopback port and exports
#   OTTGATE_TEST_PG_URL  an admin URL; each test creates its own database there
#   OTTGATE_TEST_PG_BIN  the server's bin directory (tests that start clusters of their
#                        own, e.g. a primary and its standby, use it)
#   OTTGATE_TEST_PG_USER the user those clusters run as
# pg_stop stops it and removes the directory.

pg_bin() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

as_pg_user() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

pg_start() {
    local bin
    bin="$(pg_bin)"
    if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
        echo "==> installing postgresql (Debian packages)"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
        bin="$(pg_bin)"
    fi
    if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
        echo "PostgreSQL is required by the test suite and could not be installed" >&2
        return 1
    fi
    PG_TEST_DIR="$(mktemp -d /tmp/ottgate-pg.XXXXXX)"
    local user
    user="$(id -un)"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres: "$PG_TEST_DIR"
        user=postgres
    fi
    local port
    port="$(free_port)"
    as_pg_user "$bin/initdb" -D "$PG_TEST_DIR/data" -U postgres --auth=trust -E UTF8 --no-sync >"$PG_TEST_DIR/initdb.log"
    as_pg_user "$bin/pg_ctl" -D "$PG_TEST_DIR/data" -l "$PG_TEST_DIR/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$PG_TEST_DIR -c max_connections=400" \
        start >/dev/null
    export OTTGATE_TEST_PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
    export OTTGATE_TEST_PG_BIN="$bin"
    export OTTGATE_TEST_PG_USER="$user"
    echo "==> PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port ($PG_TEST_DIR)"
}

pg_stop() {
    if [ -n "${PG_TEST_DIR:-}" ] && [ -d "$PG_TEST_DIR/data" ]; then
        as_pg_user "$OTTGATE_TEST_PG_BIN/pg_ctl" -D "$PG_TEST_DIR/data" -m immediate stop >/dev/null 2>&1 || true
        rm -rf "$PG_TEST_DIR"
    fi
}
