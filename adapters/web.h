/* strata web: one TLS port that serves browsers, both ways they come.
 *
 * A browser opens a WebSocket over HTTP/2 (RFC 8441) only on an HTTP/2
 * connection it already holds to the same origin whose server sent
 * SETTINGS_ENABLE_CONNECT_PROTOCOL=1; otherwise it opens a new TLS
 * connection offering ALPN "http/1.1" alone and sends an HTTP/1.1 Upgrade.
 * A server must therefore offer both, and answer the page's plain
 * requests (GET /, its scripts) on the same connection. This file is that
 * server's front, built from the existing layers:
 *
 *   tls (ALPN "h2,http/1.1") --"h2"-------> strata_h2 (extended CONNECT):
 *                                           each stream is a WebSocket
 *                                           (strata_ws_h2_accept) or a
 *                                           request (strata_web_reply_h2)
 *                            --"http/1.1"-> HTTP/1.1 requests, answered in
 *                              or none      turn (keep-alive), until one is
 *                                           an Upgrade: the ws layer takes
 *                                           the connection with that head
 *                                           (strata_ws_opts.request)
 *
 * Contract:
 *  - strata_web_front_step drives one accepted connection: the TLS
 *    handshake, then, for HTTP/1.1, its plain requests (each answered with
 *    strata_web_reply_http1, not a byte read past a request's head), and
 *    says which way it goes: STRATA_WEB_H2 or STRATA_WEB_WEBSOCKET. NEED_*
 *    until then; STRATA_EOF when the client closed between requests (or
 *    after a reply that ended the connection: a bad head, HTTP/1.0, a
 *    request with a body); STRATA_ERR_TLS for a failed handshake or an
 *    ALPN the site does not serve (the client offered protocols, none of
 *    ours: TLS alert no_application_protocol).
 *  - Bad requests get their status and the connection ends after it: a
 *    head over max_head 431, a malformed head 400, a version other than
 *    HTTP/1.x 505; these end the connection after the answer. A method
 *    HTTP defines other than GET or HEAD is 405 (with Allow: GET, HEAD),
 *    any other method 501. Nothing of the request is served.
 *  - Files (strata_web_reply_new): GET and HEAD of a regular file under
 *    the site's root; "/" and directories mean their index.html. The
 *    target is percent-decoded once; an encoded "/" or NUL, a ".." or "."
 *    segment, a backslash or a control character is 400; a segment that
 *    starts with "." (hidden files) and anything that resolves outside
 *    the root (symlinks included) is 404, as is a missing file. A target
 *    whose path does not fit is 414. Content
 *    types by extension (html, js, mjs, css, json, png, svg, txt, ico,
 *    wasm; other: application/octet-stream), "nosniff" set. Without a
 *    root, GET / answers a small HTML page saying what the server is, and
 *    every other target 404.
 *  - Replies are written in steps (a NEED code: call again with the same
 *    stream), a file in chunks of 16 KiB as the stream takes them, so a
 *    large file costs no more memory than a small one; over HTTP/2 the
 *    stream's flow control paces it and the other streams go on.
 */
#ifndef STRATA_WEB_H
#define STRATA_WEB_H

#include <strata/stream.h>
#include <strata/buffered.h>
#include <strata/http1.h>

#ifdef __cplusplus
extern "C" {
#endif

#define STRATA_WEB_PATH_MAX 4096

/* What is served. strata_web_site_init fills it. */
typedef struct strata_web_site {
    char root[STRATA_WEB_PATH_MAX]; /* real path of the root, "" for none */
    const char *name;               /* on the default page; "strata" */
    int h2;                         /* serve HTTP/2 (ALPN "h2") */
    int http1;                      /* serve HTTP/1.1 */
    size_t max_head;                /* HTTP/1.1 request head; 0: 8 KiB */
} strata_web_site;

/* A site serving root (NULL: no files, the default page) on both ways.
 * 0, or STRATA_ERR_ARG when root is not a directory that can be read. */
int strata_web_site_init(strata_web_site *site, const char *root);
/* The ALPN list a TLS listener for the site offers: "h2,http/1.1",
 * "h2" or "http/1.1". */
const char *strata_web_alpn(const strata_web_site *site);

/* ---- replies: one plain request's answer ---------------------------- */

typedef struct strata_web_reply strata_web_reply;

/* The answer to method + target (as sent: percent-encoded, maybe with a
 * query): a file, the default page or an error status; a file is opened
 * now. NULL only when out of memory. */
strata_web_reply *strata_web_reply_new(const strata_web_site *site,
                                       const char *method, const char *target,
                                       const strata_allocator *alloc);
/* An error answer decided by the caller (400, 431, 505...): a short text
 * body saying why (why may be NULL). */
strata_web_reply *strata_web_reply_error(int status, const char *why,
                                         const strata_allocator *alloc);
int strata_web_reply_status(const strata_web_reply *r);
/* The Content-Type it answers with. */
const char *strata_web_reply_type(const strata_web_reply *r);
/* Write it as an HTTP/1.1 response (status line, Content-Length,
 * Connection: keep-alive or close) to a byte stream: 0 when it all went,
 * NEED_* to call again, or an error. */
int strata_web_reply_http1(strata_web_reply *r, strata_stream *out,
                           int keep_alive);
/* Write it on an HTTP/2 server stream (strata_h2_respond, then the body,
 * END_STREAM with its last bytes): 0 when done, NEED_*, or an error. */
int strata_web_reply_h2(strata_web_reply *r, strata_stream *stream);
void strata_web_reply_free(strata_web_reply *r);

/* The percent-decoded, checked path of target under site->root, into out
 * (cap bytes): 200, or the status to answer (400, 404, 414). Exposed for
 * tests and fuzzing; strata_web_reply_new uses it. */
int strata_web_resolve(const strata_web_site *site, const char *target,
                       char *out, size_t cap);
/* The Content-Type for a file name's extension. */
const char *strata_web_type(const char *path);

/* ---- the front: one accepted connection ------------------------------ */

enum { STRATA_WEB_H2 = 1, STRATA_WEB_WEBSOCKET = 2 };

typedef struct strata_web_front strata_web_front;

/* A front over an accepted stream (owned): TLS from a listener whose
 * config offers strata_web_alpn(site), or a plain stream (HTTP/1.1 only,
 * no handshake). site must outlive it. NULL when out of memory (lower is
 * then the caller's). */
strata_web_front *strata_web_front_new(strata_stream *lower,
                                       const strata_web_site *site,
                                       const strata_allocator *alloc);
/* Drive it (see the contract above). */
int strata_web_front_step(strata_web_front *f);
/* After STRATA_WEB_WEBSOCKET: the request head of the Upgrade, for
 * strata_ws_opts.request; valid until strata_web_front_free. */
const strata_http1_head *strata_web_front_request(const strata_web_front *f);
/* After STRATA_WEB_H2 or _WEBSOCKET: the stream, now the caller's. For
 * HTTP/2 it is the TLS stream (put strata_h2 on it); for a WebSocket the
 * buffered stream above TLS (put the ws layer on it: bytes the browser
 * sent behind its head are in it). */
strata_stream *strata_web_front_take(strata_web_front *f);
/* Plain requests answered so far, and the last ("GET /x: 200"). */
unsigned long strata_web_front_requests(const strata_web_front *f);
const char *strata_web_front_last(const strata_web_front *f);
/* The descriptor to wait on, and what for (as strata_fd / strata_wants). */
int strata_web_front_fd(const strata_web_front *f);
unsigned strata_web_front_wants(const strata_web_front *f);
/* Why the front ended (the last status line sent, a TLS reason), or "". */
const char *strata_web_front_reason(const strata_web_front *f);
void strata_web_front_free(strata_web_front *f);

#ifdef __cplusplus
}
#endif
#endif
