/* h2 header blocks: what a stream received, kept in one buffer per block,
 * and the nghttp2_nv arrays built from an application's head. */
#include <string.h>

#include "h2_internal.h"

int h2_block_add(h2_block *b, const strata_allocator *a, const uint8_t *name,
                 size_t nlen, const uint8_t *value, size_t vlen)
{
    size_t need = b->len + nlen + vlen + 2;

    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *p;

        while (cap < need)
            cap *= 2;
        p = strata_realloc(a, b->buf, cap);
        if (!p)
            return -1;
        b->buf = p;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, name, nlen);
    b->buf[b->len + nlen] = '\0';
    memcpy(b->buf + b->len + nlen + 1, value, vlen);
    b->buf[b->len + nlen + 1 + vlen] = '\0';
    b->len = need;
    b->bytes += nlen + vlen + 32;
    b->n++;
    return 0;
}

int h2_block_finish(h2_block *b, const strata_allocator *a)
{
    size_t i, off = 0;
    /* the list lives in the same buffer, behind the strings: one
     * allocation per block */
    size_t at = (b->len + sizeof(void *) - 1) & ~(sizeof(void *) - 1);
    size_t need = at + (b->n ? b->n : 1) * sizeof *b->list;

    if (need > b->cap) {
        char *p = strata_realloc(a, b->buf, need);

        if (!p)
            return -1;
        b->buf = p;
        b->cap = need;
    }
    b->list = (strata_h2_header *)(void *)(b->buf + at);
    for (i = 0; i < b->n; i++) {
        b->list[i].name = b->buf + off;
        off += strlen(b->buf + off) + 1;
        b->list[i].value = b->buf + off;
        off += strlen(b->buf + off) + 1;
    }
    b->done = 1;
    return 0;
}

void h2_block_reset(h2_block *b, const strata_allocator *a)
{
    strata_dealloc(a, b->buf);   /* the list is inside */
    memset(b, 0, sizeof *b);
}

const char *h2_block_get(const h2_block *b, const char *name)
{
    size_t i;

    if (!b->done)
        return NULL;
    for (i = 0; i < b->n; i++)
        if (strcmp(b->list[i].name, name) == 0)
            return b->list[i].value;
    return NULL;
}

/* HTTP/2 field names are lowercase tokens (RFC 9113 8.2.1). */
static int name_ok(const char *n)
{
    const char *p = n[0] == ':' ? n + 1 : n;

    if (*p == '\0')
        return 0;
    for (; *p; p++)
        if ((*p >= 'A' && *p <= 'Z') || *p <= ' ' || *p == ':' || *p == 127)
            return 0;
    return 1;
}

static nghttp2_nv nv_of(const strata_h2_header *h)
{
    nghttp2_nv nv;

    nv.name = (uint8_t *)(uintptr_t)h->name;
    nv.value = (uint8_t *)(uintptr_t)h->value;
    nv.namelen = strlen(h->name);
    nv.valuelen = strlen(h->value);
    nv.flags = NGHTTP2_NV_FLAG_NONE;    /* nghttp2 copies them */
    return nv;
}

int h2_nva_build(const strata_allocator *a, const strata_h2_header *extra,
                 const strata_h2_header *head, size_t n, nghttp2_nv **out)
{
    return h2_nva_build_in(a, extra, head, n, NULL, 0, out);
}

int h2_nva_build_in(const strata_allocator *a, const strata_h2_header *extra,
                    const strata_h2_header *head, size_t n,
                    nghttp2_nv *stack, size_t cap, nghttp2_nv **out)
{
    size_t i, k = 0;
    int pass;
    nghttp2_nv *nva;

    if ((n && !head) || n > 4096)
        return STRATA_ERR_ARG;
    for (i = 0; i < n; i++)
        if (!head[i].name || !head[i].value || !name_ok(head[i].name))
            return STRATA_ERR_ARG;
    nva = n + 1 <= cap ? stack : strata_alloc(a, (n + 1) * sizeof *nva);
    if (!nva)
        return STRATA_ERR_NOMEM;
    if (extra)
        nva[k++] = nv_of(extra);
    for (pass = 0; pass < 2; pass++)    /* pseudo-headers, then the rest */
        for (i = 0; i < n; i++)
            if ((head[i].name[0] == ':') == (pass == 0))
                nva[k++] = nv_of(&head[i]);
    *out = nva;
    return (int)k;
}

int h2_nva_copy(const strata_allocator *a, const strata_h2_header *head,
                size_t n, nghttp2_nv **out)
{
    nghttp2_nv *ref, *nva;
    size_t i, bytes = 0;
    uint8_t *p;
    int k = h2_nva_build(a, NULL, head, n, &ref);

    if (k < 0)
        return k;
    for (i = 0; i < (size_t)k; i++)
        bytes += ref[i].namelen + ref[i].valuelen + 2;
    nva = strata_alloc(a, (size_t)k * sizeof *nva + bytes);
    if (!nva) {
        strata_dealloc(a, ref);
        return STRATA_ERR_NOMEM;
    }
    p = (uint8_t *)(nva + k);
    for (i = 0; i < (size_t)k; i++) {
        nva[i] = ref[i];
        nva[i].name = p;
        memcpy(p, ref[i].name, ref[i].namelen + 1);
        p += ref[i].namelen + 1;
        nva[i].value = p;
        memcpy(p, ref[i].value, ref[i].valuelen + 1);
        p += ref[i].valuelen + 1;
    }
    strata_dealloc(a, ref);
    *out = nva;
    return k;
}
