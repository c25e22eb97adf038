/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hs_queue.h - the mail sender's side of the Maildir-style spool: list the
 * messages in new/ that are due, claim one by renaming new/X to cur/X (the
 * rename is the lock: of two senders only one can succeed), give it back to
 * new/ with the next attempt time in its name, move it to the dead-letter
 * folder with a reason file, and return claims abandoned by a crashed sender.
 *
 * File names (see hydra-signup-mailer(1), "SPOOL STATES"):
 *   new/<unique>                     never tried, due now
 *   new/<unique>,r=<n>,t=<epoch>     tried n times, due at <epoch>
 *   cur/<same name as in new/>       claimed; mtime = claim time (the lease)
 *   dead/<unique> + dead/<unique>.reason
 * <unique> is the maildir(5) name the module wrote
 * ("<sec>.M<usec>P<pid>R<hex>.<host>"); it never changes, so a message keeps
 * its identity (and its age) through any number of retries and restarts.
 *
 * Plain POSIX (Linux): no httpd, no APR, so the unit tests use it alone.
 */
#ifndef HS_QUEUE_H
#define HS_QUEUE_H

#include <stddef.h>
#include <time.h>

/* Longest file name we handle (NAME_MAX on Linux file systems). */
#define HS_QUEUE_NAME_MAX 255
/* Room the retry suffix ",r=<n>,t=<epoch>" may need. */
#define HS_QUEUE_SUFFIX_MAX 40

enum { HS_LOG_DEBUG = 0, HS_LOG_INFO, HS_LOG_WARN, HS_LOG_ERROR };

/* The core logs through this callback (the program forwards it to stderr). */
typedef void hs_queue_log_fn(void *baton, int level, const char *msg);

/* A parsed spool file name. */
typedef struct {
    char base[HS_QUEUE_NAME_MAX + 1]; /* the maildir <unique> */
    unsigned attempts;                /* failed attempts so far */
    long long next;                   /* epoch of the next attempt, 0 = now */
    long long queued; /* epoch from <unique>'s "<sec>." prefix, -1 unknown */
} hs_queue_name;

/*
 * Parses a file name from new/ or cur/. A trailing ",r=<digits>,t=<digits>"
 * is the retry state; everything before it is the base. Names that are
 * empty, start with '.', contain '/', or are longer than HS_QUEUE_NAME_MAX
 * are refused (-1). 0 on success.
 */
int hs_queue_name_parse(const char *name, hs_queue_name *out);

/* The file name for n: the base alone when attempts == 0, else
 * "<base>,r=<attempts>,t=<next>". 0 on success, -1 when it does not fit
 * in outlen or in HS_QUEUE_NAME_MAX. */
int hs_queue_name_format(const hs_queue_name *n, char *out, size_t outlen);

/*
 * The back-off before attempt attempts+1, in seconds, after attempts (>= 1)
 * failures: base * 2^(attempts-1), capped at cap, then multiplied by a
 * jitter factor in [0.8, 1.2) taken from rnd (in [0, 1)), capped at cap
 * again and never below 1.
 */
long long hs_queue_backoff(unsigned attempts, long long base, long long cap,
                           double rnd);

/* The spool as the sender sees it. Fields are private. */
typedef struct {
    int new_fd, cur_fd, dead_fd; /* directory descriptors */
    char spool[4096];
    char dead[4096];
    hs_queue_log_fn *log;
    void *baton;
    char err[512]; /* last error, for the caller's log line */
} hs_queue;

/*
 * Opens spool (which must exist) and the dead-letter directory (NULL means
 * spool/dead). Creates new/, cur/ and dead/ when missing (mode 0770).
 * 0 on success, -1 with q->err set.
 */
int hs_queue_open(hs_queue *q, const char *spool, const char *dead,
                  hs_queue_log_fn *log, void *baton);
void hs_queue_close(hs_queue *q);

/* The descriptor of new/, e.g. to check it still exists. */
int hs_queue_new_fd(const hs_queue *q);

/* One file in new/. */
typedef struct {
    char name[HS_QUEUE_NAME_MAX + 1];
    hs_queue_name n;
} hs_queue_entry;

/*
 * Lists the regular files in new/ that are due at now (next <= now), oldest
 * schedule first, then by name (the name starts with the queue time). When
 * queued_before >= 0, names whose queue time is later are left out (--once
 * drains what was there when it started). At most max entries are returned
 * in a malloc'ed array (*out, free() it; NULL when *count is 0). *next_due
 * receives the earliest future attempt time, or 0 when nothing waits.
 * 0 on success, -1 with q->err set.
 */
int hs_queue_list_due(hs_queue *q, long long now, long long queued_before,
                      size_t max, hs_queue_entry **out, size_t *count,
                      long long *next_due);

/* A message this sender holds. */
typedef struct {
    char name[HS_QUEUE_NAME_MAX + 1]; /* its name in cur/ */
    hs_queue_name n;
    int fd;          /* open, flock()ed while we hold the claim */
    long long mtime; /* mtime before the claim (age fallback) */
    long long size;  /* bytes */
} hs_queue_claim;

/*
 * Claims new/<name>: touches it (the lease starts now), renames it to
 * cur/<name> without replacing anything, opens and flock()s it.
 * 0 when this sender holds it, 1 when another sender was faster (or the
 * file went away), -1 on error (q->err set; the file stays where it was).
 */
int hs_queue_claim_msg(hs_queue *q, const char *name, hs_queue_claim *c);

/* Renews the lease (mtime = now) of a held message. */
void hs_queue_renew(hs_queue_claim *c);

/*
 * Reads the whole held message into a malloc'ed buffer (NUL-terminated,
 * *len without the NUL). Refuses messages larger than max (returns 1).
 * 0 on success, -1 on error (q->err set).
 */
int hs_queue_read(hs_queue *q, hs_queue_claim *c, size_t max, char **buf,
                  size_t *len);

/* Delivered: unlink cur/<name> and release it. 0 ok, -1 (q->err set). */
int hs_queue_done(hs_queue *q, hs_queue_claim *c);

/*
 * Temporary failure: renames cur/<name> to new/<base>,r=<attempts+1>,t=<next>
 * and releases it. 0 ok, -1 (q->err set; the file stays in cur/ and is
 * recovered after the lease).
 */
int hs_queue_retry(hs_queue *q, hs_queue_claim *c, long long next);

/*
 * Permanent failure: writes <dead>/<name>.reason (reason text plus a
 * newline), then moves cur/<name in cur> to <dead>/<name> (copy and unlink
 * across file systems), fsyncs the dead-letter folder and releases it.
 * <name> is the message's <unique>, or "<unique>.<k>" (k = 2, 3, ...) when
 * that name or its .reason is taken: both files are created with
 * O_EXCL|O_NOFOLLOW (the message by a rename or link that never replaces),
 * so nothing already in the folder - a file, a symlink - is followed or
 * overwritten. The name used goes to name_out (may be NULL).
 * 0 ok, -1 (q->err set; the file stays in cur/).
 */
int hs_queue_dead(hs_queue *q, hs_queue_claim *c, const char *reason,
                  char *name_out, size_t name_len);

/* Releases a held message without moving it (it stays in cur/ until the
 * lease expires). */
void hs_queue_release(hs_queue_claim *c);

/* What the queue holds, for the sender's metrics. */
typedef struct {
    size_t in_new;    /* files in new/ (waiting, due or not) */
    size_t in_cur;    /* files in cur/ (being delivered, or abandoned) */
    long long oldest; /* earliest queue time (epoch) among them, -1: none */
} hs_queue_stats;

/* Counts new/ and cur/. The queue time is the one in the maildir name, or
 * the file's mtime when the name has none. 0 ok, -1 (q->err set). */
int hs_queue_get_stats(hs_queue *q, hs_queue_stats *st);

/*
 * Crash recovery: every file in cur/ whose mtime is at least lease seconds
 * before now and that no live process holds locked goes back to new/ under
 * the same name. *moved (may be NULL) receives the count. Files left in
 * tmp/ for over 36 hours (maildir(5)) are removed.
 * 0 on success, -1 with q->err set.
 */
int hs_queue_recover(hs_queue *q, long long lease, long long now,
                     unsigned *moved);

#endif /* HS_QUEUE_H */
