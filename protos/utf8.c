/* UTF-8 validation as a DFA in the manner of Bjoern Hoehrmann's decoder:
 * every byte maps to one of 12 classes, and a 9 x 12 table moves the state.
 * Only validity is needed here, not the code points, so the table is all
 * there is. ASCII, the bulk of most text, is skipped 8 bytes at a time while
 * the state is between code points. */
#include "utf8.h"

#include <string.h>

/* Byte classes:
 *  0 00..7F   1 80..8F   9 90..9F   7 A0..BF   (continuations split by
 *  the ranges that the lead bytes E0, ED, F0 and F4 restrict)
 *  8 C0 C1 F5..FF (never valid)   2 C2..DF   3 E1..EC EE EF
 *  10 E0   4 ED   11 F0   6 F1..F3   5 F4 */
#ifdef STRATA_EMBEDDED
/* The classes computed (the embedded profile saves the 256-byte table):
 * by the high nibble, but for the lead bytes that restrict what follows. */
static uint8_t class_of(uint8_t b)
{
    static const uint8_t by_nibble[16] = {0, 0, 0, 0, 0, 0, 0, 0,
                                          1, 9, 7, 7, 2, 2, 3, 8};

    switch (b) {
    case 0xc0: case 0xc1: return 8;
    case 0xe0: return 10;
    case 0xed: return 4;
    case 0xf0: return 11;
    case 0xf1: case 0xf2: case 0xf3: return 6;
    case 0xf4: return 5;
    default: return by_nibble[b >> 4];
    }
}
#else
static const uint8_t byte_class[256] = {
    /* 00..7F */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 80..8F */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 90..9F */
    9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9,
    /* A0..BF */
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    /* C0..DF */
    8, 8, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    /* E0..EF */
    10, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 4, 3, 3,
    /* F0..FF */
    11, 6, 6, 6, 5, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8,
};

#define class_of(b) byte_class[b]
#endif

/* States: 0 accept, 1 reject, 2 one continuation to go, 3 two to go,
 * 4 after E0 (A0..BF next: no overlong), 5 after ED (80..9F next: no
 * surrogate), 6 after F0 (90..BF next: no overlong), 7 three to go,
 * 8 after F4 (80..8F next: nothing above U+10FFFF). */
#define R 1
static const uint8_t next_state[9][12] = {
    /*      0  1  2  3  4  5  6  7  8  9 10 11 */
    /* 0 */ {0, R, 2, 3, 5, 8, 7, R, R, R, 4, 6},
    /* 1 */ {R, R, R, R, R, R, R, R, R, R, R, R},
    /* 2 */ {R, 0, R, R, R, R, R, 0, R, 0, R, R},
    /* 3 */ {R, 2, R, R, R, R, R, 2, R, 2, R, R},
    /* 4 */ {R, R, R, R, R, R, R, 2, R, R, R, R},
    /* 5 */ {R, 2, R, R, R, R, R, R, R, 2, R, R},
    /* 6 */ {R, R, R, R, R, R, R, 3, R, 3, R, R},
    /* 7 */ {R, 3, R, R, R, R, R, 3, R, 3, R, R},
    /* 8 */ {R, 3, R, R, R, R, R, R, R, R, R, R},
};
#undef R

#define HIGH_BITS 0x8080808080808080ull

uint8_t strata_utf8_feed(uint8_t state, const void *bytes, size_t n)
{
    const uint8_t *p = bytes;
    size_t i = 0;

    while (i < n && state != STRATA_UTF8_REJECT) {
        if (state == STRATA_UTF8_ACCEPT) {
            uint64_t w;

            while (n - i >= 8) {
                memcpy(&w, p + i, 8);
                if (w & HIGH_BITS)
                    break;
                i += 8;
            }
            if (i == n)
                break;
        }
        state = next_state[state][class_of(p[i])];
        i++;
    }
    return state;
}

int strata_utf8_valid(const void *bytes, size_t n)
{
    return strata_utf8_feed(STRATA_UTF8_ACCEPT, bytes, n) ==
           STRATA_UTF8_ACCEPT;
}
