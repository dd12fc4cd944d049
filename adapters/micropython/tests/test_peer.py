# The strata module's WebSocket client against a real echo server: Debian's
# python3-websockets or the strata tool (run.sh starts them).
#   micropython test_peer.py NAME PORT ws|wss asyncio|blocking [CERTDIR]
# Text comes back as text and binary as binary; the close code 1000 we send
# comes back in the server's close.
import asyncio
import sys

import strata
from util import check, connect, fail, finish, payload, recv_msg, send_msg

SIZES = (0, 1, 125, 126, 65535, 65536, 200000)
TIMEOUT = 60  # seconds: a hang guard, not a measurement

name, port, kind, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
kw = {"ca": sys.argv[5] + "/ca.pem"} if kind == "wss" else {}
tag = "%s_%s_%s" % (name, kind, mode)


def cases():
    for size in SIZES:
        for text in (False, True):
            yield "%s_%s_%d" % (tag, "text" if text else "binary", size), \
                payload(size, text), text


def recv_blocking(s):
    parts = []
    while True:
        b = s.read(65536)
        if not b and not (s.flags() & strata.MSG_END):
            return None
        parts.append(b)
        if s.flags() & strata.MSG_END:
            return b"".join(parts), bool(s.flags() & strata.MSG_TEXT)


def closing(s, m):
    check(tag + "_eof_after_close", m is None, "got %r" % (m,))
    check(tag + "_close_code", s.close_code() == 1000,
          "peer's code %d" % s.close_code())
    s.close()


def run_blocking():
    s = strata.wrap(connect(port, blocking=True), kind, host="127.0.0.1",
                    path="/", **kw)
    for case, data, text in cases():
        s.settext(text)
        n = s.write(data)
        m = recv_blocking(s)
        check(case, n == len(data) and m == (data, text),
              "wrote %d, got %r" % (n, (None if m is None else (len(m[0]), m[1])),))
    check(tag + "_shutdown", s.shutdown(1000) is True)
    closing(s, recv_blocking(s))


async def run_async():
    s = strata.wrap(connect(port), kind, host="127.0.0.1", path="/", **kw)
    st = asyncio.StreamReader(s)
    for case, data, text in cases():
        await send_msg(st, s, data, text)
        m = await recv_msg(st, s)
        check(case, m == (data, text),
              "got %r" % ((None if m is None else (len(m[0]), m[1])),))
    check(tag + "_shutdown", s.shutdown(1000) is True)
    closing(s, await recv_msg(st, s))


try:
    if mode == "blocking":
        run_blocking()
    else:
        asyncio.run(asyncio.wait_for(run_async(), TIMEOUT))
except Exception as e:
    fail(tag, "%s %r" % (type(e).__name__, e))
finish()
