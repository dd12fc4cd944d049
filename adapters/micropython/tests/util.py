# Helpers of the MicroPython-side tests (run by a micropython built with
# the strata module): results, sockets, and one message at a time over an
# asyncio Stream wrapped around a strata object.
import asyncio
import random
import socket
import sys
import time

import strata

_failed = []


def ok(case):
    print("ok", case)


def fail(case, why):
    print("FAIL", case + ":", why)
    _failed.append(case)


def check(case, cond, why=""):
    if cond:
        ok(case)
    else:
        fail(case, why)
    return cond


def finish():
    # The exit status is what run.sh looks at.
    if _failed:
        print("failed:", " ".join(_failed))
        sys.exit(1)
    print("all passed")


def payload(n, text):
    # text: UTF-8 with 2-byte characters, cut on a character boundary
    if text:
        unit = "strata \u00e9t\u00e9 "
        s = (unit * (n // len(unit) + 1)).encode()[:n]
        while True:
            try:
                s.decode()
                return s
            except UnicodeError:  # a 2-byte character cut in half
                s = s[:-1] + b"."

    return bytes((i * 7 + 3) & 0xFF for i in range(n))


def listener():
    # MicroPython's socket has no getsockname(): try random ports.
    random.seed(time.ticks_us())
    for _ in range(50):
        port = random.randint(20000, 60000)
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(socket.getaddrinfo("127.0.0.1", port)[0][-1])
        except OSError:
            s.close()
            continue
        s.listen(4)
        s.setblocking(False)
        return s, port
    raise OSError("no free port")


def connect(port, blocking=False):
    # A connect still in progress: the stack's first calls wait for it.
    s = socket.socket()
    s.setblocking(blocking)
    try:
        s.connect(socket.getaddrinfo("127.0.0.1", port)[0][-1])
    except OSError as e:
        if e.errno != 115:  # EINPROGRESS
            raise
    return s


async def send_msg(st, obj, data, text=False):
    obj.settext(text)
    if not data:
        # asyncio's Stream keeps unsent bytes in a bytes buffer, where an
        # empty message that could not go at once would vanish: send it
        # with the object's own write until it went.
        while obj.write(data) is None:
            await asyncio.sleep_ms(1)
        return
    st.write(data)
    await st.drain()


async def recv_msg(st, obj, piece=4096):
    # One whole message as (bytes, text), or None at the end of stream.
    parts = []
    while True:
        b = await st.read(piece)
        f = obj.flags()
        if not b and not (f & strata.MSG_END):
            return None
        parts.append(b)
        if f & strata.MSG_END:
            return b"".join(parts), bool(f & strata.MSG_TEXT)


async def accept(lsock):
    # One connection from a non-blocking listening socket, through asyncio.
    while True:
        try:
            s, _ = lsock.accept()
            s.setblocking(False)  # else the stack would wait inside calls
            return s
        except OSError as e:
            if e.errno != 11:  # EAGAIN
                raise
        await asyncio.sleep_ms(1)
