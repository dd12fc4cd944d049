/* strata tls config: one WOLFSSL_CTX built from plain calls and shared by
 * many connections (protos/tls.h). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "tls_internal.h"

/* The suites offered unless the application names its own: TLS 1.3's,
 * then TLS 1.2's with forward secrecy and AEAD. An explicit list matters:
 * Debian's wolfSSL also enables anonymous suites, which a client would
 * otherwise accept from a server that shows no certificate at all. */
static const char default_ciphers[] =
    "TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:"
    "TLS13-CHACHA20-POLY1305-SHA256:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

static char *dup_str(const strata_allocator *a, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = strata_alloc(a, n);

    if (d)
        memcpy(d, s, n);
    return d;
}

/* Record wolfSSL's reason for a failed setter. */
static int fail(strata_tls_config *c, int status, const char *what, int err)
{
    char buf[80];

    if (err) {
        wolfSSL_ERR_error_string_n((unsigned long)err, buf, sizeof buf);
        snprintf(c->reason, sizeof c->reason, "%s: %s", what, buf);
    } else {
        snprintf(c->reason, sizeof c->reason, "%s", what);
    }
    return status;
}

/* The server's SNI hook: switch to the certificate registered for the
 * name the client sent. Unknown names keep the default certificate. */
static int on_sni(WOLFSSL *ssl, int *alert, void *arg)
{
    strata_tls_config *c = arg;
    const char *name = wolfSSL_get_servername(ssl, WOLFSSL_SNI_HOST_NAME);
    tls_sni_cert *e;

    (void)alert;
    if (!name)
        return 0;
    for (e = c->sni; e; e = e->next) {
        if (strcasecmp(e->name, name) != 0)
            continue;
        if (wolfSSL_use_certificate_chain_file(ssl, e->cert) != WOLFSSL_SUCCESS
            || wolfSSL_use_PrivateKey_file(ssl, e->key, WOLFSSL_FILETYPE_PEM)
                   != WOLFSSL_SUCCESS)
            return fatal_return;
        break;
    }
    return 0;
}

strata_tls_config *strata_tls_config_new(int role,
                                         const strata_allocator *alloc)
{
    strata_tls_config *c;

    if (role != STRATA_TLS_CLIENT && role != STRATA_TLS_SERVER)
        return NULL;
    if (wolfSSL_Init() != WOLFSSL_SUCCESS)
        return NULL;
    c = strata_alloc(alloc, sizeof *c);
    if (!c) {
        wolfSSL_Cleanup();
        return NULL;
    }
    memset(c, 0, sizeof *c);
    c->alloc = alloc;
    c->role = role;
    c->refs = 1;
    c->ctx = wolfSSL_CTX_new(role == STRATA_TLS_SERVER
                                 ? wolfSSLv23_server_method()
                                 : wolfSSLv23_client_method());
    if (!c->ctx) {
        strata_dealloc(alloc, c);
        wolfSSL_Cleanup();
        return NULL;
    }
    /* TLS 1.2 at least; a client verifies by default, a server asks no
     * certificate until verify_client. */
    wolfSSL_CTX_SetMinVersion(c->ctx, WOLFSSL_TLSV1_2);
    wolfSSL_CTX_set_verify(c->ctx,
                           role == STRATA_TLS_CLIENT ? WOLFSSL_VERIFY_PEER
                                                     : WOLFSSL_VERIFY_NONE,
                           NULL);
    wolfSSL_CTX_UseSessionTicket(c->ctx);
    /* Debian's build retries a read callback that said "would block" up
     * to ten times: pointless system calls for a non-blocking layer. */
    wolfSSL_CTX_clear_mode(c->ctx, SSL_MODE_AUTO_RETRY);
    if (wolfSSL_CTX_set_cipher_list(c->ctx, default_ciphers)
        != WOLFSSL_SUCCESS) {
        wolfSSL_CTX_free(c->ctx);
        strata_dealloc(alloc, c);
        wolfSSL_Cleanup();
        return NULL;
    }
    if (role == STRATA_TLS_SERVER) {
        wolfSSL_CTX_set_servername_callback(c->ctx, on_sni);
        wolfSSL_CTX_set_servername_arg(c->ctx, c);
    }
    return c;
}

void strata_tls_config_ref(strata_tls_config *c)
{
    c->refs++;
}

void strata_tls_config_unref(strata_tls_config *c)
{
    tls_sni_cert *e;

    if (--c->refs > 0)
        return;
    while ((e = c->sni) != NULL) {
        c->sni = e->next;
        strata_dealloc(c->alloc, e->name);
        strata_dealloc(c->alloc, e->cert);
        strata_dealloc(c->alloc, e->key);
        strata_dealloc(c->alloc, e);
    }
    strata_dealloc(c->alloc, c->alpn);
    wolfSSL_CTX_free(c->ctx);
    strata_dealloc(c->alloc, c);
    wolfSSL_Cleanup();
}

void strata_tls_config_free(strata_tls_config *c)
{
    if (c)
        strata_tls_config_unref(c);
}

const char *strata_tls_config_reason(const strata_tls_config *c)
{
    return c && c->reason[0] ? c->reason : "no error";
}

static int version_of(int v)
{
    return v == STRATA_TLS_1_2 ? WOLFSSL_TLSV1_2
         : v == STRATA_TLS_1_3 ? WOLFSSL_TLSV1_3 : -1;
}

int strata_tls_config_versions(strata_tls_config *c, int min, int max)
{
    int lo, hi;

    if (!c)
        return STRATA_ERR_ARG;
    lo = version_of(min);
    hi = version_of(max);
    if (lo < 0 || hi < 0 || min > max)
        return fail(c, STRATA_ERR_ARG, "versions: use STRATA_TLS_1_2 / _1_3,"
                    " min <= max", 0);
    if (wolfSSL_CTX_set_min_proto_version(c->ctx, lo == WOLFSSL_TLSV1_2
                                          ? TLS1_2_VERSION : TLS1_3_VERSION)
            != WOLFSSL_SUCCESS
        || wolfSSL_CTX_set_max_proto_version(c->ctx, hi == WOLFSSL_TLSV1_2
                                             ? TLS1_2_VERSION : TLS1_3_VERSION)
            != WOLFSSL_SUCCESS)
        return fail(c, STRATA_ERR_TLS, "versions", 0);
    return 0;
}

/* A key that does not belong to the certificate would fail every
 * handshake with decrypt_error: say so now. */
static int check_pair(strata_tls_config *c)
{
    if (wolfSSL_CTX_check_private_key(c->ctx) != WOLFSSL_SUCCESS)
        return fail(c, STRATA_ERR_TLS, "the key does not match the"
                    " certificate", 0);
    return 0;
}

int strata_tls_config_cert_file(strata_tls_config *c, const char *cert,
                                const char *key)
{
    int r;

    if (!c || !cert || !key)
        return STRATA_ERR_ARG;
    r = wolfSSL_CTX_use_certificate_chain_file(c->ctx, cert);
    if (r != WOLFSSL_SUCCESS)
        return fail(c, STRATA_ERR_TLS, "certificate file: unreadable or not"
                    " a PEM certificate chain", r < 0 ? r : 0);
    r = wolfSSL_CTX_use_PrivateKey_file(c->ctx, key, WOLFSSL_FILETYPE_PEM);
    if (r != WOLFSSL_SUCCESS)
        return fail(c, STRATA_ERR_TLS, "key file: unreadable or not a PEM"
                    " private key", r < 0 ? r : 0);
    return check_pair(c);
}

int strata_tls_config_cert_mem(strata_tls_config *c, const void *cert,
                               size_t cert_len, const void *key,
                               size_t key_len)
{
    int r;

    if (!c || !cert || !key || cert_len > 0x7fffffff || key_len > 0x7fffffff)
        return STRATA_ERR_ARG;
    r = wolfSSL_CTX_use_certificate_chain_buffer(c->ctx, cert, (long)cert_len);
    if (r != WOLFSSL_SUCCESS)
        return fail(c, STRATA_ERR_TLS, "certificate", r);
    r = wolfSSL_CTX_use_PrivateKey_buffer(c->ctx, key, (long)key_len,
                                          WOLFSSL_FILETYPE_PEM);
    if (r != WOLFSSL_SUCCESS)
        return fail(c, STRATA_ERR_TLS, "key", r);
    return check_pair(c);
}

int strata_tls_config_sni_cert_file(strata_tls_config *c, const char *name,
                                    const char *cert, const char *key)
{
    tls_sni_cert *e;
    FILE *f;

    if (!c || !name || !*name || !cert || !key
        || c->role != STRATA_TLS_SERVER)
        return STRATA_ERR_ARG;
    /* Fail now, not in a handshake, when a file is missing. */
    if (!(f = fopen(cert, "r")))
        return fail(c, STRATA_ERR_ARG, "SNI certificate file unreadable", 0);
    fclose(f);
    if (!(f = fopen(key, "r")))
        return fail(c, STRATA_ERR_ARG, "SNI key file unreadable", 0);
    fclose(f);
    e = strata_alloc(c->alloc, sizeof *e);
    if (!e)
        return STRATA_ERR_NOMEM;
    e->name = dup_str(c->alloc, name);
    e->cert = dup_str(c->alloc, cert);
    e->key = dup_str(c->alloc, key);
    if (!e->name || !e->cert || !e->key) {
        strata_dealloc(c->alloc, e->name);
        strata_dealloc(c->alloc, e->cert);
        strata_dealloc(c->alloc, e->key);
        strata_dealloc(c->alloc, e);
        return STRATA_ERR_NOMEM;
    }
    e->next = c->sni;
    c->sni = e;
    return 0;
}

int strata_tls_config_ca_file(strata_tls_config *c, const char *file,
                              const char *dir)
{
    int r;

    if (!c || (!file && !dir))
        return STRATA_ERR_ARG;
    r = wolfSSL_CTX_load_verify_locations(c->ctx, file, dir);
    if (r != WOLFSSL_SUCCESS)
        return fail(c, STRATA_ERR_TLS, "CA file or directory", r);
    c->has_ca = 1;
    return 0;
}

int strata_tls_config_ca_mem(strata_tls_config *c, const void *pem,
                             size_t len)
{
    int r;

    if (!c || !pem || len > 0x7fffffff)
        return STRATA_ERR_ARG;
    r = wolfSSL_CTX_load_verify_buffer(c->ctx, pem, (long)len,
                                       WOLFSSL_FILETYPE_PEM);
    if (r != WOLFSSL_SUCCESS)
        return fail(c, STRATA_ERR_TLS, "CA", r);
    c->has_ca = 1;
    return 0;
}

int strata_tls_config_insecure(strata_tls_config *c)
{
    if (!c || c->role != STRATA_TLS_CLIENT)
        return STRATA_ERR_ARG;
    c->insecure = 1;
    wolfSSL_CTX_set_verify(c->ctx, WOLFSSL_VERIFY_NONE, NULL);
    return 0;
}

int strata_tls_config_verify_client(strata_tls_config *c, int required)
{
    if (!c || c->role != STRATA_TLS_SERVER)
        return STRATA_ERR_ARG;
    wolfSSL_CTX_set_verify(c->ctx, WOLFSSL_VERIFY_PEER
                           | (required ? WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT
                                       : 0), NULL);
    return 0;
}

/* A server picks the first protocol of ITS list that the client offered
 * (wolfSSL alone would follow the client's order). No overlap: decline
 * here, and wolfSSL's own match sends no_application_protocol. */
static int select_alpn(WOLFSSL *ssl, const unsigned char **out,
                       unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg)
{
    const strata_tls_config *c = arg;
    const char *p = c->alpn;

    (void)ssl;
    while (p && *p) {
        size_t n = strcspn(p, ",");
        unsigned int i = 0;

        while (i < inlen) {
            unsigned int l = in[i];

            if (i + 1 + l > inlen)
                break;
            if (l == n && memcmp(in + i + 1, p, n) == 0) {
                *out = in + i + 1;
                *outlen = (unsigned char)l;
                return 0;       /* SSL_TLSEXT_ERR_OK */
            }
            i += 1 + l;
        }
        p += n + (p[n] == ',');
    }
    return 3;                   /* SSL_TLSEXT_ERR_NOACK */
}

int strata_tls_config_alpn(strata_tls_config *c, const char *list)
{
    size_t n;
    char *d;

    if (!c || !list || !*list || (n = strlen(list)) > 255)
        return STRATA_ERR_ARG;
    if (list[0] == ',' || list[n - 1] == ',' || strstr(list, ",,"))
        return fail(c, STRATA_ERR_ARG, "ALPN: empty protocol name", 0);
    if (!(d = dup_str(c->alloc, list)))
        return STRATA_ERR_NOMEM;
    strata_dealloc(c->alloc, c->alpn);
    c->alpn = d;
    if (c->role == STRATA_TLS_SERVER)
        wolfSSL_CTX_set_alpn_select_cb(c->ctx, select_alpn, c);
    return 0;
}

int strata_tls_config_ciphers(strata_tls_config *c, const char *list)
{
    if (!c || !list)
        return STRATA_ERR_ARG;
    if (wolfSSL_CTX_set_cipher_list(c->ctx, list) != WOLFSSL_SUCCESS)
        return fail(c, STRATA_ERR_ARG, "no cipher suite in the list known",
                    0);
    return 0;
}

int strata_tls_config_tickets(strata_tls_config *c, int on)
{
    if (!c)
        return STRATA_ERR_ARG;
    if (on)
        wolfSSL_CTX_UseSessionTicket(c->ctx);
    else
        wolfSSL_CTX_NoTicketTLSv12(c->ctx);
    if (!on && c->role == STRATA_TLS_SERVER)
        wolfSSL_CTX_no_ticket_TLSv13(c->ctx);
    return 0;
}

int strata_tls_config_ready(strata_tls_config *c)
{
    /* A verifying client with no CA of its own trusts the system's store,
     * loaded once, on first use (it costs milliseconds). */
    if (c->role != STRATA_TLS_CLIENT || c->insecure || c->has_ca
        || c->system_ca_loaded)
        return 0;
    if (wolfSSL_CTX_load_system_CA_certs(c->ctx) != WOLFSSL_SUCCESS)
        return fail(c, STRATA_ERR_TLS, "no CA given and the system CA store"
                    " could not be loaded", 0);
    c->system_ca_loaded = 1;
    return 0;
}
