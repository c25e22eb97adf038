/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hs_dbgate.h - the connection gate (HydraSignupDBConnections): at most N
 * requests of one child use a database connection at once, the others go
 * in in the order they came, and a request waits for its turn at most a
 * bounded time, then gets a 503 with
 * Retry-After instead of blocking in mod_dbd's pool (whose acquire has no
 * time-out). With N = DBDMax, a host holds at most ServerLimit x DBDMax
 * PostgreSQL connections, and none of its requests hangs on the pool.
 */
#ifndef HS_DBGATE_H
#define HS_DBGATE_H

#include "httpd.h"

typedef struct hs_dbgate hs_dbgate;

/* A gate of max places and the longest wait (configuration time). */
hs_dbgate *hs_dbgate_make(apr_pool_t *p, int max, apr_interval_time_t wait);

/* child_init: creates the gate's mutex and condition in this child (once
 * per gate; several servers may share one). */
apr_status_t hs_dbgate_child_init(hs_dbgate *g, apr_pool_t *p);

/* Takes a place for r (given back when r->pool is cleaned up, after the
 * connection mod_dbd lent to r has gone back to its pool). 0, or -1 when
 * none came free within the wait (logged, at most once a second). A
 * request that had to wait, in a child with more requests in progress
 * than the server's average child by more than two, gets its connection
 * closed after the answer (HS00914, debug), so that the client reconnects
 * to whichever child accepts. */
int hs_dbgate_enter(hs_dbgate *g, request_rec *r);

/* Gives r's place back now, before r->pool is cleaned up (nothing when r
 * holds none). */
void hs_dbgate_leave(hs_dbgate *g, request_rec *r);

#endif /* HS_DBGATE_H */
