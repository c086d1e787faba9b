// WebSocket peers that report every close, with its time, for the drain and
// tunnel-metrics tests (test_operations.py).
//   node ws_fleet.js upstream PORT [DELAY_MS]  an echo server; prints "listening PORT",
//                                           then one JSON line per connection event:
//                                           {"event":"handshake"} / {"event":"open"} /
//                                           {"event":"close","code","t"}; with DELAY_MS
//                                           each handshake is answered after that delay
//   node ws_fleet.js clients URL N [MS]     opens N clients at once, prints
//                                           {"event":"opened","i","t"} per client and
//                                           {"event":"open","n":N} when all are open, then
//                                           {"event":"close","i","code","reason","t"} per close,
//                                           and {"event":"done"} once all closed (exits).
// Commands on the clients' stdin, one per line:
//   close I CODE     client I sends a close frame with CODE
//   vanish I         client I drops its TCP connection without a close frame
// "t" is the wall clock in milliseconds (fractional), comparable with
// Python's time.time() * 1000. The clients exit after MS (default 60000).
'use strict';
const http = require('http');
const readline = require('readline');
const WebSocket = require('ws');

const [mode, ...args] = process.argv.slice(2);
const now = () => performance.timeOrigin + performance.now();
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

if (mode === 'upstream') {
  const server = http.createServer((req, res) => { res.writeHead(200); res.end('plain http\n'); });
  // With DELAY_MS, every handshake waits that long before its 101 (printed
  // as {"event":"handshake"} when it arrives).
  const delay = Number(args[1] || 0);
  const verifyClient = (info, cb) => {
    out({ event: 'handshake', url: info.req.url, t: now() });
    setTimeout(() => cb(true), delay);
  };
  const wss = new WebSocket.WebSocketServer({ server, verifyClient });
  wss.on('connection', (ws) => {
    out({ event: 'open', t: now() });
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    ws.on('error', () => {});
    ws.on('close', (code) => out({ event: 'close', code, t: now() }));
  });
  server.listen(Number(args[0] || 0), '127.0.0.1', () => console.log(`listening ${server.address().port}`));
} else if (mode === 'clients') {
  const [url, nArg, msArg] = args;
  const n = Number(nArg);
  const sockets = [];
  let opened = 0;
  let closed = 0;
  setTimeout(() => { out({ event: 'timeout', closed }); process.exit(1); }, Number(msArg || 60000));
  for (let i = 0; i < n; i++) {
    const ws = new WebSocket(url);
    sockets.push(ws);
    ws.on('error', (e) => out({ event: 'error', i, message: String(e.message) }));
    ws.on('unexpected-response', (req, res) => { out({ event: 'refused', i, status: res.statusCode }); process.exit(1); });
    ws.once('open', () => {
      out({ event: 'opened', i, t: now() });
      if (++opened === n) out({ event: 'open', n });
    });
    ws.on('close', (code, reason) => {
      out({ event: 'close', i, code, reason: reason.toString(), t: now() });
      if (++closed === n) { out({ event: 'done' }); process.exit(0); }
    });
  }
  readline.createInterface({ input: process.stdin }).on('line', (line) => {
    const [cmd, i, code] = line.trim().split(/\s+/);
    const ws = sockets[Number(i)];
    if (!ws) return;
    if (cmd === 'close') ws.close(Number(code), 'bye');
    else if (cmd === 'vanish') ws._socket.destroy();
  });
} else {
  console.error('unknown mode ' + mode);
  process.exit(2);
}
