#!/usr/bin/env bash
# Start and stop a PostgreSQL server of Debian's packages for the tests and benchmarks (Debian 12, as root, no
# systemd): the hub's database and the Dask service's records on PostgreSQL, as sites run them.
#
#   bash tests/cluster/postgres.sh start|stop|restart|status|url DATABASE|database DATABASE
#
# Needs `apt-get install postgresql` (tests/setup.sh installs it). Its own cluster, apart from Debian's `main` one:
#   data, socket, log   ${DAAS_POSTGRES_DIR:-/var/tmp/daas-postgres}/{data,run,log}, owned by the system user postgres
#   TCP                 127.0.0.1:${DAAS_POSTGRES_PORT:-55432} only, password (SCRAM-SHA-256) logins only
#   Unix socket         in run/, for the postgres superuser alone (peer authentication)
#   role daas           may log in and create databases; its password is in daas.password (root's alone, 0600)
# `url DATABASE` prints postgresql://daas:<password>@127.0.0.1:<port>/DATABASE (it holds the password: for
# scripts, not logs). `database DATABASE` starts the server if needed, makes DATABASE anew (empty, role daas's)
# and prints its URL as the last line (a benchmark's fresh database). `status` exits 3 when the server is down.
set -euo pipefail

DIR=${DAAS_POSTGRES_DIR:-/var/tmp/daas-postgres}
PORT=${DAAS_POSTGRES_PORT:-55432}
HOST=127.0.0.1
ROLE=daas
DATA=$DIR/data
RUN=$DIR/run
LOG=$DIR/log/postgres.log
PASSWORD_FILE=$DIR/$ROLE.password
TIMEOUT=${DAAS_POSTGRES_TIMEOUT:-60}

T0=${EPOCHREALTIME/[.,]/}
elapsed() { local now=${EPOCHREALTIME/[.,]/}; printf '%d.%d' $(((now - T0) / 1000000)) $((((now - T0) / 100000) % 10)); }
say() { echo "[postgres.sh $(elapsed)s] $*"; }
die() { echo "[postgres.sh] ERROR: $*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root"
if ! [[ $PORT =~ ^[1-9][0-9]{0,4}$ ]] || ((PORT > 65535)); then die "DAAS_POSTGRES_PORT must be a port number"; fi

# The newest installed server's programs (Debian: /usr/lib/postgresql/<major>/bin).
BIN=
for candidate in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V); do
    [[ -x $candidate/initdb && -x $candidate/pg_ctl ]] && BIN=$candidate
done
[[ -n $BIN ]] || die "no PostgreSQL server in /usr/lib/postgresql: apt-get install postgresql"
id postgres >/dev/null 2>&1 || die "no system user postgres: apt-get install postgresql"

# As the postgres system user, from a folder it may enter (root's working directory it may not).
as_postgres() { (cd "$DIR" && runuser -u postgres -- "$@"); }
superuser_sql() { as_postgres "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$RUN" -p "$PORT" -d postgres; }

running() { [[ -s $DATA/postmaster.pid ]] && as_postgres "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

# the port of the running server (line 4 of postmaster.pid), which a later DAAS_POSTGRES_PORT does not change
running_port() { sed -n 4p "$DATA/postmaster.pid"; }

prepare() {
    mkdir -p "$DIR" "$DIR/log" "$RUN"
    chown root:root "$DIR"
    chmod 0755 "$DIR"
    chown postgres:postgres "$DIR/log" "$RUN"
    chmod 0700 "$DIR/log"
    chmod 0755 "$RUN"
    if [[ ! -s $DATA/PG_VERSION ]]; then
        rm -rf "$DATA"
        install -d -o postgres -g postgres -m 0700 "$DATA"
        say "initdb $DATA ($("$BIN/postgres" --version))"
        as_postgres "$BIN/initdb" -D "$DATA" -U postgres -E UTF8 --no-locale \
            --auth-local=peer --auth-host=scram-sha-256 >"$DIR/log/initdb.log" 2>&1 ||
            { cat "$DIR/log/initdb.log" >&2; die "initdb failed"; }
    fi
    # Who may connect how, rewritten on every start: the superuser through the socket as the system user
    # postgres, everyone else over TCP from this host with a password.
    cat >"$DATA/pg_hba.conf" <<EOF
# Written by tests/cluster/postgres.sh. Do not edit: rewritten on start.
# TYPE  DATABASE  USER      ADDRESS        METHOD
local   all       postgres                 peer
host    all       all       $HOST/32   scram-sha-256
EOF
    chown postgres:postgres "$DATA/pg_hba.conf"
    chmod 0600 "$DATA/pg_hba.conf"
    if [[ ! -s $PASSWORD_FILE ]]; then
        (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$PASSWORD_FILE")
        say "created the password of role $ROLE in $PASSWORD_FILE"
    fi
    chown root:root "$PASSWORD_FILE"
    chmod 0600 "$PASSWORD_FILE"
}

cmd_start() {
    if running; then
        say "PostgreSQL already running on $HOST:$(running_port)"
        facts
        return 0
    fi
    prepare
    # setsid: its own session, so a test runner's Ctrl-C (SIGINT to its process group) does not stop it.
    say "starting PostgreSQL on $HOST:$PORT (log $LOG)"
    as_postgres setsid -w "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t "$TIMEOUT" \
        -o "-c listen_addresses=$HOST -c port=$PORT -c unix_socket_directories=$RUN" start >/dev/null ||
        { tail -n 25 "$LOG" >&2; die "PostgreSQL did not start"; }
    # The role with the file's password (set again each start: the file is what counts). The password goes
    # through psql's stdin, not its argv (which `ps` shows).
    superuser_sql <<EOF
SELECT 'CREATE ROLE $ROLE' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE') \gexec
ALTER ROLE $ROLE LOGIN CREATEDB PASSWORD '$(<"$PASSWORD_FILE")';
EOF
    say "PostgreSQL ready"
    facts
}

cmd_stop() {
    if ! running; then
        say "PostgreSQL is not running"
        return 0
    fi
    as_postgres "$BIN/pg_ctl" -D "$DATA" -m fast -w -t "$TIMEOUT" stop >/dev/null
    say "stopped PostgreSQL"
}

facts() {
    echo "  host $HOST, port $(running_port), role $ROLE (may create databases), password in $PASSWORD_FILE"
    echo "  URL  postgresql://$ROLE:<password>@$HOST:$(running_port)/<database>  (bash $0 url <database>)"
    echo "  data $DATA, log $LOG"
}

cmd_status() {
    if running; then
        say "PostgreSQL running (pid $(head -n 1 "$DATA/postmaster.pid"), $("$BIN/postgres" --version))"
        facts
    else
        say "PostgreSQL is not running"
        return 3
    fi
}

database_name() {
    [[ $1 =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || die "usage: $0 url|database DATABASE (lower-case letters, digits, _)"
}

cmd_url() {
    database_name "$1"
    running || die "PostgreSQL is not running: bash $0 start"
    echo "postgresql://$ROLE:$(<"$PASSWORD_FILE")@$HOST:$(running_port)/$1"
}

cmd_database() {
    database_name "$1"
    cmd_start
    superuser_sql <<EOF
SET client_min_messages = warning;
DROP DATABASE IF EXISTS $1 WITH (FORCE);
CREATE DATABASE $1 OWNER $ROLE;
EOF
    say "made database $1 (empty, owned by $ROLE)"
    cmd_url "$1"
}

case ${1:-} in
    start) cmd_start ;;
    stop) cmd_stop ;;
    restart) cmd_stop; cmd_start ;;
    status) cmd_status ;;
    url) cmd_url "${2:-}" ;;
    database) cmd_database "${2:-}" ;;
    *)
        echo "usage: $0 start|stop|restart|status|url DATABASE|database DATABASE" >&2
        exit 2
        ;;
esac
