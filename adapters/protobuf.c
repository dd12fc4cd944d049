/* protobuf-c messages on message streams (adapters/protobuf.h).
 *
 * One buffer per direction, reused from message to message: a send packs
 * into it and hands it down whole, a receive gathers a message's pieces in
 * it. The send side marks a message as waiting while off != len; an empty
 * message (a protobuf with every field at its default, google.protobuf.
 * Empty) has no byte to count, so while it waits off is 1 past len 0.
 */
#include "protobuf.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define PB_MIN_CAP 256u

void strata_pb_buf_init(strata_pb_buf *b, const strata_allocator *alloc)
{
    memset(b, 0, sizeof *b);
    b->alloc = alloc;
}

void strata_pb_buf_free(strata_pb_buf *b)
{
    if (b == NULL)
        return;
    strata_dealloc(b->alloc, b->data);
    strata_pb_buf_init(b, b->alloc);
}

/* Room for need bytes in all; doubles so a stream of messages of similar
 * sizes stops allocating after the first few. */
static int reserve(strata_pb_buf *b, size_t need)
{
    size_t cap = b->cap ? b->cap : PB_MIN_CAP;
    uint8_t *p;

    if (need <= b->cap)
        return 0;
    while (cap < need) {
        if (cap > SIZE_MAX / 2)
            return STRATA_ERR_TOO_BIG;
        cap *= 2;
    }
    p = strata_realloc(b->alloc, b->data, cap);
    if (p == NULL)
        return STRATA_ERR_NOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

static int waiting(const strata_pb_buf *b)
{
    return b->off != b->len;
}

int strata_pb_flush(strata_stream *s, strata_pb_buf *out)
{
    ssize_t n;

    if (s == NULL || out == NULL)
        return STRATA_ERR_ARG;
    if (out->len == 0 && waiting(out)) {
        n = strata_send(s, out->data, 0, STRATA_MSG_END);
        if (n < 0)
            return (int)n;
        out->off = 0;
        return 0;
    }
    /* a partial send is continued with the rest (stream.h rule 4) */
    while (out->off < out->len) {
        n = strata_send(s, out->data + out->off, out->len - out->off,
                        STRATA_MSG_END);
        if (n < 0)
            return (int)n;
        out->off += (size_t)n;
    }
    return 0;
}

int strata_pb_send(strata_stream *s, strata_pb_buf *out,
                   const ProtobufCMessage *m)
{
    size_t size;
    int r;

    if (s == NULL || out == NULL || m == NULL)
        return STRATA_ERR_ARG;
    if (waiting(out))
        return STRATA_ERR_STATE;    /* the last message has not all gone */
    size = protobuf_c_message_get_packed_size(m);
    if ((r = reserve(out, size)) != 0)
        return r;
    out->len = protobuf_c_message_pack(m, out->data);
    out->off = out->len == 0 ? 1 : 0;
    return strata_pb_flush(s, out);
}

static void *pb_alloc(void *ud, size_t size)
{
    return strata_alloc((const strata_allocator *)ud, size);
}

static void pb_free(void *ud, void *p)
{
    strata_dealloc((const strata_allocator *)ud, p);
}

void strata_pb_allocator(ProtobufCAllocator *out,
                         const strata_allocator *alloc)
{
    /* a NULL strata allocator is malloc/free: protobuf-c's own default */
    out->alloc = pb_alloc;
    out->free = pb_free;
    out->allocator_data = (void *)(uintptr_t)alloc;
}

int strata_pb_recv(strata_stream *s, strata_pb_buf *in,
                   const ProtobufCMessageDescriptor *d, ProtobufCMessage **m)
{
    ProtobufCAllocator pa;
    unsigned fl = 0;
    ssize_t n;
    int r;

    if (s == NULL || in == NULL || d == NULL || m == NULL)
        return STRATA_ERR_ARG;
    *m = NULL;
    for (;;) {
        /* the layer below bounds a message (a gRPC call's max_recv) */
        if ((r = reserve(in, in->len + PB_MIN_CAP)) != 0)
            return r;
        n = strata_recv(s, in->data + in->len, in->cap - in->len, &fl);
        if (n < 0)
            return (int)n;
        in->len += (size_t)n;
        if (fl & STRATA_MSG_END)
            break;
    }
    strata_pb_allocator(&pa, in->alloc);
    *m = protobuf_c_message_unpack(d, &pa, in->len, in->data);
    in->len = 0;
    return *m != NULL ? 0 : STRATA_ERR_PROTO;
}

void strata_pb_free(ProtobufCMessage *m, const strata_allocator *alloc)
{
    ProtobufCAllocator pa;

    if (m == NULL)
        return;
    strata_pb_allocator(&pa, alloc);
    protobuf_c_message_free_unpacked(m, &pa);
}

int strata_pb_method_path(const ProtobufCServiceDescriptor *d,
                          const char *method, char *out, size_t cap)
{
    int n;

    if (d == NULL || method == NULL || out == NULL ||
        protobuf_c_service_descriptor_get_method_by_name(d, method) == NULL)
        return STRATA_ERR_ARG;
    n = snprintf(out, cap, "/%s/%s", d->name, method);
    if (n < 0 || (size_t)n >= cap)
        return STRATA_ERR_TOO_BIG;
    return n;
}
