/* strata tls: TLS 1.2 / 1.3 (wolfSSL) as a layer over any lower stream,
 * client and server.
 *
 * Contract (on top of streams/stream.h):
 *  - Plumbing only: wolfSSL does the cryptography and reads and writes the
 *    lower strata stream through I/O callbacks, so the lower stream may be
 *    a socket, a WebSocket, an HTTP/2 stream or the pipe pair. The NEED
 *    code a call returns is the one the lower stream returned: a send may
 *    return NEED_READ (handshake, key update, an HTTP/2 window below) and a
 *    recv may return NEED_WRITE (a handshake flight or an alert to send).
 *    Over a lower stream with messages, every record write is one message.
 *  - Handshake: the first recv or send runs it; strata_tls_handshake
 *    drives it explicitly (to read strata_tls_alpn before sending).
 *  - Sends: each record carries at most opts.record_size plaintext bytes
 *    (default 16384, the TLS maximum); a larger send is split and returns
 *    what went out (a partial send: continue with the rest, same flags).
 *    Small iovec pieces are gathered into one record. After a NEED code,
 *    retry the SAME send: wolfSSL holds the record it already sealed.
 *  - Recv returns decrypted bytes; strata_poll reports bytes already
 *    decrypted or received inside wolfSSL as readable (POLL_IN) with no
 *    I/O. Message flags are not carried: TLS is a byte stream.
 *  - End: strata_shutdown sends close_notify, then shuts the lower stream
 *    down. The peer's close_notify is STRATA_EOF. The lower stream ending
 *    without one is STRATA_ERR_TRUNCATED, so a caller can tell a cut
 *    connection (or a truncation attack) from a clean end.
 *  - Failures: STRATA_ERR_TLS for a handshake or record failure (bad
 *    certificate, hostname mismatch, no common ALPN, version or cipher,
 *    garbage, a bad record MAC), STRATA_ERR_TOO_BIG for a record over the
 *    size limit; a lower stream's error is returned as it was. The reason
 *    stays readable: strata_tls_error (wolfSSL's code), strata_tls_reason
 *    (wolfSSL's text), strata_tls_alert_sent / _received (the alert).
 *    A failed stream stays failed.
 *  - Memory: the layer's struct comes from the stack's allocator; wolfSSL
 *    keeps its own buffers (one record in, one out: about 2 x 16 KiB plus
 *    the handshake state) from its own allocator (wolfSSL_SetAllocators).
 *    Debian's wolfSSL keeps an ECC cache per thread: a thread that ran
 *    handshakes and ends should call wc_ecc_fp_free() before it does.
 *  - Suites: TLS 1.3's and TLS 1.2's ECDHE with AEAD unless
 *    strata_tls_config_ciphers names others; a verifying client fails a
 *    handshake in which the server showed no certificate.
 */
#ifndef STRATA_TLS_H
#define STRATA_TLS_H

#include <strata/stream.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { STRATA_TLS_CLIENT = 0, STRATA_TLS_SERVER = 1 };
enum { STRATA_TLS_1_2 = 12, STRATA_TLS_1_3 = 13 };

/* A configuration shared by many connections: one WOLFSSL_CTX. Build it,
 * then create connections with it; it is not changed afterwards. Each
 * connection keeps a reference, so strata_tls_config_free may come
 * before the connections are freed. Every setter returns 0, or
 * STRATA_ERR_TLS / STRATA_ERR_ARG with strata_tls_config_reason set. */
typedef struct strata_tls_config strata_tls_config;

/* NULL on allocation failure. Defaults: TLS 1.2 and 1.3; a client
 * verifies the server's certificate and name against the CAs given (the
 * system's CA store when none is given); a server asks no certificate;
 * session tickets on. */
strata_tls_config *strata_tls_config_new(int role,
                                         const strata_allocator *alloc);
void strata_tls_config_free(strata_tls_config *c);
const char *strata_tls_config_reason(const strata_tls_config *c);

/* Oldest and newest version allowed (STRATA_TLS_1_2, STRATA_TLS_1_3). */
int strata_tls_config_versions(strata_tls_config *c, int min, int max);
/* Our certificate chain and key (PEM): a server's, or a client's for
 * mutual TLS. A key that does not match is refused here (wolfSSL 5.5
 * tells two ECC keys apart only at the handshake: decrypt_error). */
int strata_tls_config_cert_file(strata_tls_config *c, const char *cert,
                                const char *key);
int strata_tls_config_cert_mem(strata_tls_config *c, const void *cert,
                               size_t cert_len, const void *key,
                               size_t key_len);
/* Server: serve this chain and key to clients whose SNI is `name`
 * (exact, case-insensitive); others get the default certificate. */
int strata_tls_config_sni_cert_file(strata_tls_config *c, const char *name,
                                    const char *cert, const char *key);
/* Trusted CAs (PEM) for the peer's certificate: a file and/or a
 * directory of hashed names (c_rehash), or a buffer. */
int strata_tls_config_ca_file(strata_tls_config *c, const char *file,
                              const char *dir);
int strata_tls_config_ca_mem(strata_tls_config *c, const void *pem,
                             size_t len);
/* Client: do not verify the server at all. Only by explicit choice. */
int strata_tls_config_insecure(strata_tls_config *c);
/* Server: mutual TLS. Ask the client's certificate and verify it against
 * the CAs; `required` refuses clients without one. */
int strata_tls_config_verify_client(strata_tls_config *c, int required);
/* ALPN protocols, comma-separated in order of preference ("h2,http/1.1").
 * A client offers them; a server selects the first of its list the
 * client offered, and fails the handshake when none overlaps. */
int strata_tls_config_alpn(strata_tls_config *c, const char *list);
/* wolfSSL cipher suite list ("TLS13-AES128-GCM-SHA256:..."). */
int strata_tls_config_ciphers(strata_tls_config *c, const char *list);
/* Session tickets (resumption): on by default. */
int strata_tls_config_tickets(strata_tls_config *c, int on);

/* A client's saved session, for resumption. */
typedef struct strata_tls_session strata_tls_session;

typedef struct strata_tls_opts {
    /* client: SNI and the name (or IP address) the certificate must
     * match; required unless the config is insecure */
    const char *server_name;
    /* client: resume this session (strata_tls_session_get); may be NULL */
    strata_tls_session *session;
    size_t record_size;   /* plaintext bytes per record; 0: 16384 */
} strata_tls_opts;

/* A TLS layer over lower (owned) with the role of the config. NULL on bad
 * options (a verifying client without server_name) or allocation failure;
 * lower is then left to the caller. */
strata_stream *strata_tls_new(strata_stream *lower, strata_tls_config *c,
                              const strata_tls_opts *o,
                              const strata_allocator *alloc);

/* Run the handshake now: 0 when done, NEED_* to call again, or an error. */
int strata_tls_handshake(strata_stream *s);
/* TLS 1.3: send a KeyUpdate asking the peer to update too. 0, NEED_*
 * (retry), STRATA_ERR_STATE before the handshake or with TLS 1.2. */
int strata_tls_key_update(strata_stream *s);

/* The tls layer in s's stack: s itself or the first below it (under
 * lines, over ws, under a tap...), or NULL when the stack has none. */
strata_stream *strata_tls_of(strata_stream *s);

/* After the handshake: the ALPN protocol selected (NULL if none), the
 * version ("TLSv1.3"), the cipher suite, whether the session was resumed,
 * and (server) the SNI name the client sent (NULL if none). */
const char *strata_tls_alpn(strata_stream *s);
const char *strata_tls_version(strata_stream *s);
const char *strata_tls_cipher(strata_stream *s);
int strata_tls_resumed(strata_stream *s);
const char *strata_tls_sni(strata_stream *s);
/* Whether the peer presented a certificate that verified. */
int strata_tls_peer_verified(strata_stream *s);

/* Client: the session to resume later, or NULL. With TLS 1.3 the ticket
 * comes after the handshake: take it after a recv returned data or EOF. */
strata_tls_session *strata_tls_session_get(strata_stream *s);
void strata_tls_session_free(strata_tls_session *session);

/* Why the stream failed: wolfSSL's error code (0 if none), its readable
 * text (never NULL), and the TLS alert we sent / received (description
 * number, e.g. 42 bad_certificate, 120 no_application_protocol; -1 none). */
int strata_tls_error(strata_stream *s);
const char *strata_tls_reason(strata_stream *s);
int strata_tls_alert_sent(strata_stream *s);
int strata_tls_alert_received(strata_stream *s);

#ifdef __cplusplus
}
#endif
#endif
