/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.c - directives, create/merge, and the configuration-time checks
 * (CONTRACT section 6). Everything that can be refused is refused here, with
 * the directive's name, so that `httpd -t` catches it before a request does.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "ap_provider.h"

#include <apr_file_io.h>
#include <apr_fnmatch.h>
#include <apr_hash.h>
#include <apr_strings.h>

#include "hs_config.h"
#include "hs_dbgate.h"
#include "hs_log.h"
#include "hs_page.h"
#include "hs_ratelimit.h"
#include "hs_spool.h"

APLOG_USE_MODULE(hydra_signup);

#define MAX_MAX_BODY (1024 * 1024)
#define MIN_SECRET 32
#define DEF_MAX_ATTEMPTS_PER_DAY 20
#define DEF_TENANT_MAILS_PER_HOUR 1000
#define DEF_RATE_PLANS_N 120
#define DEF_RATE_PLANS_W 60

/* defaults of HS_DIR_FIELDS that are not plain constants */
static const hs_rate rate_signup_default = {10, 60};
static const hs_rate rate_verify_default = {20, 60};
static const hs_rate rate_plans_default = {120, 60};

/* ---- create, merge and accessors, generated from HS_DIR_FIELDS --------- */

#define UNSET_NUM HS_UNSET
#define UNSET_PTR NULL
#define IS_SET_NUM(v) ((v) != HS_UNSET)
#define IS_SET_PTR(v) ((v) != NULL)

#define FIELD_UNSET(kind, type, field, dflt) c->field = UNSET_##kind;
#define FIELD_MERGE(kind, type, field, dflt)                                   \
    c->field = IS_SET_##kind(add->field) ? add->field : base->field;

/* create(p, ctx) and merge(p, base, add) of a record of FIELDS */
#define CREATE_AND_MERGE(rec, FIELDS, create, ctx_type, merge)                 \
    void *create(apr_pool_t *p, ctx_type ctx)                                  \
    {                                                                          \
        rec *c = apr_palloc(p, sizeof(*c));                                    \
        FIELDS(FIELD_UNSET)                                                    \
        return c;                                                              \
    }                                                                          \
    void *merge(apr_pool_t *p, void *basev, void *addv)                        \
    {                                                                          \
        const rec *base = basev, *add = addv;                                  \
        rec *c = apr_palloc(p, sizeof(*c));                                    \
        FIELDS(FIELD_MERGE)                                                    \
        return c;                                                              \
    }

/* the effective value of one field: its own, or the default */
#define ACCESSOR(rec, name, kind, type, field, dflt)                           \
    type name(const rec *c)                                                    \
    {                                                                          \
        return IS_SET_##kind(c->field) ? c->field : (dflt);                    \
    }
#define DIR_ACCESSOR(kind, type, field, dflt)                                  \
    ACCESSOR(hs_dir_cfg, hs_cfg_##field, kind, type, field, dflt)
#define SRV_ACCESSOR(kind, type, field, dflt)                                  \
    ACCESSOR(hs_srv_cfg, hs_srv_##field, kind, type, field, dflt)

CREATE_AND_MERGE(hs_dir_cfg, HS_DIR_FIELDS, hs_create_dir_cfg, char *,
                 hs_merge_dir_cfg)
CREATE_AND_MERGE(hs_srv_cfg, HS_SRV_FIELDS, hs_create_srv_cfg, server_rec *,
                 hs_merge_srv_cfg)
HS_DIR_FIELDS(DIR_ACCESSOR)
HS_SRV_FIELDS(SRV_ACCESSOR)

/* "alg|key file|kid" -> the loaded key: filled by hs_check_config (in
 * pconf), read-only while requests are served. */
static apr_hash_t *jwt_keys;

/* The key for the (alg, key file, kid) that win in c, whichever contexts
 * they came from; NULL when hs_check_config did not load one for it. */
const hs_jwt_key *hs_cfg_jwt_key(const hs_dir_cfg *c)
{
    char id[4096];
    int alg = hs_cfg_jwt_alg(c);
    if (!jwt_keys || !c->jwt_key_file) {
        return NULL;
    }
    apr_snprintf(id, sizeof(id), "%d|%s|%s", alg, c->jwt_key_file,
                 c->jwt_kid ? c->jwt_kid : "");
    return apr_hash_get(jwt_keys, id, APR_HASH_KEY_STRING);
}

const hs_mail_template *hs_cfg_template(const hs_dir_cfg *c, hs_mail_kind kind)
{
    return kind == HS_MAIL_VERIFY ? hs_cfg_mail_template(c)
                                  : hs_cfg_mail_exists_template(c);
}

int hs_cfg_serves(const hs_dir_cfg *c, const char *slug)
{
    int i;
    if (!c->tenants) {
        return 0;
    }
    if (c->tenants->all) {
        return 1;
    }
    for (i = 0; i < c->tenants->slugs->nelts; i++) {
        if (!strcmp(APR_ARRAY_IDX(c->tenants->slugs, i, const char *), slug)) {
            return 1;
        }
    }
    return 0;
}

int hs_cfg_cors_allowed(const hs_dir_cfg *c, const char *origin)
{
    int i;
    if (!c->cors_origins || !origin) {
        return 0;
    }
    for (i = 0; i < c->cors_origins->nelts; i++) {
        if (!strcmp(APR_ARRAY_IDX(c->cors_origins, i, const char *), origin)) {
            return 1;
        }
    }
    return 0;
}

/* ---- directive handlers ------------------------------------------------ */

static const char *dir_error(cmd_parms *cmd, const char *fmt, const char *arg)
{
    return apr_pstrcat(cmd->pool, cmd->cmd->name, ": ",
                       apr_psprintf(cmd->pool, fmt, arg), NULL);
}

/* Parses a whole positive number no larger than max. */
static int parse_positive(const char *arg, long max, long *out)
{
    char *end;
    apr_int64_t v;
    if (!arg || !*arg) {
        return -1;
    }
    errno = 0;
    v = apr_strtoi64(arg, &end, 10);
    if (errno || *end || v <= 0 || v > max) {
        return -1;
    }
    *out = (long)v;
    return 0;
}

/* cmd->info is the offset of a long field */
static const char *set_seconds(cmd_parms *cmd, void *cfg, const char *arg)
{
    long v;
    if (parse_positive(arg, 10L * 365 * 86400, &v)) {
        return dir_error(cmd, "'%s' is not a positive whole number of seconds",
                         arg);
    }
    *(long *)((char *)cfg + (apr_size_t)cmd->info) = v;
    return NULL;
}

/* cmd->info is the offset of an int field */
static const char *set_count(cmd_parms *cmd, void *cfg, const char *arg)
{
    long v;
    if (parse_positive(arg, 1000000, &v)) {
        return dir_error(cmd, "'%s' is not a positive whole number", arg);
    }
    *(int *)((char *)cfg + (apr_size_t)cmd->info) = (int)v;
    return NULL;
}

static const char *set_string(cmd_parms *cmd, void *cfg, const char *arg)
{
    if (!*arg) {
        return dir_error(cmd, "%sneeds a value", "");
    }
    *(const char **)((char *)cfg + (apr_size_t)cmd->info) = arg;
    return NULL;
}

static const char *set_max_body(cmd_parms *cmd, void *cfg, const char *arg)
{
    hs_dir_cfg *c = cfg;
    long v;
    if (parse_positive(arg, MAX_MAX_BODY, &v)) {
        return dir_error(
            cmd, "'%s' is not a number of bytes between 1 and 1048576", arg);
    }
    c->max_body = v;
    return NULL;
}

static const char *set_tenants(cmd_parms *cmd, void *cfg, const char *arg)
{
    hs_dir_cfg *c = cfg;
    const char *p;
    if (!c->tenants) {
        const ap_directive_t *sec =
            cmd->directive ? cmd->directive->parent : NULL;
        c->tenants = apr_pcalloc(cmd->pool, sizeof(*c->tenants));
        c->tenants->slugs = apr_array_make(cmd->pool, 4, sizeof(const char *));
        if (cmd->path && sec && !strcasecmp(sec->directive, "<Location") &&
            sec->args && sec->args[0] != '~' && !apr_fnmatch_test(cmd->path)) {
            c->tenants->base = cmd->path;
        }
    }
    if (!strcmp(arg, "*")) {
        c->tenants->all = 1;
        return NULL;
    }
    if (strlen(arg) > 100) {
        return dir_error(cmd, "'%s' is longer than 100 characters", arg);
    }
    for (p = arg; *p; p++) {
        if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
            return dir_error(cmd, "'%s' contains a control character", arg);
        }
    }
    APR_ARRAY_PUSH(c->tenants->slugs, const char *) = arg;
    return NULL;
}

static const char *set_alg(cmd_parms *cmd, void *cfg, const char *arg)
{
    hs_jwt_alg alg;
    if (hs_jwt_alg_parse(arg, &alg)) {
        return dir_error(cmd,
                         "unknown algorithm '%s' (use HS256, RS256, ES256 or "
                         "EdDSA)",
                         arg);
    }
    ((hs_dir_cfg *)cfg)->jwt_alg = (int)alg;
    return NULL;
}

static const char *readable_file(cmd_parms *cmd, const char *arg,
                                 const char **path)
{
    apr_finfo_t fi;
    apr_status_t rv;

    *path = ap_server_root_relative(cmd->pool, arg);
    if (!*path) {
        return dir_error(cmd, "invalid path '%s'", arg);
    }
    rv = apr_stat(&fi, *path, APR_FINFO_TYPE, cmd->temp_pool);
    if (rv != APR_SUCCESS) {
        char buf[120];
        return apr_psprintf(cmd->pool, "%s: cannot read %s: %s", cmd->cmd->name,
                            *path, apr_strerror(rv, buf, sizeof(buf)));
    }
    if (fi.filetype != APR_REG) {
        return apr_psprintf(cmd->pool, "%s: %s is not a regular file",
                            cmd->cmd->name, *path);
    }
    if (access(*path, R_OK) != 0) {
        return apr_psprintf(cmd->pool, "%s: cannot read %s: %s", cmd->cmd->name,
                            *path, strerror(errno));
    }
    return NULL;
}

static const char *read_whole_file(cmd_parms *cmd, const char *path,
                                   char **data, apr_size_t *len)
{
    apr_file_t *f;
    apr_finfo_t fi;
    apr_status_t rv;

    rv = apr_file_open(&f, path, APR_FOPEN_READ | APR_FOPEN_BINARY,
                       APR_OS_DEFAULT, cmd->temp_pool);
    if (rv == APR_SUCCESS) {
        rv = apr_file_info_get(&fi, APR_FINFO_SIZE, f);
        if (rv == APR_SUCCESS && fi.size > 1024 * 1024) {
            apr_file_close(f);
            return apr_psprintf(cmd->pool, "%s: %s is larger than 1 MiB",
                                cmd->cmd->name, path);
        }
        if (rv == APR_SUCCESS) {
            *data = apr_palloc(cmd->pool, (apr_size_t)fi.size + 1);
            rv = apr_file_read_full(f, *data, (apr_size_t)fi.size, len);
            if (rv == APR_EOF) {
                rv = APR_SUCCESS;
            }
            (*data)[*len] = '\0';
        }
        apr_file_close(f);
    }
    if (rv != APR_SUCCESS) {
        char buf[120];
        return apr_psprintf(cmd->pool, "%s: cannot read %s: %s", cmd->cmd->name,
                            path, apr_strerror(rv, buf, sizeof(buf)));
    }
    return NULL;
}

static const char *set_key_file(cmd_parms *cmd, void *cfg, const char *arg)
{
    hs_dir_cfg *c = cfg;
    /* loaded in check_config, once the algorithm is known */
    return readable_file(cmd, arg, &c->jwt_key_file);
}

static const char *set_code_secret(cmd_parms *cmd, void *cfg, const char *arg)
{
    hs_dir_cfg *c = cfg;
    hs_secret *secret;
    const char *path, *err;
    char *data;
    apr_size_t len;

    if ((err = readable_file(cmd, arg, &path)) ||
        (err = read_whole_file(cmd, path, &data, &len))) {
        return err;
    }
    if (len > 0 && data[len - 1] == '\n') {
        len--;
        if (len > 0 && data[len - 1] == '\r') {
            len--;
        }
    }
    if (len < MIN_SECRET) {
        return apr_psprintf(cmd->pool,
                            "%s: %s holds %" APR_SIZE_T_FMT
                            " bytes; the code secret needs at least %d",
                            cmd->cmd->name, path, len, MIN_SECRET);
    }
    secret = apr_palloc(cmd->pool, sizeof(*secret));
    secret->file = path;
    secret->data = (const unsigned char *)data;
    secret->len = len;
    c->code_secret = secret;
    return NULL;
}

/* The place of arg among words[0..n) (any letter case), or -1. */
static int word_index(const char *arg, const char *const *words, int n)
{
    int i;
    for (i = 0; i < n; i++) {
        if (!strcasecmp(arg, words[i])) {
            return i;
        }
    }
    return -1;
}

static const char *set_placement(cmd_parms *cmd, void *cfg, const char *arg)
{
    /* in the order of hs_placement */
    static const char *const names[] = {"spread", "fill"};
    int i = word_index(arg, names, 2);

    if (i < 0) {
        return dir_error(cmd, "'%s' is neither spread nor fill", arg);
    }
    ((hs_dir_cfg *)cfg)->placement = i;
    return NULL;
}

static const char *set_spool(cmd_parms *cmd, void *cfg, const char *arg)
{
    hs_dir_cfg *c = cfg;
    const char *dir = ap_server_root_relative(cmd->pool, arg);
    const char *why;
    if (!dir) {
        return dir_error(cmd, "invalid path '%s'", arg);
    }
    if ((why = hs_spool_prepare(cmd->temp_pool, dir)) != NULL) {
        return apr_psprintf(cmd->pool, "%s: %s", cmd->cmd->name, why);
    }
    c->spool_dir = dir;
    return NULL;
}

static const char *set_mail_from(cmd_parms *cmd, void *cfg, const char *arg)
{
    const char *why = hs_mail_check_from(cmd->temp_pool, arg);
    if (why) {
        return apr_psprintf(cmd->pool, "%s: '%s': %s", cmd->cmd->name, arg,
                            why);
    }
    ((hs_dir_cfg *)cfg)->mail_from = arg;
    return NULL;
}

static const char *set_template(cmd_parms *cmd, void *cfg, const char *arg)
{
    hs_dir_cfg *c = cfg;
    hs_mail_kind kind = cmd->info ? HS_MAIL_EXISTS : HS_MAIL_VERIFY;
    const char *path, *err;
    char *data;
    apr_size_t len;
    hs_mail_template *t;

    if ((err = readable_file(cmd, arg, &path)) ||
        (err = read_whole_file(cmd, path, &data, &len))) {
        return err;
    }
    if ((err = hs_mail_template_parse(cmd->pool, data, len, kind, &t))) {
        return apr_psprintf(cmd->pool, "%s: %s: %s", cmd->cmd->name, path, err);
    }
    if (kind == HS_MAIL_VERIFY) {
        c->mail_template = t;
    }
    else {
        c->mail_exists_template = t;
    }
    return NULL;
}

static const char *set_rate(cmd_parms *cmd, void *cfg, const char *which,
                            const char *n, const char *secs)
{
    hs_dir_cfg *c = cfg;
    hs_rate *r = apr_palloc(cmd->pool, sizeof(*r));
    long limit, window;
    static const char *const kinds[] = {"signup", "verify", "plans"};

    switch (word_index(which, kinds, 3)) {
        case 0:
            c->rate_signup = r;
            break;
        case 1:
            c->rate_verify = r;
            break;
        case 2:
            c->rate_plans = r;
            break;
        default:
            return dir_error(cmd, "'%s' is not signup, verify or plans", which);
    }
    if (parse_positive(n, 1000000, &limit)) {
        return dir_error(cmd, "'%s' is not a positive number of requests", n);
    }
    if (parse_positive(secs, 86400, &window)) {
        return dir_error(cmd, "'%s' is not a window of 1 to 86400 seconds",
                         secs);
    }
    r->limit = (int)limit;
    r->window = (int)window;
    return NULL;
}

static const char *set_cache(cmd_parms *cmd, void *cfg, const char *arg)
{
    hs_srv_cfg *sc =
        ap_get_module_config(cmd->server->module_config, &hydra_signup_module);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    if (err) {
        return err;
    }
    /* shmcb or memcache:host:port: the module's own counter stores, no
     * socache module needed (ratelimit.c) */
    if ((err = hs_ratelimit_check_spec(cmd->temp_pool, arg))) {
        return dir_error(cmd, "%s", err);
    }
    sc->ratelimit_cache = arg;
    return NULL;
}

/* Off (0) or 1 to 3600 seconds into *v; NULL, or why arg is neither. */
static const char *parse_off_seconds(cmd_parms *cmd, const char *arg, long *v)
{
    if (!strcasecmp(arg, "off")) {
        *v = 0;
        return NULL;
    }
    if (parse_positive(arg, 3600, v)) {
        return dir_error(cmd, "'%s' is neither Off nor 1 to 3600 seconds", arg);
    }
    return NULL;
}

static const char *set_reap_interval(cmd_parms *cmd, void *cfg, const char *arg)
{
    hs_srv_cfg *sc =
        ap_get_module_config(cmd->server->module_config, &hydra_signup_module);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    long v;
    if (err || (err = parse_off_seconds(cmd, arg, &v))) {
        return err;
    }
    sc->reap_interval = v; /* hs_srv_reap_interval() 0: no reaper */
    return NULL;
}

static const char *set_db_connections(cmd_parms *cmd, void *cfg, const char *n,
                                      const char *wait)
{
    hs_srv_cfg *sc =
        ap_get_module_config(cmd->server->module_config, &hydra_signup_module);
    const char *err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE);
    long max, ms = 5000;
    if (err) {
        return err;
    }
    if (parse_positive(n, 100000, &max)) {
        return dir_error(cmd, "'%s' is not a positive number of connections",
                         n);
    }
    if (wait && parse_positive(wait, 600000, &ms)) {
        return dir_error(cmd, "'%s' is not a wait of 1 to 600000 ms", wait);
    }
    sc->db_gate =
        hs_dbgate_make(cmd->pool, (int)max, (apr_interval_time_t)ms * 1000);
    return NULL;
}

static const char *set_plans_cache_ttl(cmd_parms *cmd, void *cfg,
                                       const char *arg)
{
    long v;
    const char *err = parse_off_seconds(cmd, arg, &v);
    if (err) {
        return err;
    }
    ((hs_dir_cfg *)cfg)->plans_cache_ttl = v;
    return NULL;
}

static const char *set_cors(cmd_parms *cmd, void *cfg, const char *arg)
{
    hs_dir_cfg *c = cfg;
    apr_size_t scheme = !strncmp(arg, "https://", 8)  ? 8
                        : !strncmp(arg, "http://", 7) ? 7
                                                      : 0;
    if (!scheme) {
        return dir_error(cmd, "'%s' is not an origin (scheme://host[:port])",
                         arg);
    }
    /* the host may not be empty (and arg + scheme is within the string) */
    if (!arg[scheme]) {
        return dir_error(cmd, "'%s' is not an origin: no host", arg);
    }
    if (strchr(arg + scheme, '/')) {
        return dir_error(cmd, "'%s' is not an origin: no path allowed", arg);
    }
    if (!c->cors_origins) {
        c->cors_origins = apr_array_make(cmd->pool, 4, sizeof(const char *));
    }
    APR_ARRAY_PUSH(c->cors_origins, const char *) = arg;
    return NULL;
}

/* HydraSignupPortalURL url: an absolute http(s) URL (src/handle/page.c) */
static const char *set_portal_url(cmd_parms *cmd, void *cfg, const char *arg)
{
    hs_dir_cfg *c = cfg;
    const char *origin, *why = hs_page_portal_check(cmd->pool, arg, &origin);
    if (why) {
        return apr_psprintf(cmd->pool, "%s: '%s' %s", cmd->cmd->name, arg, why);
    }
    c->portal_url = arg;
    c->portal_origin = origin;
    return NULL;
}

#define OFF(f) ((void *)APR_OFFSETOF(hs_dir_cfg, f))
#define ANYWHERE (RSRC_CONF | ACCESS_CONF)

const command_rec hs_cmds[] = {
    AP_INIT_ITERATE("HydraSignupTenants", set_tenants, NULL, ANYWHERE,
                    "tenant slugs this vhost serves, or *"),
    AP_INIT_FLAG("HydraSignupMetrics", ap_set_flag_slot, OFF(metrics), ANYWHERE,
                 "On to serve <location>/metrics (Prometheus text)"),
    AP_INIT_FLAG("HydraSignupConcealExisting", ap_set_flag_slot, OFF(conceal),
                 ANYWHERE, "answer an existing active email like a new signup"),
    AP_INIT_TAKE1("HydraSignupJWTAlgorithm", set_alg, NULL, ANYWHERE,
                  "HS256, RS256, ES256 or EdDSA"),
    AP_INIT_TAKE1("HydraSignupJWTKeyFile", set_key_file, NULL, ANYWHERE,
                  "HS256 secret file or PEM private key"),
    AP_INIT_TAKE1("HydraSignupJWTKeyID", set_string, OFF(jwt_kid), ANYWHERE,
                  "kid header and JWKS id"),
    AP_INIT_TAKE1("HydraSignupJWTIssuer", set_string, OFF(issuer), ANYWHERE,
                  "iss claim"),
    AP_INIT_TAKE1("HydraSignupJWTAudience", set_string, OFF(audience), ANYWHERE,
                  "aud claim"),
    AP_INIT_TAKE1("HydraSignupAccessTTL", set_seconds, OFF(access_ttl),
                  ANYWHERE, "access token lifetime in seconds"),
    AP_INIT_TAKE1("HydraSignupRefreshTTL", set_seconds, OFF(refresh_ttl),
                  ANYWHERE, "refresh token lifetime in seconds"),
    AP_INIT_TAKE1("HydraSignupCodeSecretFile", set_code_secret, NULL, ANYWHERE,
                  "HMAC key (>= 32 bytes) for stored codes"),
    AP_INIT_TAKE1("HydraSignupCodeTTL", set_seconds, OFF(code_ttl), ANYWHERE,
                  "verification code lifetime in seconds"),
    AP_INIT_TAKE1("HydraSignupMaxAttempts", set_count, OFF(max_attempts),
                  ANYWHERE, "failed verifies before the code is void"),
    AP_INIT_TAKE1("HydraSignupResendInterval", set_seconds,
                  OFF(resend_interval), ANYWHERE,
                  "least seconds between two codes to one signup"),
    AP_INIT_TAKE1("HydraSignupMailsPerHour", set_count, OFF(mails_per_hour),
                  ANYWHERE, "codes mailed to one address per hour"),
    AP_INIT_TAKE1("HydraSignupPendingTTL", set_seconds, OFF(pending_ttl),
                  ANYWHERE,
                  "seconds before an unverified signup frees its slot"),
    AP_INIT_TAKE1("HydraSignupPlacement", set_placement, NULL, ANYWHERE,
                  "spread (least loaded first) or fill"),
    AP_INIT_TAKE1("HydraSignupSpoolDir", set_spool, NULL, ANYWHERE,
                  "mail spool directory (tmp/, new/)"),
    AP_INIT_TAKE1("HydraSignupMailFrom", set_mail_from, NULL, ANYWHERE,
                  "From header, \"Name <addr>\""),
    AP_INIT_TAKE1("HydraSignupMailTemplate", set_template, NULL, ANYWHERE,
                  "verification mail template file"),
    AP_INIT_TAKE1("HydraSignupMailExistsTemplate", set_template, (void *)1,
                  ANYWHERE, "template of the account-exists mail"),
    AP_INIT_TAKE1("HydraSignupMaxBody", set_max_body, NULL, ANYWHERE,
                  "request body limit in bytes"),
    AP_INIT_TAKE3("HydraSignupRateLimit", set_rate, NULL, ANYWHERE,
                  "signup|verify|plans REQUESTS SECONDS"),
    AP_INIT_TAKE1("HydraSignupRateLimitCache", set_cache, NULL, RSRC_CONF,
                  "shmcb[:path(bytes)] or memcache:host:port[,host:port...]: "
                  "where the rate-limit counters live"),
    AP_INIT_ITERATE("HydraSignupCORSOrigins", set_cors, NULL, ANYWHERE,
                    "origins allowed by CORS"),
    AP_INIT_FLAG("HydraSignupPage", ap_set_flag_slot, OFF(page), ANYWHERE,
                 "serve the hosted page <location>/page/{slug} and "
                 "<location>/widget.js"),
    AP_INIT_TAKE1("HydraSignupPortalURL", set_portal_url, NULL, ANYWHERE,
                  "where the page POSTs the tokens after a verify"),
    AP_INIT_TAKE1("HydraSignupReapInterval", set_reap_interval, NULL, RSRC_CONF,
                  "seconds between two runs of the slot reaper, or Off"),
    AP_INIT_TAKE1("HydraSignupPlansCacheTTL", set_plans_cache_ttl, NULL,
                  ANYWHERE, "seconds a process keeps a plans answer, or Off"),
    AP_INIT_TAKE12("HydraSignupDBConnections", set_db_connections, NULL,
                   RSRC_CONF,
                   "database connections one process uses at once (set it "
                   "to DBDMax) [longest wait in ms, default 5000]"),
    AP_INIT_TAKE1("HydraSignupMaxAttemptsPerDay", set_count,
                  OFF(max_attempts_per_day), ANYWHERE,
                  "wrong codes per address of a tenant per 24 h"),
    AP_INIT_TAKE1("HydraSignupTenantMailsPerHour", set_count,
                  OFF(tenant_mails_per_hour), ANYWHERE,
                  "codes mailed for one tenant per hour"),
    {NULL}};

/* ---- configuration-time checks ----------------------------------------- */

/* Loads (once per alg/file/kid) the JWT key of an effective config. */
static const char *load_key(apr_pool_t *pconf, hs_dir_cfg *c)
{
    hs_jwt_alg alg = hs_cfg_jwt_alg(c);
    const char *id = apr_psprintf(pconf, "%d|%s|%s", (int)alg, c->jwt_key_file,
                                  c->jwt_kid ? c->jwt_kid : "");
    hs_jwt_key *key = apr_hash_get(jwt_keys, id, APR_HASH_KEY_STRING);

    if (!key) {
        const char *err;
        if ((err = hs_jwt_key_load(pconf, alg, c->jwt_key_file, &key))) {
            /* the loader's reason may start with the path already */
            apr_size_t n = strlen(c->jwt_key_file);
            if (!strncmp(err, c->jwt_key_file, n) &&
                !strncmp(err + n, ": ", 2)) {
                err += n + 2;
            }
            return apr_psprintf(pconf, "HydraSignupJWTKeyFile %s: %s (%s)",
                                c->jwt_key_file, err, hs_jwt_alg_name(alg));
        }
        if (c->jwt_kid) {
            hs_jwt_key_set_kid(key, c->jwt_kid);
        }
        apr_hash_set(jwt_keys, id, APR_HASH_KEY_STRING, key);
    }
    return NULL;
}

/* Checks an effective config; loads its key. where names it in the log. */
static int check_one(apr_pool_t *pconf, server_rec *s, hs_dir_cfg *c,
                     const char *where)
{
    const char *missing = NULL, *err;

    if (!c->tenants) {
        /* serves nothing: every request answers 404 */
        return OK;
    }
    if (!c->jwt_key_file) {
        missing = "HydraSignupJWTKeyFile";
    }
    else if (!c->code_secret) {
        missing = "HydraSignupCodeSecretFile";
    }
    else if (!c->spool_dir) {
        missing = "HydraSignupSpoolDir";
    }
    else if (!c->mail_from) {
        missing = "HydraSignupMailFrom";
    }
    if (missing) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                     HSLOGNO(00101) "%s is required where HydraSignupTenants "
                                    "is set (%s)",
                     missing, where);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if ((err = load_key(pconf, c))) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, HSLOGNO(00102) "%s (%s)",
                     err, where);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

/* The first DBDriver in the configuration tree below d that is not pgsql,
 * or NULL. mod_dbd keeps its configuration to itself, so the directives
 * are read from the tree as the server parsed them. */
static const ap_directive_t *
foreign_dbd_driver(apr_pool_t *p, const ap_directive_t *d, const char **name)
{
    for (; d; d = d->next) {
        const ap_directive_t *found;
        if (!strcasecmp(d->directive, "DBDriver") && d->args) {
            const char *args = d->args;
            *name = ap_getword_conf(p, &args);
            if (strcasecmp(*name, "pgsql")) {
                return d;
            }
        }
        if ((found = foreign_dbd_driver(p, d->first_child, name))) {
            return found;
        }
    }
    return NULL;
}

/* The sections nested in a section (or at server level): <Files> and
 * <If>, merged on top of eff as a request would merge them. */
static int check_nested(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s,
                        hs_dir_cfg *eff, core_dir_config *cd, const char *where)
{
    apr_array_header_t *lists[2];
    int k, i, rc;

    if (!cd) {
        return OK;
    }
    lists[0] = cd->sec_file;
    lists[1] = cd->sec_if;
    for (k = 0; k < 2; k++) {
        for (i = 0; lists[k] && i < lists[k]->nelts; i++) {
            ap_conf_vector_t *vec =
                APR_ARRAY_IDX(lists[k], i, ap_conf_vector_t *);
            hs_dir_cfg *sec = ap_get_module_config(vec, &hydra_signup_module);
            core_dir_config *d = ap_get_core_module_config(vec);
            hs_dir_cfg *e;
            const char *w;

            /* a section with none of our directives has no record of
             * ours, but may hold sections that do */
            e = sec ? hs_merge_dir_cfg(pconf, eff, sec) : eff;
            w = apr_psprintf(ptemp, "%s %s in %s", k == 0 ? "<Files>" : "<If>",
                             d && d->d ? d->d : "", where);
            if ((sec && (rc = check_one(pconf, s, e, w)) != OK) ||
                (rc = check_nested(pconf, ptemp, s, e, d, w)) != OK) {
                return rc;
            }
        }
    }
    return OK;
}

/* Checks every section of list (<Location> or <Directory> sections of a
 * server), each merged as a request merges them: the earlier sections
 * whose path is a prefix of this one, then this one. */
static int check_sections(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s,
                          hs_dir_cfg *base, apr_array_header_t *list,
                          const char *kind, const char *name)
{
    int i, rc;

    for (i = 0; list && i < list->nelts; i++) {
        ap_conf_vector_t *vec = APR_ARRAY_IDX(list, i, ap_conf_vector_t *);
        hs_dir_cfg *loc = ap_get_module_config(vec, &hydra_signup_module);
        core_dir_config *cd = ap_get_core_module_config(vec);
        hs_dir_cfg *eff = base;
        const char *where;
        int j;

        for (j = 0; j < i && cd && cd->d && !cd->r && !cd->d_is_fnmatch; j++) {
            ap_conf_vector_t *v = APR_ARRAY_IDX(list, j, ap_conf_vector_t *);
            hs_dir_cfg *l = ap_get_module_config(v, &hydra_signup_module);
            core_dir_config *d = ap_get_core_module_config(v);
            if (l && d && d->d && !d->r && !d->d_is_fnmatch &&
                !strncmp(cd->d, d->d, strlen(d->d))) {
                eff = hs_merge_dir_cfg(pconf, eff, l);
            }
        }
        /* a section with none of our directives has no record of ours,
         * but may hold <Files> or <If> sections that do */
        eff = loc ? hs_merge_dir_cfg(pconf, eff, loc) : eff;
        where = apr_psprintf(ptemp, "<%s %s> in %s", kind,
                             cd && cd->d ? cd->d : "?", name);
        if ((loc && (rc = check_one(pconf, s, eff, where)) != OK) ||
            (rc = check_nested(pconf, ptemp, s, eff, cd, where)) != OK) {
            return rc;
        }
    }
    return OK;
}

/* Every context the handler can be enabled in: the server, its
 * <Location> and <Directory> sections, and the <Files> and <If> sections
 * within any of them (requests also refuse to run without a code secret:
 * handler.c). */
int hs_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                    server_rec *s)
{
    server_rec *sp;
    const ap_directive_t *dbd;
    const char *driver = NULL;

    /* db.c talks libpq on the connections mod_dbd hands out */
    if ((dbd = foreign_dbd_driver(ptemp, ap_conftree, &driver))) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                     HSLOGNO(00190) "DBDriver %s (%s line %d): "
                                    "mod_hydra_signup works with DBDriver "
                                    "pgsql only",
                     driver, dbd->filename ? dbd->filename : "?",
                     dbd->line_num);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    jwt_keys = apr_hash_make(pconf);

    for (sp = s; sp; sp = sp->next) {
        hs_dir_cfg *base =
            ap_get_module_config(sp->lookup_defaults, &hydra_signup_module);
        core_server_config *core = ap_get_core_module_config(sp->module_config);
        const char *name = apr_psprintf(
            ptemp, sp->port ? "server %s:%d" : "server %s",
            sp->server_hostname ? sp->server_hostname : "(unnamed)", sp->port);
        int rc;

        if ((rc = check_one(pconf, sp, base, name)) != OK ||
            (rc = check_nested(pconf, ptemp, sp, base,
                               ap_get_core_module_config(sp->lookup_defaults),
                               name)) != OK ||
            (rc = check_sections(pconf, ptemp, sp, base, core->sec_url,
                                 "Location", name)) != OK ||
            (rc = check_sections(pconf, ptemp, sp, base, core->sec_dir,
                                 "Directory", name)) != OK) {
            return rc;
        }
    }
    return OK;
}
