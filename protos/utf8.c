/* UTF-8 validation as a DFA in the manner of Bjoern Hoehrmann's decoder:
 * every byte maps to one of 12 classes, and an 8 x 12 table moves the state
 * (the ninth state, reject, needs no row: nothing leaves it).
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
/* The embedded profile computes the classes (no 256-byte table): by the
 * high nibble (eight nibbles of one constant for 80..FF), but for the lead
 * bytes that restrict what follows. And it packs the state table two
 * entries a byte (half the table, a shift more a step). */
static uint8_t class_of(uint8_t b)
{
    switch (b) {
    case 0xc0: case 0xc1: return 8;
    case 0xe0: return 10;
    case 0xed: return 4;
    case 0xf0: return 11;
    case 0xf1: case 0xf2: case 0xf3: return 6;
    case 0xf4: return 5;
    default: return b < 0x80 ? 0 : (0x83227791u >> ((b >> 2) & 0x1c)) & 15;
    }
}

#define ROW_BYTES 6
#define ROW(a, b, c, d, e, f, g, h, i, j, k, l)                              \
    {a | b << 4, c | d << 4, e | f << 4, g | h << 4, i | j << 4, k | l << 4}
#define NEXT(s, c) ((next_state[s][(c) >> 1] >> ((c) & 1) * 4) & 15)
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
#define ROW_BYTES 12
#define ROW(...) {__VA_ARGS__}
#define NEXT(s, c) next_state[s][c]
#endif

/* States: 0 accept, 1 one continuation to go, 2 two to go, 3 after E0
 * (A0..BF next: no overlong), 4 after ED (80..9F next: no surrogate),
 * 5 after F0 (90..BF next: no overlong), 6 three to go, 7 after F4 (80..8F
 * next: nothing above U+10FFFF), 8 reject (no row: the loop stops there). */
static const uint8_t next_state[8][ROW_BYTES] = {
#define R STRATA_UTF8_REJECT
    /*        0  1  2  3  4  5  6  7  8  9 10 11 */
    /* 0 */ ROW(0, R, 1, 2, 4, 7, 6, R, R, R, 3, 5),
    /* 1 */ ROW(R, 0, R, R, R, R, R, 0, R, 0, R, R),
    /* 2 */ ROW(R, 1, R, R, R, R, R, 1, R, 1, R, R),
    /* 3 */ ROW(R, R, R, R, R, R, R, 1, R, R, R, R),
    /* 4 */ ROW(R, 1, R, R, R, R, R, R, R, 1, R, R),
    /* 5 */ ROW(R, R, R, R, R, R, R, 2, R, 2, R, R),
    /* 6 */ ROW(R, 2, R, R, R, R, R, 2, R, 2, R, R),
    /* 7 */ ROW(R, 2, R, R, R, R, R, R, R, R, R, R),
#undef R
};

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
        state = NEXT(state, class_of(p[i]));
        i++;
    }
    return state;
}

int strata_utf8_valid(const void *bytes, size_t n)
{
    return strata_utf8_feed(STRATA_UTF8_ACCEPT, bytes, n) ==
           STRATA_UTF8_ACCEPT;
}
