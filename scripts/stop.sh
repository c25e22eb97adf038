#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# scripts/stop.sh - ends what scripts/run.sh started (same HYDRA_STATE_DIR).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/pg.sh
. "$SRC/scripts/lib/pg.sh"
STATE=${HYDRA_STATE_DIR:-/var/tmp/hydra-signup}
[ -d "$STATE" ] || { echo "nothing to stop in $STATE"; exit 0; }
if [ -f "$STATE/httpd.conf" ] && [ -f "$STATE/run/httpd.pid" ]; then
    apache2 -f "$STATE/httpd.conf" -k stop 2>/dev/null || true
fi
for name in mailer smtp-sink; do
    f=$STATE/run/$name.pid
    if [ -f "$f" ]; then
        kill "$(cat "$f")" 2>/dev/null || true
        rm -f "$f"
    fi
done
hs_pg_stop "$STATE/pg/data" || true
echo "stopped (state kept in $STATE)"
