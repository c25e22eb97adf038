/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hs_spool_layout.h - the folders of the Maildir-style mail spool, named
 * once for both sides: the module writes tmp/ and publishes into new/
 * (src/core/spool.c); the sender claims new/ into cur/ and moves what
 * cannot be delivered into dead/ (mailer/queue.c). maildir(5) has tmp/,
 * new/ and cur/; dead/ is ours.
 *
 * httpd-free, APR-free: names only.
 */
#ifndef HS_SPOOL_LAYOUT_H
#define HS_SPOOL_LAYOUT_H

#define HS_SPOOL_TMP "tmp"   /* being written by the module */
#define HS_SPOOL_NEW "new"   /* published, waiting for the sender */
#define HS_SPOOL_CUR "cur"   /* claimed by a sender */
#define HS_SPOOL_DEAD "dead" /* undeliverable, with a .reason file */

/* Every folder, in the order the module creates them. */
#define HS_SPOOL_FOLDERS                                                       \
    {                                                                          \
        HS_SPOOL_TMP, HS_SPOOL_NEW, HS_SPOOL_CUR, HS_SPOOL_DEAD                \
    }

#endif /* HS_SPOOL_LAYOUT_H */
