#!/usr/bin/env bash
# scripts/test.sh - the one command that runs every test on a fresh Debian 12
# machine, as root: installs what is missing, builds a copy of the tree,
# starts a private PostgreSQL, runs the C unit tests, the Apache::Test suite
# (real httpd + module + PostgreSQL) and the mail sender's tests, and ends
# with one line "N passed, N failed". Exit status non-zero on any failure.
#
#   HYDRA_TEST_PG_PORT   PostgreSQL port for the run (default 55433)
#   HYDRA_TEST_USER      unprivileged user that runs httpd (default hydratest)
#   HYDRA_SANITIZE=1     build with ASan+UBSan and run httpd with it
#   HYDRA_KEEP=1         keep the work directory (logs) afterwards
#   any arguments        passed to t/TEST (e.g. t/plans.t) - unit tests and
#                        mailer tests are then skipped
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/common.sh
. "$SRC/scripts/lib/common.sh"
# shellcheck source=lib/pg.sh
. "$SRC/scripts/lib/pg.sh"

[ "$(id -u)" -eq 0 ] || hs_die "run scripts/test.sh as root (it installs packages and switches users)"

PG_PORT=${HYDRA_TEST_PG_PORT:-55433}
TUSER=${HYDRA_TEST_USER:-hydratest}
SAN=${HYDRA_SANITIZE:-0}

hs_install_deps
id "$TUSER" >/dev/null 2>&1 || useradd --system --create-home --shell /bin/bash "$TUSER"

WORK=$(mktemp -d /tmp/hydra-test.XXXXXX)
chmod 755 "$WORK"
TREE=$WORK/src
STATE=$WORK/state
PGDATA_DIR=$WORK/pg/data

cleanup() {
    runuser -u "$TUSER" -- bash -c ". '$SRC/scripts/lib/pg.sh'; hs_pg_stop '$PGDATA_DIR'" >/dev/null 2>&1 || true
    if [ "${HYDRA_KEEP:-0}" = 1 ]; then
        echo "work directory kept: $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

hs_log "copying the tree to $TREE"
mkdir -p "$TREE"
(cd "$SRC" && git ls-files -co --exclude-standard -z 2>/dev/null | tar --null -T - -cf -) | tar -C "$TREE" -xf -

hs_log "building$([ "$SAN" = 1 ] && echo ' with AddressSanitizer + UBSan')"
conf_args=()
[ "$SAN" = 1 ] && conf_args+=(--enable-sanitizers)
hs_build "$TREE" "${conf_args[@]}"

pass=0
fail=0
add_counts() { pass=$((pass + $1)); fail=$((fail + $2)); }

# ---- C unit tests (Check) -----------------------------------------------
if [ $# -eq 0 ]; then
    hs_log "unit tests"
    set +e
    (cd "$TREE" && make -s check >"$WORK/unit.log" 2>&1)
    set -e
    upass=0 ufail=0
    for log in "$TREE"/tests/unit/*.log; do
        [ -f "$log" ] || continue
        line=$(grep -E '^[0-9]+%: Checks: [0-9]+' "$log" | tail -n 1 || true)
        if [ -n "$line" ]; then
            c=$(echo "$line" | sed -E 's/.*Checks: ([0-9]+).*/\1/')
            f=$(echo "$line" | sed -E 's/.*Failures: ([0-9]+).*/\1/')
            e=$(echo "$line" | sed -E 's/.*Errors: ([0-9]+).*/\1/')
            upass=$((upass + c - f - e))
            ufail=$((ufail + f + e))
        else
            ufail=$((ufail + 1)) # crashed before reporting
        fi
        if grep -qE 'Failures: [1-9]|Errors: [1-9]|ERROR|runtime error|AddressSanitizer' "$log"; then
            grep -E ':[EF]:|runtime error|AddressSanitizer' "$log" | head -20 >&2 || true
        fi
    done
    echo "unit: $upass passed, $ufail failed" >&2
    add_counts "$upass" "$ufail"
fi

# ---- PostgreSQL, owned by the test user so fault tests can stop it -------
hs_log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
mkdir -p "$WORK/pg"
chown "$TUSER" "$WORK/pg"
runuser -u "$TUSER" -- bash -c ". '$SRC/scripts/lib/pg.sh'; hs_pg_start '$PGDATA_DIR' '$PG_PORT'"
runuser -u "$TUSER" -- "$SRC/scripts/migrate.sh" "$PG_PORT" --demo >/dev/null

hs_log "keys and spool in $STATE"
mkdir -p "$STATE/spool"
hs_make_keys "$STATE"
chown -R "$TUSER" "$STATE" "$TREE"

MODS=$(hs_httpd_modules)
export HYDRA_DBD_PARAMS
HYDRA_DBD_PARAMS=$(hs_pg_dsn "$PG_PORT")
export HYDRA_PG_DSN="host=127.0.0.1;port=$PG_PORT;dbname=hydra;user=hydra;password=hydra"
export HYDRA_PG_DATA=$PGDATA_DIR
export HYDRA_PG_BIN=$HS_PG_BIN
export HYDRA_PG_PORT=$PG_PORT
export HYDRA_STATE=$STATE
export HYDRA_HTTPD_MODULES=$MODS
export HYDRA_MODULE=$TREE/mod_hydra_signup.so
export HYDRA_MAILER=$TREE/hydra-signup-mailer
export HYDRA_SRC=$TREE
preload=()
if [ "$SAN" = 1 ]; then
    asan=$(gcc -print-file-name=libasan.so)
    ubsan=$(gcc -print-file-name=libubsan.so)
    preload=(LD_PRELOAD="$asan:$ubsan"
        ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:log_path=$WORK/asan:verify_asan_link_order=0"
        UBSAN_OPTIONS="print_stacktrace=1:log_path=$WORK/ubsan")
    chmod 777 "$WORK"
fi

# ---- Apache::Test --------------------------------------------------------
hs_log "Apache::Test suite"
set +e
(cd "$TREE" && runuser -u "$TUSER" --preserve-environment -- env "${preload[@]}" HOME="$(getent passwd "$TUSER" | cut -d: -f6)" \
    perl t/TEST.PL -apxs "$(command -v apxs)" -httpd_conf /etc/apache2/apache2.conf "$@") >"$WORK/apache-test.log" 2>&1
at_rc=$?
set -e
cat "$WORK/apache-test.log"
total=$(grep -E '^Files=[0-9]+, Tests=[0-9]+' "$WORK/apache-test.log" | sed -E 's/.*Tests=([0-9]+).*/\1/' | tail -n 1)
failed_sub=$(grep -oE 'Failed [0-9]+/[0-9]+ subtests' "$WORK/apache-test.log" | awk -F'[ /]' '{s+=$2} END {print s+0}')
total=${total:-0}
if [ "$at_rc" -ne 0 ] && [ "$failed_sub" -eq 0 ]; then
    failed_sub=1 # the harness itself failed (server did not start, a test died)
    [ -f "$TREE/t/logs/error_log" ] && tail -n 40 "$TREE/t/logs/error_log" >&2
fi
echo "apache-test: $((total - failed_sub > 0 ? total - failed_sub : 0)) passed, $failed_sub failed" >&2
add_counts $((total - failed_sub > 0 ? total - failed_sub : 0)) "$failed_sub"

# ---- the mail sender -----------------------------------------------------
if [ $# -eq 0 ] && [ -d "$TREE/tests/mailer" ]; then
    hs_log "mail sender tests"
    set +e
    (cd "$TREE" && runuser -u "$TUSER" --preserve-environment -- env "${preload[@]}" prove tests/mailer/) >"$WORK/mailer.log" 2>&1
    m_rc=$?
    set -e
    cat "$WORK/mailer.log"
    mtotal=$(grep -E '^Files=[0-9]+, Tests=[0-9]+' "$WORK/mailer.log" | sed -E 's/.*Tests=([0-9]+).*/\1/' | tail -n 1)
    mfail=$(grep -oE 'Failed: [0-9]+' "$WORK/mailer.log" | awk '{s+=$2} END {print s+0}')
    mtotal=${mtotal:-0}
    [ "$m_rc" -ne 0 ] && [ "$mfail" -eq 0 ] && mfail=1
    echo "mailer: $((mtotal - mfail > 0 ? mtotal - mfail : 0)) passed, $mfail failed" >&2
    add_counts $((mtotal - mfail > 0 ? mtotal - mfail : 0)) "$mfail"
fi

# ---- sanitizer reports fail the run --------------------------------------
if [ "$SAN" = 1 ] && compgen -G "$WORK/asan*" >/dev/null || compgen -G "$WORK/ubsan*" >/dev/null; then
    echo "sanitizer reports:" >&2
    cat "$WORK"/asan* "$WORK"/ubsan* 2>/dev/null | head -80 >&2
    add_counts 0 1
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
