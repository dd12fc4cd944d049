/* permessage-deflate left out: the codec's interface (ws_deflate.h) for
 * the embedded profile (STRATA_EMBEDDED), which has no zlib. Nothing is
 * offered, no offer is accepted, an answer that names the extension is
 * refused (the client then closes with 1010), and no codec is ever made,
 * so the compressed paths of ws.c are never taken (WS_Z_ON is 0 there).
 */
#include "ws_deflate.h"

int ws_deflate_offer(const strata_ws_deflate_opts *o, char *buf, size_t cap)
{
    (void)o;
    (void)buf;
    (void)cap;
    return STRATA_ERR_ARG;
}

int ws_deflate_accept(const strata_ws_deflate_opts *o, const char *offers,
                      char *resp, size_t cap, ws_deflate_params *p)
{
    (void)o;
    (void)offers;
    (void)resp;
    (void)cap;
    (void)p;
    return 0;
}

int ws_deflate_confirm(const strata_ws_deflate_opts *o, const char *response,
                       ws_deflate_params *p)
{
    (void)o;
    (void)response;
    (void)p;
    return STRATA_ERR_PROTO;
}

ws_deflate *ws_deflate_new(const ws_deflate_params *p, int role,
                           const strata_allocator *alloc)
{
    (void)p;
    (void)role;
    (void)alloc;
    return NULL;
}

void ws_deflate_free(ws_deflate *d)
{
    (void)d;
}

ssize_t ws_deflate_compress(ws_deflate *d, const uint8_t *in, size_t len,
                            int fin, uint8_t *out, size_t cap, size_t *used,
                            int *done)
{
    (void)d;
    (void)in;
    (void)len;
    (void)fin;
    (void)out;
    (void)cap;
    (void)used;
    (void)done;
    return STRATA_ERR_UNSUPPORTED;
}

ssize_t ws_deflate_decompress(ws_deflate *d, const uint8_t *in, size_t len,
                              int fin, uint8_t *out, size_t cap,
                              size_t *used, int *done)
{
    (void)d;
    (void)in;
    (void)len;
    (void)fin;
    (void)out;
    (void)cap;
    (void)used;
    (void)done;
    return STRATA_ERR_UNSUPPORTED;
}
