/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hydra-signup-mailer - the companion sender of mod_hydra_signup: drains
 * the Maildir-style spool the module writes (SPOOL/new/) to an SMTP server
 * through libcurl. See hydra-signup-mailer(1) for the behaviour and
 * hs_queue.h for the spool states.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
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
#include <sys/inotify.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "config.h" /* PACKAGE_VERSION */

#include "hs_queue.h"
#include "hs_smtp.h"

#define MAILER_VERSION PACKAGE_VERSION /* configure.ac's AC_INIT */

/* exit codes (documented in --help and the man page) */
#define EXIT_DEAD 1      /* --once: a message went to the dead letters */
#define EXIT_USAGE 2     /* bad option or unusable set-up */
#define EXIT_RUNTIME 3   /* the spool became unreadable */
#define EXIT_TEMPFAIL 75 /* --once: messages still wait for a retry */

#define MAX_MESSAGE ((size_t)32 << 20) /* bigger than any signup email */
#define SCAN_MAX 10000                 /* messages taken per scan */

typedef struct {
    const char *spool;
    const char *smtp;
    const char *from;
    const char *auth_file;
    const char *dead;
    const char *ca_file;
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
} options;

static options opt;
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

/* ---------------------------------------------------------------- usage */

static void usage(FILE *f)
{
    fprintf(
        f,
        "Usage: hydra-signup-mailer --spool DIR --smtp URL [options]\n"
        "\n"
        "Delivers the messages mod_hydra_signup queues in DIR/new/ over SMTP.\n"
        "A message leaves the spool only after the server's 250; temporary\n"
        "failures are retried with exponential back-off and jitter (the\n"
        "schedule is kept in the file name, so a restart continues it);\n"
        "permanent failures (5xx) and messages older than --max-age go to\n"
        "the dead-letter folder with a .reason file beside them.\n"
        "\n"
        "Options:\n"
        "  --spool DIR         the spool (tmp/ new/ cur/ dead/); required\n"
        "  --smtp URL          smtp://host[:port] or smtps://host[:port];\n"
        "                      required (default: $HYDRA_SMTP_URL if set)\n"
        "  --from ADDR         envelope sender (MAIL FROM); default: the\n"
        "                      address in each message's From header\n"
        "  --auth-file FILE    SMTP AUTH credentials: one line user:password\n"
        "                      or two lines (user, password); read once\n"
        "  --starttls MODE     required (default), optional or off; for\n"
        "                      smtp:// URLs (smtps:// is TLS from the start)\n"
        "  --ca-file FILE      CA certificates to verify the server with\n"
        "  --insecure          do not verify the server certificate (tests)\n"
        "  --dead-letter DIR   dead-letter folder (default: SPOOL/dead)\n"
        "  --once              deliver what is due now, then exit (cron)\n"
        "  --max-age DUR       dead-letter messages queued longer ago than\n"
        "                      this (default 2d)\n"
        "  --retry-base DUR    first retry delay (default 5s); doubles per\n"
        "                      attempt, +-20%% jitter\n"
        "  --retry-max DUR     longest retry delay (default 1h)\n"
        "  --lease DUR         a claim in cur/ older than this whose holder\n"
        "                      is gone goes back to new/ (default 300s)\n"
        "  --connect-timeout S SMTP connect timeout (default 10)\n"
        "  --timeout S         whole-transaction timeout (default 60)\n"
        "  --verbose           debug log lines\n"
        "  --help              this text\n"
        "  --version           the version\n"
        "\n"
        "DUR is seconds, or a number with s, m, h or d.\n"
        "Logs go to stderr, one line per delivery or failure (message name\n"
        "and recipient domain; never the body or the code).\n"
        "SIGTERM, SIGINT, SIGHUP: finish the current message, exit 0.\n"
        "\n"
        "Exit status: 0 all due messages delivered (or a clean stop);\n"
        "1 (--once) a message was moved to the dead letters; 2 usage or\n"
        "set-up error; 3 the spool became unreadable; 75 (--once) no dead\n"
        "letters but messages still wait for a retry (temporary failures,\n"
        "server unreachable).\n");
}

enum {
    OPT_SPOOL = 256,
    OPT_SMTP,
    OPT_FROM,
    OPT_AUTH,
    OPT_STARTTLS,
    OPT_DEAD,
    OPT_ONCE,
    OPT_MAXAGE,
    OPT_RBASE,
    OPT_RMAX,
    OPT_LEASE,
    OPT_CA,
    OPT_INSECURE,
    OPT_VERBOSE,
    OPT_CTIMEOUT,
    OPT_TIMEOUT,
    OPT_HELP,
    OPT_VERSION
};

static int parse_options(int argc, char **argv)
{
    static const struct option lopts[] = {
        {"spool", required_argument, NULL, OPT_SPOOL},
        {"smtp", required_argument, NULL, OPT_SMTP},
        {"from", required_argument, NULL, OPT_FROM},
        {"auth-file", required_argument, NULL, OPT_AUTH},
        {"starttls", required_argument, NULL, OPT_STARTTLS},
        {"dead-letter", required_argument, NULL, OPT_DEAD},
        {"once", no_argument, NULL, OPT_ONCE},
        {"max-age", required_argument, NULL, OPT_MAXAGE},
        {"retry-base", required_argument, NULL, OPT_RBASE},
        {"retry-max", required_argument, NULL, OPT_RMAX},
        {"lease", required_argument, NULL, OPT_LEASE},
        {"ca-file", required_argument, NULL, OPT_CA},
        {"insecure", no_argument, NULL, OPT_INSECURE},
        {"verbose", no_argument, NULL, OPT_VERBOSE},
        {"connect-timeout", required_argument, NULL, OPT_CTIMEOUT},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0}};
    int c;
    long long v;

    opt.tls = HS_SMTP_TLS_REQUIRED;
    opt.max_age = 2 * 86400;
    opt.retry_base = 5;
    opt.retry_max = 3600;
    opt.lease = 300;
    opt.connect_timeout = 10;
    opt.timeout = 60;

    while ((c = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
        switch (c) {
            case OPT_SPOOL:
                opt.spool = optarg;
                break;
            case OPT_SMTP:
                opt.smtp = optarg;
                break;
            case OPT_FROM:
                opt.from = optarg;
                break;
            case OPT_AUTH:
                opt.auth_file = optarg;
                break;
            case OPT_STARTTLS:
                if (!strcmp(optarg, "required")) {
                    opt.tls = HS_SMTP_TLS_REQUIRED;
                }
                else if (!strcmp(optarg, "optional")) {
                    opt.tls = HS_SMTP_TLS_OPTIONAL;
                }
                else if (!strcmp(optarg, "off")) {
                    opt.tls = HS_SMTP_TLS_OFF;
                }
                else {
                    fprintf(stderr, "--starttls: required, optional or "
                                    "off\n");
                    return -1;
                }
                break;
            case OPT_DEAD:
                opt.dead = optarg;
                break;
            case OPT_ONCE:
                opt.once = 1;
                break;
            case OPT_MAXAGE:
            case OPT_RBASE:
            case OPT_RMAX:
            case OPT_LEASE:
                v = parse_duration(optarg);
                if (v < 1) {
                    fprintf(stderr,
                            "%s: a duration of at least 1s, e.g. "
                            "30, 5m, 2h, 2d\n",
                            argv[optind - 1]);
                    return -1;
                }
                if (c == OPT_MAXAGE) {
                    opt.max_age = v;
                }
                else if (c == OPT_RBASE) {
                    opt.retry_base = v;
                }
                else if (c == OPT_RMAX) {
                    opt.retry_max = v;
                }
                else {
                    opt.lease = v;
                }
                break;
            case OPT_CTIMEOUT:
            case OPT_TIMEOUT:
                v = parse_duration(optarg);
                if (v < 1 || v > 3600) {
                    fprintf(stderr, "%s: 1 to 3600 seconds\n",
                            argv[optind - 1]);
                    return -1;
                }
                if (c == OPT_CTIMEOUT) {
                    opt.connect_timeout = (long)v;
                }
                else {
                    opt.timeout = (long)v;
                }
                break;
            case OPT_CA:
                opt.ca_file = optarg;
                break;
            case OPT_INSECURE:
                opt.insecure = 1;
                break;
            case OPT_VERBOSE:
                opt.verbose = 1;
                break;
            case OPT_HELP:
                usage(stdout);
                exit(0);
            case OPT_VERSION:
                printf("hydra-signup-mailer %s (%s)\n", MAILER_VERSION,
                       curl_version());
                exit(0);
            default:
                return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "unexpected argument: %s\n", argv[optind]);
        return -1;
    }
    if (!opt.smtp) {
        const char *env = getenv("HYDRA_SMTP_URL");
        if (env && *env) {
            opt.smtp = env;
        }
    }
    if (!opt.spool || !opt.smtp) {
        fprintf(stderr, "--spool and --smtp are required (see --help)\n");
        return -1;
    }
    if (opt.retry_max < opt.retry_base) {
        opt.retry_max = opt.retry_base;
    }
    return 0;
}

/* ------------------------------------------------------------- delivery */

typedef struct {
    unsigned delivered;
    unsigned tempfail;
    unsigned dead;
    unsigned lost; /* claimed by another sender first */
} counters;

typedef struct {
    hs_queue_claim *claim;
    long long last_renew_ms;
} tick_ctx;

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
}

static void dead_letter(hs_queue *q, hs_queue_claim *c, const char *domain,
                        const char *why, const char *detail, counters *k)
{
    char reason[2048];
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
    if (hs_queue_dead(q, c, reason) != 0) {
        logmsg(HS_LOG_ERROR,
               "cannot move %s to the dead letters: %s (left in cur/)", c->name,
               q->err);
        hs_queue_release(c);
        return;
    }
    k->dead++;
    logmsg(HS_LOG_ERROR, "dead-lettered %s to %s: %s; see %s/%s.reason",
           c->n.base, domain && *domain ? domain : "-", why, q->dead,
           c->n.base);
}

static void retry_later(hs_queue *q, hs_queue_claim *c, const char *domain,
                        const char *detail, counters *k)
{
    unsigned attempts = c->n.attempts + 1;
    long long delay =
        hs_queue_backoff(attempts, opt.retry_base, opt.retry_max, rnd01());
    long long next = (long long)time(NULL) + delay;
    char d[32];

    fmt_duration(delay, d, sizeof(d));
    k->tempfail++;
    if (hs_queue_retry(q, c, next) != 0) {
        logmsg(HS_LOG_ERROR, "cannot reschedule %s: %s (left in cur/)", c->name,
               q->err);
        hs_queue_release(c);
        return;
    }
    logmsg(HS_LOG_WARN,
           "temporary failure for %s to %s (attempt %u): %s; next attempt "
           "in %s",
           c->n.base, domain && *domain ? domain : "-", attempts, detail, d);
}

/* 1 when the server could not be reached (stop this pass), else 0. */
/* "domain,domain" of the recipients, lower-cased, for the log (no local
 * parts: they are personal data). */
static void recipient_domains(char (*rcpt)[HS_ADDR_MAX + 1], size_t n,
                              char *out, size_t outlen)
{
    size_t i;

    out[0] = '\0';
    for (i = 0; i < n; i++) {
        size_t dl = strlen(out);
        snprintf(out + dl, outlen - dl, "%s%s", i ? "," : "",
                 hs_addr_domain(rcpt[i]));
    }
    for (i = 0; out[i]; i++) {
        if (out[i] >= 'A' && out[i] <= 'Z') {
            out[i] = (char)(out[i] - 'A' + 'a');
        }
    }
}

/* After an SMTP transaction: remove the delivered message, dead-letter a
 * permanent failure, keep anything else for a retry. Returns
 * res->unreachable for a retry (the server could not be reached), else 0. */
static int settle(hs_queue *q, hs_queue_claim *c, const hs_smtp_result *res,
                  const char *domains, long long t0, counters *k)
{
    switch (res->status) {
        case HS_SMTP_SENT:
            if (hs_queue_done(q, c) != 0) {
                logmsg(HS_LOG_ERROR,
                       "delivered %s but cannot remove it: %s (it may be "
                       "sent again)",
                       c->n.base, q->err);
            }
            k->delivered++;
            logmsg(HS_LOG_INFO, "delivered %s to %s (attempt %u, %lld ms)",
                   c->n.base, domains, c->n.attempts + 1, mono_ms() - t0);
            return 0;
        case HS_SMTP_PERMFAIL: {
            char why[160];
            snprintf(why, sizeof(why), "permanent SMTP failure: %ld at %s",
                     res->code, res->phase);
            dead_letter(q, c, domains, why, res->reply, k);
            return 0;
        }
        default:
            retry_later(q, c, domains, res->detail, k);
            return res->unreachable;
    }
}

static int deliver_one(hs_queue *q, hs_smtp *smtp, const char *name,
                       counters *k)
{
    hs_queue_claim c;
    char *msg = NULL;
    size_t len = 0;
    char to[2048], fromh[2048];
    char rcpt[HS_RCPT_MAX][HS_ADDR_MAX + 1];
    char from[HS_ADDR_MAX + 1];
    const char *rp[HS_RCPT_MAX];
    size_t nrcpt = 0, nfrom = 0, i;
    char fa[1][HS_ADDR_MAX + 1];
    hs_smtp_result res;
    tick_ctx tick;
    long long now, queued, t0;
    int r;
    char domains[200];

    r = hs_queue_claim_msg(q, name, &c);
    if (r == 1) {
        k->lost++;
        logmsg(HS_LOG_DEBUG, "%s: taken by another sender", name);
        return 0;
    }
    if (r < 0) {
        logmsg(HS_LOG_ERROR, "cannot claim %s: %s", name, q->err);
        return 0;
    }

    now = (long long)time(NULL);
    queued = c.n.queued >= 0 ? c.n.queued : c.mtime;
    if (now - queued > opt.max_age) {
        char why[128], age[32], max[32];
        fmt_duration(now - queued, age, sizeof(age));
        fmt_duration(opt.max_age, max, sizeof(max));
        snprintf(why, sizeof(why), "expired: queued %s ago (--max-age %s)", age,
                 max);
        dead_letter(q, &c, NULL, why, NULL, k);
        return 0;
    }

    r = hs_queue_read(q, &c, MAX_MESSAGE, &msg, &len);
    if (r == 1) {
        dead_letter(q, &c, NULL, "message too large", NULL, k);
        return 0;
    }
    if (r < 0) {
        logmsg(HS_LOG_ERROR, "%s", q->err);
        retry_later(q, &c, NULL, "cannot read the spool file", k);
        return 0;
    }

    r = hs_msg_header(msg, len, "To", to, sizeof(to));
    if (r != 1 || hs_msg_addresses(to, rcpt, HS_RCPT_MAX, &nrcpt) != 0) {
        free(msg);
        dead_letter(q, &c, NULL,
                    r == 1 ? "the To header holds no usable address"
                           : "no usable To header",
                    NULL, k);
        return 0;
    }
    for (i = 0; i < nrcpt; i++) {
        rp[i] = rcpt[i];
    }
    recipient_domains(rcpt, nrcpt, domains, sizeof(domains));
    if (opt.from) {
        snprintf(from, sizeof(from), "%s", opt.from);
    }
    else if (hs_msg_header(msg, len, "From", fromh, sizeof(fromh)) == 1 &&
             hs_msg_addresses(fromh, fa, 1, &nfrom) == 0) {
        snprintf(from, sizeof(from), "%s", fa[0]);
    }
    else {
        free(msg);
        dead_letter(q, &c, domains,
                    "no envelope sender: no usable From header and no "
                    "--from",
                    NULL, k);
        return 0;
    }

    tick.claim = &c;
    tick.last_renew_ms = mono_ms();
    t0 = mono_ms();
    hs_smtp_send(smtp, from, rp, nrcpt, msg, len, on_tick, &tick, &res);
    free(msg);

    return settle(q, &c, &res, domains, t0, k);
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

static int run(hs_queue *q, hs_smtp *smtp)
{
    counters k = {0, 0, 0, 0};
    long long start = (long long)time(NULL);
    long long recover_every = opt.lease / 2;
    long long last_recover;
    int ino = open_inotify(opt.spool);
    int list_errors = 0;
    int unreachable = 0;
    int rc = 0;

    if (recover_every < 1) {
        recover_every = 1;
    }
    if (recover_every > 60) {
        recover_every = 60;
    }
    if (hs_queue_recover(q, opt.lease, start, NULL) != 0) {
        logmsg(HS_LOG_ERROR, "%s", q->err);
    }
    last_recover = mono_ms();

    while (!stop_requested) {
        hs_queue_entry *due = NULL;
        size_t n = 0, i;
        long long next_due = 0;
        long long now = (long long)time(NULL);
        struct pollfd pfd[2];
        int timeout_ms = 1000;

        if (mono_ms() - last_recover >= recover_every * 1000) {
            if (hs_queue_recover(q, opt.lease, now, NULL) != 0) {
                logmsg(HS_LOG_ERROR, "%s", q->err);
            }
            last_recover = mono_ms();
        }
        if (hs_queue_list_due(q, now, opt.once ? start : -1, SCAN_MAX, &due, &n,
                              &next_due) != 0) {
            logmsg(HS_LOG_ERROR, "%s", q->err);
            if (opt.once || ++list_errors >= 600) {
                rc = EXIT_RUNTIME;
                break;
            }
        }
        else {
            list_errors = 0;
        }
        unreachable = 0;
        for (i = 0; i < n && !stop_requested; i++) {
            if (deliver_one(q, smtp, due[i].name, &k)) {
                unreachable = 1;
                break;
            }
        }
        free(due);
        if (opt.once && (n == 0 || unreachable)) {
            break;
        }
        if (n > 0 && !unreachable) {
            drain_fd(ino);
            continue; /* rescan at once: more may have arrived */
        }
        if (next_due > 0 && next_due - now < 1) {
            timeout_ms = 1000;
        }
        pfd[0].fd = sig_pipe[0];
        pfd[0].events = POLLIN;
        pfd[1].fd = ino;
        pfd[1].events = POLLIN;
        if (poll(pfd, ino >= 0 ? 2 : 1, timeout_ms) > 0) {
            drain_fd(ino);
        }
    }
    if (ino >= 0) {
        close(ino);
    }
    logmsg(HS_LOG_INFO,
           "%s: %u delivered, %u temporary failures, %u dead-lettered",
           stop_requested ? "stopping" : "done", k.delivered, k.tempfail,
           k.dead);
    if (rc) {
        return rc;
    }
    if (!opt.once) {
        return 0;
    }
    if (k.dead) {
        return EXIT_DEAD;
    }
    if (k.tempfail || unreachable) {
        return EXIT_TEMPFAIL;
    }
    return 0;
}

int main(int argc, char **argv)
{
    hs_queue q;
    hs_smtp *smtp;
    hs_smtp_config sc;
    char err[512];
    char user[1024], pass[1024];
    char shown[1024];
    size_t nfrom;
    int rc;

    if (parse_options(argc, argv) != 0) {
        return EXIT_USAGE;
    }
    if (getrandom(&rng_state, sizeof(rng_state), 0) !=
            (ssize_t)sizeof(rng_state) ||
        rng_state == 0) {
        rng_state = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^ 1;
    }
    if (opt.from) {
        char from[1][HS_ADDR_MAX + 1];
        if (hs_msg_addresses(opt.from, from, 1, &nfrom) != 0) {
            fprintf(stderr, "--from: not a usable address: %s\n", opt.from);
            return EXIT_USAGE;
        }
        opt.from = strdup(from[0]);
    }

    memset(&sc, 0, sizeof(sc));
    sc.url = opt.smtp;
    sc.tls = opt.tls;
    sc.ca_file = opt.ca_file;
    sc.insecure = opt.insecure;
    sc.connect_timeout = opt.connect_timeout;
    sc.timeout = opt.timeout;
    if (opt.auth_file) {
        struct stat st;
        if (hs_smtp_read_auth(opt.auth_file, user, sizeof(user), pass,
                              sizeof(pass), err, sizeof(err)) != 0) {
            fprintf(stderr, "%s\n", err);
            return EXIT_USAGE;
        }
        if (stat(opt.auth_file, &st) == 0 && (st.st_mode & S_IROTH)) {
            logmsg(HS_LOG_WARN, "%s is readable by everyone (chmod o-r)",
                   opt.auth_file);
        }
        sc.user = user;
        sc.password = pass;
    }

    if (setup_signals() != 0) {
        fprintf(stderr, "cannot set up signal handling: %s\n", strerror(errno));
        return EXIT_USAGE;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "cannot initialise libcurl\n");
        return EXIT_USAGE;
    }
    smtp = hs_smtp_new(&sc, err, sizeof(err));
    explicit_bzero(pass, sizeof(pass));
    if (!smtp) {
        fprintf(stderr, "%s\n", err);
        curl_global_cleanup();
        return EXIT_USAGE;
    }
    if (hs_queue_open(&q, opt.spool, opt.dead, queue_log, NULL) != 0) {
        fprintf(stderr, "%s\n", q.err);
        hs_smtp_free(smtp);
        curl_global_cleanup();
        return EXIT_USAGE;
    }

    url_for_log(opt.smtp, shown, sizeof(shown));
    logmsg(HS_LOG_INFO,
           "hydra-signup-mailer %s: spool %s, server %s, starttls %s%s%s",
           MAILER_VERSION, opt.spool, shown,
           opt.tls == HS_SMTP_TLS_REQUIRED   ? "required"
           : opt.tls == HS_SMTP_TLS_OPTIONAL ? "optional"
                                             : "off",
           opt.auth_file ? ", auth from file" : "", opt.once ? ", once" : "");

    rc = run(&q, smtp);

    hs_queue_close(&q);
    hs_smtp_free(smtp);
    curl_global_cleanup();
    free((char *)opt.from);
    return rc;
}
