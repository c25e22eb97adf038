/*
 * openapi.c - GET {location}/openapi.json: the OpenAPI 3.1 document of the
 * endpoints, with the server URL and paths under this <Location>.
 */
#include <string.h>

#include "httpd.h"
#include "http_core.h"
#include "http_protocol.h"

#include <apr_strings.h>

#include "hs_config.h"
#include "hs_endpoints.h"
#include "hs_http.h"

/* {{BASE}} is replaced by the Location's path */
static const char doc[] =
    "{\"openapi\":\"3.1.0\","
    "\"info\":{\"title\":\"HydraCore customer signup\",\"version\":\"1.0.0\","
    "\"description\":\"Public customer-signup API served by "
    "mod_hydra_signup.\"},"
    "\"paths\":{"
    "\"{{BASE}}\":{\"post\":{\"operationId\":\"create_signup\","
    "\"summary\":\"Create Signup\",\"description\":\"Create a new customer "
    "account and auto-place on a shared node. Sends a verification code to "
    "the customer's email. Returns 503 if no shared hosting capacity is "
    "available.\","
    "\"requestBody\":{\"required\":true,\"content\":{\"application/json\":"
    "{\"schema\":{\"$ref\":\"#/components/schemas/SignupRequest\"}}}},"
    "\"responses\":{\"201\":{\"description\":\"Created\",\"content\":"
    "{\"application/json\":{\"schema\":{\"$ref\":\"#/components/schemas/"
    "SignupResponse\"}}}},"
    "\"404\":{\"$ref\":\"#/components/responses/Detail\"},"
    "\"409\":{\"$ref\":\"#/components/responses/Detail\"},"
    "\"413\":{\"$ref\":\"#/components/responses/Detail\"},"
    "\"415\":{\"$ref\":\"#/components/responses/Detail\"},"
    "\"422\":{\"$ref\":\"#/components/responses/Validation\"},"
    "\"429\":{\"$ref\":\"#/components/responses/Detail\"},"
    "\"503\":{\"$ref\":\"#/components/responses/Detail\"}}}},"
    "\"{{BASE}}/plans/{tenant_slug}\":{\"get\":{\"operationId\":"
    "\"list_plans\",\"summary\":\"List Plans\",\"description\":\"List "
    "available plans for a tenant's shared hosting.\","
    "\"parameters\":[{\"name\":\"tenant_slug\",\"in\":\"path\","
    "\"required\":true,\"schema\":{\"type\":\"string\",\"title\":\"Tenant "
    "Slug\"}}],"
    "\"responses\":{\"200\":{\"description\":\"OK\",\"content\":"
    "{\"application/json\":{\"schema\":{\"type\":\"array\",\"items\":"
    "{\"$ref\":\"#/components/schemas/Plan\"}}}}},"
    "\"304\":{\"description\":\"Not Modified\"},"
    "\"404\":{\"$ref\":\"#/components/responses/Detail\"}}}},"
    "\"{{BASE}}/verify\":{\"post\":{\"operationId\":\"verify_signup\","
    "\"summary\":\"Verify Signup\",\"description\":\"Verify signup code and "
    "return portal JWT tokens.\","
    "\"requestBody\":{\"required\":true,\"content\":{\"application/json\":"
    "{\"schema\":{\"$ref\":\"#/components/schemas/VerifyRequest\"}}}},"
    "\"responses\":{\"200\":{\"description\":\"OK\",\"content\":"
    "{\"application/json\":{\"schema\":{\"$ref\":\"#/components/schemas/"
    "TokenResponse\"}}}},"
    "\"400\":{\"$ref\":\"#/components/responses/Detail\"},"
    "\"422\":{\"$ref\":\"#/components/responses/Validation\"},"
    "\"429\":{\"$ref\":\"#/components/responses/Detail\"}}}},"
    "\"{{BASE}}/jwks.json\":{\"get\":{\"operationId\":\"jwks\","
    "\"summary\":\"Token signing keys\",\"responses\":{\"200\":"
    "{\"description\":\"JWK Set\"},\"404\":{\"$ref\":\"#/components/"
    "responses/Detail\"}}}}},"
    "\"components\":{\"schemas\":{"
    "\"SignupRequest\":{\"type\":\"object\",\"required\":[\"company_name\","
    "\"email\",\"tenant_slug\"],\"properties\":{"
    "\"company_name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":200,"
    "\"title\":\"Company Name\"},"
    "\"email\":{\"type\":\"string\",\"format\":\"email\",\"title\":"
    "\"Email\"},"
    "\"plan\":{\"type\":\"string\",\"maxLength\":50,\"default\":\"starter\","
    "\"title\":\"Plan\"},"
    "\"tenant_slug\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":100,"
    "\"title\":\"Tenant Slug\"}}},"
    "\"SignupResponse\":{\"type\":\"object\",\"required\":[\"customer_id\","
    "\"message\",\"site_url\"],\"properties\":{\"customer_id\":{\"type\":"
    "\"string\",\"format\":\"uuid\"},\"message\":{\"type\":\"string\"},"
    "\"site_url\":{\"type\":\"string\"}}},"
    "\"Plan\":{\"type\":\"object\",\"required\":[\"name\",\"description\","
    "\"price\",\"features\"],\"properties\":{\"name\":{\"type\":\"string\"},"
    "\"description\":{\"type\":\"string\"},\"price\":{\"type\":\"string\"},"
    "\"features\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}}},"
    "\"VerifyRequest\":{\"type\":\"object\",\"required\":[\"code\","
    "\"email\",\"tenant_slug\"],\"properties\":{"
    "\"code\":{\"type\":\"string\",\"minLength\":6,\"maxLength\":6,"
    "\"title\":\"Code\"},"
    "\"email\":{\"type\":\"string\",\"format\":\"email\",\"title\":"
    "\"Email\"},"
    "\"tenant_slug\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":100,"
    "\"title\":\"Tenant Slug\"}}},"
    "\"TokenResponse\":{\"type\":\"object\",\"required\":[\"access_token\","
    "\"refresh_token\",\"token_type\",\"expires_in\",\"customer_id\","
    "\"tenant_id\"],\"properties\":{\"access_token\":{\"type\":\"string\"},"
    "\"refresh_token\":{\"type\":\"string\"},\"token_type\":{\"type\":"
    "\"string\",\"const\":\"bearer\"},\"expires_in\":{\"type\":"
    "\"integer\"},\"customer_id\":{\"type\":\"string\",\"format\":\"uuid\"},"
    "\"tenant_id\":{\"type\":\"string\",\"format\":\"uuid\"}}},"
    "\"ValidationError\":{\"type\":\"object\",\"required\":[\"loc\","
    "\"msg\",\"type\"],\"properties\":{\"loc\":{\"type\":\"array\","
    "\"items\":{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"integer\"}]}},"
    "\"msg\":{\"type\":\"string\"},\"type\":{\"type\":\"string\"}}}},"
    "\"responses\":{"
    "\"Detail\":{\"description\":\"Error\",\"content\":{\"application/json\":"
    "{\"schema\":{\"type\":\"object\",\"properties\":{\"detail\":{\"type\":"
    "\"string\"}}}}}},"
    "\"Validation\":{\"description\":\"Validation Error\",\"content\":"
    "{\"application/json\":{\"schema\":{\"type\":\"object\",\"properties\":"
    "{\"detail\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/components/"
    "schemas/ValidationError\"}}}}}}}}}}";

int hs_openapi_handle(request_rec *r, const hs_dir_cfg *cfg)
{
    core_dir_config *d = ap_get_core_module_config(r->per_dir_config);
    const char *base = d && d->d && !d->r ? d->d : "/v1/public/signup";
    apr_size_t blen = strlen(base);
    const char *p = doc, *q;
    struct iovec parts[32];
    int n = 0;
    char *out;

    while (blen > 1 && base[blen - 1] == '/') {
        blen--;
    }
    /* base is an operator's Location path: JSON-safe unless it holds a
     * quote or backslash */
    if (memchr(base, '"', blen) || memchr(base, '\\', blen)) {
        base = "/v1/public/signup";
        blen = strlen(base);
    }
    while ((q = strstr(p, "{{BASE}}")) && n < 30) {
        parts[n].iov_base = (void *)p;
        parts[n++].iov_len = (apr_size_t)(q - p);
        parts[n].iov_base = (void *)base;
        parts[n++].iov_len = blen;
        p = q + 8;
    }
    parts[n].iov_base = (void *)p;
    parts[n++].iov_len = strlen(p);
    out = apr_pstrcatv(r->pool, parts, n, NULL);
    apr_table_setn(r->headers_out, "Cache-Control", "public, max-age=3600");
    return hs_send_json(r, HTTP_OK, out);
}
