/* strata protobuf: protobuf-c messages on gRPC calls (or any message
 * stream), with the stack's allocator.
 *
 * Sending packs a message once into a reusable buffer and hands it to the
 * call as one message; the call and the HTTP/2 layer below send it without
 * a further copy. A call that takes only part of it (NEED_*) leaves the
 * rest in the buffer: strata_pb_flush continues, and strata_pb_send refuses
 * a new message (STRATA_ERR_STATE) until the last one went.
 * Receiving gathers one message's pieces in a reusable buffer (bounded by
 * the layer below: a gRPC call's max_recv) and unpacks it with
 * protobuf-c when STRATA_MSG_END came; a message that does not unpack is
 * STRATA_ERR_PROTO.
 */
#ifndef STRATA_PROTOBUF_H
#define STRATA_PROTOBUF_H

#include <protobuf-c/protobuf-c.h>
#include <strata/stream.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct strata_pb_buf {
    uint8_t *data;
    size_t len;       /* bytes held */
    size_t off;       /* send side: bytes already sent */
    size_t cap;
    const strata_allocator *alloc;
} strata_pb_buf;

/* An empty buffer using alloc (NULL: malloc). */
void strata_pb_buf_init(strata_pb_buf *b, const strata_allocator *alloc);
void strata_pb_buf_free(strata_pb_buf *b);

/* Pack m and send it as one message (flags: more message flags, e.g.
 * none). 0 when it all went, NEED_* when the rest waits in out
 * (strata_pb_flush), or a status. */
int strata_pb_send(strata_stream *s, strata_pb_buf *out,
                   const ProtobufCMessage *m);
/* Continue a message strata_pb_send left: 0, NEED_*, or a status. */
int strata_pb_flush(strata_stream *s, strata_pb_buf *out);

/* Receive one whole message of type d: 0 and *m (free it with
 * strata_pb_free), NEED_* (call again: the pieces so far stay in in),
 * STRATA_EOF at the end of the messages, or a status. */
int strata_pb_recv(strata_stream *s, strata_pb_buf *in,
                   const ProtobufCMessageDescriptor *d, ProtobufCMessage **m);
/* Free a message strata_pb_recv made with the same allocator. */
void strata_pb_free(ProtobufCMessage *m, const strata_allocator *alloc);

/* The gRPC path "/package.Service/Method" of a method of a protoc-c
 * generated service descriptor, for a server's route table built from
 * the .proto (a method renamed there fails at start-up, not in clients as
 * UNIMPLEMENTED): its length, STRATA_ERR_ARG when the service has no such
 * method, STRATA_ERR_TOO_BIG when it does not fit cap bytes with its NUL. */
int strata_pb_method_path(const ProtobufCServiceDescriptor *d,
                          const char *method, char *out, size_t cap);

/* protobuf-c's allocator backed by a strata allocator (NULL: protobuf-c's
 * default), for protobuf_c_message_unpack in callers' own code. */
void strata_pb_allocator(ProtobufCAllocator *out,
                         const strata_allocator *alloc);

#ifdef __cplusplus
}
#endif
#endif
