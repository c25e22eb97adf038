/*
 * metrics.c - the module's counters in shared memory, as Prometheus text
 * and as a mod_status section (see hs_metrics.h).
 *
 * One anonymous segment, created by the parent in its first post_config
 * and kept in the process pool's userdata, so children of every
 * generation inherit the same mapping. Every figure is a 64-bit counter
 * changed with apr_atomic_add64: no lock, the same whichever child reads.
 */
#include <string.h>

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_protocol.h"
#include "mod_status.h"

#include <apr_atomic.h>
#include <apr_shm.h>
#include <apr_strings.h>

#include "hs_http.h"
#include "hs_log.h"
#include "hs_metrics.h"

APLOG_USE_MODULE(hydra_signup);

#define SHM_KEY "hydra_signup_metrics"
#define MAGIC 0x48534d31u /* "HSM1": the layout below */

static const char *const endpoint_names[HS_EP_COUNT] = {
    "signup", "plans", "verify", "jwks", "openapi", "page", "metrics", "other"};

/* the statuses the module answers; anything else counts as "other" */
static const int codes[] = {200, 201, 204, 304, 400, 404, 405,
                            409, 413, 415, 422, 429, 500, 503};
#define NCODES (sizeof(codes) / sizeof(codes[0]))

/* histogram bounds in microseconds (le= in seconds), then +Inf */
static const apr_uint64_t bounds_us[] = {
    1000,   2500,   5000,    10000,   25000,   50000,   100000,
    250000, 500000, 1000000, 2500000, 5000000, 10000000};
#define NBOUNDS (sizeof(bounds_us) / sizeof(bounds_us[0]))
/* the same bounds as Prometheus' le labels (APR's %g is not C's) */
static const char *const bounds_le[NBOUNDS] = {
    "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
    "0.25",  "0.5",    "1",     "2.5",  "5",     "10"};

static const struct {
    const char *name, *labels, *help;
} counter_info[HS_M_COUNT] = {
    [HS_M_PLACED] = {"hydra_signup_placements_total", "outcome=\"placed\"",
                     "Signups by placement outcome."},
    [HS_M_NO_CAPACITY] = {"hydra_signup_placements_total",
                          "outcome=\"no_capacity\"", NULL},
    [HS_M_PLACE_ERROR] = {"hydra_signup_placements_total", "outcome=\"error\"",
                          NULL},
    [HS_M_REAPER_RELEASED] = {"hydra_signup_reaper_released_total", "",
                              "Slots the reaper gave back to their nodes."},
    [HS_M_DB_ERRORS] = {"hydra_signup_db_errors_total", "",
                        "Database errors (connections, statements, "
                        "transactions)."},
    [HS_M_MAILS_SPOOLED] = {"hydra_signup_mails_spooled_total", "",
                            "Verification mails published into the spool."},
    [HS_M_SPOOL_FAILURES] = {"hydra_signup_spool_failures_total", "",
                             "Mails that could not be written or published."},
    [HS_M_RL_SIGNUP] = {"hydra_signup_ratelimit_refused_total",
                        "kind=\"signup\"",
                        "Requests refused with 429, by "
                        "the limit that refused them."},
    [HS_M_RL_VERIFY] = {"hydra_signup_ratelimit_refused_total",
                        "kind=\"verify\"", NULL},
    [HS_M_RL_PLANS] = {"hydra_signup_ratelimit_refused_total", "kind=\"plans\"",
                       NULL},
    [HS_M_RL_RESEND] = {"hydra_signup_ratelimit_refused_total",
                        "kind=\"resend\"", NULL},
    [HS_M_RL_MAIL_ADDRESS] = {"hydra_signup_ratelimit_refused_total",
                              "kind=\"mail_address\"", NULL},
    [HS_M_RL_MAIL_TENANT] = {"hydra_signup_ratelimit_refused_total",
                             "kind=\"mail_tenant\"", NULL},
    [HS_M_RL_ATTEMPTS] = {"hydra_signup_ratelimit_refused_total",
                          "kind=\"attempts\"", NULL},
    [HS_M_RL_STORE_ERRORS] = {"hydra_signup_ratelimit_store_errors_total", "",
                              "Rate-limit counter store failures (request "
                              "limits let the request through, verify "
                              "attempts got 503)."},
};

typedef struct {
    apr_uint32_t magic, size;
    apr_uint64_t requests[HS_EP_COUNT][NCODES + 1];
    apr_uint64_t buckets[HS_EP_COUNT][NBOUNDS + 1]; /* not cumulative */
    apr_uint64_t sum_us[HS_EP_COUNT];
    apr_uint64_t counters[HS_M_COUNT];
} metrics_shm;

/* set in post_config, read-only afterwards (the counters live in shm) */
static metrics_shm *m;

int hs_metrics_post_config(apr_pool_t *pconf, server_rec *s)
{
    apr_pool_t *pp = s->process->pool;
    apr_shm_t *shm = NULL;
    apr_status_t rv;
    void *data = NULL;

    (void)pconf;
    apr_pool_userdata_get(&data, SHM_KEY, pp);
    shm = data;
    if (shm) {
        m = apr_shm_baseaddr_get(shm);
        if (m->magic == MAGIC && m->size == sizeof(*m)) {
            return OK;
        }
        /* a module of another layout was loaded: a segment of our own */
    }
    rv = apr_shm_create(&shm, sizeof(*m), NULL, pp);
    if (rv != APR_SUCCESS) {
        m = NULL;
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s,
                     HSLOGNO(01001) "cannot create the metrics' shared "
                                    "memory (%" APR_SIZE_T_FMT " bytes): "
                                    "no metrics",
                     sizeof(*m));
        return OK; /* the API works without figures */
    }
    m = apr_shm_baseaddr_get(shm);
    memset(m, 0, sizeof(*m));
    m->magic = MAGIC;
    m->size = sizeof(*m);
    apr_pool_userdata_set(shm, SHM_KEY, apr_pool_cleanup_null, pp);
    return OK;
}

void hs_metrics_add(hs_counter c, apr_uint64_t n)
{
    if (m && c < HS_M_COUNT) {
        apr_atomic_add64(&m->counters[c], n);
    }
}

/* the endpoint is kept as (index + 1) in the request's module config */
void hs_metrics_route(request_rec *r, hs_endpoint ep)
{
    ap_set_module_config(r->request_config, &hydra_signup_module,
                         (void *)(apr_uintptr_t)(ep + 1));
}

int hs_metrics_log_transaction(request_rec *r)
{
    apr_uintptr_t tag = (apr_uintptr_t)ap_get_module_config(
        r->request_config, &hydra_signup_module);
    apr_uint64_t us;
    unsigned int ep, i;

    if (!m || !tag || tag > HS_EP_COUNT) {
        return DECLINED;
    }
    ep = (unsigned int)(tag - 1);
    for (i = 0; i < NCODES && codes[i] != r->status; i++) {
    }
    apr_atomic_inc64(&m->requests[ep][i]);
    us = (apr_uint64_t)(apr_time_now() - r->request_time);
    for (i = 0; i < NBOUNDS && us > bounds_us[i]; i++) {
    }
    apr_atomic_inc64(&m->buckets[ep][i]);
    apr_atomic_add64(&m->sum_us[ep], us);
    return DECLINED;
}

/* ---- rendering --------------------------------------------------------- */

static apr_uint64_t get(volatile apr_uint64_t *p)
{
    return apr_atomic_read64(p);
}

static void requests_text(apr_array_header_t *out, apr_pool_t *p)
{
    unsigned int ep, i;

    APR_ARRAY_PUSH(out, const char *) =
        "# HELP hydra_signup_requests_total Requests answered, by endpoint "
        "and status.\n# TYPE hydra_signup_requests_total counter\n";
    for (ep = 0; ep < HS_EP_COUNT; ep++) {
        for (i = 0; i <= NCODES; i++) {
            apr_uint64_t n = get(&m->requests[ep][i]);
            if (!n) {
                continue;
            }
            APR_ARRAY_PUSH(out, const char *) = apr_psprintf(
                p,
                "hydra_signup_requests_total{endpoint=\"%s\",code=\"%s\"} "
                "%" APR_UINT64_T_FMT "\n",
                endpoint_names[ep],
                i < NCODES ? apr_itoa(p, codes[i]) : "other", n);
        }
    }
}

static void histogram_text(apr_array_header_t *out, apr_pool_t *p)
{
    unsigned int ep, i;

    APR_ARRAY_PUSH(out, const char *) =
        "# HELP hydra_signup_request_duration_seconds Time from the request "
        "line to the logged answer.\n"
        "# TYPE hydra_signup_request_duration_seconds histogram\n";
    for (ep = 0; ep < HS_EP_COUNT; ep++) {
        apr_uint64_t cum = 0, sum;
        for (i = 0; i <= NBOUNDS; i++) {
            cum += get(&m->buckets[ep][i]);
            APR_ARRAY_PUSH(out, const char *) = apr_psprintf(
                p,
                "hydra_signup_request_duration_seconds_bucket{endpoint=\"%s\","
                "le=\"%s\"} %" APR_UINT64_T_FMT "\n",
                endpoint_names[ep], i < NBOUNDS ? bounds_le[i] : "+Inf", cum);
        }
        sum = get(&m->sum_us[ep]);
        APR_ARRAY_PUSH(out, const char *) = apr_psprintf(
            p,
            "hydra_signup_request_duration_seconds_sum{endpoint=\"%s\"} "
            "%" APR_UINT64_T_FMT ".%06u\n"
            "hydra_signup_request_duration_seconds_count{endpoint=\"%s\"} "
            "%" APR_UINT64_T_FMT "\n",
            endpoint_names[ep], sum / 1000000, (unsigned int)(sum % 1000000),
            endpoint_names[ep], cum);
    }
}

static void counters_text(apr_array_header_t *out, apr_pool_t *p)
{
    unsigned int c;

    for (c = 0; c < HS_M_COUNT; c++) {
        const char *name = counter_info[c].name;
        const char *labels = counter_info[c].labels;
        if (counter_info[c].help) {
            APR_ARRAY_PUSH(out, const char *) =
                apr_psprintf(p, "# HELP %s %s\n# TYPE %s counter\n", name,
                             counter_info[c].help, name);
        }
        APR_ARRAY_PUSH(out, const char *) = apr_psprintf(
            p, "%s%s%s%s %" APR_UINT64_T_FMT "\n", name, *labels ? "{" : "",
            labels, *labels ? "}" : "", get(&m->counters[c]));
    }
}

/* The whole exposition, or NULL without the segment. */
static const char *metrics_text(apr_pool_t *p)
{
    apr_array_header_t *out;

    if (!m) {
        return NULL;
    }
    out = apr_array_make(p, 64, sizeof(const char *));
    requests_text(out, p);
    histogram_text(out, p);
    counters_text(out, p);
    return apr_array_pstrcat(p, out, '\0');
}

int hs_metrics_handle(request_rec *r, const hs_dir_cfg *cfg)
{
    const char *text;

    if (!hs_cfg_metrics(cfg)) {
        return hs_send_detail(r, HTTP_NOT_FOUND, "Not Found");
    }
    if (!(text = metrics_text(r->pool))) {
        return hs_send_detail(r, HTTP_SERVICE_UNAVAILABLE,
                              "Metrics are not available");
    }
    ap_set_content_type(r, "text/plain; version=0.0.4; charset=utf-8");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    if (!r->header_only) {
        ap_rputs(text, r);
    }
    return OK;
}

int hs_metrics_status_hook(request_rec *r, int flags)
{
    const char *text = metrics_text(r->pool);

    if (!text) {
        return OK;
    }
    if (flags & AP_STATUS_SHORT) {
        /* ?auto: "name{labels}: value" per sample, comments left out */
        char *copy = apr_pstrdup(r->pool, text), *line, *last;
        for (line = apr_strtok(copy, "\n", &last); line;
             line = apr_strtok(NULL, "\n", &last)) {
            char *sp = strrchr(line, ' ');
            if (*line == '#' || !sp) {
                continue;
            }
            *sp = '\0';
            ap_rprintf(r, "HydraSignup %s: %s\n", line, sp + 1);
        }
        return OK;
    }
    ap_rputs("<hr />\n<h2>mod_hydra_signup</h2>\n<pre>", r);
    ap_rputs(ap_escape_html(r->pool, text), r);
    ap_rputs("</pre>\n", r);
    return OK;
}
