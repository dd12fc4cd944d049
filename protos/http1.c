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

#include <stdint.h>
#include <string.h>

#define CRLF_LEN 2

/* ---- characters ----------------------------------------------------- */

/* tchar of RFC 9110 5.6.2 as a bit per ASCII code: one test per byte,
 * where a chain of ranges and a search of the specials cost more code. */
static const uint32_t tchar_bits[4] = {
    0x00000000u, /* controls */
    0x03ff6cfau, /* ! # $ % & ' * + - . 0-9 */
    0xc7fffffeu, /* A-Z ^ _ */
    0x57ffffffu, /* ` a-z | ~ */
};

static int is_tchar(unsigned char c)
{
    return c < 128 && (tchar_bits[c >> 5] >> (c & 31) & 1u) != 0;
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

/* The length of the token p starts with: it ends at a non-tchar, the NUL
 * that ends every string here included. */
static size_t token_len(const char *p)
{
    size_t i = 0;

    while (is_tchar((unsigned char)p[i]))
        i++;
    return i;
}

/* Whether a[0..n), which holds no NUL, equals the NUL-terminated b,
 * ignoring ASCII case: bytes that differ must be one letter's two cases. */
static int ieq_n(const char *a, size_t n, const char *b)
{
    for (; n > 0; n--, a++, b++) {
        unsigned char x = (unsigned char)*a, y = (unsigned char)*b;

        if (x != y && ((x ^ y) != 0x20 || (unsigned)((x | 0x20) - 'a') > 25))
            return 0;
    }
    return *b == '\0';
}

/* ---- parsing lines in the store ------------------------------------- */

/* "HTTP/1.1" or "HTTP/1.0": '0' and '1' differ in bit 0 only. */
static int version_ok(const char *v)
{
    return memcmp(v, "HTTP/1.", 7) == 0 && (v[7] | 1) == '1';
}

/* method SP target SP version. The line's NUL at p[n] ends every scan. */
static int parse_request_line(strata_http1_head *h, char *p, size_t n)
{
    size_t m = token_len(p), t = m + 1;

    if (m == 0 || p[m] != ' ')
        return STRATA_ERR_PROTO;
    while (is_visible((unsigned char)p[t]))
        t++;
    if (t == m + 1 || p[t] != ' ' || n - t - 1 != 8 || !version_ok(p + t + 1))
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
    int s = 0;

    if (n < 12 || !version_ok(p) || p[8] != ' ')
        return STRATA_ERR_PROTO;
    for (i = 9; i < 12; i++) {
        if (p[i] < '0' || p[i] > '9')
            return STRATA_ERR_PROTO;
        s = s * 10 + (p[i] - '0');
    }
    h->status = s;
    if (s < 100 || s > 599 || (n > 12 && p[12] != ' '))
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
    m = token_len(p);
    /* a NUL anywhere (only the value can hold one) ends p too soon */
    if (m == 0 || p[m] != ':' || strlen(p) != n)
        return STRATA_ERR_PROTO;
    for (v = m + 1; is_ows(p[v]); v++)
        ;
    while (e > v && is_ows(p[e - 1]))
        e--;
    p[m] = p[e] = '\0';
    h->headers[h->n_headers].name = p;
    h->headers[h->n_headers].value = p + v;
    h->n_headers++;
    return 0;
}

/* Whether d holds a LF in its first n bytes or a CR in its first ncr:
 * outside a CRLF, either is bare. */
static int bare_crlf(const void *d, size_t n, size_t ncr)
{
    return memchr(d, '\n', n) != NULL || memchr(d, '\r', ncr) != NULL;
}

/* One line of n content bytes, its CRLF behind it in the store. Returns 1
 * at the blank line that ends the head, 0 for another line, or a status. */
static int parse_line(strata_http1_head *h, char *p, size_t n, int request)
{
    int r;

    p[n] = '\0';
    if (bare_crlf(p, n, n))
        return STRATA_ERR_PROTO;
    if (h->started)
        return n == 0 ? 1 : parse_header(h, p, n);
    r = request ? parse_request_line(h, p, n) : parse_status_line(h, p, n);
    h->started = r == 0;
    return r;
}

/* ---- pulling lines -------------------------------------------------- */

/* What a failed readline means for the head. The unfinished line's first
 * `window` bytes hold no CRLF (readline would have returned the line), so
 * any LF there is bare, and so is any CR but a last one whose LF may still
 * come. */
static int unfinished(const strata_buffered *in, const strata_http1_head *h,
                      ssize_t r, size_t window)
{
    const uint8_t *d = in->buf + in->start;
    size_t n = in->end - in->start;

    if (r == STRATA_EOF)
        return h->store_len == 0 && n == 0 ? STRATA_EOF : STRATA_ERR_PROTO;
    if (n > window)
        n = window;
    if ((r == STRATA_NEED_READ || r == STRATA_NEED_WRITE ||
         r == STRATA_ERR_TOO_BIG) &&
        n > 0 && bare_crlf(d, n, n - 1))
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

#ifndef STRATA_EMBEDDED /* the profile's ws layer reads its own request */
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
#endif

/* ---- lookups -------------------------------------------------------- */

const char *strata_http1_next_value(const strata_http1_head *h,
                                    const char *name, size_t *i)
{
    if (h == NULL || name == NULL || i == NULL)
        return NULL;
    while (*i < h->n_headers) {
        const strata_http1_header *f = &h->headers[(*i)++];

        if (ieq_n(f->name, strlen(f->name), name))
            return f->value;
    }
    return NULL;
}

const char *strata_http1_get(const strata_http1_head *h, const char *name)
{
    size_t i = 0;

    return strata_http1_next_value(h, name, &i);
}

const char *strata_http1_list_next(const char **list, size_t *len)
{
    const char *p = *list, *e;

    if (p == NULL || *p == '\0')
        return NULL;
    p += strspn(p, " \t");
    e = p + strcspn(p, ",");
    *list = *e == ',' ? e + 1 : e;
    while (e > p && is_ows(e[-1]))
        e--;
    *len = (size_t)(e - p);
    return p;
}

int strata_http1_has_token(const strata_http1_head *h, const char *name,
                           const char *token)
{
    size_t i = 0, n;
    const char *v, *item;

    if (token == NULL || token[0] == '\0')
        return 0;
    /* the token is not empty: an empty element is not it */
    while ((v = strata_http1_next_value(h, name, &i)) != NULL)
        while ((item = strata_http1_list_next(&v, &n)) != NULL)
            if (ieq_n(item, n, token))
                return 1;
    return 0;
}

/* ---- writers -------------------------------------------------------- */

/* The usual reason phrase of a status, "Status" for one without. */
#ifndef STRATA_EMBEDDED
/* Each entry: the status's three digits and its reason, NUL-terminated;
 * an empty entry ends the table. */
static const char std_reasons[] =
    "101Switching Protocols\0"
    "200OK\0"
    "400Bad Request\0"
    "403Forbidden\0"
    "404Not Found\0"
    "426Upgrade Required\0"
    "431Request Header Fields Too Large\0"
    "500Internal Server Error\0";

static const char *std_reason(const char *code)
{
    const char *t;

    for (t = std_reasons; *t != '\0'; t += strlen(t) + 1)
        if (memcmp(t, code, 3) == 0)
            return t + 3;
    return "Status";
}
#else
/* The embedded profile keeps the one its ws layer's handshake answers with
 * (clients are told to ignore the phrase, RFC 9112 4; some match this
 * one): the others would cost it 130 bytes. */
static const char *std_reason(const char *code)
{
    return memcmp(code, "101", 3) == 0 ? "Switching Protocols" : "Status";
}
#endif

int strata_http1_is_token(const char *s)
{
    return s != NULL && s[0] != '\0' && s[token_len(s)] == '\0';
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
        if (!strata_http1_is_token(hd[0]) || hd[1] == NULL ||
            !text_ok(hd[1]))
            return 0;
    return 1;
}

/* Whole header lines only: a blank line or a bare CR/LF in them would end
 * or split the head where the peer reads it. */
static int extra_ok(const char *x)
{
    while (x != NULL && *x != '\0') {
        /* the line's first CR or LF must be its CRLF */
        const char *e = x + strcspn(x, "\r\n");
        size_t m = token_len(x);

        if (m == 0 || x[m] != ':' || e[0] != '\r' || e[1] != '\n')
            return 0;
        x = e + CRLF_LEN;
    }
    return 1;
}

/* A bounded output: len <= cap always. A piece that does not fit sets cap
 * and len to 0: no later piece but an empty one fits, and len == cap says
 * the head did not fit (a head needs room for its NUL, too). */
typedef struct out {
    char *p;
    size_t cap, len;
} out;

static void put(out *o, const char *s)
{
    size_t n = strlen(s);

    if (n > o->cap - o->len) {
        o->cap = o->len = 0;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

/* One line of the head: a, b and c, then CRLF. */
static void put_line(out *o, const char *a, const char *b, const char *c)
{
    put(o, a);
    put(o, b);
    put(o, c);
    put(o, "\r\n");
}

/* The start line (its pieces, then CRLF), the header lines, the extra
 * lines, the blank line and the NUL: both writers, once their start
 * line's own parts are checked. */
static ssize_t write_head(char *buf, size_t cap, const char *const start[4],
                          const char *const *hd, const char *extra)
{
    out o = {buf, cap, 0};

    if (buf == NULL || !fields_ok(hd) || !extra_ok(extra))
        return STRATA_ERR_ARG;
    put(&o, start[0]);
    put_line(&o, start[1], start[2], start[3]);
    for (; hd != NULL && hd[0] != NULL; hd += 2)
        put_line(&o, hd[0], ": ", hd[1]);
    if (extra != NULL)
        put(&o, extra);
    put(&o, "\r\n");
    if (o.len == o.cap)
        return STRATA_ERR_TOO_BIG;
    o.p[o.len] = '\0';
    return (ssize_t)o.len;
}

ssize_t strata_http1_write_request(char *buf, size_t cap, const char *method,
                                   const char *target,
                                   const char *const *headers,
                                   const char *extra)
{
    const char *start[4] = {method, " ", target, " HTTP/1.1"};

    if (method == NULL || target == NULL || !strata_http1_is_token(method) ||
        !target_ok(target))
        return STRATA_ERR_ARG;
    return write_head(buf, cap, start, headers, extra);
}

ssize_t strata_http1_write_response(char *buf, size_t cap, int status,
                                    const char *reason,
                                    const char *const *headers,
                                    const char *extra)
{
    char code[5];
    const char *start[4] = {"HTTP/1.1 ", code, reason, ""};
    size_t i;

    if (status < 100 || status > 599)
        return STRATA_ERR_ARG;
    code[3] = ' ';
    code[4] = '\0';
    for (i = 3; i-- > 0; status /= 10)
        code[i] = (char)('0' + status % 10);
    if (reason == NULL)
        start[2] = std_reason(code);
    if (!text_ok(start[2]))
        return STRATA_ERR_ARG;
    return write_head(buf, cap, start, headers, extra);
}
