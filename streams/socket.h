/* strata socket stream: a non-blocking TCP (IPv4/IPv6) or Unix-domain
 * stream socket at the bottom of a stack.
 *
 * Contract:
 *  - The descriptor is non-blocking; EINTR is retried inside, EAGAIN becomes
 *    STRATA_NEED_READ (recv) or STRATA_NEED_WRITE (send). Any other failure
 *    is STRATA_ERR_IO with errno kept in strata_socket_errno().
 *  - A connect in progress makes every call return STRATA_NEED_WRITE until
 *    the socket is writable and the connect has completed (a refused connect
 *    is then STRATA_ERR_IO, errno ECONNREFUSED).
 *  - sendv is one writev-like sendmsg with MSG_NOSIGNAL: no SIGPIPE, ever;
 *    a peer that is gone gives STRATA_ERR_IO (EPIPE / ECONNRESET).
 *  - recv of 0 bytes from the kernel is STRATA_EOF. strata_shutdown is a
 *    half-close (shutdown(SHUT_WR)): the peer sees EOF, we can still read;
 *    a send after it is STRATA_ERR_STATE.
 *  - strata_poll asks the kernel (poll with a zero timeout): no data moves.
 *  - Name resolution uses getaddrinfo and may block on DNS; pass numeric
 *    addresses (or "localhost") where that matters.
 */
#ifndef STRATA_SOCKET_H
#define STRATA_SOCKET_H

#include "stream.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct strata_socket {
    strata_stream base;
    int fd;
    int connecting;   /* non-blocking connect not yet confirmed */
    int shut_wr;      /* our direction ended */
    int err;          /* errno of the last STRATA_ERR_IO */
    int own_fd;       /* close(fd) on free */
} strata_socket;

/* Wrap a connected descriptor (made non-blocking here); the stream closes
 * it on free. Returns NULL on allocation failure. */
strata_stream *strata_socket_new(int fd, const strata_allocator *alloc);
/* The same in caller-provided storage. own_fd: close fd on strata_free. */
void strata_socket_init(strata_socket *s, int fd, int own_fd);

/* Start a non-blocking TCP connect to host:port (IPv4 or IPv6). On success
 * *out is a stream whose first calls may return NEED_WRITE until connected.
 * Returns 0 or a status (STRATA_ERR_IO: resolution or socket failure). */
int strata_tcp_connect(const char *host, const char *port,
                       const strata_allocator *alloc, strata_stream **out);
/* Unix-domain connect to a path. */
int strata_unix_connect(const char *path, const strata_allocator *alloc,
                        strata_stream **out);

/* A non-blocking listening descriptor (SO_REUSEADDR) on host:port; host
 * NULL or "" means all addresses; port "0" picks a free one (see
 * strata_local_port). Returns the descriptor or a negative status. */
int strata_tcp_listen(const char *host, const char *port, int backlog);
/* A listening Unix-domain socket at path (an existing socket file there is
 * replaced). Returns the descriptor or a negative status. */
int strata_unix_listen(const char *path, int backlog);
/* Accept one connection: 0 and *out, or STRATA_NEED_READ when none waits,
 * or STRATA_ERR_IO. */
int strata_accept(int listen_fd, const strata_allocator *alloc,
                  strata_stream **out);
/* The local port a TCP descriptor is bound to, or a negative status. */
int strata_local_port(int fd);

/* errno of the last STRATA_ERR_IO on this socket stream (0 if none). */
int strata_socket_errno(strata_stream *s);

#ifdef __cplusplus
}
#endif
#endif
