/* strata http1: just what an HTTP/1.1 Upgrade needs.
 *
 * A request or response head is pulled line by line from the buffered
 * input stream (the separator-delimited miniprotocol: CRLF lines), so not a
 * byte past the blank line that ends the head is taken: whatever the peer
 * sent behind it (the first WebSocket frame) stays in the buffered stream
 * for the next layer. That is the hand-off.
 *
 * Contract:
 *  - strata_http1_read_request / _read_response are incremental: on
 *    STRATA_NEED_* call again with the same head; lines already read are
 *    kept in the head's own storage (bounded by its size).
 *  - Limits: the whole head at most max_head bytes and max_headers header
 *    lines (STRATA_ERR_TOO_BIG: for a server, answer 431); a bad start line,
 *    a header line without ':', a name with bad characters, obs-fold (a line
 *    starting with space or tab) and a bare CR are STRATA_ERR_PROTO (answer
 *    400). The stream ending inside a head is STRATA_ERR_PROTO.
 *  - Header names compare case-insensitively; values are trimmed of spaces
 *    and tabs at both ends. Repeated names are kept in order.
 *  - The writer formats a head into a caller buffer; it never sends.
 */
#ifndef STRATA_HTTP1_H
#define STRATA_HTTP1_H

#include <strata/stream.h>
#include <strata/buffered.h>

#ifdef __cplusplus
extern "C" {
#endif

#define STRATA_HTTP1_MAX_HEADERS 64 /* most header slots a head can hold */

typedef struct strata_http1_header {
    const char *name;   /* NUL-terminated, into the head's storage */
    const char *value;
} strata_http1_header;

typedef struct strata_http1_head {
    /* request: method, target, version; response: version, status, reason */
    const char *method;
    const char *target;
    const char *version;  /* "HTTP/1.1" */
    int status;
    const char *reason;
    size_t n_headers;
    /* private: storage for the strings above and parser state */
    char *store;
    size_t store_cap, store_len;
    size_t max_headers;   /* <= STRATA_HTTP1_MAX_HEADERS */
    int started;          /* the start line was read */
    int done;
    /* last, so the fields above sit at offsets small cpus reach in short
     * instructions */
    strata_http1_header headers[STRATA_HTTP1_MAX_HEADERS];
} strata_http1_head;

/* Prepare a head that keeps at most max_head bytes of head text in
 * `store` (store_cap bytes, at least max_head) and at most max_headers
 * header lines (0: STRATA_HTTP1_MAX_HEADERS). */
void strata_http1_head_init(strata_http1_head *h, char *store,
                            size_t store_cap, size_t max_headers);

#ifndef STRATA_EMBEDDED /* not in the embedded profile: no web front */
/* Copy a complete head into dst (initialised, its own store): a server
 * that read a request to dispatch on it hands it to the layer that
 * answers (strata_ws_opts.request). 0, or STRATA_ERR_TOO_BIG when src's
 * text or headers do not fit dst's limits. */
int strata_http1_head_copy(strata_http1_head *dst,
                           const strata_http1_head *src);
#endif

/* Read a request head / response head. 0 when complete; else a status. */
int strata_http1_read_request(strata_buffered *in, strata_http1_head *h);
int strata_http1_read_response(strata_buffered *in, strata_http1_head *h);

/* First value of a header (case-insensitive name), or NULL. */
const char *strata_http1_get(const strata_http1_head *h, const char *name);
/* Every value of a repeated header, in order: the value of the first
 * header `name` at index *i or after (start with *i = 0), NULL when none
 * is left; *i moves past it. */
const char *strata_http1_next_value(const strata_http1_head *h,
                                    const char *name, size_t *i);
/* The next element of a comma-separated value (RFC 9110 5.6.1): its start
 * and *len, spaces and tabs around it left out, *list moved past it; NULL
 * at the end. An empty element ("a,,b") comes as *len 0. */
const char *strata_http1_list_next(const char **list, size_t *len);
/* Whether s is a token (RFC 9110 5.6.2), as methods, header names and
 * WebSocket subprotocol names are. NULL and "" are not. */
int strata_http1_is_token(const char *s);
/* Whether any header `name` holds `token` in its comma-separated list
 * (case-insensitive, spaces ignored: "Connection: keep-alive, Upgrade"). */
int strata_http1_has_token(const strata_http1_head *h, const char *name,
                           const char *token);

/* Format a request head ("GET /path HTTP/1.1\r\nName: value\r\n...\r\n")
 * into buf. headers: NULL-terminated name, value pairs; extra: preformatted
 * header lines ("A: b\r\n...") or NULL. Returns the length, or
 * STRATA_ERR_TOO_BIG if it does not fit, STRATA_ERR_ARG on CR/LF inside a
 * name or value. */
ssize_t strata_http1_write_request(char *buf, size_t cap, const char *method,
                                   const char *target,
                                   const char *const *headers,
                                   const char *extra);
/* The same for a response head ("HTTP/1.1 101 Switching Protocols...").
 * reason NULL: the usual phrase of 101, 200, 400, 403, 404, 426, 431 and
 * 500, "Status" for any other; the embedded profile knows 101's only. */
ssize_t strata_http1_write_response(char *buf, size_t cap, int status,
                                    const char *reason,
                                    const char *const *headers,
                                    const char *extra);

#ifdef __cplusplus
}
#endif
#endif
