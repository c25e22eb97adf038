/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hs_json.h - JSON helpers shared by every endpoint: parsing a request body
 * with json-c under a depth limit, and building the FastAPI / pydantic v2
 * shaped error bodies of CONTRACT section 2.
 *
 * httpd-free: APR and json-c only, so it is unit-tested and fuzzed alone.
 */
#ifndef HS_JSON_H
#define HS_JSON_H

#include <stddef.h>

#include <apr_pools.h>
#include <json-c/json.h>

/* Nesting limit for request bodies: our requests are flat objects. */
#define HS_JSON_MAX_DEPTH 16

/* A list of validation errors, built up field by field (every failing field
 * is reported at once) and rendered as {"detail": [...]}. Lives in a pool. */
typedef struct hs_errors hs_errors;

hs_errors *hs_errors_make(apr_pool_t *p);

/* Adds {"loc": ["body", field], "msg": msg, "type": type}; field NULL gives
 * loc ["body"]. The strings are copied into the list's pool. */
void hs_errors_add(hs_errors *e, const char *field, const char *type,
                   const char *msg);

/* Adds {"loc": ["body", offset], ...}, as for json_invalid. */
void hs_errors_add_offset(hs_errors *e, size_t offset, const char *type,
                          const char *msg);

int hs_errors_count(const hs_errors *e);

/* {"detail": [ ... ]} as a string in p. */
const char *hs_errors_render(const hs_errors *e, apr_pool_t *p);

/* {"detail": "<text>"} as a string in p (text is JSON-escaped). */
const char *hs_json_detail(apr_pool_t *p, const char *text);

/*
 * Parses a request body as one JSON object.
 * - empty body:                 NULL, error loc ["body"] missing "Field
 * required"
 * - not JSON (or bad UTF-8):    NULL, error json_invalid at the byte offset
 * - JSON but not an object:     NULL, error model_attributes_type
 * Otherwise returns the object; the caller owns it and releases it with
 * json_object_put() exactly once (hs_json_pool_own does that for you).
 * Duplicate members: the last one wins, as in Python.
 */
json_object *hs_json_parse_object(const char *buf, size_t len, hs_errors *e);

/* Registers a pool cleanup that calls json_object_put(obj); returns obj. */
json_object *hs_json_pool_own(apr_pool_t *p, json_object *obj);

/* Serialises obj (compact, no escaping of '/') into a string in p. */
const char *hs_json_to_string(apr_pool_t *p, json_object *obj);

#endif /* HS_JSON_H */
