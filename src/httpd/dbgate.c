/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dbgate.c - the connection gate of one child (see hs_dbgate.h): a
 * counting semaphore made of a thread mutex and a condition variable, with
 * a timed wait.
 */
#include "httpd.h"
#include "http_log.h"

#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>

#include "hs_dbgate.h"
#include "hs_log.h"

APLOG_USE_MODULE(hydra_signup);

struct hs_dbgate {
    int max;
    apr_interval_time_t wait;
    apr_thread_mutex_t *mutex; /* NULL until child_init */
    apr_thread_cond_t *cond;
    int in_use;
    apr_time_t last_log;
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
    if (rv == APR_SUCCESS) {
        rv = apr_thread_cond_create(&g->cond, p);
    }
    if (rv != APR_SUCCESS) {
        g->mutex = NULL;
    }
    return rv;
}

static apr_status_t leave(void *data)
{
    hs_dbgate *g = data;
    apr_thread_mutex_lock(g->mutex);
    g->in_use--;
    apr_thread_cond_signal(g->cond);
    apr_thread_mutex_unlock(g->mutex);
    return APR_SUCCESS;
}

int hs_dbgate_enter(hs_dbgate *g, request_rec *r)
{
    apr_time_t deadline = apr_time_now() + g->wait;
    int logit = 0, in_use;

    if (!g->mutex) {
        /* child_init could not create it: no gate rather than no service */
        return 0;
    }
    apr_thread_mutex_lock(g->mutex);
    while (g->in_use >= g->max) {
        apr_time_t now = apr_time_now();
        if (now >= deadline) {
            break;
        }
        apr_thread_cond_timedwait(g->cond, g->mutex, deadline - now);
    }
    in_use = g->in_use;
    if (in_use >= g->max) {
        apr_time_t now = apr_time_now();
        if (now - g->last_log >= apr_time_from_sec(1)) {
            g->last_log = now;
            logit = 1;
        }
        apr_thread_mutex_unlock(g->mutex);
        if (logit) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                          HSLOGNO(00910) "all %d database places of this "
                                         "process stayed busy for %ld ms: "
                                         "503 (HydraSignupDBConnections; "
                                         "logged at most once a second)",
                          g->max, (long)apr_time_as_msec(g->wait));
        }
        return -1;
    }
    g->in_use++;
    apr_thread_mutex_unlock(g->mutex);
    apr_pool_cleanup_register(r->pool, g, leave, apr_pool_cleanup_null);
    return 0;
}

void hs_dbgate_leave(hs_dbgate *g, request_rec *r)
{
    if (g->mutex) {
        apr_pool_cleanup_run(r->pool, g, leave);
    }
}
