#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# scripts/mutate.sh - does the suite notice when the code is wrong? Applies
# one small mutant at a time to a copy of the tree (never to the checkout),
# runs the test command on it, and prints a table: which mutants the suite
# kills and which tests killed them. Slow (a build and a suite per mutant),
# so not part of CI: run it before resolving an issue that touches one of
# these places, and put its table in the closing note.
#
#   scripts/mutate.sh [NAME...]       default: every mutant below
#   MUTATE_TESTS="t/a.t t/b.t"        Apache::Test files to run (default: all)
#   MUTATE_PARTS="unit apache"        test command parts to run (default)
#
# A mutant is a perl substitution applied to every file under src/ (and
# mod_hydra_signup.c) where it matches; it must match at least once, or the
# table says "not applied" (the code moved: update the pattern).
set -uo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/common.sh
. "$SRC/scripts/lib/common.sh"
[ "$(id -u)" -eq 0 ] || hs_die "run scripts/mutate.sh as root (it runs scripts/test.sh)"

# NAME | what it breaks | perl substitution
MUTANTS=(
    'capacity|a slot past the node capacity (used <= capacity)|s/used < capacity/used <= capacity/g'
    'attempts|one guess more than HydraSignupMaxAttempts|s/attempts > hs_cfg_max_attempts\(cfg\)/attempts > hs_cfg_max_attempts(cfg) + 1/g'
    'memcmp-len|the code comparison checks half the HMAC|s/CRYPTO_memcmp\(a, b, n\)/CRYPTO_memcmp(a, b, n \/ 2)/g'
    'resend-sql|no resend interval when storing a new code|s/args\[3\] = apr_ltoa\(r->pool, hs_cfg_resend_interval\(s->cfg\)\)/args[3] = apr_ltoa(r->pool, 0)/g'
    'resend-decoy|no resend interval for a concealed address|s/(num\(res\.rows\[0\]\[1\], -1\);\s*if \(age >= 0 && )age < resend/$1age < 0/g'
    'hmac-input|the code HMAC no longer binds the customer|s/apr_pstrcat\((r|s->r)->pool, customer, ":", code, NULL\)/apr_pstrcat($1->pool, "any", ":", code, NULL)/g'
    'conceal-addr|the conceal id ignores the address|s/":", s->req\.email, NULL\)/":", "", NULL)/g'
    'conceal-tenant|the conceal id ignores the tenant|s/"conceal:", s->ctx\[C_TENANT_ID\],/"conceal:", "",/g'
)

names=("$@")
read -r -a tests <<<"${MUTATE_TESTS:-}"
parts=${MUTATE_PARTS:-unit apache}
out=$(mktemp -d /tmp/hydra-mutate.XXXXXX)
printf '| mutant | what it breaks | where | result | failed tests |\n|---|---|---|---|---|\n' >"$out/table"

for m in "${MUTANTS[@]}"; do
    IFS='|' read -r name what subst <<<"$m"
    if [ ${#names[@]} -gt 0 ] && [[ " ${names[*]} " != *" $name "* ]]; then continue; fi
    tree=$out/$name
    mkdir -p "$tree"
    (cd "$SRC" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) | tar -C "$tree" -xf -
    # apply in place: "COUNT FILE..." of what changed
    applied=$(cd "$tree" && find src mod_hydra_signup.c -name '*.c' -print0 |
        xargs -0 perl -0 -i -pe "if (my \$c = ($subst)) { \$n += \$c; \$f{\$ARGV} = 1 }
            END { print STDERR join(' ', \$n + 0, sort keys %f) }" 2>&1 >/dev/null | tail -n 1)
    count=${applied%% *}
    where=${applied#* }
    if [ "${count:-0}" = 0 ]; then
        printf '| %s | %s | - | not applied | - |\n' "$name" "$what" >>"$out/table"
        continue
    fi
    hs_log "mutant $name ($count change(s) in ${where:-src}): running the suite"
    (cd "$tree" && HYDRA_PARTS="$parts" scripts/test.sh "${tests[@]}") >"$out/$name.log" 2>&1
    rc=$?
    failed=$(grep -oE '^  failed: [^ ]+' "$out/$name.log" | awk '{print $2}' | sort -u | tr '\n' ' ')
    if [ "$rc" -ne 0 ]; then
        printf '| %s | %s | %s | killed | %s |\n' "$name" "$what" "${where:-src}" "${failed:-see log}" >>"$out/table"
    else
        printf '| %s | %s | %s | **survived** | - |\n' "$name" "$what" "${where:-src}" >>"$out/table"
    fi
    rm -rf "$tree"
done
cat "$out/table"
echo "logs: $out" >&2
