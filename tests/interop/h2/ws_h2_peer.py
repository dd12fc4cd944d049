#!/usr/bin/python3
"""WebSocket-over-HTTP/2 (RFC 8441) interop peer for strata, on Debian's
python3-h2 (the HTTP/2 connection) and python3-wsproto (the WebSocket
frames on a stream's DATA), as wsproto's documentation describes for
HTTP/2: the handshake is an extended CONNECT, then a
wsproto.connection.Connection frames the stream's bytes. Cleartext HTTP/2
with prior knowledge, asyncio. Run with /usr/bin/python3 (Debian's
modules live there only).

  ws_h2_peer.py server PORTFILE
      Echo server on 127.0.0.1, port 0 (written to PORTFILE). Offers
      SETTINGS_ENABLE_CONNECT_PROTOCOL=1, accepts :protocol websocket
      (permessage-deflate when offered), echoes each message piece by
      piece, text as text, binary as binary, answers a close with its code
      and ends the stream. Anything else: 400 / 501.
  ws_h2_peer.py client HOST PORT PATH
      Runs the scenario against an echo server (strata's ws_h2_server),
      printing "ok CASE" for each case; exits 1 at the first failure.
"""
import asyncio
import os
import sys

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import wsproto.connection
import wsproto.events
import wsproto.extensions
from wsproto.connection import ConnectionType

TIMEOUT = 30  # seconds for any one step
SIZES = [0, 1, 125, 126, 127, 65535, 65536, 1 << 20]
UTF8 = "h\u00e9llo w\u00f6rld \u2713 \U0001f389 \u65e5\u672c\u8a9e "
CONNECT_PROTOCOL = h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL


class Failure(Exception):
    pass


class Stream:
    """One HTTP/2 stream: bytes waiting for window, and what arrived."""

    def __init__(self, conn, sid):
        self.conn, self.sid = conn, sid
        self.out = bytearray()
        self.end_pending = False
        self.ws = None          # wsproto Connection once open
        self.deflate = None     # its PerMessageDeflate, when agreed
        self.inbox = asyncio.Queue()
        self.head = asyncio.get_running_loop().create_future()
        self.body = bytearray()
        self.ended = False
        self.reset = None
        self.parts = []         # pieces of the message being received

    def write(self, data, end=False):
        self.out += data
        self.end_pending |= end
        self.conn.push(self)

    def ws_send(self, event):
        self.write(self.ws.send(event))

    def on_data(self, data):
        if self.ws is None:
            self.body += data
            return
        if not data:        # an empty DATA frame (END_STREAM) says nothing
            return
        if self.ws.state is wsproto.connection.ConnectionState.CLOSED:
            self.inbox.put_nowait(("after close", len(data)))
            return
        self.ws.receive_data(data)
        for ev in self.ws.events():
            self.conn.on_ws_event(self, ev)


class Conn:
    """An h2 connection on asyncio streams; events go to its streams."""

    def __init__(self, reader, writer, client):
        cfg = h2.config.H2Configuration(client_side=client,
                                        header_encoding="utf-8")
        self.h2 = h2.connection.H2Connection(config=cfg)
        self.reader, self.writer, self.client = reader, writer, client
        self.streams = {}
        self.settings = asyncio.get_running_loop().create_future()
        if not client:  # in the first SETTINGS frame, where clients look
            self.h2.local_settings = h2.settings.Settings(
                client=False, initial_values={CONNECT_PROTOCOL: 1})
        self.h2.initiate_connection()
        self.flush()

    def flush(self):
        data = self.h2.data_to_send()
        if data:
            self.writer.write(data)

    def push(self, st):
        """Send what the stream holds, as far as the windows allow."""
        while st.out and st.sid in self.h2.streams:
            room = min(self.h2.local_flow_control_window(st.sid),
                       self.h2.max_outbound_frame_size, len(st.out))
            if room <= 0:
                break
            self.h2.send_data(st.sid, bytes(st.out[:room]))
            del st.out[:room]
        if not st.out and st.end_pending and st.sid in self.h2.streams:
            st.end_pending = False
            self.h2.end_stream(st.sid)
        self.flush()

    async def run(self):
        """Read and dispatch until the connection ends."""
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    break
                for ev in self.h2.receive_data(data):
                    self.on_event(ev)
                self.flush()
                await self.writer.drain()
        except Exception as e:  # every stream learns it, nothing hangs
            print("connection: %r" % e, flush=True)
        for st in self.streams.values():
            st.inbox.put_nowait(("gone",))
            if self.client and not st.head.done():
                st.head.set_exception(Failure("connection ended"))
        if not self.settings.done():
            self.settings.set_exception(Failure("connection ended"))

    def on_event(self, ev):
        st = self.streams.get(getattr(ev, "stream_id", None))
        if isinstance(ev, h2.events.RemoteSettingsChanged):
            if not self.settings.done():
                self.settings.set_result(ev.changed_settings)
        elif isinstance(ev, h2.events.RequestReceived):
            st = self.streams[ev.stream_id] = Stream(self, ev.stream_id)
            self.accept(st, dict(ev.headers), ev.stream_ended is not None)
        elif isinstance(ev, h2.events.ResponseReceived) and st:
            st.head.set_result(dict(ev.headers))
        elif isinstance(ev, h2.events.DataReceived):
            self.h2.acknowledge_received_data(ev.flow_controlled_length,
                                              ev.stream_id)
            if st:
                st.on_data(ev.data)
        elif isinstance(ev, h2.events.StreamEnded) and st:
            st.ended = True
            st.inbox.put_nowait(("end",))
        elif isinstance(ev, h2.events.StreamReset) and st:
            st.reset = ev.error_code
            st.inbox.put_nowait(("reset", ev.error_code))
            if self.client and not st.head.done():
                st.head.set_exception(Failure("reset %d" % ev.error_code))
        elif isinstance(ev, h2.events.WindowUpdated):
            for s in list(self.streams.values()):
                self.push(s)

    # ---- server ----

    def accept(self, st, head, ended):
        if head.get(":method") != "CONNECT" or ":protocol" not in head:
            self.h2.send_headers(st.sid, [(":status", "400")],
                                 end_stream=True)
            return
        if head[":protocol"] != "websocket":
            self.h2.send_headers(st.sid, [(":status", "501")],
                                 end_stream=True)
            return
        if head.get("sec-websocket-version") != "13" or ended:
            self.h2.send_headers(st.sid, [(":status", "400")],
                                 end_stream=True)
            return
        out, exts = [(":status", "200")], []
        offer = head.get("sec-websocket-extensions", "")
        if offer.split(";")[0].strip() == "permessage-deflate":
            pmd = wsproto.extensions.PerMessageDeflate()
            agreed = pmd.accept(offer)
            if agreed is not None:
                out.append(("sec-websocket-extensions",
                            "permessage-deflate" +
                            ("; " + agreed if agreed else "")))
                exts.append(pmd)
        self.h2.send_headers(st.sid, out)
        st.ws = wsproto.connection.Connection(ConnectionType.SERVER, exts)

    def on_ws_event(self, st, ev):
        if self.client:
            return client_ws_event(st, ev)
        if isinstance(ev, wsproto.events.Message):
            # piece by piece, as it came: type and fragments keep
            st.ws_send(type(ev)(data=ev.data,
                                message_finished=ev.message_finished))
        elif isinstance(ev, wsproto.events.Ping):
            st.ws_send(ev.response())
        elif isinstance(ev, wsproto.events.CloseConnection):
            st.write(st.ws.send(ev.response()), end=True)


async def serve(portfile):
    async def handle(reader, writer):
        conn = Conn(reader, writer, client=False)
        await conn.run()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    with open(portfile + ".tmp", "w") as f:  # never half a port number
        f.write("%d\n" % port)
    os.rename(portfile + ".tmp", portfile)
    async with server:
        await server.serve_forever()


# ---- client ----

def client_ws_event(st, ev):
    if isinstance(ev, wsproto.events.Message):
        st.parts.append(ev.data)
        if ev.message_finished:
            joined = ("" if isinstance(ev, wsproto.events.TextMessage)
                      else b"").join(st.parts)
            st.parts = []
            st.inbox.put_nowait(("message", joined))
    elif isinstance(ev, wsproto.events.Ping):
        st.ws_send(ev.response())
    elif isinstance(ev, wsproto.events.Pong):
        st.inbox.put_nowait(("pong", bytes(ev.payload)))
    elif isinstance(ev, wsproto.events.CloseConnection):
        st.inbox.put_nowait(("close", ev.code, ev.reason))


async def next_item(st, case):
    try:
        return await asyncio.wait_for(st.inbox.get(), TIMEOUT)
    except asyncio.TimeoutError:
        raise Failure("%s: nothing came in %d s" % (case, TIMEOUT))


def text_of(n, seed):
    """Text of exactly n UTF-8 bytes, multi-byte characters included."""
    unit = UTF8 + str(seed)
    text = unit * (n // len(unit.encode()))
    left = n - len(text.encode())
    for ch in unit:
        if len(ch.encode()) > left:
            break
        text += ch
        left -= len(ch.encode())
    return text + "x" * left


async def expect(st, want, case):
    item = await next_item(st, case)
    if item[0] != "message":
        raise Failure("%s: wanted an echo, got %r" % (case, item[:2]))
    got = item[1]
    if type(got) is not type(want):
        raise Failure("%s: sent %s, echo is %s" % (
            case, type(want).__name__, type(got).__name__))
    if got != want:
        raise Failure("%s: echo differs (sent %d, got %d)" % (
            case, len(want), len(got)))


async def roundtrip(st, message, case):
    st.ws_send(wsproto.events.TextMessage(data=message)
               if isinstance(message, str)
               else wsproto.events.BytesMessage(data=message))
    await expect(st, message, case)


class Client:
    def __init__(self, conn, authority, path):
        self.conn, self.authority, self.path = conn, authority, path

    def request(self, head, end=False):
        sid = self.conn.h2.get_next_available_stream_id()
        st = self.conn.streams[sid] = Stream(self.conn, sid)
        self.conn.h2.send_headers(sid, head, end_stream=end)
        self.conn.flush()
        return st

    async def open_ws(self, deflate=False, protocol="websocket"):
        head = [(":method", "CONNECT"), (":protocol", protocol),
                (":scheme", "http"), (":path", self.path),
                (":authority", self.authority),
                ("sec-websocket-version", "13")]
        pmd = wsproto.extensions.PerMessageDeflate() if deflate else None
        if pmd:
            head.append(("sec-websocket-extensions",
                         "permessage-deflate; " + pmd.offer()))
        st = self.request(head)
        resp = await asyncio.wait_for(st.head, TIMEOUT)
        if resp.get(":status") != "200":
            return st, resp
        agreed = resp.get("sec-websocket-extensions")
        if agreed and not pmd:
            raise Failure("server agreed to %r, never offered" % agreed)
        if pmd and agreed:
            pmd.finalize(agreed)
            st.deflate = pmd
        st.ws = wsproto.connection.Connection(ConnectionType.CLIENT,
                                              [pmd] if pmd and agreed else [])
        return st, resp


async def case_plain_get(c):
    st = c.request([(":method", "GET"), (":scheme", "http"),
                    (":path", "/"), (":authority", c.authority)], end=True)
    resp = await asyncio.wait_for(st.head, TIMEOUT)
    while not st.ended:
        item = await next_item(st, "plain_get")
        if item[0] != "end":
            raise Failure("plain_get: %r" % (item,))
    if resp.get(":status") != "200" or not st.body:
        raise Failure("plain_get: status %s, %d bytes" % (
            resp.get(":status"), len(st.body)))
    print("ok plain_get: 200, %r" % bytes(st.body[:40]), flush=True)


async def case_refused(c):
    st, resp = await c.open_ws(protocol="not-websocket")
    if resp.get(":status") != "501":
        raise Failure("refused: :protocol not-websocket got %s, wanted 501"
                      % resp.get(":status"))
    print("ok refused_501", flush=True)


async def scenario(st, name):
    for n in SIZES:
        await roundtrip(st, text_of(n, name), "%s text_%d" % (name, n))
        await roundtrip(st, os.urandom(n), "%s binary_%d" % (name, n))
    print("ok %s sizes 0 B .. 1 MiB, text and binary" % name, flush=True)
    await roundtrip(st, UTF8 * 5000, name + " utf8_long")
    # one message in three fragments, the middle one empty
    whole = UTF8 * 300
    for piece, fin in ((whole[:1001], False), ("", False),
                       (whole[1001:], True)):
        st.ws_send(wsproto.events.TextMessage(data=piece,
                                              message_finished=fin))
    await expect(st, whole, name + " fragmented")
    print("ok %s fragmented" % name, flush=True)
    st.ws_send(wsproto.events.Ping(payload=b"strata-ping"))
    item = await next_item(st, name + " ping")
    if item != ("pong", b"strata-ping"):
        raise Failure("%s ping: got %r" % (name, item[:2]))
    print("ok %s ping_pong" % name, flush=True)
    sent = []
    for i in range(100):
        m = text_of(i * 37, i) if i % 2 else os.urandom(i * 101)
        sent.append(m)
        st.ws_send(wsproto.events.TextMessage(data=m) if i % 2
                   else wsproto.events.BytesMessage(data=m))
    for i, m in enumerate(sent):
        await expect(st, m, "%s pipelined #%d" % (name, i))
    print("ok %s pipelined" % name, flush=True)


async def close(st, code, reason, name):
    st.ws_send(wsproto.events.CloseConnection(code=code, reason=reason))
    item = await next_item(st, name + " close")
    if item[0] != "close" or item[1] != code:
        raise Failure("%s close: server answered %r, wanted %d" % (
            name, item, code))
    st.write(b"", end=True)
    while not st.ended:  # the server ends its stream after the close
        item = await next_item(st, name + " end_stream")
        if item[0] != "end":
            raise Failure("%s: after the close, %r" % (name, item))
    if st.reset is not None:
        raise Failure("%s: stream reset %d" % (name, st.reset))
    if not name.startswith("many"):
        print("ok %s close_%d, END_STREAM both ways" % (name, code),
              flush=True)


async def client(host, port, path):
    reader, writer = await asyncio.open_connection(host, int(port))
    conn = Conn(reader, writer, client=True)
    runner = asyncio.ensure_future(conn.run())
    c = Client(conn, "%s:%s" % (host, port), path)
    await asyncio.wait_for(conn.settings, TIMEOUT)
    if conn.h2.remote_settings.enable_connect_protocol != 1:
        raise Failure("server SETTINGS lack ENABLE_CONNECT_PROTOCOL=1")
    print("ok settings: ENABLE_CONNECT_PROTOCOL=1", flush=True)
    await case_plain_get(c)
    await case_refused(c)
    (a, _), (b, _) = await asyncio.gather(c.open_ws(), c.open_ws(True))
    if b.deflate is None:
        raise Failure("the server refused permessage-deflate")
    print("ok two WebSockets, one with permessage-deflate", flush=True)
    await asyncio.gather(scenario(a, "plain"), scenario(b, "deflate"))
    await asyncio.gather(close(a, 1000, "bye", "plain"),
                         close(b, 4000, "custom \u2713", "deflate"))
    many = await asyncio.gather(*[c.open_ws() for _ in range(20)])
    await asyncio.gather(*[roundtrip(st, "socket %d" % i, "many #%d" % i)
                           for i, (st, _) in enumerate(many)])
    await asyncio.gather(*[close(st, 1000, "", "many #%d" % i)
                           for i, (st, _) in enumerate(many)])
    print("ok 20 WebSockets at once on the connection", flush=True)
    conn.h2.close_connection()
    conn.flush()
    await writer.drain()
    writer.close()
    runner.cancel()


def main(argv):
    if len(argv) == 3 and argv[1] == "server":
        asyncio.run(serve(argv[2]))
        return 0
    if len(argv) != 5 or argv[1] != "client":
        sys.exit(__doc__)
    try:
        asyncio.run(asyncio.wait_for(client(*argv[2:5]), 60))
    except (Failure, OSError, asyncio.TimeoutError,
            h2.exceptions.H2Error) as e:
        print("FAIL %s: %s" % (type(e).__name__, e), flush=True)
        return 1
    print("all cases passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
