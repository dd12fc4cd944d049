/* strata tls: the stream layer over wolfSSL (protos/tls.h).
 *
 * wolfSSL reads and writes through tls_io_recv / tls_io_send, which call
 * the lower strata stream. When the lower stream returns a NEED code the
 * callback keeps it and tells wolfSSL "would block"; the layer then
 * returns the kept code, so NEED_* always speak of the bottom transport
 * whatever wolfSSL was doing (a handshake flight, an alert, a key update).
 *
 * What the lower stream does not take at once is kept in the layer's own
 * output buffer and tls_io_send reports it sent. wolfSSL's own "pending
 * output" state is thereby avoided: with it, a sealed record must be
 * retried with the very same length, which a caller that changes its next
 * send (the contract allows that after a partial send) or a key update
 * in between would break. So a record wolfSSL sealed is a record accepted,
 * as in a write buffer, and the buffer is pushed out before the next
 * record, by strata_flush, and around every read (wants says WRITE while
 * it holds bytes). It holds at most one handshake flight or one record
 * plus a few alerts (TLS_OUT_MAX). It keeps where each of wolfSSL's
 * writes ends and never sends across that line in one lower send: over a
 * message stream each write is one message, and a layer such as the
 * WebSocket continues a partly sent message only with its own rest.
 */
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>

#include "tls_internal.h"

#define TLS_RECORD_MAX 16384
#define TLS_OUT_MAX (64u * 1024u)
#define TLS_OUT_WRITES 8

typedef struct strata_tls {
    strata_stream base;
    strata_tls_config *cfg;
    WOLFSSL *ssl;
    size_t record_size;
    unsigned char *gather;      /* small iovec pieces -> one record */
    unsigned char *out;         /* sealed bytes the lower has not taken */
    size_t out_off, out_len, out_cap;
    size_t ends[TLS_OUT_WRITES];/* where each of wolfSSL's writes ends in out */
    int n_ends;
    int io_need;                /* the lower's NEED code of the last callback */
    int lower_err;              /* the lower's error, kept as it was */
    int lower_eof;              /* the lower stream ended */
    int connected;              /* handshake done */
    int failed;                 /* sticky status of a failure */
    int wolf_err;               /* wolfSSL's code of the failure */
    int peer_closed;            /* close_notify received */
    int sent_notify;            /* our close_notify went out */
    int lower_shut;             /* the lower stream was shut down */
    int wrote_any;              /* wolfSSL sent something */
    int own_alert;              /* an alert this layer sent, or 0 */
    char alpn[256];             /* the protocol agreed, kept at the end of
                                   the handshake (wolfSSL forgets it) */
    char reason[128];
} strata_tls;

static int tls_io_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    strata_tls *t = ctx;
    ssize_t r;
    unsigned fl;

    (void)ssl;
    do {    /* a 0-byte message below (WebSocket) carries nothing: skip */
        fl = 0;
        r = strata_recv(t->base.lower, buf, (size_t)sz, &fl);
    } while (r == 0 && sz > 0);
    if (r > 0)
        return (int)r;
    if (r == STRATA_NEED_READ || r == STRATA_NEED_WRITE) {
        t->io_need = (int)r;
        return WOLFSSL_CBIO_ERR_WANT_READ;
    }
    if (r == STRATA_EOF) {
        t->lower_eof = 1;
        return WOLFSSL_CBIO_ERR_CONN_CLOSE;
    }
    t->lower_err = (int)r;
    return WOLFSSL_CBIO_ERR_GENERAL;
}

/* Room for n more bytes in the output buffer, within TLS_OUT_MAX. */
static int out_reserve(strata_tls *t, size_t n)
{
    size_t need = t->out_len + n, cap;
    unsigned char *p;

    if (need <= t->out_cap)
        return 0;
    if (t->out_off > 0) {   /* slide the unsent bytes to the front */
        int i;

        memmove(t->out, t->out + t->out_off, t->out_len - t->out_off);
        for (i = 0; i < t->n_ends; i++)
            t->ends[i] -= t->out_off;
        t->out_len -= t->out_off;
        t->out_off = 0;
        need = t->out_len + n;
        if (need <= t->out_cap)
            return 0;
    }
    if (need > TLS_OUT_MAX)
        return -1;
    cap = need < TLS_RECORD_MAX + 512 ? TLS_RECORD_MAX + 512 : need;
    p = strata_realloc(t->base.alloc, t->out, cap);
    if (!p)
        return -1;
    t->out = p;
    t->out_cap = cap;
    return 0;
}

/* Push the output buffer down: 0 once empty, else the lower's NEED code or
 * its error (kept). MSG_END: over a message stream, the rest of a record
 * ends the message its first bytes began. */
static int push_out(strata_tls *t)
{
    while (t->out_off < t->out_len) {
        size_t end = t->ends[0];
        ssize_t r = strata_send(t->base.lower, t->out + t->out_off,
                                end - t->out_off, STRATA_MSG_END);

        if (r > 0) {
            t->out_off += (size_t)r;
            if (t->out_off == end) {
                t->n_ends--;
                memmove(t->ends, t->ends + 1,
                        (size_t)t->n_ends * sizeof t->ends[0]);
            }
            continue;
        }
        if (r == 0 || r == STRATA_NEED_READ || r == STRATA_NEED_WRITE)
            return r == 0 ? STRATA_NEED_WRITE : (int)r;
        t->lower_err = (int)r;
        return t->failed = (int)r;
    }
    t->out_off = t->out_len = 0;
    t->n_ends = 0;
    return 0;
}

static int out_pending(const strata_tls *t)
{
    return t->out_off < t->out_len;
}

static int tls_io_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    strata_tls *t = ctx;
    ssize_t r = 0;

    (void)ssl;
    t->wrote_any = 1;
    if (t->lower_shut)      /* our direction below is closed: drop */
        return sz;
    if (!out_pending(t)) {
        r = strata_send(t->base.lower, buf, (size_t)sz, STRATA_MSG_END);
        if (r == sz)
            return sz;
        if (r == STRATA_NEED_READ || r == STRATA_NEED_WRITE || r == 0) {
            t->io_need = r == 0 ? STRATA_NEED_WRITE : (int)r;
            r = 0;
        } else if (r < 0) {
            t->lower_err = (int)r;
            return WOLFSSL_CBIO_ERR_CONN_RST;
        }
    }
    if (t->n_ends == TLS_OUT_WRITES
        || out_reserve(t, (size_t)(sz - r)) != 0) {
        if (r > 0)
            return (int)r;
        if (!t->io_need)
            t->io_need = STRATA_NEED_WRITE;
        return WOLFSSL_CBIO_ERR_WANT_WRITE;
    }
    memcpy(t->out + t->out_len, buf + r, (size_t)(sz - r));
    t->out_len += (size_t)(sz - r);
    t->ends[t->n_ends++] = t->out_len;
    return sz;
}

/* After a call that ended waiting: bytes still in the output buffer go
 * first (the peer may wait for them), so their NEED code wins. */
static int settle(strata_tls *t, int status)
{
    int r;

    if (!out_pending(t) || (status != STRATA_NEED_READ
                            && status != STRATA_NEED_WRITE))
        return status;
    r = push_out(t);
    return r != 0 ? r : status;
}

/* wolfSSL names the alerts it knows; TLS 1.3's newer ones get a number. */
static const char *alert_name(int code, char num[16])
{
    const char *n = wolfSSL_alert_desc_string_long(code);

    if (code == 116)
        return "certificate_required";
    if (n && strcmp(n, "") != 0)
        return n;
    snprintf(num, 16, "%d", code);
    return num;
}

/* Remember why wolfSSL failed, in words a user can act on. */
static void note_reason(strata_tls *t, int err)
{
    char buf[80], num[16];
    WOLFSSL_ALERT_HISTORY h;

    wolfSSL_ERR_error_string_n((unsigned long)err, buf, sizeof buf);
    memset(&h, 0, sizeof h);
    wolfSSL_get_alert_history(t->ssl, &h);
    if (h.last_rx.code > 0 && h.last_rx.level == alert_fatal)
        snprintf(t->reason, sizeof t->reason, "%s (peer sent alert %s)",
                 buf, alert_name(h.last_rx.code, num));
    else if (h.last_tx.code > 0 && h.last_tx.level == alert_fatal)
        snprintf(t->reason, sizeof t->reason, "%s (sent alert %s)", buf,
                 alert_name(h.last_tx.code, num));
    else if (t->own_alert)
        snprintf(t->reason, sizeof t->reason, "%s (sent alert %s)", buf,
                 alert_name(t->own_alert, num));
    else
        snprintf(t->reason, sizeof t->reason, "%s", buf);
}

/* wolfSSL sends no alert for bytes that are not TLS records at all (an
 * HTTP request on a TLS port). A server that has sent nothing yet answers
 * them with a plaintext fatal unexpected_message, as RFC 8446 5 asks for
 * an unknown record type; after that it is quiet, as wolfSSL decided. */
static void alert_garbage(strata_tls *t)
{
    static const unsigned char alert[7] = {21, 3, 3, 0, 2, 2, 10};
    WOLFSSL_ALERT_HISTORY h;

    memset(&h, 0, sizeof h);
    wolfSSL_get_alert_history(t->ssl, &h);
    if (t->cfg->role != STRATA_TLS_SERVER || t->wrote_any
        || h.last_tx.level > 0)  /* -1: none yet */
        return;
    if (strata_send(t->base.lower, alert, sizeof alert, STRATA_MSG_END)
        == (ssize_t)sizeof alert) {
        t->own_alert = alert[6];
        (void)strata_flush(t->base.lower);
    }
}

/* Turn a wolfSSL result <= 0 into a strata status (and fail for good
 * unless it is a NEED code). */
static int map_result(strata_tls *t, int ret)
{
    int err = wolfSSL_get_error(t->ssl, ret);

    if (err == WOLFSSL_ERROR_WANT_READ || err == WOLFSSL_ERROR_WANT_WRITE) {
        if (t->io_need)
            return t->io_need;
        return err == WOLFSSL_ERROR_WANT_READ ? STRATA_NEED_READ
                                              : STRATA_NEED_WRITE;
    }
    if (err == WOLFSSL_ERROR_ZERO_RETURN) {
        t->peer_closed = 1;
        return STRATA_EOF;
    }
    if (t->lower_err) {
        snprintf(t->reason, sizeof t->reason, "lower stream: %s",
                 strata_strerror(t->lower_err));
        return t->failed = t->lower_err;
    }
    t->wolf_err = err;
    if (t->lower_eof) {
        snprintf(t->reason, sizeof t->reason, "the peer closed the transport"
                 " without close_notify%s",
                 t->connected ? "" : " during the handshake");
        return t->failed = STRATA_ERR_TRUNCATED;
    }
    if (!t->connected)
        alert_garbage(t);
    note_reason(t, err);
    /* a record over the TLS size limit; before the handshake the same
     * code means bytes that are not TLS ("HTTP/" read as a length) */
    if (err == LENGTH_ERROR && t->connected)
        return t->failed = STRATA_ERR_TOO_BIG;
    return t->failed = STRATA_ERR_TLS;
}

static void keep_alpn(strata_tls *t)
{
    char *name = NULL;
    unsigned short len = 0;

    if (wolfSSL_ALPN_GetProtocol(t->ssl, &name, &len) == WOLFSSL_SUCCESS
        && name && len < sizeof t->alpn) {
        memcpy(t->alpn, name, len);
        t->alpn[len] = '\0';
    }
}

/* A verifying client insists on a certificate whatever the suite: an
 * anonymous suite would skip verification silently. */
static int peer_ok(strata_tls *t)
{
    WOLFSSL_X509 *x;

    if (t->cfg->role != STRATA_TLS_CLIENT || t->cfg->insecure)
        return 1;
    x = wolfSSL_get_peer_certificate(t->ssl);
    if (x) {
        wolfSSL_X509_free(x);
        return 1;
    }
    snprintf(t->reason, sizeof t->reason,
             "the server presented no certificate");
    return 0;
}

static int drive_handshake(strata_tls *t)
{
    int r;

    if (t->failed)
        return t->failed;
    if (t->connected)
        return 0;
    if ((r = push_out(t)) != 0)
        return r;
    t->io_need = 0;
    /* wolfSSL_connect / _accept follow the version agreed so far, not the
     * one the object started with (wolfSSL_negotiate's choice), so a
     * handshake resumed after a NEED code stays on its state machine. */
    r = t->cfg->role == STRATA_TLS_CLIENT ? wolfSSL_connect(t->ssl)
                                          : wolfSSL_accept(t->ssl);
    if (r == WOLFSSL_SUCCESS) {
        if (!peer_ok(t))
            return t->failed = STRATA_ERR_TLS;
        t->connected = 1;
        keep_alpn(t);
        /* a client's Finished (or a server's tickets) may still be here */
        r = push_out(t);
        return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE ? 0 : r;
    }
    r = settle(t, map_result(t, r));
    if (r == STRATA_EOF) {   /* close_notify instead of a handshake */
        snprintf(t->reason, sizeof t->reason,
                 "the peer closed during the handshake");
        r = t->failed = STRATA_ERR_TLS;
    }
    return r;
}


static ssize_t tls_recv(strata_stream *s, void *buf, size_t len,
                        unsigned *flags)
{
    strata_tls *t = (strata_tls *)s;
    int r, want;

    *flags = 0;
    if (t->failed)
        return t->failed;
    if ((r = drive_handshake(t)) != 0)
        return r;
    if (t->peer_closed)
        return STRATA_EOF;
    if (len == 0)
        return 0;
    want = len > 0x7fffffff ? 0x7fffffff : (int)len;
    t->io_need = 0;
    r = wolfSSL_read(t->ssl, buf, want);
    if (r > 0) {
        /* a KeyUpdate answer may wait below; a blocked push is not this
         * read's failure (wants says WRITE), and a failed one shows on
         * the next call, after these bytes are delivered */
        if (out_pending(t))
            (void)push_out(t);
        return r;
    }
    return settle(t, map_result(t, r));
}

/* The next record's plaintext: one iovec piece, or small pieces gathered.
 * The same bytes give the same record, so a retry after NEED matches
 * what wolfSSL already sealed. */
static const void *next_record(strata_tls *t, const struct iovec *iov, int n,
                               size_t *len)
{
    size_t cap = t->record_size, got = 0;
    int i;

    while (n > 0 && iov->iov_len == 0) {
        iov++;
        n--;
    }
    if (n == 0) {
        *len = 0;
        return NULL;
    }
    if (n == 1 || iov[0].iov_len >= cap) {
        *len = iov[0].iov_len < cap ? iov[0].iov_len : cap;
        return iov[0].iov_base;
    }
    if (!t->gather) {
        t->gather = strata_alloc(t->base.alloc, cap);
        if (!t->gather) {   /* no room to gather: one piece per record */
            *len = iov[0].iov_len;
            return iov[0].iov_base;
        }
    }
    for (i = 0; i < n && got < cap; i++) {
        size_t k = iov[i].iov_len < cap - got ? iov[i].iov_len : cap - got;

        memcpy(t->gather + got, iov[i].iov_base, k);
        got += k;
    }
    *len = got;
    return t->gather;
}

/* Drop `done` bytes from the front of an iovec array copy. */
static int advance(struct iovec *v, int n, size_t done)
{
    int i = 0;

    while (i < n && done >= v[i].iov_len) {
        done -= v[i].iov_len;
        i++;
    }
    if (i < n) {
        v[i].iov_base = (char *)v[i].iov_base + done;
        v[i].iov_len -= done;
    }
    return i;
}

static ssize_t tls_sendv(strata_stream *s, const struct iovec *iov, int n,
                         unsigned flags)
{
    strata_tls *t = (strata_tls *)s;
    struct iovec v[16];
    size_t total = 0, len;
    int r, first = 0, cnt;
    const void *rec;

    (void)flags;
    if (t->failed)
        return t->failed;
    if (t->sent_notify)
        return STRATA_ERR_STATE;
    if ((r = drive_handshake(t)) != 0)
        return r;
    if ((r = push_out(t)) != 0)     /* the last record first */
        return r;
    /* Work on a copy of at most 16 pieces; the rest goes in a later call
     * (a partial send is allowed by the contract). */
    cnt = n < 16 ? n : 16;
    memcpy(v, iov, (size_t)cnt * sizeof *iov);
    while (!out_pending(t)) {
        rec = next_record(t, v + first, cnt - first, &len);
        if (len == 0)
            break;
        t->io_need = 0;
        r = wolfSSL_write(t->ssl, rec, (int)len);
        if (r <= 0) {   /* sealed nothing (a flight over TLS_OUT_MAX) */
            r = map_result(t, r);
            return total > 0 && (r == STRATA_NEED_READ
                                 || r == STRATA_NEED_WRITE) ? (ssize_t)total
                                                            : r;
        }
        /* sealed: the record is ours to deliver, its bytes are accepted */
        total += (size_t)r;
        first += advance(v + first, cnt - first, (size_t)r);
    }
    return (ssize_t)total;
}

static int tls_flush(strata_stream *s)
{
    strata_tls *t = (strata_tls *)s;

    int r;

    if (t->failed)
        return t->failed;
    if ((r = push_out(t)) != 0)
        return r;
    return strata_flush(t->base.lower);
}

static int tls_shutdown(strata_stream *s)
{
    strata_tls *t = (strata_tls *)s;
    int r;

    if (t->failed)
        return t->failed;
    if ((r = drive_handshake(t)) != 0)
        return r;
    if (!t->sent_notify) {
        t->io_need = 0;
        r = wolfSSL_shutdown(t->ssl);
        if (r != WOLFSSL_SUCCESS && r != WOLFSSL_SHUTDOWN_NOT_DONE) {
            r = map_result(t, r);
            if (r != STRATA_EOF)
                return r;
        }
        t->sent_notify = 1;
    }
    if ((r = push_out(t)) != 0)
        return r;
    if (!t->lower_shut) {
        r = strata_shutdown(t->base.lower);
        if (r != 0)
            return r;
        t->lower_shut = 1;
    }
    return 0;
}

static unsigned tls_wants(strata_stream *s)
{
    return out_pending((strata_tls *)s) ? STRATA_WANT_WRITE : 0;
}

static unsigned tls_poll(strata_stream *s, unsigned events)
{
    strata_tls *t = (strata_tls *)s;
    unsigned ready = 0;

    if (t->failed)
        return events | STRATA_POLL_ERR;
    if (t->peer_closed)
        ready |= STRATA_POLL_HUP | (events & STRATA_POLL_IN);
    /* Decrypted bytes waiting, or received bytes not yet decrypted. */
    if ((events & STRATA_POLL_IN) && t->connected
        && (wolfSSL_pending(t->ssl) > 0 || wolfSSL_has_pending(t->ssl)))
        ready |= STRATA_POLL_IN;
    return ready | strata_poll(t->base.lower, events & ~ready);
}

static void tls_close(strata_stream *s)
{
    strata_tls *t = (strata_tls *)s;

    wolfSSL_free(t->ssl);
    strata_tls_config_unref(t->cfg);
    strata_dealloc(t->base.alloc, t->gather);
    strata_dealloc(t->base.alloc, t->out);
}

static const strata_stream_ops tls_ops = {
    "tls", tls_recv, tls_sendv, tls_flush, tls_shutdown, tls_poll,
    tls_wants, NULL, tls_close,
};

/* Client: SNI (not for an IP literal, RFC 6066) and the name to check. */
/* wolfSSL 5.5 compares an IPv6 address with the certificate's as text in
 * its full form ("0000:...:0001"): write it so, whatever the user typed
 * ("::1"). IPv4 stays dotted. */
static const char *ip_text(const char *name, char full[40])
{
    unsigned char a[16];
    int i;

    if (inet_pton(AF_INET6, name, a) != 1)
        return name;
    for (i = 0; i < 8; i++)
        snprintf(full + i * 5, 6, "%02x%02x%s", a[2 * i], a[2 * i + 1],
                 i < 7 ? ":" : "");
    return full;
}

static int set_peer_name(strata_tls *t, const char *name)
{
    char full[40];
    unsigned char ip[16];
    int is_ip = inet_pton(AF_INET, name, ip) == 1
             || inet_pton(AF_INET6, name, ip) == 1;

    if (!is_ip && wolfSSL_UseSNI(t->ssl, WOLFSSL_SNI_HOST_NAME, name,
                                 (unsigned short)strlen(name))
                      != WOLFSSL_SUCCESS)
        return -1;
    if (t->cfg->insecure)
        return 0;
    if (is_ip)
        return wolfSSL_X509_VERIFY_PARAM_set1_ip_asc(
                   wolfSSL_get0_param(t->ssl), ip_text(name, full))
                   == WOLFSSL_SUCCESS ? 0 : -1;
    return wolfSSL_check_domain_name(t->ssl, name) == WOLFSSL_SUCCESS ? 0 : -1;
}

static int setup(strata_tls *t, const strata_tls_opts *o)
{
    strata_tls_config *c = t->cfg;

    wolfSSL_SSLSetIORecv(t->ssl, tls_io_recv);
    wolfSSL_SSLSetIOSend(t->ssl, tls_io_send);
    wolfSSL_SetIOReadCtx(t->ssl, t);
    wolfSSL_SetIOWriteCtx(t->ssl, t);
    if (c->alpn) {
        char list[256];

        strcpy(list, c->alpn);  /* wolfSSL may write into the list */
        if (wolfSSL_UseALPN(t->ssl, list, (unsigned)strlen(list),
                            WOLFSSL_ALPN_FAILED_ON_MISMATCH)
            != WOLFSSL_SUCCESS)
            return -1;
    }
    if (c->role == STRATA_TLS_CLIENT) {
        if (o && o->server_name && set_peer_name(t, o->server_name) != 0)
            return -1;
        if (o && o->session
            && wolfSSL_set_session(t->ssl, (WOLFSSL_SESSION *)o->session)
                   != WOLFSSL_SUCCESS)
            return -1;
    }
    return 0;
}

strata_stream *strata_tls_new(strata_stream *lower, strata_tls_config *c,
                              const strata_tls_opts *o,
                              const strata_allocator *alloc)
{
    strata_tls *t;
    size_t rs = o && o->record_size ? o->record_size : TLS_RECORD_MAX;

    if (!lower || !c || rs > TLS_RECORD_MAX)
        return NULL;
    if (c->role == STRATA_TLS_CLIENT && !c->insecure
        && (!o || !o->server_name || !*o->server_name))
        return NULL;
    if (strata_tls_config_ready(c) != 0)
        return NULL;
    t = strata_alloc(alloc, sizeof *t);
    if (!t)
        return NULL;
    memset(t, 0, sizeof *t);
    t->ssl = wolfSSL_new(c->ctx);
    if (!t->ssl) {
        strata_dealloc(alloc, t);
        return NULL;
    }
    t->cfg = c;
    t->record_size = rs;
    if (setup(t, o) != 0) {
        wolfSSL_free(t->ssl);
        strata_dealloc(alloc, t);
        return NULL;
    }
    strata_tls_config_ref(c);
    strata_stream_init(&t->base, &tls_ops, lower, alloc);
    t->base.owns_lower = 1;
    t->base.heap = 1;
    snprintf(t->reason, sizeof t->reason, "no error");
    return &t->base;
}

/* The tls layer of s, or NULL. */
static strata_tls *as_tls(strata_stream *s)
{
    return s && s->ops == &tls_ops ? (strata_tls *)s : NULL;
}

int strata_tls_handshake(strata_stream *s)
{
    strata_tls *t = as_tls(s);
    int r;

    if (!t)
        return STRATA_ERR_ARG;
    r = drive_handshake(t);
    /* recorded as the generic calls do, so strata_wants tells a loop */
    s->send_wants = r == STRATA_NEED_READ ? STRATA_WANT_READ
                  : r == STRATA_NEED_WRITE ? STRATA_WANT_WRITE : 0;
    return r;
}

int strata_tls_key_update(strata_stream *s)
{
    strata_tls *t = as_tls(s);
    int r;

    if (!t)
        return STRATA_ERR_ARG;
    if (t->failed)
        return t->failed;
    if (!t->connected || wolfSSL_version(t->ssl) != TLS1_3_VERSION)
        return STRATA_ERR_STATE;
    t->io_need = 0;
    r = wolfSSL_update_keys(t->ssl);
    if (r != WOLFSSL_SUCCESS)
        return settle(t, map_result(t, r));
    r = push_out(t);
    return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE ? 0 : r;
}

strata_stream *strata_tls_of(strata_stream *s)
{
    for (; s != NULL; s = s->lower)
        if (s->ops == &tls_ops)
            return s;
    return NULL;
}

const char *strata_tls_alpn(strata_stream *s)
{
    strata_tls *t = as_tls(s);

    return t && t->connected && t->alpn[0] ? t->alpn : NULL;
}

const char *strata_tls_version(strata_stream *s)
{
    strata_tls *t = as_tls(s);

    return t && t->connected ? wolfSSL_get_version(t->ssl) : NULL;
}

const char *strata_tls_cipher(strata_stream *s)
{
    strata_tls *t = as_tls(s);

    return t && t->connected ? wolfSSL_get_cipher_name(t->ssl) : NULL;
}

int strata_tls_resumed(strata_stream *s)
{
    strata_tls *t = as_tls(s);

    return t && t->connected && wolfSSL_session_reused(t->ssl);
}

const char *strata_tls_sni(strata_stream *s)
{
    strata_tls *t = as_tls(s);

    if (!t || t->cfg->role != STRATA_TLS_SERVER)
        return NULL;
    return wolfSSL_get_servername(t->ssl, WOLFSSL_SNI_HOST_NAME);
}

int strata_tls_peer_verified(strata_stream *s)
{
    strata_tls *t = as_tls(s);
    WOLFSSL_X509 *x;
    int ok;

    if (!t || !t->connected)
        return 0;
    if (t->cfg->role == STRATA_TLS_CLIENT && t->cfg->insecure)
        return 0;
    x = wolfSSL_get_peer_certificate(t->ssl);
    ok = x && wolfSSL_get_verify_result(t->ssl) == 0;
    wolfSSL_X509_free(x);
    return ok;
}

strata_tls_session *strata_tls_session_get(strata_stream *s)
{
    strata_tls *t = as_tls(s);

    if (!t || !t->connected || t->cfg->role != STRATA_TLS_CLIENT)
        return NULL;
    return (strata_tls_session *)wolfSSL_get1_session(t->ssl);
}

void strata_tls_session_free(strata_tls_session *session)
{
    if (session)
        wolfSSL_SESSION_free((WOLFSSL_SESSION *)session);
}

int strata_tls_error(strata_stream *s)
{
    strata_tls *t = as_tls(s);

    return t ? t->wolf_err : 0;
}

const char *strata_tls_reason(strata_stream *s)
{
    strata_tls *t = as_tls(s);

    return t ? t->reason : "not a tls stream";
}

static int alert_of(strata_stream *s, int sent)
{
    strata_tls *t = as_tls(s);
    WOLFSSL_ALERT_HISTORY h;

    if (!t)
        return -1;
    if (sent && t->own_alert)
        return t->own_alert;
    memset(&h, 0, sizeof h);
    if (wolfSSL_get_alert_history(t->ssl, &h) != WOLFSSL_SUCCESS)
        return -1;
    if (sent)
        return h.last_tx.level > 0 ? h.last_tx.code : -1;
    return h.last_rx.level > 0 ? h.last_rx.code : -1;
}

int strata_tls_alert_sent(strata_stream *s)
{
    return alert_of(s, 1);
}

int strata_tls_alert_received(strata_stream *s)
{
    return alert_of(s, 0);
}
