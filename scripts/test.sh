#!/usr/bin/env bash
# scripts/test.sh - the one command that runs every test on a fresh Debian 12
# machine, as root: installs what is missing, builds a copy of the tree,
# starts a private PostgreSQL, runs the C unit tests, the Apache::Test suite
# (real httpd + module + PostgreSQL) and the mail sender's tests, and ends
# with one line "N passed, N failed". Exit status non-zero on any failure.
#
#   HYDRA_TEST_PG_PORT   PostgreSQL port (default: the first free from 55433)
#   HYDRA_TEST_HTTP_PORT httpd port for Apache::Test (default: a free one)
#   HYDRA_TEST_USER      unprivileged user that runs httpd (default hydratest)
#   HYDRA_SANITIZE=1     build with ASan+UBSan and run httpd with it
#   HYDRA_KEEP=1         keep the work directory (logs) afterwards
#   HYDRA_SCREENSHOTS    where t/page.t saves its browser screenshots
#                        (default: t/logs/screenshots in the work directory)
#   any arguments        passed to t/TEST (e.g. t/plans.t) - unit tests and
#                        mailer tests are then skipped
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/common.sh
. "$SRC/scripts/lib/common.sh"
# shellcheck source=lib/pg.sh
. "$SRC/scripts/lib/pg.sh"

[ "$(id -u)" -eq 0 ] || hs_die "run scripts/test.sh as root (it installs packages and switches users)"

# the first free port from 55433 on, so that several runs can share a machine
free_port() {
    local p
    for p in $(seq "$1" $(($1 + 200))); do
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
    done
    hs_die "no free port from $1 on"
}
PG_PORT=${HYDRA_TEST_PG_PORT:-$(free_port 55433)}
TUSER=${HYDRA_TEST_USER:-hydratest}
SAN=${HYDRA_SANITIZE:-0}

hs_install_deps
id "$TUSER" >/dev/null 2>&1 || useradd --system --create-home --shell /bin/bash "$TUSER"

WORK=$(mktemp -d /tmp/hydra-test.XXXXXX)
chmod 755 "$WORK"
TREE=$WORK/src
STATE=$WORK/state
PGDATA_DIR=$WORK/pg/data

SMALL_MNT=
cleanup() {
    runuser -u "$TUSER" -- bash -c ". '$SRC/scripts/lib/pg.sh'; hs_pg_stop '$PGDATA_DIR'" >/dev/null 2>&1 || true
    if [ -n "$SMALL_MNT" ]; then umount "$SMALL_MNT" 2>/dev/null || umount -l "$SMALL_MNT" || true; fi
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
# another run on this machine may take the port between our look and the
# server's bind: then the next free one (unless a port was asked for)
for try in 1 2 3 4 5; do
    runuser -u "$TUSER" -- bash -c ". '$SRC/scripts/lib/pg.sh'; hs_pg_start '$PGDATA_DIR' '$PG_PORT'" && break
    [ -z "${HYDRA_TEST_PG_PORT:-}" ] && [ "$try" -lt 5 ] || hs_die "PostgreSQL did not start"
    PG_PORT=$(free_port $((PG_PORT + 1)))
    hs_log "retrying PostgreSQL on 127.0.0.1:$PG_PORT"
done
runuser -u "$TUSER" -- "$SRC/scripts/migrate.sh" "$PG_PORT" --demo >/dev/null

hs_log "keys and spool in $STATE"
mkdir -p "$STATE/spool" "$STATE/spool-small"
# t/fault_spool.t fills spool-small: a 256 KiB tmpfs where mount is permitted
if mount -t tmpfs -o "size=256k,mode=0755,uid=$(id -u "$TUSER"),gid=$(id -g "$TUSER")" tmpfs "$STATE/spool-small" 2>/dev/null; then
    SMALL_MNT=$STATE/spool-small
else
    hs_log "cannot mount a tmpfs on $STATE/spool-small: the spool-full test will skip"
fi
hs_make_keys "$STATE"
chown -R "$TUSER:$TUSER" "$STATE" "$TREE"

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
# With sanitizers only httpd gets the runtimes preloaded (through a wrapper
# given to Apache::Test as the httpd binary): PostgreSQL, perl and the SMTP
# sink run as usual.
httpd_bin=$(apxs -q SBINDIR)/$(apxs -q TARGET)
san_env=()
if [ "$SAN" = 1 ]; then
    asan=$(gcc -print-file-name=libasan.so)
    ubsan=$(gcc -print-file-name=libubsan.so)
    san_env=(ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:log_path=$WORK/asan:verify_asan_link_order=0"
        UBSAN_OPTIONS="print_stacktrace=1:log_path=$WORK/ubsan")
    cat >"$WORK/httpd-san" <<WRAP
#!/bin/sh
LD_PRELOAD="$asan:$ubsan" exec "$httpd_bin" "\$@"
WRAP
    chmod 755 "$WORK/httpd-san"
    httpd_bin=$WORK/httpd-san
    chmod 777 "$WORK"
fi

# t/page.t's browser screenshots: where HYDRA_SCREENSHOTS says (made
# writable for the test user), else t/logs/screenshots in the work tree
if [ -n "${HYDRA_SCREENSHOTS:-}" ]; then
    mkdir -p "$HYDRA_SCREENSHOTS"
    HYDRA_SCREENSHOTS=$(cd "$HYDRA_SCREENSHOTS" && pwd)
    chown "$TUSER" "$HYDRA_SCREENSHOTS"
    export HYDRA_SCREENSHOTS
fi

# ---- Apache::Test --------------------------------------------------------
hs_log "Apache::Test suite"
set +e
(cd "$TREE" && runuser -u "$TUSER" --preserve-environment -- env "${san_env[@]}" HOME="$(getent passwd "$TUSER" | cut -d: -f6)" \
    perl t/TEST.PL -apxs "$(command -v apxs)" -httpd "$httpd_bin" -httpd_conf /etc/apache2/apache2.conf \
    -port "${HYDRA_TEST_HTTP_PORT:-select}" "$@") >"$WORK/apache-test.log" 2>&1
at_rc=$?
set -e
cat "$WORK/apache-test.log"
# Test::Harness's summary: "Failed F/T test programs. X/Y subtests failed."
# counts what ran; a file that died early adds one failure of its own.
harness_counts() { # LOG RC -> "passed failed"
    local log=$1 rc=$2 total bad died
    total=$(grep -E '^Files=[0-9]+, Tests=[0-9]+' "$log" | sed -E 's/.*Tests=([0-9]+).*/\1/' | tail -n 1 || true)
    bad=$(grep -oE '[0-9]+/[0-9]+ subtests failed' "$log" | tail -n 1 | cut -d/ -f1 || true)
    # a file that died before its plan was done: "Parse errors: Bad plan"
    died=$(grep -cE '^ +Parse errors:' "$log" || true)
    total=${total:-0} bad=${bad:-0}
    if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ] && [ "$died" -eq 0 ]; then
        died=1 # the harness itself failed (server did not start)
    fi
    echo "$((total - bad)) $((bad + died))"
}
read -r apass afail < <(harness_counts "$WORK/apache-test.log" "$at_rc")
if [ "$afail" -gt 0 ] && [ -f "$TREE/t/logs/error_log" ]; then
    grep -E '\[(crit|error|emerg|alert)\]|Segmentation|AddressSanitizer' "$TREE/t/logs/error_log" | tail -n 30 >&2 || true
fi
echo "apache-test: $apass passed, $afail failed" >&2
add_counts "$apass" "$afail"

# ---- the mail sender -----------------------------------------------------
if [ $# -eq 0 ] && [ -d "$TREE/tests/mailer" ]; then
    hs_log "mail sender tests"
    set +e
    (cd "$TREE" && runuser -u "$TUSER" --preserve-environment -- env "${san_env[@]}" prove tests/mailer/) >"$WORK/mailer.log" 2>&1
    m_rc=$?
    set -e
    cat "$WORK/mailer.log"
    read -r mpass mfail < <(harness_counts "$WORK/mailer.log" "$m_rc")
    echo "mailer: $mpass passed, $mfail failed" >&2
    add_counts "$mpass" "$mfail"
fi

# ---- sanitizer reports fail the run --------------------------------------
if [ "$SAN" = 1 ] && { compgen -G "$WORK/asan*" || compgen -G "$WORK/ubsan*"; } >/dev/null; then
    echo "sanitizer reports:" >&2
    cat "$WORK"/asan* "$WORK"/ubsan* 2>/dev/null | head -80 >&2
    add_counts 0 1
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
