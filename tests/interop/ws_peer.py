#!/usr/bin/python3
"""WebSocket interop peer for strata, on Python's websockets 10.4 (asyncio).

Run with /usr/bin/python3 (Debian's python3-websockets lives there only).

  ws_peer.py server PORTFILE [--deflate|--no-deflate]
      Echo server on 127.0.0.1, port 0; writes its port to PORTFILE. Text
      comes back as text, binary as binary; websockets answers a close
      with the client's code and reason. Accepts subprotocol strata.test.
  ws_peer.py client URL [--deflate|--no-deflate]
      Runs the scenario against an echo server at URL, printing "ok CASE"
      for each case; exits 1 at the first failure.
"""
import asyncio
import os
import sys

import websockets

SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20, 16 << 20]
PROTOCOL = "strata.test"
MAX_SIZE = 32 << 20  # above the largest message of the scenario
TIMEOUT = 60         # seconds for any one step
UTF8 = "h\u00e9llo w\u00f6rld \u2713 \U0001f389 \u65e5\u672c\u8a9e "


class Failure(Exception):
    pass


def options(argv):
    """The websockets keyword arguments for the flags given."""
    deflate = "--no-deflate" not in argv
    return deflate, dict(
        compression="deflate" if deflate else None,
        max_size=MAX_SIZE,
        ping_interval=None,  # no pings of our own in the middle of cases
        close_timeout=TIMEOUT,
    )


# ---- server ----

async def echo(ws, path=None):
    try:
        async for message in ws:
            await ws.send(message)  # str goes as text, bytes as binary
    except websockets.ConnectionClosed:
        pass


async def serve(portfile, kwargs):
    async with websockets.serve(echo, "127.0.0.1", 0,
                                subprotocols=[PROTOCOL], **kwargs) as server:
        port = server.sockets[0].getsockname()[1]
        # Write then rename: the driver never reads half a port number.
        with open(portfile + ".tmp", "w") as f:
            f.write("%d\n" % port)
        os.rename(portfile + ".tmp", portfile)
        await asyncio.Future()  # until killed


# ---- client ----

def text_of(n):
    """n characters of compressible ASCII text."""
    unit = "strata websocket interop 0123456789 "
    return (unit * (n // len(unit) + 1))[:n]


def describe(m):
    kind = "text" if isinstance(m, str) else "binary"
    return "%s of %d" % (kind, len(m))


async def expect(ws, want, case):
    got = await asyncio.wait_for(ws.recv(), TIMEOUT)
    if type(got) is not type(want):
        raise Failure("%s: sent %s, got %s" % (case, describe(want),
                                                describe(got)))
    if got != want:
        at = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b),
                  min(len(got), len(want)))
        raise Failure("%s: echo differs (sent %d, got %d, first difference "
                      "at %d)" % (case, len(want), len(got), at))


async def roundtrip(ws, message, case):
    await ws.send(message)
    await expect(ws, message, case)
    print("ok", case, flush=True)


async def fragments(parts):
    for p in parts:
        yield p


async def sizes(ws):
    for n in SIZES:
        await roundtrip(ws, text_of(n), "text_%d" % n)
        await roundtrip(ws, os.urandom(n), "binary_%d" % n)


async def utf8(ws):
    await roundtrip(ws, UTF8, "utf8_short")
    # Long enough that reads split multi-byte characters somewhere.
    await roundtrip(ws, UTF8 * 20000, "utf8_long")


async def fragmented(ws):
    parts = ["frag", "", "mented ", UTF8]
    await ws.send(fragments(parts))
    await expect(ws, "".join(parts), "fragmented_text")
    print("ok fragmented_text", flush=True)
    parts = [os.urandom(100000), os.urandom(1), os.urandom(70000)]
    await ws.send(fragments(parts))
    await expect(ws, b"".join(parts), "fragmented_binary")
    print("ok fragmented_binary", flush=True)


async def pings(ws):
    for payload in (b"strata-ping", b"", os.urandom(125)):
        waiter = await ws.ping(payload)
        await asyncio.wait_for(waiter, TIMEOUT)
    # A ping between messages must not disturb the echo order.
    await ws.send("before ping")
    waiter = await ws.ping(b"between")
    await ws.send(b"after ping")
    await expect(ws, "before ping", "ping_order")
    await expect(ws, b"after ping", "ping_order")
    await asyncio.wait_for(waiter, TIMEOUT)
    print("ok ping_pong", flush=True)


async def pipelined(ws):
    """Many messages in flight at once come back in order."""
    sent = []
    for i in range(200):
        m = text_of(i * 37) if i % 2 else os.urandom(i * 101)
        sent.append(m)
        await ws.send(m)
    for i, m in enumerate(sent):
        await expect(ws, m, "pipelined #%d" % i)
    print("ok pipelined", flush=True)


def check_deflate(ws, deflate):
    names = [e.name for e in ws.extensions]
    if deflate != ("permessage-deflate" in names):
        raise Failure("deflate: wanted %s, negotiated %s" % (deflate, names))
    print("ok deflate_%s" % ("on" if deflate else "off"), flush=True)


async def close_with(url, kwargs, code, reason):
    case = "close_%d" % code
    async with websockets.connect(url, **kwargs) as ws:
        await roundtrip(ws, "last words", case + "_echo")
        await asyncio.wait_for(ws.close(code, reason), TIMEOUT)
        if ws.close_code != code or ws.close_reason != reason:
            raise Failure("%s: server answered %s %r, wanted %d %r" % (
                case, ws.close_code, ws.close_reason, code, reason))
    print("ok", case, flush=True)


async def too_big(url, kwargs):
    # Over the server's 16 MiB limit (inflated, when deflate is on): the
    # server must close with 1009, and the close must reach us although we
    # are still sending (it lingers instead of resetting the connection).
    async with websockets.connect(url, **kwargs) as ws:
        try:
            await ws.send(b"x" * (17 * 1024 * 1024))
            await asyncio.wait_for(ws.recv(), TIMEOUT)
        except websockets.ConnectionClosed as e:
            code = e.rcvd.code if e.rcvd is not None else None
            if code != 1009:
                raise Failure("too_big: server closed with %s, wanted 1009"
                              % code)
            print("ok too_big_1009", flush=True)
            return
    raise Failure("too_big: the server accepted a 17 MiB message")


async def subprotocol(url, kwargs):
    async with websockets.connect(url, subprotocols=["other", PROTOCOL],
                                  **kwargs) as ws:
        if ws.subprotocol != PROTOCOL:
            raise Failure("subprotocol: got %r, wanted %r" % (ws.subprotocol,
                                                              PROTOCOL))
        await roundtrip(ws, "with a subprotocol", "subprotocol")


async def scenario(url, deflate, kwargs):
    async with websockets.connect(url, open_timeout=TIMEOUT, **kwargs) as ws:
        check_deflate(ws, deflate)
        await sizes(ws)
        await utf8(ws)
        await fragmented(ws)
        await pings(ws)
        await pipelined(ws)
    await subprotocol(url, kwargs)
    await close_with(url, kwargs, 1000, "bye")
    await close_with(url, kwargs, 4000, "custom reason \u2713")
    await too_big(url, kwargs)


def main(argv):
    if len(argv) < 3 or argv[1] not in ("server", "client"):
        sys.exit(__doc__)
    deflate, kwargs = options(argv[3:])
    if argv[1] == "server":
        asyncio.run(serve(argv[2], kwargs))
        return 0
    try:
        asyncio.run(asyncio.wait_for(scenario(argv[2], deflate, kwargs), 280))
    except (Failure, websockets.WebSocketException, OSError,
            asyncio.TimeoutError) as e:
        print("FAIL %s: %s" % (type(e).__name__, e), flush=True)
        return 1
    print("all cases passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
