/* strata grpc wire encodings: percent-encoded grpc-message, base64 "-bin"
 * metadata (wolfCrypt's coder), grpc-timeout, the status tables of the
 * gRPC over HTTP/2 specification, and whole-message gzip (zlib). */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/coding.h>
#include <zlib.h>

#include "grpc.h"
#include "grpc_internal.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

static char *dup_n(const strata_allocator *a, const char *s, size_t n)
{
    char *d = strata_alloc(a, n + 1);

    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* ---- grpc-message ---------------------------------------------------- */

static int plain_byte(unsigned char c)
{
    return c >= 0x20 && c <= 0x7e && c != '%';
}

char *grpc_pct_encode(const strata_allocator *a, const char *msg)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0, i;
    char *out, *p;

    for (i = 0; msg[i]; i++)
        n += plain_byte((unsigned char)msg[i]) ? 1 : 3;
    if (!(out = strata_alloc(a, n + 1)))
        return NULL;
    for (p = out, i = 0; msg[i]; i++) {
        unsigned char c = (unsigned char)msg[i];

        if (plain_byte(c)) {
            *p++ = (char)c;
        } else {
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        }
    }
    *p = '\0';
    return out;
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

char *grpc_pct_decode(const strata_allocator *a, const char *v)
{
    size_t n = strlen(v), i, o = 0;
    char *out = strata_alloc(a, n + 1);

    if (!out)
        return NULL;
    for (i = 0; i < n; i++) {
        int hi, lo;

        if (v[i] == '%' && i + 2 < n + 1 && (hi = hexval(v[i + 1])) >= 0
            && (lo = hexval(v[i + 2])) >= 0) {
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[o++] = v[i];
        }
    }
    out[o] = '\0';
    return out;
}

/* ---- "-bin" metadata ------------------------------------------------- */

int grpc_key_is_bin(const char *key)
{
    size_t n = strlen(key);

    return n > 4 && strcmp(key + n - 4, "-bin") == 0;
}

char *grpc_b64_encode(const strata_allocator *a, const void *p, size_t n)
{
    word32 cap = (word32)((n + 2) / 3 * 4 + 1), olen = cap;
    char *out;

    if (n > (size_t)UINT_MAX / 2 || !(out = strata_alloc(a, cap + 1)))
        return NULL;
    if (n == 0) {
        out[0] = '\0';
        return out;
    }
    if (Base64_Encode_NoNl(p, (word32)n, (byte *)out, &olen) != 0) {
        strata_dealloc(a, out);
        return NULL;
    }
    while (olen > 0 && out[olen - 1] == '=')  /* gRPC sends no padding */
        olen--;
    out[olen] = '\0';
    return out;
}

static int b64_symbol(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
           || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

int grpc_b64_decode(const strata_allocator *a, const char *v, uint8_t **out,
                    size_t *n)
{
    size_t len = strlen(v), i, padded;
    char *in;
    word32 olen;
    int r;

    while (len > 0 && v[len - 1] == '=')
        len--;
    for (i = 0; i < len; i++)
        if (!b64_symbol(v[i]))
            return STRATA_ERR_PROTO;
    if (len % 4 == 1 || len > (size_t)UINT_MAX / 2)
        return STRATA_ERR_PROTO;
    padded = (len + 3) / 4 * 4;
    if (!(in = strata_alloc(a, padded + 1)))
        return STRATA_ERR_NOMEM;
    memcpy(in, v, len);
    memset(in + len, '=', padded - len);
    olen = (word32)(padded / 4 * 3 + 1);
    if (!(*out = strata_alloc(a, olen))) {
        strata_dealloc(a, in);
        return STRATA_ERR_NOMEM;
    }
    r = padded ? Base64_Decode((byte *)in, (word32)padded, *out, &olen) : 0;
    strata_dealloc(a, in);
    if (r != 0) {
        strata_dealloc(a, *out);
        *out = NULL;
        return STRATA_ERR_PROTO;
    }
    *n = padded ? olen : 0;
    return 0;
}

/* ---- statuses -------------------------------------------------------- */

int grpc_status_of_http(int http)
{
    switch (http) {
    case 400: return STRATA_GRPC_INTERNAL;
    case 401: return STRATA_GRPC_UNAUTHENTICATED;
    case 403: return STRATA_GRPC_PERMISSION_DENIED;
    case 404: return STRATA_GRPC_UNIMPLEMENTED;
    case 429: case 502: case 503: case 504: return STRATA_GRPC_UNAVAILABLE;
    default: return STRATA_GRPC_UNKNOWN;
    }
}

int grpc_status_of_reset(long code)
{
    switch (code) {
    case STRATA_H2_REFUSED_STREAM: return STRATA_GRPC_UNAVAILABLE;
    case STRATA_H2_CANCEL: return STRATA_GRPC_CANCELLED;
    case STRATA_H2_ENHANCE_YOUR_CALM: return STRATA_GRPC_RESOURCE_EXHAUSTED;
    case STRATA_H2_INADEQUATE_SECURITY: return STRATA_GRPC_PERMISSION_DENIED;
    default: return STRATA_GRPC_INTERNAL;
    }
}

int grpc_content_type_ok(const char *v)
{
    static const char base[] = "application/grpc";
    size_t n = sizeof base - 1;

    return v && strncmp(v, base, n) == 0
           && (v[n] == '\0' || v[n] == '+' || v[n] == ';');
}

const char *strata_grpc_status_name(int status)
{
    static const char *const names[] = {
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
        "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
        "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
        "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};

    return status >= 0 && status <= 16 ? names[status] : "?";
}

/* ---- grpc-timeout ---------------------------------------------------- */

int strata_grpc_timeout_parse(const char *v, long *ms)
{
    /* the unit's length in nanoseconds would overflow; its ms instead,
     * with sub-millisecond units rounded up (a deadline never grows) */
    unsigned long long n = 0, div = 1, mul = 1;
    size_t i;

    if (!v || !ms)
        return STRATA_ERR_ARG;
    for (i = 0; v[i] >= '0' && v[i] <= '9'; i++)
        n = n * 10 + (unsigned)(v[i] - '0');
    if (i == 0 || i > 8 || v[i] == '\0' || v[i + 1] != '\0')
        return STRATA_ERR_PROTO;
    switch (v[i]) {
    case 'H': mul = 3600000; break;
    case 'M': mul = 60000; break;
    case 'S': mul = 1000; break;
    case 'm': break;
    case 'u': div = 1000; break;
    case 'n': div = 1000000; break;
    default: return STRATA_ERR_PROTO;
    }
    n = (n * mul + div - 1) / div;
    *ms = n > LONG_MAX ? LONG_MAX : (long)n;
    return 0;
}

void strata_grpc_timeout_format(long ms, char out[16])
{
    /* the finest unit whose value, rounded up (a deadline never shrinks
     * to zero), fits the 8 digits allowed */
    static const struct { long per; char unit; } u[] = {
        {1, 'm'}, {1000, 'S'}, {60000, 'M'}, {3600000, 'H'}};
    long v = 0;
    size_t i;

    if (ms < 0)
        ms = 0;
    for (i = 0; i < sizeof u / sizeof u[0]; i++) {
        v = ms / u[i].per + (ms % u[i].per != 0);
        if (v <= 99999999L)
            break;
    }
    if (i == sizeof u / sizeof u[0]) {
        i--;
        v = 99999999L;
    }
    snprintf(out, 16, "%ld%c", v % 100000000L, u[i].unit);
}

/* ---- gzip ------------------------------------------------------------ */

static voidpf z_alloc(voidpf ud, uInt items, uInt size)
{
    if (size && items > (uInt)-1 / size)
        return Z_NULL;
    return strata_alloc(ud, (size_t)items * size);
}

static void z_free(voidpf ud, voidpf p)
{
    strata_dealloc(ud, p);
}

static void z_init(z_stream *z, const strata_allocator *a)
{
    memset(z, 0, sizeof *z);
    z->zalloc = z_alloc;
    z->zfree = z_free;
    z->opaque = (voidpf)a;
}

int grpc_gzip(const strata_allocator *a, const uint8_t *in, size_t len,
              uint8_t **out, size_t *n)
{
    z_stream z;
    uLong cap;
    int r;

    if (len > UINT_MAX / 2)
        return STRATA_ERR_TOO_BIG;
    z_init(&z, a);
    /* windowBits 15 + 16: a gzip wrapper, as grpc-encoding gzip means */
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return STRATA_ERR_NOMEM;
    cap = deflateBound(&z, (uLong)len);
    if (!(*out = strata_alloc(a, cap ? cap : 1))) {
        deflateEnd(&z);
        return STRATA_ERR_NOMEM;
    }
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    z.next_out = *out;
    z.avail_out = (uInt)cap;
    r = deflate(&z, Z_FINISH);
    *n = z.total_out;
    deflateEnd(&z);
    if (r != Z_STREAM_END) {
        strata_dealloc(a, *out);
        *out = NULL;
        return STRATA_ERR_NOMEM;
    }
    return 0;
}

/* Grow the output by doubling, never past max + 1 (one byte over max
 * proves the message too big without inflating the rest). */
static int grow(const strata_allocator *a, uint8_t **buf, size_t *cap,
                size_t max)
{
    size_t want = *cap ? *cap * 2 : 4096;
    uint8_t *p;

    if (want > max + 1)
        want = max + 1;
    if (want <= *cap)
        return STRATA_ERR_TOO_BIG;
    if (!(p = strata_realloc(a, *buf, want)))
        return STRATA_ERR_NOMEM;
    *buf = p;
    *cap = want;
    return 0;
}

int grpc_gunzip(const strata_allocator *a, const uint8_t *in, size_t len,
                size_t max, uint8_t **out, size_t *n)
{
    z_stream z;
    size_t cap = 0;
    int r = Z_OK, st = 0;

    *out = NULL;
    if (len > UINT_MAX / 2)
        return STRATA_ERR_TOO_BIG;
    z_init(&z, a);
    if (inflateInit2(&z, 15 + 16) != Z_OK)
        return STRATA_ERR_NOMEM;
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    while (r != Z_STREAM_END) {
        if (z.total_out == cap && (st = grow(a, out, &cap, max)) != 0)
            break;
        z.next_out = *out + z.total_out;
        z.avail_out = (uInt)(cap - z.total_out);
        r = inflate(&z, Z_NO_FLUSH);
        if (r == Z_MEM_ERROR) {
            st = STRATA_ERR_NOMEM;
            break;
        }
        if (r != Z_OK && r != Z_STREAM_END && !(r == Z_BUF_ERROR
                                               && z.avail_out == 0)) {
            st = STRATA_ERR_PROTO;   /* corrupt or cut short */
            break;
        }
    }
    if (st == 0 && (z.total_out > max || z.avail_in != 0))
        st = z.total_out > max ? STRATA_ERR_TOO_BIG : STRATA_ERR_PROTO;
    *n = z.total_out;
    inflateEnd(&z);
    if (st != 0) {
        strata_dealloc(a, *out);
        *out = NULL;
    }
    return st;
}

char *grpc_dup(const strata_allocator *a, const char *s)
{
    return dup_n(a, s, strlen(s));
}
