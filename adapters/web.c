/* The browsers' front (web.h): the site, the ALPN list, and one accepted
 * connection driven until it is known to be HTTP/2 or a WebSocket, its
 * HTTP/1.1 plain requests answered on the way. */
#include "web.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int strata_web_site_init(strata_web_site *site, const char *root)
{
    char real[PATH_MAX];
    struct stat st;

    if (site == NULL)
        return STRATA_ERR_ARG;
    memset(site, 0, sizeof *site);
    site->name = "strata";
    site->h2 = site->http1 = 1;
    if (root == NULL)
        return 0;
    if (realpath(root, real) == NULL || stat(real, &st) != 0 ||
        !S_ISDIR(st.st_mode) || strlen(real) >= sizeof site->root)
        return STRATA_ERR_ARG;
    strcpy(site->root, real);
    return 0;
}

const char *strata_web_alpn(const strata_web_site *site)
{
    if (site->h2 && site->http1)
        return "h2,http/1.1";
    return site->h2 ? "h2" : "http/1.1";
}

/* ---- the front -------------------------------------------------------- */

#ifdef STRATA_WITH_TLS
#include <strata/tls.h>
#endif
#include <stdio.h>

#define DEFAULT_HEAD 8192
/* The input buffer: a whole head fits, and the first WebSocket frames the
 * browser sent right behind it stay here for the ws layer. */
#define BUFFER_MIN 16384

enum { F_HANDSHAKE, F_READ, F_REPLY, F_DONE };

struct strata_web_front {
    const strata_web_site *site;
    const strata_allocator *alloc;
    strata_stream *lower;      /* owned until taken */
    strata_stream *tls;        /* the TLS layer in lower, or NULL */
    strata_stream *in;         /* buffered over lower (HTTP/1.1) */
    strata_http1_head head;
    char *store;
    size_t max_head;
    strata_web_reply *reply;
    int keep;                  /* the connection goes on after the reply */
    int state;
    unsigned long requests;
    char last[160];            /* the last reply: "GET /x: 200" */
    char reason[160];
};

strata_web_front *strata_web_front_new(strata_stream *lower,
                                       const strata_web_site *site,
                                       const strata_allocator *alloc)
{
    strata_web_front *f = strata_alloc(alloc, sizeof *f);

    if (f == NULL)
        return NULL;
    memset(f, 0, sizeof *f);
    f->site = site;
    f->alloc = alloc;
    f->lower = lower;
#ifdef STRATA_WITH_TLS
    f->tls = strata_tls_of(lower);
#endif
    f->max_head = site->max_head != 0 ? site->max_head : DEFAULT_HEAD;
    f->store = strata_alloc(alloc, f->max_head);
    if (f->store == NULL) {
        strata_dealloc(alloc, f);
        return NULL;
    }
    strata_http1_head_init(&f->head, f->store, f->max_head, 0);
    f->state = f->tls != NULL ? F_HANDSHAKE : F_READ;
    return f;
}

static int end(strata_web_front *f, int r, const char *why)
{
    snprintf(f->reason, sizeof f->reason, "%s", why);
    f->state = F_DONE;
    return r;
}

/* TLS done: the protocol the client agreed on decides the way. A client
 * that named none speaks HTTP/1.1 (RFC 7301: ALPN is optional). */
static int handshake(strata_web_front *f)
{
#ifdef STRATA_WITH_TLS
    int r = strata_tls_handshake(f->tls);
    const char *alpn;

    if (r != 0) {
        if (r < 0 && r != STRATA_NEED_READ && r != STRATA_NEED_WRITE)
            return end(f, r, "TLS handshake failed");
        return r;
    }
    alpn = strata_tls_alpn(f->tls);
    if (alpn != NULL && strcmp(alpn, "h2") == 0)
        return end(f, STRATA_WEB_H2, "");
    if (!f->site->http1)
        return end(f, STRATA_ERR_TLS,
                   "the client did not agree on ALPN h2, the only protocol "
                   "served");
#endif
    f->state = F_READ;
    return 0;
}

static int is_upgrade(const strata_http1_head *h)
{
    return strata_http1_has_token(h, "Upgrade", "websocket");
}

/* Whether the connection may carry another request after this one: an
 * HTTP/1.1 request without "Connection: close" and without a body (the
 * front reads no bodies, so one it did not read ends the connection). */
static int keeps(const strata_http1_head *h)
{
    const char *cl = strata_http1_get(h, "Content-Length");

    return strcmp(h->version, "HTTP/1.1") == 0 &&
           !strata_http1_has_token(h, "Connection", "close") &&
           strata_http1_get(h, "Transfer-Encoding") == NULL &&
           (cl == NULL || strcmp(cl, "0") == 0);
}

static int start_reply(strata_web_front *f, strata_web_reply *r, int keep)
{
    if (r == NULL)
        return end(f, STRATA_ERR_NOMEM, "out of memory");
    f->reply = r;
    f->keep = keep;
    f->state = F_REPLY;
    return 0;
}

/* A head that could not be read: answer its status, then end. */
static int bad_head(strata_web_front *f, int r)
{
    if (r == STRATA_ERR_TOO_BIG)
        return start_reply(f, strata_web_reply_error(431, "request head too "
                                                     "large", f->alloc), 0);
    return start_reply(f, strata_web_reply_error(400, "malformed request "
                                                 "head", f->alloc), 0);
}

static int read_request(strata_web_front *f)
{
    const strata_http1_head *h = &f->head;
    int r;

    if (f->in == NULL) {
        size_t cap = f->max_head > BUFFER_MIN ? f->max_head : BUFFER_MIN;
        strata_buffered *b = strata_buffered_over(f->lower, cap, f->alloc);
        if (b == NULL)
            return end(f, STRATA_ERR_NOMEM, "out of memory");
        f->in = &b->base;
    }
    r = strata_http1_read_request(strata_buffered_of(f->in), &f->head);
    if (r == STRATA_ERR_TOO_BIG || r == STRATA_ERR_PROTO)
        return bad_head(f, r);
    if (r != 0)
        return r == STRATA_EOF ? end(f, r, "closed by the client") : r;
    if (strncmp(h->version, "HTTP/1.", 7) != 0)
        return start_reply(f, strata_web_reply_error(505, "HTTP/1.x only",
                                                     f->alloc), 0);
    if (is_upgrade(h))
        return end(f, STRATA_WEB_WEBSOCKET, "");
    return start_reply(f, strata_web_reply_new(f->site, h->method, h->target,
                                               f->alloc), keeps(h));
}

static void note_reply(strata_web_front *f)
{
    const strata_http1_head *h = &f->head;

    f->requests++;
    snprintf(f->last, sizeof f->last, "%s %.100s: %d",
             h->method != NULL ? h->method : "(bad request)",
             h->target != NULL ? h->target : "",
             strata_web_reply_status(f->reply));
}

static int reply(strata_web_front *f)
{
    int r = strata_web_reply_http1(f->reply, f->in, f->keep);

    if (r == 0)
        r = strata_flush(f->in);
    if (r != 0)
        return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE
                   ? r
                   : end(f, r, "sending a reply failed");
    note_reply(f);
    strata_web_reply_free(f->reply);
    f->reply = NULL;
    if (!f->keep) {
        (void)strata_shutdown(f->in); /* close_notify: the reply is whole */
        f->state = F_DONE;
        return STRATA_EOF;
    }
    strata_http1_head_init(&f->head, f->store, f->max_head, 0);
    f->state = F_READ;
    return 0;
}

int strata_web_front_step(strata_web_front *f)
{
    int r = 0;

    while (r == 0) {
        switch (f->state) {
        case F_HANDSHAKE:
            r = handshake(f);
            break;
        case F_READ:
            r = read_request(f);
            break;
        case F_REPLY:
            r = reply(f);
            break;
        default:
            return STRATA_ERR_STATE;
        }
    }
    return r;
}

const strata_http1_head *strata_web_front_request(const strata_web_front *f)
{
    return f->head.done > 0 ? &f->head : NULL;
}

strata_stream *strata_web_front_take(strata_web_front *f)
{
    strata_stream *s = f->in != NULL ? f->in : f->lower;

    f->in = f->lower = NULL;
    return s;
}

unsigned long strata_web_front_requests(const strata_web_front *f)
{
    return f->requests;
}

static strata_stream *top(const strata_web_front *f)
{
    return f->in != NULL ? f->in : f->lower;
}

int strata_web_front_fd(const strata_web_front *f)
{
    return top(f) != NULL ? strata_fd(top(f)) : -1;
}

unsigned strata_web_front_wants(const strata_web_front *f)
{
    return top(f) != NULL ? strata_wants(top(f)) : 0;
}

const char *strata_web_front_last(const strata_web_front *f)
{
    return f->last;
}

const char *strata_web_front_reason(const strata_web_front *f)
{
    return f->reason;
}

void strata_web_front_free(strata_web_front *f)
{
    if (f == NULL)
        return;
    strata_web_reply_free(f->reply);
    strata_free(top(f));
    strata_dealloc(f->alloc, f->store);
    strata_dealloc(f->alloc, f);
}
