/* SPDX-License-Identifier: Apache-2.0 */
/*
 * smtp.c - one message over SMTP through libcurl (see hs_smtp.h).
 *
 * libcurl reports *that* a transfer failed, not always *where*: "MAIL
 * failed" and "RCPT failed" are both CURLE_SEND_ERROR and a refusal after
 * the data is CURLE_WEIRD_SERVER_REPLY. A debug callback follows the
 * dialogue instead: the verb of each command we send (never its arguments:
 * AUTH lines carry the credentials) and the server's reply lines. A 5xx is
 * permanent only as an answer to MAIL, RCPT, DATA or the data itself; a 5xx
 * to the greeting, EHLO, STARTTLS or AUTH is the server's or our set-up's
 * problem, not the message's, so the message waits.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "hs_addrspec.h"
#include "hs_smtp.h"

struct hs_smtp {
    CURL *h;
    char errbuf[CURL_ERROR_SIZE];
    char *url;
    int tls; /* 1: the URL is smtps:// or STARTTLS is required */
};

/* per transfer */
typedef struct {
    const char *data;
    size_t len;
    size_t off;
    char phase[16];
    long code;
    char reply[300];
    hs_smtp_tick_fn *tick;
    void *arg;
    time_t last_tick;
    int quitting; /* QUIT sent: keep what the transaction ended with */
} xfer;

static void set_str(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src);
}

hs_smtp *hs_smtp_new(const hs_smtp_config *cfg, char *err, size_t errlen)
{
    hs_smtp *s;
    CURL *h;
    long use_ssl;
    int smtps = strncasecmp(cfg->url, "smtps://", 8) == 0;

    if (!smtps && strncasecmp(cfg->url, "smtp://", 7) != 0) {
        snprintf(err, errlen,
                 "the SMTP URL must start with smtp:// or "
                 "smtps://");
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->url = strdup(cfg->url);
    h = curl_easy_init();
    if (!h || !s->url) {
        snprintf(err, errlen, "cannot initialise libcurl");
        curl_easy_cleanup(h);
        free(s->url);
        free(s);
        return NULL;
    }
    s->h = h;
    switch (cfg->tls) {
        case HS_SMTP_TLS_OPTIONAL:
            use_ssl = CURLUSESSL_TRY;
            break;
        case HS_SMTP_TLS_OFF:
            use_ssl = CURLUSESSL_NONE;
            break;
        default:
            use_ssl = CURLUSESSL_ALL;
            break;
    }
    s->tls = smtps || use_ssl == CURLUSESSL_ALL;
    if (cfg->user && !s->tls) {
        /* credentials never travel in clear: the caller must ask for TLS */
        snprintf(err, errlen,
                 "SMTP AUTH needs TLS: use an smtps:// URL or STARTTLS "
                 "required");
        curl_easy_cleanup(h);
        free(s->url);
        free(s);
        return NULL;
    }
    curl_easy_setopt(h, CURLOPT_URL, s->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(h, CURLOPT_USE_SSL, use_ssl);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, cfg->connect_timeout);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, cfg->timeout);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, s->errbuf);
    curl_easy_setopt(h, CURLOPT_MAXAGE_CONN, 30L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    if (cfg->user) {
        curl_easy_setopt(h, CURLOPT_USERNAME, cfg->user);
        curl_easy_setopt(h, CURLOPT_PASSWORD,
                         cfg->password ? cfg->password : "");
    }
    if (cfg->ca_file) {
        curl_easy_setopt(h, CURLOPT_CAINFO, cfg->ca_file);
    }
    if (cfg->insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    return s;
}

void hs_smtp_free(hs_smtp *s)
{
    if (!s) {
        return;
    }
    curl_easy_cleanup(s->h); /* sends QUIT on a kept connection */
    free(s->url);
    free(s);
}

static size_t read_cb(char *buf, size_t size, size_t nitems, void *arg)
{
    xfer *x = arg;
    size_t room = size * nitems;
    size_t n = x->len - x->off;

    if (n > room) {
        n = room;
    }
    memcpy(buf, x->data + x->off, n);
    x->off += n;
    return n;
}

static int progress_cb(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut,
                       curl_off_t un)
{
    xfer *x = arg;
    time_t now = time(NULL);

    (void)dt;
    (void)dn;
    (void)ut;
    (void)un;
    if (x->tick && now != x->last_tick) {
        x->last_tick = now;
        x->tick(x->arg);
    }
    return 0;
}

/* Follows the dialogue (see the top of the file). Never copies what we send
 * beyond the command verb. */
static int debug_cb(CURL *h, curl_infotype type, char *data, size_t size,
                    void *arg)
{
    xfer *x = arg;
    size_t i;

    (void)h;
    if (x->quitting) {
        return 0;
    }
    if (type == CURLINFO_HEADER_OUT) {
        char verb[16];
        for (i = 0; i < size && i < sizeof(verb) - 1 &&
                    isalpha((unsigned char)data[i]);
             i++) {
            verb[i] = (char)toupper((unsigned char)data[i]);
        }
        verb[i] = '\0';
        if (!strcmp(verb, "EHLO") || !strcmp(verb, "HELO")) {
            set_str(x->phase, sizeof(x->phase), "EHLO");
        }
        else if (!strcmp(verb, "STARTTLS")) {
            set_str(x->phase, sizeof(x->phase), "STARTTLS");
        }
        else if (!strcmp(verb, "AUTH")) {
            set_str(x->phase, sizeof(x->phase), "AUTH");
        }
        else if (!strcmp(verb, "QUIT")) {
            x->quitting = 1;
        }
        else if (!strcmp(verb, "MAIL") || !strcmp(verb, "RCPT") ||
                 !strcmp(verb, "DATA") || !strcmp(verb, "RSET")) {
            set_str(x->phase, sizeof(x->phase), verb);
        }
        /* anything else (AUTH continuation lines) keeps the phase */
    }
    else if (type == CURLINFO_DATA_OUT) {
        if (strcmp(x->phase, "BODY") != 0) {
            set_str(x->phase, sizeof(x->phase), "BODY");
        }
    }
    else if (type == CURLINFO_HEADER_IN) {
        size_t n = size;
        while (n > 0 && (data[n - 1] == '\n' || data[n - 1] == '\r')) {
            n--;
        }
        if (n >= 3 && isdigit((unsigned char)data[0]) &&
            isdigit((unsigned char)data[1]) &&
            isdigit((unsigned char)data[2])) {
            x->code =
                (data[0] - '0') * 100 + (data[1] - '0') * 10 + (data[2] - '0');
        }
        if (n >= sizeof(x->reply)) {
            n = sizeof(x->reply) - 1;
        }
        for (i = 0; i < n; i++) {
            unsigned char c = (unsigned char)data[i];
            x->reply[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
        }
        x->reply[n] = '\0';
        if (!strcmp(x->phase, "CONNECT")) {
            set_str(x->phase, sizeof(x->phase), "GREETING");
        }
    }
    return 0;
}

static int message_phase(const char *phase)
{
    return !strcmp(phase, "MAIL") || !strcmp(phase, "RCPT") ||
           !strcmp(phase, "DATA") || !strcmp(phase, "BODY");
}

void hs_smtp_send(hs_smtp *s, const char *from, const char *rcpt,
                  const char *data, size_t len, hs_smtp_tick_fn *tick,
                  void *arg, hs_smtp_result *res)
{
    CURL *h = s->h;
    struct curl_slist *list;
    char buf[HS_ADDR_MAX + 3];
    char fromb[HS_ADDR_MAX + 3];
    xfer x;
    CURLcode rc;
    long code = 0;

    memset(res, 0, sizeof(*res));
    memset(&x, 0, sizeof(x));
    x.data = data;
    x.len = len;
    x.tick = tick;
    x.arg = arg;
    x.last_tick = time(NULL);
    set_str(x.phase, sizeof(x.phase), "CONNECT");

    /* exactly one recipient: the sender never fans a message out */
    snprintf(buf, sizeof(buf), "<%s>", rcpt);
    list = curl_slist_append(NULL, buf);
    if (!list) {
        res->status = HS_SMTP_TEMPFAIL;
        set_str(res->detail, sizeof(res->detail), "out of memory");
        return;
    }
    snprintf(fromb, sizeof(fromb), "<%s>", from);
    s->errbuf[0] = '\0';
    curl_easy_setopt(h, CURLOPT_MAIL_FROM, fromb);
    curl_easy_setopt(h, CURLOPT_MAIL_RCPT, list);
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
    curl_easy_setopt(h, CURLOPT_READDATA, &x);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, progress_cb);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &x);
    curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, debug_cb);
    curl_easy_setopt(h, CURLOPT_DEBUGDATA, &x);
    curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);

    rc = curl_easy_perform(h);

    curl_easy_setopt(h, CURLOPT_MAIL_RCPT, NULL);
    curl_easy_setopt(h, CURLOPT_READDATA, NULL);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, NULL);
    curl_easy_setopt(h, CURLOPT_DEBUGDATA, NULL);
    curl_slist_free_all(list);

    if (x.code) {
        code = x.code;
    }
    else {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    }
    res->code = code;
    set_str(res->phase, sizeof(res->phase), x.phase);
    set_str(res->reply, sizeof(res->reply), x.reply);

    if (rc == CURLE_OK) {
        res->status = HS_SMTP_SENT;
        snprintf(res->detail, sizeof(res->detail), "%s", x.reply);
        hs_mask_addresses(res->detail);
        return;
    }
    res->unreachable =
        rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
        rc == CURLE_COULDNT_RESOLVE_PROXY ||
        (rc == CURLE_OPERATION_TIMEDOUT && !strcmp(x.phase, "CONNECT"));
    /* 530 "authentication required" is our set-up, not the message */
    if (code >= 500 && code <= 599 && code != 530 && message_phase(x.phase)) {
        res->status = HS_SMTP_PERMFAIL;
    }
    else {
        res->status = HS_SMTP_TEMPFAIL;
    }
    snprintf(res->detail, sizeof(res->detail), "%.256s%s%.299s%s%s",
             s->errbuf[0] ? s->errbuf : curl_easy_strerror(rc),
             x.reply[0] ? " (server: " : "", x.reply, x.reply[0] ? ")" : "",
             (rc == CURLE_USE_SSL_FAILED)
                 ? "; the server does not offer STARTTLS (see --starttls)"
                 : "");
    hs_mask_addresses(res->detail);
}

/* ------------------------------------------------------------- headers */

/* The offset of the ':' when line (n bytes, no line end) starts the field
 * called name (any case, white space allowed before the colon), else 0. */
static size_t field_colon(const char *line, size_t n, const char *name)
{
    size_t nl = strlen(name);
    size_t c;

    if (n <= nl || strncasecmp(line, name, nl) != 0) {
        return 0;
    }
    for (c = nl; c < n && (line[c] == ' ' || line[c] == '\t'); c++) {
    }
    return c < n && line[c] == ':' ? c : 0;
}

/* The header line starting at p: *end at its LF (or len), *le after its
 * last byte without the CR. */
static void line_at(const char *msg, size_t len, size_t p, size_t *end,
                    size_t *le)
{
    size_t e = p;

    while (e < len && msg[e] != '\n') {
        e++;
    }
    *end = e;
    *le = (e > p && msg[e - 1] == '\r') ? e - 1 : e;
}

/* Copies msg[v..vend) and its continuation lines into out, trimmed. */
static int unfold_value(const char *msg, size_t len, size_t v, size_t vend,
                        size_t e, char *out, size_t outlen)
{
    size_t o = 0, s = 0, i;

    for (;;) {
        for (i = v; i < vend; i++) {
            if (o + 1 >= outlen) {
                return -1;
            }
            out[o++] = msg[i];
        }
        /* continuation lines start with SP or HTAB */
        if (e + 1 < len && (msg[e + 1] == ' ' || msg[e + 1] == '\t')) {
            v = e + 1;
            line_at(msg, len, v, &e, &vend);
            continue;
        }
        break;
    }
    while (o > 0 &&
           (out[o - 1] == ' ' || out[o - 1] == '\t' || out[o - 1] == '\r')) {
        o--;
    }
    out[o] = '\0';
    while (out[s] == ' ' || out[s] == '\t') {
        s++;
    }
    memmove(out, out + s, o - s + 1);
    return 1;
}

int hs_msg_header(const char *msg, size_t len, const char *name, char *out,
                  size_t outlen)
{
    size_t p = 0, e, le, c;

    if (outlen == 0) {
        return -1;
    }
    while (p < len) {
        line_at(msg, len, p, &e, &le);
        if (le == p) {
            return 0; /* end of the header section */
        }
        c = field_colon(msg + p, le - p, name);
        if (c) {
            return unfold_value(msg, len, p + c + 1, le, e, out, outlen);
        }
        p = e + 1;
    }
    return 0;
}

size_t hs_msg_header_count(const char *msg, size_t len, const char *name)
{
    size_t p = 0, n = 0, e, le;

    while (p < len) {
        line_at(msg, len, p, &e, &le);
        if (le == p) {
            break;
        }
        if (field_colon(msg + p, le - p, name)) {
            n++;
        }
        p = e + 1;
    }
    return n;
}

static int addr_ok(const char *a)
{
    return hs_addrspec_check(a, strlen(a)) == HS_ADDRSPEC_OK;
}

/* Where a scan of an address list stands: inside a quoted string, or
 * inside (nested) comments. */
typedef struct {
    int inq;
    int depth;
} addr_scan;

/* Steps over s[*i] when it is inside a quoted string or a comment (and
 * over the character a backslash escapes there), or when it opens one:
 * 1. 0 when s[*i] is outside both, for the caller to look at. */
static int quoted_or_comment(addr_scan *st, const char *s, size_t n, size_t *i)
{
    char c = s[*i];

    if (st->inq || st->depth > 0) {
        if (c == '\\' && *i + 1 < n) {
            (*i)++;
        }
        else if (st->inq && c == '"') {
            st->inq = 0;
        }
        else if (!st->inq && c == '(') {
            st->depth++;
        }
        else if (!st->inq && c == ')') {
            st->depth--;
        }
        return 1;
    }
    if (c == '"') {
        st->inq = 1;
        return 1;
    }
    if (c == '(') {
        st->depth = 1;
        return 1;
    }
    return 0;
}

/* One element of the list, without the separating commas: "" (skipped),
 * "group:" prefixes, "Name <addr>", "addr (comment)". */
static int one_address(const char *s, size_t n, char *out)
{
    char bare[HS_ADDR_MAX + 1];
    size_t o = 0, i;
    addr_scan st = {0, 0};
    const char *lt = NULL, *gt = NULL;

    for (i = 0; i < n; i++) {
        char c = s[i];
        if (quoted_or_comment(&st, s, n, &i)) {
            continue;
        }
        if (c == '<' && !lt) {
            lt = s + i;
        }
        else if (c == '>' && lt && !gt) {
            gt = s + i;
        }
        else if (!lt && c == ':') {
            o = 0; /* "group: a@b": drop the display name */
        }
        else if (!lt && c != ' ' && c != '\t' && c != ';') {
            if (o >= HS_ADDR_MAX) {
                return -1;
            }
            bare[o++] = c;
        }
    }
    if (st.inq || st.depth > 0 || (lt && !gt)) {
        return -1;
    }
    if (lt) {
        size_t an = (size_t)(gt - lt - 1);
        if (an == 0 || an > HS_ADDR_MAX) {
            return -1;
        }
        memcpy(out, lt + 1, an);
        out[an] = '\0';
    }
    else {
        if (o == 0) {
            return 1; /* empty element (or an empty group) */
        }
        memcpy(out, bare, o);
        out[o] = '\0';
    }
    return addr_ok(out) ? 0 : -1;
}

static int flush_address(const char *s, size_t n,
                         char (*addrs)[HS_ADDR_MAX + 1], size_t max,
                         size_t *count)
{
    char tmp[HS_ADDR_MAX + 1];
    int r = one_address(s, n, tmp);

    if (r < 0) {
        return -1;
    }
    if (r == 0) {
        if (*count >= max) {
            return -1;
        }
        memcpy(addrs[*count], tmp, strlen(tmp) + 1);
        (*count)++;
    }
    return 0;
}

int hs_msg_addresses(const char *value, char (*addrs)[HS_ADDR_MAX + 1],
                     size_t max, size_t *n)
{
    size_t i, start = 0, len = strlen(value);
    addr_scan st = {0, 0};
    int angle = 0;

    *n = 0;
    for (i = 0; i < len; i++) {
        char c = value[i];
        if (quoted_or_comment(&st, value, len, &i)) {
            continue;
        }
        if (c == '<') {
            angle = 1;
        }
        else if (c == '>') {
            angle = 0;
        }
        else if (c == ',' && !angle) {
            if (flush_address(value + start, i - start, addrs, max, n) != 0) {
                return -1;
            }
            start = i + 1;
        }
    }
    if (flush_address(value + start, len - start, addrs, max, n) != 0) {
        return -1;
    }
    return *n > 0 ? 0 : -1;
}

const char *hs_addr_domain(const char *addr)
{
    const char *at = strrchr(addr, '@');
    return at ? at + 1 : "";
}

static int local_char(unsigned char c)
{
    return isalnum(c) || c >= 0x80 || strchr("!#$%&'*+-/=?^_`{|}~.", c);
}

void hs_mask_addresses(char *s)
{
    char *at;
    char *p = s;

    while ((at = strchr(p, '@')) != NULL) {
        char *b = at;
        while (b > s && local_char((unsigned char)b[-1])) {
            b--;
        }
        if (b < at && !(b + 1 == at && *b == '*')) {
            size_t tail = strlen(at);
            *b = '*';
            memmove(b + 1, at, tail + 1);
            at = b + 1;
        }
        p = at + 1;
    }
}

/* --------------------------------------------------------- credentials */

int hs_smtp_read_auth(const char *path, char *user, size_t ulen, char *pass,
                      size_t plen, char *err, size_t errlen)
{
    char buf[4097];
    size_t got = 0;
    int fd;
    char *nl, *sep;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open auth file %s: %s", path,
                 strerror(errno));
        return -1;
    }
    while (got < sizeof(buf) - 1) {
        ssize_t r = read(fd, buf + got, sizeof(buf) - 1 - got);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            snprintf(err, errlen, "cannot read auth file %s: %s", path,
                     strerror(errno));
            close(fd);
            return -1;
        }
        if (r == 0) {
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    while (got > 0 && (buf[got - 1] == '\n' || buf[got - 1] == '\r')) {
        buf[--got] = '\0';
    }
    nl = strchr(buf, '\n');
    if (nl) {
        /* two lines: user, password */
        char *u_end = nl;
        if (u_end > buf && u_end[-1] == '\r') {
            u_end--;
        }
        *u_end = '\0';
        sep = strchr(nl + 1, '\n') ? NULL : nl + 1;
    }
    else if ((sep = strchr(buf, ':')) != NULL) {
        *sep++ = '\0';
    }
    if (!sep) {
        snprintf(err, errlen,
                 "auth file %s: expected \"user:password\" or two lines", path);
        explicit_bzero(buf, sizeof(buf));
        return -1;
    }
    if (buf[0] == '\0' || strlen(buf) >= ulen || strlen(sep) >= plen) {
        snprintf(err, errlen,
                 "auth file %s: empty or overlong user name or "
                 "password",
                 path);
        explicit_bzero(buf, sizeof(buf));
        return -1;
    }
    snprintf(user, ulen, "%s", buf);
    snprintf(pass, plen, "%s", sep);
    explicit_bzero(buf, sizeof(buf));
    return 0;
}
