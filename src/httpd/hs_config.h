/*
 * hs_config.h - the operator's directives (CONTRACT section 6): the
 * per-directory configuration record, its create/merge functions, the
 * directive table, and the configuration-time checks that make `httpd -t`
 * refuse a bad value with a message naming the directive.
 */
#ifndef HS_CONFIG_H
#define HS_CONFIG_H

#include "httpd.h"
#include "http_config.h"

#include "hs_jwt.h"
#include "hs_mail.h"

#define HS_UNSET (-1)

typedef enum { HS_PLACE_SPREAD = 0, HS_PLACE_FILL = 1 } hs_placement;

typedef struct {
    int limit;  /* requests per window; HS_UNSET inherits */
    int window; /* seconds */
} hs_rate;

/*
 * One record per server/vhost/<Location>. Scalars use HS_UNSET, pointers
 * NULL, for "not set here"; the merge takes the nearer value.
 * Accessors (hs_cfg_*) apply the defaults.
 */
typedef struct {
    apr_array_header_t *tenants; /* const char *; NULL unset */
    int tenants_all;             /* "*" given */
    int conceal;                 /* On/Off */

    int jwt_alg; /* hs_jwt_alg */
    const char *jwt_key_file;
    const char *jwt_kid;
    const char *jwt_issuer;
    const char *jwt_audience;
    hs_jwt_key *jwt_key; /* check_config only: use hs_cfg_jwt_key() */
    long access_ttl;
    long refresh_ttl;

    const char *code_secret_file;
    const unsigned char *code_secret;
    apr_size_t code_secret_len;
    long code_ttl;
    int max_attempts;
    long resend_interval;
    int mails_per_hour;
    long pending_ttl;
    int placement;

    const char *spool_dir;
    const char *mail_from;
    const char *mail_template_file;
    hs_mail_template *mail_template;
    const char *mail_exists_template_file;
    hs_mail_template *mail_exists_template;

    long max_body;
    hs_rate rate_signup;
    hs_rate rate_verify;
    apr_array_header_t *cors_origins; /* const char * */

    /* issue 12 (abuse resistance) */
    int max_attempts_per_day;  /* wrong codes per address per 24 h */
    int tenant_mails_per_hour; /* codes mailed per tenant per hour */
    hs_rate rate_plans;        /* GET plans per client */
} hs_dir_cfg;

/* Server-wide (main server only) settings. */
typedef struct {
    const char *ratelimit_cache; /* "provider[:args]" */
} hs_srv_cfg;

void *hs_create_dir_cfg(apr_pool_t *p, char *dir);
void *hs_merge_dir_cfg(apr_pool_t *p, void *base, void *add);
void *hs_create_srv_cfg(apr_pool_t *p, server_rec *s);
void *hs_merge_srv_cfg(apr_pool_t *p, void *base, void *add);

extern const command_rec hs_cmds[];

/* check_config hook: validates every effective configuration (servers and
 * their <Location> sections) and loads the JWT keys. */
int hs_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                    server_rec *s);

/* Effective values with defaults applied. */
const char *hs_cfg_issuer(const hs_dir_cfg *c);
const char *hs_cfg_audience(const hs_dir_cfg *c);
long hs_cfg_access_ttl(const hs_dir_cfg *c);
long hs_cfg_refresh_ttl(const hs_dir_cfg *c);
long hs_cfg_code_ttl(const hs_dir_cfg *c);
int hs_cfg_max_attempts(const hs_dir_cfg *c);
long hs_cfg_resend_interval(const hs_dir_cfg *c);
int hs_cfg_mails_per_hour(const hs_dir_cfg *c);
long hs_cfg_pending_ttl(const hs_dir_cfg *c);
int hs_cfg_placement(const hs_dir_cfg *c);
long hs_cfg_max_body(const hs_dir_cfg *c);
int hs_cfg_conceal(const hs_dir_cfg *c);
hs_rate hs_cfg_rate_signup(const hs_dir_cfg *c);
hs_rate hs_cfg_rate_verify(const hs_dir_cfg *c);
int hs_cfg_max_attempts_per_day(const hs_dir_cfg *c);
int hs_cfg_tenant_mails_per_hour(const hs_dir_cfg *c);
hs_rate hs_cfg_rate_plans(const hs_dir_cfg *c);
const hs_mail_template *hs_cfg_template(const hs_dir_cfg *c, hs_mail_kind kind);

/* The JWT key for this effective configuration (loaded at configuration
 * time), or NULL. */
const hs_jwt_key *hs_cfg_jwt_key(const hs_dir_cfg *c);

/* Does this configuration serve tenant slug? */
int hs_cfg_serves(const hs_dir_cfg *c, const char *slug);
/* Is origin one of the CORS origins? */
int hs_cfg_cors_allowed(const hs_dir_cfg *c, const char *origin);

extern module AP_MODULE_DECLARE_DATA hydra_signup_module;

#endif /* HS_CONFIG_H */
