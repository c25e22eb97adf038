/* SPDX-License-Identifier: Apache-2.0 */
/*
 * queue.c - the sender's side of the spool (see hs_queue.h).
 *
 * Safety argument in short:
 * - claim = rename(new/X, cur/X) with RENAME_NOREPLACE: atomic, so of two
 *   senders exactly one holds X; the loser sees ENOENT.
 * - the claimer touches new/X before the rename, so cur/X appears with a
 *   fresh mtime (rename keeps the mtime) and recovery never sees a stale
 *   lease on a file that was just claimed; it renews the mtime while it
 *   delivers and also holds flock() on the file, which recovery tests, so a
 *   slow but live sender keeps its message even past the lease.
 * - a file leaves the spool only by unlink after the server's 250, or into
 *   the dead-letter folder; every other path keeps it in new/ or cur/, so a
 *   crash at any point loses nothing (at-least-once).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "hs_queue.h"
#include "hs_spool_layout.h"
#include "hs_util.h"

static void qlog(hs_queue *q, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void qlog(hs_queue *q, int level, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;

    if (!q->log) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    q->log(q->baton, level, buf);
}

static int qerr(hs_queue *q, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int qerr(hs_queue *q, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(q->err, sizeof(q->err), fmt, ap);
    va_end(ap);
    return -1;
}

/* ---------------------------------------------------------------- names */

static int all_digits(const char *s, size_t n)
{
    size_t i;

    if (n == 0 || n > 19) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
    }
    return 1;
}

static long long parse_ll(const char *s, size_t n)
{
    long long v = 0;
    size_t i;

    for (i = 0; i < n; i++) {
        if (v > (LLONG_MAX - 9) / 10) {
            return LLONG_MAX;
        }
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int hs_queue_name_parse(const char *name, hs_queue_name *out)
{
    size_t len = strlen(name);
    size_t baselen = len;
    const char *r;
    const char *dot;

    memset(out, 0, sizeof(*out));
    out->queued = -1;
    if (len == 0 || len > HS_QUEUE_NAME_MAX || name[0] == '.' ||
        strchr(name, '/')) {
        return -1;
    }

    /* the retry suffix: the last ",r=" followed by digits ",t=" digits */
    r = NULL;
    {
        const char *p = name;
        const char *hit;
        while ((hit = strstr(p, ",r=")) != NULL) {
            r = hit;
            p = hit + 1;
        }
    }
    if (r && r > name) {
        const char *a = r + 3;
        const char *t = strstr(a, ",t=");
        if (t && all_digits(a, (size_t)(t - a)) &&
            all_digits(t + 3, strlen(t + 3))) {
            long long att = parse_ll(a, (size_t)(t - a));
            out->attempts = att > 1000000 ? 1000000u : (unsigned)att;
            out->next = parse_ll(t + 3, strlen(t + 3));
            baselen = (size_t)(r - name);
        }
    }
    memcpy(out->base, name, baselen);
    out->base[baselen] = '\0';

    /* maildir(5): the name starts with the delivery time in seconds */
    dot = strchr(out->base, '.');
    if (dot && all_digits(out->base, (size_t)(dot - out->base)) &&
        dot - out->base <= 12) {
        out->queued = parse_ll(out->base, (size_t)(dot - out->base));
    }
    return 0;
}

int hs_queue_name_format(const hs_queue_name *n, char *out, size_t outlen)
{
    int w;

    if (n->attempts == 0) {
        w = snprintf(out, outlen, "%s", n->base);
    }
    else {
        w = snprintf(out, outlen, "%s,r=%u,t=%lld", n->base, n->attempts,
                     n->next);
    }
    if (w < 0 || (size_t)w >= outlen || w > HS_QUEUE_NAME_MAX || w == 0) {
        return -1;
    }
    return 0;
}

long long hs_queue_backoff(unsigned attempts, long long base, long long cap,
                           double rnd)
{
    long long d = base < 1 ? 1 : base;
    double j;
    unsigned i;

    if (cap < 1) {
        cap = 1;
    }
    for (i = 1; i < attempts && d < cap; i++) {
        d = d > cap / 2 ? cap : d * 2;
    }
    if (d > cap) {
        d = cap;
    }
    if (rnd < 0.0 || rnd >= 1.0) {
        rnd = 0.5;
    }
    j = (double)d * (0.8 + 0.4 * rnd);
    d = (long long)(j + 0.5);
    if (d > cap) {
        d = cap;
    }
    return d < 1 ? 1 : d;
}

/* ---------------------------------------------------------------- spool */

static int open_subdir(hs_queue *q, const char *path)
{
    int fd;

    if (mkdir(path, 0770) != 0 && errno != EEXIST) {
        return qerr(q, "cannot create %s: %s", path, strerror(errno));
    }
    fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return qerr(q, "cannot open %s: %s", path, strerror(errno));
    }
    return fd;
}

int hs_queue_open(hs_queue *q, const char *spool, const char *dead,
                  hs_queue_log_fn *log, void *baton)
{
    char path[4200];
    struct stat st;

    memset(q, 0, sizeof(*q));
    q->new_fd = q->cur_fd = q->dead_fd = -1;
    q->log = log;
    q->baton = baton;
    if (strlen(spool) >= sizeof(q->spool) ||
        (dead && strlen(dead) >= sizeof(q->dead))) {
        return qerr(q, "path too long");
    }
    snprintf(q->spool, sizeof(q->spool), "%s", spool);
    if (stat(spool, &st) != 0) {
        return qerr(q, "cannot use spool %s: %s", spool, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode)) {
        return qerr(q, "spool %s is not a directory", spool);
    }
    if (dead) {
        snprintf(q->dead, sizeof(q->dead), "%s", dead);
    }
    else if (snprintf(q->dead, sizeof(q->dead), "%s/" HS_SPOOL_DEAD, spool) >=
             (int)sizeof(q->dead)) {
        return qerr(q, "path too long");
    }

    snprintf(path, sizeof(path), "%s/" HS_SPOOL_NEW, spool);
    if ((q->new_fd = open_subdir(q, path)) < 0) {
        goto fail;
    }
    snprintf(path, sizeof(path), "%s/" HS_SPOOL_CUR, spool);
    if ((q->cur_fd = open_subdir(q, path)) < 0) {
        goto fail;
    }
    if ((q->dead_fd = open_subdir(q, q->dead)) < 0) {
        goto fail;
    }
    return 0;
fail:
    hs_queue_close(q);
    return -1;
}

void hs_queue_close(hs_queue *q)
{
    if (q->new_fd >= 0) {
        close(q->new_fd);
    }
    if (q->cur_fd >= 0) {
        close(q->cur_fd);
    }
    if (q->dead_fd >= 0) {
        close(q->dead_fd);
    }
    q->new_fd = q->cur_fd = q->dead_fd = -1;
}

int hs_queue_new_fd(const hs_queue *q)
{
    return q->new_fd;
}

/* rename without replacing; falls back to rename(2) where the file system
 * has no RENAME_NOREPLACE (some NFS servers): maildir names are unique, so
 * the target exists only after a crash between link and unlink elsewhere. */
static int move_noreplace(int ofd, const char *oname, int nfd,
                          const char *nname)
{
    if (renameat2(ofd, oname, nfd, nname, RENAME_NOREPLACE) == 0) {
        return 0;
    }
    if (errno == EINVAL || errno == ENOSYS) {
        return renameat(ofd, oname, nfd, nname);
    }
    return -1;
}

static int cmp_entry(const void *a, const void *b)
{
    const hs_queue_entry *x = a;
    const hs_queue_entry *y = b;

    if (x->n.next != y->n.next) {
        return x->n.next < y->n.next ? -1 : 1;
    }
    return strcmp(x->name, y->name);
}

int hs_queue_list_due(hs_queue *q, long long now, long long queued_before,
                      size_t max, hs_queue_entry **out, size_t *count,
                      long long *next_due)
{
    DIR *d;
    struct dirent *de;
    hs_queue_entry *v = NULL;
    size_t n = 0, cap = 0;
    int fd;

    *out = NULL;
    *count = 0;
    *next_due = 0;
    fd = openat(q->new_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || !(d = fdopendir(fd))) {
        if (fd >= 0) {
            close(fd);
        }
        return qerr(q, "cannot read %s/" HS_SPOOL_NEW ": %s", q->spool,
                    strerror(errno));
    }
    while ((de = readdir(d)) != NULL) {
        hs_queue_name nm;
        if (hs_queue_name_parse(de->d_name, &nm) != 0) {
            continue; /* ".", "..", dot files, odd names */
        }
        if (de->d_type != DT_REG) {
            struct stat st;
            if (de->d_type != DT_UNKNOWN ||
                fstatat(q->new_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
                !S_ISREG(st.st_mode)) {
                continue;
            }
        }
        if (nm.next > now) {
            if (*next_due == 0 || nm.next < *next_due) {
                *next_due = nm.next;
            }
            continue;
        }
        if (queued_before >= 0 && nm.queued > queued_before) {
            continue;
        }
        if (n >= max) {
            continue;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            hs_queue_entry *nv;
            if (ncap > max) {
                ncap = max;
            }
            nv = realloc(v, ncap * sizeof(*v));
            if (!nv) {
                free(v);
                closedir(d);
                return qerr(q, "out of memory");
            }
            v = nv;
            cap = ncap;
        }
        snprintf(v[n].name, sizeof(v[n].name), "%s", de->d_name);
        v[n].n = nm;
        n++;
    }
    closedir(d);
    if (n > 1) {
        qsort(v, n, sizeof(*v), cmp_entry);
    }
    *out = v;
    *count = n;
    return 0;
}

/* -------------------------------------------------------------- claims */

int hs_queue_claim_msg(hs_queue *q, const char *name, hs_queue_claim *c)
{
    struct stat st, st2;
    int fd;

    memset(c, 0, sizeof(*c));
    c->fd = -1;
    if (hs_queue_name_parse(name, &c->n) != 0) {
        return qerr(q, "unusable name");
    }
    if (fstatat(q->new_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) {
            return 1;
        }
        return qerr(q, "stat new/%s: %s", name, strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        return qerr(q, "new/%s is not a regular file", name);
    }
    c->mtime = (long long)st.st_mtime; /* before the touch: age fallback */
    /* the lease starts before the file shows up in cur/ */
    if (utimensat(q->new_fd, name, NULL, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) {
            return 1;
        }
        qlog(q, HS_LOG_WARN, "cannot touch new/%s: %s", name, strerror(errno));
    }
    if (move_noreplace(q->new_fd, name, q->cur_fd, name) != 0) {
        if (errno == ENOENT) {
            return 1;
        }
        if (errno == EEXIST) {
            qlog(q, HS_LOG_WARN,
                 "cur/%s already exists (held by another sender?)", name);
            return 1;
        }
        return qerr(q, "rename new/%s to cur/: %s", name, strerror(errno));
    }
    fd = openat(q->cur_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        /* recovery may have put it back already: not ours any more */
        if (errno == ENOENT) {
            return 1;
        }
        return qerr(q, "open cur/%s: %s", name, strerror(errno));
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) {
            close(fd);
            return 1;
        }
        /* file systems without flock: the lease alone protects us */
    }
    /* still the same file under the same name? */
    if (fstat(fd, &st) != 0 ||
        fstatat(q->cur_fd, name, &st2, AT_SYMLINK_NOFOLLOW) != 0 ||
        st.st_ino != st2.st_ino || st.st_dev != st2.st_dev) {
        close(fd);
        return 1;
    }
    snprintf(c->name, sizeof(c->name), "%s", name);
    c->fd = fd;
    c->size = (long long)st.st_size;
    return 0;
}

void hs_queue_renew(hs_queue_claim *c)
{
    if (c->fd >= 0) {
        (void)futimens(c->fd, NULL);
    }
}

void hs_queue_release(hs_queue_claim *c)
{
    if (c->fd >= 0) {
        close(c->fd); /* drops the flock */
        c->fd = -1;
    }
}

int hs_queue_read(hs_queue *q, hs_queue_claim *c, size_t max, char **buf,
                  size_t *len)
{
    struct stat st;
    char *b;
    size_t got = 0;

    *buf = NULL;
    *len = 0;
    if (fstat(c->fd, &st) != 0) {
        return qerr(q, "stat cur/%s: %s", c->name, strerror(errno));
    }
    if ((unsigned long long)st.st_size > (unsigned long long)max) {
        return 1;
    }
    b = malloc((size_t)st.st_size + 1);
    if (!b) {
        return qerr(q, "out of memory");
    }
    while (got < (size_t)st.st_size) {
        ssize_t r = pread(c->fd, b + got, (size_t)st.st_size - got, (off_t)got);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            free(b);
            return qerr(q, "read cur/%s: %s", c->name, strerror(e));
        }
        got += (size_t)r;
    }
    b[got] = '\0';
    *buf = b;
    *len = got;
    return 0;
}

int hs_queue_done(hs_queue *q, hs_queue_claim *c)
{
    int rv = 0;

    if (unlinkat(q->cur_fd, c->name, 0) != 0 && errno != ENOENT) {
        rv = qerr(q, "unlink cur/%s: %s", c->name, strerror(errno));
    }
    hs_queue_release(c);
    return rv;
}

int hs_queue_retry(hs_queue *q, hs_queue_claim *c, long long next)
{
    hs_queue_name n = c->n;
    char name[HS_QUEUE_NAME_MAX + 1];

    n.attempts = c->n.attempts + 1;
    n.next = next;
    if (hs_queue_name_format(&n, name, sizeof(name)) != 0) {
        return qerr(q, "name too long for the retry state");
    }
    if (move_noreplace(q->cur_fd, c->name, q->new_fd, name) != 0) {
        return qerr(q, "rename cur/%s to new/%s: %s", c->name, name,
                    strerror(errno));
    }
    hs_queue_release(c);
    return 0;
}

/*
 * Creates <dead>/<name> with O_CREAT|O_EXCL|O_NOFOLLOW - whatever already
 * has that name (a file, or a symlink planted by someone who can write the
 * folder) is neither followed nor replaced - and writes data, fsync'd.
 * 0 written, 1 the name is taken, -1 error (q->err set).
 */
static int create_dead_file(hs_queue *q, const char *name, const char *data,
                            size_t len)
{
    int fd, e;

    fd = openat(q->dead_fd, name,
                O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0660);
    if (fd < 0) {
        if (errno == EEXIST) {
            return 1;
        }
        return qerr(q, "create %s/%s: %s", q->dead, name, strerror(errno));
    }
    if (hs_write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        e = errno;
        close(fd);
        unlinkat(q->dead_fd, name, 0);
        return qerr(q, "write %s/%s: %s", q->dead, name, strerror(e));
    }
    if (close(fd) != 0) {
        e = errno;
        unlinkat(q->dead_fd, name, 0);
        return qerr(q, "write %s/%s: %s", q->dead, name, strerror(e));
    }
    return 0;
}

/* Moves the held message to <dead>/<name> without replacing anything there:
 * rename with RENAME_NOREPLACE, else link(2) (which never replaces either),
 * else (another file system) a copy into a file made by create_dead_file.
 * 0 moved, 1 the name is taken, -1 error (q->err set). */
static int move_to_dead(hs_queue *q, hs_queue_claim *c, const char *name)
{
    char *buf;
    size_t len;
    int r;

    if (renameat2(q->cur_fd, c->name, q->dead_fd, name, RENAME_NOREPLACE) ==
        0) {
        return 0;
    }
    if (errno == EINVAL || errno == ENOSYS) {
        if (linkat(q->cur_fd, c->name, q->dead_fd, name, 0) == 0) {
            unlinkat(q->cur_fd, c->name, 0);
            return 0;
        }
    }
    if (errno == EEXIST) {
        return 1;
    }
    if (errno != EXDEV) {
        return qerr(q, "rename cur/%s to %s/%s: %s", c->name, q->dead, name,
                    strerror(errno));
    }
    if (hs_queue_read(q, c, (size_t)1 << 30, &buf, &len) != 0) {
        return -1;
    }
    r = create_dead_file(q, name, buf, len);
    free(buf);
    if (r == 0 && unlinkat(q->cur_fd, c->name, 0) != 0 && errno != ENOENT) {
        qlog(q, HS_LOG_WARN, "unlink cur/%s: %s", c->name, strerror(errno));
    }
    return r;
}

/* The dead-letter name of try k (from 1): <base>, then <base>.2 ...;
 * -1 when it (or its .reason) would be too long. */
static int dead_name(const char *base, int k, char *name, char *rname)
{
    int w = k == 1 ? snprintf(name, HS_QUEUE_NAME_MAX + 1, "%s", base)
                   : snprintf(name, HS_QUEUE_NAME_MAX + 1, "%s.%d", base, k);

    if (w < 0 || w > HS_QUEUE_NAME_MAX - 7) {
        return -1;
    }
    memcpy(rname, name, (size_t)w);
    memcpy(rname + w, ".reason", 8);
    return 0;
}

/* Tries of a free dead-letter name before giving up. */
#define DEAD_NAME_TRIES 100

int hs_queue_dead(hs_queue *q, hs_queue_claim *c, const char *reason,
                  char *name_out, size_t name_len)
{
    char name[HS_QUEUE_NAME_MAX + 1], rname[HS_QUEUE_NAME_MAX + 1];
    size_t rl = strlen(reason);
    char *text;
    int k, r = 1;

    text = malloc(rl + 2);
    if (!text) {
        return qerr(q, "out of memory");
    }
    memcpy(text, reason, rl);
    text[rl] = '\n';
    text[rl + 1] = '\0';
    for (k = 1; k <= DEAD_NAME_TRIES && r == 1; k++) {
        if (dead_name(c->n.base, k, name, rname) != 0) {
            free(text);
            return qerr(q, "name too long for the dead-letter folder");
        }
        /* the reason file first: creating it claims the name */
        r = create_dead_file(q, rname, text, rl + 1);
        if (r == 0) {
            r = move_to_dead(q, c, name);
            if (r != 0) {
                unlinkat(q->dead_fd, rname, 0);
            }
        }
    }
    free(text);
    if (r == 1) {
        return qerr(q, "no free name for %s in %s after %d tries", c->n.base,
                    q->dead, DEAD_NAME_TRIES);
    }
    if (r < 0) {
        return -1;
    }
    (void)fsync(q->dead_fd);
    if (name_out && name_len) {
        snprintf(name_out, name_len, "%s", name);
    }
    hs_queue_release(c);
    return 0;
}

/* -------------------------------------------------------------- figures */

/* Counts the regular files of one spool folder into *count and lowers
 * st->oldest to the earliest queue time among them. */
static int count_dir(hs_queue *q, int dirfd, const char *label, size_t *count,
                     hs_queue_stats *st)
{
    DIR *d;
    struct dirent *de;
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0 || !(d = fdopendir(fd))) {
        if (fd >= 0) {
            close(fd);
        }
        return qerr(q, "cannot read %s/%s: %s", q->spool, label,
                    strerror(errno));
    }
    while ((de = readdir(d)) != NULL) {
        hs_queue_name nm;
        struct stat sb;
        long long queued;
        if (hs_queue_name_parse(de->d_name, &nm) != 0) {
            continue;
        }
        /* a stat only when the entry's type or queue time is unknown */
        if (de->d_type != DT_REG || nm.queued < 0) {
            if (fstatat(dirfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 ||
                !S_ISREG(sb.st_mode)) {
                continue;
            }
        }
        (*count)++;
        queued = nm.queued >= 0 ? nm.queued : (long long)sb.st_mtime;
        if (st->oldest < 0 || queued < st->oldest) {
            st->oldest = queued;
        }
    }
    closedir(d);
    return 0;
}

int hs_queue_get_stats(hs_queue *q, hs_queue_stats *st)
{
    memset(st, 0, sizeof(*st));
    st->oldest = -1;
    if (count_dir(q, q->new_fd, "new", &st->in_new, st) != 0 ||
        count_dir(q, q->cur_fd, "cur", &st->in_cur, st) != 0) {
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ recovery */

static void recover_one(hs_queue *q, const char *name, long long lease,
                        long long now, unsigned *moved)
{
    struct stat st, st2;
    int fd;

    fd = openat(q->cur_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        return; /* gone (delivered) or not a file */
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
        close(fd); /* a live sender holds it */
        return;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        (long long)st.st_mtime > now - lease) {
        close(fd);
        return;
    }
    if (fstatat(q->cur_fd, name, &st2, AT_SYMLINK_NOFOLLOW) != 0 ||
        st2.st_ino != st.st_ino || st2.st_dev != st.st_dev) {
        close(fd);
        return;
    }
    if (move_noreplace(q->cur_fd, name, q->new_fd, name) == 0) {
        (*moved)++;
        qlog(q, HS_LOG_WARN,
             "recovered %s: claim older than %llds returned to new/", name,
             lease);
    }
    else if (errno == EEXIST) {
        /* the same message is in new/ already (a crash after a link on a
         * file system without RENAME_NOREPLACE): keep the one in new/ */
        if (fstatat(q->new_fd, name, &st2, AT_SYMLINK_NOFOLLOW) == 0 &&
            st2.st_ino == st.st_ino && st2.st_dev == st.st_dev) {
            unlinkat(q->cur_fd, name, 0);
        }
        else {
            qlog(q, HS_LOG_WARN, "cannot recover cur/%s: new/%s exists", name,
                 name);
        }
    }
    else if (errno != ENOENT) {
        qlog(q, HS_LOG_ERROR, "cannot recover cur/%s: %s", name,
             strerror(errno));
    }
    close(fd);
}

/* maildir(5): a file left in tmp/ for 36 hours is debris - a writer that
 * died between create and rename, or a rename into new/ that failed after
 * its signup committed (the customer can ask for a new code). */
#define TMP_DEBRIS_AGE (36LL * 3600)

static void clean_tmp(hs_queue *q, long long now)
{
    char path[4200];
    DIR *d;
    struct dirent *de;
    int fd;

    snprintf(path, sizeof(path), "%s/" HS_SPOOL_TMP, q->spool);
    fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || !(d = fdopendir(fd))) {
        if (fd >= 0) {
            close(fd);
        }
        return; /* no tmp/ (or not ours to read): nothing to clean */
    }
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        if (de->d_name[0] == '.' ||
            fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(st.st_mode) ||
            (long long)st.st_mtime > now - TMP_DEBRIS_AGE) {
            continue;
        }
        if (unlinkat(fd, de->d_name, 0) == 0) {
            qlog(q, HS_LOG_WARN, "removed tmp/%s: left there over 36 hours",
                 de->d_name);
        }
    }
    closedir(d);
}

int hs_queue_recover(hs_queue *q, long long lease, long long now,
                     unsigned *moved)
{
    DIR *d;
    struct dirent *de;
    unsigned m = 0;
    int fd;

    fd = openat(q->cur_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || !(d = fdopendir(fd))) {
        if (fd >= 0) {
            close(fd);
        }
        return qerr(q, "cannot read %s/" HS_SPOOL_CUR ": %s", q->spool,
                    strerror(errno));
    }
    while ((de = readdir(d)) != NULL) {
        hs_queue_name nm;
        if (hs_queue_name_parse(de->d_name, &nm) != 0) {
            continue;
        }
        recover_one(q, de->d_name, lease, now, &m);
    }
    closedir(d);
    clean_tmp(q, now);
    if (moved) {
        *moved = m;
    }
    return 0;
}
