#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/signup.sh - POST /v1/public/signup requests per second against a
# running server (by default the one scripts/run.sh starts), with wrk and
# bench/signup.lua: every request a new address and company name, so each is
# a real signup (one transaction, one node slot, one hashed code, one mail).
#
#   bench/signup.sh [BASE_URL]     default http://127.0.0.1:8080
#
#   HYDRA_PG_PORT         the server's PostgreSQL on 127.0.0.1 (default 55432,
#                         role and database hydra, as scripts/run.sh has it)
#   HYDRA_BENCH_SECS      duration (default 20)
#   HYDRA_BENCH_THREADS   wrk threads (default 2)
#   HYDRA_BENCH_CONNS     wrk connections (default 16)
#   HYDRA_BENCH_TENANT    tenant slug (default demo)
#   HYDRA_STATE_DIR       scripts/run.sh's state directory (default
#                         /var/tmp/hydra-signup): the bench's messages are
#                         removed from its spool and mail sink afterwards
#
# Before the run the tenant's active shared nodes get room for every request
# (capacity raised); afterwards the bench's customers (addresses
# @bench.example.net), their codes and mail log rows are deleted, each
# node's used is recounted and its capacity restored. The server must let
# one client send this many signups: HydraSignupRateLimit signup (default
# 10 per 60 s) answers the rest with 429, which the summary reports.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../scripts/lib/common.sh
. "$SRC/scripts/lib/common.sh"
# shellcheck source=../scripts/lib/pg.sh
. "$SRC/scripts/lib/pg.sh"

BASE=${1:-http://127.0.0.1:8080}
BASE=${BASE%/}
PG_PORT=${HYDRA_PG_PORT:-55432}
SECS=${HYDRA_BENCH_SECS:-20}
THREADS=${HYDRA_BENCH_THREADS:-2}
CONNS=${HYDRA_BENCH_CONNS:-16}
TENANT=${HYDRA_BENCH_TENANT:-demo}
STATE=${HYDRA_STATE_DIR:-/var/tmp/hydra-signup}
RUN=$(date +%s)$$
# the URL's path, for wrk's Lua side (wrk itself gets scheme://host:port)
case "$BASE" in
    http://*/* | https://*/*) ;;
    *) BASE=$BASE/v1/public/signup ;;
esac
HOSTPART=$(echo "$BASE" | sed -E 's#^(https?://[^/]+).*#\1#')
URLPATH=$(echo "$BASE" | sed -E 's#^https?://[^/]+##')
[ -n "$URLPATH" ] && [ "$URLPATH" != / ] || URLPATH=/v1/public/signup

if ! command -v wrk >/dev/null 2>&1; then
    [ "$(id -u)" -eq 0 ] || hs_die "wrk is not installed (apt-get install -y wrk)"
    hs_log "installing wrk"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null ||
        hs_die "apt-get install wrk failed"
fi
command -v psql >/dev/null 2>&1 || _hs_pg_find_bin ||
    hs_die "psql not found (install postgresql-client)"

psql_q() { hs_pg_psql "$PG_PORT" -At "$@"; }

curl -fs -o /dev/null --max-time 5 "$HOSTPART$URLPATH/plans/$TENANT" ||
    hs_die "no answer from $HOSTPART$URLPATH/plans/$TENANT (is scripts/run.sh running?)"
psql_q -c 'SELECT 1' >/dev/null ||
    hs_die "cannot reach PostgreSQL on 127.0.0.1:$PG_PORT (set HYDRA_PG_PORT)"
TID=$(psql_q -v slug="$TENANT" <<'SQL'
SELECT id FROM tenants WHERE slug = :'slug'
SQL
)
[ -n "$TID" ] || hs_die "no tenant '$TENANT' in the database on port $PG_PORT"

# the nodes' capacities, restored afterwards: "id capacity" lines
SAVED=$(psql_q -F ' ' -v tid="$TID" <<'SQL'
SELECT id, capacity FROM nodes
WHERE tenant_id = :'tid' AND kind = 'shared' AND active ORDER BY id
SQL
)
[ -n "$SAVED" ] || hs_die "tenant '$TENANT' has no active shared node"

# deletes the bench's rows (of this or an interrupted run), recounts used
cleanup_db() {
    psql_q -v tid="$TID" >/dev/null <<'SQL'
BEGIN;
DELETE FROM customers WHERE tenant_id = :'tid' AND email LIKE 'bench-%@bench.example.net';
DELETE FROM hydra_signup_mail_log WHERE tenant_id = :'tid'
    AND email_lower LIKE 'bench-%@bench.example.net';
UPDATE nodes n SET used = (SELECT count(*) FROM customers c WHERE c.node_id = n.id)
WHERE n.tenant_id = :'tid';
COMMIT;
SQL
}

restored=0
restore() {
    [ "$restored" = 0 ] || return 0
    restored=1
    hs_log "removing the bench's customers, restoring capacities"
    cleanup_db || echo "warning: could not delete the bench's customers" >&2
    local id cap
    while read -r id cap; do
        [ -n "$id" ] || continue
        psql_q -v id="$id" -v cap="$cap" >/dev/null <<'SQL' ||
UPDATE nodes SET capacity = GREATEST(:'cap'::int, used) WHERE id = :'id'
SQL
            echo "warning: could not restore the capacity of node $id" >&2
    done <<<"$SAVED"
    # the bench's messages, queued or already delivered to the sink
    local d
    for d in "$STATE/spool/new" "$STATE/spool/cur" "$STATE/spool/dead" "$STATE/mail"; do
        [ -d "$d" ] && [ -r "$d" ] || continue
        grep -rlZ -e '@bench\.example\.net' "$d" 2>/dev/null | xargs -0 -r rm -f -- || true
    done
}
trap restore EXIT

hs_log "tenant $TENANT: room for every request on its shared nodes"
cleanup_db
psql_q -v tid="$TID" >/dev/null <<'SQL'
UPDATE nodes SET capacity = used + 10000000
WHERE tenant_id = :'tid' AND kind = 'shared' AND active
SQL

hs_log "wrk: $SECS s, $THREADS threads, $CONNS connections -> $HOSTPART$URLPATH"
OUT=$(BENCH_PATH="$URLPATH" BENCH_RUN="$RUN" BENCH_TENANT="$TENANT" \
    wrk -t "$THREADS" -c "$CONNS" -d "${SECS}s" --timeout 10s \
        -s "$SRC/bench/signup.lua" "$HOSTPART")
echo "$OUT" | grep -v '^RESULT' >&2
read -r _ total created limited full other sockerr dur mean p50 p99 max \
    < <(echo "$OUT" | grep '^RESULT')

stored=$(psql_q -v tid="$TID" -v run="$RUN" <<'SQL'
SELECT count(*) FROM customers WHERE tenant_id = :'tid'
    AND email LIKE 'bench-' || :'run' || '-%@bench.example.net'
SQL
)
bad=$(psql_q -v tid="$TID" <<'SQL'
SELECT count(*) FROM nodes n WHERE n.tenant_id = :'tid'
    AND n.used <> (SELECT count(*) FROM customers c WHERE c.node_id = n.id)
SQL
)
awk -v total="$total" -v created="$created" -v limited="$limited" \
    -v full="$full" -v other="$other" -v sockerr="$sockerr" -v dur="$dur" \
    -v mean="$mean" -v p50="$p50" -v p99="$p99" -v max="$max" \
    -v stored="$stored" -v bad="$bad" -v cores="$(nproc)" 'BEGIN {
    s = dur / 1e6
    printf "signup: %.1f requests/s (%d in %.1f s), %.1f signups/s (201)\n",
        total / s, total, s, created / s
    printf "latency: mean %.2f ms, p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
        mean / 1000, p50 / 1000, p99 / 1000, max / 1000
    printf "answers: %d 201, %d 429, %d 503, %d other, %d socket errors\n",
        created, limited, full, other, sockerr
    printf "database: %d customers stored for %d 201s (requests in flight when wrk stopped commit too), %d nodes with used != customers\n",
        stored, created, bad
    printf "machine: %d cores\n", cores
    if (limited > 0)
        print "note: 429s - the server rate-limits this client (HydraSignupRateLimit signup)"
}'
