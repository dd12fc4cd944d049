# WebSocket client and server of the strata module in one process, under
# MicroPython's asyncio: ws over a socket, and wss when TLS is built in
# and a certificate folder (tests/certs/make_certs.sh) is given.
#   micropython test_ws.py [CERTDIR]
import asyncio
import sys

import strata
from util import (accept, check, connect, fail, finish, listener, ok,
                  payload, recv_msg, send_msg)

SIZES = (0, 1, 125, 126, 127, 65535, 65536, 200000)
TIMEOUT = 60  # seconds: a hang guard, not a measurement


async def server(lsock, kind, kw, seen):
    sock = await accept(lsock)
    s = strata.wrap(sock, kind, server=True, **kw)
    st = asyncio.StreamReader(s)
    await send_msg(st, s, b"hello", True)
    n = 0
    while True:
        # Small pieces: the rest of a frame stays buffered inside the stack
        # and the next read must not wait for the socket.
        m = await recv_msg(st, s, 500)
        if m is None:
            break
        await send_msg(st, s, m[0], m[1])
        n += 1
    seen["server_messages"] = n
    seen["server_close_code"] = s.close_code()
    s.close()


async def client(port, kind, kw):
    s = strata.wrap(connect(port), kind, host="127.0.0.1", path="/echo", **kw)
    st = asyncio.StreamReader(s)
    # The first call is a read: the handshake must go out all the same.
    m = await recv_msg(st, s)
    check(kind + "_greeting", m == (b"hello", True), "got %r" % (m,))
    for size in SIZES:
        for text in (False, True):
            data = payload(size, text)
            case = "%s_%s_%d" % (kind, "text" if text else "binary", size)
            await send_msg(st, s, data, text)
            m = await recv_msg(st, s)
            check(case, m == (data, text),
                  "got %r" % ((None if m is None else (len(m[0]), m[1])),))
    # One message read in pieces smaller than a TLS record or a frame.
    data = payload(3000, False)
    await send_msg(st, s, data)
    m = await recv_msg(st, s, 100)
    check(kind + "_small_pieces", m == (data, False))
    # Two messages written before one drain keep their boundary.
    s.settext(False)
    st.write(b"first")
    st.write(b"second")
    await st.drain()
    a = await recv_msg(st, s)
    b = await recv_msg(st, s)
    check(kind + "_two_writes", (a, b) == ((b"first", False), (b"second", False)),
          "got %r %r" % (a, b))
    check(kind + "_shutdown", s.shutdown(1000) is True)
    m = await recv_msg(st, s)
    check(kind + "_eof_after_close", m is None, "got %r" % (m,))
    check(kind + "_close_code", s.close_code() == 1000,
          "peer's code %d" % s.close_code())
    s.close()
    return 2 * len(SIZES) + 3


async def run(kind, kw_server, kw_client):
    lsock, port = listener()
    seen = {}
    try:
        srv = asyncio.create_task(server(lsock, kind, kw_server, seen))
        sent = await asyncio.wait_for(client(port, kind, kw_client), TIMEOUT)
        await asyncio.wait_for(srv, TIMEOUT)
    except Exception as e:
        fail(kind, "%s %r" % (type(e).__name__, e))
        return
    finally:
        lsock.close()
    check(kind + "_server_messages", seen.get("server_messages") == sent,
          "server echoed %s of %d" % (seen.get("server_messages"), sent))
    check(kind + "_server_close_code", seen.get("server_close_code") == 1000,
          "server saw %s" % seen.get("server_close_code"))


def main():
    asyncio.run(run("ws", {}, {}))
    if len(sys.argv) > 1 and strata.HAVE_TLS:
        d = sys.argv[1]
        asyncio.run(run("wss", {"cert": d + "/server.pem",
                                "key": d + "/server.key"},
                        {"ca": d + "/ca.pem"}))
    elif len(sys.argv) > 1:
        print("skip wss: TLS not built in")
    finish()


main()
