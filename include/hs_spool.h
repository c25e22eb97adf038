/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hs_spool.h - the module's side of the Maildir-style mail spool:
 * write a message under tmp/, fsync it, and only after the database COMMIT
 * rename it into new/ (then fsync new/); or unlink it when the transaction
 * failed. Names follow maildir(5): <time>.<M usec P pid R random>.<host>.
 *
 * httpd-free: APR only.
 */
#ifndef HS_SPOOL_H
#define HS_SPOOL_H

#include <stddef.h>

#include <apr_pools.h>

typedef struct hs_spool_msg hs_spool_msg;

/* Checks dir is a usable spool: a writable directory; creates tmp/, new/,
 * cur/ and dead/ inside it when missing (mode 0770, owned as dir is).
 * NULL when usable, else the reason. */
const char *hs_spool_prepare(apr_pool_t *p, const char *dir);

/* Writes data to dir/tmp/<unique>, fsync'd and closed. NULL on success and
 * *msg set, else a reason (with the errno text); nothing is left behind on
 * failure. */
const char *hs_spool_write(apr_pool_t *p, const char *dir, const char *data,
                           size_t len, hs_spool_msg **msg);

/* Renames tmp/<unique> to new/<unique> and fsyncs new/. NULL or a reason. */
const char *hs_spool_publish(hs_spool_msg *msg);

/* Unlinks tmp/<unique> (idempotent). */
void hs_spool_discard(hs_spool_msg *msg);

/* The unique name, e.g. for the log. */
const char *hs_spool_msg_name(const hs_spool_msg *msg);

#endif /* HS_SPOOL_H */
