/* SPDX-License-Identifier: Apache-2.0 */
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

/* HydraSignupTenants: the slugs served here, or all ("*") */
typedef struct {
    apr_array_header_t *slugs; /* const char * */
    int all;
    /* the plain <Location> path it was given in, or NULL (server, vhost,
     * regex or wildcard section): the handler routes below this path, so
     * a nested <Location> (e.g. a Require for .../metrics) keeps routing */
    const char *base;
} hs_tenants;

/* HydraSignupCodeSecretFile, read at configuration time */
typedef struct {
    const char *file;
    const unsigned char *data;
    apr_size_t len;
} hs_secret;

/*
 * Every setting, declared once: X(KIND, type, field, default)
 *   NUM  an int or long; HS_UNSET (-1) means "not set in this context"
 *   PTR  a pointer; NULL means "not set in this context"
 * The list generates the record's fields, its create (everything unset),
 * its merge (a nearer context's value wins where it set one) and one
 * accessor per field, hs_cfg_<field>(c) (hs_srv_<field>(sc) for the
 * server list), which gives the effective value: the default when no
 * context set one. Endpoints read configuration only through accessors.
 * A default may name a constant of config.c, where the accessors are
 * generated.
 *
 * Adding a directive is one line here, e.g.
 *     X(NUM, long, reaper_interval, 300)
 * plus its entry in hs_cmds (config.c); set_seconds, set_count and
 * set_string store into any field given as OFF(field), or write a set_*
 * function for a value that needs parsing or checking.
 */
#define HS_DIR_FIELDS(X)                                                       \
    X(PTR, hs_tenants *, tenants, NULL)                                        \
    X(NUM, int, conceal, 0)                                                    \
    X(NUM, int, metrics, 0)                                                    \
    X(NUM, int, jwt_alg, HS_JWT_HS256)                                         \
    X(PTR, const char *, jwt_key_file, NULL)                                   \
    X(PTR, const char *, jwt_kid, NULL)                                        \
    X(PTR, const char *, issuer, "hydracore")                                  \
    X(PTR, const char *, audience, "hydracore-portal")                         \
    X(NUM, long, access_ttl, 3600)                                             \
    X(NUM, long, refresh_ttl, 2592000)                                         \
    X(PTR, const hs_secret *, code_secret, NULL)                               \
    X(NUM, long, code_ttl, 900)                                                \
    X(NUM, int, max_attempts, 5)                                               \
    X(NUM, long, resend_interval, 60)                                          \
    X(NUM, int, mails_per_hour, 5)                                             \
    X(NUM, long, pending_ttl, 259200)                                          \
    X(NUM, int, placement, HS_PLACE_SPREAD)                                    \
    X(PTR, const char *, spool_dir, NULL)                                      \
    X(PTR, const char *, mail_from, NULL)                                      \
    X(PTR, const hs_mail_template *, mail_template,                            \
      hs_mail_default_template(HS_MAIL_VERIFY))                                \
    X(PTR, const hs_mail_template *, mail_exists_template,                     \
      hs_mail_default_template(HS_MAIL_EXISTS))                                \
    X(NUM, long, max_body, 16384)                                              \
    X(PTR, const hs_rate *, rate_signup, &rate_signup_default)                 \
    X(PTR, const hs_rate *, rate_verify, &rate_verify_default)                 \
    X(PTR, const hs_rate *, rate_plans, &rate_plans_default)                   \
    X(NUM, int, max_attempts_per_day, 20)                                      \
    X(NUM, int, tenant_mails_per_hour, 1000)                                   \
    X(PTR, apr_array_header_t *, cors_origins, NULL)                           \
    X(NUM, int, page, 0)                                                       \
    X(PTR, const char *, portal_url, NULL)                                     \
    X(PTR, const char *, portal_origin, NULL) /* set with portal_url */        \
    X(NUM, long, plans_cache_ttl, 5)          /* 0: Off */

/* Server-wide (main server only) settings, the same way. */
#define HS_SRV_FIELDS(X)                                                       \
    X(PTR, const char *, ratelimit_cache, "shmcb")                             \
    X(NUM, long, reap_interval, 5)            /* seconds; 0: Off */            \
    X(PTR, struct hs_dbgate *, db_gate, NULL) /* HydraSignupDBConnections */

#define HS_FIELD_DECLARE(kind, type, field, dflt) type field;

/* One record per server/vhost/<Location>. */
typedef struct {
    HS_DIR_FIELDS(HS_FIELD_DECLARE)
} hs_dir_cfg;

typedef struct {
    HS_SRV_FIELDS(HS_FIELD_DECLARE)
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

/* Effective values with defaults applied: hs_cfg_<field>(c) for every
 * field of HS_DIR_FIELDS, hs_srv_<field>(sc) for HS_SRV_FIELDS. */
#define HS_DIR_ACCESSOR_DECLARE(kind, type, field, dflt)                       \
    type hs_cfg_##field(const hs_dir_cfg *c);
#define HS_SRV_ACCESSOR_DECLARE(kind, type, field, dflt)                       \
    type hs_srv_##field(const hs_srv_cfg *c);
HS_DIR_FIELDS(HS_DIR_ACCESSOR_DECLARE)
HS_SRV_FIELDS(HS_SRV_ACCESSOR_DECLARE)

/* The template of a kind of mail: the configured one or the built-in. */
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
