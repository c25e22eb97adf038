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

# The work is done by scripts/hydra-signup-migrate, the same program the
# Debian package installs as /usr/share/hydra-signup/hydra-signup-migrate.
_hs_pg_find_bin 2>/dev/null || true
args=()
[ "$demo" = 1 ] && args+=(--demo)
export PGPASSWORD=hydra PSQL=${HS_PG_BIN:+$HS_PG_BIN/}psql
exec "$here/hydra-signup-migrate" --sql-dir "$root/sql" "${args[@]}" \
    "host=127.0.0.1 port=$port dbname=hydra user=hydra"
