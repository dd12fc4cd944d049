/* bench_ws_echo: WebSocket echo over loopback, strata's server against
 * node's ws and Python's websockets servers, in the same run.
 *
 * One client, written with strata (ws over a write buffer over the socket,
 * driven with strata_wait), keeps `inflight` messages outstanding against
 * each server in turn and sends the next one whenever an echo returns:
 *  - 64 KiB messages, 8 in flight: GB/s;
 *  - 16 B messages, 64 in flight: messages/s;
 *  - 16 B, 1 in flight: the round trip's p50, next to a raw TCP 16 B
 *    ping-pong (blocking write/read on both ends) measured the same way.
 * The servers are separate processes started by the bench: strata's (this
 * program with --serve strata: the event loop, ws over a write buffer over
 * the socket), the strata tool (`strata listen ws://... --echo`) when it
 * supports ws, node's ws, Python's websockets, and a plain TCP echo server
 * (this program with --serve tcp) for the raw rows. Client and servers are
 * pinned to one cpu by default (every thread of a server, as taskset -a
 * does): in this VM a wake-up across its two cpus costs tens of
 * microseconds, and with the two sides apart the rows measured those
 * wake-ups more than the servers (raw TCP echo 0.95 GB/s split against
 * 2.4 GB/s on one cpu). --split puts the servers on the other cpu for the
 * throughput phases; the round trip is always taken on one cpu. Each run
 * reports the client's and the server's cpu time (getrusage, and
 * /proc/PID/stat for the server process, all its threads), as a share of
 * the wall time and per message, so a reader sees who set the pace.
 *
 * Reps are interleaved: in every rep each server is measured once, in a
 * rotating order, on a fresh connection; rows print medians. Each server
 * first gets an untimed warm-up that also compares every echoed byte; the
 * timed runs check a sequence stamp and the tail of every message. The
 * message count of a server's timed runs is set from its warm-up rate so
 * each run lasts about --secs seconds.
 * The exit code is 0 whatever the goals say; 1 when a server that was
 * started failed or echoed wrong data. Peers that cannot start (no node,
 * npm offline, no python3-websockets) are skipped with the reason.
 */
/* sched_setaffinity, pipe2, prctl(PR_SET_PDEATHSIG): Linux's. */
#define _GNU_SOURCE

#include <strata/blocking.h>
#include <strata/loop.h>
#include <strata/socket.h>
#include <strata/stream.h>
#include <strata/wbuf.h>
#include <strata/ws.h>

#include "ws_bench.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#ifndef BENCH_PEERS_DIR
#define BENCH_PEERS_DIR "bench/ws_peers"
#endif
#ifndef BENCH_NODE_DIR
#define BENCH_NODE_DIR "ws_peers_node"
#endif

#define WAIT_MS 30000          /* a stalled run fails instead of hanging */
#define START_MS 20000         /* a server must listen within this */
#define WBUF_CAP (64 * KIB)    /* client's and strata server's write buffer */
#define RAW_CHUNK (64 * KIB)   /* raw server's and client's reads */
#define MAX_MSG (1024 * KIB)   /* largest message strata's server holds */
#define SERVE_STEPS 64         /* strata server: steps per callback */
#define NPM_SECS "180"         /* npm install gives up after this */
#define NPM_SECS_QUICK "60"    /* ... in a smoke run (offline CI) */

/* ---- server processes and what the client measures against them ---- */

enum proc_id { P_TCP, P_STRATA, P_CLI, P_NODE, P_PYTHON, N_PROCS };

typedef struct proc {
    const char *name;
    pid_t pid;             /* 0: not running */
    int port;
    int out_fd;            /* the pipe it announced its port on */
    char why[200];         /* why it is not running */
} proc;

/* A row's server: a process, spoken to with WebSocket or raw TCP. The
 * raw rows' client is non-blocking like strata's (send what the window
 * allows, read until EAGAIN, poll), except for the round trip against the
 * blocking echo: blocking write and read, the plain reference. */
enum { T_RAW_BLOCK, T_RAW_POLL, T_STRATA, T_CLI, T_NODE, T_PYTHON, N_TARGETS };

typedef struct target {
    const char *name;
    int proc;
    int ws;                /* 0: raw TCP */
    char mode;             /* raw: 'B' blocking server, 'P' poll-style */
} target;

static const target targets[N_TARGETS] = {
    {"raw TCP", P_TCP, 0, 'B'},
    {"raw TCP (poll)", P_TCP, 0, 'P'},
    {"strata", P_STRATA, 1, 0},
    {"strata CLI", P_CLI, 1, 0},
    {"node ws", P_NODE, 1, 0},
    {"python websockets", P_PYTHON, 1, 0},
};

/* The goals, one per phase. */
enum goal { G_GBS, G_VS_NODE, G_VS_RAW };

typedef struct phase {
    const char *title;
    size_t size;
    unsigned inflight;
    int rtt;               /* 1: round-trip latency, 1 in flight */
    enum goal goal;
    const char *key;       /* --only */
} phase;

#define N_GOALS 3

typedef struct options {
    unsigned reps;
    double secs;           /* each timed run, about */
    double warm;           /* each warm-up, about */
    int quick, verbose, pin, node, python, cli, strata, raw;
    int split;             /* throughput phases: servers on another cpu */
    const char *peers_dir, *node_dir, *python_bin, *cli_bin;
    const char *only;      /* run one phase: "64k", "16b", "rtt" */
    size_t scratch, rbuf;  /* client's ws scratch and buffered input */
} options;

/* One timed run against one target. */
typedef struct sample {
    double wall, msgs, bytes;
    double cpu_c, cpu_s;   /* client's, server process's cpu seconds */
    double p50, p99;       /* round trip, seconds (rtt phase) */
} sample;

typedef struct result {
    int ran;               /* measured (started, no failure) */
    uint64_t count;        /* messages per timed run */
    sample med;            /* medians; cpu_c, cpu_s as shares of the wall */
    double rate, gbs;      /* median messages/s, GB/s */
    double us_c, us_s;     /* median cpu microseconds per message */
} result;

typedef struct bench {
    options opt;
    proc procs[N_PROCS];
    int cpus[2];           /* client's cpu, servers' cpu; -1: not pinned */
    int failed;
    char goals[N_GOALS][256]; /* the verdicts, for the summary */
    int ngoals;
} bench;

static proc *g_procs; /* for the exit handler: servers die with us */

/* ---- small helpers ---- */

static int is_need(long r)
{
    return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE;
}

static int is_err(long r)
{
    return r < 0 && !is_need(r);
}

static unsigned want_of(long r)
{
    return r == STRATA_NEED_READ    ? STRATA_WANT_READ
           : r == STRATA_NEED_WRITE ? STRATA_WANT_WRITE
                                    : 0;
}

static int set_nonblock(int fd, int on)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0)
        return -1;
    return fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

static void nodelay(int fd)
{
    int one = 1;

    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* cpu seconds of a whole process, every thread, dead ones included:
 * utime + stime of /proc/PID/stat (the fields after the command name). */
static double proc_cpu_s(pid_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long ut = 0, st = 0;
    FILE *f;
    size_t n;

    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')');
    if (p == NULL || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u "
                            "%*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Pin every thread of a process (node runs several): what `taskset -a`
 * does. Threads started later inherit their creator's placement. */
static void pin_proc(pid_t pid, int cpu)
{
    char path[64];
    struct dirent *e;
    DIR *d;

    if (cpu < 0 || pid <= 0)
        return;
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    d = opendir(path);
    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            (void)pin_task((pid_t)atoi(e->d_name), cpu);
    closedir(d);
}

/* ---- the servers this program runs itself (--serve) ---- */

/* Announce the port on stdout, the way the peers' scripts do. */
static int listen_announce(void)
{
    int lfd = strata_tcp_listen("127.0.0.1", "0", 64);

    if (lfd < 0)
        die("cannot listen on 127.0.0.1");
    printf("PORT %d\n", strata_local_port(lfd));
    fflush(stdout);
    return lfd;
}

static int write_all_fd(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);

        if (k < 0 && errno == EAGAIN) {
            struct pollfd pf = {fd, POLLOUT, 0};

            (void)poll(&pf, 1, -1);
            continue;
        }
        if (k < 0 && errno != EINTR)
            return -1;
        if (k > 0) {
            p += k;
            n -= (size_t)k;
        }
    }
    return 0;
}

/* 'B': what a plain blocking echo does, the raw round trip's reference.
 * 'P': non-blocking, read until EAGAIN, then poll: the system calls an
 * event loop makes, to tell them apart from the WebSocket layers' cost. */
static void raw_echo(int fd, char mode, uint8_t *buf)
{
    if (mode == 'P')
        (void)set_nonblock(fd, 1);
    for (;;) {
        ssize_t n = read(fd, buf, RAW_CHUNK);

        if (n > 0) {
            if (write_all_fd(fd, buf, (size_t)n) != 0)
                return;
        } else if (n == 0) {
            return;
        } else if (errno == EAGAIN) {
            struct pollfd pf = {fd, POLLIN, 0};

            (void)poll(&pf, 1, -1);
        } else if (errno != EINTR) {
            return;
        }
    }
}

/* One connection at a time: the client opens one per measurement. */
static int serve_tcp(void)
{
    int lfd = listen_announce();
    uint8_t *buf = xmalloc(RAW_CHUNK);

    (void)set_nonblock(lfd, 0);
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        char mode = 0;

        if (fd < 0 && errno != EINTR && errno != ECONNABORTED)
            return 1;
        if (fd < 0)
            continue;
        nodelay(fd);
        if (read(fd, &mode, 1) == 1)
            raw_echo(fd, mode, buf);
        close(fd);
    }
}

/* strata's echo server: the event loop, and per connection
 * ws (server, with handshake) -> wbuf -> socket. A message is received
 * whole, then sent back whole with its flags, as node's and Python's
 * servers do; gathered replies are flushed before waiting for input. */
typedef struct sconn {
    strata_stream *s;
    uint8_t *buf;
    size_t len, sent;
    unsigned flags;        /* the message's STRATA_MSG_TEXT */
    int ready;             /* a whole message waits to go back */
    int dirty;             /* sent since the last flush */
    int eof;
} sconn;

static void sconn_free(strata_watch *w, sconn *c)
{
    strata_watch_remove(w);
    strata_free(c->s);
    free(c->buf);
    free(c);
}

static int sconn_send(sconn *c)
{
    ssize_t r = strata_send(c->s, c->buf + c->sent, c->len - c->sent,
                            STRATA_MSG_END | (c->flags & STRATA_MSG_TEXT));

    if (r < 0)
        return (int)r;
    c->dirty = 1;
    c->sent += (size_t)r;
    if (c->sent == c->len)
        c->ready = 0, c->len = c->sent = 0;
    return 1;
}

static int sconn_recv(sconn *c)
{
    unsigned flags = 0;
    ssize_t r;

    if (c->len == MAX_MSG)
        return STRATA_ERR_TOO_BIG;
    r = strata_recv(c->s, c->buf + c->len, MAX_MSG - c->len, &flags);
    if (r == STRATA_NEED_READ && c->dirty) {
        int f = strata_flush(c->s); /* replies out before we wait */

        if (f != 0)
            return f;
        c->dirty = 0;
    }
    if (r == STRATA_EOF)
        c->eof = 1;
    if (r < 0)
        return r == STRATA_EOF ? 1 : (int)r;
    c->len += (size_t)r;
    if (flags & STRATA_MSG_END)
        c->ready = 1, c->flags = flags;
    return 1;
}

/* 1: progress; 0: done (the peer closed and we answered); or a status. */
static int sconn_step(sconn *c)
{
    if (c->ready)
        return sconn_send(c);
    if (!c->eof)
        return sconn_recv(c);
    return strata_shutdown(c->s); /* our close frame answers the peer's */
}

static void sconn_cb(strata_loop *loop, strata_watch *w, unsigned events,
                     void *ud)
{
    sconn *c = ud;
    int r = 1;

    (void)loop;
    (void)events;
    for (int i = 0; i < SERVE_STEPS && r == 1; i++)
        r = sconn_step(c);
    if (r == 1)
        strata_watch_wake(w); /* budget spent, not blocked: soon again */
    else if (!is_need(r))
        sconn_free(w, c);
}

static void serve_accept_cb(strata_loop *loop, strata_watch *w,
                            unsigned events, void *ud)
{
    strata_ws_opts o;

    (void)events;
    (void)ud;
    memset(&o, 0, sizeof o);
    o.role = STRATA_WS_SERVER;
    for (;;) {
        strata_stream *sock, *wb, *ws;
        sconn *c;

        if (strata_accept(strata_watch_fd(w), NULL, &sock) != 0)
            return;
        wb = strata_wbuf_new(sock, WBUF_CAP, 0, NULL);
        ws = wb != NULL ? strata_ws_new(wb, &o, NULL) : NULL;
        c = calloc(1, sizeof *c);
        if (ws == NULL || c == NULL || (c->buf = malloc(MAX_MSG)) == NULL ||
            strata_loop_watch(loop, ws, STRATA_POLL_IN, sconn_cb, c) == NULL)
            die("strata server: out of memory");
        c->s = ws;
    }
}

static int serve_strata(void)
{
    int lfd = listen_announce();
    strata_loop *loop = strata_loop_new(NULL);

    if (loop == NULL || strata_loop_watch_fd(loop, lfd, STRATA_POLL_IN,
                                             serve_accept_cb, NULL) == NULL)
        die("strata server: cannot start the loop");
    return strata_loop_run(loop) == 0 ? 0 : 1;
}

/* ---- starting and stopping the servers ---- */

static void stop_procs(void)
{
    for (int i = 0; g_procs != NULL && i < N_PROCS; i++) {
        proc *p = &g_procs[i];

        if (p->pid <= 0)
            continue;
        kill(p->pid, SIGTERM);
        for (int k = 0; k < 50 && waitpid(p->pid, NULL, WNOHANG) == 0; k++)
            usleep(20000);
        if (waitpid(p->pid, NULL, WNOHANG) == 0) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, NULL, 0);
        }
        p->pid = 0;
        if (p->out_fd >= 0)
            close(p->out_fd);
        p->out_fd = -1;
    }
}

/* The port from a line "PORT <n>" (our servers, the peers' scripts) or
 * "... port <n>" (the strata tool's -v log). */
static int port_of(const char *line)
{
    const char *p = strstr(line, "PORT ");
    int port;

    if (p == NULL)
        p = strstr(line, " port ");
    if (p == NULL || sscanf(strchr(p + 1, ' ') + 1, "%d", &port) != 1)
        return -1;
    return port > 0 && port < 65536 ? port : -1;
}

/* Read the child's announcement, a line at a time, until START_MS. */
static int await_port(int fd)
{
    char line[512];
    size_t len = 0;
    double end = now_s() + START_MS / 1000.0;

    while (now_s() < end && len < sizeof line - 1) {
        struct pollfd pf = {fd, POLLIN, 0};
        ssize_t n;

        if (poll(&pf, 1, 100) <= 0)
            continue;
        n = read(fd, line + len, 1);
        if (n <= 0)
            return -1; /* exited before it listened */
        if (line[len] == '\n') {
            line[len] = '\0';
            if (port_of(line) > 0)
                return port_of(line);
            len = 0;
        } else {
            len++;
        }
    }
    return -1;
}

/* fork + exec on `cpu`, the child's stdout (or stderr) on a pipe that
 * announces its port. `env` is one "NAME=value" to add, or NULL. */
static void spawn(proc *p, char *const argv[], char *env, int cpu,
                  int port_on_stderr)
{
    int pfd[2];

    if (pipe2(pfd, O_CLOEXEC) != 0)
        die("pipe failed");
    p->pid = fork();
    if (p->pid == 0) {
        /* Killed with us even when we cannot clean up (a ctest timeout). */
        (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
        dup2(pfd[1], port_on_stderr ? 2 : 1);
        (void)pin_task(0, cpu);
        if (env != NULL)
            putenv(env);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(pfd[1]);
    p->out_fd = pfd[0];
    p->port = p->pid > 0 ? await_port(pfd[0]) : -1;
    if (p->port > 0)
        return;
    snprintf(p->why, sizeof p->why, "%s did not start listening%s", argv[0],
             p->pid > 0 ? " (its messages, if any, are above)" : "");
    if (p->pid > 0) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
    }
    p->pid = 0;
    close(p->out_fd);
    p->out_fd = -1;
}

/* Whether `name` is an executable file in a PATH directory. */
static int on_path(const char *name)
{
    const char *dir = getenv("PATH");
    char buf[PATH_MAX];

    while (dir != NULL && *dir != '\0') {
        const char *colon = strchr(dir, ':');
        int n = colon != NULL ? (int)(colon - dir) : (int)strlen(dir);

        snprintf(buf, sizeof buf, "%.*s/%s", n, dir, name);
        if (access(buf, X_OK) == 0)
            return 1;
        dir = colon != NULL ? colon + 1 : NULL;
    }
    return 0;
}

/* Run a command to its end, its output on our stderr (our stdout is the
 * report); its exit status, or -1. */
static int run_cmd(char *const argv[])
{
    pid_t pid = fork();
    int st;

    if (pid == 0) {
        dup2(2, 1);
        execvp(argv[0], argv);
        _exit(127);
    }
    if (pid < 0 || waitpid(pid, &st, 0) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* node's ws package, installed into the build tree with npm the first
 * time (no package.json, nothing outside that folder). */
static int node_ws_ready(const options *o, char *why, size_t n)
{
    char pkg[PATH_MAX];
    char *mk[] = {"mkdir", "-p", (char *)o->node_dir, NULL};
    char *npm[] = {"timeout", o->quick ? NPM_SECS_QUICK : NPM_SECS,
                   "npm", "install", "--no-audit",
                   "--no-fund", "--no-save", "--loglevel=error", "--prefix",
                   (char *)o->node_dir, "ws@8", NULL};

    snprintf(pkg, sizeof pkg, "%s/node_modules/ws/package.json",
             o->node_dir);
    if (!on_path("node") || !on_path("npm")) {
        snprintf(why, n, "node or npm is not on PATH");
        return 0;
    }
    if (access(pkg, R_OK) == 0)
        return 1;
    printf("installing node's ws package into %s with npm...\n",
           o->node_dir);
    fflush(stdout);
    if (run_cmd(mk) != 0 || run_cmd(npm) != 0 || access(pkg, R_OK) != 0) {
        snprintf(why, n, "npm install ws into %s failed (offline?)",
                 o->node_dir);
        return 0;
    }
    return 1;
}

static void start_self(proc *p, const char *exe, const char *what, int cpu)
{
    char *argv[] = {(char *)exe, "--serve", (char *)what, NULL};

    spawn(p, argv, NULL, cpu, 0);
}

static void start_cli(proc *p, const options *o, int cpu)
{
    char *argv[] = {(char *)o->cli_bin, "listen", "ws://127.0.0.1:0",
                    "--echo", "-v", NULL};

    if (o->cli_bin == NULL || access(o->cli_bin, X_OK) != 0) {
        snprintf(p->why, sizeof p->why, "no strata tool (--cli PATH)");
        return;
    }
    spawn(p, argv, NULL, cpu, 1); /* it logs its port with -v */
    if (p->pid == 0)
        snprintf(p->why, sizeof p->why, "the strata tool did not listen on "
                 "ws:// (no ws support in this build?)");
}

static void start_node(proc *p, const options *o, int cpu)
{
    static char env[PATH_MAX + 16];
    char script[PATH_MAX];
    char *argv[] = {"node", script, NULL};

    if (!node_ws_ready(o, p->why, sizeof p->why))
        return;
    snprintf(script, sizeof script, "%s/echo_server.js", o->peers_dir);
    snprintf(env, sizeof env, "NODE_PATH=%s/node_modules", o->node_dir);
    spawn(p, argv, env, cpu, 0);
}

static void start_python(proc *p, const options *o, int cpu)
{
    char script[PATH_MAX];
    char *argv[] = {(char *)o->python_bin, script, NULL};

    if (access(o->python_bin, X_OK) != 0) {
        snprintf(p->why, sizeof p->why, "%s not found", o->python_bin);
        return;
    }
    snprintf(script, sizeof script, "%s/echo_server.py", o->peers_dir);
    spawn(p, argv, NULL, cpu, 0);
    if (p->pid == 0)
        snprintf(p->why, sizeof p->why, "%s echo_server.py did not listen "
                 "(python3-websockets missing?)", o->python_bin);
}

static void start_procs(bench *b)
{
    const options *o = &b->opt;
    proc *ps = b->procs;
    int cpu = b->cpus[1];
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);

    if (n <= 0)
        die("cannot find this program (/proc/self/exe)");
    exe[n] = '\0';
    if (o->raw)
        start_self(&ps[P_TCP], exe, "tcp", cpu);
    if (o->raw && ps[P_TCP].pid == 0)
        die("the raw TCP echo server did not start");
    if (o->strata)
        start_self(&ps[P_STRATA], exe, "strata", cpu);
    if (o->cli)
        start_cli(&ps[P_CLI], o, cpu);
    if (o->node)
        start_node(&ps[P_NODE], o, cpu);
    if (o->python)
        start_python(&ps[P_PYTHON], o, cpu);
}

/* ---- the client: `inflight` messages outstanding, one stack or socket */

typedef struct flow {
    strata_stream *s;      /* ws client stack, or NULL: raw TCP */
    int fd;
    size_t size;
    unsigned inflight;
    uint64_t count;        /* messages to send; 0: until the deadline */
    double deadline;
    int verify;            /* compare every byte (warm-up) */
    uint8_t *src, *ref, *buf;
    size_t cap, soff, roff;
    uint64_t sent, got, bad;
    int dirty;             /* ws: sent since the last flush */
    uint8_t *obuf, *rbuf;  /* raw: queued messages, reads */
    size_t olen, ooff;
    double t_send;         /* when the outstanding message went */
    double *rtts;          /* round trips (1 in flight), or NULL */
    size_t nrtt, rtt_cap;
} flow;

static void flow_init(flow *f, const phase *ph, uint64_t count, int verify)
{
    uint64_t seed = 7;

    memset(f, 0, sizeof *f);
    f->fd = -1;
    f->size = ph->size;
    f->inflight = ph->inflight;
    f->count = count;
    f->verify = verify;
    f->cap = ph->size + 64; /* room past a message: catches a longer one */
    f->src = xmalloc(f->size);
    rng_fill(&seed, f->src, f->size);
    f->ref = xmalloc(f->size);
    memcpy(f->ref, f->src, f->size);
    f->buf = xmalloc(f->cap);
    f->obuf = xmalloc((size_t)f->inflight * f->size);
    f->rbuf = xmalloc(RAW_CHUNK);
    if (ph->rtt && count > 0) {
        f->rtt_cap = (size_t)count;
        f->rtts = xmalloc(f->rtt_cap * sizeof *f->rtts);
    }
}

static void flow_free(flow *f)
{
    free(f->src);
    free(f->ref);
    free(f->buf);
    free(f->obuf);
    free(f->rbuf);
    free(f->rtts);
}

static int may_send(const flow *f)
{
    if (f->sent - f->got >= f->inflight)
        return 0;
    if (f->count == 0)
        return now_s() < f->deadline;
    return f->sent < f->count;
}

static int flow_done(const flow *f)
{
    int last = f->count == 0 ? now_s() >= f->deadline : f->sent == f->count;

    return last && f->got == f->sent && f->soff == 0 && f->roff == 0 &&
           f->ooff == f->olen;
}

/* An echoed message: O(1) checks (stamp, tail) in timed runs. */
static void flow_message(flow *f, const uint8_t *msg, size_t len)
{
    int ok = len == f->size && stamp_ok(msg, f->ref, f->size, f->got);

    if (ok && f->verify) {
        stamp_put(f->ref, f->size, f->got);
        ok = memcmp(msg, f->ref, f->size) == 0;
    }
    f->bad += !ok;
    if (f->rtts != NULL && f->nrtt < f->rtt_cap)
        f->rtts[f->nrtt++] = now_s() - f->t_send;
    f->got++;
}

/* Where a flow's bytes go: a strata ws stack or a raw socket. */
typedef struct flow_ops {
    int (*fill)(flow *f);   /* send while the window allows */
    int (*flush)(flow *f);
    int (*drain)(flow *f);  /* receive while echoes are due */
    int (*wait)(flow *f, unsigned wants);
} flow_ops;

static int ws_fill(flow *f)
{
    while (f->soff > 0 || may_send(f)) {
        ssize_t n;

        if (f->soff == 0) {
            stamp_put(f->src, f->size, f->sent);
            if (f->rtts != NULL)
                f->t_send = now_s();
        }
        n = strata_send(f->s, f->src + f->soff, f->size - f->soff,
                        STRATA_MSG_END);
        if (n <= 0)
            return n == 0 ? STRATA_ERR_STATE : (int)n;
        f->dirty = 1;
        f->soff += (size_t)n;
        if (f->soff == f->size) {
            f->soff = 0;
            f->sent++;
        }
    }
    return 0;
}

static int ws_flush(flow *f)
{
    int r = f->dirty ? strata_flush(f->s) : 0;

    if (r == 0)
        f->dirty = 0;
    return r;
}

static int ws_drain(flow *f)
{
    while (f->got < f->sent || f->roff > 0) {
        unsigned flags = 0;
        ssize_t n;

        if (f->roff == f->cap)
            return STRATA_ERR_TOO_BIG;
        n = strata_recv(f->s, f->buf + f->roff, f->cap - f->roff, &flags);
        if (n < 0)
            return (int)n;
        f->roff += (size_t)n;
        if (flags & STRATA_MSG_END) {
            flow_message(f, f->buf, f->roff);
            f->roff = 0;
        }
    }
    return 0;
}

static int ws_wait(flow *f, unsigned wants)
{
    return strata_wait(f->s, wants, WAIT_MS);
}

static const flow_ops ws_ops = {ws_fill, ws_flush, ws_drain, ws_wait};

/* Raw TCP: the window's messages go in one send, as the wbuf gathers
 * strata's small frames into one. */
static void raw_queue(flow *f)
{
    f->ooff = f->olen = 0;
    while (may_send(f)) {
        stamp_put(f->src, f->size, f->sent);
        memcpy(f->obuf + f->olen, f->src, f->size);
        f->olen += f->size;
        f->sent++;
        if (f->rtts != NULL)
            f->t_send = now_s();
    }
}

static int raw_fill(flow *f)
{
    if (f->ooff == f->olen)
        raw_queue(f);
    while (f->ooff < f->olen) {
        ssize_t n = send(f->fd, f->obuf + f->ooff, f->olen - f->ooff,
                         MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EAGAIN ? STRATA_NEED_WRITE : STRATA_ERR_IO;
        f->ooff += (size_t)n;
    }
    return 0;
}

static int raw_flush(flow *f)
{
    (void)f;
    return 0;
}

/* Cut the byte stream back into messages. */
static void raw_split(flow *f, const uint8_t *p, size_t n)
{
    while (n > 0) {
        size_t k = f->size - f->roff < n ? f->size - f->roff : n;

        if (f->roff == 0 && k == f->size) {
            flow_message(f, p, k); /* whole: check it in place */
        } else {
            memcpy(f->buf + f->roff, p, k);
            f->roff += k;
            if (f->roff == f->size) {
                flow_message(f, f->buf, f->size);
                f->roff = 0;
            }
        }
        p += k;
        n -= k;
    }
}

static int raw_drain(flow *f)
{
    while (f->got < f->sent) {
        ssize_t n = recv(f->fd, f->rbuf, RAW_CHUNK, 0);

        if (n == 0)
            return STRATA_EOF;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EAGAIN ? STRATA_NEED_READ : STRATA_ERR_IO;
        raw_split(f, f->rbuf, (size_t)n);
    }
    return 0;
}

static int raw_wait(flow *f, unsigned wants)
{
    struct pollfd pf = {f->fd, 0, 0};

    pf.events = (short)((wants & STRATA_WANT_READ ? POLLIN : 0) |
                        (wants & STRATA_WANT_WRITE ? POLLOUT : 0));
    return poll(&pf, 1, WAIT_MS) > 0 ? 0 : STRATA_ERR_TIMEOUT;
}

static const flow_ops raw_ops = {raw_fill, raw_flush, raw_drain, raw_wait};

/* The client's loop, the same for both transports: fill the window,
 * flush, read the echoes that are there, wait only when nothing moves.
 * After a read that took echoes and then ran dry, the next messages go
 * out first and the wait comes without another read that would find
 * nothing (one system call fewer per round). */
static int flow_run(flow *f, const flow_ops *ops)
{
    int dry = 0;

    for (;;) {
        uint64_t got0 = f->got;
        int s, fl, d, r;

        if (is_err(s = ops->fill(f)))
            return s;
        if (is_err(fl = ops->flush(f)))
            return fl;
        d = dry ? STRATA_NEED_READ : ops->drain(f);
        if (is_err(d))
            return d;
        if (flow_done(f))
            return 0;
        dry = !dry && d == STRATA_NEED_READ && f->got != got0;
        if (dry || (d == 0 && s == 0 && fl == 0))
            continue;
        r = ops->wait(f, want_of(s) | want_of(fl) | want_of(d));
        if (r < 0)
            return r;
    }
}

/* The raw round trip's reference: blocking write, blocking read. */
static int raw_block_run(flow *f)
{
    (void)set_nonblock(f->fd, 0);
    while (may_send(f)) {
        size_t got = 0;

        stamp_put(f->src, f->size, f->sent);
        f->t_send = now_s();
        if (write_all_fd(f->fd, f->src, f->size) != 0)
            return STRATA_ERR_IO;
        f->sent++;
        while (got < f->size) {
            ssize_t n = read(f->fd, f->buf + got, f->size - got);

            if (n <= 0 && !(n < 0 && errno == EINTR))
                return n == 0 ? STRATA_EOF : STRATA_ERR_IO;
            got += n > 0 ? (size_t)n : 0;
        }
        flow_message(f, f->buf, f->size);
    }
    return 0;
}

/* ---- connections ---- */

/* A raw TCP connection; its first byte tells the server how to echo. */
static int raw_connect(int port, char mode)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
        nodelay(fd); /* as strata's socket stream does */
        if (write(fd, &mode, 1) == 1 && set_nonblock(fd, 1) == 0)
            return fd;
    }
    if (fd >= 0)
        close(fd);
    return -1;
}

static int ws_handshake_all(strata_stream *ws)
{
    for (;;) {
        int r = strata_ws_handshake(ws);

        if (r == 0 || !is_need(r))
            return r;
        r = strata_wait(ws, want_of(r), WAIT_MS);
        if (r < 0)
            return r;
    }
}

/* The client's stack: ws (client, handshake) -> wbuf -> socket. The wbuf
 * gathers the small frames of a window into one write. */
static strata_stream *ws_connect(int port, const options *opt)
{
    char ps[16], host[32];
    strata_stream *sock, *wb, *ws;
    strata_ws_opts o;

    snprintf(ps, sizeof ps, "%d", port);
    snprintf(host, sizeof host, "127.0.0.1:%d", port);
    if (strata_tcp_connect("127.0.0.1", ps, NULL, &sock) != 0)
        return NULL;
    wb = strata_wbuf_new(sock, WBUF_CAP, 0, NULL);
    if (wb == NULL) {
        strata_free(sock);
        return NULL;
    }
    memset(&o, 0, sizeof o);
    o.role = STRATA_WS_CLIENT;
    o.host = host;
    o.scratch = opt->scratch; /* 0: the layer's defaults */
    o.buffer = opt->rbuf;
    ws = strata_ws_new(wb, &o, NULL);
    if (ws == NULL) {
        strata_free(wb);
        return NULL;
    }
    if (ws_handshake_all(ws) != 0) {
        strata_free(ws);
        return NULL;
    }
    return ws;
}

/* A polite end: our close frame, then (briefly) the peer's, so that no
 * server logs an abnormal closure. Not timed. */
static void ws_finish(strata_stream *ws)
{
    double end = now_s() + 2;
    uint8_t tmp[256];
    ssize_t r;

    while (is_need(r = strata_ws_close(ws, STRATA_WS_NORMAL, "")) &&
           now_s() < end)
        (void)strata_wait(ws, want_of(r), 100);
    while (r == 0 && is_need(r = strata_flush(ws)) && now_s() < end)
        (void)strata_wait(ws, want_of(r), 100);
    while ((r = strata_recv(ws, tmp, sizeof tmp, NULL)) >= 0 ||
           is_need(r)) {
        if (now_s() >= end)
            break;
        if (r < 0)
            (void)strata_wait(ws, want_of(r), 100);
    }
    strata_free(ws);
}

/* ---- measurements ---- */

static const phase phases[] = {
    {"64 KiB messages, 8 in flight", 64 * KIB, 8, 0, G_GBS, "64k"},
    {"16 B messages, 64 in flight", 16, 64, 0, G_VS_NODE, "16b"},
    {"16 B round trip, 1 in flight", 16, 1, 1, G_VS_RAW, "rtt"},
};
#define N_PHASES (sizeof phases / sizeof *phases)

static int flow_connect(flow *f, const target *tg, int port,
                        const options *o)
{
    if (tg->ws)
        f->s = ws_connect(port, o);
    else
        f->fd = raw_connect(port, tg->mode);
    return (tg->ws ? f->s != NULL : f->fd >= 0) ? 0 : -1;
}

static int flow_go(flow *f, const target *tg, const phase *ph)
{
    if (tg->ws)
        return flow_run(f, &ws_ops);
    if (ph->rtt && tg->mode == 'B')
        return raw_block_run(f);
    return flow_run(f, &raw_ops);
}

static void flow_close(flow *f, const target *tg)
{
    if (tg->ws)
        ws_finish(f->s);
    else
        close(f->fd);
}

static void rtt_stats(flow *f, sample *out)
{
    out->p50 = out->p99 = 0;
    if (f->nrtt == 0)
        return;
    out->p50 = quantile_sorted(f->rtts, f->nrtt, 0.50);
    out->p99 = quantile_sorted(f->rtts, f->nrtt, 0.99);
}

static int run_failed(const target *tg, const flow *f, int rc)
{
    if (rc == 0 && f->bad == 0 && f->got == f->sent)
        return 0;
    fprintf(stderr, "%s: %s: %s; %llu of %llu echoes, %llu wrong\n",
            bench_prog, tg->name, rc != 0 ? strata_strerror(rc) : "done",
            (unsigned long long)f->got, (unsigned long long)f->sent,
            (unsigned long long)f->bad);
    return -1;
}

/* One run on a fresh connection (connect and close untimed). count 0:
 * a warm-up of opt.warm seconds that compares every byte. */
static int measure(const bench *b, const phase *ph, int t, uint64_t count,
                   sample *out)
{
    const target *tg = &targets[t];
    const proc *p = &b->procs[tg->proc];
    double c0, s0, t0;
    flow f;
    int rc;

    flow_init(&f, ph, count, count == 0);
    if (flow_connect(&f, tg, p->port, &b->opt) != 0) {
        fprintf(stderr, "%s: %s: cannot connect or handshake\n", bench_prog,
                tg->name);
        flow_free(&f);
        return -1;
    }
    s0 = proc_cpu_s(p->pid);
    c0 = thread_cpu_s();
    t0 = now_s();
    f.deadline = t0 + b->opt.warm;
    rc = flow_go(&f, tg, ph);
    out->wall = now_s() - t0;
    out->cpu_c = thread_cpu_s() - c0;
    out->cpu_s = proc_cpu_s(p->pid) - s0;
    out->msgs = (double)f.got;
    out->bytes = (double)f.got * (double)f.size;
    rtt_stats(&f, out);
    flow_close(&f, tg);
    rc = run_failed(tg, &f, rc);
    flow_free(&f);
    return rc;
}

/* ---- phases: placement, warm-up, interleaved reps, medians ---- */

static void place(const bench *b, const phase *ph, char *desc, size_t n)
{
    int cc = b->cpus[0];
    int sc = b->opt.split && !ph->rtt ? b->cpus[1] : b->cpus[0];

    (void)pin_task(0, cc);
    for (int i = 0; i < N_PROCS; i++)
        pin_proc(b->procs[i].pid, sc);
    if (cc < 0)
        snprintf(desc, n, "not pinned");
    else if (cc == sc)
        snprintf(desc, n, "client and servers on cpu %d", cc);
    else
        snprintf(desc, n, "client on cpu %d, servers on cpu %d", cc, sc);
}

static int phase_targets(const bench *b, const phase *ph, int *list)
{
    int n = 0;

    for (int t = 0; t < N_TARGETS; t++) {
        if (t == T_RAW_POLL && !ph->rtt)
            continue; /* only the round trip needs the poll-style echo */
        if (b->procs[targets[t].proc].pid > 0)
            list[n++] = t;
    }
    return n;
}

static void warm_up(bench *b, const phase *ph, const int *list, int n,
                    result *res)
{
    for (int j = 0; j < n; j++) {
        int t = list[j];
        sample s;

        if (measure(b, ph, t, 0, &s) != 0) {
            b->failed = 1;
            continue;
        }
        if (b->opt.verbose)
            printf("  warm-up %-16s %.0f messages\n", targets[t].name,
                   s.msgs);
        res[t].ran = 1;
        res[t].count = (uint64_t)(s.msgs / s.wall * b->opt.secs);
        if (res[t].count < 20)
            res[t].count = 20;
    }
}

static void print_sample(const phase *ph, int t, unsigned rep,
                         const sample *s)
{
    printf("  rep %u %-18s %8.3f GB/s %9.1f k msg/s", rep, targets[t].name,
           s->bytes / s->wall / 1e9, s->msgs / s->wall / 1e3);
    if (ph->rtt)
        printf(" p50 %.1f us p99 %.1f us", s->p50 * 1e6, s->p99 * 1e6);
    printf(" (cpu client %.0f%% server %.0f%%)\n", 100 * s->cpu_c / s->wall,
           100 * s->cpu_s / s->wall);
}

static void take_medians(const phase *ph, sample s[][MAX_REPS],
                         unsigned reps, int t, result *r)
{
    double rate[MAX_REPS], cc[MAX_REPS], cs[MAX_REPS], p50[MAX_REPS],
        p99[MAX_REPS], uc[MAX_REPS], us[MAX_REPS];

    for (unsigned i = 0; i < reps; i++) {
        const sample *x = &s[t][i];

        rate[i] = x->msgs / x->wall;
        cc[i] = x->cpu_c / x->wall;
        cs[i] = x->cpu_s / x->wall;
        uc[i] = x->cpu_c / x->msgs * 1e6;
        us[i] = x->cpu_s / x->msgs * 1e6;
        p50[i] = x->p50;
        p99[i] = x->p99;
    }
    r->us_c = median_of(uc, reps);
    r->us_s = median_of(us, reps);
    r->rate = median_of(rate, reps);
    r->gbs = r->rate * (double)ph->size / 1e9;
    r->med.cpu_c = median_of(cc, reps); /* fractions of the wall time */
    r->med.cpu_s = median_of(cs, reps);
    r->med.p50 = median_of(p50, reps);
    r->med.p99 = median_of(p99, reps);
}

static void run_reps(bench *b, const phase *ph, const int *list, int n,
                     result *res)
{
    static sample s[N_TARGETS][MAX_REPS];
    unsigned reps = b->opt.reps;

    for (unsigned i = 0; i < reps; i++) {
        for (int j = 0; j < n; j++) {
            /* Rotate the order: nobody always runs right after the same
             * server (or first, on a cold cache). */
            int t = list[((unsigned)j + i) % (unsigned)n];

            if (!res[t].ran)
                continue;
            if (measure(b, ph, t, res[t].count, &s[t][i]) != 0) {
                res[t].ran = 0;
                b->failed = 1;
            } else if (b->opt.verbose) {
                print_sample(ph, t, i, &s[t][i]);
            }
        }
    }
    for (int j = 0; j < n; j++)
        if (res[list[j]].ran)
            take_medians(ph, s, reps, list[j], &res[list[j]]);
}

/* ---- report ---- */

/* Who set the pace. Apart, a side whose cpu was busy nearly all the run;
 * on one shared cpu, the side that used more of it once it was full. */
static const char *limit_of(const result *r, int shared)
{
    int c = r->med.cpu_c >= 0.9, s = r->med.cpu_s >= 0.9;

    if (shared) {
        if (r->med.cpu_c + r->med.cpu_s < 0.9)
            return "neither";
        return r->med.cpu_s >= r->med.cpu_c ? "server" : "client";
    }
    return c && s ? "both" : c ? "client" : s ? "server" : "neither";
}

static void print_row(const phase *ph, int t, const result *r, int shared)
{
    if (!r->ran) {
        printf("  %-18s failed (see the messages above)\n", targets[t].name);
        return;
    }
    if (ph->rtt)
        printf("  %-18s %7.1f %7.1f %5.0f%% %5.0f%% %7.2f %7.2f %9llu\n",
               targets[t].name, r->med.p50 * 1e6, r->med.p99 * 1e6,
               100 * r->med.cpu_c, 100 * r->med.cpu_s, r->us_c, r->us_s,
               (unsigned long long)r->count);
    else
        printf("  %-18s %7.3f %8.1f %5.0f%% %5.0f%% %7.2f %7.2f  %-7s "
               "%9llu\n", targets[t].name, r->gbs, r->rate / 1e3,
               100 * r->med.cpu_c, 100 * r->med.cpu_s, r->us_c, r->us_s,
               limit_of(r, shared), (unsigned long long)r->count);
}

static void print_table(const phase *ph, const int *list, int n,
                        const result *res, int shared)
{
    if (ph->rtt)
        printf("  %-18s %7s %7s %6s %6s %7s %7s %9s\n", "server", "p50 us",
               "p99 us", "cpu c", "cpu s", "us/rt c", "us/rt s", "trips");
    else
        printf("  %-18s %7s %8s %6s %6s %7s %7s  %-7s %9s\n", "server",
               "GB/s", "k msg/s", "cpu c", "cpu s", "us/m c", "us/m s",
               "limit", "messages");
    printf("  (cpu c, cpu s: client's and server's cpu time as a share of "
           "the wall time; us/%s: their cpu microseconds per %s)\n",
           ph->rtt ? "rt" : "m", ph->rtt ? "round trip" : "message");
    for (int t = 0; t < N_TARGETS; t++)
        for (int j = 0; j < n; j++)
            if (list[j] == t)
                print_row(ph, t, &res[t], shared);
}

/* strata against a peer: messages/s, or how many times shorter strata's
 * round trip is. */
static void print_ratio(const phase *ph, const result *res, int peer)
{
    const result *st = &res[T_STRATA], *p = &res[peer];

    if (!p->ran)
        return;
    if (ph->rtt)
        printf("  %s p50 / strata p50: %.2fx\n", targets[peer].name,
               p->med.p50 / st->med.p50);
    else
        printf("  strata / %s: %.2fx\n", targets[peer].name,
               st->rate / p->rate);
}

static void add_goal(bench *b, const phase *ph, int known, int met,
                     const char *text)
{
    snprintf(b->goals[b->ngoals++], sizeof b->goals[0], "%-30s %s: %s",
             ph->title, text, !known ? "not measured" : met ? "met"
                                                           : "MISSED");
    printf("  goal: %s\n", b->goals[b->ngoals - 1] + 31);
}

static void verdict(bench *b, const phase *ph, const result *res)
{
    const result *st = &res[T_STRATA], *nd = &res[T_NODE],
                 *raw = &res[T_RAW_BLOCK];
    char text[160];

    if (!st->ran) {
        add_goal(b, ph, 0, 0, "strata's server did not run");
        return;
    }
    print_ratio(ph, res, T_NODE);
    print_ratio(ph, res, T_PYTHON);
    if (ph->goal == G_GBS) {
        snprintf(text, sizeof text, "strata %.2f GB/s >= 1.5", st->gbs);
        add_goal(b, ph, 1, st->gbs >= 1.5, text);
    } else if (ph->goal == G_VS_NODE) {
        if (nd->ran)
            snprintf(text, sizeof text, "strata / node ws %.2fx >= 1.5",
                     st->rate / nd->rate);
        else
            snprintf(text, sizeof text, "strata / node ws >= 1.5x");
        add_goal(b, ph, nd->ran, nd->ran && st->rate >= 1.5 * nd->rate,
                 text);
    } else {
        double q = raw->ran ? st->med.p50 / raw->med.p50 : 0;

        if (res[T_RAW_POLL].ran) /* the same system calls as a loop's */
            printf("  strata p50 / raw TCP (poll) p50: %.3f\n",
                   st->med.p50 / res[T_RAW_POLL].med.p50);
        if (raw->ran)
            snprintf(text, sizeof text, "strata p50 / raw TCP p50 %.3f "
                     "<= 1.15", q);
        else
            snprintf(text, sizeof text, "strata p50 / raw TCP p50 <= 1.15");
        add_goal(b, ph, raw->ran, raw->ran && q <= 1.15, text);
    }
}

static void run_phase(bench *b, const phase *ph)
{
    result res[N_TARGETS];
    int list[N_TARGETS], n = phase_targets(b, ph, list);
    char where[96];

    memset(res, 0, sizeof res);
    place(b, ph, where, sizeof where);
    printf("\n== %s (%s) ==\n", ph->title, where);
    fflush(stdout);
    warm_up(b, ph, list, n, res);
    run_reps(b, ph, list, n, res);
    print_table(ph, list, n, res, ph->rtt || !b->opt.split);
    verdict(b, ph, res);
    fflush(stdout);
}

/* ---- command line ---- */

static void usage(FILE *f)
{
    fprintf(f,
        "usage: bench_ws_echo [options]\n"
        "\n"
        "WebSocket echo over loopback: a strata client against strata's\n"
        "echo server, the strata tool (if it speaks ws), node's ws and\n"
        "Python's websockets servers, and a raw TCP echo for scale:\n"
        "64 KiB x 8 in flight (GB/s), 16 B x 64 in flight (messages/s),\n"
        "and the 16 B round trip p50 with 1 in flight next to a raw TCP\n"
        "ping-pong. Reps interleaved, medians, each side's cpu.\n"
        "Goals: >= 1.5 GB/s; >= 1.5x node's messages/s; round trip p50\n"
        "within 15%% of raw TCP's.\n"
        "\n"
        "  --quick        smoke run (2 reps of ~0.15 s, a few seconds)\n"
        "  --reps N       timed runs per server and phase (5)\n"
        "  --secs X       length of each timed run, seconds (1.0)\n"
        "  --only P       one phase: 64k, 16b or rtt\n"
        "  --no-node, --no-python, --no-cli, --no-strata, --no-raw\n"
        "                 leave that server out\n"
        "  --cli PATH     the strata tool to run as a server\n"
        "  --node-dir DIR where node's ws is (npm installs it if missing)\n"
        "  --peers DIR    the peers' scripts (echo_server.js, .py)\n"
        "  --python PATH  the Python with websockets (/usr/bin/python3)\n"
        "  --scratch N    client's ws masking scratch, bytes (layer default)\n"
        "  --rbuf N       client's ws buffered input, bytes (layer default)\n"
        "  --split        throughput phases with the client on one cpu and\n"
        "                 the servers on another (default: all on one cpu;\n"
        "                 the round trip is always measured on one cpu)\n"
        "  --no-pin       let the scheduler place client and servers\n"
        "  --verbose      print every run, not only the medians\n"
        "  --help         this text\n"
        "\n"
        "Exit code 0 whatever the goals; 1 if a server that started\n"
        "failed or echoed wrong data. Peers that cannot start are skipped.\n");
}

_Noreturn static void usage_exit(void)
{
    usage(stderr);
    exit(2);
}

static double parse_secs(const char *s)
{
    char *end;
    double v = s != NULL ? strtod(s, &end) : 0;

    if (s == NULL || *end != '\0' || !(v >= 0.01 && v <= 600))
        usage_exit();
    return v;
}

static unsigned long parse_reps_max(const char *s, unsigned long max)
{
    char *end;
    unsigned long v = s != NULL ? strtoul(s, &end, 10) : 0;

    if (s == NULL || *end != '\0' || v == 0 || v > max)
        usage_exit();
    return v;
}

static unsigned parse_reps(const char *s)
{
    return (unsigned)parse_reps_max(s, MAX_REPS);
}

static void defaults(options *o)
{
    memset(o, 0, sizeof *o);
    o->reps = 5;
    o->secs = 1.0;
    o->warm = 0.3;
    o->pin = o->node = o->python = o->cli = o->strata = o->raw = 1;
    o->peers_dir = BENCH_PEERS_DIR;
    o->node_dir = BENCH_NODE_DIR;
    o->python_bin = "/usr/bin/python3";
#ifdef BENCH_CLI
    o->cli_bin = BENCH_CLI;
#endif
}

/* Options that take a value; 0 when `a` is not one of them. */
static int parse_valued(const char *a, const char *v, options *o)
{
    if (strcmp(a, "--reps") == 0)
        o->reps = parse_reps(v);
    else if (strcmp(a, "--secs") == 0)
        o->secs = parse_secs(v);
    else if (v == NULL)
        return 0;
    else if (strcmp(a, "--scratch") == 0)
        o->scratch = (size_t)parse_reps_max(v, 64u * KIB * KIB);
    else if (strcmp(a, "--rbuf") == 0)
        o->rbuf = (size_t)parse_reps_max(v, 64u * KIB * KIB);
    else if (strcmp(a, "--only") == 0)
        o->only = v;
    else if (strcmp(a, "--cli") == 0)
        o->cli_bin = v;
    else if (strcmp(a, "--node-dir") == 0)
        o->node_dir = v;
    else if (strcmp(a, "--peers") == 0)
        o->peers_dir = v;
    else if (strcmp(a, "--python") == 0)
        o->python_bin = v;
    else
        return 0;
    return 1;
}

static int parse_flag(const char *a, options *o)
{
    if (strcmp(a, "--quick") == 0) {
        o->quick = 1;
        o->reps = 2;
        o->secs = 0.15;
        o->warm = 0.1;
    } else if (strcmp(a, "--no-node") == 0) {
        o->node = 0;
    } else if (strcmp(a, "--no-python") == 0) {
        o->python = 0;
    } else if (strcmp(a, "--no-cli") == 0) {
        o->cli = 0;
    } else if (strcmp(a, "--no-strata") == 0) {
        o->strata = 0;
    } else if (strcmp(a, "--no-raw") == 0) {
        o->raw = 0;
    } else if (strcmp(a, "--no-pin") == 0) {
        o->pin = 0;
    } else if (strcmp(a, "--split") == 0) {
        o->split = 1;
    } else if (strcmp(a, "--verbose") == 0) {
        o->verbose = 1;
    } else {
        return 0;
    }
    return 1;
}

static void parse_args(int argc, char **argv, options *o)
{
    defaults(o);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        if (parse_flag(argv[i], o))
            continue;
        if (!parse_valued(argv[i], i + 1 < argc ? argv[i + 1] : NULL, o))
            usage_exit();
        i++;
    }
    if (o->only != NULL && strcmp(o->only, "64k") != 0 &&
        strcmp(o->only, "16b") != 0 && strcmp(o->only, "rtt") != 0)
        usage_exit();
}

/* ---- main ---- */

static void choose_cpus(bench *b)
{
    int c[2], k = b->opt.pin ? usable_cpus(c, 2) : 0;

    b->cpus[0] = k >= 1 ? c[0] : -1;
    b->cpus[1] = k >= 2 ? c[1] : b->cpus[0];
}

/* The version field of node's ws package.json, for the header. */
static void node_ws_version(const options *o, char *out, size_t n)
{
    char path[PATH_MAX], buf[4096], *p;
    FILE *f;
    size_t len;

    snprintf(out, n, "?");
    snprintf(path, sizeof path, "%s/node_modules/ws/package.json",
             o->node_dir);
    if ((f = fopen(path, "r")) == NULL)
        return;
    len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    p = strstr(buf, "\"version\"");
    if (p != NULL && (p = strchr(p + 9, '"')) != NULL)
        snprintf(out, n, "%.*s", (int)strcspn(p + 1, "\""), p + 1);
}

static void print_header(const bench *b)
{
    double load = load_now();

    printf("bench_ws_echo: %u timed runs of ~%.2f s per server and phase, "
           "interleaved, after a %.2f s warm-up that checks every byte%s\n",
           b->opt.reps, b->opt.secs, b->opt.warm,
           b->opt.quick ? "; quick smoke run" : "");
    printf("build: %s%s; %ld cpus; load average before the run %.2f%s\n",
           BENCH_BUILD_TYPE,
           optimized() ? "" : " (unoptimized: numbers are not meaningful)",
           sysconf(_SC_NPROCESSORS_ONLN), load,
           load > 0.5 ? " (other processes compete: expect noise)" : "");
    printf("client: strata ws (client) -> wbuf 64 KiB -> socket, "
           "strata_wait between tries\n");
}

static void print_servers(const bench *b)
{
    static const char *const what[N_PROCS] = {
        "this program --serve tcp (blocking or poll-style echo)",
        "this program --serve strata (loop; ws -> wbuf 64 KiB -> socket)",
        "the strata tool: strata listen ws://127.0.0.1:0 --echo",
        "node", "python websockets 10.x (asyncio)"};
    char v[32];

    for (int i = 0; i < N_PROCS; i++) {
        const proc *p = &b->procs[i];

        if (i == P_NODE && p->pid > 0) {
            node_ws_version(&b->opt, v, sizeof v);
            printf("server %-18s pid %d port %d: %s %s\n", p->name,
                   (int)p->pid, p->port, "node ws", v);
        } else if (p->pid > 0) {
            printf("server %-18s pid %d port %d: %s\n", p->name,
                   (int)p->pid, p->port, what[i]);
        } else if (p->why[0] != '\0') {
            printf("server %-18s skipped: %s\n", p->name, p->why);
        }
    }
}

static void print_summary(const bench *b)
{
    printf("\nsummary:\n");
    for (int i = 0; i < b->ngoals; i++)
        printf("  %s\n", b->goals[i]);
    if (b->failed)
        printf("  a server failed or echoed wrong data: exit status 1\n");
}

static void init_procs(bench *b)
{
    static const char *const names[N_PROCS] = {
        "raw TCP", "strata", "strata CLI", "node ws", "python websockets"};

    memset(b->procs, 0, sizeof b->procs);
    for (int i = 0; i < N_PROCS; i++) {
        b->procs[i].name = names[i];
        b->procs[i].out_fd = -1;
    }
    g_procs = b->procs;
    atexit(stop_procs); /* die() too: no server outlives the bench */
}

static int serve(const char *what)
{
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(what, "tcp") == 0)
        return serve_tcp();
    if (strcmp(what, "strata") == 0)
        return serve_strata();
    usage_exit();
}

int main(int argc, char **argv)
{
    static bench b;

    bench_prog = "bench_ws_echo";
    if (argc == 3 && strcmp(argv[1], "--serve") == 0)
        return serve(argv[2]);
    parse_args(argc, argv, &b.opt);
    signal(SIGPIPE, SIG_IGN); /* a dead peer is an error, not a kill */
    init_procs(&b);
    choose_cpus(&b);
    print_header(&b);
    start_procs(&b);
    print_servers(&b);
    for (size_t i = 0; i < N_PHASES; i++)
        if (b.opt.only == NULL || strcmp(b.opt.only, phases[i].key) == 0)
            run_phase(&b, &phases[i]);
    print_summary(&b);
    stop_procs();
    return b.failed ? 1 : 0;
}
