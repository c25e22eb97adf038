/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mod_hydra_signup - HydraCore's public customer-signup API as an httpd 2.4
 * module. This file is glue only: the module record, the hooks and the
 * directive table (src/httpd/config.c); the work is in src/.
 */
#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"

#include <apr_optional.h>

#include "mod_status.h"

#include "hs_config.h"
#include "hs_db.h"
#include "hs_dbgate.h"
#include "hs_keepalive.h"
#include "hs_endpoints.h"
#include "hs_log.h"
#include "hs_metrics.h"
#include "hs_ratelimit.h"
#include "hs_reaper.h"

static int hs_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                          apr_pool_t *ptemp, server_rec *s)
{
    if (hs_db_init_functions()) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                     HSLOGNO(00103) "mod_dbd is not loaded: mod_hydra_signup "
                                    "needs it (LoadModule dbd_module ...)");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    hs_db_register(s);
    hs_metrics_post_config(pconf, s);
    if (hs_reaper_post_config(pconf, s) != OK) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return hs_ratelimit_post_config(pconf, plog, ptemp, s);
}

static void hs_child_init(apr_pool_t *p, server_rec *s)
{
    server_rec *sp;
    for (sp = s; sp; sp = sp->next) {
        hs_srv_cfg *sc =
            ap_get_module_config(sp->module_config, &hydra_signup_module);
        if (hs_srv_db_gate(sc) && hs_dbgate_child_init(hs_srv_db_gate(sc), p)) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, sp,
                         HSLOGNO(00911) "cannot create the database gate "
                                        "(HydraSignupDBConnections): none "
                                        "in this process");
        }
    }
    hs_plans_child_init(p);
    hs_ratelimit_child_init(p, s);
}

static void hs_register_hooks(apr_pool_t *p)
{
    /* our statements must be registered before mod_dbd prepares them */
    static const char *const before_dbd[] = {"mod_dbd.c", NULL};

    ap_hook_pre_config(hs_ratelimit_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(hs_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(hs_post_config, NULL, before_dbd, APR_HOOK_MIDDLE);
    ap_hook_child_init(hs_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_translate_name(hs_translate_name, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_map_to_storage(hs_map_to_storage, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(hs_handler, NULL, NULL, APR_HOOK_MIDDLE);
    hs_keepalive_register();
    ap_hook_log_transaction(hs_metrics_log_transaction, NULL, NULL,
                            APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ap, status_hook, hs_metrics_status_hook, NULL, NULL,
                      APR_HOOK_MIDDLE);
}

AP_DECLARE_MODULE(hydra_signup) = {STANDARD20_MODULE_STUFF,
                                   hs_create_dir_cfg, /* per-directory config */
                                   hs_merge_dir_cfg,  /* merge per-directory */
                                   hs_create_srv_cfg, /* per-server config */
                                   hs_merge_srv_cfg,  /* merge per-server */
                                   hs_cmds,           /* directives */
                                   hs_register_hooks, /* hooks */
                                   AP_MODULE_FLAG_NONE};
