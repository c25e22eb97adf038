#!/usr/bin/python3
"""t/browser/page_flow.py - the hosted signup page and the widget in a real
browser: headless Chromium driven by Selenium against the httpd, module and
PostgreSQL that the Apache::Test suite runs, the codes read from the mails
a real SMTP sink received (t/page.t starts the sink and the sender).

Run by t/page.t, which passes (environment):
  HS_PAGE_BASE     http://127.0.0.1:P/v1/public/signup   (vhost_page)
  HS_PORTAL_BASE   http://127.0.0.1:Q/v1/public/signup   (vhost_page_portal)
  HS_PEER_PORT     the port of the provider's page and the portal (the
                   origin vhost_page allows, the portal URL vhost_page_portal
                   names)
  HS_MAILDIR       where the SMTP sink stores each message
  HS_JWT_KEY       the HS256 secret file
  HYDRA_SCREENSHOTS  where the screenshots go (default t/logs/screenshots)

Prints TAP: "1..N" first, then "ok N - name" / "not ok N - name", and
"# info key=value" lines that t/page.t checks against the database.
"""
import base64
import email
import email.policy
import hashlib
import hmac
import http.server
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

PLAN = 56  # the number of checks below; t/page.t fails any that did not run

PAGE_BASE = os.environ["HS_PAGE_BASE"]
PORTAL_BASE = os.environ["HS_PORTAL_BASE"]
PEER_PORT = int(os.environ["HS_PEER_PORT"])
MAILDIR = os.environ["HS_MAILDIR"]
JWT_KEY = os.environ["HS_JWT_KEY"]
SHOTS = os.environ.get("HYDRA_SCREENSHOTS") or "t/logs/screenshots"
WIDE = (1280, 900)
NARROW = (390, 844)
ACCENT = "rgb(36, 86, 211)"

count = 0
shot_no = 0


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def check(cond, name, why=""):
    global count
    count += 1
    out(("ok %d - %s" if cond else "not ok %d - %s") % (count, name))
    if not cond and why:
        for line in str(why).splitlines()[:8]:
            out("#   " + line)
    return bool(cond)


def info(key, value):
    out("# info %s=%s" % (key, value))


def until(fn, timeout=30.0, step=0.1):
    """fn()'s first true value within timeout seconds (else its last)."""
    end = time.time() + timeout
    v = None
    while True:
        try:
            v = fn()
        except WebDriverException:
            v = None
        if v or time.time() > end:
            return v
        time.sleep(step)


# ---- the provider's page and the portal (another origin) ------------------

PROVIDER = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Example Hosting - sign up</title></head>
<body><h1>Example Hosting</h1><p>Start your site today.</p>
<div id="signup-here"></div>
<script src="%(api)s/widget.js" data-tenant="%(tenant)s" data-api="%(api)s"
 data-target="signup-here" defer></script>
<p>Questions? Write to us.</p>
</body></html>
"""


class Peer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port, api):
        self.posts = []
        self.api = api
        super().__init__(("127.0.0.1", port), PeerHandler)


class PeerHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass

    def send(self, status, body, ctype="text/html; charset=utf-8"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/provider.html":
            tenant = urllib.parse.parse_qs(url.query).get("tenant", ["pageco"])
            self.send(200, PROVIDER % {"api": self.server.api,
                                       "tenant": tenant[0]})
        else:
            self.send(404, "not found")

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode("utf-8", "replace")
        self.server.posts.append({
            "path": self.path,
            "type": self.headers.get("Content-Type", ""),
            "fields": urllib.parse.parse_qs(body),
        })
        self.send(200, "<!DOCTYPE html><title>Portal</title>"
                  "<h1>Welcome to your portal</h1>")


def serve(port, api):
    srv = Peer(port, api)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


# ---- mail and tokens -----------------------------------------------------

def codes_for(addr):
    """The codes of every message to addr the sink holds, oldest first."""
    found = []
    for name in sorted(os.listdir(MAILDIR)):
        if name.startswith("."):
            continue
        path = os.path.join(MAILDIR, name)
        try:
            with open(path, "rb") as f:
                msg = email.message_from_bytes(f.read(),
                                               policy=email.policy.default)
        except OSError:
            continue
        if addr.lower() not in str(msg.get("To", "")).lower():
            continue
        body = msg.get_body(preferencelist=("plain",))
        text = body.get_content() if body else ""
        found.append((os.stat(path).st_mtime, re.findall(
            r"^(\d{6})\s*$", text, re.M)))
    found.sort()
    return [c[0] for _, c in found if len(c) == 1]


def wait_code(addr, n=1, timeout=60):
    """The n-th code mailed to addr (waits for the sender and the sink)."""
    codes = until(lambda: len(codes_for(addr)) >= n and codes_for(addr),
                  timeout, 0.2)
    return codes[n - 1] if codes else None


def b64url(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def jwt_claims(token, key):
    """The claims of an HS256 JWT whose signature verifies, else None."""
    try:
        h, c, s = token.split(".")
        want = hmac.new(key, (h + "." + c).encode(), hashlib.sha256).digest()
        if json.loads(b64url(h)).get("alg") != "HS256":
            return None
        if not hmac.compare_digest(want, b64url(s)):
            return None
        return json.loads(b64url(c))
    except (ValueError, TypeError):
        return None


# ---- the browser ---------------------------------------------------------

def browser(profile):
    o = webdriver.ChromeOptions()
    o.binary_location = "/usr/bin/chromium"
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
              "--no-first-run", "--disable-background-networking",
              "--disable-component-update", "--disable-sync",
              "--disable-dev-shm-usage", "--user-data-dir=" + profile,
              "--window-size=%d,%d" % WIDE):
        o.add_argument(a)
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)
    d.set_page_load_timeout(30)
    return d


class Page:
    """Helpers on the one driver."""

    def __init__(self, d):
        self.d = d
        self.size = WIDE

    def resize(self, size):
        self.size = size
        self.d.set_window_size(*size)

    def shot(self, name):
        global shot_no
        shot_no += 1
        path = os.path.join(SHOTS, "%02d-%s-%dx%d.png" % (
            shot_no, name, self.size[0], self.size[1]))
        try:
            if self.d.save_screenshot(path):
                info("shot", path)
        except WebDriverException as e:
            out("# screenshot %s failed: %s" % (path, e))

    def js(self, script, *args):
        return self.d.execute_script(script, *args)

    def q(self, css):
        els = self.d.find_elements(By.CSS_SELECTOR, css)
        return els[0] if els else None

    def visible(self, css):
        e = self.q(css)
        return e if e is not None and e.is_displayed() else None

    def wait_visible(self, css, timeout=20):
        return until(lambda: self.visible(css), timeout)

    def text(self, css):
        e = self.q(css)
        return e.text if e is not None else ""

    def field(self, name):
        for e in self.d.find_elements(By.NAME, name):
            if e.is_displayed():
                return e
        return None

    def error_of(self, name):
        """The message shown beside field name (its aria-describedby)."""
        f = self.q("[name=%s]" % name) if name != "plan" else \
            self.q(".hs-plans")
        if f is None:
            return ""
        ids = (f.get_attribute("aria-describedby") or "").split()
        return " ".join(self.text("#" + i) for i in ids if i)

    def active(self):
        return self.js("var a = document.activeElement;"
                       "return a ? (a.getAttribute('name') || a.className"
                       " || a.tagName) : '';")

    def fill(self, **values):
        for k, v in values.items():
            f = self.field(k)
            f.clear()
            f.send_keys(v)

    def alert(self, timeout=20):
        return until(lambda: self.text(".hs-alert").strip(), timeout) or ""

    def no_overflow(self):
        return self.js("return document.documentElement.scrollWidth <="
                       " window.innerWidth;")

    def csp_errors(self):
        try:
            logs = self.d.get_log("browser")
        except WebDriverException:
            return ["cannot read the browser log"]
        return [e["message"] for e in logs
                if "Content Security Policy" in e.get("message", "")
                or "Refused to" in e.get("message", "")]


def open_page(p, base, tenant):
    p.d.get(base + "/page/" + tenant)
    return p.wait_visible(".hs-plan-input + .hs-plan-card", 20)


def signup_to_code(p, company, addr, plan=None):
    if plan:
        p.q("label[for=%s]" % p.q("input[value=%s]" % plan)
            .get_attribute("id")).click()
    p.fill(company_name=company, email=addr)
    p.q(".hs-flow form:not([hidden]) button[type=submit]").click()
    return until(lambda: p.visible("[name=code]"), 20)


def enter_code(p, code):
    f = p.field("code")
    f.clear()
    f.send_keys(code)
    p.q(".hs-flow form:not([hidden]) button[type=submit]").click()


# ---- the scenarios -------------------------------------------------------

def hosted_portal(p, peer, key):
    """Whole flow on the hosted page with a portal, wide window."""
    p.resize(WIDE)
    check(open_page(p, PORTAL_BASE, "pageco"), "portal page: plans shown")
    radios = p.d.find_elements(By.CSS_SELECTOR, "input[name=plan]")
    check([r.get_attribute("value") for r in radios] ==
          ["starter", "pro", "business"], "three plans as radios, in order")
    check(radios[0].is_selected() and
          p.visible(".hs-plan-input:checked + .hs-plan-card .hs-plan-chosen"),
          "the first plan is chosen and marked")
    check("$15/mo" in p.text(".hs-plan-list") and
          "Daily backups" in p.text(".hs-plan-list"),
          "prices and features shown")
    check(p.csp_errors() == [], "no CSP violation on the page",
          p.csp_errors())
    p.shot("hosted-plans")
    addr = "portal-flow@example.com"
    ok = signup_to_code(p, "Portal Widgets Ltd", addr, plan="pro")
    check(ok, "hosted: code step after the signup")
    check(p.active() == "hs-step", "focus moved to the code step's heading",
          p.active())
    p.shot("hosted-code")
    code = wait_code(addr)
    check(code, "the code arrived at the SMTP sink")
    enter_code(p, code or "000000")
    got = until(lambda: peer.posts, 30)
    post = got[0] if got else {}
    check(post.get("path") == "/portal/session",
          "the portal received a POST at its URL (no query)", post)
    f = post.get("fields", {})
    check(post.get("type", "").startswith(
        "application/x-www-form-urlencoded"), "a form POST", post)
    acc = jwt_claims((f.get("access_token") or [""])[0], key)
    ref = jwt_claims((f.get("refresh_token") or [""])[0], key)
    check(acc and acc.get("type") == "access" and acc.get("exp", 0) > time.time(),
          "access_token verifies (HS256) and is an access token", acc)
    check(ref and ref.get("type") == "refresh" and
          ref.get("sub") == (acc or {}).get("sub"),
          "refresh_token verifies, same customer", ref)
    until(lambda: "portal" in p.d.title.lower(), 10)
    check("token" not in p.d.current_url and
          p.d.current_url.endswith("/portal/session"),
          "the browser is at the portal; no token in any URL", p.d.current_url)
    p.shot("hosted-portal")
    info("portal_email", addr)
    info("portal_sub", (acc or {}).get("sub", ""))


def hosted_narrow(p):
    """Phone window: a wrong field, a wrong code, resend, the right code."""
    p.resize(NARROW)
    check(open_page(p, PAGE_BASE, "pageco"), "narrow page: plans shown")
    check(p.no_overflow(), "narrow: nothing wider than the window")
    p.shot("narrow-plans")
    p.fill(company_name="", email="not-an-email")
    p.q(".hs-flow form:not([hidden]) button[type=submit]").click()
    until(lambda: p.error_of("email"), 20)
    check("not a valid email address" in p.error_of("email"),
          "422: the API's email message beside the email field",
          p.error_of("email"))
    check("at least 1 character" in p.error_of("company_name"),
          "422: the API's company_name message beside its field",
          p.error_of("company_name"))
    check(p.field("email").get_attribute("aria-invalid") == "true",
          "the email field is marked invalid")
    check(p.active() == "company_name",
          "focus on the first field with an error", p.active())
    check(p.field("email").get_attribute("value") == "not-an-email",
          "what was typed is kept")
    p.shot("narrow-field-errors")
    addr = "narrow-flow@example.com"
    check(signup_to_code(p, "Narrow Co", addr), "narrow: code step")
    res = p.q("button.hs-link")
    check(res.get_attribute("aria-disabled") == "true" and
          "new code in" in p.text(".hs-wait"),
          "resend waits for the resend interval", p.text(".hs-wait"))
    p.shot("narrow-code")
    code = wait_code(addr)
    check(code, "narrow: the code arrived")
    wrong = "%06d" % ((int(code or 0) + 1) % 1000000)
    enter_code(p, wrong)
    until(lambda: p.error_of("code"), 20)
    check("not right" in p.error_of("code"),
          "a wrong code: the message beside the code field",
          p.error_of("code"))
    check(p.active() == "code", "focus back on the code field", p.active())
    p.shot("narrow-wrong-code")
    until(lambda: res.get_attribute("aria-disabled") != "true", 20)
    check(res.get_attribute("aria-disabled") != "true",
          "the resend link is usable after the interval")
    res.click()
    second = wait_code(addr, 2)
    check(second, "resend: a second code was mailed")
    check(until(lambda: "new code" in p.text(".hs-status"), 10),
          "resend: the page says so", p.text(".hs-status"))
    enter_code(p, second or "000000")
    check(until(lambda: p.visible(".hs-done"), 20),
          "the right code: done")
    check(p.text(".hs-site") == "https://narrow-co.pageco.example.net",
          "done shows the site URL", p.text(".hs-site"))
    check(p.active() == "hs-step", "focus on the done heading", p.active())
    check(p.no_overflow(), "narrow done: nothing wider than the window")
    p.shot("narrow-done")
    info("narrow_email", addr)


def full_tenant(p):
    p.resize(WIDE)
    check(open_page(p, PAGE_BASE, "pagefull"), "full tenant: page shown")
    p.fill(company_name="Crowded Inc", email="crowded@example.com")
    p.q(".hs-flow form:not([hidden]) button[type=submit]").click()
    text = p.alert()
    check("servers are full" in text and "try again in about 5 minutes" in text,
          "503: plain words with the wait from Retry-After", text)
    check(p.active() == "hs-alert", "focus on the message", p.active())
    check(p.field("company_name").get_attribute("value") == "Crowded Inc",
          "503: what was typed is kept")
    p.shot("full-tenant-503")


def conflicts(p):
    """409 for an active address; 429 for a re-signup inside the resend
    interval (vhost_page_portal: 60 s)."""
    p.resize(WIDE)
    open_page(p, PORTAL_BASE, "pageco")
    p.fill(company_name="Again Ltd", email="portal-flow@example.com")
    p.q(".hs-flow form:not([hidden]) button[type=submit]").click()
    text = p.alert()
    check("already exists" in text, "409: plain words", text)
    p.shot("conflict-409")
    open_page(p, PORTAL_BASE, "pageco")
    addr = "twice@example.com"
    signup_to_code(p, "Twice Ltd", addr)
    p.d.find_elements(By.CSS_SELECTOR, "button.hs-link")[1].click()
    p.q(".hs-flow form:not([hidden]) button[type=submit]").click()
    text = p.alert()
    check("a moment ago" in text and re.search(r"in (\d+ seconds|about)", text),
          "429: plain words with the wait", text)
    check(p.visible("[name=code]"),
          "429 for the address just mailed: back to its code")
    p.shot("resend-429")


def offline(p):
    p.resize(WIDE)
    open_page(p, PAGE_BASE, "pageco")
    p.fill(company_name="Offline Co", email="offline@example.com")
    try:
        p.d.set_network_conditions(offline=True, latency=0,
                                   download_throughput=0,
                                   upload_throughput=0)
        switched = True
    except WebDriverException as e:
        switched = False
        out("# cannot go offline: %s" % e)
    p.q(".hs-flow form:not([hidden]) button[type=submit]").click()
    text = p.alert()
    check(switched and "could not reach" in text,
          "network error: plain words", text)
    check(p.field("company_name").get_attribute("value") == "Offline Co" and
          p.field("email").get_attribute("value") == "offline@example.com",
          "network error: what was typed is kept")
    p.shot("offline")
    try:
        p.d.delete_network_conditions()
    except WebDriverException:
        pass
    p.q(".hs-flow form:not([hidden]) button[type=submit]").click()
    check(until(lambda: p.visible("[name=code]"), 20),
          "online again: the same form goes on")


def widget(p, api, origin_port, allowed):
    p.resize(WIDE)
    p.d.get("http://127.0.0.1:%d/provider.html" % origin_port)
    if not allowed:
        text = p.alert()
        check("could not reach" in text,
              "widget from an origin not allowed: a visible error", text)
        check(p.visible(".hs-signup .hs-button"),
              "widget not allowed: a Try again button")
        p.shot("widget-refused-origin")
        return
    check(p.wait_visible("#signup-here .hs-plan-card"),
          "widget: mounted into data-target with the plans")
    check(p.js("return getComputedStyle(document.querySelector("
               "'#signup-here .hs-button')).backgroundColor;") == ACCENT,
          "widget: its stylesheet applies")
    p.shot("widget-plans")
    addr = "widget-flow@example.com"
    check(signup_to_code(p, "Widget Works", addr, plan="business"),
          "widget: signup through CORS, code step")
    code = wait_code(addr)
    enter_code(p, code or "000000")
    check(until(lambda: p.visible(".hs-done"), 20) and
          p.text(".hs-site") == "https://widget-works.pageco.example.net",
          "widget: verify through CORS, done with the site URL",
          p.text(".hs-signup"))
    check(p.d.current_url.startswith("http://127.0.0.1:%d/" % origin_port),
          "widget: still on the provider's page")
    p.shot("widget-done")
    info("widget_email", addr)
    # the wait of a 503 crosses origins too (Access-Control-Expose-Headers)
    p.d.get("http://127.0.0.1:%d/provider.html?tenant=pagefull" % origin_port)
    p.wait_visible("#signup-here .hs-plan-card")
    p.fill(company_name="Crowded Widget", email="crowded-widget@example.com")
    p.q(".hs-flow form:not([hidden]) button[type=submit]").click()
    text = p.alert()
    check("servers are full" in text and "in about 5 minutes" in text,
          "widget: a full tenant's 503 with the wait from Retry-After", text)
    p.shot("widget-full-tenant-503")


def keyboard(p):
    p.resize(WIDE)
    open_page(p, PAGE_BASE, "pageco")
    a = ActionChains(p.d)
    a.send_keys(Keys.TAB).perform()
    check(p.active() == "plan", "Tab: into the plan group",
          p.active())
    ActionChains(p.d).send_keys(Keys.ARROW_DOWN).send_keys(Keys.ARROW_DOWN) \
        .send_keys(Keys.SPACE).perform()
    check(p.q("input[value=business]").is_selected(),
          "arrows and Space choose the third plan")
    p.shot("keyboard-plan")
    ActionChains(p.d).send_keys(Keys.TAB).send_keys("Keyboard Only") \
        .send_keys(Keys.TAB).send_keys("keys@example.com") \
        .send_keys(Keys.ENTER).perform()
    check(until(lambda: p.visible("[name=code]"), 20),
          "Enter submits: code step")
    check(p.active() == "hs-step", "focus on the code heading", p.active())
    code = wait_code("keys@example.com")
    ActionChains(p.d).send_keys(Keys.TAB).perform()
    check(p.active() == "code", "Tab: the code field", p.active())
    ActionChains(p.d).send_keys(code or "000000").send_keys(Keys.ENTER) \
        .perform()
    check(until(lambda: p.visible(".hs-done"), 20), "keyboard: done")
    p.shot("keyboard-done")
    info("keyboard_email", "keys@example.com")


def main():
    out("1..%d" % PLAN)
    os.makedirs(SHOTS, exist_ok=True)
    with open(JWT_KEY, "rb") as f:
        key = f.read().rstrip(b"\r\n")
    peer = serve(PEER_PORT, PAGE_BASE)
    other = serve(0, PAGE_BASE)
    profile = tempfile.mkdtemp(prefix="hs-chromium-")
    d = None
    try:
        d = browser(profile)
        p = Page(d)
        for fn in (lambda: hosted_portal(p, peer, key),
                   lambda: hosted_narrow(p),
                   lambda: full_tenant(p),
                   lambda: conflicts(p),
                   lambda: offline(p),
                   lambda: widget(p, PAGE_BASE, PEER_PORT, True),
                   lambda: widget(p, PAGE_BASE, other.server_address[1],
                                  False),
                   lambda: keyboard(p)):
            try:
                fn()
            except Exception:  # one scenario's crash is its failure only
                check(False, "scenario crashed", traceback.format_exc())
                p.shot("crash")
    finally:
        if d:
            d.quit()
        peer.shutdown()
        other.shutdown()
        shutil.rmtree(profile, ignore_errors=True)
    if count != PLAN:
        out("# planned %d checks, ran %d" % (PLAN, count))
    return 0


if __name__ == "__main__":
    sys.exit(main())
