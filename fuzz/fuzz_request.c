/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_request.c - libFuzzer harness: a request body through
 * hs_json_parse_object, then both request models, then the error body.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <apr_pools.h>

#include "fuzz_apr.h"

#include "hs_json.h"
#include "hs_validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    hs_errors *e;
    json_object *obj;

    if (apr_pool_create(&p, NULL) != APR_SUCCESS) {
        return 0;
    }
    e = hs_errors_make(p);
    obj = hs_json_parse_object((const char *)data, size, e);
    if (obj) {
        hs_signup_req s;
        hs_verify_req v;
        hs_errors *e2 = hs_errors_make(p);

        hs_json_pool_own(p, obj);
        if (hs_signup_req_read(p, obj, &s, e) == 0) {
            /* a valid request has every field set */
            if (!s.company_name || !s.email || !s.plan || !s.tenant_slug) {
                __builtin_trap();
            }
        }
        if (hs_verify_req_read(p, obj, &v, e2) == 0) {
            if (!v.code || !v.email || !v.tenant_slug || strlen(v.code) != 6) {
                __builtin_trap();
            }
        }
        (void)hs_errors_render(e2, p);
        (void)hs_json_to_string(p, obj);
    }
    else if (hs_errors_count(e) != 1) {
        __builtin_trap();
    }
    (void)hs_errors_render(e, p);
    apr_pool_destroy(p);
    return 0;
}
