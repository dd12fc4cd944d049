/* The plumbing the seed makers share (make_h2_seeds, make_grpc_seeds):
 * a pipe pair whose ends record what each side wrote, and seed files
 * written from such a record behind a fuzzer's two option bytes. The
 * makers differ in the conversations they hold over the pair; how bytes
 * are captured and saved is one thing, kept here so that every corpus is
 * written the same way.
 *
 * Errors end the program (a seed maker has nothing to recover): messages
 * go to stderr behind the name given to seed_start.
 */
#ifndef STRATA_FUZZ_SEED_RECORD_H
#define STRATA_FUZZ_SEED_RECORD_H

#include <stddef.h>

#include <strata/stream.h>

/* A growing byte buffer; {NULL, 0, 0} is an empty one, free(p) ends it. */
typedef struct seed_bytes {
    unsigned char *p;
    size_t n, cap;
} seed_bytes;

/* Takes the command line, PROG OUTDIR: remembers prog (for messages) and
 * OUTDIR (where seed_save writes); otherwise prints the usage and exits
 * with status 2. */
void seed_start(const char *prog, int argc, char **argv);

/* Prints "PROG: what" and exits with status 1. */
_Noreturn void seed_die(const char *what);

/* Appends n bytes of p to b. */
void seed_add(seed_bytes *b, const void *p, size_t n);

/* Writes OUTDIR/name: the option bytes b0 and b1, then b; says so on
 * stdout with the file's size. */
void seed_save(const char *name, unsigned b0, unsigned b1,
               const seed_bytes *b);

/* A connected pipe pair, 1 MiB each way (a conversation never waits for
 * room), whose end a appends to from_a every byte written into it, and b
 * to from_b. Free each end with strata_free, or with the layer above it. */
void seed_pipe_pair(strata_stream **a, strata_stream **b, seed_bytes *from_a,
                    seed_bytes *from_b);

#endif
