#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# scripts/stop.sh - ends what scripts/run.sh started (same HYDRA_STATE_DIR)
# and returns once it is all gone: httpd, the mail sender, the SMTP sink and
# PostgreSQL. A process that does not end within its bound is killed.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/pg.sh
. "$SRC/scripts/lib/pg.sh"
STATE=${HYDRA_STATE_DIR:-/var/tmp/hydra-signup}
[ -d "$STATE" ] || { echo "nothing to stop in $STATE"; exit 0; }

# PGID SECONDS: waits until no process of the group is left, then SIGKILLs it
wait_group() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        kill -0 -- "-$1" 2>/dev/null || return 0
        sleep 0.1
    done
    echo "stop: process group $1 still running after $2 s: killing it" >&2
    kill -KILL -- "-$1" 2>/dev/null || true
}

# httpd: a daemon leading its own process group (children included)
if [ -f "$STATE/run/httpd.pid" ]; then
    pid=$(cat "$STATE/run/httpd.pid")
    if [ -f "$STATE/httpd.conf" ]; then
        apache2 -f "$STATE/httpd.conf" -k stop 2>/dev/null || kill "$pid" 2>/dev/null || true
    fi
    [ -n "$pid" ] && wait_group "$pid" 30
fi
# run.sh starts each under setsid: the pid is the group (runuser and its
# child); the sender may take its --timeout (60 s) to finish a delivery
for name in mailer smtp-sink; do
    f=$STATE/run/$name.pid
    if [ -f "$f" ]; then
        pid=$(cat "$f")
        if [ -n "$pid" ] && kill -TERM -- "-$pid" 2>/dev/null; then
            wait_group "$pid" 75
        fi
        rm -f "$f"
    fi
done
hs_pg_stop "$STATE/pg/data" || true
echo "stopped (state kept in $STATE)"
