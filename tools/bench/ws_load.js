// WebSocket load.
//   NODE_PATH=tests/integration/node/node_modules node tools/bench/ws_load.js URL CONNS SIZE SECONDS
//     CONNS connections each send a SIZE-byte message and wait for its echo,
//     for SECONDS: prints messages/s and the p50/p99 round trip (ms) as JSON.
//   ... ws_load.js URL CONNS upgrades SECONDS
//     CONNS loops each open a WebSocket, wait for the open, close it, again:
//     prints upgrades/s.
'use strict';
const WebSocket = require('ws');
const [url, conns, size, seconds] = process.argv.slice(2);
if (size === 'upgrades') {
  let upgrades = 0;
  const end = Date.now() + Number(seconds) * 1000;
  const loop = () => {
    if (Date.now() >= end) return;
    const ws = new WebSocket(url);
    ws.on('open', () => { upgrades++; ws.terminate(); loop(); });
    ws.on('error', () => setTimeout(loop, 10));
  };
  for (let i = 0; i < Number(conns); i++) loop();
  setTimeout(() => { console.log(JSON.stringify({ upgrades_per_s: Math.round(upgrades / Number(seconds)) })); process.exit(0); },
             Number(seconds) * 1000 + 200);
  return;
}
const payload = Buffer.alloc(Number(size), 120);
const rtts = [];
let count = 0;
let open = 0;
const end = Date.now() + Number(seconds) * 1000;
const sockets = [];
for (let i = 0; i < Number(conns); i++) {
  const ws = new WebSocket(url);
  sockets.push(ws);
  let sent = 0;
  const send = () => { sent = process.hrtime.bigint(); ws.send(payload); };
  ws.on('open', () => { open++; send(); });
  ws.on('message', () => {
    count++;
    if (rtts.length < 200000) rtts.push(Number(process.hrtime.bigint() - sent) / 1e6);
    if (Date.now() < end) send();
  });
  ws.on('error', () => {});
}
setTimeout(() => {
  rtts.sort((a, b) => a - b);
  const q = (p) => (rtts.length ? rtts[Math.floor(rtts.length * p)] : 0).toFixed(2);
  console.log(JSON.stringify({ open, msgs_per_s: Math.round(count / Number(seconds)), p50: q(0.5), p99: q(0.99) }));
  for (const ws of sockets) ws.terminate();
  process.exit(0);
}, Number(seconds) * 1000 + 500);
