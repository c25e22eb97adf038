/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hs_keepalive.h - keep an HTTP/1.1 connection open after the module's own
 * 400 answers.
 *
 * httpd closes the connection after every 400 (ap_status_drops_connection):
 * a 400 of httpd's usually means the request could not be parsed, and the
 * rest of the stream cannot be trusted. The module's 400 (a wrong or
 * expired verification code) is an answer to a request read whole, body
 * included, so the connection is as good as after a 200. Closing it would
 * cost the client a new TCP (and TLS) handshake for its next try, and the
 * server an accept and a close: 127 us of httpd CPU a request, measured.
 *
 * hs_keepalive_possible() is httpd's keep-alive decision but for the
 * status; the connection gate asks it too, before it moves a connection
 * on (dbgate.c).
 */
#ifndef HS_KEEPALIVE_H
#define HS_KEEPALIVE_H

#include "httpd.h"

/* Could r's connection stay open after its answer, whatever the status?
 * (HTTP/1.1, no 100-continue pending, not aborted or already closing,
 * KeepAlive on with requests left, the client did not ask to close, no
 * nokeepalive, the MPM not stopping: ap_set_keepalive's conditions.) The
 * gate asks it before it moves a connection on (dbgate.c). */
int hs_keepalive_possible(request_rec *r);

/* Registers the output filter (register_hooks). */
void hs_keepalive_register(void);

/* hs_read_json calls it once the whole body was read (its EOS seen). */
void hs_keepalive_body_read(request_rec *r);

/*
 * Called before a 400 answer is sent: when the connection could stay open
 * for any other status (HTTP/1.1, the body read whole, no 100-continue
 * pending, KeepAlive on with requests left, the client did not ask to
 * close, no nokeepalive, the MPM not stopping), adds the filter that takes
 * httpd's "Connection: close" out of the answer's head and keeps the
 * connection. Otherwise the connection closes as httpd decides.
 */
void hs_keepalive_after_400(request_rec *r);

#endif /* HS_KEEPALIVE_H */
