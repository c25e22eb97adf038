/* SPDX-License-Identifier: Apache-2.0 */
/*
 * plans.c - GET {location}/plans/{tenant_slug}: the tenant's public plans in
 * display order, cacheable (ETag over the body, 304 on If-None-Match), and
 * kept in a per-process cache for HydraSignupPlansCacheTTL seconds (unknown
 * slugs too), so that a flood of GETs does not reach PostgreSQL.
 */
#include <stdlib.h>
#include <string.h>

#include "httpd.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"

#include <apr_hash.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <json-c/json.h>

#include "hs_crypto.h"
#include "hs_db.h"
#include "hs_endpoints.h"
#include "hs_http.h"
#include "hs_json.h"
#include "hs_log.h"
#include "hs_ratelimit.h"
#include "hs_validate.h"

APLOG_USE_MODULE(hydra_signup);

#define PLANS_CACHE_CONTROL "public, max-age=60"
/* entries per process; beyond it expired ones are dropped, and when none
 * is, the answer is not cached (unknown slugs cannot grow it unbounded) */
#define CACHE_MAX 1024

/*
 * The per-process cache (HydraSignupPlansCacheTTL): "<server>|<ttl>|<slug>" ->
 * the answer (200 with body and ETag, or 404), until it expires. Plain
 * malloc, so that a replaced or dropped entry is freed at once.
 */
typedef struct {
    char *key;
    apr_time_t expires;
    int status; /* HTTP_OK or HTTP_NOT_FOUND */
    char *body; /* 200 only */
    char *etag;
} plans_entry;

static apr_hash_t *cache;
static apr_thread_mutex_t *cache_mutex;

void hs_plans_child_init(apr_pool_t *p)
{
    if (apr_thread_mutex_create(&cache_mutex, APR_THREAD_MUTEX_DEFAULT, p) ==
        APR_SUCCESS) {
        cache = apr_hash_make(p);
    }
    else {
        cache_mutex = NULL; /* no cache in this process */
    }
}

static void entry_free(plans_entry *e)
{
    if (e) {
        free(e->key);
        free(e->body);
        free(e->etag);
        free(e);
    }
}

/* per server (its database) and lifetime (two <Location>s of one server
 * with different TTLs keep their own entries) */
static const char *cache_key(request_rec *r, long ttl, const char *slug)
{
    return apr_psprintf(r->pool, "%pp|%ld|%s", (void *)r->server, ttl, slug);
}

/* A copy (in r->pool) of the live entry for key, or NULL. */
static plans_entry *cache_get(request_rec *r, const char *key)
{
    plans_entry *e, *copy = NULL;
    if (!cache_mutex) {
        return NULL;
    }
    apr_thread_mutex_lock(cache_mutex);
    e = apr_hash_get(cache, key, APR_HASH_KEY_STRING);
    if (e && e->expires > apr_time_now()) {
        copy = apr_pmemdup(r->pool, e, sizeof(*e));
        copy->body = e->body ? apr_pstrdup(r->pool, e->body) : NULL;
        copy->etag = e->etag ? apr_pstrdup(r->pool, e->etag) : NULL;
    }
    apr_thread_mutex_unlock(cache_mutex);
    return copy;
}

/* Drops expired entries (under the mutex). */
static void cache_prune(apr_time_t now)
{
    apr_hash_index_t *hi;
    for (hi = apr_hash_first(NULL, cache); hi; hi = apr_hash_next(hi)) {
        plans_entry *e = apr_hash_this_val(hi);
        if (e->expires <= now) {
            apr_hash_set(cache, e->key, APR_HASH_KEY_STRING, NULL);
            entry_free(e);
        }
    }
}

static void cache_put(const char *key, long ttl, int status, const char *body,
                      const char *etag)
{
    plans_entry *e, *old;
    apr_time_t now = apr_time_now();

    if (!cache_mutex || ttl <= 0) {
        return;
    }
    e = calloc(1, sizeof(*e));
    if (!e || !(e->key = strdup(key)) || (body && !(e->body = strdup(body))) ||
        (etag && !(e->etag = strdup(etag)))) {
        entry_free(e);
        return;
    }
    e->status = status;
    e->expires = now + apr_time_from_sec(ttl);
    apr_thread_mutex_lock(cache_mutex);
    old = apr_hash_get(cache, key, APR_HASH_KEY_STRING);
    if (old) {
        /* removed before it is freed: the table keeps an entry's first key */
        apr_hash_set(cache, old->key, APR_HASH_KEY_STRING, NULL);
        entry_free(old);
    }
    if (apr_hash_count(cache) >= CACHE_MAX) {
        cache_prune(now);
    }
    if (apr_hash_count(cache) < CACHE_MAX) {
        apr_hash_set(cache, e->key, APR_HASH_KEY_STRING, e);
        e = NULL;
    }
    apr_thread_mutex_unlock(cache_mutex);
    entry_free(e); /* not cached: full of live entries */
}

static int answer(request_rec *r, int status, const char *body,
                  const char *etag)
{
    int rc;
    if (status == HTTP_NOT_FOUND) {
        return hs_send_detail(r, HTTP_NOT_FOUND, "Tenant not found");
    }
    apr_table_setn(r->headers_out, "ETag", etag);
    apr_table_setn(r->headers_out, "Cache-Control", PLANS_CACHE_CONTROL);
    rc = ap_meets_conditions(r);
    if (rc == HTTP_NOT_MODIFIED) {
        r->status = HTTP_NOT_MODIFIED;
        return OK;
    }
    return hs_send_json(r, HTTP_OK, body);
}

int hs_plans_handle(request_rec *r, const hs_dir_cfg *cfg, const char *slug)
{
    hs_db_result res;
    hs_db *db;
    json_object *list;
    const char *body, *etag, *key = NULL;
    long ttl = hs_cfg_plans_cache_ttl(cfg);
    plans_entry *hit;
    int i;
    long n;

    if (hs_ratelimit(r, cfg, HS_RATE_PLANS)) {
        return OK;
    }
    /* a slug that cannot name a tenant (not UTF-8, an overlong form such
     * as %c0%ae, a control character, longer than 100 code points) never
     * reaches the database: PostgreSQL would refuse it and that must not
     * become a 503 */
    n = hs_utf8_length(slug, strlen(slug));
    if (n < 1 || n > 100 ||
        strpbrk(slug, "\x01\x02\x03\x04\x05\x06\x07"
                      "\x08\t\n\x0b\x0c\r\x0e\x0f"
                      "\x10\x11\x12\x13\x14\x15\x16"
                      "\x17\x18\x19\x1a\x1b\x1c\x1d"
                      "\x1e\x1f\x7f")) {
        return hs_send_detail(r, HTTP_NOT_FOUND, "Tenant not found");
    }
    if (!hs_cfg_serves(cfg, slug)) {
        return hs_send_detail(r, HTTP_NOT_FOUND, "Tenant not found");
    }
    if (ttl > 0) {
        key = cache_key(r, ttl, slug);
        if ((hit = cache_get(r, key))) {
            return answer(r, hit->status, hit->body, hit->etag);
        }
    }
    if (!(db = hs_db_acquire(r))) {
        return hs_send_retry(r, HTTP_SERVICE_UNAVAILABLE,
                             "Service temporarily unavailable", 5);
    }
    if (hs_db_select(db, HS_Q_PLANS, &res, 1, &slug)) {
        return hs_send_retry(r, HTTP_SERVICE_UNAVAILABLE,
                             "Service temporarily unavailable", 5);
    }
    if (res.nrows == 0 || !hs_db_true(res.rows[0][0])) {
        if (key) {
            cache_put(key, ttl, HTTP_NOT_FOUND, NULL, NULL);
        }
        return answer(r, HTTP_NOT_FOUND, NULL, NULL);
    }

    list = hs_json_pool_own(r->pool, json_object_new_array());
    for (i = 0; i < res.nrows; i++) {
        const char **row = res.rows[i];
        json_object *plan, *features;
        if (!row[1]) {
            continue; /* the tenant has no public plan */
        }
        plan = json_object_new_object();
        json_object_object_add(plan, "name", json_object_new_string(row[1]));
        json_object_object_add(plan, "description",
                               json_object_new_string(row[2] ? row[2] : ""));
        json_object_object_add(plan, "price",
                               json_object_new_string(row[3] ? row[3] : ""));
        /* array_to_json output of our own database: trusted, but checked */
        features = row[4] ? json_tokener_parse(row[4]) : NULL;
        if (!features || !json_object_is_type(features, json_type_array)) {
            json_object_put(features);
            features = json_object_new_array();
        }
        json_object_object_add(plan, "features", features);
        json_object_array_add(list, plan);
    }
    body = hs_json_to_string(r->pool, list);

    etag = hs_sha256_hex(r->pool, body, strlen(body));
    if (!etag) {
        return hs_send_internal_error(r);
    }
    etag = apr_psprintf(r->pool, "\"%.32s\"", etag);
    if (key) {
        cache_put(key, ttl, HTTP_OK, body, etag);
    }
    return answer(r, HTTP_OK, body, etag);
}
