#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""smtp-sink.py - a small SMTP server for hydra-signup-mailer's tests and the
README's run command. Saves every accepted message byte for byte (the DATA
content after dot-unstuffing: aiosmtpd's envelope.original_content) as one
file in --maildir, written under a dot name and renamed into place.

Needs Debian's python3-aiosmtpd; run it with /usr/bin/python3.

Fault injection, from options or from a JSON control file re-read for every
message (keys as the long option names with '_' for '-'):
  --fail-first N --fail-code 451     answer the first N DATA with fail-code
  --reject-rcpt-pattern RE --reject-code 550
                                     refuse RCPT TO addresses matching RE
  --delay SECONDS                    wait before answering each DATA
  --hold-rcpt-pattern RE --hold-seconds S
                                     for a message to an address matching
                                     RE, write "held <address>" to the
                                     event log, then wait S seconds (default
                                     60) and answer 451: a sender stuck in
                                     DATA on purpose (crash tests)
Events (--event-log FILE): one line per event the tests wait for.
TLS and AUTH (for STARTTLS/AUTH tests):
  --tls-cert FILE --tls-key FILE     offer STARTTLS
  --tls-wrap                         with --tls-cert: TLS from the first
                                     byte instead (smtps://), no STARTTLS
  --auth USER:PASSWORD               require AUTH (PLAIN/LOGIN)

Prints "listening on 127.0.0.1:PORT" once ready (PORT 0 picks a free one),
exits 0 on SIGTERM or SIGINT.
"""

import argparse
import asyncio
import json
import os
import re
import signal
import ssl
import sys
import time

try:
    from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
except ImportError:  # pragma: no cover
    sys.stderr.write(
        "smtp-sink.py: needs python3-aiosmtpd (apt-get install "
        "python3-aiosmtpd) and /usr/bin/python3\n")
    sys.exit(2)


class Sink:
    def __init__(self, args):
        self.args = args
        self.count = 0
        self.data_seen = 0
        self.prefix = "%d.%d" % (int(time.time()), os.getpid())
        os.makedirs(args.maildir, exist_ok=True)

    def settings(self):
        s = {
            "fail_first": self.args.fail_first,
            "fail_code": self.args.fail_code,
            "reject_rcpt_pattern": self.args.reject_rcpt_pattern,
            "reject_code": self.args.reject_code,
            "delay": self.args.delay,
            "hold_rcpt_pattern": self.args.hold_rcpt_pattern,
            "hold_seconds": self.args.hold_seconds,
        }
        if self.args.control:
            try:
                with open(self.args.control, "r", encoding="utf-8") as f:
                    s.update(json.load(f))
            except FileNotFoundError:
                pass
            except (OSError, ValueError) as e:
                sys.stderr.write("smtp-sink: control file: %s\n" % e)
        return s

    async def handle_RCPT(self, server, session, envelope, address,
                          rcpt_options):
        s = self.settings()
        pat = s.get("reject_rcpt_pattern")
        if pat and re.search(pat, address):
            code = int(s.get("reject_code") or 550)
            return "%d %d.1.1 recipient rejected by smtp-sink" % (
                code, code // 100)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    def event(self, text):
        if self.args.event_log:
            with open(self.args.event_log, "a", encoding="utf-8") as f:
                f.write(text + "\n")

    async def handle_DATA(self, server, session, envelope):
        s = self.settings()
        hold = s.get("hold_rcpt_pattern")
        held = [a for a in envelope.rcpt_tos if hold and re.search(hold, a)]
        if held:
            self.event("held %s" % held[0])
            await asyncio.sleep(float(s.get("hold_seconds") or 60))
            return "451 4.3.0 smtp-sink: held and given up"
        self.data_seen += 1
        delay = float(s.get("delay") or 0)
        if delay > 0:
            await asyncio.sleep(delay)
        if self.data_seen <= int(s.get("fail_first") or 0):
            code = int(s.get("fail_code") or 451)
            return "%d %d.3.0 smtp-sink: injected failure %d" % (
                code, code // 100, self.data_seen)
        self.count += 1
        name = "%s.%06d.eml" % (self.prefix, self.count)
        tmp = os.path.join(self.args.maildir, "." + name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(envelope.original_content)
        os.rename(tmp, os.path.join(self.args.maildir, name))
        if self.args.envelope_log:
            with open(self.args.envelope_log, "a", encoding="utf-8") as f:
                f.write(json.dumps({
                    "file": name,
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": envelope.rcpt_tos,
                    "tls": (session.ssl is not None or server.transport
                            .get_extra_info("ssl_object") is not None),
                    "auth": bool(session.authenticated),
                }) + "\n")
        return "250 OK queued as %s" % name


def make_authenticator(spec):
    user, _, password = spec.partition(":")

    def auth(server, session, envelope, mechanism, data):
        if isinstance(data, LoginPassword):
            ok = (data.login.decode("utf-8", "replace") == user
                  and data.password.decode("utf-8", "replace") == password)
            return AuthResult(success=ok)
        return AuthResult(success=False, handled=False)

    return auth


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=2525)
    ap.add_argument("--maildir", required=True)
    ap.add_argument("--envelope-log")
    ap.add_argument("--control")
    ap.add_argument("--fail-first", type=int, default=0)
    ap.add_argument("--fail-code", type=int, default=451)
    ap.add_argument("--reject-rcpt-pattern")
    ap.add_argument("--reject-code", type=int, default=550)
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--hold-rcpt-pattern")
    ap.add_argument("--hold-seconds", type=float, default=60.0)
    ap.add_argument("--event-log")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--tls-wrap", action="store_true")
    ap.add_argument("--auth")
    args = ap.parse_args()

    sink = Sink(args)
    kw = {"command_call_limit": None, "data_size_limit": 64 << 20,
          "hostname": "smtp-sink.local"}
    wrap = None
    if args.tls_cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        if args.tls_wrap:
            wrap = ctx
        else:
            kw["tls_context"] = ctx
    if args.auth:
        kw["authenticator"] = make_authenticator(args.auth)
        kw["auth_required"] = True
        # with --tls-wrap every connection is TLS already
        kw["auth_require_tls"] = bool(args.tls_cert) and not wrap

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(loop.create_server(
        lambda: SMTP(sink, loop=loop, **kw), host=args.host, port=args.port,
        ssl=wrap))
    port = server.sockets[0].getsockname()[1]
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, loop.stop)
    print("listening on %s:%d" % (args.host, port), flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
