#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/reset-side-by-side.sh - gives the two databases of a side-by-side
# run (../shared/bench/side-by-side.sh) the same starting point: the bench
# tenant and everything it owns deleted (its customers, codes, nodes,
# plans, mail logs: ON DELETE CASCADE in both schemas), then VACUUM FULL
# and ANALYZE. The bench seeds the tenant again at its next run.
#
#   bench/reset-side-by-side.sh DSN [DSN ...]
#
# Why: each run adds thousands of customers to the database of the server
# it measured, and a server benchmarked alone more often than the other
# ends up with the larger tables, which cost more per signup (before
# 2026-12-05's runs the module's database held 384,000 bench customers and
# the peer's 224,000). Run it with both servers' DSNs (a role that may
# VACUUM FULL, e.g. the postgres superuser) before side-by-side.sh; the
# servers may stay up.
set -euo pipefail

[ $# -ge 1 ] || { echo "usage: $0 DSN [DSN ...]" >&2; exit 2; }
slug=${HYDRA_BENCH_TENANT:-bench}
for dsn in "$@"; do
    # (stdin: psql interpolates :'slug' there, not in -c)
    echo "DELETE FROM tenants WHERE slug = :'slug'" |
        psql -X -q -v ON_ERROR_STOP=1 -v slug="$slug" "$dsn" >/dev/null
    psql -X -q -v ON_ERROR_STOP=1 "$dsn" -c "VACUUM FULL" -c "ANALYZE"
    echo "reset: $(psql -X -At "$dsn" -c "SELECT current_database() || ': ' ||
        count(*) || ' customers left, ' ||
        pg_size_pretty(pg_total_relation_size('customers'))
        FROM customers")"
done
