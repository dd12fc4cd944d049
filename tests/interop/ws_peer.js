#!/usr/bin/env node
// WebSocket interop peer for strata, on node's `ws` package (v8; found
// through NODE_PATH, installed by run_ws.sh).
//
//   node ws_peer.js server PORTFILE [--deflate|--no-deflate]
//       Echo server on 127.0.0.1, port 0; writes its port to PORTFILE. Text
//       comes back as text, binary as binary; `ws` answers a close with the
//       client's code and reason. Accepts subprotocol strata.test.
//   node ws_peer.js client URL [--deflate|--no-deflate]
//       Runs the scenario against an echo server at URL, printing
//       "ok CASE" for each case; exits 1 at the first failure.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const { WebSocket, WebSocketServer } = require('ws');

const SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20, 16 << 20];
const PROTOCOL = 'strata.test';
const MAX_PAYLOAD = 32 << 20; // above the largest message of the scenario
const TIMEOUT = 60000;        // ms for any one step
const UTF8 = 'h\u00e9llo w\u00f6rld \u2713 \u{1f389} \u65e5\u672c\u8a9e ';

// ---- server ----

function serve(portfile, deflate) {
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    perMessageDeflate: deflate,
    maxPayload: MAX_PAYLOAD,
    handleProtocols: (offered) => (offered.has(PROTOCOL) ? PROTOCOL : false),
  });
  wss.on('listening', () => {
    // Write then rename: the driver never reads half a port number.
    fs.writeFileSync(portfile + '.tmp', `${wss.address().port}\n`);
    fs.renameSync(portfile + '.tmp', portfile);
  });
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    ws.on('error', () => {}); // a broken client must not end the server
  });
}

// ---- client ----

// A step that must finish within TIMEOUT.
function bounded(promise, what) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out`)), TIMEOUT);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

// A connection with a queue of received messages and pongs.
function connect(url, deflate, protocols) {
  const ws = new WebSocket(url, protocols || [], {
    perMessageDeflate: deflate,
    maxPayload: MAX_PAYLOAD,
  });
  const inbox = [];
  let waiter = null;
  let failure = null;
  const deliver = (item) => {
    inbox.push(item);
    if (waiter) waiter();
  };
  ws.on('message', (data, isBinary) => deliver({ kind: 'message', data, isBinary }));
  ws.on('pong', (data) => deliver({ kind: 'pong', data }));
  ws.on('close', (code, reason) => deliver({ kind: 'close', code, reason: reason.toString() }));
  ws.on('error', (e) => {
    failure = e;
    if (waiter) waiter();
  });
  ws.next = (what) => bounded(new Promise((resolve, reject) => {
    const check = () => {
      if (inbox.length) { waiter = null; resolve(inbox.shift()); }
      else if (failure) { waiter = null; reject(failure); }
    };
    waiter = check;
    check();
  }), what);
  const opened = new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
  return bounded(opened, `connect ${url}`);
}

function textOf(n) {
  const unit = 'strata websocket interop 0123456789 ';
  return unit.repeat(Math.floor(n / unit.length) + 1).slice(0, n);
}

function describe(isBinary, len) {
  return `${isBinary ? 'binary' : 'text'} of ${len}`;
}

async function expect(ws, want, name) {
  const isBinary = typeof want !== 'string';
  const wantBuf = isBinary ? want : Buffer.from(want, 'utf8');
  const got = await ws.next(name);
  if (got.kind !== 'message') {
    throw new Error(`${name}: expected a message, got ${got.kind} ${got.code || ''}`);
  }
  if (got.isBinary !== isBinary) {
    throw new Error(`${name}: sent ${describe(isBinary, wantBuf.length)}, ` +
                    `got ${describe(got.isBinary, got.data.length)}`);
  }
  if (!got.data.equals(wantBuf)) {
    throw new Error(`${name}: echo differs (sent ${wantBuf.length} bytes, ` +
                    `got ${got.data.length})`);
  }
}

function ok(name) {
  console.log(`ok ${name}`);
}

async function roundtrip(ws, message, name) {
  ws.send(message, { binary: typeof message !== 'string' });
  await expect(ws, message, name);
  ok(name);
}

async function sizes(ws) {
  for (const n of SIZES) {
    await roundtrip(ws, textOf(n), `text_${n}`);
    await roundtrip(ws, crypto.randomBytes(n), `binary_${n}`);
  }
}

async function utf8(ws) {
  await roundtrip(ws, UTF8, 'utf8_short');
  // Long enough that reads split multi-byte characters somewhere.
  await roundtrip(ws, UTF8.repeat(20000), 'utf8_long');
}

// Send parts as the fragments of one message (fin only on the last).
function sendFragments(ws, parts, binary) {
  parts.forEach((p, i) => ws.send(p, { binary, fin: i === parts.length - 1 }));
}

async function fragmented(ws) {
  const text = ['frag', '', 'mented ', UTF8, ''];
  sendFragments(ws, text, false);
  await expect(ws, text.join(''), 'fragmented_text');
  ok('fragmented_text');
  const bin = [crypto.randomBytes(100000), crypto.randomBytes(1), crypto.randomBytes(70000)];
  sendFragments(ws, bin, true);
  await expect(ws, Buffer.concat(bin), 'fragmented_binary');
  ok('fragmented_binary');
}

async function expectPong(ws, payload) {
  const got = await ws.next('pong');
  if (got.kind !== 'pong' || !got.data.equals(payload)) {
    throw new Error(`ping: wanted a pong of ${payload.length} bytes, got ${got.kind}`);
  }
}

async function pings(ws) {
  for (const payload of [Buffer.from('strata-ping'), Buffer.alloc(0), crypto.randomBytes(125)]) {
    ws.ping(payload);
    await expectPong(ws, payload);
  }
  // A ping between messages must not disturb the echo order; the pong may
  // come before or after the first echo.
  ws.send('before ping');
  ws.ping(Buffer.from('between'));
  ws.send(Buffer.from('after ping'));
  const seen = [await ws.next('ping_order'), await ws.next('ping_order'), await ws.next('ping_order')];
  const msgs = seen.filter((x) => x.kind === 'message');
  if (seen.filter((x) => x.kind === 'pong').length !== 1 || msgs.length !== 2 ||
      msgs[0].isBinary || msgs[0].data.toString() !== 'before ping' ||
      !msgs[1].isBinary || msgs[1].data.toString() !== 'after ping') {
    throw new Error(`ping_order: got ${JSON.stringify(seen.map((x) => x.kind))}`);
  }
  ok('ping_pong');
}

async function pipelined(ws) {
  const sent = [];
  for (let i = 0; i < 200; i++) {
    const m = i % 2 ? textOf(i * 37) : crypto.randomBytes(i * 101);
    sent.push(m);
    ws.send(m, { binary: typeof m !== 'string' });
  }
  for (let i = 0; i < sent.length; i++) await expect(ws, sent[i], `pipelined #${i}`);
  ok('pipelined');
}

async function closeWith(url, deflate, code, reason) {
  const name = `close_${code}`;
  const ws = await connect(url, deflate);
  await roundtrip(ws, 'last words', `${name}_echo`);
  ws.close(code, reason);
  const got = await ws.next(name);
  if (got.kind !== 'close' || got.code !== code || got.reason !== reason) {
    throw new Error(`${name}: server answered ${got.kind} ${got.code} ` +
                    `${JSON.stringify(got.reason)}, wanted ${code} ${JSON.stringify(reason)}`);
  }
  ok(name);
}

async function scenario(url, deflate) {
  const ws = await connect(url, deflate);
  if (deflate !== /permessage-deflate/.test(ws.extensions)) {
    throw new Error(`deflate: wanted ${deflate}, negotiated '${ws.extensions}'`);
  }
  ok(`deflate_${deflate ? 'on' : 'off'}`);
  await sizes(ws);
  await utf8(ws);
  await fragmented(ws);
  await pings(ws);
  await pipelined(ws);
  ws.close(1000);
  await ws.next('close');

  const sub = await connect(url, deflate, ['other', PROTOCOL]);
  if (sub.protocol !== PROTOCOL) {
    throw new Error(`subprotocol: got '${sub.protocol}', wanted '${PROTOCOL}'`);
  }
  await roundtrip(sub, 'with a subprotocol', 'subprotocol');
  sub.close(1000);
  await sub.next('close');

  await closeWith(url, deflate, 1000, 'bye');
  await closeWith(url, deflate, 4000, 'custom reason \u2713');
}

function main(argv) {
  const [mode, target] = argv;
  const deflate = !argv.includes('--no-deflate');
  if (!target || (mode !== 'server' && mode !== 'client')) {
    console.error('usage: ws_peer.js server PORTFILE|client URL [--deflate|--no-deflate]');
    process.exit(2);
  }
  if (mode === 'server') return serve(target, deflate);
  setTimeout(() => {
    console.log('FAIL: scenario took over 280 s');
    process.exit(1);
  }, 280000).unref();
  scenario(target, deflate).then(() => {
    console.log('all cases passed');
    process.exit(0);
  }, (e) => {
    console.log(`FAIL ${e.message}`);
    process.exit(1);
  });
}

main(process.argv.slice(2));
