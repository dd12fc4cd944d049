/* Property harness shared by every layer's tests.
 *
 * Random messages (sizes 0..max_size, content and sizes from a seed) are
 * pushed through a stack pair built over the pipe pair, whose schedule moves
 * 1..max_chunk bytes per call and injects random NEED codes on both sides.
 * The receiver reads with random buffer sizes and the harness asserts
 * byte-for-byte identity and, unless byte_stream is set, that STRATA_MSG_END
 * falls exactly at each message's end. Both directions run at once when
 * duplex is set. On failure the message names the seed, so a run replays.
 */
#ifndef STRATA_TEST_HARNESS_H
#define STRATA_TEST_HARNESS_H

#include <strata/stream.h>
#include <strata/pipe.h>

typedef struct strata_prop_opts {
    uint64_t seed;
    unsigned messages;        /* per direction */
    size_t max_size;          /* message sizes are 0..max_size */
    size_t min_size;          /* smallest message (e.g. 1 when 0 is invalid) */
    size_t max_fragment;      /* sender splits a message into sends of
                                 1..max_fragment bytes; 0: whole message */
    size_t max_read;          /* receiver buffer 1..max_read; 0: 4096 */
    int byte_stream;          /* check only the concatenated bytes */
    int duplex;               /* send both ways at once */
    unsigned send_flags;      /* ORed into every send (e.g. MSG_TEXT) */
    const uint8_t *alphabet;  /* bytes messages are made of; NULL: all 256 */
    size_t alphabet_len;
    strata_pipe_opts pipe;    /* schedule of the pipe pair */
    int strict_end;           /* MSG_END must come with a message's last
                                 bytes (else a later 0-byte recv may carry
                                 it, as a WebSocket's empty final frame) */
} strata_prop_opts;

/* Build a stack on each pipe end; return 0 or a status. The harness frees
 * the tops with strata_free (which must free the pipe ends below). */
typedef int (*strata_prop_build)(strata_stream *end_a, strata_stream *end_b,
                                 strata_stream **top_a, strata_stream **top_b,
                                 void *ud);
/* Optional hook called every step (send pings, change windows...). */
typedef int (*strata_prop_step)(strata_stream *top_a, strata_stream *top_b,
                                uint64_t rnd, void *ud);

/* Returns 0 on success, else -1 with a readable reason in err. */
int strata_prop_run(const strata_prop_opts *o, strata_prop_build build,
                    strata_prop_step step, void *ud, char *err, size_t errlen);

/* Seed from STRATA_SEED in the environment, else from the clock; printed. */
uint64_t strata_test_seed(void);

/* An allocator that counts live blocks and can refuse: every allocation
 * when refuse is set, or only the fail_at-th (1-based; 0: none). */
typedef struct strata_test_counter {
    long live, calls, fail_at;
    int refuse;
} strata_test_counter;

strata_allocator strata_test_allocator(strata_test_counter *c);

/* The same, also counting bytes: what is live now and the most that ever
 * was, for tests that measure a stated memory bound. Each block carries its
 * size in a small header, so it must go back through the same allocator.
 * Reset peak_bytes to bytes to measure from a point on. */
typedef struct strata_test_meter {
    strata_test_counter count;
    size_t bytes, peak_bytes;
} strata_test_meter;

strata_allocator strata_test_meter_allocator(strata_test_meter *m);

/* Nonzero under valgrind (STRATA_VALGRIND set and not "0"), where tests
 * shrink their work: the native and sanitizer runs carry the full load. */
int strata_test_valgrind(void);
/* n, or a tenth of it under valgrind (n itself when a tenth is 0). */
size_t strata_test_scaled(size_t n);

/* The folder of test certificates (tests/certs/make_certs.sh, run on the
 * first call; instant once made), or NULL when they cannot be made. */
const char *strata_test_certs(void);
/* dir/name of the certificate folder, into buf. */
const char *strata_test_cert(char *buf, size_t len, const char *name);

/* splitmix64: small, seedable, good enough for schedules. */
uint64_t strata_rand(uint64_t *state);

#endif
