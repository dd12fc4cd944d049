/* HTTP/1.1 heads for the Upgrade hand-off. Each call pulls whole CRLF lines
 * from the buffered stream (strata_buffered_readline), copies each into the
 * head's store and consumes it there, then parses the copy in place: the
 * CR becomes the string's NUL, the ':' and the spaces of the start line
 * become NULs too, so a line of L wire bytes needs L bytes of store and the
 * parsed strings need nothing more.
 *
 * Decisions the header leaves open:
 *  - max_head is store_cap: the whole head on the wire, every CRLF and the
 *    blank line included, must fit in it (a head of exactly store_cap bytes
 *    is accepted). A line longer than the buffered stream's capacity is
 *    STRATA_ERR_TOO_BIG as well, since it could never be held.
 *  - Line framing is strict CRLF. A LF without its CR, or a CR not followed
 *    by LF, is STRATA_ERR_PROTO, and is found in the bytes of an unfinished
 *    line too, so a peer speaking bare-LF HTTP is refused at once rather
 *    than left waiting for a CRLF that will never come.
 *  - Start line: one SP between parts; the version is "HTTP/1.1" or
 *    "HTTP/1.0" exactly; the target is visible ASCII or obs-text. A status
 *    is 100..599; "HTTP/1.1 204" without the SP before an empty reason is
 *    accepted (reason ""), a reason holds no control but HTAB.
 *  - Header values are opaque but for NUL, which is refused (RFC 9110 5.5);
 *    no whitespace is allowed between a name and its ':' (RFC 9112 5.1).
 *  - The stream ending before any byte of a head is STRATA_EOF (a peer that
 *    closed an idle connection); inside a head it is STRATA_ERR_PROTO.
 *  - Every error but NEED_* is final for that head: a later call returns
 *    it again. Once complete, a call returns 0 without reading. A head read
 *    as a request cannot be continued as a response (STRATA_ERR_STATE).
 *    After success store_len is the head's length on the wire.
 *  - Writers: method and names must be tokens, the target visible ASCII,
 *    the status 100..599, extra whole "Name: value\r\n" lines; else
 *    STRATA_ERR_ARG. The head is NUL-terminated: it fits when its length
 *    plus one is at most cap (else STRATA_ERR_TOO_BIG).
 */
#include "http1.h"

#include <string.h>

#define CRLF_LEN 2

/* ---- characters ----------------------------------------------------- */

/* tchar of RFC 9110 5.6.2. */
static int is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
        (c >= 'A' && c <= 'Z'))
        return 1;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Visible ASCII or obs-text: what a request target may hold. */
static int is_visible(unsigned char c)
{
    return c > 0x20 && c != 0x7f;
}

static size_t token_len(const char *p, size_t n)
{
    size_t i = 0;

    while (i < n && is_tchar((unsigned char)p[i]))
        i++;
    return i;
}

static int lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* Whether a[0..n) equals the NUL-terminated b, ignoring ASCII case. */
static int ieq_n(const char *a, size_t n, const char *b)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (b[i] == '\0' || lower((unsigned char)a[i]) !=
                                lower((unsigned char)b[i]))
            return 0;
    return b[n] == '\0';
}

/* ---- parsing lines in the store ------------------------------------- */

static int version_ok(const char *v)
{
    return memcmp(v, "HTTP/1.1", 8) == 0 || memcmp(v, "HTTP/1.0", 8) == 0;
}

/* method SP target SP version */
static int parse_request_line(strata_http1_head *h, char *p, size_t n)
{
    size_t m = token_len(p, n), t = m + 1;

    if (m == 0 || m == n || p[m] != ' ')
        return STRATA_ERR_PROTO;
    while (t < n && is_visible((unsigned char)p[t]))
        t++;
    if (t == m + 1 || t == n || p[t] != ' ' || n - t - 1 != 8 ||
        !version_ok(p + t + 1))
        return STRATA_ERR_PROTO;
    p[m] = p[t] = '\0';
    h->method = p;
    h->target = p + m + 1;
    h->version = p + t + 1;
    return 0;
}

/* version SP 3DIGIT [SP reason] */
static int parse_status_line(strata_http1_head *h, char *p, size_t n)
{
    size_t i;

    if (n < 12 || !version_ok(p) || p[8] != ' ')
        return STRATA_ERR_PROTO;
    for (i = 9; i < 12; i++)
        if (p[i] < '0' || p[i] > '9')
            return STRATA_ERR_PROTO;
    h->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    if (h->status < 100 || h->status > 599 || (n > 12 && p[12] != ' '))
        return STRATA_ERR_PROTO;
    for (i = 13; i < n; i++)
        if (p[i] != '\t' && ((unsigned char)p[i] < 0x20 || p[i] == 0x7f))
            return STRATA_ERR_PROTO;
    p[8] = '\0';
    h->version = p;
    h->reason = p + (n > 12 ? 13 : 12);
    return 0;
}

/* name ":" OWS value OWS */
static int parse_header(strata_http1_head *h, char *p, size_t n)
{
    size_t m, v, e = n;

    if (is_ows(p[0])) /* obs-fold, or space before the first header */
        return STRATA_ERR_PROTO;
    if (h->n_headers >= h->max_headers)
        return STRATA_ERR_TOO_BIG;
    m = token_len(p, n);
    if (m == 0 || m == n || p[m] != ':')
        return STRATA_ERR_PROTO;
    for (v = m + 1; v < n && is_ows(p[v]); v++)
        ;
    while (e > v && is_ows(p[e - 1]))
        e--;
    if (memchr(p + v, '\0', e - v) != NULL)
        return STRATA_ERR_PROTO;
    p[m] = p[e] = '\0';
    h->headers[h->n_headers].name = p;
    h->headers[h->n_headers].value = p + v;
    h->n_headers++;
    return 0;
}

/* One line of n content bytes, its CRLF behind it in the store. Returns 1
 * at the blank line that ends the head, 0 for another line, or a status. */
static int parse_line(strata_http1_head *h, char *p, size_t n, int request)
{
    int r;

    p[n] = '\0';
    if (memchr(p, '\r', n) != NULL || memchr(p, '\n', n) != NULL)
        return STRATA_ERR_PROTO;
    if (h->started)
        return n == 0 ? 1 : parse_header(h, p, n);
    r = request ? parse_request_line(h, p, n) : parse_status_line(h, p, n);
    h->started = r == 0;
    return r;
}

/* ---- pulling lines -------------------------------------------------- */

/* The unfinished line's first `window` bytes hold no CRLF (readline would
 * have returned the line), so any LF there is bare, and so is any CR but
 * a last one whose LF may still come. */
static int bad_pending(strata_buffered *in, size_t window)
{
    const uint8_t *d;
    ssize_t have = strata_buffered_peek(in, 0, &d);
    size_t n = have > 0 ? (size_t)have : 0;

    if (n > window)
        n = window;
    return n > 0 && (memchr(d, '\n', n) != NULL ||
                     memchr(d, '\r', n - 1) != NULL);
}

/* What a failed readline means for the head. */
static int unfinished(strata_buffered *in, const strata_http1_head *h,
                      ssize_t r, size_t window)
{
    if (r == STRATA_EOF)
        return h->store_len == 0 && strata_buffered_len(in) == 0
                   ? STRATA_EOF
                   : STRATA_ERR_PROTO;
    if ((r == STRATA_NEED_READ || r == STRATA_NEED_WRITE ||
         r == STRATA_ERR_TOO_BIG) && bad_pending(in, window))
        return STRATA_ERR_PROTO;
    return (int)r;
}

/* Pull one line into the store and parse it: 1 at the head's end, 0 for
 * another line, or a status. */
static int next_line(strata_buffered *in, strata_http1_head *h, int request)
{
    size_t room = h->store_cap - h->store_len;
    const uint8_t *line;
    ssize_t len;
    char *p;

    if (room > in->cap)
        room = in->cap;
    if (room < CRLF_LEN)
        return STRATA_ERR_TOO_BIG;
    len = strata_buffered_readline(in, "\r\n", CRLF_LEN, room - CRLF_LEN,
                                   &line);
    if (len < 0)
        return unfinished(in, h, len, room);
    p = h->store + h->store_len;
    memcpy(p, line, (size_t)len);
    strata_buffered_consume(in, (size_t)len);
    h->store_len += (size_t)len;
    return parse_line(h, p, (size_t)len - CRLF_LEN, request);
}

static int read_head(strata_buffered *in, strata_http1_head *h, int request)
{
    if (in == NULL || h == NULL || h->store == NULL)
        return STRATA_ERR_ARG;
    if (h->started && (h->method != NULL) != request)
        return STRATA_ERR_STATE;
    while (h->done == 0) {
        int r = next_line(in, h, request);

        if (r == STRATA_NEED_READ || r == STRATA_NEED_WRITE)
            return r;
        if (r != 0)
            h->done = r;
    }
    return h->done > 0 ? 0 : h->done;
}

void strata_http1_head_init(strata_http1_head *h, char *store,
                            size_t store_cap, size_t max_headers)
{
    if (h == NULL)
        return;
    memset(h, 0, sizeof *h);
    h->store = store;
    h->store_cap = store != NULL ? store_cap : 0;
    h->max_headers = max_headers == 0 || max_headers > STRATA_HTTP1_MAX_HEADERS
                         ? STRATA_HTTP1_MAX_HEADERS
                         : max_headers;
}

int strata_http1_read_request(strata_buffered *in, strata_http1_head *h)
{
    return read_head(in, h, 1);
}

int strata_http1_read_response(strata_buffered *in, strata_http1_head *h)
{
    return read_head(in, h, 0);
}

/* A pointer of src's store at the same place in dst's. */
static const char *rebase(const strata_http1_head *dst,
                          const strata_http1_head *src, const char *p)
{
    return p == NULL ? NULL : dst->store + (p - src->store);
}

int strata_http1_head_copy(strata_http1_head *dst,
                           const strata_http1_head *src)
{
    size_t i;

    if (src->done <= 0 || src->store_len > dst->store_cap ||
        src->n_headers > dst->max_headers)
        return STRATA_ERR_TOO_BIG;
    memcpy(dst->store, src->store, src->store_len);
    dst->store_len = src->store_len;
    dst->method = rebase(dst, src, src->method);
    dst->target = rebase(dst, src, src->target);
    dst->version = rebase(dst, src, src->version);
    dst->reason = rebase(dst, src, src->reason);
    dst->status = src->status;
    for (i = 0; i < src->n_headers; i++) {
        dst->headers[i].name = rebase(dst, src, src->headers[i].name);
        dst->headers[i].value = rebase(dst, src, src->headers[i].value);
    }
    dst->n_headers = src->n_headers;
    dst->started = dst->done = 1;
    return 0;
}

/* ---- lookups -------------------------------------------------------- */

const char *strata_http1_get(const strata_http1_head *h, const char *name)
{
    size_t i;

    if (h == NULL || name == NULL)
        return NULL;
    for (i = 0; i < h->n_headers; i++)
        if (ieq_n(h->headers[i].name, strlen(h->headers[i].name), name))
            return h->headers[i].value;
    return NULL;
}

/* Whether the comma-separated list v holds token (OWS around elements). */
static int list_has(const char *v, const char *token)
{
    for (;;) {
        const char *e = strchr(v, ',');
        size_t n;

        if (e == NULL)
            e = v + strlen(v);
        while (v < e && is_ows(*v))
            v++;
        n = (size_t)(e - v);
        while (n > 0 && is_ows(v[n - 1]))
            n--;
        if (n > 0 && ieq_n(v, n, token))
            return 1;
        if (*e == '\0')
            return 0;
        v = e + 1;
    }
}

int strata_http1_has_token(const strata_http1_head *h, const char *name,
                           const char *token)
{
    size_t i;

    if (h == NULL || name == NULL || token == NULL || token[0] == '\0')
        return 0;
    for (i = 0; i < h->n_headers; i++)
        if (ieq_n(h->headers[i].name, strlen(h->headers[i].name), name) &&
            list_has(h->headers[i].value, token))
            return 1;
    return 0;
}

/* ---- writers -------------------------------------------------------- */

static const char *std_reason(int status)
{
    switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 426: return "Upgrade Required";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    default: return "Status";
    }
}

static int token_ok(const char *s)
{
    size_t n = strlen(s);

    return n > 0 && token_len(s, n) == n;
}

static int text_ok(const char *s)
{
    return strpbrk(s, "\r\n") == NULL;
}

static int target_ok(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s != '\0'; s++)
        if (!is_visible((unsigned char)*s))
            return 0;
    return 1;
}

static int fields_ok(const char *const *hd)
{
    for (; hd != NULL && hd[0] != NULL; hd += 2)
        if (!token_ok(hd[0]) || hd[1] == NULL || !text_ok(hd[1]))
            return 0;
    return 1;
}

/* Whole header lines only: a blank line or a bare CR/LF in them would end
 * or split the head where the peer reads it. */
static int extra_ok(const char *x)
{
    while (x != NULL && *x != '\0') {
        const char *e = strstr(x, "\r\n");
        size_t n, m;

        if (e == NULL)
            return 0;
        n = (size_t)(e - x);
        m = token_len(x, n);
        if (m == 0 || m == n || x[m] != ':' || memchr(x, '\r', n) != NULL ||
            memchr(x, '\n', n) != NULL)
            return 0;
        x = e + CRLF_LEN;
    }
    return 1;
}

/* A bounded output: len <= cap always; full once a piece did not fit. */
typedef struct out {
    char *p;
    size_t cap, len;
    int full;
} out;

static void put(out *o, const char *s)
{
    size_t n = strlen(s);

    if (o->full || n > o->cap - o->len) {
        o->full = 1;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

/* Header lines, extra lines, the blank line and the NUL. */
static ssize_t finish(out *o, const char *const *hd, const char *extra)
{
    for (; hd != NULL && hd[0] != NULL; hd += 2) {
        put(o, hd[0]);
        put(o, ": ");
        put(o, hd[1]);
        put(o, "\r\n");
    }
    if (extra != NULL)
        put(o, extra);
    put(o, "\r\n");
    if (o->full || o->len == o->cap)
        return STRATA_ERR_TOO_BIG;
    o->p[o->len] = '\0';
    return (ssize_t)o->len;
}

ssize_t strata_http1_write_request(char *buf, size_t cap, const char *method,
                                   const char *target,
                                   const char *const *headers,
                                   const char *extra)
{
    out o = {buf, cap, 0, 0};

    if (buf == NULL || method == NULL || target == NULL ||
        !token_ok(method) || !target_ok(target) || !fields_ok(headers) ||
        !extra_ok(extra))
        return STRATA_ERR_ARG;
    put(&o, method);
    put(&o, " ");
    put(&o, target);
    put(&o, " HTTP/1.1\r\n");
    return finish(&o, headers, extra);
}

ssize_t strata_http1_write_response(char *buf, size_t cap, int status,
                                    const char *reason,
                                    const char *const *headers,
                                    const char *extra)
{
    out o = {buf, cap, 0, 0};
    char code[5];

    if (reason == NULL)
        reason = std_reason(status);
    if (buf == NULL || status < 100 || status > 599 || !text_ok(reason) ||
        !fields_ok(headers) || !extra_ok(extra))
        return STRATA_ERR_ARG;
    code[0] = (char)('0' + status / 100);
    code[1] = (char)('0' + status / 10 % 10);
    code[2] = (char)('0' + status % 10);
    code[3] = ' ';
    code[4] = '\0';
    put(&o, "HTTP/1.1 ");
    put(&o, code);
    put(&o, reason);
    put(&o, "\r\n");
    return finish(&o, headers, extra);
}
