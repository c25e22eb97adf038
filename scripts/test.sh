#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# scripts/test.sh - the one command that runs every test on a fresh Debian 12
# machine, as root: installs what is missing, builds a copy of the tree,
# starts a private PostgreSQL, and runs the parts below. Every part's tests
# are counted from their TAP (scripts/lib/HydraCount.pm), and the run ends
# with one line "N passed, N failed, N skipped". Exit status non-zero on any
# failure, on a part that could not build or run, on a sanitizer report,
# and on any skip not listed in tests/expected-skips.
#
# Parts (HYDRA_PARTS, default all of them; with arguments only "apache"):
#   unit      the C unit tests and the fuzz corpus replays (make check)
#   apache    the Apache::Test suite in t/ (real httpd + module + PostgreSQL)
#   mailer    the mail sender's tests in tests/mailer/ (real SMTP sink)
#   lint      tests/lint/*.t (the OpenAPI document through a linter)
#   package   tests/package/*.t, as root (Debian packages built and used)
#   testcmd   tests/testcmd/*.t, as root (this command from a private checkout)
#   fuzz      each libFuzzer harness for HYDRA_FUZZ_TIME seconds (default 10)
#
#   HYDRA_TEST_PG_PORT   PostgreSQL port (default: the first free from 55433)
#   HYDRA_TEST_HTTP_PORT httpd port for Apache::Test (default: a free one)
#   HYDRA_TEST_USER      unprivileged user that runs httpd (default hydratest)
#   HYDRA_SANITIZE=1     build with ASan+UBSan and run httpd with it
#   HYDRA_KEEP=1         keep the work directory (logs) afterwards
#   HYDRA_SCREENSHOTS    where t/page.t saves its browser screenshots
#                        (default: t/logs/screenshots in the work directory)
#   any arguments        passed to t/TEST (e.g. t/plans.t); only the
#                        Apache::Test part runs then
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/common.sh
. "$SRC/scripts/lib/common.sh"

[ "$(id -u)" -eq 0 ] || hs_die "run scripts/test.sh as root (it installs packages and switches users)"

ALL_PARTS="unit apache mailer lint package testcmd fuzz"
if [ $# -gt 0 ]; then
    PARTS=${HYDRA_PARTS:-apache}
else
    PARTS=${HYDRA_PARTS:-$ALL_PARTS}
fi
for p in $PARTS; do
    case " $ALL_PARTS " in *" $p "*) ;; *) hs_die "HYDRA_PARTS: unknown part '$p' (parts: $ALL_PARTS)" ;; esac
done
want() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }

# the first free port from $1 on, so that several runs can share a machine
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

# Everything the unprivileged user reads (the tree, scripts/lib/pg.sh, the
# migrations) comes from this copy, never from the checkout: a checkout may
# live where that user cannot look (root's home is 0700).
WORK=$(mktemp -d /tmp/hydra-test.XXXXXX)
chmod 755 "$WORK"
TREE=$WORK/src
STATE=$WORK/state
PGDATA_DIR=$WORK/pg/data
COUNTS=$WORK/counts
mkdir -p "$COUNTS"

SMALL_MNT=
PG_STARTED=0
cleanup() {
    if [ "$PG_STARTED" = 1 ]; then
        runuser -u "$TUSER" -- bash -c ". '$TREE/scripts/lib/pg.sh'; hs_pg_stop '$PGDATA_DIR'" >/dev/null 2>&1 || true
    fi
    if [ -n "$SMALL_MNT" ]; then umount "$SMALL_MNT" 2>/dev/null || umount -l "$SMALL_MNT" || true; fi
    if [ "${HYDRA_KEEP:-0}" = 1 ]; then
        echo "work directory kept: $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

# one line for a failure outside any harness: PART NAME
count_failure() { printf 'FILE\t%s\t0\t1\t0\n' "$2" >>"$COUNTS/$1"; }
# prove with the counting harness; COUNTFILE then prove's arguments
hprove() {
    local out=$1
    shift
    HYDRA_COUNT_FILE=$out PERL5LIB=$TREE/scripts/lib${PERL5LIB:+:$PERL5LIB} \
        prove --harness HydraCount "$@"
}

hs_log "copying the tree to $TREE"
mkdir -p "$TREE"
# a git checkout: the files git tracks or would track; else (an unpacked
# tarball, a copy) every file
if git -C "$SRC" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$SRC" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) | tar -C "$TREE" -xf -
else
    tar -C "$SRC" --exclude=./.state -cf - . | tar -C "$TREE" -xf -
fi
chmod -R a+rX "$TREE"
cd "$WORK" # not the checkout: the test user may not be able to look there

hs_log "building$([ "$SAN" = 1 ] && echo ' with AddressSanitizer + UBSan')"
conf_args=()
[ "$SAN" = 1 ] && conf_args+=(--enable-sanitizers)
hs_build "$TREE" "${conf_args[@]}"

# ---- C unit tests (Check) and fuzz corpus replays: make check ------------
# Built first (a test that does not compile fails the part), then run
# through prove so that every check counts; Check writes TAP to stdout.
if want unit; then
    hs_log "unit tests"
    : >"$COUNTS/unit"
    if ! (cd "$TREE" && make -s check TESTS= >"$WORK/unit-build.log" 2>&1); then
        tail -n 40 "$WORK/unit-build.log" >&2
        count_failure unit "unit tests did not build (make check)"
    fi
    mapfile -t utests < <(cd "$TREE" && make -s --no-print-directory print-check-tests)
    have=0
    for t in "${utests[@]}"; do [[ $t == tests/unit/test_* ]] && have=$((have + 1)); done
    want_n=$(find "$TREE/tests/unit" -maxdepth 1 -name 'test_*.c' | wc -l)
    if [ "$have" -lt "$want_n" ]; then
        count_failure unit "only $have of $want_n unit suites (tests/unit/test_*.c) are in TESTS"
    fi
    present=()
    for t in "${utests[@]}"; do
        if [ -x "$TREE/$t" ]; then present+=("$t"); else count_failure unit "$t was not built"; fi
    done
    if [ ${#present[@]} -gt 0 ]; then
        set +e
        (cd "$TREE" && CK_TAP_LOG_FILE_NAME=- hprove "$COUNTS/unit" --exec '' "${present[@]}") \
            >"$WORK/unit.log" 2>&1
        set -e
        grep -vE '^ok |^# ' "$WORK/unit.log" | grep -vE '^[0-9]+%: Checks:' | tail -n 60 >&2 || true
    fi
fi

# ---- PostgreSQL, owned by the test user so fault tests can stop it -------
needs_pg=0
for p in apache package; do want $p && needs_pg=1; done
if [ "$needs_pg" = 1 ]; then
    hs_log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    mkdir -p "$WORK/pg"
    chown "$TUSER" "$WORK/pg"
    # another run on this machine may take the port between our look and the
    # server's bind: then the next free one (unless a port was asked for)
    for try in 1 2 3 4 5; do
        PG_STARTED=1
        runuser -u "$TUSER" -- bash -c ". '$TREE/scripts/lib/pg.sh'; hs_pg_start '$PGDATA_DIR' '$PG_PORT'" && break
        [ -z "${HYDRA_TEST_PG_PORT:-}" ] && [ "$try" -lt 5 ] || hs_die "PostgreSQL did not start"
        PG_PORT=$(free_port $((PG_PORT + 1)))
        hs_log "retrying PostgreSQL on 127.0.0.1:$PG_PORT"
    done
    runuser -u "$TUSER" -- "$TREE/scripts/migrate.sh" "$PG_PORT" --demo >/dev/null
fi

hs_log "keys and spool in $STATE"
mkdir -p "$STATE/spool" "$STATE/spool-small"
# t/fault_spool.t fills spool-small: a 256 KiB tmpfs (without it, that test
# reports skips, and an unlisted skip fails the run)
if mount -t tmpfs -o "size=256k,mode=0755,uid=$(id -u "$TUSER"),gid=$(id -g "$TUSER")" tmpfs "$STATE/spool-small" 2>/dev/null; then
    SMALL_MNT=$STATE/spool-small
else
    hs_log "cannot mount a tmpfs on $STATE/spool-small: the spool-full test will skip"
fi
hs_make_keys "$STATE"
chown -R "$TUSER:$TUSER" "$STATE" "$TREE" "$COUNTS"

. "$TREE/scripts/lib/pg.sh"
_hs_pg_find_bin || true
export HYDRA_DBD_PARAMS
HYDRA_DBD_PARAMS=$(hs_pg_dsn "$PG_PORT")
export HYDRA_PG_DSN="host=127.0.0.1;port=$PG_PORT;dbname=hydra;user=hydra;password=hydra"
export HYDRA_PG_DATA=$PGDATA_DIR
export HYDRA_PG_BIN=$HS_PG_BIN
export HYDRA_PG_PORT=$PG_PORT
export HYDRA_STATE=$STATE
export HYDRA_HTTPD_MODULES
HYDRA_HTTPD_MODULES=$(hs_httpd_modules)
export HYDRA_MODULE=$TREE/mod_hydra_signup.so
export HYDRA_MAILER=$TREE/hydra-signup-mailer
export HYDRA_SRC=$TREE
export HYDRA_CHECKOUT=$SRC
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
as_user() {
    runuser -u "$TUSER" --preserve-environment -- env "${san_env[@]}" \
        HOME="$(getent passwd "$TUSER" | cut -d: -f6)" "$@"
}

# t/page.t's browser screenshots: where HYDRA_SCREENSHOTS says (made
# writable for the test user), else t/logs/screenshots in the work tree
if [ -n "${HYDRA_SCREENSHOTS:-}" ]; then
    mkdir -p "$HYDRA_SCREENSHOTS"
    HYDRA_SCREENSHOTS=$(cd "$HYDRA_SCREENSHOTS" && pwd)
    chown "$TUSER" "$HYDRA_SCREENSHOTS"
    export HYDRA_SCREENSHOTS
fi

# ---- Apache::Test --------------------------------------------------------
if want apache; then
    hs_log "Apache::Test suite"
    install -o "$TUSER" -m 644 /dev/null "$COUNTS/apache"
    set +e
    (cd "$TREE" && as_user HARNESS_SUBCLASS=HydraCount HYDRA_COUNT_FILE="$COUNTS/apache" \
        PERL5LIB="$TREE/scripts/lib" \
        perl t/TEST.PL -apxs "$(command -v apxs)" -httpd "$httpd_bin" -httpd_conf /etc/apache2/apache2.conf \
        -port "${HYDRA_TEST_HTTP_PORT:-select}" "$@") >"$WORK/apache-test.log" 2>&1
    at_rc=$?
    set -e
    cat "$WORK/apache-test.log"
    if [ "$at_rc" -ne 0 ] && ! grep -qP '\t[1-9][0-9]*\t[0-9]+$' "$COUNTS/apache"; then
        count_failure apache "t/TEST exited $at_rc with no failed test counted (the server did not start?)"
    fi
    if [ "$at_rc" -ne 0 ] && [ -f "$TREE/t/logs/error_log" ]; then
        grep -E '\[(crit|error|emerg|alert)\]|Segmentation|AddressSanitizer' "$TREE/t/logs/error_log" | tail -n 30 >&2 || true
    fi
fi

# ---- the other TAP parts: as the test user, or as root where they must ----
run_tap_part() { # PART USER DIR
    local part=$1 user=$2 dir=$3 rc
    [ -d "$TREE/$dir" ] || return 0
    compgen -G "$TREE/$dir/*.t" >/dev/null || return 0
    hs_log "$part tests ($dir)"
    install -o "$TUSER" -m 644 /dev/null "$COUNTS/$part"
    set +e
    if [ "$user" = root ]; then
        (cd "$TREE" && env "${san_env[@]}" HYDRA_COUNT_FILE="$COUNTS/$part" \
            PERL5LIB="$TREE/scripts/lib" prove --harness HydraCount "$dir/") >"$WORK/$part.log" 2>&1
    else
        (cd "$TREE" && as_user HYDRA_COUNT_FILE="$COUNTS/$part" \
            PERL5LIB="$TREE/scripts/lib" prove --harness HydraCount "$dir/") >"$WORK/$part.log" 2>&1
    fi
    rc=$?
    set -e
    cat "$WORK/$part.log"
    if [ "$rc" -ne 0 ] && ! grep -qP '\t[1-9][0-9]*\t[0-9]+$' "$COUNTS/$part"; then
        count_failure "$part" "prove $dir exited $rc with no failed test counted"
    fi
}
want mailer && run_tap_part mailer user tests/mailer
want lint && run_tap_part lint user tests/lint
want package && run_tap_part package root tests/package
want testcmd && run_tap_part testcmd root tests/testcmd

# ---- a short fuzzing run of every harness (clang + libFuzzer) ------------
if want fuzz; then
    hs_log "fuzzing each harness for ${HYDRA_FUZZ_TIME:-10} s"
    : >"$COUNTS/fuzz"
    set +e
    (cd "$TREE" && make -s fuzz FUZZ_TIME="${HYDRA_FUZZ_TIME:-10}") >"$WORK/fuzz.log" 2>&1
    f_rc=$?
    set -e
    cat "$WORK/fuzz.log" >&2
    for n in $(cd "$TREE" && make -s print-fuzz-targets); do
        if grep -qE "^fuzz: $n: [0-9]+ runs" "$WORK/fuzz.log" && ! grep -qE "^fuzz: FAILED:.* $n( |\$)" "$WORK/fuzz.log"; then
            printf 'FILE\tfuzz %s\t1\t0\t0\n' "$n" >>"$COUNTS/fuzz"
        else
            count_failure fuzz "fuzz $n (see fuzz/out/$n.log)"
        fi
    done
    [ "$f_rc" -eq 0 ] || grep -q $'\t0\t1\t0$' "$COUNTS/fuzz" || count_failure fuzz "make fuzz exited $f_rc"
fi

# ---- sanitizer reports fail the run --------------------------------------
if [ "$SAN" = 1 ] && { compgen -G "$WORK/asan*" || compgen -G "$WORK/ubsan*"; } >/dev/null; then
    echo "sanitizer reports:" >&2
    head -q -n 40 "$WORK"/asan* "$WORK"/ubsan* >&2 2>/dev/null || true
    count_failure sanitizer "AddressSanitizer/UBSan reports"
fi

args=()
for p in $PARTS sanitizer; do
    [ -f "$COUNTS/$p" ] && args+=("$p=$COUNTS/$p")
done
perl "$TREE/scripts/lib/summarize.pl" "$TREE/tests/expected-skips" "${args[@]}"
