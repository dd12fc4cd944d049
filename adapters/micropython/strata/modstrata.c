/* strata for MicroPython: a stack of strata layers over a socket, as a
 * MicroPython stream object (py/stream.h's mp_stream_p_t), so code and
 * asyncio use it as they use a socket.
 *
 * Contract:
 *  - strata.wrap(sock, kind, ...) builds the stack over sock's descriptor
 *    (its MP_STREAM_GET_FILENO). kind names the layers as the strata tool's
 *    URIs do, top first: "lines", "len", "ws", "tls", and "lines+tls",
 *    "len+tls", "ws+tls" (also "wss"). The object keeps sock alive; close()
 *    frees the stack and closes sock, once. The descriptor is made
 *    non-blocking; if sock was blocking, calls wait on it themselves.
 *  - read(n) / readinto(b) make ONE strata_recv: a piece of a message (or
 *    bytes of a byte stream); flags() says whether it ended a message and
 *    whether that is text. End of stream is b"" with no MSG_END; b"" with
 *    MSG_END is an empty message. write(b) sends b as one message (one
 *    record, one frame), text or binary after settext(); a write that took
 *    part of b is continued by writing the rest first (asyncio's drain
 *    does), and more bytes than the rest begin the next message.
 *  - A NEED code is None from read/readinto/write and MP_EAGAIN through
 *    the stream protocol; a failure raises OSError(errno, text) whose text
 *    is strata_strerror's, with TLS's reason or the WebSocket code sent.
 *  - Readiness for select.poll and asyncio. A poller asks
 *    MP_STREAM_GET_FILENO once when a task starts to wait and then waits
 *    on that descriptor alone; without one it asks MP_STREAM_POLL about
 *    every millisecond. asyncio's reader waits BEFORE it reads, so bytes
 *    already inside a layer (TLS plaintext, a whole WebSocket frame) must
 *    make the object ready at once, and a read that needs the descriptor
 *    writable (a handshake to send, a pong) must not wait for readable.
 *    So the descriptor is handed out only when nothing is buffered and
 *    what the stack waits for is exactly the direction of the waiting call
 *    (the call that returned the last NEED code, else a read); otherwise
 *    MP_STREAM_POLL answers from strata_poll and the NEED code each
 *    direction last returned (none yet: ready, so the call is tried).
 *  - Memory: the layers come from the C heap (malloc), not MicroPython's;
 *    a finaliser frees them when the object is collected unclosed.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "py/runtime.h"
#include "py/stream.h"
#include "py/mperrno.h"

#include <strata/stream.h>
#include <strata/socket.h>
#include <strata/line.h>
#include <strata/lenprefix.h>
#ifdef STRATA_WITH_WS
#include <strata/ws.h>
#endif
#ifdef STRATA_WITH_TLS
#include <strata/tls.h>
#endif

/* read() without a size, or with a negative one, takes at most this. */
#define READ_CHUNK 4096

enum { TOP_BYTES, TOP_LINES, TOP_LEN, TOP_WS };
enum { DIR_NONE, DIR_READ, DIR_WRITE };

typedef struct strata_mp_obj {
    mp_obj_base_t base;
    mp_obj_t sock;           /* kept alive; closed by close() */
    strata_stream *top;      /* NULL once closed */
    strata_stream *ws;       /* the ws layer, or NULL */
    strata_stream *tls;      /* the tls layer, or NULL */
    strata_socket bottom;    /* lives here; does not own the descriptor */
    int fd;
    int failed;              /* the error status a call returned, or 0 */
    unsigned rx_flags;       /* flags of the last read */
    unsigned tx_flags;       /* flags of the message being sent */
    size_t tx_owed;          /* bytes of that message not yet taken */
    unsigned close_code;     /* the peer's WebSocket close code, kept */
    uint8_t blocking;        /* sock was blocking: calls wait themselves */
    uint8_t text;            /* writes send text messages */
    uint8_t started;         /* a read or write made progress */
    uint8_t last_dir;        /* the call whose NEED code is the latest */
    uint8_t rd_need;         /* WANT bits of the last read's NEED, or 0 */
    uint8_t wr_need;         /* WANT bits of the last write's NEED, or 0 */
    uint8_t shut;            /* our direction was ended */
} strata_mp_obj;

static const mp_obj_type_t strata_mp_type;

static unsigned want_of(int status)
{
    if (status == STRATA_NEED_READ)
        return STRATA_WANT_READ;
    if (status == STRATA_NEED_WRITE)
        return STRATA_WANT_WRITE;
    return 0;
}

/* ---- errors ----------------------------------------------------------- */

static int errno_of(strata_mp_obj *o, int status)
{
    int e;

    switch (status) {
    case STRATA_ERR_IO:
        e = strata_socket_errno(&o->bottom.base);
        return e != 0 ? e : MP_EIO;
    case STRATA_ERR_TOO_BIG:
        return MP_ENOBUFS; /* as MicroPython's websocket module says it */
    case STRATA_ERR_NOMEM:
        return MP_ENOMEM;
    case STRATA_ERR_CLOSED:
        return MP_ECONNRESET;
    case STRATA_ERR_TRUNCATED:
        return MP_ECONNABORTED;
    case STRATA_ERR_TIMEOUT:
        return MP_ETIMEDOUT;
    case STRATA_ERR_UNSUPPORTED:
        return MP_EOPNOTSUPP;
    case STRATA_ERR_STATE:
    case STRATA_ERR_ARG:
        return MP_EINVAL;
    default:
        return MP_EIO;
    }
}

MP_NORETURN static void raise_status(strata_mp_obj *o, int status)
{
    char text[160];
    mp_obj_t args[2];

    snprintf(text, sizeof text, "%s", strata_strerror(status));
#ifdef STRATA_WITH_TLS
    if (status == STRATA_ERR_TLS && o->tls != NULL)
        snprintf(text, sizeof text, "%s: %s", strata_strerror(status),
                 strata_tls_reason(o->tls));
#endif
#ifdef STRATA_WITH_WS
    if (o->ws != NULL && strata_ws_error_code(o->ws) != 0)
        snprintf(text, sizeof text, "%s (WebSocket close %u sent)",
                 strata_strerror(status), strata_ws_error_code(o->ws));
#endif
    args[0] = MP_OBJ_NEW_SMALL_INT(errno_of(o, status));
    args[1] = mp_obj_new_str(text, strlen(text));
    nlr_raise(mp_obj_new_exception_args(&mp_type_OSError, 2, args));
}

/* ---- waiting (blocking sockets only) ---------------------------------- */

/* Wait until the descriptor is ready for what the stack wants. */
static int wait_fd(strata_mp_obj *o, int status)
{
    unsigned w = strata_wants(o->top) | want_of(status);
    struct pollfd p;
    int r;
    int e;

    p.fd = o->fd;
    p.events = (short)(((w & STRATA_WANT_READ) ? POLLIN : 0) |
                       ((w & STRATA_WANT_WRITE) ? POLLOUT : 0));
    p.revents = 0;
    for (;;) {
        MP_THREAD_GIL_EXIT();
        r = poll(&p, 1, -1);
        e = errno;
        MP_THREAD_GIL_ENTER();
        if (r >= 0)
            return 0;
        if (e != EINTR)
            return e;
        mp_handle_pending(MP_HANDLE_PENDING_CALLBACKS_AND_EXCEPTIONS);
    }
}

/* A NEED code: remember it; 1 when the caller should retry (blocking
 * mode, descriptor now ready), 0 when it should report MP_EAGAIN. */
static int on_need(strata_mp_obj *o, int dir, int status, int *errcode)
{
    int e;

    if (dir == DIR_READ)
        o->rd_need = (uint8_t)want_of(status);
    else
        o->wr_need = (uint8_t)want_of(status);
    o->last_dir = (uint8_t)dir;
    if (!o->blocking) {
        *errcode = MP_EAGAIN;
        return 0;
    }
    e = wait_fd(o, status);
    if (e != 0) {
        *errcode = e;
        return 0;
    }
    return 1;
}

static void on_progress(strata_mp_obj *o, int dir)
{
    if (dir == DIR_READ)
        o->rd_need = 0;
    else
        o->wr_need = 0;
    if (o->last_dir == dir)
        o->last_dir = DIR_NONE;
    o->started = 1;
}

static mp_uint_t on_error(strata_mp_obj *o, int status, int *errcode)
{
    o->failed = status;
    *errcode = errno_of(o, status);
    return MP_STREAM_ERROR;
}

/* ---- the stream protocol ---------------------------------------------- */

static mp_uint_t strata_mp_read(mp_obj_t self, void *buf, mp_uint_t size,
                                int *errcode)
{
    strata_mp_obj *o = MP_OBJ_TO_PTR(self);

    if (o->top == NULL) {
        *errcode = MP_EBADF;
        return MP_STREAM_ERROR;
    }
    for (;;) {
        unsigned flags = 0;
        ssize_t r = strata_recv(o->top, buf, size, &flags);

        if (r >= 0) {
            on_progress(o, DIR_READ);
            o->rx_flags = flags;
            return (mp_uint_t)r;
        }
        if (r == STRATA_EOF) {
            on_progress(o, DIR_READ);
            o->rx_flags = 0;
            return 0;
        }
        if (want_of((int)r) == 0)
            return on_error(o, (int)r, errcode);
        if (!on_need(o, DIR_READ, (int)r, errcode))
            return MP_STREAM_ERROR;
    }
}

/* One send of a message (or of the rest of one that a send took in
 * part). Bytes past that rest are left for the next call. */
static ssize_t send_once(strata_mp_obj *o, const uint8_t *buf, size_t size)
{
    unsigned flags;
    size_t n = size;
    ssize_t r;

    if (o->tx_owed > 0) {
        if (size < o->tx_owed)
            return STRATA_ERR_ARG; /* the rest must come whole */
        n = o->tx_owed;
        flags = o->tx_flags;
    } else {
        flags = STRATA_MSG_END | (o->text ? STRATA_MSG_TEXT : 0u);
        o->tx_flags = flags;
    }
    r = strata_send(o->top, buf, n, flags);
    if (r >= 0)
        o->tx_owed = (o->tx_owed > 0 ? o->tx_owed : n) - (size_t)r;
    return r;
}

static mp_uint_t strata_mp_write(mp_obj_t self, const void *buf,
                                 mp_uint_t size, int *errcode)
{
    strata_mp_obj *o = MP_OBJ_TO_PTR(self);

    if (o->top == NULL) {
        *errcode = MP_EBADF;
        return MP_STREAM_ERROR;
    }
    for (;;) {
        ssize_t r = send_once(o, buf, size);

        if (r >= 0) {
            on_progress(o, DIR_WRITE);
            return (mp_uint_t)r;
        }
        if (r == STRATA_ERR_ARG || r == STRATA_ERR_STATE) {
            *errcode = MP_EINVAL; /* the caller's mistake: stream usable */
            return MP_STREAM_ERROR;
        }
        if (want_of((int)r) == 0)
            return on_error(o, (int)r, errcode);
        if (!on_need(o, DIR_WRITE, (int)r, errcode))
            return MP_STREAM_ERROR;
    }
}

/* Is the descriptor ready for any of the WANT bits? */
static int fd_ready(strata_mp_obj *o, unsigned want)
{
    unsigned ev = ((want & STRATA_WANT_READ) ? STRATA_POLL_IN : 0u) |
                  ((want & STRATA_WANT_WRITE) ? STRATA_POLL_OUT : 0u);

    return strata_poll(&o->bottom.base, ev) != 0;
}

static mp_uint_t poll_ready(strata_mp_obj *o, uintptr_t events)
{
    mp_uint_t ret = 0;
    unsigned p;

    if (o->top == NULL)
        return MP_STREAM_POLL_NVAL;
    if (o->failed != 0)
        return MP_STREAM_POLL_ERR |
               (events & (MP_STREAM_POLL_RD | MP_STREAM_POLL_WR));
    p = strata_poll(o->top, STRATA_POLL_IN | STRATA_POLL_OUT);
    if (p & STRATA_POLL_ERR)
        ret |= MP_STREAM_POLL_ERR;
    if (events & MP_STREAM_POLL_RD) {
        /* The peer's end wakes a reader, not a writer. */
        if (p & STRATA_POLL_HUP)
            ret |= MP_STREAM_POLL_HUP;
        if (o->rd_need == 0 || (p & STRATA_POLL_IN) ||
            fd_ready(o, o->rd_need))
            ret |= MP_STREAM_POLL_RD;
    }
    if ((events & MP_STREAM_POLL_WR) &&
        (o->wr_need == 0 || fd_ready(o, o->wr_need)))
        ret |= MP_STREAM_POLL_WR;
    return ret;
}

/* The descriptor for a poller, or -1 when it must ask MP_STREAM_POLL. */
static int poller_fd(strata_mp_obj *o)
{
    unsigned dir_bit;
    unsigned need;

    if (o->top == NULL || o->failed != 0)
        return -1;
    if (strata_poll(o->top, STRATA_POLL_IN) != 0)
        return -1; /* buffered, ended or failed: ready at once */
    if (o->last_dir == DIR_WRITE) {
        dir_bit = STRATA_WANT_WRITE;
        need = o->wr_need;
    } else if (o->last_dir == DIR_READ) {
        dir_bit = STRATA_WANT_READ;
        need = o->rd_need;
    } else if (o->started) {
        dir_bit = STRATA_WANT_READ; /* asyncio's reader waits first */
        need = STRATA_WANT_READ;
    } else {
        return -1; /* nothing tried yet: the first call must be tried */
    }
    if ((strata_wants(o->top) | need) != dir_bit)
        return -1;
    return o->fd;
}

static void stack_free(strata_mp_obj *o)
{
    if (o->top == NULL)
        return;
#ifdef STRATA_WITH_WS
    if (o->ws != NULL)
        o->close_code = strata_ws_close_code(o->ws);
#endif
    strata_free(o->top);
    o->top = NULL;
    o->ws = NULL;
    o->tls = NULL;
}

/* Free the stack and close the socket. What a graceful end sends (ws
 * close frame, TLS close_notify) goes if it can go at once. */
static void do_close(strata_mp_obj *o)
{
    if (o->top == NULL)
        return;
    if (!o->shut && o->failed == 0)
        (void)strata_shutdown(o->top);
    stack_free(o);
    mp_stream_close(o->sock);
}

static mp_uint_t strata_mp_ioctl(mp_obj_t self, mp_uint_t request,
                                 uintptr_t arg, int *errcode)
{
    strata_mp_obj *o = MP_OBJ_TO_PTR(self);
    int r;

    switch (request) {
    case MP_STREAM_POLL:
        return poll_ready(o, arg);
    case MP_STREAM_GET_FILENO:
        r = poller_fd(o);
        if (r >= 0)
            return (mp_uint_t)r;
        *errcode = MP_EINVAL;
        return MP_STREAM_ERROR;
    case MP_STREAM_FLUSH:
        if (o->top == NULL)
            return 0;
        r = strata_flush(o->top);
        if (r == 0)
            return 0;
        if (want_of(r) != 0) {
            *errcode = MP_EAGAIN;
            return MP_STREAM_ERROR;
        }
        return on_error(o, r, errcode);
    case MP_STREAM_CLOSE:
        do_close(o);
        return 0;
#if MICROPY_STREAMS_DELEGATE_ERROR
    case MP_STREAM_RAISE_ERROR:
        if (o->failed != 0 && (int)arg == errno_of(o, o->failed))
            raise_status(o, o->failed);
        return 0;
#endif
    default:
        /* 0 here would make a poller watch descriptor 0 */
        *errcode = MP_EINVAL;
        return MP_STREAM_ERROR;
    }
}

/* ---- methods ---------------------------------------------------------- */

/* A stream-protocol result as Python sees it: None for MP_EAGAIN. */
static mp_obj_t result_or_raise(strata_mp_obj *o, mp_uint_t r, int err,
                                mp_obj_t value)
{
    if (r != MP_STREAM_ERROR)
        return value;
    if (err == MP_EAGAIN)
        return mp_const_none;
    if (o->failed != 0 && err == errno_of(o, o->failed))
        raise_status(o, o->failed);
    mp_raise_OSError(err);
}

static mp_obj_t strata_mp_read_meth(size_t n_args, const mp_obj_t *args)
{
    strata_mp_obj *o = MP_OBJ_TO_PTR(args[0]);
    mp_int_t n = n_args > 1 ? mp_obj_get_int(args[1]) : -1;
    vstr_t v;
    int err = 0;
    mp_uint_t r;

    if (n < 0)
        n = READ_CHUNK;
    vstr_init_len(&v, (size_t)n);
    r = strata_mp_read(args[0], v.buf, (mp_uint_t)n, &err);
    if (r == MP_STREAM_ERROR) {
        vstr_clear(&v);
        return result_or_raise(o, r, err, mp_const_none);
    }
    v.len = r;
    return mp_obj_new_bytes_from_vstr(&v);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(strata_mp_read_obj, 1, 2,
                                           strata_mp_read_meth);

static mp_obj_t strata_mp_readinto(size_t n_args, const mp_obj_t *args)
{
    strata_mp_obj *o = MP_OBJ_TO_PTR(args[0]);
    mp_buffer_info_t b;
    mp_uint_t len;
    mp_uint_t r;
    int err = 0;

    mp_get_buffer_raise(args[1], &b, MP_BUFFER_WRITE);
    len = b.len;
    if (n_args > 2 && (mp_uint_t)mp_obj_get_int(args[2]) < len)
        len = (mp_uint_t)mp_obj_get_int(args[2]);
    r = strata_mp_read(args[0], b.buf, len, &err);
    return result_or_raise(o, r, err, mp_obj_new_int_from_uint(r));
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(strata_mp_readinto_obj, 2, 3,
                                           strata_mp_readinto);

/* A blocking object sends all of b; a non-blocking one what went. */
static mp_obj_t strata_mp_write_meth(mp_obj_t self, mp_obj_t data)
{
    strata_mp_obj *o = MP_OBJ_TO_PTR(self);
    mp_buffer_info_t b;
    mp_uint_t done = 0;
    mp_uint_t r;
    int err = 0;

    mp_get_buffer_raise(data, &b, MP_BUFFER_READ);
    do {
        r = strata_mp_write(self, (const uint8_t *)b.buf + done,
                            b.len - done, &err);
        if (r == MP_STREAM_ERROR)
            return result_or_raise(o, r, err, mp_const_none);
        done += r;
    } while (o->blocking && done < b.len);
    return mp_obj_new_int_from_uint(done);
}
static MP_DEFINE_CONST_FUN_OBJ_2(strata_mp_write_obj, strata_mp_write_meth);

static mp_obj_t strata_mp_settext(mp_obj_t self, mp_obj_t on)
{
    strata_mp_obj *o = MP_OBJ_TO_PTR(self);

    o->text = mp_obj_is_true(on);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(strata_mp_settext_obj, strata_mp_settext);

static mp_obj_t strata_mp_flags(mp_obj_t self)
{
    strata_mp_obj *o = MP_OBJ_TO_PTR(self);

    return MP_OBJ_NEW_SMALL_INT(o->rx_flags);
}
static MP_DEFINE_CONST_FUN_OBJ_1(strata_mp_flags_obj, strata_mp_flags);

/* shutdown([code[, reason]]): end our direction (ws: close frame with
 * code, default 1000 or the peer's; tls: close_notify; bytes: FIN).
 * True when done; None when it must be called again once ready. */
static mp_obj_t strata_mp_shutdown(size_t n_args, const mp_obj_t *args)
{
    strata_mp_obj *o = MP_OBJ_TO_PTR(args[0]);
    int err = 0;
    int r;

    if (o->top == NULL)
        mp_raise_OSError(MP_EBADF);
    for (;;) {
#ifdef STRATA_WITH_WS
        if (n_args > 1 && o->ws != NULL)
            r = strata_ws_close(o->ws, (unsigned)mp_obj_get_int(args[1]),
                                n_args > 2 ? mp_obj_str_get_str(args[2])
                                           : NULL);
        else
            r = strata_shutdown(o->top);
#else
        (void)n_args;
        r = strata_shutdown(o->top);
#endif
        if (r == 0) {
            o->shut = 1;
            o->wr_need = 0;
            return mp_const_true;
        }
        if (r == STRATA_ERR_ARG || r == STRATA_ERR_STATE)
            mp_raise_OSError(MP_EINVAL);
        if (want_of(r) == 0) {
            o->failed = r;
            raise_status(o, r);
        }
        if (!on_need(o, DIR_WRITE, r, &err))
            return result_or_raise(o, MP_STREAM_ERROR, err, mp_const_none);
    }
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(strata_mp_shutdown_obj, 1, 3,
                                           strata_mp_shutdown);

/* The peer's WebSocket close code: 0 while open (and for other kinds),
 * 1005 when its close had none, 1006 when the stream ended without. */
static mp_obj_t strata_mp_close_code(mp_obj_t self)
{
    strata_mp_obj *o = MP_OBJ_TO_PTR(self);

#ifdef STRATA_WITH_WS
    if (o->ws != NULL)
        return MP_OBJ_NEW_SMALL_INT(strata_ws_close_code(o->ws));
#endif
    return MP_OBJ_NEW_SMALL_INT(o->close_code);
}
static MP_DEFINE_CONST_FUN_OBJ_1(strata_mp_close_code_obj,
                                 strata_mp_close_code);

static mp_obj_t strata_mp_del(mp_obj_t self)
{
    /* sock may be finalised in the same collection: leave it alone */
    stack_free(MP_OBJ_TO_PTR(self));
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(strata_mp_del_obj, strata_mp_del);

static const mp_rom_map_elem_t strata_mp_locals_table[] = {
    { MP_ROM_QSTR(MP_QSTR_read), MP_ROM_PTR(&strata_mp_read_obj) },
    { MP_ROM_QSTR(MP_QSTR_readinto), MP_ROM_PTR(&strata_mp_readinto_obj) },
    { MP_ROM_QSTR(MP_QSTR_write), MP_ROM_PTR(&strata_mp_write_obj) },
    { MP_ROM_QSTR(MP_QSTR_settext), MP_ROM_PTR(&strata_mp_settext_obj) },
    { MP_ROM_QSTR(MP_QSTR_flags), MP_ROM_PTR(&strata_mp_flags_obj) },
    { MP_ROM_QSTR(MP_QSTR_shutdown), MP_ROM_PTR(&strata_mp_shutdown_obj) },
    { MP_ROM_QSTR(MP_QSTR_close_code),
      MP_ROM_PTR(&strata_mp_close_code_obj) },
    { MP_ROM_QSTR(MP_QSTR_ioctl), MP_ROM_PTR(&mp_stream_ioctl_obj) },
    { MP_ROM_QSTR(MP_QSTR_close), MP_ROM_PTR(&mp_stream_close_obj) },
    { MP_ROM_QSTR(MP_QSTR___del__), MP_ROM_PTR(&strata_mp_del_obj) },
};
static MP_DEFINE_CONST_DICT(strata_mp_locals, strata_mp_locals_table);

static const mp_stream_p_t strata_mp_stream_p = {
    .read = strata_mp_read,
    .write = strata_mp_write,
    .ioctl = strata_mp_ioctl,
};

static MP_DEFINE_CONST_OBJ_TYPE(
    strata_mp_type,
    MP_QSTR_Stream,
    MP_TYPE_FLAG_NONE,
    protocol, &strata_mp_stream_p,
    locals_dict, &strata_mp_locals
    );

/* ---- wrap ------------------------------------------------------------- */

enum {
    ARG_sock, ARG_kind, ARG_server, ARG_host, ARG_path, ARG_text,
    ARG_max_len, ARG_sep, ARG_len_bytes, ARG_ca, ARG_cert, ARG_key,
    ARG_server_name, ARG_insecure
};

static const char *opt_str(const mp_arg_val_t *a)
{
    return a->u_obj == mp_const_none ? NULL : mp_obj_str_get_str(a->u_obj);
}

/* The top layer of kind, and whether tls goes under it. */
static int parse_kind(const char *kind, int *tls)
{
    static const struct { const char *name; int top; int tls; } kinds[] = {
        { "lines", TOP_LINES, 0 }, { "len", TOP_LEN, 0 },
        { "ws", TOP_WS, 0 },       { "tls", TOP_BYTES, 1 },
        { "lines+tls", TOP_LINES, 1 }, { "len+tls", TOP_LEN, 1 },
        { "ws+tls", TOP_WS, 1 },   { "wss", TOP_WS, 1 },
    };
    size_t i;

    for (i = 0; i < MP_ARRAY_SIZE(kinds); i++)
        if (strcmp(kind, kinds[i].name) == 0) {
            *tls = kinds[i].tls;
            return kinds[i].top;
        }
    mp_raise_ValueError(MP_ERROR_TEXT("unknown kind"));
}

#ifdef STRATA_WITH_TLS
static void check_tls(strata_tls_config *c, int r)
{
    char text[160];

    if (r == 0)
        return;
    snprintf(text, sizeof text, "tls: %s", strata_tls_config_reason(c));
    strata_tls_config_free(c);
    mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("%s"), text);
}

static strata_stream *push_tls(strata_stream *lower, const mp_arg_val_t *a)
{
    int server = a[ARG_server].u_bool;
    strata_tls_config *c = strata_tls_config_new(
        server ? STRATA_TLS_SERVER : STRATA_TLS_CLIENT, NULL);
    strata_tls_opts opts;
    strata_stream *s;

    if (c == NULL)
        return NULL;
    if (opt_str(&a[ARG_cert]) != NULL)
        check_tls(c, strata_tls_config_cert_file(c, opt_str(&a[ARG_cert]),
                                                 opt_str(&a[ARG_key])));
    if (opt_str(&a[ARG_ca]) != NULL)
        check_tls(c, strata_tls_config_ca_file(c, opt_str(&a[ARG_ca]), NULL));
    if (a[ARG_insecure].u_bool)
        check_tls(c, strata_tls_config_insecure(c));
    memset(&opts, 0, sizeof opts);
    if (!server)
        opts.server_name = opt_str(&a[ARG_server_name]) != NULL
                               ? opt_str(&a[ARG_server_name])
                               : opt_str(&a[ARG_host]);
    s = strata_tls_new(lower, c, &opts, NULL);
    /* the config says why when it was not the allocator (no system CA) */
    if (s == NULL && strcmp(strata_tls_config_reason(c), "no error") != 0)
        check_tls(c, STRATA_ERR_TLS);
    strata_tls_config_free(c); /* the connection holds its reference */
    return s;
}
#endif

#ifdef STRATA_WITH_WS
static strata_stream *push_ws(strata_stream *lower, const mp_arg_val_t *a)
{
    strata_ws_opts opts;

    memset(&opts, 0, sizeof opts);
    opts.role = a[ARG_server].u_bool ? STRATA_WS_SERVER : STRATA_WS_CLIENT;
    opts.host = opt_str(&a[ARG_host]);
    opts.path = opt_str(&a[ARG_path]);
    opts.max_message = (size_t)a[ARG_max_len].u_int;
    opts.max_frame = (size_t)a[ARG_max_len].u_int;
    return strata_ws_new(lower, &opts, NULL);
}
#endif

static strata_stream *push_top(int top, strata_stream *lower,
                               const mp_arg_val_t *a)
{
    if (top == TOP_LINES) {
        strata_line_opts opts;
        mp_buffer_info_t sep;

        memset(&opts, 0, sizeof opts);
        if (a[ARG_sep].u_obj != mp_const_none) {
            mp_get_buffer_raise(a[ARG_sep].u_obj, &sep, MP_BUFFER_READ);
            opts.sep = sep.buf;
            opts.sep_len = sep.len;
        }
        opts.max_len = (size_t)a[ARG_max_len].u_int;
        return strata_line_new(lower, &opts, NULL);
    }
    if (top == TOP_LEN) {
        strata_lenprefix_opts opts;

        memset(&opts, 0, sizeof opts);
        opts.len_bytes = (unsigned)a[ARG_len_bytes].u_int;
        opts.max_len = (size_t)a[ARG_max_len].u_int;
        return strata_lenprefix_new(lower, &opts, NULL);
    }
#ifdef STRATA_WITH_WS
    return push_ws(lower, a);
#else
    return NULL; /* check_args refused it */
#endif
}

/* Every refusal comes before any layer is built (none leaks). */
static void check_args(int top, int tls, const mp_arg_val_t *a)
{
    int server = a[ARG_server].u_bool;
    mp_buffer_info_t sep;

#ifndef STRATA_WITH_TLS
    if (tls)
        mp_raise_ValueError(MP_ERROR_TEXT("tls not built in"));
#endif
#ifndef STRATA_WITH_WS
    if (top == TOP_WS)
        mp_raise_ValueError(MP_ERROR_TEXT("ws not built in"));
#endif
    if (a[ARG_sep].u_obj != mp_const_none) {
        mp_get_buffer_raise(a[ARG_sep].u_obj, &sep, MP_BUFFER_READ);
        if (sep.len == 0 || sep.len > 8)
            mp_raise_ValueError(MP_ERROR_TEXT("sep: 1 to 8 bytes"));
    }
    if (top == TOP_WS && !server && a[ARG_host].u_obj == mp_const_none)
        mp_raise_ValueError(MP_ERROR_TEXT("a ws client needs host"));
    if (tls && server && (a[ARG_cert].u_obj == mp_const_none ||
                          a[ARG_key].u_obj == mp_const_none))
        mp_raise_ValueError(MP_ERROR_TEXT("a tls server needs cert and key"));
    if (tls && !server && !a[ARG_insecure].u_bool &&
        a[ARG_host].u_obj == mp_const_none &&
        a[ARG_server_name].u_obj == mp_const_none)
        mp_raise_ValueError(MP_ERROR_TEXT("a tls client needs host"));
    if (a[ARG_max_len].u_int < 0 || a[ARG_len_bytes].u_int < 0)
        mp_raise_ValueError(NULL);
}

/* The descriptor of a socket object, through its stream ioctl. */
static int fd_of(mp_obj_t sock)
{
    const mp_stream_p_t *p = mp_get_stream_raise(sock, MP_STREAM_OP_IOCTL);
    int err = 0;
    mp_uint_t r = p->ioctl(sock, MP_STREAM_GET_FILENO, 0, &err);

    if (r == MP_STREAM_ERROR || (mp_int_t)r < 0)
        mp_raise_ValueError(MP_ERROR_TEXT("sock has no descriptor"));
    return (int)r;
}

static mp_obj_t strata_mp_wrap(size_t n_args, const mp_obj_t *pos,
                               mp_map_t *kw)
{
    static const mp_arg_t allowed[] = {
        { MP_QSTR_sock, MP_ARG_REQUIRED | MP_ARG_OBJ, { .u_obj = MP_OBJ_NULL } },
        { MP_QSTR_kind, MP_ARG_REQUIRED | MP_ARG_OBJ, { .u_obj = MP_OBJ_NULL } },
        { MP_QSTR_server, MP_ARG_KW_ONLY | MP_ARG_BOOL, { .u_bool = false } },
        { MP_QSTR_host, MP_ARG_KW_ONLY | MP_ARG_OBJ, { .u_rom_obj = MP_ROM_NONE } },
        { MP_QSTR_path, MP_ARG_KW_ONLY | MP_ARG_OBJ, { .u_rom_obj = MP_ROM_NONE } },
        { MP_QSTR_text, MP_ARG_KW_ONLY | MP_ARG_BOOL, { .u_bool = false } },
        { MP_QSTR_max_len, MP_ARG_KW_ONLY | MP_ARG_INT, { .u_int = 0 } },
        { MP_QSTR_sep, MP_ARG_KW_ONLY | MP_ARG_OBJ, { .u_rom_obj = MP_ROM_NONE } },
        { MP_QSTR_len_bytes, MP_ARG_KW_ONLY | MP_ARG_INT, { .u_int = 0 } },
        { MP_QSTR_ca, MP_ARG_KW_ONLY | MP_ARG_OBJ, { .u_rom_obj = MP_ROM_NONE } },
        { MP_QSTR_cert, MP_ARG_KW_ONLY | MP_ARG_OBJ, { .u_rom_obj = MP_ROM_NONE } },
        { MP_QSTR_key, MP_ARG_KW_ONLY | MP_ARG_OBJ, { .u_rom_obj = MP_ROM_NONE } },
        { MP_QSTR_server_name, MP_ARG_KW_ONLY | MP_ARG_OBJ, { .u_rom_obj = MP_ROM_NONE } },
        { MP_QSTR_insecure, MP_ARG_KW_ONLY | MP_ARG_BOOL, { .u_bool = false } },
    };
    mp_arg_val_t a[MP_ARRAY_SIZE(allowed)];
    strata_mp_obj *o;
    strata_stream *cur;
    strata_stream *up;
    int tls = 0;
    int top;
    int fl;

    mp_arg_parse_all(n_args, pos, kw, MP_ARRAY_SIZE(allowed), allowed, a);
    top = parse_kind(mp_obj_str_get_str(a[ARG_kind].u_obj), &tls);
    check_args(top, tls, a);
    o = mp_obj_malloc_with_finaliser(strata_mp_obj, &strata_mp_type);
    memset((char *)o + sizeof o->base, 0, sizeof *o - sizeof o->base);
    o->sock = a[ARG_sock].u_obj;
    o->fd = fd_of(o->sock);
    o->text = a[ARG_text].u_bool;
    fl = fcntl(o->fd, F_GETFL);
    o->blocking = fl >= 0 && !(fl & O_NONBLOCK);
    strata_socket_init(&o->bottom, o->fd, 0);
    cur = &o->bottom.base;
#ifdef STRATA_WITH_TLS
    if (tls) {
        up = push_tls(cur, a);
        if (up == NULL)
            goto fail;
        o->tls = cur = up;
    }
#endif
    if (top != TOP_BYTES) {
        up = push_top(top, cur, a);
        if (up == NULL)
            goto fail;
        if (top == TOP_WS)
            o->ws = up;
        cur = up;
    }
    o->top = cur;
    return MP_OBJ_FROM_PTR(o);
fail:
    strata_free(cur); /* the layers built so far; the socket stays open */
    o->ws = o->tls = NULL;
    mp_raise_OSError(MP_ENOMEM);
}
static MP_DEFINE_CONST_FUN_OBJ_KW(strata_mp_wrap_obj, 2, strata_mp_wrap);

static const mp_rom_map_elem_t strata_module_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_strata) },
    { MP_ROM_QSTR(MP_QSTR_wrap), MP_ROM_PTR(&strata_mp_wrap_obj) },
    { MP_ROM_QSTR(MP_QSTR_MSG_END), MP_ROM_INT(STRATA_MSG_END) },
    { MP_ROM_QSTR(MP_QSTR_MSG_TEXT), MP_ROM_INT(STRATA_MSG_TEXT) },
#ifdef STRATA_WITH_WS
    { MP_ROM_QSTR(MP_QSTR_HAVE_WS), MP_ROM_TRUE },
#else
    { MP_ROM_QSTR(MP_QSTR_HAVE_WS), MP_ROM_FALSE },
#endif
#ifdef STRATA_WITH_TLS
    { MP_ROM_QSTR(MP_QSTR_HAVE_TLS), MP_ROM_TRUE },
#else
    { MP_ROM_QSTR(MP_QSTR_HAVE_TLS), MP_ROM_FALSE },
#endif
};
static MP_DEFINE_CONST_DICT(strata_module_globals, strata_module_table);

const mp_obj_module_t strata_user_cmodule = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&strata_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR_strata, strata_user_cmodule);
