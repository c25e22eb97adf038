#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# scripts/migrate.sh PORT [--demo]
#
# Applies the schema migrations sql/[0-9][0-9][0-9]_*.sql, in order, to the
# database hydra on 127.0.0.1:PORT as role hydra (the database owner; start
# the server with hs_pg_start from scripts/lib/pg.sh first).
# Each file runs in one transaction together with its row in
# schema_migrations(version, applied_at); version is the file's three-digit
# prefix ("001"), and recorded versions are skipped, so running this twice
# changes nothing. An advisory lock serialises concurrent runs.
# With --demo, sql/demo.sql (idempotent demo tenant, plans and nodes) is then
# applied as well, in one transaction; running it again is harmless.
# Prints each file it applies.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
# shellcheck source-path=SCRIPTDIR source=lib/pg.sh
. "$here/lib/pg.sh"

usage() { echo "usage: $0 PORT [--demo]" >&2; exit 2; }
[ $# -ge 1 ] || usage
port=$1
shift
demo=0
for arg in "$@"; do
    case "$arg" in
        --demo) demo=1 ;;
        *) usage ;;
    esac
done

psql_q() { PGOPTIONS='-c client_min_messages=warning' hs_pg_psql "$port" "$@"; }

if ! psql_q -c 'SELECT 1' >/dev/null; then
    echo "pg: cannot connect to database hydra on 127.0.0.1:$port as hydra (is the server started? see scripts/lib/pg.sh hs_pg_start)" >&2
    exit 1
fi

psql_q >/dev/null <<'SQL'
BEGIN;
SELECT pg_advisory_xact_lock(4242001) \gset
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);
COMMIT;
SQL

applied=0
shopt -s nullglob
files=("$root"/sql/[0-9][0-9][0-9]_*.sql)   # glob results are sorted
for f in "${files[@]}"; do
    name=$(basename "$f")
    version=${name:0:3}
    # The check runs after taking the lock, inside the same transaction.
    # psql's \i cannot take a quoted variable, so run it from sql/ by name.
    out=$(cd "$root/sql" && psql_q -v version="$version" -v name="$name" <<'SQL'
BEGIN;
SELECT pg_advisory_xact_lock(4242001) \gset
SELECT NOT EXISTS (SELECT 1 FROM schema_migrations WHERE version = :'version') AS todo \gset
\if :todo
\i :name
INSERT INTO schema_migrations (version) VALUES (:'version');
\echo applied :name
\endif
COMMIT;
SQL
    ) || { echo "pg: migration $name failed; nothing of it was applied" >&2; exit 1; }
    if [ -n "$out" ]; then
        echo "migrate: $out"
        applied=$((applied + 1))
    fi
done
[ "$applied" -gt 0 ] || echo "migrate: schema up to date (${#files[@]} migrations)"

if [ "$demo" = 1 ]; then
    psql_q -1 -f "$root/sql/demo.sql" >/dev/null ||
        { echo "pg: sql/demo.sql failed; nothing of it was applied" >&2; exit 1; }
    echo "migrate: applied demo.sql (demo data)"
fi
