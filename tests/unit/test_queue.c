/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_queue.c - unit tests for the sender's spool logic (mailer/queue.c) and
 * the message helpers of mailer/smtp.c, on a temporary directory.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hs_queue.h"
#include "hs_smtp.h"

static char tmpl[64];
static char spool[128];

static void put(const char *sub, const char *name, const char *data)
{
    char p[512];
    FILE *f;

    snprintf(p, sizeof(p), "%s/%s/%s", spool, sub, name);
    f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs(data, f);
    fclose(f);
}

static int exists(const char *sub, const char *name)
{
    char p[512];
    struct stat st;

    snprintf(p, sizeof(p), "%s/%s/%s", spool, sub, name);
    return stat(p, &st) == 0;
}

static void age(const char *sub, const char *name, long secs)
{
    char p[512];
    struct timespec ts[2];

    snprintf(p, sizeof(p), "%s/%s/%s", spool, sub, name);
    ts[0].tv_sec = ts[1].tv_sec = time(NULL) - secs;
    ts[0].tv_nsec = ts[1].tv_nsec = 0;
    ck_assert_int_eq(utimensat(AT_FDCWD, p, ts, 0), 0);
}

static void setup(void)
{
    snprintf(tmpl, sizeof(tmpl), "/tmp/test_queue-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpl));
    snprintf(spool, sizeof(spool), "%s/spool", tmpl);
    ck_assert_int_eq(mkdir(spool, 0770), 0);
}

static void teardown(void)
{
    char cmd[256];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpl);
    ck_assert_int_eq(system(cmd), 0);
}

START_TEST(name_plain)
{
    hs_queue_name n;

    ck_assert_int_eq(hs_queue_name_parse("1700000000.M123P45R6a.host", &n), 0);
    ck_assert_str_eq(n.base, "1700000000.M123P45R6a.host");
    ck_assert_uint_eq(n.attempts, 0);
    ck_assert_int_eq(n.next, 0);
    ck_assert_int_eq(n.queued, 1700000000LL);
}
END_TEST

START_TEST(name_retry)
{
    hs_queue_name n;
    char out[HS_QUEUE_NAME_MAX + 1];

    ck_assert_int_eq(
        hs_queue_name_parse("1700000000.M1P2R3.h,r=3,t=1700000100", &n), 0);
    ck_assert_str_eq(n.base, "1700000000.M1P2R3.h");
    ck_assert_uint_eq(n.attempts, 3);
    ck_assert_int_eq(n.next, 1700000100LL);
    ck_assert_int_eq(n.queued, 1700000000LL);
    n.attempts = 4;
    n.next = 1700000200;
    ck_assert_int_eq(hs_queue_name_format(&n, out, sizeof(out)), 0);
    ck_assert_str_eq(out, "1700000000.M1P2R3.h,r=4,t=1700000200");
    n.attempts = 0;
    ck_assert_int_eq(hs_queue_name_format(&n, out, sizeof(out)), 0);
    ck_assert_str_eq(out, "1700000000.M1P2R3.h");
    ck_assert_int_eq(hs_queue_name_format(&n, out, 5), -1);
}
END_TEST

START_TEST(name_odd)
{
    hs_queue_name n;

    ck_assert_int_eq(hs_queue_name_parse("", &n), -1);
    ck_assert_int_eq(hs_queue_name_parse(".hidden", &n), -1);
    ck_assert_int_eq(hs_queue_name_parse("..", &n), -1);
    ck_assert_int_eq(hs_queue_name_parse("a/b", &n), -1);
    /* not a retry suffix: kept as part of the base */
    ck_assert_int_eq(hs_queue_name_parse("x,r=1,t=abc", &n), 0);
    ck_assert_str_eq(n.base, "x,r=1,t=abc");
    ck_assert_uint_eq(n.attempts, 0);
    ck_assert_int_eq(n.queued, -1);
    ck_assert_int_eq(hs_queue_name_parse(",r=1,t=5", &n), 0);
    ck_assert_str_eq(n.base, ",r=1,t=5");
    /* the last suffix counts */
    ck_assert_int_eq(hs_queue_name_parse("a,r=1,t=2,r=3,t=4", &n), 0);
    ck_assert_str_eq(n.base, "a,r=1,t=2");
    ck_assert_uint_eq(n.attempts, 3);
    {
        char longname[300];
        memset(longname, 'a', 256);
        longname[256] = '\0';
        ck_assert_int_eq(hs_queue_name_parse(longname, &n), -1);
        longname[250] = '\0';
        ck_assert_int_eq(hs_queue_name_parse(longname, &n), 0);
        n.attempts = 1;
        n.next = 1700000000;
        ck_assert_int_eq(hs_queue_name_format(&n, longname, sizeof(longname)),
                         -1);
    }
}
END_TEST

START_TEST(backoff)
{
    /* base 5, factor 2, cap 3600; rnd 0.5 = factor 1.0 */
    ck_assert_int_eq(hs_queue_backoff(1, 5, 3600, 0.5), 5);
    ck_assert_int_eq(hs_queue_backoff(2, 5, 3600, 0.5), 10);
    ck_assert_int_eq(hs_queue_backoff(3, 5, 3600, 0.5), 20);
    ck_assert_int_eq(hs_queue_backoff(10, 5, 3600, 0.5), 2560);
    ck_assert_int_eq(hs_queue_backoff(11, 5, 3600, 0.5), 3600);
    ck_assert_int_eq(hs_queue_backoff(1000000, 5, 3600, 0.5), 3600);
    /* jitter: [0.8, 1.2) and never above the cap */
    ck_assert_int_eq(hs_queue_backoff(1, 10, 3600, 0.0), 8);
    ck_assert_int_eq(hs_queue_backoff(1, 10, 3600, 0.999), 12);
    ck_assert_int_le(hs_queue_backoff(20, 5, 3600, 0.999), 3600);
    ck_assert_int_ge(hs_queue_backoff(20, 5, 3600, 0.0), 2880);
    /* never below a second */
    ck_assert_int_eq(hs_queue_backoff(1, 1, 1, 0.0), 1);
    ck_assert_int_eq(hs_queue_backoff(0, 0, 0, 0.0), 1);
}
END_TEST

START_TEST(claim_cycle)
{
    hs_queue q, q2;
    hs_queue_entry *e;
    hs_queue_claim c, c2;
    size_t n;
    long long next;
    char *buf;
    size_t len;
    long long now = time(NULL);

    ck_assert_int_eq(hs_queue_open(&q, spool, NULL, NULL, NULL), 0);
    ck_assert(exists("", "new") && exists("", "cur") && exists("", "dead"));
    put("new", "1700000002.M1P1R1.h", "To: a@b\r\n\r\nx\r\n");
    put("new", "1700000001.M1P1R1.h", "one");
    put("new", "1700000000.M1P1R1.h,r=2,t=9999999999", "later");
    put("new", ".dotfile", "ignored");

    ck_assert_int_eq(hs_queue_list_due(&q, now, -1, 100, &e, &n, &next), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(e[0].name, "1700000001.M1P1R1.h");
    ck_assert_str_eq(e[1].name, "1700000002.M1P1R1.h");
    ck_assert_int_eq(next, 9999999999LL);
    free(e);
    /* --once's snapshot: nothing queued after 1700000001 */
    ck_assert_int_eq(hs_queue_list_due(&q, now, 1700000001, 100, &e, &n, &next),
                     0);
    ck_assert_uint_eq(n, 1);
    free(e);

    /* claim: exactly one of two queues wins */
    ck_assert_int_eq(hs_queue_open(&q2, spool, NULL, NULL, NULL), 0);
    ck_assert_int_eq(hs_queue_claim_msg(&q, "1700000002.M1P1R1.h", &c), 0);
    ck_assert_int_eq(hs_queue_claim_msg(&q2, "1700000002.M1P1R1.h", &c2), 1);
    ck_assert(exists("cur", "1700000002.M1P1R1.h"));
    ck_assert(!exists("new", "1700000002.M1P1R1.h"));
    ck_assert_int_eq(hs_queue_read(&q, &c, 1000, &buf, &len), 0);
    ck_assert_str_eq(buf, "To: a@b\r\n\r\nx\r\n");
    ck_assert_uint_eq(len, 14);
    free(buf);
    ck_assert_int_eq(hs_queue_read(&q, &c, 5, &buf, &len), 1);
    /* held: recovery leaves it alone even when the lease has run out */
    age("cur", "1700000002.M1P1R1.h", 1000);
    {
        unsigned moved = 99;
        ck_assert_int_eq(hs_queue_recover(&q2, 300, now, &moved), 0);
        ck_assert_uint_eq(moved, 0);
    }
    /* retry: back to new/ with the schedule in the name */
    ck_assert_int_eq(hs_queue_retry(&q, &c, 1800000000), 0);
    ck_assert(exists("new", "1700000002.M1P1R1.h,r=1,t=1800000000"));
    ck_assert(!exists("cur", "1700000002.M1P1R1.h"));

    /* done */
    ck_assert_int_eq(hs_queue_claim_msg(&q, "1700000001.M1P1R1.h", &c), 0);
    ck_assert_int_eq(hs_queue_done(&q, &c), 0);
    ck_assert(!exists("cur", "1700000001.M1P1R1.h"));
    ck_assert(!exists("new", "1700000001.M1P1R1.h"));

    /* gone: claim reports a lost race */
    ck_assert_int_eq(hs_queue_claim_msg(&q, "1700000001.M1P1R1.h", &c), 1);

    /* dead letter: base name, reason beside it */
    ck_assert_int_eq(
        hs_queue_claim_msg(&q, "1700000000.M1P1R1.h,r=2,t=9999999999", &c), 0);
    ck_assert_uint_eq(c.n.attempts, 2);
    {
        char dn[HS_QUEUE_NAME_MAX + 1];
        ck_assert_int_eq(hs_queue_dead(&q, &c, "reason: test", dn, sizeof(dn)),
                         0);
        ck_assert_str_eq(dn, "1700000000.M1P1R1.h");
    }
    ck_assert(exists("dead", "1700000000.M1P1R1.h"));
    ck_assert(exists("dead", "1700000000.M1P1R1.h.reason"));
    ck_assert(!exists("cur", "1700000000.M1P1R1.h,r=2,t=9999999999"));
    {
        char p[512], text[64] = {0};
        FILE *f;
        snprintf(p, sizeof(p), "%s/dead/1700000000.M1P1R1.h.reason", spool);
        f = fopen(p, "r");
        ck_assert_ptr_nonnull(f);
        ck_assert_ptr_nonnull(fgets(text, sizeof(text), f));
        fclose(f);
        ck_assert_str_eq(text, "reason: test\n");
    }
    hs_queue_close(&q);
    hs_queue_close(&q2);
}
END_TEST

START_TEST(recovery)
{
    hs_queue q;
    unsigned moved = 0;
    long long now = time(NULL);
    char p[512];
    int fd;

    ck_assert_int_eq(hs_queue_open(&q, spool, NULL, NULL, NULL), 0);
    put("cur", "1.M1P1R1.h", "stale");
    put("cur", "2.M1P1R1.h,r=1,t=5", "stale with a schedule");
    put("cur", "3.M1P1R1.h", "fresh");
    put("cur", "4.M1P1R1.h", "stale but locked");
    age("cur", "1.M1P1R1.h", 400);
    age("cur", "2.M1P1R1.h,r=1,t=5", 400);
    age("cur", "4.M1P1R1.h", 400);
    snprintf(p, sizeof(p), "%s/cur/4.M1P1R1.h", spool);
    fd = open(p, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(flock(fd, LOCK_EX), 0);

    ck_assert_int_eq(hs_queue_recover(&q, 300, now, &moved), 0);
    /* flock is per open file description: ours is another one, so the
     * queue's own attempt fails with EWOULDBLOCK and 4 stays */
    ck_assert_uint_eq(moved, 2);
    ck_assert(exists("new", "1.M1P1R1.h"));
    ck_assert(exists("new", "2.M1P1R1.h,r=1,t=5"));
    ck_assert(exists("cur", "3.M1P1R1.h"));
    ck_assert(exists("cur", "4.M1P1R1.h"));
    close(fd);
    ck_assert_int_eq(hs_queue_recover(&q, 300, now, &moved), 0);
    ck_assert_uint_eq(moved, 1);
    ck_assert(exists("new", "4.M1P1R1.h"));
    /* a claim touches the file: a fresh lease even for an old message */
    age("new", "1.M1P1R1.h", 4000);
    {
        hs_queue_claim c;
        struct stat st;
        ck_assert_int_eq(hs_queue_claim_msg(&q, "1.M1P1R1.h", &c), 0);
        ck_assert_int_eq(fstat(c.fd, &st), 0);
        ck_assert_int_ge((long long)st.st_mtime, now - 1);
        ck_assert_int_le(c.mtime, now - 3999);
        hs_queue_release(&c);
        ck_assert_int_eq(hs_queue_recover(&q, 300, now, &moved), 0);
        ck_assert_uint_eq(moved, 0);
    }
    hs_queue_close(&q);
}
END_TEST

START_TEST(tmp_debris)
{
    hs_queue q;
    char p[512];

    ck_assert_int_eq(hs_queue_open(&q, spool, NULL, NULL, NULL), 0);
    snprintf(p, sizeof(p), "%s/tmp", spool);
    ck_assert_int_eq(mkdir(p, 0770), 0);
    put("tmp", "1.M1P1R1.h", "abandoned");
    put("tmp", "2.M1P1R1.h", "being written");
    age("tmp", "1.M1P1R1.h", 37 * 3600);
    age("tmp", "2.M1P1R1.h", 35 * 3600);
    ck_assert_int_eq(hs_queue_recover(&q, 300, time(NULL), NULL), 0);
    ck_assert(!exists("tmp", "1.M1P1R1.h"));
    ck_assert(exists("tmp", "2.M1P1R1.h"));
    hs_queue_close(&q);
}
END_TEST

START_TEST(dead_elsewhere)
{
    hs_queue q;
    hs_queue_claim c;
    char dead[256];

    snprintf(dead, sizeof(dead), "%s/dl", tmpl);
    ck_assert_int_eq(hs_queue_open(&q, spool, dead, NULL, NULL), 0);
    put("new", "5.M1P1R1.h", "msg");
    ck_assert_int_eq(hs_queue_claim_msg(&q, "5.M1P1R1.h", &c), 0);
    ck_assert_int_eq(hs_queue_dead(&q, &c, "why", NULL, 0), 0);
    {
        char p[512];
        struct stat st;
        snprintf(p, sizeof(p), "%s/5.M1P1R1.h", dead);
        ck_assert_int_eq(stat(p, &st), 0);
        snprintf(p, sizeof(p), "%s/5.M1P1R1.h.reason", dead);
        ck_assert_int_eq(stat(p, &st), 0);
    }
    hs_queue_close(&q);
    ck_assert_int_eq(hs_queue_open(&q, "/nonexistent/x", NULL, NULL, NULL), -1);
    ck_assert_ptr_nonnull(strstr(q.err, "nonexistent"));
}
END_TEST

/* Whatever is at the dead-letter names - a symlink to a file, a dangling
 * symlink, a file - is neither followed nor replaced: the letter goes to
 * the next free name. */
START_TEST(dead_no_follow)
{
    hs_queue q;
    hs_queue_claim c;
    char p[512], target[512], dangling[512], buf[64], dn[HS_QUEUE_NAME_MAX + 1];
    struct stat st;
    FILE *f;

    ck_assert_int_eq(hs_queue_open(&q, spool, NULL, NULL, NULL), 0);
    snprintf(target, sizeof(target), "%s/target", tmpl);
    snprintf(dangling, sizeof(dangling), "%s/dangling", tmpl);
    f = fopen(target, "w");
    ck_assert_ptr_nonnull(f);
    fputs("untouched", f);
    fclose(f);
    snprintf(p, sizeof(p), "%s/dead/7.M1P1R1.h", spool);
    ck_assert_int_eq(symlink(target, p), 0);
    snprintf(p, sizeof(p), "%s/dead/7.M1P1R1.h.reason", spool);
    ck_assert_int_eq(symlink(dangling, p), 0);
    put("dead", "7.M1P1R1.h.2.reason", "an older letter's reason");
    put("new", "7.M1P1R1.h", "msg");
    ck_assert_int_eq(hs_queue_claim_msg(&q, "7.M1P1R1.h", &c), 0);
    ck_assert_int_eq(hs_queue_dead(&q, &c, "why", dn, sizeof(dn)), 0);
    ck_assert_str_eq(dn, "7.M1P1R1.h.3");
    ck_assert(exists("dead", "7.M1P1R1.h.3"));
    ck_assert(exists("dead", "7.M1P1R1.h.3.reason"));
    ck_assert(!exists("dead", "7.M1P1R1.h.2"));
    ck_assert(!exists("cur", "7.M1P1R1.h"));
    /* the planted links are still links, their targets as they were */
    snprintf(p, sizeof(p), "%s/dead/7.M1P1R1.h", spool);
    ck_assert_int_eq(lstat(p, &st), 0);
    ck_assert(S_ISLNK(st.st_mode));
    ck_assert_int_ne(stat(dangling, &st), 0);
    f = fopen(target, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(buf, sizeof(buf), f));
    fclose(f);
    ck_assert_str_eq(buf, "untouched");
    hs_queue_close(&q);
}
END_TEST

START_TEST(stats)
{
    hs_queue q;
    hs_queue_stats st;

    ck_assert_int_eq(hs_queue_open(&q, spool, NULL, NULL, NULL), 0);
    ck_assert_int_eq(hs_queue_get_stats(&q, &st), 0);
    ck_assert_uint_eq(st.in_new + st.in_cur, 0);
    ck_assert_int_eq(st.oldest, -1);
    put("new", "1700000050.M1P1R1.h", "a");
    put("new", "1700000040.M1P1R1.h,r=3,t=1800000000", "b");
    put("cur", "1700000030.M1P1R1.h", "c");
    put("new", ".hidden", "not counted");
    put("dead", "1600000000.M1P1R1.h", "not counted");
    ck_assert_int_eq(hs_queue_get_stats(&q, &st), 0);
    ck_assert_uint_eq(st.in_new, 2);
    ck_assert_uint_eq(st.in_cur, 1);
    ck_assert_int_eq(st.oldest, 1700000030LL);
    hs_queue_close(&q);
}
END_TEST

START_TEST(auth_needs_tls)
{
    hs_smtp_config cfg;
    hs_smtp *s;
    char err[256];

    memset(&cfg, 0, sizeof(cfg));
    cfg.url = "smtp://127.0.0.1:1";
    cfg.user = "u";
    cfg.password = "p";
    cfg.connect_timeout = 1;
    cfg.timeout = 1;
    cfg.tls = HS_SMTP_TLS_OFF;
    ck_assert_ptr_null(hs_smtp_new(&cfg, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "TLS"));
    cfg.tls = HS_SMTP_TLS_OPTIONAL;
    ck_assert_ptr_null(hs_smtp_new(&cfg, err, sizeof(err)));
    cfg.tls = HS_SMTP_TLS_REQUIRED;
    s = hs_smtp_new(&cfg, err, sizeof(err));
    ck_assert_ptr_nonnull(s);
    hs_smtp_free(s);
    cfg.url = "smtps://127.0.0.1:1";
    cfg.tls = HS_SMTP_TLS_OFF;
    s = hs_smtp_new(&cfg, err, sizeof(err));
    ck_assert_ptr_nonnull(s);
    hs_smtp_free(s);
    cfg.url = "smtp://127.0.0.1:1";
    cfg.user = NULL; /* no credentials: no TLS needed */
    s = hs_smtp_new(&cfg, err, sizeof(err));
    ck_assert_ptr_nonnull(s);
    hs_smtp_free(s);
}
END_TEST

START_TEST(header_count)
{
    const char *m = "To: a@example.com\r\n"
                    "Subject: x\r\n"
                    "to : b@example.com\r\n"
                    " continued\r\n"
                    "Tox: not a To\r\n"
                    "CC: c@example.com\r\n"
                    "\r\n"
                    "To: body@example.com\r\n";

    ck_assert_uint_eq(hs_msg_header_count(m, strlen(m), "To"), 2);
    ck_assert_uint_eq(hs_msg_header_count(m, strlen(m), "Cc"), 1);
    ck_assert_uint_eq(hs_msg_header_count(m, strlen(m), "Bcc"), 0);
    ck_assert_uint_eq(hs_msg_header_count(m, strlen(m), "Subject"), 1);
}
END_TEST

START_TEST(headers)
{
    const char *m = "From: Hydra <noreply@hydra.test>\r\n"
                    "to: \"Doe, J\"\r\n\t<j@example.com>  \r\n"
                    "Subject: x\r\n"
                    "\r\n"
                    "To: body@example.com\r\n";
    char v[256];

    ck_assert_int_eq(hs_msg_header(m, strlen(m), "To", v, sizeof(v)), 1);
    ck_assert_str_eq(v, "\"Doe, J\"\t<j@example.com>");
    ck_assert_int_eq(hs_msg_header(m, strlen(m), "Cc", v, sizeof(v)), 0);
    ck_assert_int_eq(hs_msg_header(m, strlen(m), "From", v, 5), -1);
    ck_assert_int_eq(hs_msg_header(m, strlen(m), "From", v, sizeof(v)), 1);
    ck_assert_str_eq(v, "Hydra <noreply@hydra.test>");
}
END_TEST

START_TEST(addresses)
{
    char a[4][HS_ADDR_MAX + 1];
    size_t n;

    ck_assert_int_eq(hs_msg_addresses("a@b.c", a, 4, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(a[0], "a@b.c");
    ck_assert_int_eq(hs_msg_addresses("Name <x.y+z@Example.COM>", a, 4, &n), 0);
    ck_assert_str_eq(a[0], "x.y+z@Example.COM");
    ck_assert_str_eq(hs_addr_domain(a[0]), "Example.COM");
    ck_assert_int_eq(
        hs_msg_addresses("\"Doe, <J>\" <j@e.com> (c, <x@y>), k@f.org", a, 4,
                         &n),
        0);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(a[0], "j@e.com");
    ck_assert_str_eq(a[1], "k@f.org");
    ck_assert_int_eq(hs_msg_addresses("m@n.org (Comment)", a, 4, &n), 0);
    ck_assert_str_eq(a[0], "m@n.org");
    ck_assert_int_eq(hs_msg_addresses("team: p@q.r;", a, 4, &n), 0);
    ck_assert_str_eq(a[0], "p@q.r");
    ck_assert_int_eq(hs_msg_addresses("", a, 4, &n), -1);
    ck_assert_int_eq(hs_msg_addresses("no address", a, 4, &n), -1);
    ck_assert_int_eq(hs_msg_addresses("<>", a, 4, &n), -1);
    ck_assert_int_eq(hs_msg_addresses("Name <a@b", a, 4, &n), -1);
    ck_assert_int_eq(hs_msg_addresses("a@b, c@d, e@f", a, 2, &n), -1);
    ck_assert_int_eq(hs_msg_addresses("<a\r\nRCPT TO:x@y>", a, 4, &n), -1);
}
END_TEST

START_TEST(masking)
{
    char s[128];

    snprintf(s, sizeof(s),
             "550 5.1.1 <bob.smith@example.com> unknown, "
             "also x@y");
    hs_mask_addresses(s);
    ck_assert_str_eq(s, "550 5.1.1 <*@example.com> unknown, also *@y");
    snprintf(s, sizeof(s), "no address @ all");
    hs_mask_addresses(s);
    ck_assert_str_eq(s, "no address @ all");
}
END_TEST

START_TEST(auth_file)
{
    char p[256], u[64], pw[64], err[256];
    FILE *f;

    snprintf(p, sizeof(p), "%s/auth", tmpl);
    f = fopen(p, "w");
    fputs("user:pa:ss\n", f);
    fclose(f);
    ck_assert_int_eq(
        hs_smtp_read_auth(p, u, sizeof(u), pw, sizeof(pw), err, sizeof(err)),
        0);
    ck_assert_str_eq(u, "user");
    ck_assert_str_eq(pw, "pa:ss");
    f = fopen(p, "w");
    fputs("user2\r\nsecret:x\r\n", f);
    fclose(f);
    ck_assert_int_eq(
        hs_smtp_read_auth(p, u, sizeof(u), pw, sizeof(pw), err, sizeof(err)),
        0);
    ck_assert_str_eq(u, "user2");
    ck_assert_str_eq(pw, "secret:x");
    f = fopen(p, "w");
    fputs("nocolon-secret\n", f);
    fclose(f);
    ck_assert_int_eq(
        hs_smtp_read_auth(p, u, sizeof(u), pw, sizeof(pw), err, sizeof(err)),
        -1);
    ck_assert_ptr_null(strstr(err, "secret"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("queue");
    TCase *tn = tcase_create("names");
    TCase *td = tcase_create("spool");
    TCase *tm = tcase_create("message");
    SRunner *sr;
    int failed;

    tcase_add_test(tn, name_plain);
    tcase_add_test(tn, name_retry);
    tcase_add_test(tn, name_odd);
    tcase_add_test(tn, backoff);
    suite_add_tcase(s, tn);
    tcase_add_checked_fixture(td, setup, teardown);
    tcase_add_test(td, claim_cycle);
    tcase_add_test(td, recovery);
    tcase_add_test(td, dead_elsewhere);
    tcase_add_test(td, tmp_debris);
    tcase_add_test(td, dead_no_follow);
    tcase_add_test(td, stats);
    suite_add_tcase(s, td);
    tcase_add_checked_fixture(tm, setup, teardown);
    tcase_add_test(tm, headers);
    tcase_add_test(tm, addresses);
    tcase_add_test(tm, masking);
    tcase_add_test(tm, auth_file);
    tcase_add_test(tm, auth_needs_tls);
    tcase_add_test(tm, header_count);
    suite_add_tcase(s, tm);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
