/* SPDX-License-Identifier: Apache-2.0 */
/*
 * spool.c - the module's side of the Maildir-style spool (see hs_spool.h).
 *
 * A message is written to tmp/<unique> with O_EXCL, fsync'd and closed; the
 * caller publishes it (rename into new/, fsync new/) only after its database
 * COMMIT, or discards it. Names follow maildir(5):
 * <sec>.M<usec>P<pid>R<16 hex random>.<host>, the host name with '/' and
 * ':' written as "\057" and "\072".
 *
 * httpd-free: APR only.
 */
#include "hs_spool.h"
#include "hs_spool_layout.h"
#include "hs_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_strings.h>

#define HS_SPOOL_DIR_MODE 0770
/* group-writable: the sender (another user in the group) touches its claim */
#define HS_SPOOL_FILE_MODE 0660
#define HS_SPOOL_NAME_TRIES 5

struct hs_spool_msg {
    apr_pool_t *p;
    const char *dir;
    const char *name;
    const char *tmp_path;
    const char *new_path;
    int published;
};

static const char *const subdirs[] = HS_SPOOL_FOLDERS;

static const char *errtext(apr_pool_t *p, int err)
{
    char buf[256];
    apr_strerror(APR_FROM_OS_ERROR(err), buf, sizeof(buf));
    return apr_pstrdup(p, buf);
}

const char *hs_spool_prepare(apr_pool_t *p, const char *dir)
{
    struct stat st;
    size_t i;

    if (dir == NULL || *dir == '\0') {
        return "no spool directory given";
    }
    if (stat(dir, &st) != 0) {
        int e = errno;
        if (e == ENOENT) {
            return apr_psprintf(p, "%s does not exist", dir);
        }
        return apr_psprintf(p, "cannot stat %s: %s", dir, errtext(p, e));
    }
    if (!S_ISDIR(st.st_mode)) {
        return apr_psprintf(p, "%s is not a directory", dir);
    }
    if (access(dir, W_OK | X_OK) != 0) {
        return apr_psprintf(p, "%s is not writable: %s", dir,
                            errtext(p, errno));
    }
    for (i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
        const char *sub = apr_pstrcat(p, dir, "/", subdirs[i], NULL);
        struct stat sst;

        if (mkdir(sub, HS_SPOOL_DIR_MODE) == 0) {
            /* exact mode whatever the umask, owned as dir is (so that the
             * server's user owns them when the operator chowned dir) */
            if (chmod(sub, HS_SPOOL_DIR_MODE) != 0) {
                return apr_psprintf(p, "cannot chmod %s: %s", sub,
                                    errtext(p, errno));
            }
            if (stat(sub, &sst) != 0) {
                return apr_psprintf(p, "cannot stat %s: %s", sub,
                                    errtext(p, errno));
            }
            /* only root can give a directory away; others own it already */
            if (geteuid() == 0 &&
                (sst.st_uid != st.st_uid || sst.st_gid != st.st_gid) &&
                chown(sub, st.st_uid, st.st_gid) != 0) {
                return apr_psprintf(p, "cannot give %s to uid %ld gid %ld: %s",
                                    sub, (long)st.st_uid, (long)st.st_gid,
                                    errtext(p, errno));
            }
            continue;
        }
        if (errno != EEXIST) {
            return apr_psprintf(p, "cannot create %s: %s", sub,
                                errtext(p, errno));
        }
        if (stat(sub, &sst) != 0) {
            return apr_psprintf(p, "cannot stat %s: %s", sub,
                                errtext(p, errno));
        }
        if (!S_ISDIR(sst.st_mode)) {
            return apr_psprintf(p, "%s is not a directory", sub);
        }
        if (access(sub, W_OK | X_OK) != 0) {
            return apr_psprintf(p, "%s is not writable: %s", sub,
                                errtext(p, errno));
        }
    }
    return NULL;
}

/* This host's name for maildir(5) names: '/' and ':' escaped in octal. */
static const char *spool_host(apr_pool_t *p)
{
    char h[256];
    const char *s;
    char *out, *w;

    if (gethostname(h, sizeof(h)) != 0 || h[0] == '\0') {
        return "localhost";
    }
    h[sizeof(h) - 1] = '\0';
    out = apr_palloc(p, strlen(h) * 4 + 1);
    for (s = h, w = out; *s; s++) {
        if (*s == '/') {
            memcpy(w, "\\057", 4);
            w += 4;
        }
        else if (*s == ':') {
            memcpy(w, "\\072", 4);
            w += 4;
        }
        else {
            *w++ = *s;
        }
    }
    *w = '\0';
    return out;
}

static const char *unique_name(apr_pool_t *p, const char *host,
                               const char **name)
{
    unsigned char r[8];
    struct timeval tv;

    if (apr_generate_random_bytes(r, sizeof(r)) != APR_SUCCESS) {
        return "cannot get random bytes for a spool file name";
    }
    gettimeofday(&tv, NULL);
    *name = apr_psprintf(
        p,
        "%" APR_INT64_T_FMT ".M%06ldP%ldR%02x%02x%02x%02x%02x%02x%02x%02x.%s",
        (apr_int64_t)tv.tv_sec, (long)tv.tv_usec, (long)getpid(), r[0], r[1],
        r[2], r[3], r[4], r[5], r[6], r[7], host);
    return NULL;
}

static int fsync_retry(int fd)
{
    int rv;
    do {
        rv = fsync(fd);
    } while (rv != 0 && errno == EINTR);
    return rv;
}

const char *hs_spool_write(apr_pool_t *p, const char *dir, const char *data,
                           size_t len, hs_spool_msg **msg)
{
    const char *host = spool_host(p), *name = NULL, *path = NULL, *err;
    hs_spool_msg *m;
    int fd = -1, tries, e;

    *msg = NULL;
    if (dir == NULL || (data == NULL && len > 0)) {
        return "no spool directory or message";
    }
    for (tries = 0; tries < HS_SPOOL_NAME_TRIES; tries++) {
        if ((err = unique_name(p, host, &name)) != NULL) {
            return err;
        }
        path = apr_pstrcat(p, dir, "/" HS_SPOOL_TMP "/", name, NULL);
        fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC,
                  HS_SPOOL_FILE_MODE);
        if (fd >= 0 || errno != EEXIST) {
            break;
        }
    }
    if (fd < 0) {
        return apr_psprintf(p, "cannot create %s: %s", path, errtext(p, errno));
    }
    /* exact mode whatever httpd's umask (022 on Debian): the sender, in the
     * spool's group, must be able to touch its claim */
    if (fchmod(fd, HS_SPOOL_FILE_MODE) != 0) {
        e = errno;
        err = apr_psprintf(p, "cannot chmod %s: %s", path, errtext(p, e));
        goto fail;
    }
    if (hs_write_all(fd, data, len) != 0) {
        e = errno;
        err = apr_psprintf(p, "cannot write %s: %s", path, errtext(p, e));
        goto fail;
    }
    if (fsync_retry(fd) != 0) {
        e = errno;
        err = apr_psprintf(p, "cannot fsync %s: %s", path, errtext(p, e));
        goto fail;
    }
    if (close(fd) != 0 && errno != EINTR) {
        fd = -1;
        e = errno;
        err = apr_psprintf(p, "cannot close %s: %s", path, errtext(p, e));
        goto fail;
    }
    m = apr_pcalloc(p, sizeof(*m));
    m->p = p;
    m->dir = apr_pstrdup(p, dir);
    m->name = name;
    m->tmp_path = path;
    m->new_path = apr_pstrcat(p, dir, "/" HS_SPOOL_NEW "/", name, NULL);
    *msg = m;
    return NULL;

fail:
    if (fd >= 0) {
        close(fd);
    }
    unlink(path);
    return err;
}

const char *hs_spool_publish(hs_spool_msg *msg)
{
    const char *newdir;
    int fd;

    if (msg == NULL) {
        return "no spool message";
    }
    if (msg->published) {
        return NULL;
    }
    if (rename(msg->tmp_path, msg->new_path) != 0) {
        return apr_psprintf(msg->p, "cannot rename %s to %s: %s", msg->tmp_path,
                            msg->new_path, errtext(msg->p, errno));
    }
    msg->published = 1;
    newdir = apr_pstrcat(msg->p, msg->dir, "/new", NULL);
    fd = open(newdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return apr_psprintf(msg->p, "cannot open %s to fsync it: %s", newdir,
                            errtext(msg->p, errno));
    }
    /* some file systems cannot fsync a directory (EINVAL): nothing to do */
    if (fsync_retry(fd) != 0 && errno != EINVAL) {
        int e = errno;
        close(fd);
        return apr_psprintf(msg->p, "cannot fsync %s: %s", newdir,
                            errtext(msg->p, e));
    }
    close(fd);
    return NULL;
}

void hs_spool_discard(hs_spool_msg *msg)
{
    if (msg == NULL || msg->published) {
        return;
    }
    /* ENOENT (already gone) is as good as done; nothing else can help */
    (void)unlink(msg->tmp_path);
}

const char *hs_spool_msg_name(const hs_spool_msg *msg)
{
    return msg ? msg->name : NULL;
}
