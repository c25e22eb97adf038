/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hs_reaper.h - the slot reaper: a mod_watchdog singleton callback (one per
 * server, whatever the number of children) that every
 * HydraSignupReapInterval seconds gives back the slots of pending signups
 * whose code expired or went void, and deletes pending signups past
 * HydraSignupPendingTTL (CONTRACT section 1).
 */
#ifndef HS_REAPER_H
#define HS_REAPER_H

#include "httpd.h"

/* post_config (after hs_db_init_functions): registers the callback with
 * mod_watchdog; without mod_watchdog logs a warning and returns OK (the
 * signup path still reclaims when it finds no room). */
int hs_reaper_post_config(apr_pool_t *pconf, server_rec *s);

#endif /* HS_REAPER_H */
