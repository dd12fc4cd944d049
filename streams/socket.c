/* The socket stream: a non-blocking stream socket at the bottom of a stack.
 * Every kernel call is tried at once (optimistic I/O); EAGAIN becomes a
 * NEED code and the caller waits on strata_fd() before retrying. */
#define _GNU_SOURCE /* accept4, POLLRDHUP */
#include "socket.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef IOV_MAX
#define IOV_MAX 16 /* the POSIX minimum (_XOPEN_IOV_MAX) */
#endif
#ifndef POLLRDHUP
#define POLLRDHUP 0
#endif
#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* systems without it have SO_NOSIGPIPE, set below */
#endif

/* Record a transport failure. The stream stays failed (contract rule 6):
 * the kernel reports some errors only once (ECONNRESET is followed by a
 * quiet EOF), so the errno is kept and every later call repeats it. */
static int fail(strata_socket *sk, int err)
{
    sk->err = err != 0 ? err : EIO;
    errno = sk->err;
    return STRATA_ERR_IO;
}

/* The stored failure, re-armed in errno for a caller that reads it. */
static int failed(strata_socket *sk)
{
    if (sk->err == 0)
        return 0;
    errno = sk->err;
    return STRATA_ERR_IO;
}

/* Close fd without letting close() overwrite the errno worth reporting. */
static void close_keep_errno(int fd)
{
    int e = errno;

    close(fd);
    errno = e;
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0)
        return -1;
    if (fl & O_NONBLOCK)
        return 0;
    return fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Options every stream socket gets. Failures are ignored on purpose: a
 * Unix-domain socket has no TCP_NODELAY and needs none. */
static void tune_socket(int fd)
{
    int one = 1;

    /* Layers above send whole records (a frame header and its payload in
     * one sendv, a wbuf's gathered batch) and often wait for the answer;
     * Nagle's algorithm would hold a small record back until the previous
     * one is acknowledged, adding a round trip of latency for nothing. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
#ifdef SO_NOSIGPIPE
    (void)setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
}

/* A new stream socket: non-blocking and close-on-exec from the start. */
static int open_socket(int family, int type, int proto)
{
    int fd;

#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
    fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
#else
    fd = socket(family, type, proto);
    if (fd >= 0 && (set_nonblock(fd) < 0 ||
                    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)) {
        close_keep_errno(fd);
        fd = -1;
    }
#endif
    return fd;
}

/* Has the non-blocking connect finished? 0 when connected (or not
 * connecting at all), NEED_WRITE while it is in progress, ERR_IO with the
 * connect's errno (ECONNREFUSED...) when it failed. */
static int check_connect(strata_socket *sk)
{
    struct pollfd p;
    int err = 0;
    socklen_t len = sizeof err;
    int r;

    if (!sk->connecting)
        return 0;
    p.fd = sk->fd;
    p.events = POLLOUT;
    p.revents = 0;
    do
        r = poll(&p, 1, 0);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return fail(sk, errno);
    if (r == 0)
        return STRATA_NEED_WRITE;
    sk->connecting = 0; /* done, one way or the other */
    if (getsockopt(sk->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return fail(sk, errno);
    return err != 0 ? fail(sk, err) : 0;
}

/* The checks every call starts with: a stored failure, then the connect. */
static int ready(strata_socket *sk)
{
    int r = failed(sk);

    return r != 0 ? r : check_connect(sk);
}

static ssize_t sock_recv(strata_stream *s, void *buf, size_t len,
                         unsigned *flags)
{
    strata_socket *sk = (strata_socket *)s;
    ssize_t r;
    int st = ready(sk);

    (void)flags; /* a byte stream: no boundaries to report */
    if (st != 0)
        return st;
    do
        r = recv(sk->fd, buf, len, 0);
    while (r < 0 && errno == EINTR);
    if (r > 0)
        return r;
    if (r == 0)
        return STRATA_EOF;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return STRATA_NEED_READ;
    return fail(sk, errno);
}

static ssize_t sock_sendv(strata_stream *s, const struct iovec *iov, int n,
                          unsigned flags)
{
    strata_socket *sk = (strata_socket *)s;
    struct msghdr msg;
    ssize_t r;
    int st = failed(sk);

    (void)flags; /* message flags mean nothing to a byte stream */
    if (st != 0)
        return st;
    if (sk->shut_wr)
        return STRATA_ERR_STATE;
    /* Skip empty leading entries so that the IOV_MAX clamp below can never
     * leave a non-empty request with zero bytes to send. */
    while (n > 0 && iov->iov_len == 0) {
        iov++;
        n--;
    }
    if (n == 0)
        return 0;
    st = check_connect(sk);
    if (st != 0)
        return st;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = (struct iovec *)(uintptr_t)iov;
    msg.msg_iovlen = n < IOV_MAX ? n : IOV_MAX; /* a partial send is fine */
    do
        r = sendmsg(sk->fd, &msg, MSG_NOSIGNAL);
    while (r < 0 && errno == EINTR);
    if (r >= 0)
        return r;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return STRATA_NEED_WRITE;
    return fail(sk, errno);
}

/* Nothing is held here, but the connect must finish before "all went out"
 * is true; a flush loop is thus also a way to wait for the connect. */
static int sock_flush(strata_stream *s)
{
    return ready((strata_socket *)s);
}

static int sock_shutdown(strata_stream *s)
{
    strata_socket *sk = (strata_socket *)s;
    int st = ready(sk);

    if (st != 0)
        return st;
    if (sk->shut_wr)
        return 0;
    if (shutdown(sk->fd, SHUT_WR) < 0)
        return fail(sk, errno);
    sk->shut_wr = 1;
    return 0;
}

static unsigned sock_poll(strata_stream *s, unsigned events)
{
    strata_socket *sk = (strata_socket *)s;
    struct pollfd p;
    unsigned out = 0;
    int r;

    if (sk->err != 0)
        return STRATA_POLL_ERR;
    p.fd = sk->fd;
    p.events = POLLRDHUP;
    if (events & STRATA_POLL_IN)
        p.events |= POLLIN;
    if (events & STRATA_POLL_OUT)
        p.events |= POLLOUT;
    p.revents = 0;
    do
        r = poll(&p, 1, 0);
    while (r < 0 && errno == EINTR);
    if (r < 0 || (p.revents & POLLNVAL))
        return STRATA_POLL_ERR;
    if (p.revents & POLLIN)
        out |= STRATA_POLL_IN;
    if (p.revents & POLLOUT)
        out |= STRATA_POLL_OUT;
    if (p.revents & (POLLHUP | POLLRDHUP))
        out |= STRATA_POLL_HUP;
    if (p.revents & POLLERR)
        out |= STRATA_POLL_ERR;
    /* HUP and ERR are reported whether asked for or not, as poll(2) does. */
    return out & (events | STRATA_POLL_HUP | STRATA_POLL_ERR);
}

/* A connect in progress waits for writability before anything else. */
static unsigned sock_wants(strata_stream *s)
{
    return ((strata_socket *)s)->connecting ? STRATA_WANT_WRITE : 0;
}

static int sock_fd(strata_stream *s)
{
    return ((strata_socket *)s)->fd;
}

static void sock_close(strata_stream *s)
{
    strata_socket *sk = (strata_socket *)s;

    if (sk->own_fd && sk->fd >= 0)
        close(sk->fd);
    sk->fd = -1;
}

static const strata_stream_ops socket_ops = {
    "socket", sock_recv, sock_sendv, sock_flush, sock_shutdown,
    sock_poll, sock_wants, sock_fd, sock_close
};

void strata_socket_init(strata_socket *s, int fd, int own_fd)
{
    if (s == NULL)
        return;
    strata_stream_init(&s->base, &socket_ops, NULL, NULL);
    s->fd = fd;
    s->connecting = 0;
    s->shut_wr = 0;
    s->err = 0;
    s->own_fd = own_fd;
    /* A descriptor that cannot be made non-blocking (not open, say) gives
     * a stream that fails every call with that errno: init cannot report. */
    if (set_nonblock(fd) < 0)
        s->err = errno != 0 ? errno : EBADF;
    else
        tune_socket(fd);
}

strata_stream *strata_socket_new(int fd, const strata_allocator *alloc)
{
    strata_socket *s = strata_alloc(alloc, sizeof *s);

    if (s == NULL)
        return NULL;
    strata_socket_init(s, fd, 1);
    s->base.alloc = alloc;
    s->base.heap = 1;
    return &s->base;
}

/* Wrap a fresh descriptor we created (init tunes it); on allocation
 * failure it is closed. */
static int wrap(int fd, int connecting, const strata_allocator *alloc,
                strata_stream **out)
{
    strata_stream *s = strata_socket_new(fd, alloc);

    if (s == NULL) {
        close(fd);
        return STRATA_ERR_NOMEM;
    }
    ((strata_socket *)s)->connecting = connecting;
    *out = s;
    return 0;
}

/* getaddrinfo's own codes are not errno values; give the caller a
 * plausible errno with STRATA_ERR_IO rather than a stale one. */
static int resolve(const char *host, const char *port, int passive,
                   struct addrinfo **res)
{
    struct addrinfo hints;
    int r;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = passive ? AI_PASSIVE : 0;
    r = getaddrinfo(host, port, &hints, res);
    if (r == 0)
        return 0;
    if (r == EAI_MEMORY)
        return STRATA_ERR_NOMEM;
    if (r != EAI_SYSTEM)
        errno = r == EAI_AGAIN ? EAGAIN : ENOENT;
    return STRATA_ERR_IO;
}

/* Start a connect to one address: the descriptor, with *connecting set
 * when the kernel is still at it, or -1 with errno. */
static int connect_one(const struct addrinfo *ai, int *connecting)
{
    int fd = open_socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);

    if (fd < 0)
        return -1;
    *connecting = 0;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
        return fd;
    /* EINTR on a non-blocking connect: it goes on in the background. */
    if (errno == EINPROGRESS || errno == EINTR) {
        *connecting = 1;
        return fd;
    }
    close_keep_errno(fd);
    return -1;
}

int strata_tcp_connect(const char *host, const char *port,
                       const strata_allocator *alloc, strata_stream **out)
{
    struct addrinfo *res, *ai;
    int fd = -1, connecting = 0, r;

    if (out == NULL || host == NULL || port == NULL)
        return STRATA_ERR_ARG;
    *out = NULL;
    r = resolve(host, port, 0, &res);
    if (r != 0)
        return r;
    /* Addresses that fail at once are skipped; one whose connect is in
     * progress is taken, and a later failure of it is final. */
    for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next)
        fd = connect_one(ai, &connecting);
    freeaddrinfo(res);
    if (fd < 0)
        return STRATA_ERR_IO;
    return wrap(fd, connecting, alloc, out);
}

/* Fill a Unix-domain address; paths that do not fit are an argument
 * error rather than a silently truncated name. */
static int unix_addr(const char *path, struct sockaddr_un *a)
{
    size_t n;

    if (path == NULL)
        return STRATA_ERR_ARG;
    n = strlen(path);
    if (n == 0 || n >= sizeof a->sun_path)
        return STRATA_ERR_ARG;
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    memcpy(a->sun_path, path, n + 1);
    return 0;
}

int strata_unix_connect(const char *path, const strata_allocator *alloc,
                        strata_stream **out)
{
    struct sockaddr_un a;
    int fd, r, connecting = 0;

    if (out == NULL)
        return STRATA_ERR_ARG;
    *out = NULL;
    r = unix_addr(path, &a);
    if (r != 0)
        return r;
    fd = open_socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        return STRATA_ERR_IO;
    /* A Unix connect completes or fails at once; EAGAIN means the
     * listener's backlog is full and nothing was started, so it is
     * reported (STRATA_ERR_IO, errno EAGAIN) for the caller to retry. */
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        if (errno != EINPROGRESS && errno != EINTR) {
            close_keep_errno(fd);
            return STRATA_ERR_IO;
        }
        connecting = 1;
    }
    return wrap(fd, connecting, alloc, out);
}

/* socket, SO_REUSEADDR, bind, listen: the descriptor or -1 with errno. */
static int listen_on(int family, int type, int proto,
                     const struct sockaddr *addr, socklen_t len, int backlog)
{
    int one = 1, zero = 0;
    int fd = open_socket(family, type, proto);

    if (fd < 0)
        return -1;
    /* An IPv6 wildcard serves IPv4 too (the default is a sysctl). */
    if (family == AF_INET6)
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    /* Restarting a server must not wait out TIME_WAIT on its port. */
    if ((family != AF_UNIX &&
         setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) ||
        bind(fd, addr, len) < 0 ||
        listen(fd, backlog > 0 ? backlog : SOMAXCONN) < 0) {
        close_keep_errno(fd);
        return -1;
    }
    return fd;
}

int strata_tcp_listen(const char *host, const char *port, int backlog)
{
    struct addrinfo *res, *ai;
    int fd = -1, r, pass;

    if (port == NULL)
        return STRATA_ERR_ARG;
    if (host != NULL && host[0] == '\0')
        host = NULL;
    r = resolve(host, port, 1, &res);
    if (r != 0)
        return r;
    /* All addresses: getaddrinfo lists 0.0.0.0 first, which would leave
     * IPv6 out; the dual-stack IPv6 wildcard is tried first instead. */
    for (pass = host == NULL ? 0 : 1; pass < 2 && fd < 0; pass++)
        for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next)
            if (pass == 1 || ai->ai_family == AF_INET6)
                fd = listen_on(ai->ai_family, ai->ai_socktype,
                               ai->ai_protocol, ai->ai_addr, ai->ai_addrlen,
                               backlog);
    freeaddrinfo(res);
    return fd >= 0 ? fd : STRATA_ERR_IO;
}

int strata_unix_listen(const char *path, int backlog)
{
    struct sockaddr_un a;
    struct stat st;
    int fd, r = unix_addr(path, &a);

    if (r != 0)
        return r;
    /* A socket file left by an earlier run would make bind fail; anything
     * else at the path is not ours to remove (bind then reports it). */
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        (void)unlink(path);
    fd = listen_on(AF_UNIX, SOCK_STREAM, 0, (struct sockaddr *)&a,
                   sizeof a, backlog);
    return fd >= 0 ? fd : STRATA_ERR_IO;
}

/* accept one descriptor, non-blocking and close-on-exec, or -1. */
static int accept_fd(int listen_fd)
{
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
    return accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
    int fd = accept(listen_fd, NULL, NULL);

    if (fd >= 0 && (set_nonblock(fd) < 0 ||
                    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)) {
        close_keep_errno(fd);
        fd = -1;
    }
    return fd;
#endif
}

int strata_accept(int listen_fd, const strata_allocator *alloc,
                  strata_stream **out)
{
    int fd;

    if (out == NULL || listen_fd < 0)
        return STRATA_ERR_ARG;
    *out = NULL;
    /* ECONNABORTED: a client gave up while queued; try the next one. */
    do
        fd = accept_fd(listen_fd);
    while (fd < 0 && (errno == EINTR || errno == ECONNABORTED));
    if (fd < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? STRATA_NEED_READ
                                                       : STRATA_ERR_IO;
    return wrap(fd, 0, alloc, out);
}

int strata_local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;

    if (fd < 0)
        return STRATA_ERR_ARG;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return STRATA_ERR_IO;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return STRATA_ERR_ARG; /* not an IP socket: it has no port */
}

int strata_socket_errno(strata_stream *s)
{
    /* Look down the stack, so a caller can ask its top stream. */
    while (s != NULL && s->ops != &socket_ops)
        s = s->lower;
    return s != NULL ? ((strata_socket *)s)->err : 0;
}
