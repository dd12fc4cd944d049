/* Inside the tls layer: the config object shared by tls_config.c (building
 * the WOLFSSL_CTX) and tls.c (the stream). Not installed. */
#ifndef STRATA_TLS_INTERNAL_H
#define STRATA_TLS_INTERNAL_H

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "tls.h"

/* One certificate a server serves to clients naming it in SNI. */
typedef struct tls_sni_cert {
    struct tls_sni_cert *next;
    char *name;
    char *cert, *key;           /* PEM file paths */
} tls_sni_cert;

struct strata_tls_config {
    WOLFSSL_CTX *ctx;
    const strata_allocator *alloc;
    int role;
    int refs;                   /* the owner's plus one per connection */
    int insecure;
    int has_ca;                 /* a CA was given; else the system's */
    int system_ca_loaded;
    char *alpn;                 /* comma list, or NULL */
    tls_sni_cert *sni;
    char reason[160];
};

/* The connection takes / drops a reference. */
void strata_tls_config_ref(strata_tls_config *c);
void strata_tls_config_unref(strata_tls_config *c);
/* Before the first connection: the system's CAs when none was given. */
int strata_tls_config_ready(strata_tls_config *c);

#endif
