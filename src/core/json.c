/* SPDX-License-Identifier: Apache-2.0 */
/*
 * json.c - request body parsing under a depth limit and the FastAPI /
 * pydantic v2 shaped error bodies (CONTRACT section 2).
 *
 * httpd-free: APR and json-c only.
 */
#include <limits.h>
#include <string.h>

#include <apr_strings.h>
#include <apr_tables.h>

#include "hs_json.h"
#include "hs_utf8.h"

typedef struct {
    const char *field; /* NULL: no second loc element */
    int has_offset;
    size_t offset;
    const char *type;
    const char *msg;
} hs_error_item;

struct hs_errors {
    apr_pool_t *p;
    apr_array_header_t *items; /* of hs_error_item */
};

/* compact output, '/' left alone, non-ASCII written as UTF-8 (like
 * Starlette's json.dumps(ensure_ascii=False, separators=(",", ":"))) */
#define HS_JSON_OUT_FLAGS                                                      \
    (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

hs_errors *hs_errors_make(apr_pool_t *p)
{
    hs_errors *e = apr_pcalloc(p, sizeof(*e));

    e->p = p;
    e->items = apr_array_make(p, 4, sizeof(hs_error_item));
    return e;
}

static hs_error_item *errors_push(hs_errors *e, const char *type,
                                  const char *msg)
{
    hs_error_item *it = apr_array_push(e->items);

    memset(it, 0, sizeof(*it));
    it->type = apr_pstrdup(e->p, type ? type : "");
    it->msg = apr_pstrdup(e->p, msg ? msg : "");
    return it;
}

void hs_errors_add(hs_errors *e, const char *field, const char *type,
                   const char *msg)
{
    hs_error_item *it = errors_push(e, type, msg);

    it->field = field ? apr_pstrdup(e->p, field) : NULL;
}

void hs_errors_add_offset(hs_errors *e, size_t offset, const char *type,
                          const char *msg)
{
    hs_error_item *it = errors_push(e, type, msg);

    it->has_offset = 1;
    it->offset = offset;
}

int hs_errors_count(const hs_errors *e)
{
    return e ? e->items->nelts : 0;
}

/* Copies the serialisation of obj into p and releases obj. */
static const char *render_and_put(apr_pool_t *p, json_object *obj)
{
    const char *s =
        apr_pstrdup(p, json_object_to_json_string_ext(obj, HS_JSON_OUT_FLAGS));

    json_object_put(obj);
    return s;
}

const char *hs_errors_render(const hs_errors *e, apr_pool_t *p)
{
    json_object *root = json_object_new_object();
    json_object *detail = json_object_new_array();
    int i;

    json_object_object_add(root, "detail", detail);
    for (i = 0; e && i < e->items->nelts; i++) {
        const hs_error_item *it = &APR_ARRAY_IDX(e->items, i, hs_error_item);
        json_object *err = json_object_new_object();
        json_object *loc = json_object_new_array();

        json_object_array_add(loc, json_object_new_string("body"));
        if (it->has_offset) {
            json_object_array_add(loc,
                                  json_object_new_uint64((uint64_t)it->offset));
        }
        else if (it->field) {
            json_object_array_add(loc, json_object_new_string(it->field));
        }
        /* key order as pydantic: loc, msg, type */
        json_object_object_add(err, "loc", loc);
        json_object_object_add(err, "msg", json_object_new_string(it->msg));
        json_object_object_add(err, "type", json_object_new_string(it->type));
        json_object_array_add(detail, err);
    }
    return render_and_put(p, root);
}

const char *hs_json_detail(apr_pool_t *p, const char *text)
{
    json_object *root = json_object_new_object();

    json_object_object_add(root, "detail",
                           json_object_new_string(text ? text : ""));
    return render_and_put(p, root);
}

const char *hs_json_to_string(apr_pool_t *p, json_object *obj)
{
    return apr_pstrdup(p,
                       json_object_to_json_string_ext(obj, HS_JSON_OUT_FLAGS));
}

static apr_status_t json_put_cleanup(void *data)
{
    json_object_put(data);
    return APR_SUCCESS;
}

json_object *hs_json_pool_own(apr_pool_t *p, json_object *obj)
{
    if (obj) {
        apr_pool_cleanup_register(p, obj, json_put_cleanup,
                                  apr_pool_cleanup_null);
    }
    return obj;
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlongs,
 * no surrogates, nothing past U+10FFFF), or 0 when it is not one. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    uint32_t cp;
    return hs_utf8_decode(s, n, &cp);
}

static int is_json_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/*
 * Finds the first byte that Python's json decoder refuses but json-c
 * would let through (or treat as the end of the input): a malformed UTF-8
 * sequence, a NUL byte anywhere, a raw control character inside a string,
 * a '.' that is not followed by a digit ("1." is valid for json-c only),
 * a \u escape of a lone UTF-16 surrogate (json-c would store U+FFFD in its
 * place: the text would change silently).
 * Returns len when there is none. The parse is then run on the bytes
 * before it, so an earlier syntax error still gets reported at its own
 * offset.
 */
/* The value of four hex digits at s (n bytes available), or -1. */
static long hex4(const unsigned char *s, size_t n)
{
    long v = 0;
    size_t i;
    if (n < 4) {
        return -1;
    }
    for (i = 0; i < 4; i++) {
        unsigned char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) {
            return -1;
        }
        v = v * 16 + d;
    }
    return v;
}

static size_t first_refused_byte(const unsigned char *s, size_t len)
{
    size_t i = 0;
    int in_string = 0;

    while (i < len) {
        unsigned char c = s[i];

        if (c >= 0x80) {
            size_t n = utf8_seq_len(s + i, len - i);

            if (n == 0) {
                return i;
            }
            i += n;
            continue;
        }
        if (c == 0) {
            return i;
        }
        if (in_string) {
            if (c < 0x20) {
                return i;
            }
            if (c == '\\' && i + 1 < len && s[i + 1] == 'u') {
                long u = hex4(s + i + 2, len - i - 2);
                if (u >= 0xD800 && u <= 0xDBFF) {
                    /* a high surrogate must be followed by a low one */
                    long lo = i + 7 < len && s[i + 6] == '\\' && s[i + 7] == 'u'
                                  ? hex4(s + i + 8, len - i - 8)
                                  : -1;
                    if (lo < 0xDC00 || lo > 0xDFFF) {
                        return i;
                    }
                    i += 12;
                    continue;
                }
                if (u >= 0xDC00 && u <= 0xDFFF) {
                    return i; /* a lone low surrogate */
                }
            }
            if (c == '\\' && i + 1 < len && s[i + 1] >= 0x20 &&
                s[i + 1] < 0x7F) {
                i += 2;
                continue;
            }
            if (c == '"') {
                in_string = 0;
            }
        }
        else if (c == '"') {
            in_string = 1;
        }
        else if (c == '.' &&
                 (i + 1 >= len || s[i + 1] < '0' || s[i + 1] > '9')) {
            return i;
        }
        i++;
    }
    return len;
}

static void add_json_invalid(hs_errors *e, size_t offset)
{
    hs_errors_add_offset(e, offset, "json_invalid", "JSON decode error");
}

json_object *hs_json_parse_object(const char *buf, size_t len, hs_errors *e)
{
    const unsigned char *s = (const unsigned char *)buf;
    struct json_tokener *tok;
    json_object *obj;
    enum json_tokener_error jerr;
    size_t limit, end;
    int done = 0;

    if (buf == NULL || len == 0) {
        /* FastAPI: no body at all is a missing body */
        hs_errors_add(e, NULL, "missing", "Field required");
        return NULL;
    }
    /* Python's json.loads(bytes) accepts (and skips) a UTF-8 BOM; offsets
     * are then counted after it, as Python does. */
    if (len >= 3 && s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF) {
        s += 3;
        len -= 3;
    }
    limit = first_refused_byte(s, len);
    if (limit > (size_t)INT_MAX) {
        add_json_invalid(e, (size_t)INT_MAX);
        return NULL;
    }

    tok = json_tokener_new_ex(HS_JSON_MAX_DEPTH);
    if (tok == NULL) {
        add_json_invalid(e, 0);
        return NULL;
    }
    json_tokener_set_flags(tok,
                           JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);

    obj = json_tokener_parse_ex(tok, (const char *)s, (int)limit);
    jerr = json_tokener_get_error(tok);
    if (jerr == json_tokener_success) {
        end = json_tokener_get_parse_end(tok);
        done = 1;
    }
    else if (jerr == json_tokener_continue) {
        if (limit < len) {
            end = limit; /* the refused byte is where the text breaks */
        }
        else {
            /* end of input: a top-level number or literal completes here */
            obj = json_tokener_parse_ex(tok, "", 1);
            jerr = json_tokener_get_error(tok);
            end = len;
            done = (jerr == json_tokener_success);
        }
    }
    else {
        end = json_tokener_get_parse_end(tok);
    }
    json_tokener_free(tok);
    if (!done && (jerr == json_tokener_error_parse_null ||
                  jerr == json_tokener_error_parse_boolean || end == len)) {
        /* a broken literal ("tru", "nul"): Python reports where it starts
         * (not inside an unterminated string: "abc) */
        size_t start = end;
        while (start > 0 && ((s[start - 1] >= 'a' && s[start - 1] <= 'z') ||
                             (s[start - 1] >= 'A' && s[start - 1] <= 'Z'))) {
            start--;
        }
        if (start == 0 || s[start - 1] != '"') {
            end = start;
        }
    }

    if (!done) {
        json_object_put(obj);
        add_json_invalid(e, end);
        return NULL;
    }
    /* only whitespace may follow the value ("Extra data") */
    while (end < len && is_json_space(s[end])) {
        end++;
    }
    if (end < len) {
        json_object_put(obj);
        add_json_invalid(e, end);
        return NULL;
    }
    if (obj == NULL) {
        /* the body is JSON null: FastAPI treats it as no body */
        hs_errors_add(e, NULL, "missing", "Field required");
        return NULL;
    }
    if (!json_object_is_type(obj, json_type_object)) {
        json_object_put(obj);
        hs_errors_add(e, NULL, "model_attributes_type",
                      "Input should be a valid dictionary or object to "
                      "extract fields from");
        return NULL;
    }
    return obj;
}
