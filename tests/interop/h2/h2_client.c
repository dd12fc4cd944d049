/* h2_client: strata's HTTP/2 client (prior knowledge over TCP) against
 * another implementation's server (nghttpd), started by run_h2.sh.
 *
 *   h2_client HOST PORT PATH EXPECT [-n N] [--post BODY]
 *
 * Sends N requests for PATH at once on one connection (GET, or POST with
 * the bytes of the file BODY, sent while the responses are read), and
 * checks that every response is :status 200 and that its body is the
 * bytes of the file EXPECT. Prints "ok ..." and exits 0, or prints
 * "FAIL ..." and exits 1. The whole run is bounded by RUN_MS.
 */
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strata/blocking.h>
#include <strata/h2.h>
#include <strata/socket.h>

#define RUN_MS 60000
#define MAX_REQ 256

typedef struct req {
    strata_stream *s;
    size_t sent, got;   /* body bytes sent, response bytes checked */
    int sent_end, done;
} req;

typedef struct file {
    uint8_t *p;
    size_t len;
} file;

_Noreturn static void fail(const char *fmt, ...)
{
    va_list ap;

    printf("FAIL ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    exit(1);
}

static int is_need(long r)
{
    return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE;
}

static file load(const char *path)
{
    FILE *f = fopen(path, "rb");
    file r = {NULL, 0};
    long n;

    if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0)
        fail("cannot read %s", path);
    r.len = (size_t)n;
    r.p = malloc(r.len + 1);
    if (!r.p || fread(r.p, 1, r.len, f) != r.len)
        fail("cannot read %s", path);
    fclose(f);
    return r;
}

/* Push more of the body: 0 on progress or when all went, else a status. */
static int send_body(req *q, const file *body)
{
    ssize_t n;

    if (q->sent < body->len) {
        n = strata_send(q->s, body->p + q->sent, body->len - q->sent, 0);
        if (n < 0)
            return (int)n;
        q->sent += (size_t)n;
        return 0;
    }
    if (!q->sent_end) {
        int r = strata_shutdown(q->s);

        if (r != 0)
            return r;
        q->sent_end = 1;
    }
    return STRATA_NEED_READ; /* nothing more to send */
}

/* Read and check more of the response: 0 on progress, 1 at its end,
 * else a status. */
static int read_body(req *q, const file *expect, int i)
{
    static uint8_t buf[65536];
    ssize_t n;
    int r;

    if ((r = strata_h2_response_head(q->s)) != 0)
        return r;
    if (strata_h2_status(q->s) != 200)
        fail("request %d: :status %d", i, strata_h2_status(q->s));
    n = strata_read(q->s, buf, sizeof buf);
    if (n == STRATA_EOF) {
        if (q->got != expect->len)
            fail("request %d: body of %zu bytes, wanted %zu", i, q->got,
                 expect->len);
        return 1;
    }
    if (n < 0)
        return (int)n;
    if (q->got + (size_t)n > expect->len ||
        memcmp(buf, expect->p + q->got, (size_t)n) != 0)
        fail("request %d: body differs within bytes %zu..%zu", i, q->got,
             q->got + (size_t)n);
    q->got += (size_t)n;
    return 0;
}

/* Wait on the connection's socket for what it wants (at most ms). */
static void wait_conn(strata_h2 *h, int ms)
{
    unsigned w = strata_h2_wants(h);
    struct pollfd p = {strata_h2_fd(h), 0, 0};

    p.events = (short)((w & STRATA_WANT_READ ? POLLIN : 0) |
                       (w & STRATA_WANT_WRITE ? POLLOUT : 0));
    if (poll(&p, 1, ms) < 0)
        fail("poll");
}

/* Open request i: NEED_* when the server's stream limit is reached. */
static int open_req(strata_h2 *h, req *q, const char *authority,
                    const char *path, const file *body)
{
    char len[32];
    strata_h2_header head[5] = {
        {":method", body ? "POST" : "GET"}, {":scheme", "http"},
        {":authority", authority}, {":path", path}, {"content-length", len}};

    snprintf(len, sizeof len, "%zu", body ? body->len : 0);
    return strata_h2_request(h, head, body ? 5 : 4,
                             body ? 0 : STRATA_H2_END_STREAM, &q->s);
}

int main(int argc, char **argv)
{
    static req reqs[MAX_REQ];
    const char *body_path = NULL;
    char authority[300];
    strata_h2_opts o = {.role = STRATA_H2_CLIENT};
    strata_stream *tcp;
    strata_h2 *h;
    file expect, body = {NULL, 0};
    uint64_t deadline = strata_now_ms() + RUN_MS;
    int n = 1, i, r, left, opened = 0;

    if (argc < 5)
        fail("usage: h2_client HOST PORT PATH EXPECT [-n N] [--post BODY]");
    for (i = 5; i < argc; i += 2) {
        if (i + 1 < argc && strcmp(argv[i], "-n") == 0)
            n = atoi(argv[i + 1]);
        else if (i + 1 < argc && strcmp(argv[i], "--post") == 0)
            body_path = argv[i + 1];
        else
            fail("unknown option %s", argv[i]);
    }
    if (n < 1 || n > MAX_REQ)
        fail("-n %d: 1..%d", n, MAX_REQ);
    expect = load(argv[4]);
    if (body_path)
        body = load(body_path);
    snprintf(authority, sizeof authority, "%s:%s", argv[1], argv[2]);
    if (strata_tcp_connect(argv[1], argv[2], NULL, &tcp) != 0 ||
        (h = strata_h2_new(tcp, &o, NULL)) == NULL)
        fail("cannot connect to %s", authority);
    for (left = n; left > 0;) {
        int moved = 0;

        while (opened < n) {   /* the server's limit may hold some back */
            r = open_req(h, &reqs[opened], authority, argv[3],
                         body_path ? &body : NULL);
            if (is_need(r))
                break;
            if (r != 0)
                fail("request %d: %s", opened, strata_strerror(r));
            opened++;
            moved = 1;
        }
        for (i = 0; i < opened; i++) {
            req *q = &reqs[i];

            if (q->done)
                continue;
            if (body_path && (r = send_body(q, &body)) == 0)
                moved = 1;
            else if (body_path && !is_need(r))
                fail("request %d: send: %s", i, strata_strerror(r));
            while ((r = read_body(q, &expect, i)) == 0)
                moved = 1;
            if (r == 1) {
                q->done = moved = 1;
                left--;
                strata_free(q->s);
            } else if (!is_need(r)) {
                fail("request %d: %s (HTTP/2 code %ld)", i,
                     strata_strerror(r), strata_h2_reset_code(q->s));
            }
        }
        if (moved || left == 0)
            continue;
        if (strata_now_ms() > deadline)
            fail("timed out with %d of %d responses missing", left, n);
        wait_conn(h, 1000);
    }
    /* GOAWAY out before we go */
    while (is_need(strata_h2_shutdown(h)) && strata_now_ms() < deadline)
        wait_conn(h, 1000);
    printf("ok %d %s %s: %zu bytes each, identical\n", n,
           body_path ? "POST" : "GET", argv[3], expect.len);
    strata_h2_free(h);
    free(expect.p);
    free(body.p);
    return 0;
}
