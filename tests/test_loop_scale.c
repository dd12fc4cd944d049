/* The event loop at scale, through the real tool. `strata listen
 * ws://127.0.0.1:0 --echo` (the binary in STRATA_CLI) serves N WebSocket
 * connections, N = 10,000 unless STRATA_SCALE_CONNS says otherwise (a
 * few hundred under valgrind). The client is this test, itself one strata
 * loop on its default backend (epoll on Linux) holding all N connections:
 *  - every connection completes its handshake and echoes one message;
 *  - held idle, neither side runs anything: the client's loop runs no
 *    callback and the server uses next to no CPU (no busy waiting);
 *  - the server's resident memory per idle connection is measured
 *    (VmRSS before and with the N connections) and bounded;
 *  - all close with 1000 and get the server's 1000 back; the server is
 *    still alive and serves a new connection; its memory after the close
 *    is reported.
 * The figures are printed. STRATA_SCALE_MSG=BYTES makes each connection
 * echo a binary message of that size instead of a short text (the figure
 * is then reported, not bounded: large messages leave buffers touched).
 * Needs N + some descriptors on each side: the
 * soft limit is raised (the hard one too when allowed, as root) and the
 * server inherits it; with too few the test is skipped, saying so. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <strata/blocking.h>
#include <strata/loop.h>
#include <strata/socket.h>
#include <strata/ws.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

#define DEFAULT_CONNS 10000
#define VALGRIND_CONNS 2000
/* Connections in their handshake at once: under the server's listen
 * backlog (128), so no SYN is dropped and retried a second later. */
#define IN_FLIGHT 64
/* A generous bound on what one idle connection may cost the server. The
 * server holds per connection the socket stream, the WebSocket layer and
 * its 16 KiB input buffer, the echo's state and the loop's watch; what
 * counts here is what is resident. The bound is meant to catch a
 * connection that keeps a large buffer touched (or a leak per
 * connection), not to pin today's figure. */
#define MAX_KIB_PER_CONN 64
/* A watchdog on each phase: a hang fails instead of stalling ctest. */
#define PHASE_LIMIT_MS 120000

enum { S_OPEN, S_SEND, S_ECHO, S_IDLE, S_CLOSING, S_DONE };

typedef struct client client;

typedef struct conn {
    client *cl;
    strata_stream *ws;
    strata_watch *w;
    int id;
    int state;
    int close_sent;
    char msg[40];          /* its own short text message */
    const char *data;      /* what it sends: msg, or the shared message */
    unsigned flags;        /* of the message: MSG_END, MSG_TEXT for msg */
    size_t len, sent, got;
} conn;

struct client {
    strata_loop *loop;
    conn *conns;
    int lo, hi;            /* the batch being opened or closed */
    int closing;           /* the phase: 0 opening, 1 closing */
    int next;              /* next to start */
    int opening;           /* started, not yet echoed */
    int established, closed, failed, unexpected;
    char why[256];
    char port[16];
    int timed_out;
    char *big;             /* STRATA_SCALE_MSG bytes sent by each, or NULL */
    size_t big_len;
};

/* ---- the server: the strata tool ---------------------------------------- */

typedef struct server {
    pid_t pid;
    FILE *log;             /* its stderr (the -v log), unlinked */
    int port;
} server;

static long status_kib(pid_t pid, const char *field)
{
    char path[64], line[256];
    size_t n = strlen(field);
    long v = -1;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, field, n) == 0 && line[n] == ':')
            v = strtol(line + n + 1, NULL, 10);
    fclose(f);
    return v;
}

/* User + system CPU of a process, in clock ticks. */
static long cpu_ticks(pid_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long ut, st;
    size_t n;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')'); /* the name may hold spaces */
    if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u "
                                   "%*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (long)(ut + st);
}

/* The port from the log's "listening on 127.0.0.1 port N", waiting for it
 * up to 10 s; 0 if the server died or never said. */
static int wait_port(server *sv)
{
    int i;

    for (i = 0; i < 1000; i++) {
        char buf[4096], *p;
        ssize_t n = pread(fileno(sv->log), buf, sizeof buf - 1, 0);
        int status;

        if (n > 0) {
            buf[n] = '\0';
            p = strstr(buf, "listening on 127.0.0.1 port ");
            if (p != NULL && strchr(p, '\n') != NULL)
                return atoi(p + strlen("listening on 127.0.0.1 port "));
        }
        if (waitpid(sv->pid, &status, WNOHANG) == sv->pid) {
            sv->pid = 0;
            return 0;
        }
        usleep(10000);
    }
    return 0;
}

static void start_server(server *sv, const char *cli)
{
    memset(sv, 0, sizeof *sv);
    sv->log = tmpfile();
    assert_non_null(sv->log);
    sv->pid = fork();
    assert_true(sv->pid >= 0);
    if (sv->pid == 0) {
#ifdef __linux__
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* the test died: so does it */
#endif
        dup2(fileno(sv->log), STDERR_FILENO);
        execl(cli, cli, "listen", "ws://127.0.0.1:0", "--echo", "-v",
              (char *)NULL);
        _exit(127);
    }
    sv->port = wait_port(sv);
    if (sv->port <= 0)
        fail_msg("the server did not start (%s listen ws://127.0.0.1:0)",
                 cli);
}

static int server_alive(server *sv)
{
    int status;

    return sv->pid > 0 && waitpid(sv->pid, &status, WNOHANG) == 0;
}

static void stop_server(server *sv)
{
    int status;

    if (sv->pid > 0) {
        kill(sv->pid, SIGTERM);
        waitpid(sv->pid, &status, 0);
        sv->pid = 0;
    }
    if (sv->log != NULL)
        fclose(sv->log);
    sv->log = NULL;
}

/* The server of the running test, stopped by the teardown also when an
 * assertion ended the test early. */
static server the_server;

static int teardown_server(void **state)
{
    (void)state;
    stop_server(&the_server);
    return 0;
}

/* ---- the client: one loop, many WebSockets ------------------------------ */

static void conn_fail(conn *c, const char *what, int r)
{
    client *cl = c->cl;

    if (cl->failed++ == 0)
        snprintf(cl->why, sizeof cl->why, "connection %d: %s: %s", c->id,
                 what, strata_strerror(r));
    if (c->state < S_IDLE)
        cl->opening--;
    c->state = S_DONE;
    strata_watch_remove(c->w);
    strata_free(c->ws);
    c->ws = NULL;
}

static void client_cb(strata_loop *loop, strata_watch *w, unsigned events,
                      void *ud);

/* Start connections until IN_FLIGHT are opening or the batch is out. */
static void start_more(client *cl)
{
    while (cl->opening < IN_FLIGHT && cl->next < cl->hi) {
        conn *c = &cl->conns[cl->next++];
        strata_stream *sock;
        strata_ws_opts o;
        int r;

        memset(&o, 0, sizeof o);
        o.role = STRATA_WS_CLIENT;
        o.host = "127.0.0.1";
        o.path = "/scale";
        o.buffer = 1024;   /* small: the client is not what is measured */
        o.scratch = 256;
        c->cl = cl;
        if (cl->big != NULL) {
            c->data = cl->big;
            c->len = cl->big_len;
            c->flags = STRATA_MSG_END;
        } else {
            c->len = (size_t)snprintf(c->msg, sizeof c->msg,
                                      "hello from #%d", c->id);
            c->data = c->msg;
            c->flags = STRATA_MSG_END | STRATA_MSG_TEXT;
        }
        c->sent = c->got = 0;
        c->state = S_OPEN;
        cl->opening++;
        r = strata_tcp_connect("127.0.0.1", cl->port, NULL, &sock);
        if (r != 0) {
            if (cl->failed++ == 0)
                snprintf(cl->why, sizeof cl->why, "connect #%d: %s (%s)",
                         c->id, strata_strerror(r), strerror(errno));
            cl->opening--;
            c->state = S_DONE;
            continue;
        }
        c->ws = strata_ws_new(sock, &o, NULL);
        if (c->ws == NULL)
            strata_free(sock);
        else
            c->w = strata_loop_watch(cl->loop, c->ws, STRATA_POLL_IN,
                                     client_cb, c);
        assert_non_null(c->ws);
        assert_non_null(c->w);
    }
}

static int is_need(ssize_t r)
{
    return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE;
}

/* Handshake, send the message, read its echo. 1: go on, 0: wait. */
static int open_step(conn *c)
{
    unsigned flags = 0;
    char buf[4096];
    ssize_t r;

    switch (c->state) {
    case S_OPEN:
        r = strata_ws_handshake(c->ws);
        if (r == 0)
            c->state = S_SEND;
        break;
    case S_SEND:
        r = strata_send(c->ws, c->data + c->sent, c->len - c->sent,
                        c->flags);
        if (r >= 0 && (c->sent += (size_t)r) == c->len)
            c->state = S_ECHO;
        break;
    default: /* S_ECHO: compared as it comes */
        r = strata_recv(c->ws, buf, sizeof buf, &flags);
        if (r < 0)
            break;
        if (c->got + (size_t)r > c->len ||
            memcmp(buf, c->data + c->got, (size_t)r) != 0) {
            conn_fail(c, "echo differs", STRATA_ERR_PROTO);
            return 0;
        }
        c->got += (size_t)r;
        if (!(flags & STRATA_MSG_END))
            break;
        if (c->got != c->len ||
            (flags & STRATA_MSG_TEXT) != (c->flags & STRATA_MSG_TEXT)) {
            conn_fail(c, "echo differs", STRATA_ERR_PROTO);
            return 0;
        }
        c->state = S_IDLE;
        c->cl->opening--;
        c->cl->established++;
        start_more(c->cl);
        return 0;
    }
    if (is_need(r))
        return 0;
    if (r < 0) {
        conn_fail(c, c->state == S_OPEN ? "handshake" : "echo", (int)r);
        return 0;
    }
    return 1;
}

/* Send our close (1000), then read until the server's close. */
static void close_step(conn *c)
{
    char buf[64];
    unsigned flags;
    ssize_t r;

    if (!c->close_sent) {
        r = strata_ws_close(c->ws, STRATA_WS_NORMAL, NULL);
        if (is_need(r))
            return;
        if (r != 0) {
            conn_fail(c, "close", (int)r);
            return;
        }
        c->close_sent = 1;
    }
    while ((r = strata_recv(c->ws, buf, sizeof buf, &flags)) >= 0)
        ;
    if (is_need(r))
        return;
    if (r != STRATA_EOF) {
        conn_fail(c, "waiting for the close", (int)r);
        return;
    }
    if (strata_ws_close_code(c->ws) != STRATA_WS_NORMAL) {
        conn_fail(c, "the server's close code", STRATA_ERR_PROTO);
        return;
    }
    c->cl->closed++;
    c->state = S_DONE;
    strata_watch_remove(c->w);
    strata_free(c->ws);
    c->ws = NULL;
}

static void check_phase_done(client *cl)
{
    int n = cl->hi - cl->lo;

    if (!cl->closing && cl->established + cl->failed >= n &&
        cl->next >= cl->hi && cl->opening == 0)
        strata_loop_stop(cl->loop);
    if (cl->closing && cl->closed + cl->failed >= n)
        strata_loop_stop(cl->loop);
}

static void client_cb(strata_loop *loop, strata_watch *w, unsigned events,
                      void *ud)
{
    conn *c = ud;
    char b;
    unsigned flags;
    ssize_t r;

    (void)loop;
    (void)w;
    (void)events;
    if (c->state < S_IDLE) {
        while (open_step(c))
            ;
    } else if (c->state == S_IDLE) {
        /* an idle connection hears nothing; the first run and spurious
         * wakes read NEED_READ */
        r = strata_recv(c->ws, &b, 1, &flags);
        if (!is_need(r)) {
            c->cl->unexpected++;
            conn_fail(c, "traffic on an idle connection",
                      r < 0 ? (int)r : STRATA_ERR_PROTO);
        }
    } else if (c->state == S_CLOSING) {
        close_step(c);
    }
    check_phase_done(c->cl);
}

static void phase_timeout(strata_loop *loop, void *ud)
{
    client *cl = ud;

    cl->timed_out = 1;
    strata_loop_stop(loop);
}

/* Run the loop until the phase is done or the watchdog fires. */
static void run_phase(client *cl)
{
    unsigned long wd = strata_loop_timer(cl->loop, PHASE_LIMIT_MS,
                                         phase_timeout, cl);

    assert_true(wd > 0);
    assert_int_equal(strata_loop_run(cl->loop), 0);
    (void)strata_loop_cancel(cl->loop, wd);
    assert_false(cl->timed_out);
}

static void phase_reset(client *cl, int lo, int hi, int closing)
{
    cl->closing = closing;
    cl->lo = lo;
    cl->hi = hi;
    cl->next = lo;
    cl->opening = cl->established = cl->closed = cl->failed = 0;
}

/* Open conns [lo, hi): handshake and echo on each; all must succeed. */
static void open_batch(client *cl, int lo, int hi)
{
    phase_reset(cl, lo, hi, 0);
    start_more(cl);
    run_phase(cl);
    if (cl->failed > 0)
        fail_msg("%d of %d connections failed; first: %s", cl->failed,
                 hi - lo, cl->why);
    assert_int_equal(cl->established, hi - lo);
}

/* Close conns [lo, hi) with 1000, all at once. */
static void close_batch(client *cl, int lo, int hi)
{
    int i;

    phase_reset(cl, lo, hi, 1);
    for (i = lo; i < hi; i++) {
        cl->conns[i].state = S_CLOSING;
        strata_watch_wake(cl->conns[i].w);
    }
    run_phase(cl);
    if (cl->failed > 0)
        fail_msg("%d of %d closes failed; first: %s", cl->failed, hi - lo,
                 cl->why);
    assert_int_equal(cl->closed, hi - lo);
}

/* ---- limits and figures ------------------------------------------------- */

static int wanted_conns(void)
{
    const char *e = getenv("STRATA_SCALE_CONNS");

    if (e != NULL && atoi(e) > 0)
        return atoi(e);
    return RUNNING_ON_VALGRIND ? VALGRIND_CONNS : DEFAULT_CONNS;
}

/* STRATA_SCALE_MSG=BYTES: each connection echoes one binary message of
 * that size instead of a short text, so the memory an idle connection
 * keeps after a large message can be measured too. */
static void big_message(client *cl)
{
    const char *e = getenv("STRATA_SCALE_MSG");
    size_t i;

    if (e == NULL || atol(e) <= 0)
        return;
    cl->big_len = (size_t)atol(e);
    cl->big = malloc(cl->big_len);
    assert_non_null(cl->big);
    for (i = 0; i < cl->big_len; i++)
        cl->big[i] = (char)(i * 7 + i / 251);
}

/* Descriptors for need: the soft limit up to it, the hard one too when
 * allowed (root). The server started after this inherits them. */
static int raise_fd_limit(rlim_t need)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0;
    if (rl.rlim_cur >= need)
        return 1;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
        struct rlimit up = {need, need};
        if (setrlimit(RLIMIT_NOFILE, &up) == 0)
            return 1;
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        return 0;
    }
    rl.rlim_cur = need;
    return setrlimit(RLIMIT_NOFILE, &rl) == 0;
}

/* Watch the client idle for a while: no callback may run, and the server
 * may use next to no CPU. A busy loop on either side would spend the
 * whole time; the bound is a quarter of it, far from both. */
static void check_idle(client *cl, server *sv)
{
    uint64_t end;
    long t0 = cpu_ticks(sv->pid), t1;
    long hz = sysconf(_SC_CLK_TCK);
    int calls = 0, rounds = 0;

    end = strata_now_ms() + 1000;
    for (;;) {
        uint64_t now = strata_now_ms();

        if (now >= end)
            break;
        calls += strata_loop_run_once(cl->loop, (int)(end - now));
        rounds++;
    }
    t1 = cpu_ticks(sv->pid);
    assert_int_equal(calls, 0);
    assert_true(rounds <= 3);
    if (t0 >= 0 && t1 >= 0 && hz > 0) {
        printf("server CPU over 1 s idle with the connections: %ld ms\n",
               (t1 - t0) * 1000 / hz);
        assert_true((t1 - t0) * 4 < hz);
    }
}

static void test_idle_websockets_at_scale(void **state)
{
    const char *cli = getenv("STRATA_CLI");
    int n = wanted_conns(), i;
    client cl;
    server *sv = &the_server;
    long rss0, rss1, rss2, hwm;
    uint64_t t0, t_open, t_close;
    double per_conn;

    (void)state;
    if (cli == NULL || access(cli, X_OK) != 0) {
        printf("skip: STRATA_CLI does not name the strata tool\n");
        skip();
    }
    if (!raise_fd_limit((rlim_t)n + 200)) {
        printf("skip: %d connections need %d descriptors per process and "
               "RLIMIT_NOFILE cannot be raised that far here (set "
               "STRATA_SCALE_CONNS lower)\n", n, n + 200);
        skip();
    }
    signal(SIGPIPE, SIG_IGN);
    memset(&cl, 0, sizeof cl);
    cl.loop = strata_loop_new(NULL);
    assert_non_null(cl.loop);
    cl.conns = calloc((size_t)n + 17, sizeof *cl.conns);
    assert_non_null(cl.conns);
    for (i = 0; i < n + 17; i++)
        cl.conns[i].id = i;
    big_message(&cl);
    start_server(sv, cli);
    snprintf(cl.port, sizeof cl.port, "%d", sv->port);

    /* Warm up (code paged in, the allocator's first arenas), then the
     * baseline. */
    open_batch(&cl, 0, 16);
    close_batch(&cl, 0, 16);
    rss0 = status_kib(sv->pid, "VmRSS");

    t0 = strata_now_ms();
    open_batch(&cl, 16, 16 + n);
    t_open = strata_now_ms() - t0;
    check_idle(&cl, sv);
    rss1 = status_kib(sv->pid, "VmRSS");

    t0 = strata_now_ms();
    close_batch(&cl, 16, 16 + n);
    t_close = strata_now_ms() - t0;
    assert_true(server_alive(sv));
    open_batch(&cl, 16 + n, 17 + n);  /* it still serves */
    close_batch(&cl, 16 + n, 17 + n);
    rss2 = status_kib(sv->pid, "VmRSS");
    hwm = status_kib(sv->pid, "VmHWM");
    assert_true(server_alive(sv));

    printf("loop backend (client): %s\n", strata_loop_backend(cl.loop));
    printf("%d WebSocket connections opened (handshake + echo of %zu B) "
           "in %llu ms, closed (1000) in %llu ms\n", n,
           cl.big != NULL ? cl.big_len : cl.conns[16].len,
           (unsigned long long)t_open, (unsigned long long)t_close);
    if (rss0 > 0 && rss1 > 0) {
        per_conn = (double)(rss1 - rss0) / n;
        printf("server VmRSS: %ld KiB before, %ld KiB with %d idle "
               "connections (%.1f KiB per connection), %ld KiB after "
               "closing them (peak %ld KiB)\n", rss0, rss1, n, per_conn,
               rss2, hwm);
        if (UNDER_ASAN)
            printf("(AddressSanitizer build: redzones and quarantine make "
                   "these figures larger than a plain build's; not bounded)"
                   "\n");
        else if (cl.big == NULL)
            assert_true(per_conn < MAX_KIB_PER_CONN);
    } else {
        printf("no /proc here: memory not measured\n");
    }
    stop_server(sv);
    free(cl.big);
    free(cl.conns);
    strata_loop_free(cl.loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_idle_websockets_at_scale,
                                  teardown_server),
    };

    alarm(280); /* under ctest's 300 s: a hang fails with a reason */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
