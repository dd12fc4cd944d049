/* bench_tls: TLS 1.3 over loopback, strata's TLS layer against a plain
 * wolfSSL program, in the same run.
 *
 * Bulk: for each cipher suite (TLS13-AES128-GCM-SHA256,
 * TLS13-CHACHA20-POLY1305-SHA256) a client thread sends the same bytes in
 * 64 KiB writes to a server thread that receives and counts them, on a
 * fresh loopback connection per measurement, through
 *  - plain wolfSSL: wolfSSL_set_fd on blocking sockets, wolfSSL_write /
 *    wolfSSL_read, what a program without strata would do;
 *  - strata on both ends: strata_tls_new over a strata socket stream
 *    (non-blocking), strata_write_all on the sending side, strata_recv on
 *    the receiving side and strata_wait after NEED codes.
 * The handshake is done before the clock starts. Measurements alternate
 * (which variant goes first too); each row prints the median GB/s, each
 * side's cpu time and the ratio of the medians (strata / plain), and the
 * cpu seconds per GB of both sides together: time another process held a
 * cpu is not in a thread's cpu time, so on a shared machine that view
 * moves less than the wall clock.
 *
 * Handshakes: N sequential full TLS 1.3 handshakes (ECDSA P-256
 * certificate, verified by the client with its name), each on a new TCP
 * connection, closed with close_notify both ways; handshakes per second
 * for both variants and the ratio.
 *
 * Both variants get WOLFSSL_CTXs set up the way strata_tls_config makes
 * them (TLS 1.3 only here, session tickets on, the suite under test), and
 * sockets made the same way (TCP_NODELAY, as strata's socket stream sets
 * it), so that they differ only in the layer on top of the descriptor.
 * It prints which wolfSSL it runs against (headers, library file, AES-NI)
 * so that runs against Debian's build and an AES-NI build are told apart.
 * The exit code is 0 whatever the goals say (benchmarks report, tests
 * assert); 1 only when a transfer or handshake failed or data was wrong.
 */
/* pthread_setaffinity_np, pthread_setname_np: Linux's. */
#define _GNU_SOURCE

#include <strata/blocking.h>
#include <strata/socket.h>
#include <strata/stream.h>
#include <strata/tls.h>

#include "ws_bench.h" /* clocks, medians, cpu placement, load average */

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/version.h>
#include <wolfssl/wolfcrypt/ecc.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#define CHUNK (64 * KIB)       /* every write, and every receive buffer */
#define WAIT_MS 30000          /* a stalled transfer fails, not hangs */
#define PEER_NAME "localhost"  /* SNI and the name the client verifies */
#define AES_GOAL_GBS 1.0       /* AES-128-GCM through strata with AES-NI */
#define RATIO_GOAL 0.95        /* strata / plain */
#define HS_WARMUP 2            /* untimed handshakes per thread first */

#ifndef BENCH_CERTS_SCRIPT
#define BENCH_CERTS_SCRIPT ""
#endif

#if defined(WOLFSSL_AESNI)
#define HAVE_AESNI 1
#else
#define HAVE_AESNI 0
#endif
#if defined(USE_INTEL_SPEEDUP)
#define HAVE_INTELASM 1
#else
#define HAVE_INTELASM 0
#endif

enum { PLAIN, STRATA, N_VARIANTS };
static const char *const variant_names[] = {"plain", "strata"};

static const char *const suite_names[] = {
    "TLS13-AES128-GCM-SHA256",
    "TLS13-CHACHA20-POLY1305-SHA256",
};
#define N_SUITES 2
#define HS_SUITE 0 /* the handshakes negotiate AES-128-GCM */

typedef struct options {
    unsigned reps;
    unsigned mib;        /* MiB per bulk measurement */
    unsigned handshakes; /* handshakes per measurement */
    int quick, verbose, pin;
    int suite;           /* -1: every suite, else an index */
    int only;            /* -1: both variants, else one (for profilers) */
    int bulk, hs;        /* which parts run */
    const char *certs;   /* NULL: make them in a temporary folder */
} options;

typedef struct bench {
    options opt;
    int lfd, port;
    int cpu[2];          /* client's and server's cpu, -1: not pinned */
    char cert[PATH_MAX], key[PATH_MAX], ca[PATH_MAX];
    char tmpdir[PATH_MAX]; /* "" unless we made the certificates */
} bench;

/* The contexts of one cipher suite: made once, shared by connections. */
typedef struct suite_ctx {
    const char *name;
    WOLFSSL_CTX *ctx[2];       /* plain: [0] client, [1] server */
    strata_tls_config *cfg[2]; /* strata: the same */
} suite_ctx;

/* One measurement: wall time and each thread's cpu time. */
typedef struct sample {
    double wall, cpu_c, cpu_s;
} sample;

/* Medians of one row (a suite's bulk rows or the handshakes). */
typedef struct result {
    double rate[N_VARIANTS];   /* GB/s or handshakes/s */
    sample med[N_VARIANTS];
    double ratio;              /* strata / plain of the rates */
    /* cpu seconds (client + server) per GB or per handshake, and
     * plain / strata of them: time another process held a cpu is not in
     * a thread's cpu time, so on a busy machine this moves less */
    double cpu_per[N_VARIANTS];
    double cpu_ratio;
} result;

/* ---- small helpers ---- */

static int is_need(long r)
{
    return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE;
}

static unsigned want_of(long r)
{
    return r == STRATA_NEED_READ ? STRATA_WANT_READ : STRATA_WANT_WRITE;
}

static void nodelay(int fd)
{
    int one = 1;

    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* The thread-level pin and a name for perf and top. */
static void pin_thread(int cpu, const char *name)
{
    (void)pin_task(0, cpu);
    pthread_setname_np(pthread_self(), name);
}

/* With FP_ECC (Debian's build has it) wolfSSL keeps a per-thread cache
 * of ECC fixed-point tables that only the thread itself can free: every
 * thread that did a handshake calls this before it ends. */
static void thread_end(void)
{
#ifdef FP_ECC
    wc_ecc_fp_free();
#endif
}

/* ---- contexts: the same settings for both variants ---- */

/* What strata_tls_config_new and the setters bench_tls uses do to their
 * WOLFSSL_CTX (protos/tls_config.c), spelled out for the plain program. */
static WOLFSSL_CTX *plain_ctx(int server, const char *suite, const bench *b)
{
    WOLFSSL_CTX *ctx = wolfSSL_CTX_new(server ? wolfSSLv23_server_method()
                                              : wolfSSLv23_client_method());
    int ok = ctx != NULL;

    ok = ok && wolfSSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ==
                   WOLFSSL_SUCCESS;
    ok = ok && wolfSSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) ==
                   WOLFSSL_SUCCESS;
    ok = ok && wolfSSL_CTX_UseSessionTicket(ctx) == WOLFSSL_SUCCESS;
    ok = ok && wolfSSL_CTX_set_cipher_list(ctx, suite) == WOLFSSL_SUCCESS;
    if (ok && server)
        ok = wolfSSL_CTX_use_certificate_chain_file(ctx, b->cert) ==
                 WOLFSSL_SUCCESS &&
             wolfSSL_CTX_use_PrivateKey_file(ctx, b->key,
                                             WOLFSSL_FILETYPE_PEM) ==
                 WOLFSSL_SUCCESS;
    else if (ok)
        ok = wolfSSL_CTX_load_verify_locations(ctx, b->ca, NULL) ==
             WOLFSSL_SUCCESS;
    if (!ok)
        die("cannot set up a plain wolfSSL context");
    wolfSSL_CTX_set_verify(ctx, server ? WOLFSSL_VERIFY_NONE
                                       : WOLFSSL_VERIFY_PEER, NULL);
    return ctx;
}

static strata_tls_config *strata_cfg(int server, const char *suite,
                                     const bench *b)
{
    strata_tls_config *c = strata_tls_config_new(
        server ? STRATA_TLS_SERVER : STRATA_TLS_CLIENT, NULL);
    int r;

    if (c == NULL)
        die("strata_tls_config_new failed");
    r = strata_tls_config_versions(c, STRATA_TLS_1_3, STRATA_TLS_1_3);
    if (r == 0)
        r = strata_tls_config_ciphers(c, suite);
    if (r == 0)
        r = server ? strata_tls_config_cert_file(c, b->cert, b->key)
                   : strata_tls_config_ca_file(c, b->ca, NULL);
    if (r != 0) {
        fprintf(stderr, "bench_tls: strata config: %s\n",
                strata_tls_config_reason(c));
        exit(1);
    }
    return c;
}

static void suite_init(suite_ctx *sc, const char *name, const bench *b)
{
    sc->name = name;
    for (int server = 0; server < 2; server++) {
        sc->ctx[server] = plain_ctx(server, name, b);
        sc->cfg[server] = strata_cfg(server, name, b);
    }
}

static void suite_free(suite_ctx *sc)
{
    for (int server = 0; server < 2; server++) {
        wolfSSL_CTX_free(sc->ctx[server]);
        strata_tls_config_free(sc->cfg[server]);
    }
}

/* ---- one connection, either variant ----
 * The calls a program of each kind makes; a switch per 64 KiB costs
 * nothing next to the cryptography. */

typedef struct conn {
    int variant;
    int fd;              /* plain: the blocking descriptor */
    WOLFSSL *ssl;        /* plain */
    strata_stream *s;    /* strata: tls -> socket */
} conn;

static int plain_open(conn *c, const suite_ctx *sc, int server, int fd)
{
    nodelay(fd); /* as strata_socket_new does for the other variant */
    c->ssl = wolfSSL_new(sc->ctx[server]);
    if (c->ssl == NULL || wolfSSL_set_fd(c->ssl, fd) != WOLFSSL_SUCCESS)
        return -1;
    if (server)
        return 0;
    /* what strata's client does with opts.server_name */
    if (wolfSSL_UseSNI(c->ssl, WOLFSSL_SNI_HOST_NAME, PEER_NAME,
                       (unsigned short)strlen(PEER_NAME)) != WOLFSSL_SUCCESS ||
        wolfSSL_check_domain_name(c->ssl, PEER_NAME) != WOLFSSL_SUCCESS)
        return -1;
    return 0;
}

static int strata_open(conn *c, const suite_ctx *sc, int server, int fd)
{
    strata_tls_opts o = {server ? NULL : PEER_NAME, NULL, 0};
    strata_stream *sock = strata_socket_new(fd, NULL); /* non-blocking */

    if (sock == NULL)
        return -1;
    c->s = strata_tls_new(sock, sc->cfg[server], &o, NULL);
    if (c->s == NULL) {
        c->s = sock; /* conn_free frees it and its descriptor */
        return -1;
    }
    return 0;
}

/* Take over a connected descriptor (closed by conn_free). */
static int conn_open(conn *c, int variant, const suite_ctx *sc, int server,
                     int fd)
{
    memset(c, 0, sizeof *c);
    c->variant = variant;
    c->fd = fd;
    return variant == PLAIN ? plain_open(c, sc, server, fd)
                            : strata_open(c, sc, server, fd);
}

/* Retry a strata call after waiting for what its NEED code names. */
static int strata_retry(strata_stream *s, long r)
{
    return strata_wait(s, want_of(r), WAIT_MS);
}

static int conn_handshake(conn *c, int server)
{
    int r;

    if (c->variant == PLAIN) {
        r = server ? wolfSSL_accept(c->ssl) : wolfSSL_connect(c->ssl);
        return r == WOLFSSL_SUCCESS ? 0 : -1;
    }
    while (is_need(r = strata_tls_handshake(c->s)))
        if (strata_retry(c->s, r) != 0)
            return -1;
    return r;
}

/* Send all len bytes. */
static int conn_write(conn *c, const void *buf, size_t len)
{
    if (c->variant == PLAIN)
        return wolfSSL_write(c->ssl, buf, (int)len) == (int)len ? 0 : -1;
    return strata_write_all(c->s, buf, len, 0, WAIT_MS) == (ssize_t)len
               ? 0 : -1;
}

/* Bytes received (> 0), 0 at the peer's close_notify, or -1. */
static long conn_read(conn *c, void *buf, size_t len)
{
    long r;

    if (c->variant == PLAIN) {
        r = wolfSSL_read(c->ssl, buf, (int)len);
        if (r > 0)
            return r;
        return wolfSSL_get_error(c->ssl, (int)r) == WOLFSSL_ERROR_ZERO_RETURN
                   ? 0 : -1;
    }
    for (;;) {
        r = strata_recv(c->s, buf, len, NULL);
        if (r > 0)
            return r;
        if (r == STRATA_EOF)
            return 0;
        if (!is_need(r) || strata_retry(c->s, r) != 0)
            return -1;
    }
}

/* Send close_notify and end our direction of the transport. */
static int conn_close_notify(conn *c)
{
    int r;

    if (c->variant == PLAIN) {
        r = wolfSSL_shutdown(c->ssl);
        if (r != WOLFSSL_SUCCESS && r != WOLFSSL_SHUTDOWN_NOT_DONE)
            return -1;
        return shutdown(c->fd, SHUT_WR); /* what strata_shutdown does */
    }
    while (is_need(r = strata_shutdown(c->s)))
        if (strata_retry(c->s, r) != 0)
            return -1;
    return r;
}

/* Read until the peer's close_notify, discarding what comes. */
static int conn_drain(conn *c)
{
    char buf[256];
    long r;

    while ((r = conn_read(c, buf, sizeof buf)) > 0)
        ;
    return (int)r;
}

static void conn_free(conn *c)
{
    if (c->variant == PLAIN) {
        wolfSSL_free(c->ssl);
        close(c->fd);
    } else if (c->s != NULL) {
        strata_free(c->s); /* closes the descriptor */
    } else {
        close(c->fd);
    }
}

/* ---- loopback connections ---- */

static int tcp_connect_fd(int port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        die("connect to the loopback listener failed");
    return fd;
}

/* A blocking descriptor for the next connection on the listener (which
 * strata_tcp_listen made non-blocking; accept does not inherit that). */
static int tcp_accept_fd(int lfd)
{
    struct pollfd p = {lfd, POLLIN, 0};
    int fd;

    if (poll(&p, 1, WAIT_MS) != 1)
        die("the loopback listener did not see the connection");
    fd = accept(lfd, NULL, NULL);
    if (fd < 0)
        die("accept failed");
    return fd;
}

/* ---- bulk: a client thread sends, a server thread receives ---- */

typedef struct side {
    const bench *b;
    const suite_ctx *sc;
    int variant, server, fd;
    pthread_barrier_t *sync; /* start after both handshakes; end together */
    uint64_t chunks;         /* 64 KiB writes to make */
    uint64_t bytes, bad;     /* received; stamps that did not match */
    double t0, t1, cpu;
    const char *failed;      /* the step that failed, NULL if none */
} side;

/* Each 64 KiB write starts with its index (8 bytes, host order): the
 * receiver checks them wherever the reads' boundaries fall, O(1) per
 * read, so a fast number cannot be a wrong one. */
static void account(side *r, const uint8_t *p, size_t n)
{
    while (n > 0) {
        size_t pos = (size_t)(r->bytes % CHUNK);
        size_t k = CHUNK - pos < n ? CHUNK - pos : n;

        if (pos < STAMP_LEN) {
            uint64_t seq = r->bytes / CHUNK;
            uint8_t want[STAMP_LEN];
            size_t m = STAMP_LEN - pos < k ? STAMP_LEN - pos : k;

            memcpy(want, &seq, sizeof want);
            r->bad += memcmp(p, want + pos, m) != 0;
        }
        r->bytes += k;
        p += k;
        n -= k;
    }
}

static const char *send_all(side *w, conn *c)
{
    uint8_t *buf = xmalloc(CHUNK);
    const char *failed = NULL;

    for (size_t i = 0; i < CHUNK; i++)
        buf[i] = (uint8_t)(i * 7 + 1);
    for (uint64_t seq = 0; seq < w->chunks && failed == NULL; seq++) {
        memcpy(buf, &seq, sizeof seq);
        if (conn_write(c, buf, CHUNK) != 0)
            failed = "write";
    }
    if (failed == NULL && conn_close_notify(c) != 0)
        failed = "close_notify";
    free(buf);
    return failed;
}

static const char *recv_all(side *r, conn *c)
{
    uint8_t *buf = xmalloc(CHUNK);
    long n;

    memset(buf, 0, CHUNK); /* fault the pages in before timing */
    while ((n = conn_read(c, buf, CHUNK)) > 0)
        account(r, buf, (size_t)n);
    free(buf);
    return n == 0 ? NULL : "read";
}

static void *bulk_thread(void *arg)
{
    side *t = arg;
    conn c;
    double c0;

    pin_thread(t->b->cpu[t->server], t->server ? "tls-server" : "tls-client");
    if (conn_open(&c, t->variant, t->sc, t->server, t->fd) != 0)
        t->failed = "setup";
    else if (conn_handshake(&c, t->server) != 0)
        t->failed = "handshake";
    pthread_barrier_wait(t->sync);
    t->t0 = now_s();
    c0 = thread_cpu_s();
    if (t->failed == NULL)
        t->failed = t->server ? recv_all(t, &c) : send_all(t, &c);
    t->cpu = thread_cpu_s() - c0;
    t->t1 = now_s();
    /* Close only when both are done: closing with unread bytes (the
     * server's session ticket) resets the connection. */
    pthread_barrier_wait(t->sync);
    conn_free(&c);
    thread_end();
    return NULL;
}

static int side_failed(const side *s, int variant, const char *what)
{
    if (s->failed == NULL)
        return 0;
    fprintf(stderr, "bench_tls: %s %s: %s %s failed\n", variant_names[variant],
            what, s->server ? "server" : "client", s->failed);
    return 1;
}

/* Run both sides of one measurement on two threads. */
static void run_pair(side *cl, side *sv, void *(*fn)(void *))
{
    pthread_barrier_t sync;
    pthread_t tc, ts;

    pthread_barrier_init(&sync, NULL, 2);
    cl->sync = sv->sync = &sync;
    if (pthread_create(&tc, NULL, fn, cl) != 0 ||
        pthread_create(&ts, NULL, fn, sv) != 0)
        die("pthread_create failed");
    pthread_join(tc, NULL);
    pthread_join(ts, NULL);
    pthread_barrier_destroy(&sync);
}

static void sides_init(side *cl, side *sv, const bench *b,
                       const suite_ctx *sc, int variant)
{
    memset(cl, 0, sizeof *cl);
    memset(sv, 0, sizeof *sv);
    cl->b = sv->b = b;
    cl->sc = sv->sc = sc;
    cl->variant = sv->variant = variant;
    sv->server = 1;
}

static sample sample_of(const side *cl, const side *sv)
{
    sample s;

    s.wall = (sv->t1 > cl->t1 ? sv->t1 : cl->t1) -
             (sv->t0 < cl->t0 ? sv->t0 : cl->t0);
    s.cpu_c = cl->cpu;
    s.cpu_s = sv->cpu;
    return s;
}

static int bulk_once(const bench *b, const suite_ctx *sc, int variant,
                     uint64_t chunks, sample *out)
{
    side cl, sv;
    int bad;

    sides_init(&cl, &sv, b, sc, variant);
    cl.chunks = chunks;
    cl.fd = tcp_connect_fd(b->port);
    sv.fd = tcp_accept_fd(b->lfd);
    run_pair(&cl, &sv, bulk_thread);
    *out = sample_of(&cl, &sv);
    bad = side_failed(&cl, variant, sc->name) |
          side_failed(&sv, variant, sc->name);
    if (!bad && (sv.bytes != chunks * CHUNK || sv.bad != 0)) {
        fprintf(stderr, "bench_tls: %s %s delivered wrong data: %llu of "
                "%llu bytes, %llu bad stamps\n", variant_names[variant],
                sc->name, (unsigned long long)sv.bytes,
                (unsigned long long)(chunks * CHUNK),
                (unsigned long long)sv.bad);
        bad = 1;
    }
    return bad ? -1 : 0;
}

/* ---- handshakes: N connections, one after the other ---- */

static const char *client_hs(side *t)
{
    conn c;
    const char *failed = NULL;

    if (conn_open(&c, t->variant, t->sc, 0,
                  tcp_connect_fd(t->b->port)) != 0)
        failed = "setup";
    else if (conn_handshake(&c, 0) != 0)
        failed = "handshake";
    else if (conn_close_notify(&c) != 0)
        failed = "close_notify";
    else if (conn_drain(&c) != 0) /* the ticket, then close_notify */
        failed = "close";
    conn_free(&c);
    return failed;
}

static const char *server_hs(side *t)
{
    conn c;
    const char *failed = NULL;

    if (conn_open(&c, t->variant, t->sc, 1, tcp_accept_fd(t->b->lfd)) != 0)
        failed = "setup";
    else if (conn_handshake(&c, 1) != 0)
        failed = "handshake";
    else if (conn_drain(&c) != 0)
        failed = "close";
    else if (conn_close_notify(&c) != 0)
        failed = "close_notify";
    conn_free(&c);
    return failed;
}

static void handshakes(side *t, uint64_t n)
{
    for (uint64_t i = 0; i < n && t->failed == NULL; i++)
        t->failed = t->server ? server_hs(t) : client_hs(t);
}

static void *hs_thread(void *arg)
{
    side *t = arg;
    double c0;

    pin_thread(t->b->cpu[t->server], t->server ? "tls-server" : "tls-client");
    /* Untimed first: a new thread's first handshakes fill wolfSSL's
     * per-thread ECC cache (FP_ECC), which a long-lived program has warm. */
    handshakes(t, HS_WARMUP);
    pthread_barrier_wait(t->sync);
    t->t0 = now_s();
    c0 = thread_cpu_s();
    handshakes(t, t->chunks);
    t->cpu = thread_cpu_s() - c0;
    t->t1 = now_s();
    thread_end();
    return NULL;
}

static int hs_once(const bench *b, const suite_ctx *sc, int variant,
                   sample *out)
{
    side cl, sv;

    sides_init(&cl, &sv, b, sc, variant);
    cl.chunks = sv.chunks = b->opt.handshakes;
    run_pair(&cl, &sv, hs_thread);
    *out = sample_of(&cl, &sv);
    /* A failed side leaves its peer waiting: the other thread then fails
     * on its own timeout or the reset, and both are reported. */
    return side_failed(&cl, variant, "handshakes") |
                   side_failed(&sv, variant, "handshakes")
               ? -1 : 0;
}

/* ---- rows: interleaved repetitions and their medians ---- */

/* One measurement; *units is what it moved: GB, or handshakes. */
typedef int (*measure_fn)(const bench *b, const suite_ctx *sc, int variant,
                          sample *out, double *units);

static int bulk_measure(const bench *b, const suite_ctx *sc, int variant,
                        sample *out, double *units)
{
    uint64_t chunks = (uint64_t)b->opt.mib * KIB * KIB / CHUNK;

    *units = (double)(chunks * CHUNK) / 1e9;
    return bulk_once(b, sc, variant, chunks, out);
}

static int hs_measure(const bench *b, const suite_ctx *sc, int variant,
                      sample *out, double *units)
{
    *units = (double)b->opt.handshakes;
    return hs_once(b, sc, variant, out);
}

static sample median_sample(const sample *s, unsigned n)
{
    double wall[MAX_REPS], cc[MAX_REPS], cs[MAX_REPS];
    sample m;

    for (unsigned i = 0; i < n; i++) {
        wall[i] = s[i].wall;
        cc[i] = s[i].cpu_c;
        cs[i] = s[i].cpu_s;
    }
    m.wall = median_of(wall, n);
    m.cpu_c = median_of(cc, n);
    m.cpu_s = median_of(cs, n);
    return m;
}

static int measure_row(const bench *b, const suite_ctx *sc, measure_fn fn,
                       const char *unit, result *res)
{
    unsigned reps = b->opt.reps;
    sample s[N_VARIANTS][MAX_REPS];
    double rate[N_VARIANTS][MAX_REPS], cpu[N_VARIANTS][MAX_REPS], units;

    for (unsigned i = 0; i < reps; i++) {
        for (int k = 0; k < N_VARIANTS; k++) {
            /* Alternate which goes first so that neither always inherits
             * the other's warm (or dirty) caches. */
            int v = (int)((unsigned)k ^ (i & 1u));

            if (b->opt.only >= 0 && v != b->opt.only)
                continue;
            if (fn(b, sc, v, &s[v][i], &units) != 0)
                return -1;
            rate[v][i] = units / s[v][i].wall;
            cpu[v][i] = (s[v][i].cpu_c + s[v][i].cpu_s) / units;
            if (b->opt.verbose)
                printf("  rep %u %-6s %8.3f %s (client %.3fs server %.3fs "
                       "cpu, %.3fs wall)\n", i, variant_names[v], rate[v][i],
                       unit, s[v][i].cpu_c, s[v][i].cpu_s, s[v][i].wall);
        }
    }
    memset(res, 0, sizeof *res);
    for (int v = 0; v < N_VARIANTS; v++) {
        if (b->opt.only >= 0 && v != b->opt.only)
            continue;
        res->rate[v] = median_of(rate[v], reps);
        res->med[v] = median_sample(s[v], reps);
        res->cpu_per[v] = median_of(cpu[v], reps);
    }
    if (b->opt.only < 0) {
        res->ratio = res->rate[STRATA] / res->rate[PLAIN];
        res->cpu_ratio = res->cpu_per[PLAIN] / res->cpu_per[STRATA];
    }
    return 0;
}

/* ---- output ---- */

/* Which thread kept its cpu busy for (nearly) the whole time: that one
 * set the pace. Neither: both waited, for each other or for a cpu that
 * another process held. */
static const char *limit_of(const sample *m)
{
    if (m->cpu_c >= 0.85 * m->wall && m->cpu_c >= m->cpu_s)
        return "client-bound";
    if (m->cpu_s >= 0.85 * m->wall)
        return "server-bound";
    return "neither cpu-bound";
}

static const char *verdict(double v, double goal)
{
    return v == 0 ? "not measured" : v >= goal ? "met" : "MISSED";
}

static void print_side(int v, const result *r, const char *fmt,
                       const char *unit)
{
    const sample *m = &r->med[v];

    if (r->rate[v] == 0)
        return; /* not measured (--only) */
    printf("  %-6s ", variant_names[v]);
    printf(fmt, r->rate[v]);
    printf(" %s  (cpu client %.3fs server %.3fs, wall %.3fs, %s)\n", unit,
           m->cpu_c, m->cpu_s, m->wall, limit_of(m));
}

/* The cpu view: less moved by other processes than the wall clock. */
static void print_cpu(const result *r, const char *per, double scale,
                      const char *unit)
{
    if (r->cpu_ratio == 0)
        return;
    printf("  cpu per %s, client + server: plain %.3f %s, strata %.3f %s, "
           "plain/strata %.3f\n", per, r->cpu_per[PLAIN] * scale, unit,
           r->cpu_per[STRATA] * scale, unit, r->cpu_ratio);
}

static void print_bulk(const suite_ctx *sc, const result *r)
{
    printf("%s, 64 KiB writes:\n", sc->name);
    print_side(PLAIN, r, "%6.3f", "GB/s");
    print_side(STRATA, r, "%6.3f", "GB/s");
    printf("  ratio strata/plain %.3f (goal >= %.2f %s)\n", r->ratio,
           RATIO_GOAL, verdict(r->ratio, RATIO_GOAL));
    print_cpu(r, "GB", 1.0, "s");
    if (strcmp(sc->name, suite_names[0]) == 0 && HAVE_AESNI)
        printf("  strata %.3f GB/s (goal >= %.1f GB/s with AES-NI %s)\n",
               r->rate[STRATA], AES_GOAL_GBS,
               verdict(r->rate[STRATA], AES_GOAL_GBS));
    else if (strcmp(sc->name, suite_names[0]) == 0)
        printf("  (this wolfSSL has no AES-NI: the %.1f GB/s goal is for "
               "an AES-NI build, see bench/tls/run_aesni.sh)\n",
               AES_GOAL_GBS);
    fflush(stdout);
}

static void print_hs(const result *r)
{
    printf("handshakes (TLS 1.3 full, ECDSA P-256, %s, new TCP connection "
           "each):\n", suite_names[HS_SUITE]);
    print_side(PLAIN, r, "%8.1f", "handshakes/s");
    print_side(STRATA, r, "%8.1f", "handshakes/s");
    printf("  ratio strata/plain %.3f (goal >= %.2f %s)\n", r->ratio,
           RATIO_GOAL, verdict(r->ratio, RATIO_GOAL));
    print_cpu(r, "handshake", 1e3, "ms");
    fflush(stdout);
}

/* The file the dynamic linker loaded libwolfssl from: /proc/self/maps
 * tells Debian's copy from a private build with the same soname. */
static void loaded_wolfssl(char *out, size_t n)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[PATH_MAX + 128];

    snprintf(out, n, "linked statically or not found");
    if (f == NULL)
        return;
    while (fgets(line, sizeof line, f) != NULL) {
        char *p = strchr(line, '/');

        if (p != NULL && strstr(p, "libwolfssl") != NULL) {
            p[strcspn(p, "\n")] = '\0';
            snprintf(out, n, "%s", p);
            break;
        }
    }
    fclose(f);
}

static void print_header(const bench *b)
{
    char lib[PATH_MAX];
    double load = load_now();

    loaded_wolfssl(lib, sizeof lib);
    printf("bench_tls: %u reps x %u MiB per suite and variant, %u handshakes"
           " per rep, %ld cpus", b->opt.reps, b->opt.mib, b->opt.handshakes,
           sysconf(_SC_NPROCESSORS_ONLN));
    if (b->cpu[0] >= 0)
        printf(" (client on cpu %d, server on cpu %d)", b->cpu[0], b->cpu[1]);
    printf(", 1 GB = 1e9 bytes%s\n", b->opt.quick ? ", quick smoke run" : "");
    printf("wolfSSL: headers %s, library %s (%s)\n",
           LIBWOLFSSL_VERSION_STRING, wolfSSL_lib_version(), lib);
    printf("wolfSSL: AES-NI %s (WOLFSSL_AESNI in <wolfssl/options.h>), "
           "intelasm %s (USE_INTEL_SPEEDUP)\n",
           HAVE_AESNI ? "compiled in" : "NOT compiled in",
           HAVE_INTELASM ? "compiled in" : "not compiled in");
    printf("build: %s%s; load average before the run %.2f%s\n",
           BENCH_BUILD_TYPE,
           optimized() ? "" : " (this file unoptimized: numbers are "
                              "not meaningful)",
           load, load > 0.5 ? " (other processes compete for the cpus: "
                              "expect noise)" : "");
    printf("plain: wolfSSL_set_fd, blocking sockets, wolfSSL_write/_read; "
           "strata: tls -> socket (non-blocking) on both ends, "
           "strata_write_all / strata_recv + strata_wait\n");
    fflush(stdout);
}

/* ---- certificates ---- */

/* snprintf that refuses to cut a path or a command short. */
static void format(char *out, size_t n, const char *fmt, const char *a,
                   const char *b)
{
    int r = snprintf(out, n, fmt, a, b);

    if (r < 0 || (size_t)r >= n)
        die("a path is too long");
}

static void cert_paths(bench *b, const char *dir)
{
    format(b->cert, sizeof b->cert, "%s/%s", dir, "server.pem");
    format(b->key, sizeof b->key, "%s/%s", dir, "server.key");
    format(b->ca, sizeof b->ca, "%s/%s", dir, "ca.pem");
}

/* --certs DIR, or tests/certs/make_certs.sh into a temporary folder
 * (removed at the end) as the tests do. */
static void certs_init(bench *b)
{
    const char *tmp = getenv("TMPDIR");
    char cmd[3 * PATH_MAX], dir[PATH_MAX];

    b->tmpdir[0] = '\0';
    if (b->opt.certs != NULL) {
        cert_paths(b, b->opt.certs);
        return;
    }
    if (BENCH_CERTS_SCRIPT[0] == '\0')
        die("no certificates: pass --certs DIR "
            "(bash tests/certs/make_certs.sh DIR makes them)");
    format(b->tmpdir, sizeof b->tmpdir, "%s/%s",
           tmp != NULL && *tmp != '\0' ? tmp : "/tmp", "bench_tls.XXXXXX");
    if (mkdtemp(b->tmpdir) == NULL)
        die("mkdtemp failed");
    format(dir, sizeof dir, "%s/%s", b->tmpdir, "certs");
    format(cmd, sizeof cmd, "bash '%s' '%s' >/dev/null", BENCH_CERTS_SCRIPT,
           dir);
    if (system(cmd) != 0)
        die("tests/certs/make_certs.sh failed (it needs the openssl CLI)");
    cert_paths(b, dir);
}

static void certs_free(const bench *b)
{
    char cmd[PATH_MAX + 32];

    if (b->tmpdir[0] == '\0')
        return;
    format(cmd, sizeof cmd, "rm -rf '%s'%s", b->tmpdir, "");
    if (system(cmd) != 0)
        fprintf(stderr, "bench_tls: could not remove %s\n", b->tmpdir);
}

/* ---- command line ---- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bench_tls [options]\n"
            "\n"
            "TLS 1.3 over loopback, strata's TLS layer (tls -> socket on\n"
            "both ends) against a plain wolfSSL program (wolfSSL_set_fd on\n"
            "blocking sockets), in one run: bulk GB/s with 64 KiB writes for\n"
            "AES-128-GCM and ChaCha20-Poly1305, and full handshakes per\n"
            "second. Medians of interleaved reps, ratio strata / plain.\n"
            "Goals: ratio >= 0.95; AES-128-GCM through strata >= 1 GB/s\n"
            "with an AES-NI wolfSSL (bench/tls/run_aesni.sh).\n"
            "\n"
            "  --quick         smoke run: 1 rep, 8 MiB, 20 handshakes\n"
            "  --reps N        measurements per variant and row (7)\n"
            "  --mib N         MiB per bulk measurement (256)\n"
            "  --handshakes N  handshakes per measurement (200)\n"
            "  --certs DIR     server.pem, server.key, ca.pem from DIR\n"
            "                  (default: made by tests/certs/make_certs.sh\n"
            "                  in a temporary folder)\n"
            "  --suite aes|chacha  only that suite's bulk row\n"
            "  --bulk-only, --handshakes-only\n"
            "  --only plain|strata  measure one variant (for profilers)\n"
            "  --verbose       print every measurement\n"
            "  --no-pin        let the scheduler place client and server\n"
            "                  (default: pinned to the first two cpus)\n"
            "  --help          this text\n"
            "\n"
            "Exit code 0 whatever the goals; 1 if a transfer or a handshake\n"
            "failed or delivered wrong data.\n");
}

static unsigned parse_count(const char *s, unsigned max)
{
    char *end;
    unsigned long v = s != NULL ? strtoul(s, &end, 10) : 0;

    if (s == NULL || *end != '\0' || v == 0 || v > max) {
        usage(stderr);
        exit(2);
    }
    return (unsigned)v;
}

static int parse_suite(const char *s)
{
    if (s != NULL && strcmp(s, "aes") == 0)
        return 0;
    if (s != NULL && strcmp(s, "chacha") == 0)
        return 1;
    usage(stderr);
    exit(2);
}

static int parse_variant(const char *s)
{
    for (int v = 0; v < N_VARIANTS; v++)
        if (s != NULL && strcmp(s, variant_names[v]) == 0)
            return v;
    usage(stderr);
    exit(2);
}

static void defaults(options *o)
{
    memset(o, 0, sizeof *o);
    o->reps = 7;
    o->mib = 256;
    o->handshakes = 200;
    o->pin = 1;
    o->suite = -1;
    o->only = -1;
    o->bulk = o->hs = 1;
}

static void parse_args(int argc, char **argv, options *o)
{
    defaults(o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--quick") == 0) {
            o->quick = 1;
            o->reps = 1;
            o->mib = 8;
            o->handshakes = 20;
        } else if (strcmp(a, "--reps") == 0) {
            o->reps = parse_count(next, MAX_REPS), i++;
        } else if (strcmp(a, "--mib") == 0) {
            o->mib = parse_count(next, 65536), i++;
        } else if (strcmp(a, "--handshakes") == 0) {
            o->handshakes = parse_count(next, 1000000), i++;
        } else if (strcmp(a, "--certs") == 0 && next != NULL) {
            o->certs = next, i++;
        } else if (strcmp(a, "--suite") == 0) {
            o->suite = parse_suite(next), i++;
        } else if (strcmp(a, "--only") == 0) {
            o->only = parse_variant(next), i++;
        } else if (strcmp(a, "--bulk-only") == 0) {
            o->hs = 0;
        } else if (strcmp(a, "--handshakes-only") == 0) {
            o->bulk = 0;
        } else if (strcmp(a, "--verbose") == 0) {
            o->verbose = 1;
        } else if (strcmp(a, "--no-pin") == 0) {
            o->pin = 0;
        } else {
            usage(stderr);
            exit(2);
        }
    }
}

/* ---- main ---- */

/* Client and server each on its own cpu: left to the scheduler the two
 * threads share a core in some runs and not in others (see framing's
 * README section). */
static void choose_cpus(bench *b)
{
    b->cpu[0] = b->cpu[1] = -1;
    if (b->opt.pin && usable_cpus(b->cpu, 2) < 2)
        b->cpu[0] = b->cpu[1] = -1;
}

static int run_suite(const bench *b, int k, result *bulk, result *hs)
{
    suite_ctx sc;
    int rc = 0;

    suite_init(&sc, suite_names[k], b);
    if (b->opt.bulk && (b->opt.suite < 0 || b->opt.suite == k)) {
        printf("\n");
        rc = measure_row(b, &sc, bulk_measure, "GB/s", bulk);
        if (rc == 0)
            print_bulk(&sc, bulk);
    }
    if (rc == 0 && hs != NULL) {
        printf("\n");
        rc = measure_row(b, &sc, hs_measure, "handshakes/s", hs);
        if (rc == 0)
            print_hs(hs);
    }
    suite_free(&sc);
    return rc;
}

static void print_summary(const bench *b, const result *bulk,
                          const result *hs)
{
    printf("\nsummary (ratio of medians, strata / plain; cpu: plain / strata"
           " of cpu seconds per unit; wolfSSL %s, AES-NI %s):\n",
           wolfSSL_lib_version(), HAVE_AESNI ? "yes" : "no");
    for (int k = 0; k < N_SUITES; k++) {
        if (!b->opt.bulk || (b->opt.suite >= 0 && b->opt.suite != k))
            continue;
        printf("  %-31s plain %6.3f GB/s  strata %6.3f GB/s  ratio %.3f "
               "%-6s (cpu %.3f)\n", suite_names[k], bulk[k].rate[PLAIN],
               bulk[k].rate[STRATA], bulk[k].ratio,
               verdict(bulk[k].ratio, RATIO_GOAL), bulk[k].cpu_ratio);
    }
    if (b->opt.hs)
        printf("  %-31s plain %6.1f /s    strata %6.1f /s    ratio %.3f "
               "%-6s (cpu %.3f)\n", "handshakes", hs->rate[PLAIN],
               hs->rate[STRATA], hs->ratio, verdict(hs->ratio, RATIO_GOAL),
               hs->cpu_ratio);
}

int main(int argc, char **argv)
{
    bench b;
    result bulk[N_SUITES], hs;
    int rc = 0;

    bench_prog = "bench_tls";
    parse_args(argc, argv, &b.opt);
    signal(SIGPIPE, SIG_IGN); /* a dead peer is an error, not a kill */
    if (wolfSSL_Init() != WOLFSSL_SUCCESS)
        die("wolfSSL_Init failed");
    certs_init(&b);
    b.lfd = strata_tcp_listen("127.0.0.1", "0", 16);
    b.port = b.lfd >= 0 ? strata_local_port(b.lfd) : -1;
    if (b.port < 0)
        die("cannot listen on 127.0.0.1");
    choose_cpus(&b);
    print_header(&b);
    for (int k = 0; k < N_SUITES && rc == 0; k++)
        rc = run_suite(&b, k, &bulk[k],
                       k == HS_SUITE && b.opt.hs ? &hs : NULL);
    if (rc == 0)
        print_summary(&b, bulk, &hs);
    close(b.lfd);
    certs_free(&b);
    wolfSSL_Cleanup();
    return rc == 0 ? 0 : 1;
}
