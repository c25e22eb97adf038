# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# scripts/lib/pg.sh — a private, throw-away PostgreSQL for running and testing
# mod_hydra_signup. Source it (works under `set -euo pipefail`):
#
#   . scripts/lib/pg.sh
#   hs_pg_install                    # apt-get install postgresql if missing
#   hs_pg_start   DATADIR PORT       # initdb if needed, start, create db/role
#   hs_pg_stop    DATADIR            # fast shutdown; harmless if not running
#   hs_pg_kill    DATADIR            # SIGKILL postmaster + backends (fault tests)
#   hs_pg_restart DATADIR            # stop (if running) + start on same port
#   hs_pg_dsn     PORT               # DSN for mod_dbd's DBDParams
#   hs_pg_psql    PORT [psql args]   # psql as role hydra to db hydra
#
# Layout, with BASE = the parent of DATADIR (e.g. /tmp/hs-pg/pg -> /tmp/hs-pg):
#   DATADIR         the cluster, owned by postgres, mode 700
#   BASE/pg.log     server log
#   BASE/pg-socket  private unix socket directory (clients use 127.0.0.1)
# The server listens on 127.0.0.1:PORT only, with trust authentication; the
# settings live in DATADIR/hs.conf (rewritten by every hs_pg_start).
# As root the server programs run as the `postgres` user (PostgreSQL refuses
# to run as root); as any other user they run as that user.
# Every function returns non-zero after printing "pg: ..." on failure.

HS_PG_BIN=${HS_PG_BIN:-}

_hs_pg_err() { echo "pg: $*" >&2; }

# Run a server program as the cluster owner. cd / so an unreadable cwd
# (e.g. /root) does not upset postgres.
_hs_pg_as() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && "$@")
    fi
}

# Set HS_PG_BIN to the newest /usr/lib/postgresql/<ver>/bin with initdb.
_hs_pg_find_bin() {
    local d
    d=$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/initdb' \
            -printf '%h\n' 2>/dev/null | sort -V | tail -n 1)
    [ -n "$d" ] || return 1
    HS_PG_BIN=$d
}

_hs_pg_need_bin() {
    [ -n "$HS_PG_BIN" ] && [ -x "$HS_PG_BIN/initdb" ] && return 0
    _hs_pg_find_bin && return 0
    _hs_pg_err "PostgreSQL server binaries not found under /usr/lib/postgresql (run hs_pg_install)"
    return 1
}

hs_pg_install() {
    if _hs_pg_find_bin; then return 0; fi
    if [ "$(id -u)" -ne 0 ]; then
        _hs_pg_err "PostgreSQL is not installed and installing it needs root"
        return 1
    fi
    echo "pg: installing PostgreSQL (apt-get)" >&2
    # The Debian package would otherwise create and start a "main" cluster
    # on port 5432 that nothing here uses.
    mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" \
        > /etc/postgresql-common/createcluster.d/00-hydra-signup.conf
    local pkgs=(postgresql postgresql-contrib)
    export DEBIAN_FRONTEND=noninteractive
    if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
        apt-get update || { _hs_pg_err "apt-get update failed"; return 1; }
    fi
    if ! apt-get install -y --no-install-recommends "${pkgs[@]}"; then
        { apt-get update && apt-get install -y --no-install-recommends "${pkgs[@]}"; } ||
            { _hs_pg_err "apt-get install ${pkgs[*]} failed"; return 1; }
    fi
    _hs_pg_find_bin || { _hs_pg_err "installed, but no initdb under /usr/lib/postgresql"; return 1; }
}

# Absolute path without requiring it to exist.
_hs_pg_abs() { realpath -m -- "$1"; }

# /proc/PID/stat fields after "(comm) ": 1 state, 3 process group.
_hs_pg_stat() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f"$2"; }

# PID -> 0 if it is a live (not zombie) postgres process. Zombies count as
# dead: some container inits are slow to reap them.
_hs_pg_alive() {
    local state
    state=$(_hs_pg_stat "$1" 1)
    [ -n "$state" ] && [ "$state" != Z ] &&
        [ "$(cat "/proc/$1/comm" 2>/dev/null)" = postgres ]
}

# PGID -> 0 if a live (not zombie) process is still in that group.
_hs_pg_group_alive() {
    cat /proc/[0-9]*/stat 2>/dev/null |
        awk -v g="$1" '{ sub(/.*\) /, "") } $3 == g && $1 != "Z" { n++ } END { exit n == 0 }'
}

_hs_pg_running() { # DATADIR -> 0 if a postmaster runs on it
    local pid
    [ -f "$1/PG_VERSION" ] && [ -f "$1/postmaster.pid" ] || return 1
    pid=$(sed -n 1p "$1/postmaster.pid" 2>/dev/null)
    [ -n "$pid" ] && _hs_pg_alive "$pid"
}

_hs_pg_port_in_use() { # PORT -> 0 if something accepts TCP on 127.0.0.1:PORT
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

_hs_pg_check_port() {
    case "$1" in
        '' | *[!0-9]*) _hs_pg_err "bad port '$1'"; return 1 ;;
    esac
    if [ "$1" -lt 1 ] || [ "$1" -gt 65535 ]; then
        _hs_pg_err "bad port '$1'"; return 1
    fi
}

# Installs PostgreSQL first if needed (hs_pg_install is a no-op otherwise).
hs_pg_start() {
    [ $# -eq 2 ] || { _hs_pg_err "usage: hs_pg_start DATADIR PORT"; return 1; }
    _hs_pg_check_port "$2" || return 1
    hs_pg_install || return 1
    local data base
    data=$(_hs_pg_abs "$1")
    base=$(dirname "$data")
    mkdir -p "$base" || { _hs_pg_err "cannot create $base"; return 1; }
    # One starter at a time per BASE (parallel test runs).
    (
        flock 9 || { _hs_pg_err "cannot lock $base/.pg.lock"; exit 1; }
        _hs_pg_start_locked "$data" "$base" "$2"
    ) 9>"$base/.pg.lock"
}

_hs_pg_start_locked() {
    local data=$1 base=$2 port=$3 sock="$2/pg-socket" log="$2/pg.log" owner
    local ctl="$HS_PG_BIN/pg_ctl"

    if _hs_pg_running "$data"; then
        local running_port
        running_port=$(sed -n 4p "$data/postmaster.pid" 2>/dev/null || true)
        if [ "$running_port" != "$port" ]; then
            _hs_pg_err "$data is already running on port ${running_port:-?}, not $port; stop it first"
            return 1
        fi
        _hs_pg_ensure_db "$port"
        return
    fi
    if _hs_pg_port_in_use "$port"; then
        _hs_pg_err "port $port on 127.0.0.1 is already in use by something else"
        return 1
    fi

    owner=$(id -un)
    [ "$(id -u)" -eq 0 ] && owner=postgres
    if ! _hs_pg_as test -x "$base"; then
        _hs_pg_err "$base is not traversable by user $owner (every parent directory needs o+x); use a directory under /tmp or /var/tmp"
        return 1
    fi

    # Data directory, socket directory and log file, all owned by the server user.
    if [ -e "$data" ] && [ ! -f "$data/PG_VERSION" ] && [ -n "$(ls -A "$data" 2>/dev/null)" ]; then
        _hs_pg_err "$data exists, is not empty and is not a PostgreSQL cluster; refusing to touch it"
        return 1
    fi
    { mkdir -p "$data" "$sock" && touch "$log"; } || { _hs_pg_err "cannot create $data / $sock / $log"; return 1; }
    chmod 700 "$data" "$sock"
    if [ "$owner" = postgres ]; then
        chown postgres:postgres "$data" "$sock" "$log" ||
            { _hs_pg_err "cannot chown $data to postgres"; return 1; }
    fi

    if [ ! -f "$data/PG_VERSION" ]; then
        local locale=C
        locale -a 2>/dev/null | grep -ix 'c\.utf-\?8' >/dev/null && locale=C.UTF-8
        if ! _hs_pg_as "$HS_PG_BIN/initdb" -D "$data" --auth=trust --username=postgres \
                -E UTF8 --locale="$locale" >>"$log" 2>&1; then
            _hs_pg_err "initdb of $data failed; see $log"
            tail -n 20 "$log" >&2
            return 1
        fi
        echo "include_if_exists = 'hs.conf'" | _hs_pg_as tee -a "$data/postgresql.conf" >/dev/null
    fi
    local have want
    have=$(cat "$data/PG_VERSION")
    want=$(basename "$(dirname "$HS_PG_BIN")")  # /usr/lib/postgresql/<want>/bin
    if [ "$have" != "$want" ]; then
        _hs_pg_err "$data is a PostgreSQL $have cluster but the binaries are $want; remove it"
        return 1
    fi

    if ! _hs_pg_as tee "$data/hs.conf" >/dev/null <<EOF; then
# written by scripts/lib/pg.sh (hs_pg_start); rewritten on every start
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sock'
max_connections = 200
shared_buffers = 128MB
recovery_init_sync_method = syncfs
EOF
        _hs_pg_err "cannot write $data/hs.conf"
        return 1
    fi

    # 9>&-: the postmaster must not inherit the lock of hs_pg_start.
    if ! _hs_pg_as "$ctl" start -D "$data" -l "$log" -w -t 30 -s >/dev/null 2>&1 9>&-; then
        _hs_pg_err "server on $data (port $port) did not start; see $log"
        tail -n 20 "$log" >&2
        return 1
    fi
    local i
    for ((i = 0; i < 60; i++)); do
        "$HS_PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres && break
        sleep 0.5
    done
    if [ "$i" -ge 60 ]; then
        _hs_pg_err "server on port $port is not ready after 30 s; see $log"
        return 1
    fi
    _hs_pg_ensure_db "$port"
}

# Role hydra (LOGIN, password hydra) and database hydra owned by it.
_hs_pg_ensure_db() {
    if ! PGCONNECT_TIMEOUT=10 "$HS_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 \
        -h 127.0.0.1 -p "$1" -U postgres -d postgres >/dev/null <<'SQL'; then
SET client_min_messages = warning;
SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'hydra') AS need_role \gset
\if :need_role
CREATE ROLE hydra LOGIN PASSWORD 'hydra';
\endif
SELECT NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'hydra') AS need_db \gset
\if :need_db
CREATE DATABASE hydra OWNER hydra;
\endif
SQL
        _hs_pg_err "cannot create role/database hydra on port $1"
        return 1
    fi
}

hs_pg_stop() {
    [ $# -eq 1 ] || { _hs_pg_err "usage: hs_pg_stop DATADIR"; return 1; }
    local data
    data=$(_hs_pg_abs "$1")
    _hs_pg_running "$data" || return 0
    _hs_pg_need_bin || return 1
    _hs_pg_as "$HS_PG_BIN/pg_ctl" stop -D "$data" -m fast -w -t 30 -s >/dev/null ||
        { _hs_pg_err "could not stop the server on $data"; return 1; }
}

# SIGKILL the postmaster and its backends (pg_ctl makes the postmaster a
# process group leader), as a crash would, and wait until they are gone. The
# stale lock files are then removed so that a restart does not trip over a
# not-yet-reaped zombie; the next start still runs crash recovery.
hs_pg_kill() {
    [ $# -eq 1 ] || { _hs_pg_err "usage: hs_pg_kill DATADIR"; return 1; }
    local data pid port i
    data=$(_hs_pg_abs "$1")
    _hs_pg_running "$data" || return 0
    pid=$(sed -n 1p "$data/postmaster.pid")
    port=$(sed -n 4p "$data/postmaster.pid")
    if [ "$(_hs_pg_stat "$pid" 3)" != "$pid" ]; then
        # not started by pg_ctl: only the postmaster, backends exit by themselves
        kill -KILL "$pid" 2>/dev/null || true
        return 0
    fi
    kill -KILL -- "-$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        if ! _hs_pg_group_alive "$pid"; then
            rm -f "$data/postmaster.pid" "$(dirname "$data")/pg-socket/.s.PGSQL.$port.lock"
            return 0
        fi
        sleep 0.1
    done
    _hs_pg_err "postmaster $pid on $data did not die"
    return 1
}

hs_pg_restart() {
    [ $# -eq 1 ] || { _hs_pg_err "usage: hs_pg_restart DATADIR"; return 1; }
    local data port
    data=$(_hs_pg_abs "$1")
    port=$(sed -n 's/^port = //p' "$data/hs.conf" 2>/dev/null || true)
    [ -n "$port" ] || { _hs_pg_err "$data was never started by hs_pg_start (no hs.conf)"; return 1; }
    hs_pg_stop "$data" && hs_pg_start "$data" "$port"
}

hs_pg_dsn() {
    [ $# -eq 1 ] || { _hs_pg_err "usage: hs_pg_dsn PORT"; return 1; }
    echo "host=127.0.0.1 port=$1 dbname=hydra user=hydra password=hydra"
}

hs_pg_psql() {
    [ $# -ge 1 ] || { _hs_pg_err "usage: hs_pg_psql PORT [psql args...]"; return 1; }
    local port=$1 psql=psql
    shift
    _hs_pg_find_bin 2>/dev/null && psql="$HS_PG_BIN/psql"
    PGPASSWORD=hydra PGCONNECT_TIMEOUT=10 "$psql" -X -q -v ON_ERROR_STOP=1 \
        -h 127.0.0.1 -p "$port" -U hydra -d hydra "$@"
}
