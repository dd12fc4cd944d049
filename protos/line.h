/* strata line layer: separator-delimited records.
 *
 * Each record is the bytes before a separator: "\n", "\r\n" or any byte
 * string up to 8 bytes. STRATA_LINE_ANY_EOL accepts "\n" and "\r\n" on
 * receive (the "\r" is dropped) and sends the configured separator.
 *
 * Contract:
 *  - recv returns a record's content without its separator, in pieces when
 *    the caller's buffer is small; STRATA_MSG_END marks the last piece. An
 *    empty record is a 0-byte recv with STRATA_MSG_END.
 *  - A record is delivered only once it is whole in the buffered stream
 *    below, so a record over max_len is found before any of it is
 *    delivered: recv returns STRATA_ERR_TOO_BIG, and the layer is then
 *    RESYNCHRONISED: it drops the over-long record up to and including its
 *    separator and the next recv returns the record after it. Nothing
 *    before the over-long record is lost.
 *  - The stream ending in the middle of a record is STRATA_ERR_PROTO
 *    (truncated), never a silent short record; at a record boundary it is
 *    STRATA_EOF.
 *  - send writes the bytes; STRATA_MSG_END appends the separator (one sendv,
 *    no copy; in the embedded profile, STRATA_EMBEDDED, the separator goes
 *    down as a sendv of its own after the bytes). Bytes containing the
 *    separator are STRATA_ERR_ARG, and a record whose sent bytes would pass
 *    max_len is STRATA_ERR_TOO_BIG (nothing of that send is written). A
 *    send that moved part of its bytes is continued by sending the rest
 *    with the same flags.
 */
#ifndef STRATA_LINE_H
#define STRATA_LINE_H

#include <strata/stream.h>
#include <strata/buffered.h>

#ifdef __cplusplus
extern "C" {
#endif

#define STRATA_LINE_ANY_EOL 0x01u /* receive "\n" and "\r\n" alike */

typedef struct strata_line_opts {
    const char *sep;     /* separator sent (and received); NULL: "\n" */
    size_t sep_len;      /* 0: strlen(sep) */
    size_t max_len;      /* largest record content; 0: 4096 */
    unsigned flags;      /* STRATA_LINE_* */
} strata_line_opts;

typedef struct strata_line {
    strata_stream base;
    strata_buffered *in;  /* where records are pulled from */
    uint8_t sep[8];
    uint8_t sep_len;
    uint8_t rx_len;       /* of sep, the end searched for on receive: "\n"
                             alone under ANY_EOL */
    uint8_t keep;         /* sent bytes that could begin a split separator
                             (ANY_EOL: 1, for a "\r" before "\n") */
    size_t max_len;
    unsigned flags;
    size_t rec_len;       /* content bytes of the record still to deliver */
    size_t rec_sep;       /* bytes after them to drop (its separator);
                             0 when no record is being delivered */
    int skipping;         /* resynchronising after STRATA_ERR_TOO_BIG */
    size_t sent;          /* content bytes of the record being sent */
    int sep_pending;      /* bytes of the separator still to send */
    int failed;           /* sticky error, 0 if none */
    /* private: the last content bytes sent of the current record, so a
     * separator split across two sends is still refused */
    uint8_t tx_tail[8];
    size_t tx_tail_len;
    int tx_shut;          /* strata_shutdown was called */
} strata_line;

#ifndef STRATA_EMBEDDED /* the profile has no constructor that allocates */
/* A line layer over lower (owned). If lower is not a buffered stream, one
 * of max_len + sep_len bytes (one more with ANY_EOL; at least 4 KiB) is put
 * between them. */
strata_stream *strata_line_new(strata_stream *lower,
                               const strata_line_opts *opts,
                               const strata_allocator *alloc);
#endif
/* The same in caller-provided storage, over a buffered stream whose
 * capacity is at least max_len + sep_len, one more with ANY_EOL (else
 * STRATA_ERR_ARG). */
int strata_line_init(strata_line *l, strata_buffered *in,
                     const strata_line_opts *opts);

#ifdef __cplusplus
}
#endif
#endif
