#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# conf/openapi.json passes a linter no one here wrote: Redocly's CLI
# (`redocly lint`, its recommended rules), at the version pinned in
# tools/redocly/package-lock.json. The CLI is installed under the tree
# (tools/redocly/node_modules, npm's cache beside it) when missing, so this
# runs as any user that can write the tree; without the npm registry the
# install fails and so does this test. TAP output (prove tests/lint/).
top=$(cd "$(dirname "$0")/../.." && pwd)
tool=$top/tools/redocly
cli=$tool/node_modules/.bin/redocly
doc=$top/conf/openapi.json
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
export NO_COLOR=1 NODE_NO_WARNINGS=1

echo "1..3"
fail=0
not_ok() { echo "not ok $1 - $2"; fail=1; }

# 1: the pinned CLI is there (installed now if it was not)
if [ ! -x "$cli" ]; then
    npm ci --prefix "$tool" --cache "$tool/.npm-cache" --no-audit --no-fund \
        --loglevel=error >"$tool/npm-ci.log" 2>&1 ||
        sed 's/^/# /' "$tool/npm-ci.log"
fi
want=$(sed -n 's/.*"@redocly\/cli": *"\([^"]*\)".*/\1/p' "$tool/package.json")
have=$("$cli" --version 2>/dev/null | tail -n 1)
if [ -x "$cli" ] && [ -n "$want" ] && [ "$have" = "$want" ]; then
    echo "ok 1 - @redocly/cli $have installed in tools/redocly"
else
    not_ok 1 "@redocly/cli $want installed in tools/redocly (found '${have:-nothing}')"
    echo "not ok 2 - no linter to run"
    echo "not ok 3 - no linter to run"
    exit 1
fi

# 2: the document lints clean (zero errors) with the recommended rules
out=$(cd "$top" && "$cli" lint --extends=recommended --format=stylish "$doc" 2>&1)
rc=$?
if [ $rc -eq 0 ] && ! echo "$out" | grep -qiE '(^|[^a-z])error'; then
    echo "ok 2 - redocly lint conf/openapi.json: no errors"
else
    not_ok 2 "redocly lint conf/openapi.json: no errors"
    echo "$out" | sed 's/^/# /'
fi

# 3: the linter does fail a document it should (no servers, no security)
bad=$(mktemp "${TMPDIR:-/tmp}/openapi-bad.XXXXXX.json")
sed -e 's/"servers"/"x-servers"/' -e 's/"security"/"x-security"/g' "$doc" >"$bad"
if (cd "$top" && "$cli" lint --extends=recommended --format=stylish "$bad" >/dev/null 2>&1); then
    not_ok 3 "redocly lint refuses the document without servers and security"
else
    echo "ok 3 - redocly lint refuses the document without servers and security"
fi
rm -f "$bad"
exit $fail
