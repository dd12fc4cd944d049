/* Replies to plain requests (web.h): files under the root, the default
 * page, error statuses; written to HTTP/1.1 or an HTTP/2 stream.
 *
 * What web.h leaves to this file:
 *  - Resolution order: the method first (405 with "Allow: GET, HEAD" for
 *    the methods HTTP defines, 501 for any other token), then the target.
 *    Among target faults a 400 (malformed) wins over a 404 (hidden), so
 *    the status does not depend on which fault comes first.
 *  - The target must be origin-form ("/..."); "?query" and "#frag" are
 *    cut off; repeated slashes collapse; a name ending in "/" means its
 *    index.html (so does a directory named without one: no redirect).
 *  - After realpath() the file must be below the root and no component
 *    below the root may start with "." either: a symlink inside the root
 *    may point anywhere inside it but not at a hidden name.
 *  - Without a root only "/" (with any query) is the default page;
 *    strata_web_resolve gives 200 and an empty path for it. "/index.html"
 *    is 404 there, as every other target.
 *  - A decoded path that does not fit PATH_MAX or out is 414; a caller's
 *    mistake (no site, no out) is 500.
 *  - A file is opened with O_NOFOLLOW and checked again with fstat (a
 *    regular file, else 404); if it shrinks while it is sent, the reply
 *    fails with STRATA_ERR_IO (its Content-Length was promised: the
 *    caller must end the connection).
 *  - strata_web_reply_error keeps 400..599; another status becomes 500.
 *    HEAD of an error answers the same head without the body.
 *
 * Memory: one allocation per reply, its 16 KiB buffer (the HTTP/1.1 head
 * and the file's chunks) and the text of an in-memory body; the file's
 * descriptor is closed at free.
 */
#include "web.h"
#include "../protos/h2.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK 16384

enum { START, BODY, DONE };               /* where a reply is */
enum { NONE, OVER_HTTP1, OVER_H2 };       /* what it is written to */

struct strata_web_reply {
    const strata_allocator *alloc;
    int status;
    int head_only;          /* HEAD: the head, no body */
    int allow;              /* 405: Allow: GET, HEAD */
    int fd;                 /* the file, or -1 (the body is text) */
    const char *type;
    unsigned long long size;   /* body length */
    unsigned long long taken;  /* body bytes moved into buf so far */
    int phase, mode;
    size_t len, off;        /* bytes in buf, of which sent */
    char clen[24];          /* content-length as text */
    unsigned char buf[CHUNK];
    size_t text_len;
    char text[];            /* an in-memory body */
};

/* ---- content types ------------------------------------------------------- */

static int ieq(const char *a, const char *b)
{
    for (; *a != '\0' && *b != '\0'; a++, b++) {
        int x = *a >= 'A' && *a <= 'Z' ? *a + 32 : *a;

        if (x != *b)
            return 0;
    }
    return *a == *b;
}

const char *strata_web_type(const char *path)
{
    static const char *const types[][2] = {
        {"html", "text/html; charset=utf-8"},
        {"htm", "text/html; charset=utf-8"},
        {"js", "text/javascript; charset=utf-8"},
        {"mjs", "text/javascript; charset=utf-8"},
        {"css", "text/css; charset=utf-8"},
        {"json", "application/json"},
        {"png", "image/png"},
        {"svg", "image/svg+xml"},
        {"txt", "text/plain; charset=utf-8"},
        {"ico", "image/x-icon"},
        {"wasm", "application/wasm"},
    };
    const char *name, *dot;
    size_t i;

    if (path == NULL)
        return "application/octet-stream";
    name = strrchr(path, '/');
    name = name != NULL ? name + 1 : path;
    dot = strrchr(name, '.');
    if (dot != NULL)
        for (i = 0; i < sizeof types / sizeof types[0]; i++)
            if (ieq(dot + 1, types[i][0]))
                return types[i][1];
    return "application/octet-stream";
}

/* ---- resolving a target -------------------------------------------------- */

/* A status with the reason it is given for. */
static int fault(const char **why, const char *text, int status)
{
    *why = text;
    return status;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int bad_byte(unsigned char c)
{
    return c < 0x20 || c == 0x7f || c == '\\';
}

/* The segment just ended at rel[seg..*len): dropped when empty (repeated
 * slashes), 400 for "." and "..", a 404 noted for a hidden name. */
static int end_segment(char *rel, size_t *len, size_t seg, int *hidden,
                       const char **why)
{
    size_t n = *len - seg;

    if (n == 0)
        return 0;
    if (rel[seg] == '.' && (n == 1 || (n == 2 && rel[seg + 1] == '.')))
        return fault(why, "dot segment", 400);
    if (rel[seg] == '.')
        *hidden = 1;
    return 0;
}

/* Percent-decode target's path once into rel ("a/b/c", no leading slash,
 * single slashes, trailing slash kept as *dir): 0 or a status. */
static int decode(const char *target, char *rel, size_t cap, int *dir,
                  const char **why)
{
    size_t len = 0, seg = 0;
    int hidden = 0, st, hi, lo;
    const char *p;

    if (target == NULL || target[0] != '/')
        return fault(why, "not an origin-form target", 400);
    *dir = 1;
    for (p = target + 1; *p != '\0' && *p != '?' && *p != '#'; p++) {
        unsigned char c = (unsigned char)*p;

        if (c == '/') {
            if ((st = end_segment(rel, &len, seg, &hidden, why)) != 0)
                return st;
            if (len > seg && len + 1 < cap)
                rel[len++] = '/';
            else if (len > seg)
                return fault(why, "target too long", 414);
            seg = len;
            *dir = 1;
            continue;
        }
        if (c == '%') {
            if ((hi = hexval(p[1])) < 0 || (lo = hexval(p[2])) < 0)
                return fault(why, "bad percent-encoding", 400);
            c = (unsigned char)(hi * 16 + lo);
            p += 2;
            if (c == '/' || c == 0)
                return fault(why, "encoded slash or NUL", 400);
        }
        if (bad_byte(c))
            return fault(why, "backslash or control character", 400);
        if (len + 1 >= cap)
            return fault(why, "target too long", 414);
        rel[len++] = (char)c;
        *dir = 0;
    }
    if ((st = end_segment(rel, &len, seg, &hidden, why)) != 0)
        return st;
    if (len > 0 && rel[len - 1] == '/')
        len--;
    rel[len] = '\0';
    if (hidden)
        return fault(why, "hidden file", 404);
    return 0;
}

/* real is root itself or below it: what is below (without the slash, ""
 * for the root), or NULL when real is outside. */
static const char *below(const char *root, const char *real)
{
    size_t n = strlen(root);

    if (strcmp(root, "/") == 0)
        return real + 1;
    if (strncmp(real, root, n) != 0)
        return NULL;
    if (real[n] == '\0')
        return real + n;
    return real[n] == '/' ? real + n + 1 : NULL;
}

static int has_hidden(const char *rest)
{
    return rest[0] == '.' || strstr(rest, "/.") != NULL;
}

/* The real path of cand, checked: below the root, nothing hidden, a
 * regular file (a directory once more as its index.html). */
static int settle(const char *root, const char *cand, char *out, size_t cap,
                  int again, const char **why)
{
    char real[PATH_MAX], idx[PATH_MAX];
    const char *rest;
    struct stat st;
    size_t n;

    if (realpath(cand, real) == NULL) {
        *why = errno == ENAMETOOLONG ? "target too long" : "no such file";
        return errno == ENAMETOOLONG ? 414 : 404;
    }
    if ((rest = below(root, real)) == NULL || has_hidden(rest)) {
        *why = rest == NULL ? "outside the root" : "hidden file";
        return 404;
    }
    if (stat(real, &st) != 0)
        return fault(why, "no such file", 404);
    if (S_ISDIR(st.st_mode) && again) {
        if (snprintf(idx, sizeof idx, "%s/index.html", real) >= (int)sizeof idx)
            return fault(why, "target too long", 414);
        return settle(root, idx, out, cap, 0, why);
    }
    if (!S_ISREG(st.st_mode) || rest[0] == '\0')
        return fault(why, "not a regular file", 404);
    if ((n = strlen(real)) >= cap)
        return fault(why, "target too long", 414);
    memcpy(out, real, n + 1);
    return 200;
}

static int resolve(const strata_web_site *site, const char *target,
                   char *out, size_t cap, const char **why)
{
    char rel[PATH_MAX], cand[PATH_MAX];
    int dir, st;

    *why = "";
    if (site == NULL || out == NULL || cap == 0)
        return fault(why, "no place for the path", 500);
    if ((st = decode(target, rel, sizeof rel, &dir, why)) != 0)
        return st;
    if (site->root[0] == '\0') {
        if (rel[0] != '\0')
            return fault(why, "no such file", 404);
        out[0] = '\0';
        return 200;
    }
    if (snprintf(cand, sizeof cand, "%s/%s%s%s", site->root, rel,
                 rel[0] != '\0' && dir ? "/" : "",
                 dir ? "index.html" : "") >= (int)sizeof cand)
        return fault(why, "target too long", 414);
    return settle(site->root, cand, out, cap, !dir, why);
}

int strata_web_resolve(const strata_web_site *site, const char *target,
                       char *out, size_t cap)
{
    const char *why;

    return resolve(site, target, out, cap, &why);
}

/* ---- making a reply ------------------------------------------------------ */

static strata_web_reply *reply_alloc(int status, size_t text_cap,
                                     const strata_allocator *alloc)
{
    strata_web_reply *r = strata_alloc(alloc, sizeof *r + text_cap);

    if (r == NULL)
        return NULL;
    memset(r, 0, sizeof *r);
    r->alloc = alloc;
    r->status = status;
    r->fd = -1;
    return r;
}

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return status < 500 ? "Client Error" : "Server Error";
    }
}

static void set_size(strata_web_reply *r, unsigned long long size)
{
    r->size = size;
    snprintf(r->clen, sizeof r->clen, "%llu", size);
}

strata_web_reply *strata_web_reply_error(int status, const char *why,
                                         const strata_allocator *alloc)
{
    strata_web_reply *r;
    size_t cap;
    int n;

    if (status < 400 || status > 599)
        status = 500;
    if (why != NULL && strpbrk(why, "\r\n") != NULL)
        why = NULL;   /* one line of text, whatever the caller had */
    cap = 48 + strlen(reason(status)) + (why != NULL ? strlen(why) : 0);
    if ((r = reply_alloc(status, cap, alloc)) == NULL)
        return NULL;
    n = snprintf(r->text, cap, "%d %s%s%s\n", status, reason(status),
                 why != NULL && why[0] != '\0' ? ": " : "",
                 why != NULL ? why : "");
    r->text_len = (size_t)n;
    r->type = "text/plain; charset=utf-8";
    set_size(r, r->text_len);
    return r;
}

/* name with & < > " ' as entities, into dst (NULL: only count). */
static size_t escape(char *dst, const char *name)
{
    size_t n = 0, k;
    const char *e;

    for (; *name != '\0'; name++) {
        switch (*name) {
        case '&': e = "&amp;"; break;
        case '<': e = "&lt;"; break;
        case '>': e = "&gt;"; break;
        case '"': e = "&quot;"; break;
        case '\'': e = "&#39;"; break;
        default: e = NULL;
        }
        k = e != NULL ? strlen(e) : 1;
        if (dst != NULL)
            memcpy(dst + n, e != NULL ? e : name, k);
        n += k;
    }
    return n;
}

static const char page_a[] =
    "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    "<title>";
static const char page_b[] = "</title>\n</head>\n<body>\n<h1>";
static const char page_c[] =
    "</h1>\n<p>A WebSocket server. On this origin it serves WebSocket over "
    "HTTP/2 (extended CONNECT, RFC 8441) and over HTTP/1.1 (Upgrade, "
    "RFC 6455).</p>\n<p>No files are served here.</p>\n</body>\n</html>\n";

static strata_web_reply *default_page(const strata_web_site *site,
                                      const strata_allocator *alloc)
{
    const char *name = site->name != NULL ? site->name : "strata";
    size_t en = escape(NULL, name), at = 0;
    size_t cap = sizeof page_a + sizeof page_b + sizeof page_c + 2 * en;
    strata_web_reply *r = reply_alloc(200, cap, alloc);

#define PUT(s) (memcpy(r->text + at, s, sizeof s - 1), at += sizeof s - 1)
    if (r == NULL)
        return NULL;
    PUT(page_a);
    at += escape(r->text + at, name);
    PUT(page_b);
    at += escape(r->text + at, name);
    PUT(page_c);
#undef PUT
    r->text_len = at;
    r->type = "text/html; charset=utf-8";
    set_size(r, at);
    return r;
}

static strata_web_reply *file_reply(const char *path,
                                    const strata_allocator *alloc)
{
    strata_web_reply *r;
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);

    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        return strata_web_reply_error(404, fd < 0 ? "cannot be read"
                                                  : "not a regular file",
                                      alloc);
    }
    if ((r = reply_alloc(200, 0, alloc)) == NULL) {
        close(fd);
        return NULL;
    }
    r->fd = fd;
    r->type = strata_web_type(path);
    set_size(r, (unsigned long long)st.st_size);
    return r;
}

/* 0 for GET and HEAD, else the status: 405 for a method HTTP defines,
 * 501 for another token, 400 for no token at all. */
static int method_status(const char *m)
{
    static const char *const known[] = {"OPTIONS", "POST", "PUT", "DELETE",
                                        "PATCH", "TRACE", "CONNECT"};
    size_t i;

    if (m != NULL && (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0))
        return 0;
    if (!strata_http1_is_token(m))
        return 400;
    for (i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(m, known[i]) == 0)
            return 405;
    return 501;
}

strata_web_reply *strata_web_reply_new(const strata_web_site *site,
                                       const char *method, const char *target,
                                       const strata_allocator *alloc)
{
    char path[PATH_MAX];
    const char *why = NULL;
    strata_web_reply *r;
    int st = method_status(method);

    if (st == 405)
        why = "only GET and HEAD";
    else if (st == 501)
        why = "method not implemented";
    else if (st == 400)
        why = "bad method";
    else
        st = resolve(site, target, path, sizeof path, &why);
    if (st != 200)
        r = strata_web_reply_error(st, why, alloc);
    else if (path[0] == '\0')
        r = default_page(site, alloc);
    else
        r = file_reply(path, alloc);
    if (r != NULL) {
        r->allow = r->status == 405;
        r->head_only = method != NULL && strcmp(method, "HEAD") == 0;
    }
    return r;
}

int strata_web_reply_status(const strata_web_reply *r)
{
    return r != NULL ? r->status : 0;
}

const char *strata_web_reply_type(const strata_web_reply *r)
{
    return r != NULL ? r->type : NULL;
}

void strata_web_reply_free(strata_web_reply *r)
{
    if (r == NULL)
        return;
    if (r->fd >= 0)
        close(r->fd);
    strata_dealloc(r->alloc, r);
}

/* ---- writing it ---------------------------------------------------------- */

/* Move the next body bytes into buf from `at` on: 0 or STRATA_ERR_IO. */
static int fill(strata_web_reply *r, size_t at)
{
    unsigned long long left = r->size - r->taken;
    size_t want = CHUNK - at;
    ssize_t n;

    if (r->head_only || left == 0 || want == 0)
        return 0;
    if (want > left)
        want = (size_t)left;
    if (r->fd < 0) {
        memcpy(r->buf + at, r->text + r->taken, want);
        n = (ssize_t)want;
    } else {
        do
            n = read(r->fd, r->buf + at, want);
        while (n < 0 && errno == EINTR);
        if (n <= 0)   /* an error, or the file shrank */
            return STRATA_ERR_IO;
    }
    r->taken += (unsigned long long)n;
    r->len = at + (size_t)n;
    return 0;
}

static int body_left(const strata_web_reply *r)
{
    return !r->head_only && r->taken < r->size;
}

static int http1_head(strata_web_reply *r, int keep_alive)
{
    const char *hd[16];
    int n = 0;
    ssize_t len;

    hd[n++] = "Content-Type";
    hd[n++] = r->type;
    hd[n++] = "Content-Length";
    hd[n++] = r->clen;
    hd[n++] = "X-Content-Type-Options";
    hd[n++] = "nosniff";
    hd[n++] = "Cache-Control";
    hd[n++] = "no-cache";
    if (r->allow) {
        hd[n++] = "Allow";
        hd[n++] = "GET, HEAD";
    }
    hd[n++] = "Connection";
    hd[n++] = keep_alive ? "keep-alive" : "close";
    hd[n] = NULL;
    len = strata_http1_write_response((char *)r->buf, CHUNK, r->status,
                                      reason(r->status), hd, NULL);
    if (len < 0)
        return (int)len;
    r->len = (size_t)len;
    r->off = 0;
    return fill(r, r->len);
}

/* Send what buf holds; refill while the body goes on. */
static int pump(strata_web_reply *r, strata_stream *out, int h2)
{
    ssize_t n;
    int st;

    for (;;) {
        if (r->off == r->len) {
            if (!body_left(r))
                return 0;
            r->len = r->off = 0;
            if ((st = fill(r, 0)) != 0)
                return st;
        }
        n = strata_send(out, r->buf + r->off, r->len - r->off,
                        h2 && !body_left(r) ? STRATA_H2_SEND_END : 0);
        if (n < 0)
            return (int)n;
        if (n == 0)
            return STRATA_NEED_WRITE;
        r->off += (size_t)n;
    }
}

int strata_web_reply_http1(strata_web_reply *r, strata_stream *out,
                           int keep_alive)
{
    int st;

    if (r == NULL || out == NULL)
        return STRATA_ERR_ARG;
    if (r->mode == OVER_H2)
        return STRATA_ERR_STATE;
    if (r->phase == START) {
        if ((st = http1_head(r, keep_alive)) != 0)
            return st;
        r->mode = OVER_HTTP1;
        r->phase = BODY;
    }
    if (r->phase == BODY) {
        if ((st = pump(r, out, 0)) != 0)
            return st;
        r->phase = DONE;
    }
    return strata_flush(out);
}

int strata_web_reply_h2(strata_web_reply *r, strata_stream *stream)
{
    strata_h2_header hd[5];
    size_t n = 0;
    int st;

    if (r == NULL || stream == NULL)
        return STRATA_ERR_ARG;
    if (r->mode == OVER_HTTP1)
        return STRATA_ERR_STATE;
    if (r->phase == START) {
        hd[n].name = "content-type";
        hd[n++].value = r->type;
        hd[n].name = "content-length";
        hd[n++].value = r->clen;
        hd[n].name = "x-content-type-options";
        hd[n++].value = "nosniff";
        hd[n].name = "cache-control";
        hd[n++].value = "no-cache";
        if (r->allow) {
            hd[n].name = "allow";
            hd[n++].value = "GET, HEAD";
        }
        st = strata_h2_respond(stream, r->status, hd, n,
                               body_left(r) ? 0 : STRATA_H2_END_STREAM);
        if (st != 0)
            return st;
        r->mode = OVER_H2;
        r->phase = BODY;
    }
    if (r->phase == BODY) {
        if ((st = pump(r, stream, 1)) != 0)
            return st;
        r->phase = DONE;
    }
    return 0;
}
