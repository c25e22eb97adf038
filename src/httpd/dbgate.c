/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dbgate.c - the connection gate of one child (see hs_dbgate.h): a
 * counting semaphore with a timed wait that lets requests in in the order
 * they came: a leaving request hands its place to the first in the queue
 * and wakes that one thread only. (One condition for all, as before, woke
 * whichever waiter it picked: some requests waited many turns while later
 * ones went ahead, and the slowest answers under load were several times
 * the median.)
 *
 * Each child has its own places and queue, and a keep-alive connection
 * stays with the child that accepted it; so a request that had to queue,
 * in a child with more requests in progress than the server's children
 * have on average, closes its connection after the answer (rebalance()):
 * the client's next connection may land in a less crowded child. Without
 * it the child that happened to accept the most connections kept the
 * longest queue for as long as they lasted (DESIGN.md, "The connection
 * gate").
 */
#include <string.h>

#include <unistd.h>

#include "httpd.h"
#include "http_log.h"
#include "ap_mpm.h"
#include "scoreboard.h"

#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>

#include "hs_dbgate.h"
#include "hs_keepalive.h"
#include "hs_log.h"

APLOG_USE_MODULE(hydra_signup);

/* a request waiting for a place, in the queue */
typedef struct waiter {
    struct waiter *next;
    apr_thread_cond_t *cond;
    int admitted; /* a leaving request handed its place over */
} waiter;

struct hs_dbgate {
    int max;
    apr_interval_time_t wait;
    apr_thread_mutex_t *mutex; /* NULL until child_init */
    int in_use;                /* places taken (handed-over ones included) */
    waiter *head, *tail;       /* the queue, first come first */
    apr_time_t last_log;
    /* this child, and the scoreboard's size (set at child_init) */
    pid_t pid;
    int max_daemons, max_threads;
};

hs_dbgate *hs_dbgate_make(apr_pool_t *p, int max, apr_interval_time_t wait)
{
    hs_dbgate *g = apr_pcalloc(p, sizeof(*g));
    g->max = max;
    g->wait = wait;
    return g;
}

apr_status_t hs_dbgate_child_init(hs_dbgate *g, apr_pool_t *p)
{
    apr_status_t rv;
    if (g->mutex) {
        return APR_SUCCESS;
    }
    rv = apr_thread_mutex_create(&g->mutex, APR_THREAD_MUTEX_DEFAULT, p);
    if (rv != APR_SUCCESS) {
        g->mutex = NULL;
        return rv;
    }
    g->pid = getpid();
    if (ap_mpm_query(AP_MPMQ_HARD_LIMIT_DAEMONS, &g->max_daemons) !=
            APR_SUCCESS ||
        ap_mpm_query(AP_MPMQ_MAX_THREADS, &g->max_threads) != APR_SUCCESS) {
        g->max_daemons = g->max_threads = 0; /* rebalance() does nothing */
    }
    return APR_SUCCESS;
}

/* A place comes free: it goes to the first in the queue (woken alone, so a
 * release wakes one thread, not every waiter), or back to the gate. */
static apr_status_t leave(void *data)
{
    hs_dbgate *g = data;
    waiter *w;

    apr_thread_mutex_lock(g->mutex);
    if ((w = g->head)) {
        g->head = w->next;
        if (!g->head) {
            g->tail = NULL;
        }
        w->admitted = 1;
        apr_thread_cond_signal(w->cond);
    }
    else {
        g->in_use--;
    }
    apr_thread_mutex_unlock(g->mutex);
    return APR_SUCCESS;
}

/* Takes w out of the queue (it gave up). */
static void unqueue(hs_dbgate *g, waiter *w)
{
    waiter **pp, *prev = NULL;
    for (pp = &g->head; *pp; prev = *pp, pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            if (g->tail == w) {
                g->tail = prev;
            }
            return;
        }
    }
}

static void log_busy(hs_dbgate *g, request_rec *r)
{
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                  HSLOGNO(00910) "all %d database places of this process "
                                 "stayed busy for %ld ms: 503 "
                                 "(HydraSignupDBConnections; logged at most "
                                 "once a second)",
                  g->max, (long)apr_time_as_msec(g->wait));
}

/* a worker reading, handling or logging a request */
static int in_progress(int status)
{
    return status == SERVER_BUSY_READ || status == SERVER_BUSY_WRITE ||
           status == SERVER_BUSY_LOG || status == SERVER_BUSY_DNS;
}

/*
 * For a request that queued at the gate: counts the requests in progress
 * in each serving child of this generation (the scoreboard), and closes
 * this connection after the answer when this child has more than the
 * average by more than REBALANCE_MARGIN. A child alone never closes.
 */
#define REBALANCE_MARGIN 2

static void rebalance(const hs_dbgate *g, request_rec *r)
{
    int i, j, children = 0, total = 0, mine = -1;

    /* (a connection that closes anyway is not moved, nor logged) */
    if (!hs_keepalive_possible(r) || !ap_exists_scoreboard_image()) {
        return;
    }
    /* every slot (the count of slots in use is the parent's, stale in a
     * child), the first ThreadsPerChild workers of each */
    for (i = 0; i < g->max_daemons; i++) {
        process_score *ps = ap_get_scoreboard_process(i);
        int n = 0;
        if (!ps || ps->pid == 0 || ps->quiescing ||
            ps->generation != ap_scoreboard_image->global->running_generation) {
            continue;
        }
        for (j = 0; j < g->max_threads; j++) {
            worker_score *ws = ap_get_scoreboard_worker_from_indexes(i, j);
            n += ws && in_progress(ws->status);
        }
        children++;
        total += n;
        if (ps->pid == g->pid) {
            mine = n;
        }
    }
    if (children > 1 && mine * children > total + REBALANCE_MARGIN * children) {
        r->connection->keepalive = AP_CONN_CLOSE;
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                      HSLOGNO(00914) "the connection closes after this "
                                     "answer: %d requests in progress in "
                                     "this child, %d in %d children",
                      mine, total, children);
    }
}

int hs_dbgate_enter(hs_dbgate *g, request_rec *r)
{
    apr_time_t deadline = apr_time_now() + g->wait, now;
    apr_status_t rv;
    waiter w;
    int logit = 0;

    if (!g->mutex) {
        /* child_init could not create it: no gate rather than no service */
        return 0;
    }
    apr_thread_mutex_lock(g->mutex);
    if (g->in_use < g->max && !g->head) {
        g->in_use++;
        apr_thread_mutex_unlock(g->mutex);
        apr_pool_cleanup_register(r->pool, g, leave, apr_pool_cleanup_null);
        return 0;
    }
    /* wait in line: a leaving request hands its place to the first */
    memset(&w, 0, sizeof(w));
    if ((rv = apr_thread_cond_create(&w.cond, r->pool)) != APR_SUCCESS) {
        apr_thread_mutex_unlock(g->mutex);
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r,
                      HSLOGNO(00911) "cannot wait for a database place "
                                     "(no condition variable): 503");
        return -1;
    }
    if (g->tail) {
        g->tail->next = &w;
    }
    else {
        g->head = &w;
    }
    g->tail = &w;
    while (!w.admitted && (now = apr_time_now()) < deadline) {
        apr_thread_cond_timedwait(w.cond, g->mutex, deadline - now);
    }
    if (!w.admitted) {
        unqueue(g, &w);
        now = apr_time_now();
        if (now - g->last_log >= apr_time_from_sec(1)) {
            g->last_log = now;
            logit = 1;
        }
        apr_thread_mutex_unlock(g->mutex);
        if (logit) {
            log_busy(g, r);
        }
        return -1;
    }
    apr_thread_mutex_unlock(g->mutex);
    apr_pool_cleanup_register(r->pool, g, leave, apr_pool_cleanup_null);
    rebalance(g, r);
    return 0;
}

void hs_dbgate_leave(hs_dbgate *g, request_rec *r)
{
    if (g->mutex) {
        apr_pool_cleanup_run(r->pool, g, leave);
    }
}
