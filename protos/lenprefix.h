/* strata lenprefix layer: length-prefixed records.
 *
 * A record is a big-endian length of 1, 2 or 4 bytes, optionally after one
 * flag byte (with a 4-byte length that is gRPC's 5-byte message prefix:
 * flag 1 = compressed), then that many payload bytes.
 *
 * Contract:
 *  - send with STRATA_MSG_END sends one whole record of the given bytes:
 *    header and payload go down in one sendv, the payload is not copied.
 *    A record of unknown-at-first size is sent by strata_lenprefix_begin
 *    (declares the length) and then sends without STRATA_MSG_END; a send
 *    without MSG_END and no begun record is STRATA_ERR_ARG. A send that
 *    moved only part of a record is continued by sending the rest: the
 *    layer knows how much of the record is still owed and will not take
 *    more bytes than that (sending more is STRATA_ERR_ARG).
 *    STRATA_MSG_COMPRESSED sets the flag byte's bit 0 (flag-byte form).
 *  - recv delivers a record in pieces into a buffer of any size;
 *    STRATA_MSG_END marks its last piece, STRATA_MSG_COMPRESSED its flag.
 *    A zero-length record is a 0-byte recv with STRATA_MSG_END.
 *  - A header declaring more than max_len is STRATA_ERR_TOO_BIG before any
 *    byte of that payload is read; the stream is then UNUSABLE (every later
 *    recv repeats the error): the framing cannot be trusted. A flag byte
 *    with bits other than bit 0 set is STRATA_ERR_PROTO, also final.
 *  - The stream ending inside a header or payload is STRATA_ERR_PROTO
 *    (truncated); at a record boundary it is STRATA_EOF.
 */
#ifndef STRATA_LENPREFIX_H
#define STRATA_LENPREFIX_H

#include <strata/stream.h>
#include <strata/buffered.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct strata_lenprefix_opts {
    unsigned len_bytes;  /* 1, 2 or 4; 0: 4 */
    int flag_byte;       /* a flag byte precedes the length */
    size_t max_len;      /* largest payload received; 0: 4 MiB */
    size_t max_send;     /* largest payload sent; 0: max_len */
} strata_lenprefix_opts;

typedef struct strata_lenprefix {
    strata_stream base;
    strata_buffered *in;
    unsigned len_bytes;
    int flag_byte;
    size_t max_len;
    size_t max_send;      /* at most what the length field holds */
    /* receive side */
    size_t rx_left;       /* payload bytes of the current record to deliver */
    unsigned rx_flags;    /* flags of the current record */
    int rx_in_record;
    int rx_failed;        /* sticky status, 0 if none */
    int rx_big;           /* the last payload was big: no read-ahead */
    /* send side */
    uint8_t tx_hdr[5];
    size_t tx_hdr_len;    /* the header's length, fixed at init */
    size_t tx_hdr_off;    /* header bytes already sent */
    size_t tx_left;       /* payload bytes still owed to the current record */
    int tx_in_record;
    int tx_shut;
} strata_lenprefix;

#ifndef STRATA_EMBEDDED /* the profile has no constructor that allocates */
/* A lenprefix layer over lower (owned). If lower is not a buffered stream
 * a 16 KiB one is put between them. */
strata_stream *strata_lenprefix_new(strata_stream *lower,
                                    const strata_lenprefix_opts *opts,
                                    const strata_allocator *alloc);
#endif
/* The same in caller-provided storage. The buffered stream needs room for a
 * header only (5 bytes): payloads may be read straight past it. */
int strata_lenprefix_init(strata_lenprefix *l, strata_buffered *in,
                          const strata_lenprefix_opts *opts);
/* Begin a record of `len` payload bytes to be sent in pieces (sends without
 * STRATA_MSG_END; the record ends when len bytes went). flags may hold
 * STRATA_MSG_COMPRESSED. STRATA_ERR_STATE if a record is in progress,
 * STRATA_ERR_TOO_BIG over max_len or the length field. */
int strata_lenprefix_begin(strata_stream *s, size_t len, unsigned flags);

#ifdef __cplusplus
}
#endif
#endif
