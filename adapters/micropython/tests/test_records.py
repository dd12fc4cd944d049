# The record and byte-stream kinds of the strata module under asyncio, in
# one process: lines, len, and (TLS built in, CERTDIR given) tls and
# lines+tls. The server speaks first, so the client's first call is a read:
# a TLS client must still send its hello before it waits for the server.
#   micropython test_records.py [CERTDIR]
import asyncio
import sys

import strata
from util import accept, check, connect, fail, finish, listener, payload

TIMEOUT = 60  # seconds: a hang guard, not a measurement
RECORDS = (b"one", b"", b"x" * 1000, payload(4000, False).replace(b"\n", b"."))


async def read_record(st, obj):
    parts = []
    while True:
        b = await st.read(256)
        if not b and not (obj.flags() & strata.MSG_END):
            return None
        parts.append(b)
        if obj.flags() & strata.MSG_END:
            return b"".join(parts)


async def write(st, obj, data):
    if not data:
        while obj.write(data) is None:
            await asyncio.sleep_ms(1)
        return
    st.write(data)
    await st.drain()


async def server(lsock, kind, kw):
    s = strata.wrap(await accept(lsock), kind, server=True, **kw)
    st = asyncio.StreamReader(s)
    await write(st, s, b"hello")
    while True:
        if kind == "tls":  # bytes: echo each piece as it comes
            r = (await st.read(256)) or None
        else:
            r = await read_record(st, s)
        if r is None:
            break
        await write(st, s, r)
    s.close()


async def read_exactly(st, n):
    data = b""
    while len(data) < n:
        b = await st.read(n - len(data))
        if not b:
            break
        data += b
    return data


async def client(port, kind, kw):
    s = strata.wrap(connect(port), kind, host="127.0.0.1", **kw)
    st = asyncio.StreamReader(s)
    stream = kind == "tls"
    if stream:
        g = await read_exactly(st, 5)
    else:
        g = await read_record(st, s)
    check(kind + "_greeting_first", g == b"hello", "got %r" % (g,))
    for r in RECORDS:
        if stream and not r:
            continue  # a byte stream has no empty record
        await write(st, s, r)
        got = await read_exactly(st, len(r)) if stream else await read_record(st, s)
        check("%s_record_%d" % (kind, len(r)), got == r,
              "got %r" % ((None if got is None else len(got)),))
    check(kind + "_shutdown", s.shutdown() is True)
    b = await st.read(10)
    check(kind + "_eof", b == b"" and s.flags() == 0, "got %r" % (b,))
    s.close()


async def run(kind, kw_server, kw_client):
    lsock, port = listener()
    try:
        srv = asyncio.create_task(server(lsock, kind, kw_server))
        await asyncio.wait_for(client(port, kind, kw_client), TIMEOUT)
        await asyncio.wait_for(srv, TIMEOUT)
    except Exception as e:
        fail(kind, "%s %r" % (type(e).__name__, e))
    finally:
        lsock.close()


def main():
    for kind in ("lines", "len"):
        asyncio.run(run(kind, {}, {}))
    if len(sys.argv) > 1 and strata.HAVE_TLS:
        d = sys.argv[1]
        for kind in ("tls", "lines+tls"):
            asyncio.run(run(kind, {"cert": d + "/server.pem",
                                   "key": d + "/server.key"},
                            {"ca": d + "/ca.pem"}))
    finish()


main()
