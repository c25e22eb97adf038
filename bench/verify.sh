#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/verify.sh - successful POST /v1/public/signup/verify requests per
# second, for each token algorithm. Self-contained: builds the module if it
# is missing, starts a private PostgreSQL (demo data) and, per algorithm, a
# private httpd on 127.0.0.1; pre-creates pending customers with known codes
# (the HMAC computed in SQL with pgcrypto, as src/handle/signup.c stores it), and
# drives distinct (email, code) pairs with wrk and a Lua script, so every
# request is a real activation: one transaction, two signed tokens.
#
#   bench/verify.sh [HS256 RS256 ES256 EdDSA]   (as root; default: all four)
#
#   HYDRA_BENCH_SECS     seconds per algorithm (default 10)
#   HYDRA_BENCH_CONNS    wrk connections (default 16)
#   HYDRA_BENCH_THREADS  wrk threads (default 2)
#   HYDRA_BENCH_N        pending customers per algorithm (default 60000;
#                        a run stops early when they are used up)
#   HYDRA_BENCH_PORT     httpd port (default 8091)
#   HYDRA_BENCH_PG_PORT  PostgreSQL port (default 55491)
#   HYDRA_MODULE         the module (default: mod_hydra_signup.so of the tree)
#   HYDRA_KEEP=1         keep the work directory (logs, configs)
#
# Prints one line per algorithm: ok req/s, non-200 answers, activations in
# the database, latency percentiles.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../scripts/lib/common.sh
. "$SRC/scripts/lib/common.sh"
# shellcheck source=../scripts/lib/pg.sh
. "$SRC/scripts/lib/pg.sh"

[ "$(id -u)" -eq 0 ] || hs_die "run bench/verify.sh as root (PostgreSQL and httpd run as their own users)"

SECS=${HYDRA_BENCH_SECS:-10}
CONNS=${HYDRA_BENCH_CONNS:-16}
THREADS=${HYDRA_BENCH_THREADS:-2}
N=${HYDRA_BENCH_N:-60000}
PORT=${HYDRA_BENCH_PORT:-8091}
PG_PORT=${HYDRA_BENCH_PG_PORT:-55491}
MODULE=${HYDRA_MODULE:-$SRC/mod_hydra_signup.so}
ALGS=("$@")
[ ${#ALGS[@]} -gt 0 ] || ALGS=(HS256 RS256 ES256 EdDSA)
RUN_USER=www-data

command -v wrk >/dev/null 2>&1 || {
    hs_log "installing wrk"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null ||
        hs_die "apt-get install wrk failed"
}
hs_install_deps
if [ ! -f "$MODULE" ]; then
    hs_log "building the module in $SRC"
    hs_build "$SRC"
fi
[ -f "$MODULE" ] || hs_die "no module at $MODULE (set HYDRA_MODULE)"

W=$(mktemp -d /tmp/hydra-bench.XXXXXX)
chmod 755 "$W"
HTTPD_PID=
cleanup() {
    if [ -n "$HTTPD_PID" ] && [ -f "$W/run/httpd.pid" ]; then
        apache2 -f "$W/httpd.conf" -k stop >/dev/null 2>&1 || true
    fi
    hs_pg_stop "$W/pg/data" >/dev/null 2>&1 || true
    if [ "${HYDRA_KEEP:-0}" = 1 ]; then
        echo "work directory kept: $W" >&2
    else
        rm -rf "$W"
    fi
}
trap cleanup EXIT

hs_log "PostgreSQL on 127.0.0.1:$PG_PORT"
hs_pg_start "$W/pg/data" "$PG_PORT"
"$SRC/scripts/migrate.sh" "$PG_PORT" --demo >/dev/null
hs_make_keys "$W/keys"
mkdir -p "$W/spool" "$W/run" "$W/logs"
chown "$RUN_USER:$RUN_USER" "$W/spool" "$W/run" "$W/logs"
SECRET=$(tr -d '\n' <"$W/keys/code.secret")
MODS=$(hs_httpd_modules)

# the Lua side: thread t of T posts customers t, t+T, t+2T, ... up to N
cat >"$W/verify.lua" <<'LUA'
local n = tonumber(os.getenv("BENCH_N"))
local prefix = os.getenv("BENCH_PREFIX")
local nthreads = tonumber(os.getenv("BENCH_THREADS"))
local next_id = 1
function setup(thread)
    thread:set("tid", next_id)
    next_id = next_id + 1
end
function init(args)
    i = tid - nthreads
    wrk.method = "POST"
    wrk.path = "/v1/public/signup/verify"
    wrk.headers["Content-Type"] = "application/json"
end
function request()
    i = i + nthreads
    local k = i
    if k > n then k = n end -- used up: answered 400, and the thread stops
    local body = string.format(
        '{"code":"%06d","email":"%s-%d@bench.example.net","tenant_slug":"demo"}',
        k % 1000000, prefix, k)
    return wrk.format(nil, nil, nil, body)
end
function response(status, headers, body)
    if i > n then wrk.thread:stop() end
end
function done(summary, latency, requests)
    local bad = summary.errors.status
    local ok = summary.requests - bad
    io.write(string.format("RESULT %d %d %d %.1f %.1f %.1f\n", ok, bad,
        summary.duration, latency:percentile(50) / 1000,
        latency:percentile(99) / 1000, latency.max / 1000))
end
LUA

# pending customers for one run, codes HMAC'd as src/handle/signup.c does
make_customers() {
    local prefix=$1 n=$2
    hs_pg_psql "$PG_PORT" -v secret="$SECRET" -v prefix="$prefix" -v n="$n" \
        >/dev/null <<'SQL'
CREATE TEMP TABLE b AS
  SELECT gen_random_uuid() AS id, i FROM generate_series(1, :n) AS i;
INSERT INTO customers (id, tenant_id, company_name, email, plan, site_url,
                       status, created_at)
  SELECT b.id, t.id, 'Bench ' || b.i, :'prefix' || '-' || b.i || '@bench.example.net',
         'starter', 'https://' || :'prefix' || '-' || b.i || '.sites.example.net',
         'pending', now()
  FROM b, tenants t WHERE t.slug = 'demo';
INSERT INTO hydra_signup_codes (customer_id, code_hmac, expires_at)
  SELECT b.id,
         encode(hmac(b.id::text || ':' || lpad((b.i % 1000000)::text, 6, '0'),
                     :'secret', 'sha256'), 'hex'),
         now() + interval '1 day'
  FROM b;
ANALYZE customers;
ANALYZE hydra_signup_codes;
SQL
}

start_httpd() {
    local alg=$1 key
    key=$(hs_jwt_key_name "$alg") || hs_die "unknown algorithm $alg"
    cat >"$W/httpd.conf" <<CONF
ServerRoot "$W"
ServerName 127.0.0.1
Listen 127.0.0.1:$PORT
PidFile "$W/run/httpd.pid"
DefaultRuntimeDir "$W/run"
ErrorLog "$W/logs/error_log-$alg"
LogLevel warn
User $RUN_USER
Group $RUN_USER
LoadModule mpm_event_module $MODS/mod_mpm_event.so
LoadModule authz_core_module $MODS/mod_authz_core.so
LoadModule dbd_module $MODS/mod_dbd.so
LoadModule socache_shmcb_module $MODS/mod_socache_shmcb.so
LoadModule hydra_signup_module $MODULE
StartServers 2
ServerLimit 4
ThreadsPerChild 25
MaxRequestWorkers 100
KeepAliveTimeout 30
MaxKeepAliveRequests 0
DBDriver pgsql
DBDParams "$(hs_pg_dsn "$PG_PORT")"
DBDPersist On
DBDMin 1
DBDKeep 25
DBDMax 25
DBDExptime 300
HydraSignupJWTAlgorithm $alg
HydraSignupJWTKeyFile "$W/keys/$key"
HydraSignupCodeSecretFile "$W/keys/code.secret"
HydraSignupSpoolDir "$W/spool"
HydraSignupMailFrom "Bench <noreply@bench.example.net>"
HydraSignupRateLimit verify 1000000 1
<Location /v1/public/signup>
    SetHandler hydra-signup
    HydraSignupTenants demo
</Location>
CONF
    apache2 -t -f "$W/httpd.conf" >/dev/null 2>&1 ||
        { apache2 -t -f "$W/httpd.conf"; hs_die "httpd refused the configuration"; }
    apache2 -f "$W/httpd.conf" -k start
    HTTPD_PID=1
    local i
    for i in $(seq 50); do
        curl -fs -o /dev/null "http://127.0.0.1:$PORT/v1/public/signup/plans/demo" && return 0
        sleep 0.2
    done
    tail -n 20 "$W/logs/error_log-$alg" >&2
    hs_die "httpd did not answer on port $PORT"
}

stop_httpd() {
    apache2 -f "$W/httpd.conf" -k stop >/dev/null 2>&1 || true
    local i
    for i in $(seq 100); do [ -f "$W/run/httpd.pid" ] || break; sleep 0.1; done
    HTTPD_PID=
}

results=()
for alg in "${ALGS[@]}"; do
    prefix=$(echo "b-$alg" | tr '[:upper:]' '[:lower:]')
    hs_log "$alg: $N pending customers"
    make_customers "$prefix" "$N"
    make_customers "$prefix-warm" 2000
    start_httpd "$alg"
    # warm up: connections, prepared statements, one process per child
    BENCH_N=2000 BENCH_PREFIX="$prefix-warm" BENCH_THREADS=$THREADS \
        timeout 30 wrk -t"$THREADS" -c"$CONNS" -d2s -s "$W/verify.lua" \
        "http://127.0.0.1:$PORT" >/dev/null 2>&1 || true
    hs_log "$alg: wrk -t$THREADS -c$CONNS -d${SECS}s"
    out=$(BENCH_N=$N BENCH_PREFIX="$prefix" BENCH_THREADS=$THREADS \
        timeout $((SECS + 60)) wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" \
        -s "$W/verify.lua" "http://127.0.0.1:$PORT" 2>&1) ||
        { echo "$out" >&2; hs_die "wrk failed"; }
    stop_httpd
    read -r ok bad us p50 p99 max < <(echo "$out" | awk '/^RESULT/ { print $2, $3, $4, $5, $6, $7 }')
    active=$(hs_pg_psql "$PG_PORT" -At -c \
        "SELECT count(*) FROM customers WHERE status = 'active' AND email LIKE '$prefix-%' AND email NOT LIKE '$prefix-warm-%'")
    rps=$(awk -v ok="$ok" -v us="$us" 'BEGIN { printf "%.0f", ok / (us / 1e6) }')
    results+=("$(printf '%-6s %8s req/s  %6s ok  %5s non-200  %6s activated  p50 %6s ms  p99 %6s ms  max %7s ms' \
        "$alg" "$rps" "$ok" "$bad" "$active" "$p50" "$p99" "$max")")
    # requests still in flight when wrk stops are activated but not counted
    if [ "$active" -lt "$ok" ] || [ "$active" -gt $((ok + CONNS)) ]; then
        hs_log "$alg: $ok answers of 200 but $active activations in the database"
    fi
done

echo
echo "verify (activation + two tokens), $(nproc) CPUs, wrk -t$THREADS -c$CONNS, ${SECS}s each:"
printf '%s\n' "${results[@]}"
