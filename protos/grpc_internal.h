/* strata grpc internals: the wire encodings a call needs (grpc_wire.c),
 * shared by grpc.c only. Every returned buffer comes from the given
 * allocator and is NUL-terminated. */
#ifndef STRATA_GRPC_INTERNAL_H
#define STRATA_GRPC_INTERNAL_H

#include <strata/stream.h>

char *grpc_dup(const strata_allocator *a, const char *s);

/* grpc-message: percent-encode bytes outside 0x20..0x7e and '%', and
 * back (a malformed escape is kept as it is, as the spec asks). */
char *grpc_pct_encode(const strata_allocator *a, const char *msg);
char *grpc_pct_decode(const strata_allocator *a, const char *v);

/* "-bin" metadata: base64 without padding out, padded or not in.
 * decode: 0, STRATA_ERR_PROTO (not base64) or STRATA_ERR_NOMEM. */
char *grpc_b64_encode(const strata_allocator *a, const void *p, size_t n);
int grpc_b64_decode(const strata_allocator *a, const char *v, uint8_t **out,
                    size_t *n);
int grpc_key_is_bin(const char *key);

/* The gRPC status a non-200 HTTP status stands for (the spec's table). */
int grpc_status_of_http(int http);
/* The gRPC status an HTTP/2 RST_STREAM code stands for. */
int grpc_status_of_reset(long code);
/* content-type "application/grpc", or with "+subtype" or ";params". */
int grpc_content_type_ok(const char *v);

/* gzip a message whole: 0 and the result in out and n, or an error. */
int grpc_gzip(const strata_allocator *a, const uint8_t *in, size_t len,
              uint8_t **out, size_t *n);
/* gunzip into at most max bytes: 0, STRATA_ERR_TOO_BIG past max,
 * STRATA_ERR_PROTO for a bad stream, STRATA_ERR_NOMEM. */
int grpc_gunzip(const strata_allocator *a, const uint8_t *in, size_t len,
                size_t max, uint8_t **out, size_t *n);

#endif
