-- SPDX-License-Identifier: Apache-2.0
-- bench/signup.lua - wrk script for bench/signup.sh: POST /v1/public/signup
-- with an address and a company name no other request uses, so that every
-- request is a real signup (one transaction, one slot, one code, one mail).
--
-- Environment: BENCH_PATH (the signup URL's path), BENCH_RUN (a prefix
-- unique to the run), BENCH_TENANT (the tenant slug).
local path = os.getenv("BENCH_PATH") or "/v1/public/signup"
local run = os.getenv("BENCH_RUN") or tostring(os.time())
local tenant = os.getenv("BENCH_TENANT") or "demo"

local threads = {}
local next_id = 1

function setup(thread)
    thread:set("tid", next_id)
    next_id = next_id + 1
    table.insert(threads, thread)
end

function init(args)
    n = 0
    created, limited, full, other = 0, 0, 0, 0
    wrk.method = "POST"
    wrk.path = path
    wrk.headers["Content-Type"] = "application/json"
end

function request()
    n = n + 1
    local body = string.format(
        '{"company_name":"Bench %s %d %d","email":"bench-%s-%d-%d@bench.example.net",' ..
        '"tenant_slug":"%s"}', run, tid, n, run, tid, n, tenant)
    return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
    if status == 201 then
        created = created + 1
    elseif status == 429 then
        limited = limited + 1
    elseif status == 503 then
        full = full + 1
    else
        other = other + 1
    end
end

function done(summary, latency, requests)
    local c, l, f, o = 0, 0, 0, 0
    for _, t in ipairs(threads) do
        c = c + t:get("created")
        l = l + t:get("limited")
        f = f + t:get("full")
        o = o + t:get("other")
    end
    -- microseconds
    io.write(string.format("RESULT %d %d %d %d %d %d %d %.0f %.0f %.0f %.0f\n",
        summary.requests, c, l, f, o,
        summary.errors.connect + summary.errors.read + summary.errors.write +
            summary.errors.timeout,
        summary.duration, latency.mean, latency:percentile(50),
        latency:percentile(99), latency.max))
end
