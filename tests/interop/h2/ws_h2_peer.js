#!/usr/bin/env node
// WebSocket-over-HTTP/2 (RFC 8441) interop peer for strata, on node's
// built-in http2 module (no package). node speaks the extended CONNECT
// (enableConnectProtocol, :protocol) but has no WebSocket framing on an
// HTTP/2 stream, so this file frames and unframes RFC 6455 by hand: a
// client masks every frame it sends, a server never does, and each side
// insists on what the other must do. Cleartext HTTP/2, prior knowledge.
//
//   node ws_h2_peer.js server PORTFILE
//       Echo server on 127.0.0.1, port 0 (written to PORTFILE). Each
//       whole message comes back as one frame, text as text, binary as
//       binary; a close is answered with its code, then the stream ends.
//   node ws_h2_peer.js client HOST PORT PATH
//       Runs the scenario against an echo server (strata's ws_h2_server),
//       printing "ok CASE" for each case; exits 1 at the first failure.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const http2 = require('http2');

const TIMEOUT = 30000; // ms for any one step
const SIZES = [0, 1, 125, 126, 127, 65535, 65536, 1 << 20];
const UTF8 = 'h\u00e9llo w\u00f6rld \u2713 \u{1f389} \u65e5\u672c\u8a9e ';
const OP = { cont: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 };

// RFC 6455 framing over one HTTP/2 stream; events go to an inbox.
class Ws {
  constructor(stream, client) {
    this.stream = stream;
    this.client = client;
    this.buf = Buffer.alloc(0);
    this.op = 0;          // opcode of the message being received
    this.parts = [];
    this.closeSent = false;
    this.inbox = [];
    this.waiter = null;
    stream.on('data', (d) => this.feed(d));
    stream.on('end', () => this.deliver({ kind: 'end' }));
    stream.on('error', (e) => this.deliver({ kind: 'error', error: e }));
  }

  deliver(item) {
    this.inbox.push(item);
    if (this.waiter) this.waiter();
  }

  // The next event, within TIMEOUT.
  next(what) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${what}: nothing came`)), TIMEOUT);
      const check = () => {
        if (!this.inbox.length) return;
        this.waiter = null;
        clearTimeout(timer);
        resolve(this.inbox.shift());
      };
      this.waiter = check;
      check();
    });
  }

  send(op, payload, fin = true) {
    const len = payload.length;
    let head;
    if (len < 126) {
      head = Buffer.from([0, len]);
    } else if (len < 65536) {
      head = Buffer.alloc(4);
      head.writeUInt16BE(len, 2);
      head[1] = 126;
    } else {
      head = Buffer.alloc(10);
      head.writeBigUInt64BE(BigInt(len), 2);
      head[1] = 127;
    }
    head[0] = (fin ? 0x80 : 0) | op;
    if (!this.client) {
      this.stream.write(Buffer.concat([head, payload]));
      return;
    }
    head[1] |= 0x80;      // a client masks every frame (RFC 6455 5.3)
    const key = crypto.randomBytes(4);
    const body = Buffer.from(payload);
    for (let i = 0; i < body.length; i++) body[i] ^= key[i & 3];
    this.stream.write(Buffer.concat([head, key, body]));
  }

  sendMessage(data, fin = true, cont = false) {
    const op = cont ? OP.cont : typeof data === 'string' ? OP.text : OP.binary;
    this.send(op, typeof data === 'string' ? Buffer.from(data) : data, fin);
  }

  close(code, reason) {
    const r = Buffer.from(reason || '');
    const p = Buffer.alloc(2 + r.length);
    p.writeUInt16BE(code, 0);
    r.copy(p, 2);
    this.closeSent = true;
    this.send(OP.close, p);
  }

  fail(why) {
    this.deliver({ kind: 'error', error: new Error(`protocol: ${why}`) });
    this.stream.close(http2.constants.NGHTTP2_PROTOCOL_ERROR);
  }

  feed(d) {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    for (;;) {
      const b = this.buf;
      if (b.length < 2) return;
      const fin = (b[0] & 0x80) !== 0, op = b[0] & 0x0f, masked = (b[1] & 0x80) !== 0;
      let len = b[1] & 0x7f, off = 2;
      if (len === 126) {
        if (b.length < 4) return;
        len = b.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (b.length < 10) return;
        len = Number(b.readBigUInt64BE(2));
        off = 10;
      }
      const keyOff = off;
      if (masked) off += 4;
      if (b.length < off + len) return;
      if (b[0] & 0x70) return this.fail('RSV bits without an extension');
      if (masked === this.client) {
        return this.fail(this.client ? 'a masked server frame' : 'an unmasked client frame');
      }
      const payload = Buffer.from(b.subarray(off, off + len));
      if (masked) for (let i = 0; i < len; i++) payload[i] ^= b[keyOff + (i & 3)];
      this.buf = b.subarray(off + len);
      this.frame(fin, op, payload);
    }
  }

  frame(fin, op, payload) {
    if (op >= 8) {
      if (!fin || payload.length > 125) return this.fail('bad control frame');
      if (op === OP.ping) return this.send(OP.pong, payload);
      if (op === OP.pong) return this.deliver({ kind: 'pong', data: payload });
      if (op !== OP.close) return this.fail(`opcode ${op}`);
      const code = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
      const reason = payload.subarray(2).toString();
      if (!this.closeSent) this.close(code === 1005 ? 1000 : code, reason);
      this.stream.end();  // both closes went: the stream ends
      return this.deliver({ kind: 'close', code, reason });
    }
    if ((op === OP.cont) === (this.op === 0)) return this.fail(`opcode ${op} out of place`);
    if (op !== OP.cont) this.op = op;
    this.parts.push(payload);
    if (!fin) return undefined;
    const data = Buffer.concat(this.parts);
    const text = this.op === OP.text;
    this.op = 0;
    this.parts = [];
    if (text) {
      try {
        new TextDecoder('utf-8', { fatal: true }).decode(data);
      } catch (e) {
        return this.fail('text is not UTF-8');
      }
    }
    return this.deliver({ kind: 'message', text, data });
  }
}

// ---- server ----

function serve(portfile) {
  const server = http2.createServer({ settings: { enableConnectProtocol: true } });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});   // a broken client must not end us
    if (headers[':method'] !== 'CONNECT' || !headers[':protocol'] ||
        headers['sec-websocket-version'] !== '13') {
      stream.respond({ ':status': 400 }, { endStream: true });
      return;
    }
    if (headers[':protocol'] !== 'websocket') {
      stream.respond({ ':status': 501 }, { endStream: true });
      return;
    }
    stream.respond({ ':status': 200 });
    const ws = new Ws(stream, false);
    ws.waiter = () => {
      while (ws.inbox.length) {
        const m = ws.inbox.shift();
        if (m.kind === 'message') ws.send(m.text ? OP.text : OP.binary, m.data);
      }
    };
  });
  server.listen(0, '127.0.0.1', () => {
    // Write then rename: the driver never reads half a port number.
    fs.writeFileSync(`${portfile}.tmp`, `${server.address().port}\n`);
    fs.renameSync(`${portfile}.tmp`, portfile);
  });
}

// ---- client ----

function textOf(n, seed) {
  const unit = UTF8 + seed;
  let s = unit.repeat(Math.floor(n / Buffer.byteLength(unit)));
  let left = n - Buffer.byteLength(s);
  for (const ch of unit) {
    if (Buffer.byteLength(ch) > left) break;
    s += ch;
    left -= Buffer.byteLength(ch);
  }
  return s + 'x'.repeat(left);
}

function bounded(promise, what) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out`)), TIMEOUT);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

function ok(name) {
  console.log(`ok ${name}`);
}

// A request and its response head (and body, for a plain one).
function request(session, headers, body) {
  const req = session.request(headers, { endStream: body !== undefined });
  const chunks = [];
  const head = new Promise((resolve, reject) => {
    req.on('response', resolve);
    req.on('error', reject);
  });
  if (body !== undefined) req.on('data', (d) => chunks.push(d));
  const ended = new Promise((resolve) => req.on('end', () => resolve(Buffer.concat(chunks))));
  return { req, head: bounded(head, `${headers[':method']} ${headers[':path']}`), ended };
}

async function openWs(session, authority, path, protocol = 'websocket') {
  const r = request(session, {
    ':method': 'CONNECT', ':protocol': protocol, ':scheme': 'http',
    ':path': path, ':authority': authority, 'sec-websocket-version': '13',
  });
  const head = await r.head;
  if (head[':status'] !== 200) return { status: head[':status'], req: r.req };
  if (head['sec-websocket-extensions']) throw new Error('an extension never offered');
  return { status: 200, req: r.req, ws: new Ws(r.req, true) };
}

async function expect(ws, want, name) {
  const text = typeof want === 'string';
  const wantBuf = text ? Buffer.from(want) : want;
  const got = await ws.next(name);
  if (got.kind !== 'message') throw new Error(`${name}: wanted an echo, got ${got.kind} ${got.error || ''}`);
  if (got.text !== text) throw new Error(`${name}: sent ${text ? 'text' : 'binary'}, echo is not`);
  if (!got.data.equals(wantBuf)) {
    throw new Error(`${name}: echo differs (sent ${wantBuf.length}, got ${got.data.length})`);
  }
}

async function roundtrip(ws, m, name) {
  ws.sendMessage(m);
  await expect(ws, m, name);
}

async function scenario(ws, name) {
  for (const n of SIZES) {
    await roundtrip(ws, textOf(n, name), `${name} text_${n}`);
    await roundtrip(ws, crypto.randomBytes(n), `${name} binary_${n}`);
  }
  ok(`${name} sizes 0 B .. 1 MiB, text and binary`);
  // one text message in fragments, a 3-byte character cut across them
  const whole = Buffer.from(UTF8.repeat(300));
  const cut = whole.indexOf(Buffer.from('\u2713')) + 1;
  ws.send(OP.text, whole.subarray(0, cut), false);
  ws.send(OP.cont, Buffer.alloc(0), false);
  ws.send(OP.cont, whole.subarray(cut), true);
  await expect(ws, whole.toString(), `${name} fragmented`);
  ok(`${name} fragmented, a character split`);
  ws.send(OP.ping, Buffer.from('strata-ping'));
  const pong = await ws.next(`${name} ping`);
  if (pong.kind !== 'pong' || pong.data.toString() !== 'strata-ping') {
    throw new Error(`${name} ping: got ${pong.kind}`);
  }
  ok(`${name} ping_pong`);
  const sent = [];
  for (let i = 0; i < 100; i++) {
    const m = i % 2 ? textOf(i * 37, i) : crypto.randomBytes(i * 101);
    sent.push(m);
    ws.sendMessage(m);
  }
  for (let i = 0; i < sent.length; i++) await expect(ws, sent[i], `${name} pipelined #${i}`);
  ok(`${name} pipelined`);
}

async function closeWith(s, code, reason, name, quiet) {
  const closed = new Promise((resolve) => s.req.on('close', resolve));
  s.ws.close(code, reason);
  const got = await s.ws.next(`${name} close`);
  if (got.kind !== 'close' || got.code !== code) { // the reason is the server's own
    throw new Error(`${name}: server answered ${got.kind} ${got.code}, wanted ${code}`);
  }
  const end = await s.ws.next(`${name} end_stream`);
  if (end.kind !== 'end') throw new Error(`${name}: after the close, ${end.kind} ${end.error || ''}`);
  await bounded(closed, `${name} stream close`);
  if (s.req.rstCode !== http2.constants.NGHTTP2_NO_ERROR) {
    throw new Error(`${name}: stream reset with ${s.req.rstCode}`);
  }
  if (!quiet) ok(`${name} close_${code}, END_STREAM both ways`);
}

async function client(host, port, path) {
  const authority = `${host}:${port}`;
  const session = http2.connect(`http://${authority}`);
  session.on('error', (e) => { console.log(`FAIL session: ${e.message}`); process.exit(1); });
  const settings = await bounded(new Promise((resolve) => session.once('remoteSettings', resolve)),
                                 'server SETTINGS');
  if (!settings.enableConnectProtocol) throw new Error('server SETTINGS lack ENABLE_CONNECT_PROTOCOL=1');
  ok('settings: ENABLE_CONNECT_PROTOCOL=1');

  const get = request(session, { ':method': 'GET', ':path': '/' }, null);
  const head = await get.head;
  const body = await bounded(get.ended, 'plain GET body');
  if (head[':status'] !== 200 || body.length === 0) {
    throw new Error(`plain GET: ${head[':status']}, ${body.length} bytes`);
  }
  ok(`plain_get: 200, ${JSON.stringify(body.toString().slice(0, 40))}`);

  const refused = await openWs(session, authority, path, 'not-websocket');
  if (refused.status !== 501) throw new Error(`refused: got ${refused.status}, wanted 501`);
  ok('refused_501');

  const [a, b] = await Promise.all([openWs(session, authority, path), openWs(session, authority, path)]);
  if (a.status !== 200 || b.status !== 200) throw new Error(`open: ${a.status} ${b.status}`);
  ok('two WebSockets open');
  await Promise.all([scenario(a.ws, 'a'), scenario(b.ws, 'b')]);
  await Promise.all([closeWith(a, 1000, 'bye', 'a'), closeWith(b, 4000, 'custom \u2713', 'b')]);

  const many = await Promise.all(Array.from({ length: 20 }, () => openWs(session, authority, path)));
  await Promise.all(many.map((s, i) => roundtrip(s.ws, `socket ${i}`, `many #${i}`)));
  await Promise.all(many.map((s, i) => closeWith(s, 1000, '', `many #${i}`, true)));
  ok('20 WebSockets at once on the connection');
  await bounded(new Promise((resolve) => session.close(resolve)), 'GOAWAY');
}

function main(argv) {
  if (argv[0] === 'server' && argv.length === 2) return serve(argv[1]);
  if (argv[0] !== 'client' || argv.length !== 4) {
    console.error('usage: ws_h2_peer.js server PORTFILE | client HOST PORT PATH');
    process.exit(2);
  }
  setTimeout(() => {
    console.log('FAIL: scenario took over 60 s');
    process.exit(1);
  }, 60000).unref();
  return client(argv[1], argv[2], argv[3]).then(() => {
    console.log('all cases passed');
    process.exit(0);
  }, (e) => {
    console.log(`FAIL ${e.message}`);
    process.exit(1);
  });
}

main(process.argv.slice(2));
