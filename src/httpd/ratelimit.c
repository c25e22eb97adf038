/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ratelimit.c - fixed-window counters (the per-client request limits and
 * the verify attempt counters, see hs_ratelimit.h) without a lock that
 * every request of the server shares.
 *
 * shmcb (the default): a table of counters in shared memory, made in
 * post_config and kept across graceful restarts. A keyed 64-bit hash of
 * the key picks a bucket of RL_WAYS slots; each bucket has its own
 * process-shared robust mutex, held for a few loads and stores (a child
 * that dies holding it does not wedge the bucket). Two requests contend
 * only when their keys fall in the same bucket. A full bucket gives a new
 * key the slot whose window ends first: that key's count starts again
 * (looser, logged HS01408). Two keys with the same 64-bit hash would share
 * a count (stricter); with a random seed per table that is left to chance
 * (2^-64).
 *
 * memcache:host:port[,host:port...]: memcached's own atomic "incr" (and
 * "add" for the first hit of a window), so that hosts sharing it count
 * exactly and no host-wide lock exists. Our own small client of the text
 * protocol: apr_memcache sets no timeout once connected, and a memcached
 * that accepts but never answers would hold every request. Here every
 * connect, send and receive is bounded by RL_MC_TIMEOUT, after a failure
 * the server is skipped for RL_MC_PAUSE, and then:
 *   - request limits fail open (the request goes on; HS01405, at most
 *     once per RL_WARN_EVERY per process; a metric);
 *   - attempt counters fail closed (hs_counter_hit returns -1: verify
 *     answers 503 + Retry-After).
 * The stored value is a decimal number, (window start in seconds << 32) +
 * count, so one "incr" returns both; there are no binary bytes to leak.
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_main.h"
#include "http_core.h"
#include "http_protocol.h"
#include "ap_mpm.h"

#include <apr_atomic.h>
#include <apr_lib.h>
#include <apr_network_io.h>
#include <apr_reslist.h>
#include <apr_shm.h>
#include <apr_strings.h>

#include "hs_config.h"
#include "hs_http.h"
#include "hs_metrics.h"
#include "hs_log.h"
#include "hs_ratelimit.h"

APLOG_USE_MODULE(hydra_signup);

#define MSG_LIMIT "Too many requests; try again later"

#define RL_WAYS 8                          /* slots per bucket */
#define RL_DEFAULT_BYTES (2 * 1024 * 1024) /* shmcb without a size */
#define RL_MIN_BYTES (64 * 1024)
#define RL_MAX_BYTES (1024 * 1024 * 1024)
#define RL_SHM_KEY "hydra-signup-rl-table"
#define RL_MAGIC 0x48535231u
#define RL_MC_TIMEOUT apr_time_from_msec(200) /* connect, and each request */
#define RL_MC_PAUSE apr_time_from_sec(1)      /* skip a failed server */
#define RL_WARN_EVERY apr_time_from_sec(10)
#define RL_MC_PREFIX "hsrl1:"
#define RL_MC_MAX_KEY 250
#define RL_MC_DEFAULT_PORT 11211
#define RL_MC_MAX_REL 2592000 /* memcached: larger exptimes are absolute */

/* ---- the spec (HydraSignupRateLimitCache) ------------------------------ */

typedef struct {
    const char *host;
    apr_port_t port;
} rl_addr;

typedef struct {
    int memcache;
    apr_size_t bytes;            /* shmcb */
    apr_array_header_t *servers; /* memcache: rl_addr */
} rl_spec;

static const char *rl_parse(apr_pool_t *p, const char *arg, rl_spec *spec)
{
    const char *sep = strchr(arg, ':');
    const char *args = sep ? sep + 1 : NULL;
    apr_size_t nlen = sep ? (apr_size_t)(sep - arg) : strlen(arg);

    memset(spec, 0, sizeof(*spec));
    spec->bytes = RL_DEFAULT_BYTES;
    if (nlen == 5 && !strncasecmp(arg, "shmcb", 5)) {
        /* shmcb[:path[(bytes)]]: the path is not needed (the table is
         * anonymous shared memory); the size is the table's */
        const char *open = args ? strchr(args, '(') : NULL;
        if (open) {
            char *end;
            apr_int64_t n;
            errno = 0;
            n = apr_strtoi64(open + 1, &end, 10);
            if (errno || end == open + 1 || strcmp(end, ")") ||
                n < RL_MIN_BYTES || n > RL_MAX_BYTES) {
                return apr_psprintf(p,
                                    "'%s': the size in parentheses must be "
                                    "%d to %d bytes",
                                    arg, RL_MIN_BYTES, RL_MAX_BYTES);
            }
            spec->bytes = (apr_size_t)n;
        }
        return NULL;
    }
    if (nlen == 8 && !strncasecmp(arg, "memcache", 8)) {
        char *list, *item, *last;
        spec->memcache = 1;
        spec->servers = apr_array_make(p, 2, sizeof(rl_addr));
        if (!args || !*args) {
            return apr_psprintf(p, "'%s' names no server (memcache:host:port)",
                                arg);
        }
        list = apr_pstrdup(p, args);
        for (item = apr_strtok(list, ",", &last); item;
             item = apr_strtok(NULL, ",", &last)) {
            rl_addr *a = apr_array_push(spec->servers);
            char *host = NULL, *scope = NULL;
            apr_port_t port = 0;
            if (apr_parse_addr_port(&host, &scope, &port, item, p) !=
                    APR_SUCCESS ||
                !host || scope || (item[0] != '[' && strchr(host, ':'))) {
                /* "h:port" with a port that is not a number comes back as the
                 * host "h:port"; an IPv6 address goes in brackets */
                return apr_psprintf(p, "'%s' is not host:port", item);
            }
            a->host = host;
            a->port = port ? port : RL_MC_DEFAULT_PORT;
        }
        if (!spec->servers->nelts) {
            return apr_psprintf(p, "'%s' names no server", arg);
        }
        return NULL;
    }
    return apr_psprintf(p,
                        "'%s': the counters live in shmcb (this host's "
                        "shared memory, shmcb[:path(bytes)]) or memcache "
                        "(across hosts, memcache:host:port[,host:port...])",
                        arg);
}

const char *hs_ratelimit_check_spec(apr_pool_t *p, const char *arg)
{
    rl_spec spec;
    return rl_parse(p, arg, &spec);
}

/* ---- shared helpers ---------------------------------------------------- */

/* FNV-1a over seed and key, then murmur3's finalizer; never 0 */
static apr_uint64_t rl_hash(apr_uint64_t seed, const char *key)
{
    apr_uint64_t h = 0xcbf29ce484222325ULL ^ seed;
    const unsigned char *k;
    for (k = (const unsigned char *)key; *k; k++) {
        h = (h ^ *k) * 0x100000001b3ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h ? h : 1;
}

/* true at most once per RL_WARN_EVERY per process for *last */
static int rl_may_log(volatile apr_uint64_t *last, apr_time_t now)
{
    apr_uint64_t l = apr_atomic_read64(last);
    if (l && (apr_uint64_t)now - l < (apr_uint64_t)RL_WARN_EVERY) {
        return 0;
    }
    return apr_atomic_cas64(last, (apr_uint64_t)now, l) == l;
}

static volatile apr_uint64_t rl_warned_open, rl_warned_closed, rl_warned_evict,
    rl_warned_reset;

/* The counter store failed (rv): counted, and what (a numbered message)
 * logged at level at most once per RL_WARN_EVERY for *warned. */
static void rl_store_failed(request_rec *r, apr_status_t rv, apr_time_t now,
                            volatile apr_uint64_t *warned, int level,
                            const char *what)
{
    hs_metrics_add(HS_M_RL_STORE_ERRORS, 1);
    if (rl_may_log(warned, now)) {
        ap_log_rerror(APLOG_MARK, level, rv, r,
                      "%s (logged at most every %d s)", what,
                      (int)apr_time_sec(RL_WARN_EVERY));
    }
}

/* ---- shmcb: the table in shared memory --------------------------------- */

typedef struct {
    apr_uint64_t hash; /* 0: free */
    apr_time_t start;  /* window start */
    apr_time_t end;    /* window end: start + window */
    apr_uint32_t count;
    apr_uint32_t unused;
} rl_slot;

typedef struct {
    pthread_mutex_t lock;
    rl_slot slot[RL_WAYS];
} rl_bucket;

typedef struct {
    apr_uint32_t magic;
    apr_uint32_t nbuckets;
    apr_uint64_t seed;
    rl_bucket bucket[];
} rl_table;

/* ---- memcache ----------------------------------------------------------- */

typedef struct {
    rl_addr addr;
    apr_sockaddr_t *sa;
    apr_reslist_t *conns; /* this process's connections */
    volatile apr_uint64_t down_until;
} rl_server;

typedef struct {
    apr_pool_t *pool;
    apr_socket_t *sock;
    apr_size_t len; /* bytes in buf */
    unsigned long uses;
    char buf[128];
} rl_conn;

/* configuration-time state: set in post_config, read by requests */
static rl_table *rl_tab;
static rl_server *rl_servers;
static int rl_nservers;

int hs_ratelimit_pre_config(apr_pool_t *pconf, apr_pool_t *plog,
                            apr_pool_t *ptemp)
{
    (void)pconf;
    (void)plog;
    (void)ptemp;
    rl_tab = NULL;
    rl_servers = NULL;
    rl_nservers = 0;
    return OK;
}

static int table_setup(server_rec *s, apr_size_t bytes)
{
    apr_pool_t *pp = s->process->pool;
    apr_size_t n = (bytes - offsetof(rl_table, bucket)) / sizeof(rl_bucket);
    apr_size_t size = offsetof(rl_table, bucket) + n * sizeof(rl_bucket);
    apr_shm_t *shm = NULL;
    void *data = NULL;
    pthread_mutexattr_t attr;
    apr_status_t rv;
    apr_size_t i;
    int rc;

    apr_pool_userdata_get(&data, RL_SHM_KEY, pp);
    if ((shm = data) && apr_shm_size_get(shm) == size) {
        rl_table *t = apr_shm_baseaddr_get(shm);
        if (t->magic == RL_MAGIC && t->nbuckets == n) {
            rl_tab = t; /* a graceful restart keeps the counts */
            return OK;
        }
    }
    rv = apr_shm_create(&shm, size, NULL, pp);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                     HSLOGNO(01401) "cannot create the rate-limit table "
                                    "(%" APR_SIZE_T_FMT " bytes of shared "
                                    "memory)",
                     size);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    rl_tab = apr_shm_baseaddr_get(shm);
    memset(rl_tab, 0, size);
    rl_tab->nbuckets = (apr_uint32_t)n;
    if ((rv = apr_generate_random_bytes((unsigned char *)&rl_tab->seed,
                                        sizeof(rl_tab->seed))) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                     HSLOGNO(01402) "no random seed for the rate-limit "
                                    "table");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if ((rc = pthread_mutexattr_init(&attr)) ||
        (rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED)) ||
        (rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST))) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rc, s,
                     HSLOGNO(01403) "cannot make process-shared robust "
                                    "mutexes for the rate-limit table");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    for (i = 0; i < n && !rc; i++) {
        rc = pthread_mutex_init(&rl_tab->bucket[i].lock, &attr);
    }
    pthread_mutexattr_destroy(&attr);
    if (rc) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rc, s,
                     HSLOGNO(01404) "cannot initialise the rate-limit "
                                    "table's mutexes");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    rl_tab->magic = RL_MAGIC;
    apr_pool_userdata_set(shm, RL_SHM_KEY, apr_pool_cleanup_null, pp);
    return OK;
}

static apr_status_t bucket_lock(rl_bucket *b)
{
    int rc = pthread_mutex_lock(&b->lock);
    if (rc == EOWNERDEAD) {
        /* its holder died between a few stores: at worst one count off */
        rc = pthread_mutex_consistent(&b->lock);
    }
    return rc ? APR_FROM_OS_ERROR(rc) : APR_SUCCESS;
}

/* One hit on key's slot: a new window when the slot is another key's,
 * has ended, or starts in the future. *evicted: a live count was
 * dropped to make room. */
static apr_status_t table_hit(const char *key, apr_time_t now,
                              apr_time_t window, apr_uint32_t *count,
                              apr_time_t *start, int *evicted)
{
    apr_uint64_t h = rl_hash(rl_tab->seed, key);
    rl_bucket *b = &rl_tab->bucket[h % rl_tab->nbuckets];
    rl_slot *slot = NULL, *victim = NULL;
    apr_status_t rv;
    int i;

    if ((rv = bucket_lock(b)) != APR_SUCCESS) {
        return rv;
    }
    for (i = 0; i < RL_WAYS; i++) {
        rl_slot *x = &b->slot[i];
        if (x->hash == h) {
            slot = x;
            break;
        }
        /* free slots (end 0) first, then the window that ends first */
        if (!victim || x->end < victim->end) {
            victim = x;
        }
    }
    if (!slot) {
        slot = victim;
        *evicted = slot->hash && slot->end > now;
        slot->hash = h;
        slot->end = 0;
    }
    if (now >= slot->end || now < slot->start) {
        slot->start = now;
        slot->end = now + window;
        slot->count = 0;
    }
    if (slot->count < 0xFFFFFFFFu) {
        slot->count++;
    }
    *count = slot->count;
    *start = slot->start;
    pthread_mutex_unlock(&b->lock);
    return APR_SUCCESS;
}

static apr_status_t table_reset(const char *key)
{
    apr_uint64_t h = rl_hash(rl_tab->seed, key);
    rl_bucket *b = &rl_tab->bucket[h % rl_tab->nbuckets];
    apr_status_t rv;
    int i;

    if ((rv = bucket_lock(b)) != APR_SUCCESS) {
        return rv;
    }
    for (i = 0; i < RL_WAYS; i++) {
        if (b->slot[i].hash == h) {
            memset(&b->slot[i], 0, sizeof(b->slot[i]));
        }
    }
    pthread_mutex_unlock(&b->lock);
    return APR_SUCCESS;
}

/* ---- memcache: connections --------------------------------------------- */

static apr_status_t conn_make(void **res, void *params, apr_pool_t *unused)
{
    rl_server *srv = params;
    apr_pool_t *p;
    rl_conn *c;
    apr_status_t rv;

    (void)unused;
    /* a pool of its own: connections are made by any thread */
    if ((rv = apr_pool_create_unmanaged_ex(&p, NULL, NULL)) != APR_SUCCESS) {
        return rv;
    }
    c = apr_pcalloc(p, sizeof(*c));
    c->pool = p;
    if ((rv = apr_socket_create(&c->sock, srv->sa->family, SOCK_STREAM,
                                APR_PROTO_TCP, p)) != APR_SUCCESS ||
        (rv = apr_socket_timeout_set(c->sock, RL_MC_TIMEOUT)) != APR_SUCCESS ||
        (rv = apr_socket_opt_set(c->sock, APR_TCP_NODELAY, 1)) != APR_SUCCESS ||
        (rv = apr_socket_connect(c->sock, srv->sa)) != APR_SUCCESS) {
        apr_pool_destroy(p);
        return rv;
    }
    *res = c;
    return APR_SUCCESS;
}

static apr_status_t conn_free(void *res, void *params, apr_pool_t *unused)
{
    rl_conn *c = res;
    (void)params;
    (void)unused;
    apr_socket_close(c->sock);
    apr_pool_destroy(c->pool);
    return APR_SUCCESS;
}

/* Lets the socket wait no later than the deadline. */
static apr_status_t mc_until(rl_conn *c, apr_time_t deadline)
{
    apr_time_t left = deadline - apr_time_now();
    if (left <= 0) {
        return APR_TIMEUP;
    }
    return apr_socket_timeout_set(c->sock, left);
}

static apr_status_t mc_send(rl_conn *c, apr_time_t deadline, const char *buf,
                            apr_size_t len)
{
    while (len) {
        apr_size_t n = len;
        apr_status_t rv = mc_until(c, deadline);
        if (rv == APR_SUCCESS) {
            rv = apr_socket_send(c->sock, buf, &n);
        }
        if (rv != APR_SUCCESS) {
            return rv;
        }
        buf += n;
        len -= n;
    }
    return APR_SUCCESS;
}

/* One answer line (without CRLF) into line, before the deadline. */
static apr_status_t mc_line(rl_conn *c, apr_time_t deadline, char *line,
                            apr_size_t max)
{
    for (;;) {
        char *eol = c->len ? memchr(c->buf, '\n', c->len) : NULL;
        apr_size_t n;
        apr_status_t rv;
        if (eol) {
            apr_size_t l = (apr_size_t)(eol - c->buf);
            apr_size_t copy = l && c->buf[l - 1] == '\r' ? l - 1 : l;
            if (copy >= max) {
                return APR_EGENERAL;
            }
            memcpy(line, c->buf, copy);
            line[copy] = '\0';
            c->len -= l + 1;
            memmove(c->buf, eol + 1, c->len);
            return APR_SUCCESS;
        }
        if (c->len == sizeof(c->buf)) {
            return APR_EGENERAL; /* no answer of ours is this long */
        }
        if ((rv = mc_until(c, deadline)) != APR_SUCCESS) {
            return rv;
        }
        n = sizeof(c->buf) - c->len;
        rv = apr_socket_recv(c->sock, c->buf + c->len, &n);
        if (n == 0 && rv == APR_SUCCESS) {
            rv = APR_EOF;
        }
        if (rv != APR_SUCCESS && !(APR_STATUS_IS_EOF(rv) && n)) {
            return rv;
        }
        c->len += n;
    }
}

/* Sends cmd, reads one answer line. */
static apr_status_t mc_ask(rl_conn *c, apr_time_t deadline, const char *cmd,
                           char *line, apr_size_t max)
{
    apr_status_t rv = mc_send(c, deadline, cmd, strlen(cmd));
    c->uses++;
    return rv == APR_SUCCESS ? mc_line(c, deadline, line, max) : rv;
}

/* The key as memcached sees it: printable, no spaces, at most
 * RL_MC_MAX_KEY bytes; other keys by their hash (the same on every
 * host: no seed). */
static const char *mc_key(apr_pool_t *p, const char *key)
{
    const unsigned char *k;
    int plain = strlen(key) + sizeof(RL_MC_PREFIX) <= RL_MC_MAX_KEY;
    for (k = (const unsigned char *)key; *k && plain; k++) {
        plain = *k > 0x20 && *k < 0x7f;
    }
    if (plain) {
        return apr_pstrcat(p, RL_MC_PREFIX, key, NULL);
    }
    return apr_psprintf(p,
                        RL_MC_PREFIX "#%016" APR_UINT64_T_HEX_FMT
                                     "%016" APR_UINT64_T_HEX_FMT,
                        rl_hash(0, key), rl_hash(0x9e3779b97f4a7c15ULL, key));
}

typedef enum { MC_HIT, MC_RESET } mc_op;

/* The exchange of one hit (incr; add when there is none; incr again when
 * another host added it first) or one reset (delete) on connection c,
 * all of it within RL_MC_TIMEOUT. */
static apr_status_t mc_exchange(apr_pool_t *p, rl_conn *c, mc_op op,
                                const char *key, apr_time_t now, long window,
                                apr_uint64_t *value)
{
    apr_time_t deadline = apr_time_now() + RL_MC_TIMEOUT;
    char line[64], *end;
    apr_status_t rv;
    int round;

    if (op == MC_RESET) {
        rv = mc_ask(c, deadline, apr_pstrcat(p, "delete ", key, "\r\n", NULL),
                    line, sizeof(line));
        if (rv == APR_SUCCESS && strcmp(line, "DELETED") &&
            strcmp(line, "NOT_FOUND")) {
            rv = APR_EGENERAL;
        }
        return rv;
    }
    for (round = 0; round < 2; round++) {
        apr_uint64_t first =
            ((apr_uint64_t)apr_time_sec(now) << 32) | (apr_uint64_t)1;
        long exp =
            window <= RL_MC_MAX_REL ? window : (long)apr_time_sec(now) + window;
        char val[24];

        rv = mc_ask(c, deadline, apr_pstrcat(p, "incr ", key, " 1\r\n", NULL),
                    line, sizeof(line));
        if (rv != APR_SUCCESS) {
            return rv;
        }
        if (apr_isdigit(line[0])) {
            errno = 0;
            *value = (apr_uint64_t)strtoull(line, &end, 10);
            return errno || *end ? APR_EGENERAL : APR_SUCCESS;
        }
        if (strcmp(line, "NOT_FOUND")) {
            return APR_EGENERAL;
        }
        apr_snprintf(val, sizeof(val), "%" APR_UINT64_T_FMT, first);
        rv = mc_ask(c, deadline,
                    apr_psprintf(p, "add %s 0 %ld %u\r\n%s\r\n", key, exp,
                                 (unsigned)strlen(val), val),
                    line, sizeof(line));
        if (rv != APR_SUCCESS) {
            return rv;
        }
        if (!strcmp(line, "STORED")) {
            *value = first;
            return APR_SUCCESS;
        }
        if (strcmp(line, "NOT_STORED")) {
            return APR_EGENERAL;
        }
        /* another host or thread added it first: count on it */
    }
    return APR_EGENERAL;
}

/* One operation on the server for key: at most two connections (a pooled
 * one that went stale on memcached's restart, then a new one), each step
 * bounded; a failed server is skipped for RL_MC_PAUSE. */
static apr_status_t mc_do(request_rec *r, mc_op op, const char *key,
                          apr_time_t now, long window, apr_uint64_t *value)
{
    const char *k = mc_key(r->pool, key);
    rl_server *srv =
        &rl_servers[rl_nservers > 1 ? rl_hash(0, k) % (unsigned)rl_nservers
                                    : 0];
    apr_status_t rv = APR_EGENERAL;
    int tries, reused;

    if (!srv->conns || (apr_time_t)apr_atomic_read64(&srv->down_until) > now) {
        return APR_ECONNREFUSED;
    }
    for (tries = 0; tries < 2; tries++) {
        void *res;
        rl_conn *c;
        if ((rv = apr_reslist_acquire(srv->conns, &res)) != APR_SUCCESS) {
            break;
        }
        c = res;
        reused = c->uses > 0;
        rv = mc_exchange(r->pool, c, op, k, now, window, value);
        if (rv == APR_SUCCESS) {
            apr_reslist_release(srv->conns, c);
            return APR_SUCCESS;
        }
        apr_reslist_invalidate(srv->conns, c);
        /* a reused connection closed or reset (memcached restarted): once
         * more on a new one; a timeout or a wrong answer is not retried */
        if (!reused || APR_STATUS_IS_TIMEUP(rv) || rv == APR_EGENERAL) {
            break;
        }
    }
    apr_atomic_set64(&srv->down_until,
                     (apr_uint64_t)(apr_time_now() + RL_MC_PAUSE));
    return rv;
}

/* ---- post_config and child_init ---------------------------------------- */

int hs_ratelimit_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                             apr_pool_t *ptemp, server_rec *s)
{
    hs_srv_cfg *sc =
        ap_get_module_config(s->module_config, &hydra_signup_module);
    const char *spec_arg = hs_srv_ratelimit_cache(sc);
    const char *err;
    rl_spec spec;
    int i;

    (void)plog;
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK; /* the first, dry-run pass */
    }
    if ((err = rl_parse(ptemp, spec_arg, &spec))) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                     HSLOGNO(01409) "HydraSignupRateLimitCache %s", err);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (!spec.memcache) {
        return table_setup(s, spec.bytes);
    }
    rl_nservers = spec.servers->nelts;
    rl_servers = apr_pcalloc(pconf, rl_nservers * sizeof(*rl_servers));
    for (i = 0; i < rl_nservers; i++) {
        rl_server *srv = &rl_servers[i];
        apr_status_t rv;
        srv->addr = APR_ARRAY_IDX(spec.servers, i, rl_addr);
        srv->addr.host = apr_pstrdup(pconf, srv->addr.host);
        rv = apr_sockaddr_info_get(&srv->sa, srv->addr.host, APR_UNSPEC,
                                   srv->addr.port, 0, pconf);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                         HSLOGNO(01410) "HydraSignupRateLimitCache: cannot "
                                        "resolve memcached %s:%u",
                         srv->addr.host, (unsigned)srv->addr.port);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    return OK;
}

void hs_ratelimit_child_init(apr_pool_t *p, server_rec *s)
{
    int i, threads = 1;

    if (ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads) != APR_SUCCESS ||
        threads < 1) {
        threads = 1;
    }
    for (i = 0; i < rl_nservers; i++) {
        rl_server *srv = &rl_servers[i];
        /* up to one connection per thread: a request never waits for
         * another's connection */
        apr_status_t rv = apr_reslist_create(&srv->conns, 0, threads, threads,
                                             0, conn_make, conn_free, srv, p);
        if (rv != APR_SUCCESS) {
            srv->conns = NULL;
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                         HSLOGNO(01411) "cannot make the memcached "
                                        "connection pool for %s:%u in this "
                                        "child",
                         srv->addr.host, (unsigned)srv->addr.port);
            continue;
        }
        apr_reslist_timeout_set(srv->conns, RL_MC_TIMEOUT);
    }
}

/* ---- counting ------------------------------------------------------------ */

/* Whom a counter belongs to: the client's address (r->useragent_ip, so
 * that mod_remoteip behind a proxy works), for IPv6 its /64 - one host
 * usually holds a whole /64 and could step through it, one address per
 * request. */
static const char *rl_client(request_rec *r)
{
#if APR_HAVE_IPV6
    const apr_sockaddr_t *sa = r->useragent_addr;
    if (sa && sa->family == APR_INET6 &&
        !IN6_IS_ADDR_V4MAPPED(&sa->sa.sin6.sin6_addr)) {
        const unsigned char *b = (const unsigned char *)&sa->sa.sin6.sin6_addr;
        return apr_psprintf(r->pool, "%02x%02x:%02x%02x:%02x%02x:%02x%02x::/64",
                            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]);
    }
#endif
    return r->useragent_ip ? r->useragent_ip : "-";
}

/* One hit on key's counter: *count (this one included) and *start. */
static apr_status_t rl_hit(request_rec *r, const char *key, apr_time_t now,
                           long window_secs, apr_uint32_t *count,
                           apr_time_t *start)
{
    apr_status_t rv;

    if (rl_tab) {
        int evicted = 0;
        rv = table_hit(key, now, apr_time_from_sec(window_secs), count, start,
                       &evicted);
        if (evicted && rl_may_log(&rl_warned_evict, now)) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                          HSLOGNO(01408) "rate-limit table full: a live "
                                         "counter made room for another "
                                         "(raise the size: "
                                         "HydraSignupRateLimitCache "
                                         "shmcb:(bytes))");
        }
        return rv;
    }
    if (rl_servers) {
        apr_uint64_t v = 0;
        rv = mc_do(r, MC_HIT, key, now, window_secs, &v);
        if (rv == APR_SUCCESS) {
            *count = (apr_uint32_t)(v & 0xFFFFFFFFu);
            *start = apr_time_from_sec((apr_time_t)(v >> 32));
        }
        return rv;
    }
    return APR_ENOTIMPL;
}

/* Seconds until the window that started at start ends: 1 to window. */
static long rl_left(apr_time_t start, long window, apr_time_t now)
{
    long left = (long)apr_time_sec(start + apr_time_from_sec(window) - now) + 1;
    return left < 1 ? 1 : left > window ? window : left;
}

int hs_ratelimit(request_rec *r, const hs_dir_cfg *cfg, hs_rate_kind kind)
{
    hs_rate rate = *(kind == HS_RATE_SIGNUP  ? hs_cfg_rate_signup(cfg)
                     : kind == HS_RATE_PLANS ? hs_cfg_rate_plans(cfg)
                                             : hs_cfg_rate_verify(cfg));
    static const char kind_char[] = {'s', 'v', 'p'};
    static const char *const kind_name[] = {"signup", "verify", "plans"};
    static const hs_counter kind_metric[] = {HS_M_RL_SIGNUP, HS_M_RL_VERIFY,
                                             HS_M_RL_PLANS};
    const char *key;
    apr_time_t now = apr_time_now(), start = now;
    apr_uint32_t count = 0;
    apr_status_t rv;

    /* one counter per client, virtual host and limit: a vhost's budget is
     * its own (the main server with a high limit and a public vhost with a
     * low one see the same clients); the same on every host that shares a
     * memcache, as the key holds the ServerName, not this host */
    key = apr_psprintf(
        r->pool, "%c|%s:%u|%d/%d|%s", kind_char[kind],
        r->server->server_hostname ? r->server->server_hostname : "-",
        (unsigned)r->server->port, rate.limit, rate.window, rl_client(r));
    if ((rv = rl_hit(r, key, now, rate.window, &count, &start)) !=
        APR_SUCCESS) {
        /* fail open: a counter store that cannot answer in time must not
         * stop the API */
        rl_store_failed(r, rv, now, &rl_warned_open, APLOG_WARNING,
                        HSLOGNO(01405) "rate-limit counter store did not "
                                       "answer: request limits let requests "
                                       "through");
        return 0;
    }
    if (count > (apr_uint32_t)rate.limit) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      HSLOGNO(00608) "%s rate limit (%d per %d s) exceeded "
                                     "by %s",
                      kind_name[kind], rate.limit, rate.window,
                      r->useragent_ip);
        apr_table_setn(r->headers_out, "Cache-Control", "no-store");
        hs_metrics_add(kind_metric[kind], 1);
        hs_send_retry(r, HTTP_TOO_MANY_REQUESTS, MSG_LIMIT,
                      rl_left(start, rate.window, now));
        return 1;
    }
    return 0;
}

json_object *hs_limited_json(request_rec *r, const hs_dir_cfg *cfg,
                             hs_rate_kind kind)
{
    json_object *body = NULL;

    if (hs_ratelimit(r, cfg, kind)) {
        return NULL;
    }
    hs_read_json(r, cfg, &body);
    return body;
}

/* ---- counters under opaque keys (verify attempts) ---------------------- */

int hs_counter_hit(request_rec *r, const char *key, long window_secs,
                   unsigned long *count, long *left)
{
    apr_time_t now = apr_time_now(), start = now;
    apr_uint32_t n = 0;
    apr_status_t rv;

    if (!rl_tab && !rl_servers) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      HSLOGNO(01201) "no shared cache for the verify attempt "
                                     "counters");
        return -1;
    }
    if ((rv = rl_hit(r, key, now, window_secs, &n, &start)) != APR_SUCCESS) {
        /* fail closed: an attempt that cannot be counted is not made */
        rl_store_failed(r, rv, now, &rl_warned_closed, APLOG_ERR,
                        HSLOGNO(01406) "rate-limit counter store did not "
                                       "answer: verify attempts are refused "
                                       "(503) until it does");
        return -1;
    }
    *count = n;
    *left = rl_left(start, window_secs, now);
    return 0;
}

void hs_counter_reset(request_rec *r, const char *key)
{
    apr_time_t now = apr_time_now();
    apr_uint64_t unused = 0;
    apr_status_t rv = rl_tab       ? table_reset(key)
                      : rl_servers ? mc_do(r, MC_RESET, key, now, 0, &unused)
                                   : APR_SUCCESS;

    if (rv != APR_SUCCESS) {
        rl_store_failed(r, rv, now, &rl_warned_reset, APLOG_WARNING,
                        HSLOGNO(01407) "attempt counter reset failed");
    }
}
