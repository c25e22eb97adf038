#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The layers hold (run by `make check`; TAP): no file of the httpd-free core
# (src/core/, include/) includes an httpd header, and the core's APR-free
# part, which the sender links, includes no APR header either.
top=${srcdir:-$(cd "$(dirname "$0")/.." && pwd)}

# httpd's own headers: httpd.h, http_*.h, ap_*.h, mod_*.h, util_*.h and the
# rest of its include directory that is not APR
HTTPD_RE='^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]([^">]*/)?(httpd|http_[a-z_]*|ap_[a-z_]*|mod_[a-z_0-9]*|util_[a-z_]*|scoreboard|mpm_common|unixd|os|heartbeat|apreq[a-z_0-9]*)\.h[">]'
APR_RE='^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"](apr|apu)[a-z_0-9]*\.h[">]'
# src/core files the sender links (libhydrabase.la in Makefile.am)
APR_FREE="src/core/utf8.c src/core/util.c src/core/addrspec.c include/hs_utf8.h
include/hs_util.h include/hs_addrspec.h include/hs_spool_layout.h"

n=0
fail=0
result() { # OK? DESCRIPTION [OFFENDING LINES]
    n=$((n + 1))
    if [ "$1" = 1 ]; then
        echo "ok $n - $2"
    else
        echo "not ok $n - $2"
        [ -n "$3" ] && echo "$3" | sed 's/^/#   /'
        fail=1
    fi
}

core=$(cd "$top" && ls src/core/*.c src/core/*.h include/*.h 2>/dev/null)
count=$(echo "$core" | grep -c .)
echo "1..$((count + 4))"

# the patterns catch what they are for (a check that cannot fail is none)
probe=$(printf '#include "httpd.h"\n# include <http_config.h>\n#include "ap_socache.h"\n#include "mod_dbd.h"\n#include "util_filter.h"\n#include <apr_pools.h>\n#include "hs_json.h"\n')
[ "$(echo "$probe" | grep -cE "$HTTPD_RE")" = 5 ]
result $((1 - $?)) "the httpd pattern finds httpd headers and only those"
[ "$(echo "$probe" | grep -cE "$APR_RE")" = 1 ]
result $((1 - $?)) "the APR pattern finds APR headers and only those"
[ "$count" -ge 20 ]
result $((1 - $?)) "the core has its files ($count in src/core/ and include/)"

for f in $core; do
    bad=$(grep -nE "$HTTPD_RE" "$top/$f")
    [ -z "$bad" ]
    result $((1 - $?)) "$f includes no httpd header" "$bad"
done

bad=
for f in $APR_FREE; do
    if [ ! -f "$top/$f" ]; then
        bad="$bad
$f: missing"
        continue
    fi
    hits=$(grep -nE "$APR_RE" "$top/$f" | sed "s|^|$f:|")
    [ -n "$hits" ] && bad="$bad
$hits"
done
[ -z "$bad" ]
result $((1 - $?)) "the sender's part of the core includes no APR header" "$bad"
exit $fail
