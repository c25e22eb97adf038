/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_spool.c - unit tests for src/core/spool.c (hs_spool.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <check.h>

#include <apr_general.h>
#include <apr_hash.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include "hs_spool.h"
#include "unit_main.h"

static apr_pool_t *pool;
static char *root; /* a fresh directory per test */

static void rm_tree(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;

    if (d == NULL) {
        unlink(path);
        return;
    }
    while ((e = readdir(d)) != NULL) {
        char *sub;
        struct stat st;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        sub = apr_pstrcat(pool, path, "/", e->d_name, NULL);
        if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode)) {
            chmod(sub, 0700);
            rm_tree(sub);
        }
        else {
            unlink(sub);
        }
    }
    closedir(d);
    rmdir(path);
}

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    apr_pool_create(&pool, NULL);
    root = apr_pstrcat(pool, tmp && *tmp ? tmp : "/tmp", "/test_spool.XXXXXX",
                       NULL);
    ck_assert_ptr_nonnull(mkdtemp(root));
}

static void teardown(void)
{
    chmod(root, 0700);
    rm_tree(root);
    apr_pool_destroy(pool);
}

static int count_entries(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;

    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.') {
            n++;
        }
    }
    closedir(d);
    return n;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = hs_unit_slurp(pool, f, len);

    fclose(f);
    return buf;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static const char *path3(const char *a, const char *b, const char *c)
{
    return apr_pstrcat(pool, a, "/", b, c ? "/" : NULL, c, NULL);
}

/* <sec>.M<usec>P<pid>R<16 hex>.<host> */
static void assert_name(const char *name)
{
    const char *s = name;
    size_t i;
    char pid[32];

    ck_assert(*s >= '0' && *s <= '9');
    s += strspn(s, "0123456789");
    ck_assert_msg(strncmp(s, ".M", 2) == 0, "%s", name);
    s += 2;
    ck_assert_uint_eq(strspn(s, "0123456789"), 6);
    s += 6;
    snprintf(pid, sizeof(pid), "P%ldR", (long)getpid());
    ck_assert_msg(strncmp(s, pid, strlen(pid)) == 0, "%s", name);
    s += strlen(pid);
    for (i = 0; i < 16; i++) {
        ck_assert(s[i] && strchr("0123456789abcdef", s[i]));
    }
    s += 16;
    ck_assert(*s == '.' && s[1] != '\0');
    ck_assert_ptr_null(strchr(s, '/'));
    ck_assert_ptr_null(strchr(s, ':'));
}

/* --- prepare ------------------------------------------------------------- */

START_TEST(test_prepare_creates)
{
    const char *sub[] = {"tmp", "new", "cur", "dead"};
    struct stat rst, st;
    size_t i;
    mode_t old = umask(077);
    const char *err = hs_spool_prepare(pool, root);

    umask(old);
    ck_assert_msg(err == NULL, "%s", err ? err : "");
    ck_assert_int_eq(stat(root, &rst), 0);
    for (i = 0; i < 4; i++) {
        ck_assert_int_eq(stat(path3(root, sub[i], NULL), &st), 0);
        ck_assert(S_ISDIR(st.st_mode));
        ck_assert_int_eq(st.st_mode & 07777, 0770);
        ck_assert_int_eq(st.st_uid, rst.st_uid);
        ck_assert_int_eq(st.st_gid, rst.st_gid);
    }
    /* again: all present, fine */
    ck_assert_ptr_null(hs_spool_prepare(pool, root));
}
END_TEST

START_TEST(test_prepare_chowns)
{
    struct stat st;
    const char *err;

    if (geteuid() != 0) {
        fprintf(stderr, "test_prepare_chowns: not root, skipped\n");
        return;
    }
    /* the operator gave the spool to the server's user */
    ck_assert_int_eq(chown(root, 33, 33), 0);
    err = hs_spool_prepare(pool, root);
    ck_assert_msg(err == NULL, "%s", err ? err : "");
    ck_assert_int_eq(stat(path3(root, "new", NULL), &st), 0);
    ck_assert_int_eq(st.st_uid, 33);
    ck_assert_int_eq(st.st_gid, 33);
    ck_assert_int_eq(stat(path3(root, "dead", NULL), &st), 0);
    ck_assert_int_eq(st.st_uid, 33);
}
END_TEST

START_TEST(test_prepare_refuses)
{
    const char *missing = path3(root, "missing", NULL);
    const char *file = path3(root, "file", NULL);
    const char *err;
    FILE *f = fopen(file, "w");

    ck_assert_ptr_nonnull(f);
    fclose(f);
    err = hs_spool_prepare(pool, missing);
    ck_assert_str_eq(err, apr_pstrcat(pool, missing, " does not exist", NULL));
    err = hs_spool_prepare(pool, file);
    ck_assert_str_eq(err, apr_pstrcat(pool, file, " is not a directory", NULL));
    ck_assert_ptr_nonnull(hs_spool_prepare(pool, ""));
    ck_assert_ptr_nonnull(hs_spool_prepare(pool, NULL));

    /* a file where a subdirectory belongs */
    f = fopen(path3(root, "new", NULL), "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    err = hs_spool_prepare(pool, root);
    ck_assert_str_eq(err,
                     apr_pstrcat(pool, root, "/new is not a directory", NULL));

    /* not writable (root bypasses permissions: only as a normal user) */
    if (geteuid() != 0) {
        const char *ro = path3(root, "ro", NULL);
        ck_assert_int_eq(mkdir(ro, 0500), 0);
        err = hs_spool_prepare(pool, ro);
        ck_assert_ptr_nonnull(err);
        ck_assert_ptr_nonnull(strstr(err, "is not writable"));
    }
}
END_TEST

/* --- write, publish, discard ------------------------------------------- */

static const char data[] = "Subject: x\r\n\r\nbody \x00\xff bytes\r\n";

START_TEST(test_write_publish)
{
    hs_spool_msg *m = NULL;
    const char *err, *name, *tmpf, *newf, *got;
    size_t len;
    struct stat st;
    mode_t old;

    ck_assert_ptr_null(hs_spool_prepare(pool, root));
    old = umask(022); /* httpd's on Debian */
    err = hs_spool_write(pool, root, data, sizeof(data) - 1, &m);
    umask(old);
    ck_assert_msg(err == NULL, "%s", err ? err : "");
    ck_assert_ptr_nonnull(m);
    name = hs_spool_msg_name(m);
    assert_name(name);
    tmpf = path3(root, "tmp", name);
    newf = path3(root, "new", name);
    got = read_file(tmpf, &len);
    ck_assert_uint_eq(len, sizeof(data) - 1);
    ck_assert(memcmp(got, data, len) == 0);
    ck_assert_int_eq(stat(tmpf, &st), 0);
    /* the sender, in the spool's group, touches its claim: g+rw, no o */
    ck_assert_int_eq(st.st_mode & 07777, 0660);
    ck_assert_int_eq(count_entries(path3(root, "new", NULL)), 0);

    ck_assert_ptr_null(hs_spool_publish(m));
    ck_assert(!exists(tmpf));
    ck_assert(exists(newf));
    got = read_file(newf, &len);
    ck_assert_uint_eq(len, sizeof(data) - 1);
    ck_assert(memcmp(got, data, len) == 0);
    /* discard after publish must not touch new/ */
    hs_spool_discard(m);
    ck_assert(exists(newf));
    ck_assert_int_eq(count_entries(path3(root, "tmp", NULL)), 0);
}
END_TEST

START_TEST(test_write_discard)
{
    hs_spool_msg *m = NULL;
    const char *tmpf;

    ck_assert_ptr_null(hs_spool_prepare(pool, root));
    ck_assert_ptr_null(hs_spool_write(pool, root, data, sizeof(data) - 1, &m));
    tmpf = path3(root, "tmp", hs_spool_msg_name(m));
    ck_assert(exists(tmpf));
    hs_spool_discard(m);
    ck_assert(!exists(tmpf));
    hs_spool_discard(m); /* idempotent: ENOENT is fine */
    ck_assert_int_eq(count_entries(path3(root, "tmp", NULL)), 0);
    ck_assert_int_eq(count_entries(path3(root, "new", NULL)), 0);
    /* publishing a discarded message fails with a reason */
    ck_assert_ptr_nonnull(hs_spool_publish(m));
    ck_assert_int_eq(count_entries(path3(root, "new", NULL)), 0);
    hs_spool_discard(NULL);
    ck_assert_ptr_nonnull(hs_spool_publish(NULL));
}
END_TEST

START_TEST(test_write_empty)
{
    hs_spool_msg *m = NULL;
    size_t len;

    ck_assert_ptr_null(hs_spool_prepare(pool, root));
    ck_assert_ptr_null(hs_spool_write(pool, root, "", 0, &m));
    read_file(path3(root, "tmp", hs_spool_msg_name(m)), &len);
    ck_assert_uint_eq(len, 0);
    hs_spool_discard(m);
}
END_TEST

START_TEST(test_write_unwritable)
{
    hs_spool_msg *m = (hs_spool_msg *)1;
    const char *err;
    const char *tmpdir = path3(root, "tmp", NULL);

    ck_assert_ptr_null(hs_spool_prepare(pool, root));

    /* tmp/ replaced by a file: works whoever we are */
    ck_assert_int_eq(rmdir(tmpdir), 0);
    {
        FILE *f = fopen(tmpdir, "w");
        ck_assert_ptr_nonnull(f);
        fclose(f);
    }
    err = hs_spool_write(pool, root, data, sizeof(data) - 1, &m);
    ck_assert_ptr_nonnull(err);
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(err, "cannot create ") && strstr(err, "Not a "
                                                               "directory"),
                  "%s", err);
    ck_assert_int_eq(count_entries(root), 4); /* tmp(file) new cur dead */
    unlink(tmpdir);

    /* a missing spool */
    m = (hs_spool_msg *)1;
    err = hs_spool_write(pool, path3(root, "nope", NULL), data, 3, &m);
    ck_assert_ptr_nonnull(err);
    ck_assert_ptr_null(m);
    ck_assert_ptr_nonnull(strstr(err, "No such file or directory"));

    /* a read-only tmp/: only as a normal user, root ignores the mode */
    if (geteuid() != 0) {
        ck_assert_int_eq(mkdir(tmpdir, 0500), 0);
        m = (hs_spool_msg *)1;
        err = hs_spool_write(pool, root, data, sizeof(data) - 1, &m);
        ck_assert_ptr_nonnull(err);
        ck_assert_ptr_null(m);
        ck_assert_ptr_nonnull(strstr(err, "Permission denied"));
        ck_assert_int_eq(count_entries(tmpdir), 0);
    }
}
END_TEST

/* A full file system: a 64 KiB tmpfs in a private mount namespace (the
 * mount vanishes with this process). Needs root; skipped otherwise. */
START_TEST(test_write_enospc)
{
    char *big;
    hs_spool_msg *m = (hs_spool_msg *)1;
    const char *err, *mnt = path3(root, "full", NULL);
    size_t n = 256 * 1024;

    if (geteuid() != 0 || unshare(CLONE_NEWNS) != 0 ||
        mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0) {
        fprintf(stderr, "test_write_enospc: no private mount namespace, "
                        "skipped\n");
        return;
    }
    ck_assert_int_eq(mkdir(mnt, 0700), 0);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=64k") != 0) {
        fprintf(stderr,
                "test_write_enospc: cannot mount tmpfs (%s), "
                "skipped\n",
                strerror(errno));
        return;
    }
    ck_assert_ptr_null(hs_spool_prepare(pool, mnt));
    big = apr_palloc(pool, n);
    memset(big, 'x', n);
    err = hs_spool_write(pool, mnt, big, n, &m);
    ck_assert_ptr_nonnull(err);
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(err, "No space left on device") != NULL, "%s", err);
    ck_assert_msg(strncmp(err, "cannot write ", 13) == 0, "%s", err);
    ck_assert_int_eq(count_entries(path3(mnt, "tmp", NULL)), 0);
    /* and a small one still goes through */
    ck_assert_ptr_null(hs_spool_write(pool, mnt, data, sizeof(data) - 1, &m));
    ck_assert_ptr_null(hs_spool_publish(m));
    ck_assert_int_eq(count_entries(path3(mnt, "new", NULL)), 1);
    umount(mnt);
}
END_TEST

START_TEST(test_unique_names)
{
    enum { N = 10000 };
    apr_hash_t *seen = apr_hash_make(pool);
    int i;

    ck_assert_ptr_null(hs_spool_prepare(pool, root));
    for (i = 0; i < N; i++) {
        hs_spool_msg *m = NULL;
        const char *err = hs_spool_write(pool, root, "x", 1, &m);
        const char *name;
        ck_assert_msg(err == NULL, "%s", err ? err : "");
        name = hs_spool_msg_name(m);
        ck_assert_msg(apr_hash_get(seen, name, APR_HASH_KEY_STRING) == NULL,
                      "duplicate %s", name);
        apr_hash_set(seen, name, APR_HASH_KEY_STRING, name);
    }
    ck_assert_int_eq(apr_hash_count(seen), N);
    ck_assert_int_eq(count_entries(path3(root, "tmp", NULL)), N);
}
END_TEST

static Suite *spool_suite(void)
{
    const TTest *const tests[] = {
        test_prepare_creates,  test_prepare_chowns, test_prepare_refuses,
        test_write_publish,    test_write_discard,  test_write_empty,
        test_write_unwritable, test_write_enospc,   test_unique_names,
    };

    return hs_unit_suite("spool", "core", setup, teardown, 120, tests,
                         HS_UNIT_COUNT(tests), NULL);
}

HS_UNIT_MAIN(spool_suite)
