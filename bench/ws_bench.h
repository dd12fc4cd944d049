/* Helpers shared by the WebSocket benchmarks (ws_framing.c, ws_echo.c):
 * clocks, medians, cpu placement, message stamps. Header-only so that each
 * benchmark stays one program with no extra library to build. */
#ifndef STRATA_WS_BENCH_H
#define STRATA_WS_BENCH_H

#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KIB 1024u
#define MAX_REPS 99

#ifndef BENCH_BUILD_TYPE
#define BENCH_BUILD_TYPE "unknown"
#endif

/* The name error messages start with; each program sets it in main. */
static const char *bench_prog = "bench";

static inline double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* User + system time of the calling thread, in nanoseconds' precision. */
static inline double thread_cpu_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

_Noreturn static inline void die(const char *what)
{
    fprintf(stderr, "%s: %s\n", bench_prog, what);
    exit(1);
}

static inline void *xmalloc(size_t n)
{
    void *p = malloc(n);

    if (p == NULL)
        die("out of memory");
    return p;
}

static inline int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* Median of n values (n >= 1); v is not reordered. */
static inline double median_of(const double *v, unsigned n)
{
    double *tmp = xmalloc(n * sizeof *tmp);
    double m;

    memcpy(tmp, v, n * sizeof *v);
    qsort(tmp, n, sizeof *tmp, cmp_double);
    m = n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
    free(tmp);
    return m;
}

/* The value below which fraction q of the n samples lie (sorts v). */
static inline double quantile_sorted(double *v, size_t n, double q)
{
    size_t i;

    qsort(v, n, sizeof *v, cmp_double);
    i = (size_t)(q * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

/* Other processes on the machine take cpu from the sides: the 1-minute
 * load average before the run says whether they were busy. */
static inline double load_now(void)
{
    double l[1];

    return getloadavg(l, 1) == 1 ? l[0] : -1;
}

static inline int optimized(void)
{
#ifdef __OPTIMIZE__
    return 1;
#else
    return 0;
#endif
}

/* The first `want` cpus this process may run on, into cpus[]; returns how
 * many there are (fewer than want on a small machine). */
static inline int usable_cpus(int *cpus, int want)
{
    cpu_set_t set;
    int k = 0;

    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return 0;
    for (int c = 0; c < CPU_SETSIZE && k < want; c++)
        if (CPU_ISSET(c, &set))
            cpus[k++] = c;
    return k;
}

/* Pin one task (0: the calling thread) to one cpu; -1 leaves it alone. */
static inline int pin_task(pid_t tid, int cpu)
{
    cpu_set_t set;

    if (cpu < 0)
        return 0;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(tid, sizeof set, &set);
}

/* splitmix64: payload bytes and masking keys. Both sides of a comparison
 * draw their keys from it, so neither pays for the OS's randomness. */
static inline uint64_t rng_next(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline void rng_fill(uint64_t *x, uint8_t *buf, size_t n)
{
    while (n > 0) {
        uint64_t v = rng_next(x);
        size_t k = n < sizeof v ? n : sizeof v;

        memcpy(buf, &v, k);
        buf += k;
        n -= k;
    }
}

/* Every message starts with an 8-byte sequence stamp and ends with the
 * source's last (up to) 8 bytes: together the whole of a 16-byte message.
 * They prove order, count and boundaries, and since they are masked on the
 * wire with a fresh key per frame they also catch a wrong unmask. */
#define STAMP_LEN 8

static inline void stamp_put(uint8_t *msg, size_t len, uint64_t seq)
{
    memcpy(msg, &seq, len < STAMP_LEN ? len : STAMP_LEN);
}

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof v);
    return v;
}

/* Whether a received message is message `seq` made from `src`. It runs
 * once per message on both sides of a comparison: word compares, no libc
 * call, so that it costs the measurement next to nothing. */
static inline int stamp_ok(const uint8_t *got, const uint8_t *src,
                           size_t len, uint64_t seq)
{
    uint8_t want[STAMP_LEN];
    size_t k;

    if (len >= 2 * STAMP_LEN)
        return load64(got) == seq &&
               load64(got + len - STAMP_LEN) == load64(src + len - STAMP_LEN);
    memcpy(want, &seq, sizeof want);
    k = len < STAMP_LEN ? len : STAMP_LEN;
    if (memcmp(got, want, k) != 0)
        return 0;
    k = len - k; /* the tail behind the stamp, shorter than a stamp */
    return memcmp(got + len - k, src + len - k, k) == 0;
}

static inline const char *size_name(size_t size)
{
    static char buf[32];

    if (size >= KIB && size % KIB == 0)
        snprintf(buf, sizeof buf, "%zu KiB", size / KIB);
    else
        snprintf(buf, sizeof buf, "%zu B", size);
    return buf;
}

#endif
