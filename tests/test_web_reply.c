/* Replies to plain requests (adapters/web.h): targets resolved over a real
 * directory tree (files, index pages, hidden names, symlinks in and out of
 * the root, every malformed form), content types, and replies written as
 * HTTP/1.1 to a pipe pair and read back with the HTTP/1.1 head reader, and
 * on a real HTTP/2 client/server pair, a 1 MiB file through small windows
 * and rings included. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <strata/stream.h>
#include <strata/buffered.h>
#include <strata/pipe.h>
#include <strata/http1.h>
#include <strata/h2.h>
#include <strata/web.h>

#include "harness.h"

#define BIG (1024 * 1024)
#define MAX_MADE 64

/* The tree every test reads: made once, removed at the end. */
static struct {
    char top[PATH_MAX];
    strata_web_site site;   /* root: top/root */
    strata_web_site bare;   /* no root: the default page */
    uint8_t *big;           /* root/big.bin */
    char made[MAX_MADE][PATH_MAX];
    int n_made;
} fx;

static const char *in_top(const char *rel)
{
    static char buf[4][PATH_MAX];
    static int k;

    k = (k + 1) % 4;
    if (snprintf(buf[k], sizeof buf[k], "%s/%s", fx.top, rel) >= PATH_MAX)
        fail_msg("path too long: %s", rel);
    return buf[k];
}

static void remember(const char *path)
{
    assert_true(fx.n_made < MAX_MADE);
    if (snprintf(fx.made[fx.n_made++], PATH_MAX, "%s", path) >= PATH_MAX)
        fail_msg("path too long: %s", path);
}

static void put_file(const char *rel, const void *data, size_t len)
{
    const char *path = in_top(rel);
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    remember(path);
}

static void put_text(const char *rel, const char *text)
{
    put_file(rel, text, strlen(text));
}

static void put_dir(const char *rel)
{
    assert_int_equal(mkdir(in_top(rel), 0755), 0);
    remember(in_top(rel));
}

static void put_link(const char *rel, const char *to)
{
    assert_int_equal(symlink(to, in_top(rel)), 0);
    remember(in_top(rel));
}

static int setup(void **state)
{
    const char *tmp = getenv("TMPDIR");
    uint64_t x = 42;
    size_t i;

    (void)state;
    snprintf(fx.top, sizeof fx.top, "%s/strata_web_XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : P_tmpdir);
    if (mkdtemp(fx.top) == NULL)
        return -1;
    fx.big = malloc(BIG);
    if (fx.big == NULL)
        return -1;
    for (i = 0; i < BIG; i++)
        fx.big[i] = (uint8_t)(strata_rand(&x) >> 56);
    put_text("outside.txt", "outside\n");
    put_dir("outdir");
    put_text("outdir/x.txt", "out x\n");
    put_dir("root");
    put_text("root/index.html", "<!doctype html><title>home</title>\n");
    put_text("root/a.txt", "alpha\n");
    put_text("root/app.js", "console.log(1);\n");
    put_text("root/style.css", "body{}\n");
    put_file("root/big.bin", fx.big, BIG);
    put_file("root/empty.txt", "", 0);
    put_text("root/%41", "percent\n");
    put_text("root/file with space.txt", "spaced\n");
    put_text("root/.secret", "hidden\n");
    put_dir("root/sub");
    put_text("root/sub/index.html", "sub index\n");
    put_text("root/sub/.hidden", "hidden too\n");
    put_dir("root/nosub");
    put_text("root/nosub/x.txt", "x\n");
    put_dir("root/.git");
    put_text("root/.git/config", "[core]\n");
    put_dir("root/onlydir");
    put_dir("root/onlydir/index.html");   /* a directory, not a page */
    assert_int_equal(mkfifo(in_top("root/fifo"), 0600), 0);
    remember(in_top("root/fifo"));
    put_link("root/link_out", "../outside.txt");
    put_link("root/link_out_abs", in_top("outside.txt"));
    put_link("root/link_in", "a.txt");
    put_link("root/link_up_in", "sub/../a.txt");
    put_link("root/link_dir", "sub");
    put_link("root/link_dir_out", "../outdir");
    put_link("root/link_hidden", ".secret");
    put_link("root/link_git", ".git");
    put_link("root/dangling", "nowhere");
    assert_int_equal(strata_web_site_init(&fx.site, in_top("root")), 0);
    assert_int_equal(strata_web_site_init(&fx.bare, NULL), 0);
    fx.bare.name = "demo <&> site";
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    while (fx.n_made > 0)
        (void)remove(fx.made[--fx.n_made]);
    (void)rmdir(fx.top);
    free(fx.big);
    return 0;
}

/* ---- resolve ------------------------------------------------------------- */

/* target resolves to status and, for 200, to root/want. */
static void expect(const strata_web_site *site, const char *target,
                   int status, const char *want)
{
    char out[PATH_MAX], full[PATH_MAX * 2];
    int st = strata_web_resolve(site, target, out, sizeof out);

    if (st != status)
        fail_msg("%s: %d, expected %d", target, st, status);
    if (status != 200)
        return;
    if (want[0] == '\0') {
        assert_string_equal(out, "");
        return;
    }
    if (snprintf(full, sizeof full, "%s/%s", site->root, want) >=
        (int)sizeof full)
        fail_msg("path too long: %s", want);
    if (strcmp(out, full) != 0)
        fail_msg("%s: %s, expected %s", target, out, full);
}

static void test_resolve_files(void **state)
{
    const strata_web_site *s = &fx.site;

    (void)state;
    expect(s, "/", 200, "index.html");
    expect(s, "/index.html", 200, "index.html");
    expect(s, "/?x=1", 200, "index.html");
    expect(s, "/a.txt", 200, "a.txt");
    expect(s, "//a.txt", 200, "a.txt");
    expect(s, "/a.txt?x=/../..#f", 200, "a.txt");
    expect(s, "/a.txt#frag", 200, "a.txt");
    expect(s, "/%61.txt", 200, "a.txt");
    expect(s, "/a%2Etxt", 200, "a.txt");
    expect(s, "/file%20with%20space.txt", 200, "file with space.txt");
    expect(s, "/%2541", 200, "%41");   /* decoded once */
    expect(s, "/%41", 404, NULL);
    expect(s, "/sub", 200, "sub/index.html");
    expect(s, "/sub/", 200, "sub/index.html");
    expect(s, "//sub//", 200, "sub/index.html");
    expect(s, "/sub/index.html", 200, "sub/index.html");
    expect(s, "/nosub/x.txt", 200, "nosub/x.txt");
    expect(s, "/nosub", 404, NULL);
    expect(s, "/nosub/", 404, NULL);
    expect(s, "/onlydir", 404, NULL);
    expect(s, "/nope", 404, NULL);
    expect(s, "/a.txt/", 404, NULL);
    expect(s, "/a.txt/b", 404, NULL);
    expect(s, "/fifo", 404, NULL);
    expect(s, "/dangling", 404, NULL);
}

static void test_resolve_symlinks(void **state)
{
    const strata_web_site *s = &fx.site;

    (void)state;
    expect(s, "/link_in", 200, "a.txt");
    expect(s, "/link_up_in", 200, "a.txt");
    expect(s, "/link_dir", 200, "sub/index.html");
    expect(s, "/link_dir/", 200, "sub/index.html");
    expect(s, "/link_out", 404, NULL);
    expect(s, "/link_out_abs", 404, NULL);
    expect(s, "/link_dir_out/x.txt", 404, NULL);
    expect(s, "/link_dir_out/", 404, NULL);
    expect(s, "/link_hidden", 404, NULL);
    expect(s, "/link_git/config", 404, NULL);
}

static void test_resolve_hidden(void **state)
{
    const strata_web_site *s = &fx.site;

    (void)state;
    expect(s, "/.secret", 404, NULL);
    expect(s, "/%2esecret", 404, NULL);
    expect(s, "/.git/config", 404, NULL);
    expect(s, "/sub/.hidden", 404, NULL);
    expect(s, "/.nothing", 404, NULL);
    expect(s, "/.secret/%zz", 400, NULL);   /* malformed beats hidden */
}

static void test_resolve_bad(void **state)
{
    static const char *const bad[] = {
        "", "*", "a.txt", "http://x/a.txt",
        "/%", "/%4", "/%zz", "/%g1", "/a%2", "/a%2ftxt", "/sub%2Findex.html",
        "/a%00.txt", "/%00",
        "/.", "/..", "/../a.txt", "/../../etc/passwd", "/sub/..",
        "/sub/../a.txt", "/./a.txt", "/sub/./index.html", "//..//a.txt",
        "/%2e%2e/a.txt", "/%2E%2e/a.txt", "/.%2e/a.txt", "/%2e./a.txt",
        "/%2e/a.txt", "/sub/%2e%2e", "/sub/%2E",
        "/a\\b", "/..\\a.txt", "/%5c", "/%5C..", "/a\tb", "/a%09b",
        "/a%0a", "/a%0D%0Ab", "/a\x01", "/a%1f", "/a%7f", "/a\x7f",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect(&fx.site, bad[i], 400, NULL);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect(&fx.bare, bad[i], 400, NULL);
}

static void test_resolve_too_long(void **state)
{
    char *t = malloc(6000), out[8];
    int st;

    (void)state;
    assert_non_null(t);
    t[0] = '/';
    memset(t + 1, 'a', 5998);
    t[5999] = '\0';
    expect(&fx.site, t, 414, NULL);
    memset(t + 1, '/', 5998);   /* slashes collapse: just "/" */
    expect(&fx.site, t, 200, "index.html");
    free(t);
    /* a path that does not fit out */
    st = strata_web_resolve(&fx.site, "/a.txt", out, sizeof out);
    assert_int_equal(st, 414);
}

static void test_resolve_no_root(void **state)
{
    const strata_web_site *s = &fx.bare;

    (void)state;
    expect(s, "/", 200, "");
    expect(s, "//", 200, "");
    expect(s, "/?q=1", 200, "");
    expect(s, "/index.html", 404, NULL);
    expect(s, "/a.txt", 404, NULL);
    expect(s, "/.secret", 404, NULL);
}

static void test_types(void **state)
{
    (void)state;
    assert_string_equal(strata_web_type("/r/i.html"),
                        "text/html; charset=utf-8");
    assert_string_equal(strata_web_type("I.HTML"), "text/html; charset=utf-8");
    assert_string_equal(strata_web_type("a.js"),
                        "text/javascript; charset=utf-8");
    assert_string_equal(strata_web_type("a.mjs"),
                        "text/javascript; charset=utf-8");
    assert_string_equal(strata_web_type("a.css"), "text/css; charset=utf-8");
    assert_string_equal(strata_web_type("a.json"), "application/json");
    assert_string_equal(strata_web_type("a.png"), "image/png");
    assert_string_equal(strata_web_type("a.svg"), "image/svg+xml");
    assert_string_equal(strata_web_type("a.txt"), "text/plain; charset=utf-8");
    assert_string_equal(strata_web_type("favicon.ico"), "image/x-icon");
    assert_string_equal(strata_web_type("m.wasm"), "application/wasm");
    assert_string_equal(strata_web_type("big.bin"), "application/octet-stream");
    assert_string_equal(strata_web_type("README"), "application/octet-stream");
    assert_string_equal(strata_web_type("d.html/file"),
                        "application/octet-stream");
    assert_string_equal(strata_web_type("a.html.gz"),
                        "application/octet-stream");
}

/* ---- HTTP/1.1 ------------------------------------------------------------ */

typedef struct h1_got {
    strata_http1_head head;
    char store[8192];
    uint8_t *body;       /* the bytes behind the head up to the close */
    size_t body_len;
    unsigned long needs; /* NEED codes the reply returned */
} h1_got;

static int is_need(long r)
{
    return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE;
}

/* Read whatever the client end has: the head first, then body bytes.
 * 1 once the server's end was seen. */
static int h1_read(strata_stream *in, h1_got *g, size_t body_cap)
{
    ssize_t n;
    int st;

    if (!g->head.done) {
        st = strata_http1_read_response(strata_buffered_of(in), &g->head);
        if (is_need(st))
            return 0;
        assert_int_equal(st, 0);
    }
    for (;;) {
        n = strata_read(in, g->body + g->body_len, body_cap - g->body_len);
        if (is_need(n))
            return 0;
        if (n == STRATA_EOF)
            return 1;
        assert_true(n > 0);
        g->body_len += (size_t)n;
        assert_true(g->body_len < body_cap);   /* never more than expected */
    }
}

/* Write each reply in turn on the server end of a pipe pair (the last
 * with keep_alive as given, the others keep-alive), then close it; read
 * it all on the client end. g[i] gets reply i's head; all the body bytes
 * land in g[last] unless split by the caller (see test_h1_keep_alive). */
static void h1_exchange(strata_web_reply *r, int keep_alive,
                        const strata_pipe_opts *po, h1_got *g)
{
    strata_stream *srv, *cli, *in;
    int done = 0, eof = 0, st;
    long rounds = 0;

    memset(g, 0, sizeof *g);
    strata_http1_head_init(&g->head, g->store, sizeof g->store, 0);
    g->body = malloc(BIG + 2);
    assert_non_null(g->body);
    assert_int_equal(strata_pipe_pair(&srv, &cli, po, NULL), 0);
    in = strata_buffered_new(cli, 4096, NULL);
    assert_non_null(in);
    while (!eof) {
        assert_true(++rounds < 10000000L);
        if (!done) {
            st = strata_web_reply_http1(r, srv, keep_alive);
            if (st == 0) {
                done = 1;
                assert_int_equal(strata_shutdown(srv), 0);
            } else {
                assert_true(is_need(st));
                g->needs++;
            }
        }
        eof = h1_read(in, g, BIG + 2);
    }
    assert_true(done);
    /* done stays done */
    assert_int_equal(strata_web_reply_http1(r, srv, keep_alive), 0);
    strata_free(srv);
    strata_free(in);
}

static void h1_got_free(h1_got *g)
{
    free(g->body);
}

static void check_h1(const h1_got *g, int status, const char *type,
                     size_t len, const char *connection)
{
    char clen[32];

    snprintf(clen, sizeof clen, "%zu", len);
    assert_string_equal(g->head.version, "HTTP/1.1");
    assert_int_equal(g->head.status, status);
    assert_string_equal(strata_http1_get(&g->head, "Content-Type"), type);
    assert_string_equal(strata_http1_get(&g->head, "Content-Length"), clen);
    assert_string_equal(strata_http1_get(&g->head, "X-Content-Type-Options"),
                        "nosniff");
    assert_string_equal(strata_http1_get(&g->head, "Cache-Control"),
                        "no-cache");
    assert_string_equal(strata_http1_get(&g->head, "Connection"), connection);
}

static strata_web_reply *get(const strata_web_site *site, const char *method,
                             const char *target)
{
    strata_web_reply *r = strata_web_reply_new(site, method, target, NULL);

    assert_non_null(r);
    return r;
}

static void test_h1_small_file(void **state)
{
    strata_web_reply *r = get(&fx.site, "GET", "/a.txt");
    h1_got g;

    (void)state;
    assert_int_equal(strata_web_reply_status(r), 200);
    assert_string_equal(strata_web_reply_type(r), "text/plain; charset=utf-8");
    h1_exchange(r, 1, NULL, &g);
    check_h1(&g, 200, "text/plain; charset=utf-8", 6, "keep-alive");
    assert_null(strata_http1_get(&g.head, "Allow"));
    assert_int_equal(g.body_len, 6);
    assert_memory_equal(g.body, "alpha\n", 6);
    h1_got_free(&g);
    strata_web_reply_free(r);
    /* close asked: said so */
    r = get(&fx.site, "GET", "/sub/");
    h1_exchange(r, 0, NULL, &g);
    check_h1(&g, 200, "text/html; charset=utf-8", 10, "close");
    assert_memory_equal(g.body, "sub index\n", 10);
    h1_got_free(&g);
    strata_web_reply_free(r);
}

/* 1 MiB through a 4 KiB ring moving at most 1000 bytes a call, with
 * injected NEED codes: the reply goes in steps and every byte arrives. */
static void test_h1_big_file(void **state)
{
    strata_pipe_opts po;
    strata_web_reply *r = get(&fx.site, "GET", "/big.bin");
    h1_got g;

    (void)state;
    memset(&po, 0, sizeof po);
    po.capacity = 4096;
    po.max_chunk = 1000;
    po.need_percent = 20;
    po.seed = strata_test_seed();
    h1_exchange(r, 1, &po, &g);
    check_h1(&g, 200, "application/octet-stream", BIG, "keep-alive");
    assert_true(g.needs > 100);
    assert_int_equal(g.body_len, BIG);
    assert_memory_equal(g.body, fx.big, BIG);
    h1_got_free(&g);
    strata_web_reply_free(r);
}

static void test_h1_head(void **state)
{
    strata_web_reply *r = get(&fx.site, "HEAD", "/big.bin");
    h1_got g;

    (void)state;
    h1_exchange(r, 1, NULL, &g);
    check_h1(&g, 200, "application/octet-stream", BIG, "keep-alive");
    assert_int_equal(g.body_len, 0);
    h1_got_free(&g);
    strata_web_reply_free(r);
    r = get(&fx.site, "HEAD", "/nope");   /* an error's head, no body */
    h1_exchange(r, 0, NULL, &g);
    check_h1(&g, 404, "text/plain; charset=utf-8",
             strlen("404 Not Found: no such file\n"), "close");
    assert_int_equal(g.body_len, 0);
    h1_got_free(&g);
    strata_web_reply_free(r);
}

static void test_h1_empty_file(void **state)
{
    strata_web_reply *r = get(&fx.site, "GET", "/empty.txt");
    h1_got g;

    (void)state;
    h1_exchange(r, 1, NULL, &g);
    check_h1(&g, 200, "text/plain; charset=utf-8", 0, "keep-alive");
    assert_int_equal(g.body_len, 0);
    h1_got_free(&g);
    strata_web_reply_free(r);
}

static void check_error(const char *method, const char *target, int status,
                        const char *body, const char *allow)
{
    strata_web_reply *r = get(&fx.site, method, target);
    h1_got g;

    assert_int_equal(strata_web_reply_status(r), status);
    h1_exchange(r, 0, NULL, &g);
    check_h1(&g, status, "text/plain; charset=utf-8", strlen(body), "close");
    assert_int_equal(g.body_len, strlen(body));
    assert_memory_equal(g.body, body, strlen(body));
    if (allow == NULL)
        assert_null(strata_http1_get(&g.head, "Allow"));
    else
        assert_string_equal(strata_http1_get(&g.head, "Allow"), allow);
    h1_got_free(&g);
    strata_web_reply_free(r);
}

static void test_h1_errors(void **state)
{
    static const char *const not_allowed[] = {
        "OPTIONS", "POST", "PUT", "DELETE", "PATCH", "TRACE", "CONNECT",
    };
    size_t i;

    (void)state;
    check_error("GET", "/nope", 404, "404 Not Found: no such file\n", NULL);
    check_error("GET", "/link_out", 404,
                "404 Not Found: outside the root\n", NULL);
    check_error("GET", "/.secret", 404, "404 Not Found: hidden file\n", NULL);
    check_error("GET", "/../a.txt", 400, "400 Bad Request: dot segment\n",
                NULL);
    for (i = 0; i < sizeof not_allowed / sizeof not_allowed[0]; i++)
        check_error(not_allowed[i], "/a.txt", 405,
                    "405 Method Not Allowed: only GET and HEAD\n",
                    "GET, HEAD");
    check_error("BREW", "/a.txt", 501,
                "501 Not Implemented: method not implemented\n", NULL);
    check_error("get", "/a.txt", 501,
                "501 Not Implemented: method not implemented\n", NULL);
}

static void test_h1_reply_error(void **state)
{
    strata_web_reply *r = strata_web_reply_error(431, "head too big", NULL);
    h1_got g;

    (void)state;
    assert_non_null(r);
    assert_int_equal(strata_web_reply_status(r), 431);
    h1_exchange(r, 0, NULL, &g);
    check_h1(&g, 431, "text/plain; charset=utf-8", 50, "close");
    assert_memory_equal(g.body,
                        "431 Request Header Fields Too Large: head too big\n",
                        50);
    h1_got_free(&g);
    strata_web_reply_free(r);
    r = strata_web_reply_error(505, NULL, NULL);
    h1_exchange(r, 0, NULL, &g);
    check_h1(&g, 505, "text/plain; charset=utf-8", 31, "close");
    assert_memory_equal(g.body, "505 HTTP Version Not Supported\n", 31);
    h1_got_free(&g);
    strata_web_reply_free(r);
    r = strata_web_reply_error(200, "not an error", NULL);
    assert_int_equal(strata_web_reply_status(r), 500);
    strata_web_reply_free(r);
}

static void test_h1_default_page(void **state)
{
    strata_web_reply *r = get(&fx.bare, "GET", "/");
    h1_got g;

    (void)state;
    assert_string_equal(strata_web_reply_type(r), "text/html; charset=utf-8");
    h1_exchange(r, 1, NULL, &g);
    check_h1(&g, 200, "text/html; charset=utf-8", g.body_len, "keep-alive");
    g.body[g.body_len] = '\0';
    assert_non_null(strstr((char *)g.body, "<title>demo &lt;&amp;&gt; site"));
    assert_null(strstr((char *)g.body, "<&>"));
    assert_non_null(strstr((char *)g.body, "RFC 8441"));
    assert_non_null(strstr((char *)g.body, "HTTP/1.1"));
    h1_got_free(&g);
    strata_web_reply_free(r);
    r = get(&fx.bare, "GET", "/index.html");
    assert_int_equal(strata_web_reply_status(r), 404);
    strata_web_reply_free(r);
}

/* Two replies on one connection: the reader finds the second head right
 * behind the first body, so the first sent exactly its Content-Length. */
static void test_h1_keep_alive(void **state)
{
    strata_stream *srv, *cli, *in;
    strata_web_reply *r[3];
    strata_http1_head h;
    char store[4096];
    uint8_t body[64];
    const char *want[3] = {"alpha\n", "", "sub index\n"};
    int i, st;
    size_t got;
    ssize_t n;

    (void)state;
    r[0] = get(&fx.site, "GET", "/a.txt");
    r[1] = get(&fx.site, "HEAD", "/sub/");
    r[2] = get(&fx.site, "GET", "/sub/");
    assert_int_equal(strata_pipe_pair(&srv, &cli, NULL, NULL), 0);
    in = strata_buffered_new(cli, 4096, NULL);
    for (i = 0; i < 3; i++)
        assert_int_equal(strata_web_reply_http1(r[i], srv, i < 2), 0);
    assert_int_equal(strata_shutdown(srv), 0);
    for (i = 0; i < 3; i++) {
        strata_http1_head_init(&h, store, sizeof store, 0);
        st = strata_http1_read_response(strata_buffered_of(in), &h);
        assert_int_equal(st, 0);
        assert_int_equal(h.status, 200);
        assert_string_equal(strata_http1_get(&h, "Connection"),
                            i < 2 ? "keep-alive" : "close");
        assert_string_equal(strata_http1_get(&h, "Content-Length"),
                            i == 0 ? "6" : "10");
        for (got = 0; got < strlen(want[i]); got += (size_t)n) {
            n = strata_read(in, body + got, strlen(want[i]) - got);
            assert_true(n > 0);
        }
        assert_memory_equal(body, want[i], strlen(want[i]));
    }
    assert_int_equal(strata_read(in, body, sizeof body), STRATA_EOF);
    for (i = 0; i < 3; i++)
        strata_web_reply_free(r[i]);
    strata_free(srv);
    strata_free(in);
}

/* The descriptor the next open gets: the lowest free one. */
static int lowest_fd(void)
{
    int fd = open(in_top("root/a.txt"), O_RDONLY);

    assert_true(fd >= 0);
    close(fd);
    return fd;
}

/* A reply costs the same memory for 1 MiB as for 6 bytes (one 16 KiB
 * buffer), gives it all back, and closes its file. */
static void test_memory_bounded(void **state)
{
    static const char *const targets[] = {"/a.txt", "/big.bin"};
    strata_test_meter m;
    strata_allocator a;
    strata_web_reply *r;
    size_t peak[2];
    h1_got g;
    int i, fd_before, fd_after;

    (void)state;
    for (i = 0; i < 2; i++) {
        memset(&m, 0, sizeof m);
        a = strata_test_meter_allocator(&m);
        fd_before = lowest_fd();
        r = strata_web_reply_new(&fx.site, "GET", targets[i], &a);
        assert_non_null(r);
        h1_exchange(r, 1, NULL, &g);
        assert_int_equal(g.head.status, 200);
        h1_got_free(&g);
        strata_web_reply_free(r);
        fd_after = lowest_fd();
        assert_int_equal(fd_after, fd_before);   /* the file was closed */
        assert_int_equal(m.count.live, 0);
        assert_int_equal(m.bytes, 0);
        peak[i] = m.peak_bytes;
    }
    assert_true(peak[0] > 16384 && peak[0] < 16384 + 1024);
    assert_int_equal(peak[1], peak[0]);
    /* out of memory: NULL, no descriptor left open */
    memset(&m, 0, sizeof m);
    m.count.refuse = 1;
    a = strata_test_meter_allocator(&m);
    fd_before = lowest_fd();
    assert_null(strata_web_reply_new(&fx.site, "GET", "/a.txt", &a));
    assert_null(strata_web_reply_error(404, NULL, &a));
    fd_after = lowest_fd();
    assert_int_equal(fd_after, fd_before);
}

/* A file that shrinks after its Content-Length went out cannot be
 * finished: the reply says so instead of sending short. */
static void test_h1_file_shrinks(void **state)
{
    strata_stream *srv, *cli;
    strata_pipe_opts po;
    strata_web_reply *r;
    int st = 0, i;

    (void)state;
    put_file("root/shrinks.bin", fx.big, 100000);
    r = get(&fx.site, "GET", "/shrinks.bin");
    memset(&po, 0, sizeof po);
    po.capacity = 4096;
    assert_int_equal(strata_pipe_pair(&srv, &cli, &po, NULL), 0);
    assert_int_equal(strata_web_reply_http1(r, srv, 1), STRATA_NEED_WRITE);
    assert_int_equal(truncate(in_top("root/shrinks.bin"), 20000), 0);
    for (i = 0; i < 1000; i++) {
        uint8_t sink[4096];

        (void)strata_read(cli, sink, sizeof sink);
        st = strata_web_reply_http1(r, srv, 1);
        if (!is_need(st))
            break;
    }
    assert_int_equal(st, STRATA_ERR_IO);
    strata_web_reply_free(r);
    strata_free(srv);
    strata_free(cli);
}

/* ---- HTTP/2 -------------------------------------------------------------- */

typedef struct conn {
    strata_h2 *c, *s;
} conn;

static void conn_open(conn *k, const strata_pipe_opts *po)
{
    strata_stream *a, *b;
    strata_h2_opts co, so;

    memset(&co, 0, sizeof co);
    memset(&so, 0, sizeof so);
    co.role = STRATA_H2_CLIENT;
    so.role = STRATA_H2_SERVER;
    assert_int_equal(strata_pipe_pair(&a, &b, po, NULL), 0);
    k->c = strata_h2_new(a, &co, NULL);
    k->s = strata_h2_new(b, &so, NULL);
    assert_non_null(k->c);
    assert_non_null(k->s);
}

static void conn_close(conn *k)
{
    strata_h2_free(k->c);
    strata_h2_free(k->s);
}

static void pump(conn *k)
{
    (void)strata_h2_drive(k->c);
    (void)strata_h2_drive(k->s);
}

/* A server stream answered by a reply made from its request head. */
typedef struct job {
    strata_stream *ss;
    strata_web_reply *r;
    int done;
} job;

static strata_stream *request(conn *k, const char *method, const char *path)
{
    strata_h2_header head[] = {
        {":method", method}, {":scheme", "https"}, {":authority", "test"},
        {":path", path},
    };
    strata_stream *cs = NULL;

    assert_int_equal(strata_h2_request(k->c, head, 4, STRATA_H2_END_STREAM,
                                       &cs), 0);
    return cs;
}

static void accept_job(conn *k, job *j)
{
    int i;

    memset(j, 0, sizeof *j);
    for (i = 0; i < 1000 && j->ss == NULL; i++) {
        pump(k);
        j->ss = strata_h2_accept(k->s);
    }
    assert_non_null(j->ss);
    j->r = get(&fx.site, strata_h2_get(j->ss, ":method"),
               strata_h2_get(j->ss, ":path"));
}

static void step_jobs(job *jobs, int n)
{
    int i, st;

    for (i = 0; i < n; i++) {
        if (jobs[i].done)
            continue;
        st = strata_web_reply_h2(jobs[i].r, jobs[i].ss);
        if (st == 0)
            jobs[i].done = 1;
        else if (!is_need(st))
            fail_msg("reply_h2: %s", strata_strerror(st));
    }
}

/* Read cs to its end, the server's jobs going on meanwhile. */
static size_t fetch(conn *k, strata_stream *cs, job *jobs, int n,
                    uint8_t *buf, size_t cap)
{
    size_t got = 0;
    ssize_t r;
    long i;

    for (i = 0; i < 10000000L; i++) {
        step_jobs(jobs, n);
        r = strata_read(cs, buf + got, cap - got);
        if (r == STRATA_EOF)
            return got;
        if (r > 0) {
            got += (size_t)r;
            assert_true(got < cap);
            continue;
        }
        assert_true(is_need(r));
        pump(k);
    }
    fail_msg("no end");
    return got;
}

static void end_job(job *j)
{
    strata_web_reply_free(j->r);
    strata_free(j->ss);
}

static void test_h2_big_file(void **state)
{
    strata_pipe_opts po;
    uint8_t *buf = malloc(BIG + 1);
    strata_stream *cs;
    conn k;
    job j;

    (void)state;
    assert_non_null(buf);
    memset(&po, 0, sizeof po);
    po.capacity = 8192;
    po.max_chunk = 3000;
    po.need_percent = 10;
    po.seed = strata_test_seed();
    conn_open(&k, &po);
    cs = request(&k, "GET", "/big.bin");
    accept_job(&k, &j);
    assert_int_equal(fetch(&k, cs, &j, 1, buf, BIG + 1), BIG);
    assert_true(j.done);
    assert_memory_equal(buf, fx.big, BIG);
    assert_int_equal(strata_h2_status(cs), 200);
    assert_string_equal(strata_h2_get(cs, "content-type"),
                        "application/octet-stream");
    assert_string_equal(strata_h2_get(cs, "content-length"), "1048576");
    assert_string_equal(strata_h2_get(cs, "x-content-type-options"),
                        "nosniff");
    assert_string_equal(strata_h2_get(cs, "cache-control"), "no-cache");
    assert_null(strata_h2_get(cs, "allow"));
    assert_null(strata_h2_get(cs, "connection"));   /* not in HTTP/2 */
    assert_int_equal(strata_web_reply_h2(j.r, j.ss), 0);   /* stays done */
    end_job(&j);
    strata_free(cs);
    conn_close(&k);
    free(buf);
}

static void test_h2_head_and_errors(void **state)
{
    static const char nf[] = "404 Not Found: no such file\n";
    static const char na[] = "405 Method Not Allowed: only GET and HEAD\n";
    uint8_t buf[256];
    strata_stream *cs;
    conn k;
    job j;

    (void)state;
    conn_open(&k, NULL);
    cs = request(&k, "HEAD", "/big.bin");
    accept_job(&k, &j);
    assert_int_equal(fetch(&k, cs, &j, 1, buf, sizeof buf), 0);
    assert_int_equal(strata_h2_status(cs), 200);
    assert_string_equal(strata_h2_get(cs, "content-length"), "1048576");
    end_job(&j);
    strata_free(cs);

    cs = request(&k, "GET", "/nope");
    accept_job(&k, &j);
    assert_int_equal(fetch(&k, cs, &j, 1, buf, sizeof buf), sizeof nf - 1);
    assert_memory_equal(buf, nf, sizeof nf - 1);
    assert_int_equal(strata_h2_status(cs), 404);
    assert_string_equal(strata_h2_get(cs, "content-type"),
                        "text/plain; charset=utf-8");
    assert_string_equal(strata_h2_get(cs, "content-length"), "28");
    end_job(&j);
    strata_free(cs);

    cs = request(&k, "DELETE", "/a.txt");
    accept_job(&k, &j);
    assert_int_equal(fetch(&k, cs, &j, 1, buf, sizeof buf), sizeof na - 1);
    assert_memory_equal(buf, na, sizeof na - 1);
    assert_int_equal(strata_h2_status(cs), 405);
    assert_string_equal(strata_h2_get(cs, "allow"), "GET, HEAD");
    end_job(&j);
    strata_free(cs);

    cs = request(&k, "GET", "/empty.txt");
    accept_job(&k, &j);
    assert_int_equal(fetch(&k, cs, &j, 1, buf, sizeof buf), 0);
    assert_int_equal(strata_h2_status(cs), 200);
    assert_string_equal(strata_h2_get(cs, "content-length"), "0");
    end_job(&j);
    strata_free(cs);
    conn_close(&k);
}

/* A big reply stopped by its stream window (nobody reads it) does not
 * hold up a second stream: its small reply completes, and the big one
 * then finishes as it is read. */
static void test_h2_two_streams(void **state)
{
    uint8_t *buf = malloc(BIG + 1), small[64];
    strata_stream *big_cs, *small_cs;
    job jobs[2];
    conn k;
    int i;

    (void)state;
    assert_non_null(buf);
    conn_open(&k, NULL);
    big_cs = request(&k, "GET", "/big.bin");
    accept_job(&k, &jobs[0]);
    for (i = 0; i < 200; i++) {   /* the big one fills its window */
        step_jobs(jobs, 1);
        pump(&k);
    }
    assert_false(jobs[0].done);
    small_cs = request(&k, "GET", "/a.txt");
    accept_job(&k, &jobs[1]);
    assert_int_equal(fetch(&k, small_cs, jobs, 2, small, sizeof small), 6);
    assert_memory_equal(small, "alpha\n", 6);
    assert_true(jobs[1].done);
    assert_false(jobs[0].done);
    assert_int_equal(fetch(&k, big_cs, jobs, 2, buf, BIG + 1), BIG);
    assert_memory_equal(buf, fx.big, BIG);
    assert_true(jobs[0].done);
    end_job(&jobs[0]);
    end_job(&jobs[1]);
    strata_free(big_cs);
    strata_free(small_cs);
    conn_close(&k);
    free(buf);
}

/* A reply written one way cannot be written the other. */
static void test_one_way_only(void **state)
{
    strata_web_reply *r = get(&fx.site, "GET", "/a.txt");
    strata_stream *srv, *cli, *cs;
    conn k;
    job j;

    (void)state;
    assert_int_equal(strata_pipe_pair(&srv, &cli, NULL, NULL), 0);
    assert_int_equal(strata_web_reply_http1(r, srv, 1), 0);
    conn_open(&k, NULL);
    cs = request(&k, "GET", "/a.txt");
    accept_job(&k, &j);
    assert_int_equal(strata_web_reply_h2(r, j.ss), STRATA_ERR_STATE);
    assert_int_equal(strata_web_reply_http1(NULL, srv, 1), STRATA_ERR_ARG);
    assert_int_equal(strata_web_reply_h2(j.r, NULL), STRATA_ERR_ARG);
    end_job(&j);
    strata_free(cs);
    conn_close(&k);
    strata_web_reply_free(r);
    strata_free(srv);
    strata_free(cli);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resolve_files),
        cmocka_unit_test(test_resolve_symlinks),
        cmocka_unit_test(test_resolve_hidden),
        cmocka_unit_test(test_resolve_bad),
        cmocka_unit_test(test_resolve_too_long),
        cmocka_unit_test(test_resolve_no_root),
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_h1_small_file),
        cmocka_unit_test(test_h1_big_file),
        cmocka_unit_test(test_h1_head),
        cmocka_unit_test(test_h1_empty_file),
        cmocka_unit_test(test_h1_errors),
        cmocka_unit_test(test_h1_reply_error),
        cmocka_unit_test(test_h1_default_page),
        cmocka_unit_test(test_h1_keep_alive),
        cmocka_unit_test(test_memory_bounded),
        cmocka_unit_test(test_h1_file_shrinks),
        cmocka_unit_test(test_h2_big_file),
        cmocka_unit_test(test_h2_head_and_errors),
        cmocka_unit_test(test_h2_two_streams),
        cmocka_unit_test(test_one_way_only),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
