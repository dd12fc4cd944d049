// WebSocket echo server for bench_ws_echo: node's `ws` package, defaults
// except compression (off, as strata's client does not offer it) and the
// message limit (16 MiB, as strata's default). Every message goes back as
// it came (binary or text). It prints "PORT <n>" once it listens on
// 127.0.0.1 (port 0 picks a free one) and runs until killed.
//
//   NODE_PATH=<dir>/node_modules node echo_server.js [port]
'use strict';

const { WebSocketServer } = require('ws');

const port = Number(process.argv[2] || 0);
const wss = new WebSocketServer({
  host: '127.0.0.1',
  port,
  perMessageDeflate: false,
  maxPayload: 16 * 1024 * 1024,
  clientTracking: false,
});

wss.on('listening', () => {
  process.stdout.write(`PORT ${wss.address().port}\n`);
});

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  // A client that goes away mid-run is not the server's failure.
  ws.on('error', () => {});
});

process.on('SIGTERM', () => process.exit(0));
