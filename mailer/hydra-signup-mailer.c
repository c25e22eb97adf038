/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hydra-signup-mailer - the companion sender of mod_hydra_signup: drains
 * the Maildir-style spool the module writes (SPOOL/new/) to an SMTP server
 * through libcurl. See hydra-signup-mailer(1) for the behaviour and
 * hs_queue.h for the spool states.
 *
 * It trusts nothing in the spool: the envelope sender is its own --from,
 * a message goes to exactly the one address of its To header (anything
 * else is a dead letter), and SMTP credentials only ever travel over TLS.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "hs_queue.h"
#include "hs_smtp.h"

#ifndef PACKAGE_VERSION
/* built outside configure: say so rather than invent a number */
#define PACKAGE_VERSION "(version unknown: built without config.h)"
#endif

/* exit codes (documented in --help and the man page) */
#define EXIT_DEAD 1      /* --once: a message went to the dead letters */
#define EXIT_USAGE 2     /* bad option or unusable set-up */
#define EXIT_RUNTIME 3   /* the spool became unreadable */
#define EXIT_TEMPFAIL 75 /* --once: messages still wait for a retry */

#define MAX_MESSAGE ((size_t)32 << 20) /* bigger than any signup email */
#define SCAN_MAX 10000                 /* messages taken per scan */
#define METRICS_EVERY_MS 2000          /* --metrics: rewrite this often */

typedef struct {
    const char *spool;
    const char *smtp;
    const char *from;
    const char *auth_file;
    const char *dead;
    const char *ca_file;
    const char *metrics;
    hs_smtp_tls tls;
    int insecure;
    int once;
    int verbose;
    long long max_age;
    long long retry_base;
    long long retry_max;
    long long lease;
    long connect_timeout;
    long timeout;
    char from_addr[HS_ADDR_MAX + 1]; /* the bare address of --from */
} options;

static options opt = {
    .tls = HS_SMTP_TLS_REQUIRED,
    .max_age = 2 * 86400,
    .retry_base = 5,
    .retry_max = 3600,
    .lease = 300,
    .connect_timeout = 10,
    .timeout = 60,
};
static volatile sig_atomic_t stop_requested;
static int sig_pipe[2] = {-1, -1};

/* -------------------------------------------------------------- logging */

static void vlogmsg(int level, const char *fmt, va_list ap)
{
    static const char *names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    char ts[40], msg[1200];
    struct timeval tv;
    struct tm tm;

    if (level == HS_LOG_DEBUG && !opt.verbose) {
        return;
    }
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    fprintf(stderr, "%s.%03ldZ %s %s\n", ts, (long)(tv.tv_usec / 1000),
            names[level < 0 || level > 3 ? 3 : level], msg);
}

static void logmsg(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void logmsg(int level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlogmsg(level, fmt, ap);
    va_end(ap);
}

static void queue_log(void *baton, int level, const char *msg)
{
    (void)baton;
    logmsg(level, "%s", msg);
}

/* -------------------------------------------------------------- helpers */

static long long mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t rng_state;

static double rnd01(void)
{
    /* xorshift64*: jitter only, nothing secret */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 2685821657736338717ULL) >> 11) /
           9007199254740992.0;
}

/* "90", "90s", "15m", "2h", "2d" -> seconds; -1 when malformed. */
static long long parse_duration(const char *s)
{
    char *end;
    long long v;
    long long mul = 1;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || end == s || v < 0) {
        return -1;
    }
    if (*end) {
        switch (*end) {
            case 's':
                mul = 1;
                break;
            case 'm':
                mul = 60;
                break;
            case 'h':
                mul = 3600;
                break;
            case 'd':
                mul = 86400;
                break;
            default:
                return -1;
        }
        if (end[1]) {
            return -1;
        }
    }
    if (v > LLONG_MAX / mul / 2) {
        return -1;
    }
    return v * mul;
}

static void fmt_duration(long long s, char *out, size_t n)
{
    if (s >= 86400 && s % 3600 == 0) {
        snprintf(out, n, "%lldh", s / 3600);
    }
    else if (s >= 120) {
        snprintf(out, n, "%lldm", s / 60);
    }
    else {
        snprintf(out, n, "%llds", s);
    }
}

/* The URL without any "user:password@" part, for the log. */
static void url_for_log(const char *url, char *out, size_t n)
{
    const char *scheme_end = strstr(url, "://");
    const char *host = scheme_end ? scheme_end + 3 : url;
    const char *at = strchr(host, '@');
    const char *slash = strchr(host, '/');

    if (at && (!slash || at < slash)) {
        snprintf(out, n, "%.*s%s", (int)(host - url), url, at + 1);
    }
    else {
        snprintf(out, n, "%s", url);
    }
}

static void iso_time(long long t, char *out, size_t n)
{
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* -------------------------------------------------------------- signals */

static void on_signal(int sig)
{
    int e = errno;
    char c = (char)sig;

    stop_requested = 1;
    if (sig_pipe[1] >= 0) {
        ssize_t w = write(sig_pipe[1], &c, 1);
        (void)w;
    }
    errno = e;
}

static int setup_signals(void)
{
    struct sigaction sa;

    if (pipe2(sig_pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    return 0;
}

/* -------------------------------------------------------------- options */

/*
 * One table says everything about an option: its name, its argument, what
 * it sets and its --help text. getopt's table and --help are made from it.
 */
typedef struct opt_def opt_def;

/* 0 set, 1 done (--help, --version: exit 0), -1 refused (message printed) */
typedef int opt_setter(const opt_def *d, const char *arg);

struct opt_def {
    const char *name;
    const char *arg; /* shown in --help; NULL: the option takes none */
    opt_setter *set;
    void *field;
    const char *help; /* lines separated by '\n' */
};

static void usage(FILE *f);

static int set_string(const opt_def *d, const char *arg)
{
    *(const char **)d->field = arg;
    return 0;
}

static int set_flag(const opt_def *d, const char *arg)
{
    (void)arg;
    *(int *)d->field = 1;
    return 0;
}

static int set_duration(const opt_def *d, const char *arg)
{
    long long v = parse_duration(arg);

    if (v < 1) {
        fprintf(stderr,
                "--%s: a duration of at least 1s, e.g. 30, 5m, 2h, 2d\n",
                d->name);
        return -1;
    }
    *(long long *)d->field = v;
    return 0;
}

static int set_seconds(const opt_def *d, const char *arg)
{
    long long v = parse_duration(arg);

    if (v < 1 || v > 3600) {
        fprintf(stderr, "--%s: 1 to 3600 seconds\n", d->name);
        return -1;
    }
    *(long *)d->field = (long)v;
    return 0;
}

static int set_starttls(const opt_def *d, const char *arg)
{
    static const struct {
        const char *name;
        hs_smtp_tls mode;
    } modes[] = {{"required", HS_SMTP_TLS_REQUIRED},
                 {"optional", HS_SMTP_TLS_OPTIONAL},
                 {"off", HS_SMTP_TLS_OFF}};
    size_t i;

    for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        if (!strcmp(arg, modes[i].name)) {
            *(hs_smtp_tls *)d->field = modes[i].mode;
            return 0;
        }
    }
    fprintf(stderr, "--%s: required, optional or off\n", d->name);
    return -1;
}

static int show_help(const opt_def *d, const char *arg)
{
    (void)d;
    (void)arg;
    usage(stdout);
    return 1;
}

static int show_version(const opt_def *d, const char *arg)
{
    (void)d;
    (void)arg;
    printf("hydra-signup-mailer %s (%s)\n", PACKAGE_VERSION, curl_version());
    return 1;
}

static const opt_def opt_table[] = {
    {"spool", "DIR", set_string, &opt.spool,
     "the spool (tmp/ new/ cur/ dead/); required"},
    {"smtp", "URL", set_string, &opt.smtp,
     "smtp://host[:port] or smtps://host[:port];\n"
     "required (default: $HYDRA_SMTP_URL if set)"},
    {"from", "ADDR", set_string, &opt.from,
     "envelope sender (MAIL FROM), \"Name <addr>\" or\n"
     "addr; required: never taken from a message"},
    {"auth-file", "FILE", set_string, &opt.auth_file,
     "SMTP AUTH credentials: one line user:password\n"
     "or two lines (user, password); read once; needs\n"
     "TLS (smtps://, or smtp:// with --starttls required)"},
    {"starttls", "MODE", set_starttls, &opt.tls,
     "required (default), optional or off; for\n"
     "smtp:// URLs (smtps:// is TLS from the start)"},
    {"ca-file", "FILE", set_string, &opt.ca_file,
     "CA certificates to verify the server with"},
    {"insecure", NULL, set_flag, &opt.insecure,
     "do not verify the server certificate (tests)"},
    {"dead-letter", "DIR", set_string, &opt.dead,
     "dead-letter folder (default: SPOOL/dead)"},
    {"metrics", "FILE", set_string, &opt.metrics,
     "write Prometheus metrics (text format 0.0.4) to\n"
     "FILE, atomically, every 2 s and at exit (for\n"
     "node_exporter's textfile collector)"},
    {"once", NULL, set_flag, &opt.once,
     "deliver what is due now, then exit (cron)"},
    {"max-age", "DUR", set_duration, &opt.max_age,
     "dead-letter messages queued longer ago than\n"
     "this (default 2d)"},
    {"retry-base", "DUR", set_duration, &opt.retry_base,
     "first retry delay (default 5s); doubles per\n"
     "attempt, +-20% jitter"},
    {"retry-max", "DUR", set_duration, &opt.retry_max,
     "longest retry delay (default 1h)"},
    {"lease", "DUR", set_duration, &opt.lease,
     "a claim in cur/ older than this whose holder\n"
     "is gone goes back to new/ (default 300s)"},
    {"connect-timeout", "S", set_seconds, &opt.connect_timeout,
     "SMTP connect timeout (default 10)"},
    {"timeout", "S", set_seconds, &opt.timeout,
     "whole-transaction timeout (default 60)"},
    {"verbose", NULL, set_flag, &opt.verbose, "debug log lines"},
    {"help", NULL, show_help, NULL, "this text"},
    {"version", NULL, show_version, NULL, "the version"},
};

#define N_OPTS (sizeof(opt_table) / sizeof(opt_table[0]))
#define OPT_FIRST 256 /* getopt values: OPT_FIRST + index in opt_table */
#define HELP_COLUMN 22

static void usage(FILE *f)
{
    size_t i;

    fputs(
        "Usage: hydra-signup-mailer --spool DIR --smtp URL --from ADDR "
        "[options]\n"
        "\n"
        "Delivers the messages mod_hydra_signup queues in DIR/new/ over SMTP,\n"
        "each to the one address in its To header, with --from as the\n"
        "envelope sender. A message leaves the spool only after the server's\n"
        "250; temporary failures are retried with exponential back-off and\n"
        "jitter (the schedule is kept in the file name, so a restart\n"
        "continues it); permanent failures (5xx), messages that do not name\n"
        "exactly one recipient and messages older than --max-age go to the\n"
        "dead-letter folder with a .reason file beside them.\n"
        "\nOptions:\n",
        f);
    for (i = 0; i < N_OPTS; i++) {
        const opt_def *d = &opt_table[i];
        const char *h = d->help;
        int w = fprintf(f, "  --%s%s%s", d->name, d->arg ? " " : "",
                        d->arg ? d->arg : "");
        do {
            const char *nl = strchr(h, '\n');
            int n = nl ? (int)(nl - h) : (int)strlen(h);
            fprintf(f, "%*s%.*s\n", w < HELP_COLUMN ? HELP_COLUMN - w : 1, "",
                    n, h);
            h = nl ? nl + 1 : NULL;
            w = 0;
        } while (h);
    }
    fputs("\n"
          "DUR is seconds, or a number with s, m, h or d.\n"
          "Logs go to stderr, one line per delivery or failure (message name\n"
          "and recipient domain; never the body or the code).\n"
          "SIGTERM, SIGINT, SIGHUP: finish the current message, exit 0.\n"
          "\n"
          "Exit status: 0 all due messages delivered (or a clean stop);\n"
          "1 (--once) a message was moved to the dead letters; 2 usage or\n"
          "set-up error; 3 the spool became unreadable; 75 (--once) no dead\n"
          "letters but messages still wait for a retry (temporary failures,\n"
          "server unreachable).\n",
          f);
}

/* What no single option can check alone. 0 ok, -1 (message printed). */
static int check_options(void)
{
    size_t n;
    char addr[1][HS_ADDR_MAX + 1];
    const char *env = getenv("HYDRA_SMTP_URL");

    if (!opt.smtp && env && *env) {
        opt.smtp = env;
    }
    if (!opt.spool || !opt.smtp) {
        fprintf(stderr, "--spool and --smtp are required (see --help)\n");
        return -1;
    }
    if (!opt.from) {
        fprintf(stderr, "--from ADDR is required: the envelope sender (MAIL "
                        "FROM) comes from this\nsender's configuration, never "
                        "from a message in the spool (see --help)\n");
        return -1;
    }
    if (hs_msg_addresses(opt.from, addr, 1, &n) != 0) {
        fprintf(stderr, "--from: not one usable address: %s\n", opt.from);
        return -1;
    }
    memcpy(opt.from_addr, addr[0], sizeof(opt.from_addr));
    if (opt.auth_file && strncasecmp(opt.smtp, "smtps://", 8) != 0 &&
        opt.tls != HS_SMTP_TLS_REQUIRED) {
        fprintf(stderr,
                "--auth-file needs TLS: with an smtp:// URL use --starttls "
                "required (the default),\nor an smtps:// URL; SMTP "
                "credentials are never sent in clear\n");
        return -1;
    }
    if (opt.retry_max < opt.retry_base) {
        opt.retry_max = opt.retry_base;
    }
    return 0;
}

/* 0 go on, 1 exit 0 (--help, --version), -1 usage error (printed). */
static int parse_options(int argc, char **argv)
{
    struct option lopts[N_OPTS + 1];
    size_t i;
    int c, r;

    memset(lopts, 0, sizeof(lopts));
    for (i = 0; i < N_OPTS; i++) {
        lopts[i].name = opt_table[i].name;
        lopts[i].has_arg = opt_table[i].arg ? required_argument : no_argument;
        lopts[i].val = OPT_FIRST + (int)i;
    }
    while ((c = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
        const opt_def *d;
        if (c < OPT_FIRST || c >= OPT_FIRST + (int)N_OPTS) {
            return -1; /* getopt printed why */
        }
        d = &opt_table[c - OPT_FIRST];
        if ((r = d->set(d, optarg)) != 0) {
            return r;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "unexpected argument: %s\n", argv[optind]);
        return -1;
    }
    return check_options();
}

/* -------------------------------------------------------------- metrics */

typedef struct {
    unsigned long long delivered; /* 250 after the data */
    unsigned long long deferred;  /* temporary failures (retried later) */
    unsigned long long dead;      /* moved to the dead letters */
    unsigned long long lost;      /* claimed by another sender first */
} counters;

typedef struct {
    const char *path; /* --metrics FILE, NULL: none */
    char tmp[4200];   /* a dot file beside it (the collector skips it) */
    long long start;  /* epoch of the start */
    long long last_ms;
    int failing; /* the last write failed (logged once per streak) */
} metrics_file;

/* The running sender: its queue, its server, its figures. */
typedef struct {
    hs_queue *q;
    hs_smtp *smtp;
    counters k;
    metrics_file m;
} sender;

static void metric(FILE *f, const char *name, const char *type,
                   const char *help, unsigned long long v)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type,
            name, v);
}

/* Prometheus text exposition format 0.0.4 (no timestamps: the textfile
 * collector refuses them). */
static void metrics_text(FILE *f, sender *s)
{
    hs_queue_stats st;
    long long now = (long long)time(NULL);

    metric(f, "hydra_signup_mailer_messages_delivered_total", "counter",
           "Messages the SMTP server accepted (250 after the data).",
           s->k.delivered);
    metric(f, "hydra_signup_mailer_messages_deferred_total", "counter",
           "Temporary failures: attempts put back in the queue for a retry.",
           s->k.deferred);
    metric(f, "hydra_signup_mailer_messages_dead_total", "counter",
           "Messages moved to the dead-letter folder.", s->k.dead);
    if (hs_queue_get_stats(s->q, &st) == 0) {
        metric(f, "hydra_signup_mailer_queue_messages", "gauge",
               "Messages in the spool's new/ and cur/ folders.",
               (unsigned long long)(st.in_new + st.in_cur));
        metric(f, "hydra_signup_mailer_oldest_message_age_seconds", "gauge",
               "Age of the oldest message in new/ and cur/ (0 when empty).",
               st.oldest >= 0 && now > st.oldest
                   ? (unsigned long long)(now - st.oldest)
                   : 0ULL);
    }
    else {
        logmsg(HS_LOG_DEBUG, "metrics: %s", s->q->err);
    }
    metric(f, "hydra_signup_mailer_start_time_seconds", "gauge",
           "When this sender started (epoch seconds); the counters count "
           "from then.",
           (unsigned long long)s->m.start);
}

static int metrics_failed(metrics_file *m, const char *what, int e)
{
    if (!m->failing) {
        logmsg(HS_LOG_WARN, "cannot %s metrics file %s: %s", what, m->path,
               strerror(e));
    }
    m->failing = 1;
    errno = e;
    return -1;
}

/* Writes the file atomically: a temporary file in the same folder, fsync,
 * rename over the old one. 0 ok, -1 (logged once per streak). */
static int metrics_write(sender *s)
{
    metrics_file *m = &s->m;
    FILE *f;
    int fd, ok, e;

    (void)unlink(m->tmp); /* left by a crash of this pid's predecessor */
    fd = open(m->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
              0644);
    if (fd < 0) {
        return metrics_failed(m, "create", errno);
    }
    (void)fchmod(fd, 0644); /* node_exporter reads it, whatever the umask */
    if (!(f = fdopen(fd, "w"))) {
        e = errno;
        close(fd);
        unlink(m->tmp);
        return metrics_failed(m, "write", e);
    }
    metrics_text(f, s);
    ok = fflush(f) == 0 && !ferror(f) && fsync(fileno(f)) == 0;
    e = errno;
    if (fclose(f) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    if (ok && rename(m->tmp, m->path) != 0) {
        ok = 0;
        e = errno;
    }
    if (!ok) {
        unlink(m->tmp);
        return metrics_failed(m, "write", e);
    }
    if (m->failing) {
        logmsg(HS_LOG_INFO, "metrics file %s written again", m->path);
    }
    m->failing = 0;
    return 0;
}

/* Rewrites the metrics file when it is due (or at once with force). */
static void metrics_tick(sender *s, int force)
{
    long long now = mono_ms();

    if (!s->m.path || (!force && now - s->m.last_ms < METRICS_EVERY_MS)) {
        return;
    }
    s->m.last_ms = now;
    (void)metrics_write(s);
}

static int metrics_init(sender *s, const char *path)
{
    const char *slash = strrchr(path, '/');
    int dl = slash ? (int)(slash - path) : 1;

    s->m.path = path;
    s->m.start = (long long)time(NULL);
    if (snprintf(s->m.tmp, sizeof(s->m.tmp), "%.*s/.%s.%ld.tmp", dl,
                 slash ? path : ".", slash ? slash + 1 : path,
                 (long)getpid()) >= (int)sizeof(s->m.tmp) ||
        (slash && !slash[1])) {
        fprintf(stderr, "--metrics %s: not a usable file name\n", path);
        return -1;
    }
    s->m.last_ms = mono_ms();
    if (metrics_write(s) != 0) {
        fprintf(stderr, "--metrics %s: cannot write it: %s\n", path,
                strerror(errno));
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------- delivery */

typedef struct {
    sender *s;
    hs_queue_claim *claim;
    long long last_renew_ms;
} tick_ctx;

/* About once a second during a transfer: renew the lease, keep the
 * metrics file fresh even while a slow server holds us. */
static void on_tick(void *arg)
{
    tick_ctx *t = arg;
    long long now = mono_ms();
    long long every = opt.lease * 1000 / 3;

    if (every < 1000) {
        every = 1000;
    }
    if (now - t->last_renew_ms >= every) {
        t->last_renew_ms = now;
        hs_queue_renew(t->claim);
    }
    metrics_tick(t->s, 0);
}

static void dead_letter(sender *s, hs_queue_claim *c, const char *domain,
                        const char *why, const char *detail)
{
    char reason[2048], name[HS_QUEUE_NAME_MAX + 1];
    char ts[32], qts[32];
    long long queued = c->n.queued >= 0 ? c->n.queued : c->mtime;

    iso_time((long long)time(NULL), ts, sizeof(ts));
    iso_time(queued, qts, sizeof(qts));
    snprintf(reason, sizeof(reason),
             "reason: %s\n"
             "message: %s\n"
             "file: %s\n"
             "queued: %s\n"
             "attempts: %u\n"
             "dead-lettered: %s%s%s",
             why, c->n.base, c->name, qts, c->n.attempts + 1, ts,
             detail && *detail ? "\ndetail: " : "", detail ? detail : "");
    if (hs_queue_dead(s->q, c, reason, name, sizeof(name)) != 0) {
        logmsg(HS_LOG_ERROR,
               "cannot move %s to the dead letters: %s (left in cur/)", c->name,
               s->q->err);
        hs_queue_release(c);
        return;
    }
    s->k.dead++;
    logmsg(HS_LOG_ERROR, "dead-lettered %s to %s: %s; see %s/%s.reason",
           c->n.base, domain && *domain ? domain : "-", why, s->q->dead, name);
}

static void retry_later(sender *s, hs_queue_claim *c, const char *domain,
                        const char *detail)
{
    unsigned attempts = c->n.attempts + 1;
    long long delay =
        hs_queue_backoff(attempts, opt.retry_base, opt.retry_max, rnd01());
    long long next = (long long)time(NULL) + delay;
    char d[32];

    fmt_duration(delay, d, sizeof(d));
    s->k.deferred++;
    if (hs_queue_retry(s->q, c, next) != 0) {
        logmsg(HS_LOG_ERROR, "cannot reschedule %s: %s (left in cur/)", c->name,
               s->q->err);
        hs_queue_release(c);
        return;
    }
    logmsg(HS_LOG_WARN,
           "temporary failure for %s to %s (attempt %u): %s; next attempt "
           "in %s",
           c->n.base, domain && *domain ? domain : "-", attempts, detail, d);
}

/* The one recipient of msg into rcpt; else 0 and why. A message names one
 * mailbox: one To header holding one address, no Cc, no Bcc. */
static int one_recipient(const char *msg, size_t len, char *rcpt, char *why,
                         size_t whylen)
{
    char to[2048];
    char addrs[HS_RCPT_MAX][HS_ADDR_MAX + 1];
    size_t nto = hs_msg_header_count(msg, len, "To");
    size_t ncc = hs_msg_header_count(msg, len, "Cc") +
                 hs_msg_header_count(msg, len, "Bcc");
    size_t n = 0;

    if (nto == 0 || hs_msg_header(msg, len, "To", to, sizeof(to)) != 1) {
        snprintf(why, whylen, "no usable To header");
        return 0;
    }
    if (nto > 1 || ncc > 0) {
        snprintf(why, whylen,
                 "more than one recipient: %zu To, %zu Cc/Bcc header(s); "
                 "exactly one To address allowed",
                 nto, ncc);
        return 0;
    }
    if (hs_msg_addresses(to, addrs, HS_RCPT_MAX, &n) != 0) {
        snprintf(why, whylen, "the To header holds no usable address list");
        return 0;
    }
    if (n != 1) {
        snprintf(why, whylen,
                 "more than one recipient: the To header names %zu addresses; "
                 "exactly one allowed",
                 n);
        return 0;
    }
    memcpy(rcpt, addrs[0], HS_ADDR_MAX + 1);
    return 1;
}

/* The recipient's domain, lower case, for the log (never the local part). */
static void log_domain(const char *rcpt, char *out, size_t n)
{
    size_t i;

    snprintf(out, n, "%s", hs_addr_domain(rcpt));
    for (i = 0; out[i]; i++) {
        if (out[i] >= 'A' && out[i] <= 'Z') {
            out[i] = (char)(out[i] - 'A' + 'a');
        }
    }
}

/* Claims name into *c; 0 when this sender holds it. */
static int claim(sender *s, const char *name, hs_queue_claim *c)
{
    int r = hs_queue_claim_msg(s->q, name, c);

    if (r == 1) {
        s->k.lost++;
        logmsg(HS_LOG_DEBUG, "%s: taken by another sender", name);
    }
    else if (r < 0) {
        logmsg(HS_LOG_ERROR, "cannot claim %s: %s", name, s->q->err);
    }
    return r;
}

/* Dead-letters c when it was queued longer ago than --max-age: 1 if so. */
static int expired(sender *s, hs_queue_claim *c)
{
    long long now = (long long)time(NULL);
    long long queued = c->n.queued >= 0 ? c->n.queued : c->mtime;
    char why[128], age[32], max[32];

    if (now - queued <= opt.max_age) {
        return 0;
    }
    fmt_duration(now - queued, age, sizeof(age));
    fmt_duration(opt.max_age, max, sizeof(max));
    snprintf(why, sizeof(why), "expired: queued %s ago (--max-age %s)", age,
             max);
    dead_letter(s, c, NULL, why, NULL);
    return 1;
}

/* Reads the held message and its recipient; NULL when it could not be
 * sent (then it is already back in the queue or in the dead letters). */
static char *load(sender *s, hs_queue_claim *c, size_t *len, char *rcpt)
{
    char *msg = NULL;
    char why[160];
    int r = hs_queue_read(s->q, c, MAX_MESSAGE, &msg, len);

    if (r == 1) {
        dead_letter(s, c, NULL, "message too large", NULL);
        return NULL;
    }
    if (r < 0) {
        logmsg(HS_LOG_ERROR, "%s", s->q->err);
        retry_later(s, c, NULL, "cannot read the spool file");
        return NULL;
    }
    if (!one_recipient(msg, *len, rcpt, why, sizeof(why))) {
        free(msg);
        dead_letter(s, c, NULL, why, NULL);
        return NULL;
    }
    return msg;
}

/* 1 when the server could not be reached (stop this pass), else 0. */
static int deliver_one(sender *s, const char *name)
{
    hs_queue_claim c;
    char rcpt[HS_ADDR_MAX + 1], domain[HS_ADDR_MAX + 1], why[160];
    hs_smtp_result res;
    tick_ctx tick;
    size_t len = 0;
    long long t0;
    char *msg;

    if (claim(s, name, &c) != 0 || expired(s, &c) ||
        !(msg = load(s, &c, &len, rcpt))) {
        return 0;
    }
    log_domain(rcpt, domain, sizeof(domain));
    tick.s = s;
    tick.claim = &c;
    tick.last_renew_ms = t0 = mono_ms();
    hs_smtp_send(s->smtp, opt.from_addr, rcpt, msg, len, on_tick, &tick, &res);
    free(msg);

    switch (res.status) {
        case HS_SMTP_SENT:
            if (hs_queue_done(s->q, &c) != 0) {
                logmsg(HS_LOG_ERROR,
                       "delivered %s but cannot remove it: %s (it may be "
                       "sent again)",
                       c.n.base, s->q->err);
            }
            s->k.delivered++;
            logmsg(HS_LOG_INFO, "delivered %s to %s (attempt %u, %lld ms)",
                   c.n.base, domain, c.n.attempts + 1, mono_ms() - t0);
            return 0;
        case HS_SMTP_PERMFAIL:
            snprintf(why, sizeof(why), "permanent SMTP failure: %ld at %s",
                     res.code, res.phase);
            dead_letter(s, &c, domain, why, res.reply);
            return 0;
        default:
            retry_later(s, &c, domain, res.detail);
            return res.unreachable;
    }
}

/* ----------------------------------------------------------------- loop */

static int open_inotify(const char *spool)
{
    char path[4200];
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);

    if (fd < 0) {
        logmsg(HS_LOG_WARN, "inotify unavailable (%s): polling every second",
               strerror(errno));
        return -1;
    }
    snprintf(path, sizeof(path), "%s/new", spool);
    if (inotify_add_watch(fd, path, IN_MOVED_TO | IN_CREATE) < 0) {
        logmsg(HS_LOG_WARN, "cannot watch %s (%s): polling every second", path,
               strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static void drain_fd(int fd)
{
    char buf[4096];
    int i;

    /* bounded: the descriptors are non-blocking */
    for (i = 0; i < 64 && fd >= 0; i++) {
        if (read(fd, buf, sizeof(buf)) <= 0) {
            break;
        }
    }
}

/* Returns claims abandoned by a crashed sender, every recover_every s. */
static void maybe_recover(sender *s, long long *last_ms, int force)
{
    long long every = opt.lease / 2;

    if (every < 1) {
        every = 1;
    }
    if (every > 60) {
        every = 60;
    }
    if (!force && mono_ms() - *last_ms < every * 1000) {
        return;
    }
    if (hs_queue_recover(s->q, opt.lease, (long long)time(NULL), NULL) != 0) {
        logmsg(HS_LOG_ERROR, "%s", s->q->err);
    }
    *last_ms = mono_ms();
}

/*
 * One scan of new/: delivers what is due. *n receives how many were due
 * (0 also when the scan failed: *list_failed is then set). Returns 1 when
 * the server could not be reached.
 */
static int one_pass(sender *s, long long start, size_t *n, int *list_failed)
{
    hs_queue_entry *due = NULL;
    long long next_due = 0;
    size_t i;
    int unreachable = 0;

    *n = 0;
    *list_failed =
        hs_queue_list_due(s->q, (long long)time(NULL), opt.once ? start : -1,
                          SCAN_MAX, &due, n, &next_due) != 0;
    if (*list_failed) {
        logmsg(HS_LOG_ERROR, "%s", s->q->err);
    }
    for (i = 0; i < *n && !stop_requested && !unreachable; i++) {
        unreachable = deliver_one(s, due[i].name);
        metrics_tick(s, 0);
    }
    free(due);
    return unreachable;
}

/* Sleeps until a signal, a file in new/ (ino >= 0) or a second has
 * passed. */
static void wait_for_work(int ino)
{
    struct pollfd pfd[2];

    pfd[0].fd = sig_pipe[0];
    pfd[0].events = POLLIN;
    pfd[1].fd = ino;
    pfd[1].events = POLLIN;
    if (poll(pfd, ino >= 0 ? 2 : 1, 1000) > 0) {
        drain_fd(ino);
    }
}

static int run(sender *s)
{
    long long start = (long long)time(NULL);
    long long last_recover = 0;
    int ino = open_inotify(opt.spool);
    int list_errors = 0, unreachable = 0, failed, rc = 0;
    size_t n;

    maybe_recover(s, &last_recover, 1);
    while (!stop_requested) {
        maybe_recover(s, &last_recover, 0);
        unreachable = one_pass(s, start, &n, &failed);
        metrics_tick(s, 0);
        list_errors = failed ? list_errors + 1 : 0;
        if (failed && (opt.once || list_errors >= 600)) {
            rc = EXIT_RUNTIME;
            break;
        }
        if (opt.once && (n == 0 || unreachable)) {
            break;
        }
        if (n > 0 && !unreachable) {
            drain_fd(ino);
            continue; /* rescan at once: more may have arrived */
        }
        if (unreachable) {
            /* the server cannot be reached: try again in a second,
             * whatever arrives meanwhile. Our own deferral renames within
             * new/ would wake us at once: with a large queue that was a
             * full scan of new/ per rename, a core kept busy. */
            wait_for_work(-1);
            drain_fd(ino);
            continue;
        }
        wait_for_work(ino);
    }
    if (ino >= 0) {
        close(ino);
    }
    logmsg(HS_LOG_INFO,
           "%s: %llu delivered, %llu temporary failures, %llu dead-lettered",
           stop_requested ? "stopping" : "done", s->k.delivered, s->k.deferred,
           s->k.dead);
    if (rc || !opt.once) {
        return rc;
    }
    if (s->k.dead) {
        return EXIT_DEAD;
    }
    return s->k.deferred || unreachable ? EXIT_TEMPFAIL : 0;
}

/* ---------------------------------------------------------------- setup */

/* The SMTP handle from the options (credentials read and wiped here). */
static hs_smtp *smtp_from_options(void)
{
    hs_smtp_config sc;
    hs_smtp *smtp;
    char err[512], user[1024], pass[1024];
    struct stat st;

    memset(&sc, 0, sizeof(sc));
    sc.url = opt.smtp;
    sc.tls = opt.tls;
    sc.ca_file = opt.ca_file;
    sc.insecure = opt.insecure;
    sc.connect_timeout = opt.connect_timeout;
    sc.timeout = opt.timeout;
    if (opt.auth_file) {
        if (hs_smtp_read_auth(opt.auth_file, user, sizeof(user), pass,
                              sizeof(pass), err, sizeof(err)) != 0) {
            fprintf(stderr, "%s\n", err);
            return NULL;
        }
        if (stat(opt.auth_file, &st) == 0 && (st.st_mode & S_IROTH)) {
            logmsg(HS_LOG_WARN, "%s is readable by everyone (chmod o-r)",
                   opt.auth_file);
        }
        sc.user = user;
        sc.password = pass;
    }
    smtp = hs_smtp_new(&sc, err, sizeof(err));
    explicit_bzero(pass, sizeof(pass));
    if (!smtp) {
        fprintf(stderr, "%s\n", err);
    }
    return smtp;
}

static void log_start(void)
{
    char shown[1024];

    url_for_log(opt.smtp, shown, sizeof(shown));
    logmsg(HS_LOG_INFO,
           "hydra-signup-mailer %s: spool %s, server %s, starttls %s, from "
           "%s%s%s%s%s",
           PACKAGE_VERSION, opt.spool, shown,
           opt.tls == HS_SMTP_TLS_REQUIRED   ? "required"
           : opt.tls == HS_SMTP_TLS_OPTIONAL ? "optional"
                                             : "off",
           hs_addr_domain(opt.from_addr),
           opt.auth_file ? ", auth from file" : "",
           opt.metrics ? ", metrics to " : "", opt.metrics ? opt.metrics : "",
           opt.once ? ", once" : "");
}

int main(int argc, char **argv)
{
    hs_queue q;
    sender s;
    int rc;

    if ((rc = parse_options(argc, argv)) != 0) {
        return rc > 0 ? 0 : EXIT_USAGE;
    }
    if (getrandom(&rng_state, sizeof(rng_state), 0) !=
            (ssize_t)sizeof(rng_state) ||
        rng_state == 0) {
        rng_state = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^ 1;
    }
    if (setup_signals() != 0) {
        fprintf(stderr, "cannot set up signal handling: %s\n", strerror(errno));
        return EXIT_USAGE;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "cannot initialise libcurl\n");
        return EXIT_USAGE;
    }
    memset(&s, 0, sizeof(s));
    s.q = &q;
    rc = EXIT_USAGE;
    if (!(s.smtp = smtp_from_options())) {
        goto out;
    }
    if (hs_queue_open(&q, opt.spool, opt.dead, queue_log, NULL) != 0) {
        fprintf(stderr, "%s\n", q.err);
        goto out;
    }
    if (opt.metrics && metrics_init(&s, opt.metrics) != 0) {
        hs_queue_close(&q);
        goto out;
    }
    log_start();
    rc = run(&s);
    metrics_tick(&s, 1);
    hs_queue_close(&q);
out:
    hs_smtp_free(s.smtp);
    curl_global_cleanup();
    return rc;
}
