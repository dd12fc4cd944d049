/* Incremental UTF-8 validation (internal to the ws layer; not installed).
 *
 * A text message arrives in pieces that may split a code point anywhere:
 * across frames, across reads, across the caller's sends. The validator
 * is a small DFA whose whole state is one byte, carried from piece to
 * piece. It rejects everything RFC 3629 does: overlong forms, surrogates
 * (U+D800..U+DFFF), code points above U+10FFFF, stray continuation bytes
 * and the bytes C0, C1, F5..FF. At a message's end the state must be
 * STRATA_UTF8_ACCEPT (no code point left half-way).
 */
#ifndef STRATA_UTF8_H
#define STRATA_UTF8_H

#include <stddef.h>
#include <stdint.h>

enum {
    STRATA_UTF8_ACCEPT = 0, /* between code points */
    STRATA_UTF8_REJECT = 8  /* invalid; stays so whatever follows */
};

/* Feed n bytes to a validator in `state`; returns the new state, which is
 * STRATA_UTF8_REJECT once any byte so far was invalid. */
uint8_t strata_utf8_feed(uint8_t state, const void *bytes, size_t n);

/* Whether bytes[0..n) is a whole valid UTF-8 text. */
int strata_utf8_valid(const void *bytes, size_t n);

#endif
