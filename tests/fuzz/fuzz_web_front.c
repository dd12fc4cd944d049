/* libFuzzer target for the browsers' front on HTTP/1.1 (adapters/web.h):
 * the input is what a client sends on a plain connection, fed through a
 * pipe pair with a schedule; the front reads request after request and
 * answers each (files of a small site, the statuses of bad requests)
 * while the client end reads the answers, until the front ends or hands
 * over a WebSocket. Checked: only the statuses the contract names come
 * back, the front ends (no loop without progress), an Upgrade's head is
 * complete and the ws layer takes it (strata_ws_opts.request) and drives
 * its handshake without harm. ASan and leak checks do the rest.
 *
 * Input: b0 = pipe max_chunk (bits 0-1: none, 1, 3, 64) and injected NEED
 * codes (bit 2: 30%); the rest is the client's bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <strata/stream.h>
#include <strata/pipe.h>
#include <strata/web.h>
#include <strata/ws.h>

#define STEP_LIMIT 100000L

#define CHECK(c)                                                          \
    do {                                                                  \
        if (!(c)) {                                                       \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,        \
                    __LINE__, #c);                                        \
            abort();                                                      \
        }                                                                 \
    } while (0)

static char top[4096];
static strata_web_site site;

static const char *at(const char *rel)
{
    static char p[4200];

    snprintf(p, sizeof p, "%s/%s", top, rel);
    return p;
}

static void put(const char *rel, const char *text)
{
    FILE *f = fopen(at(rel), "w");

    CHECK(f != NULL);
    fputs(text, f);
    CHECK(fclose(f) == 0);
}

static void cleanup(void)
{
    unlink(at("index.html"));
    unlink(at("a.js"));
    unlink(at("sub/index.html"));
    rmdir(at("sub"));
    rmdir(top);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *tmp = getenv("TMPDIR");

    (void)argc;
    (void)argv;
    snprintf(top, sizeof top, "%s/strata_fuzz_front_XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : P_tmpdir);
    CHECK(mkdtemp(top) != NULL);
    atexit(cleanup);
    put("index.html", "<p>index</p>\n");
    put("a.js", "let a = 1;\n");
    CHECK(mkdir(at("sub"), 0755) == 0);
    put("sub/index.html", "<p>sub</p>\n");
    CHECK(strata_web_site_init(&site, top) == 0);
    return 0;
}

static int is_need(long r)
{
    return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE;
}

/* The client end reads (and drops) what the server answered. */
static void drain(strata_stream *cli)
{
    char buf[4096];
    unsigned flags;

    while (strata_recv(cli, buf, sizeof buf, &flags) > 0)
        ;
}

/* The head handed over goes to the ws layer, whose handshake answers it
 * (101 or a refusal) over what the front read. */
static void take_websocket(strata_web_front *f, strata_stream *cli)
{
    const strata_http1_head *h = strata_web_front_request(f);
    strata_stream *s, *ws;
    strata_ws_opts o;
    long i;

    CHECK(h != NULL && h->method != NULL && h->target != NULL);
    memset(&o, 0, sizeof o);
    o.role = STRATA_WS_SERVER;
    o.request = h;
    s = strata_web_front_take(f);
    CHECK(s != NULL);
    ws = strata_ws_new(s, &o, NULL);
    if (ws == NULL) {
        strata_free(s);
        return;
    }
    for (i = 0; i < STEP_LIMIT; i++) {
        int r = strata_ws_handshake(ws);
        drain(cli);
        if (!is_need(r))
            break;
    }
    strata_free(ws);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t chunks[4] = { 0, 1, 3, 64 };
    strata_pipe_opts po;
    strata_stream *cli, *srv;
    strata_web_front *f;
    size_t off = 1;
    long i;
    int r = STRATA_NEED_READ;

    if (size < 1)
        return 0;
    memset(&po, 0, sizeof po);
    po.capacity = 8192;
    po.max_chunk = chunks[data[0] & 3];
    po.need_percent = (data[0] & 4) ? 30 : 0;
    po.seed = data[0];
    CHECK(strata_pipe_pair(&cli, &srv, &po, NULL) == 0);
    f = strata_web_front_new(srv, &site, NULL);
    CHECK(f != NULL);
    if (off == size)
        (void)strata_shutdown(cli);
    for (i = 0; i < STEP_LIMIT && is_need(r); i++) {
        if (off < size) {
            ssize_t n = strata_send(cli, data + off, size - off, 0);
            if (n > 0)
                off += (size_t)n;
            if (off == size)
                (void)strata_shutdown(cli);
        }
        r = strata_web_front_step(f);
        drain(cli);
    }
    /* what the contract allows: a handover, an end, an error value */
    CHECK(r == STRATA_WEB_WEBSOCKET || r == STRATA_EOF || r < 0);
    CHECK(r != STRATA_WEB_H2); /* no TLS: never HTTP/2 */
    CHECK(!is_need(r)); /* all sent and shut: the front must end */
    if (r == STRATA_WEB_WEBSOCKET)
        take_websocket(f, cli);
    strata_web_front_free(f);
    strata_free(cli);
    return 0;
}
