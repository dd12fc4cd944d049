/* See seed_record.h. */
#include "seed_record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strata/pipe.h>

static const char *prog = "seed_record";
static const char *outdir;

void seed_start(const char *name, int argc, char **argv)
{
    prog = name;
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUTDIR\n", prog);
        exit(2);
    }
    outdir = argv[1];
}

_Noreturn void seed_die(const char *what)
{
    fprintf(stderr, "%s: %s\n", prog, what);
    exit(1);
}

void seed_add(seed_bytes *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 4096;
        b->p = realloc(b->p, b->cap);
        if (!b->p)
            seed_die("out of memory");
    }
    if (n)
        memcpy(b->p + b->n, p, n);
    b->n += n;
}

void seed_save(const char *name, unsigned b0, unsigned b1,
               const seed_bytes *b)
{
    char path[4096];
    unsigned char head[2];
    FILE *f;

    head[0] = (unsigned char)b0;
    head[1] = (unsigned char)b1;
    snprintf(path, sizeof path, "%s/%s", outdir, name);
    f = fopen(path, "wb");
    if (!f || fwrite(head, 1, 2, f) != 2
        || (b->n && fwrite(b->p, 1, b->n, f) != b->n) || fclose(f) != 0)
        seed_die(path);
    printf("%s: %zu bytes\n", name, b->n + 2);
}

/* ---- the recording layer: passes everything, keeps what was sent ----- */

typedef struct tap {
    strata_stream base;
    seed_bytes *rec;
} tap;

static ssize_t tap_recv(strata_stream *s, void *buf, size_t len,
                        unsigned *flags)
{
    return strata_recv(s->lower, buf, len, flags);
}

/* Only what the pipe took is kept: a short write's rest comes again. */
static ssize_t tap_sendv(strata_stream *s, const struct iovec *iov, int n,
                         unsigned flags)
{
    ssize_t r = strata_sendv(s->lower, iov, n, flags);
    size_t left = r > 0 ? (size_t)r : 0;
    int i;

    for (i = 0; i < n && left > 0; i++) {
        size_t k = iov[i].iov_len < left ? iov[i].iov_len : left;

        seed_add(((tap *)s)->rec, iov[i].iov_base, k);
        left -= k;
    }
    return r;
}

static const strata_stream_ops tap_ops = {
    "tap", tap_recv, tap_sendv, NULL, NULL, NULL, NULL, NULL, NULL,
};

static strata_stream *tap_new(strata_stream *lower, seed_bytes *rec)
{
    tap *t = calloc(1, sizeof *t);

    if (!t)
        seed_die("out of memory");
    strata_stream_init(&t->base, &tap_ops, lower, NULL);
    t->base.heap = 1;   /* strata_free frees it (calloc'd, no allocator) */
    t->rec = rec;
    return &t->base;
}

void seed_pipe_pair(strata_stream **a, strata_stream **b, seed_bytes *from_a,
                    seed_bytes *from_b)
{
    strata_stream *pa, *pb;
    strata_pipe_opts po;

    memset(&po, 0, sizeof po);
    po.capacity = 1u << 20;
    if (strata_pipe_pair(&pa, &pb, &po, NULL) != 0)
        seed_die("pipe");
    *a = tap_new(pa, from_a);
    *b = tap_new(pb, from_b);
}
