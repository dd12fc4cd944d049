/* Inside the h2 layer: header blocks (h2_headers.c), the connection and
 * its streams (h2.c). Not installed. */
#ifndef STRATA_H2_INTERNAL_H
#define STRATA_H2_INTERNAL_H

#include <nghttp2/nghttp2.h>

#include "h2.h"

/* A header block as received: "name\0value\0" pairs in one buffer, and
 * once the block is complete, the list pointing into it. */
typedef struct h2_block {
    char *buf;
    size_t len, cap;
    size_t bytes;               /* RFC 9113 6.5.2 size: name + value + 32 */
    strata_h2_header *list;
    size_t n;
    int done;
} h2_block;

/* Append one field; -1 when allocation fails. */
int h2_block_add(h2_block *b, const strata_allocator *a, const uint8_t *name,
                 size_t nlen, const uint8_t *value, size_t vlen);
/* Build the list once the block ended; -1 when allocation fails. */
int h2_block_finish(h2_block *b, const strata_allocator *a);
void h2_block_reset(h2_block *b, const strata_allocator *a);
const char *h2_block_get(const h2_block *b, const char *name);

/* An nghttp2_nv array for a head given by the application, pseudo-headers
 * first (stable), names checked lowercase and non-empty. `extra` is an
 * optional leading ":status" built by the caller. Returns the count, or
 * STRATA_ERR_ARG / STRATA_ERR_NOMEM; *out is freed with strata_dealloc. */
int h2_nva_build(const strata_allocator *a, const strata_h2_header *extra,
                 const strata_h2_header *head, size_t n, nghttp2_nv **out);

/* The same into `stack` when the head fits in cap entries (no
 * allocation; *out is then stack and is not freed). */
#define H2_NV_SMALL 8
int h2_nva_build_in(const strata_allocator *a, const strata_h2_header *extra,
                    const strata_h2_header *head, size_t n,
                    nghttp2_nv *stack, size_t cap, nghttp2_nv **out);

/* The same, with names and values copied into the one allocation (for
 * trailers, which nghttp2 takes later). */
int h2_nva_copy(const strata_allocator *a, const strata_h2_header *head,
                size_t n, nghttp2_nv **out);

#endif
