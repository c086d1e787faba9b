// Realtime traffic for tools/soak: WebSocket echo clients and Socket.IO
// clients (polling only, and polling upgraded to WebSocket) that send
// sequenced messages and check that every echo comes back, in order.
//   node soak_clients.js CONFIG_JSON
// CONFIG: {"base": "http://127.0.0.1:PORT", "ws_url": "ws://127.0.0.1:PORT/ws/soak",
//          "duration_ms": N, "ws": N, "sio_polling": N, "sio_websocket": N,
//          "interval_ms": 200, "life_ms": [5000, 30000], "big_every": 50}
// Each of the N slots of a kind runs one session after another: a session
// lives a random time within life_ms, sends a message every interval_ms
// (every big_every-th one 64 KiB), then stops sending, waits for its
// outstanding echoes and closes cleanly. After duration_ms no new session
// starts and the running ones finish the same way.
// Prints {"status": {...}} every 5 s and {"final": {...}} at the end, per
// kind: sessions, sent, received, lost, out_of_order, errors; exits 0 when no
// message was lost or reordered and no session failed.
'use strict';
const WebSocket = require('ws');
const { io } = require('socket.io-client');

const cfg = JSON.parse(process.argv[2]);
const started = Date.now();
const newStats = () => ({ sessions: 0, finished: 0, open: 0, sent: 0, received: 0, lost: 0,
                          out_of_order: 0, error_count: 0, errors: [], upgraded: 0 });
const kinds = { ws: newStats(), sio_polling: newStats(), sio_websocket: newStats() };
let stopping = false;
let live = 0;

const rand = ([lo, hi]) => lo + Math.random() * (hi - lo);
const report = (st, msg) => {
  st.error_count++;
  if (st.errors.length < 20) st.errors.push(`${((Date.now() - started) / 1000).toFixed(1)}s ${msg}`);
};
const payload = (id, seq) => {
  const big = cfg.big_every && seq % cfg.big_every === cfg.big_every - 1;
  return `${id}:${seq}:` + (big ? 'x'.repeat(65536) : '');
};

// Checks one echo against the session's next expected sequence number.
function check(st, s, text) {
  const [id, seqText] = text.split(':', 2);
  const seq = Number(seqText);
  if (id !== s.id || seq !== s.expected) {
    st.out_of_order++;
    report(st, `${s.id}: got ${text.slice(0, 40)}, expected seq ${s.expected}`);
  }
  s.expected = Math.max(s.expected, seq + 1);
  st.received++;
}

// The common life of a session: tick() sends, finish() drains and closes,
// end() accounts for what never came back and starts the next session.
function session(kind, slot, open) {
  const st = kinds[kind];
  const s = { id: `${kind}${slot}-${st.sessions++}`, seq: 0, expected: 0, closing: false, ended: false, opened: false };
  live++;
  const life = rand(cfg.life_ms);
  let born = Date.now();
  let timer = null;
  s.onOpen = () => {
    s.opened = true;
    born = Date.now();
    st.open++;
    timer = setInterval(() => {
      if (stopping || Date.now() - born > life) { s.finish(); return; }
      s.send(payload(s.id, s.seq++));
      st.sent++;
    }, cfg.interval_ms * (0.75 + Math.random() / 2));
  };
  s.finish = () => {
    if (s.closing) return;
    s.closing = true;
    clearInterval(timer);
    if (s.expected >= s.seq) s.close();
    else s.drainTimer = setTimeout(() => s.close(), 15000);
  };
  s.echoed = (text) => {
    check(st, s, text);
    if (s.closing && s.expected >= s.seq) { clearTimeout(s.drainTimer); s.close(); }
  };
  s.end = (why) => {
    if (s.ended) return;
    s.ended = true;
    clearInterval(timer);
    clearTimeout(s.drainTimer);
    if (s.opened) st.open--;
    st.finished++;
    const lost = s.seq - s.expected;
    if (lost > 0) { st.lost += lost; report(st, `${s.id}: ${lost} of ${s.seq} lost (${why})`); }
    if (!s.closing) report(st, `${s.id}: ended before it finished: ${why}`);
    live--;
    if (!stopping) setTimeout(() => session(kind, slot, open), 50 + Math.random() * 200);
    else if (live === 0) done();
  };
  open(s, st);
}

function openWebSocket(s, st) {
  const ws = new WebSocket(cfg.ws_url, { maxPayload: 16 << 20 });
  let hello = false;
  s.send = (m) => ws.send(m);
  s.close = () => { if (ws.readyState === WebSocket.OPEN) ws.close(1000, 'done'); };
  ws.on('open', s.onOpen);
  ws.on('message', (data) => {
    if (!hello) { hello = true; return; }  // the echo server's greeting
    s.echoed(data.toString());
  });
  ws.on('error', (e) => report(st, `${s.id}: ${e.message}`));
  ws.on('close', (code) => s.end(`close ${code}`));
}

function openSocketIO(transports) {
  return (s, st) => {
    const socket = io(cfg.base, { transports, reconnection: false, forceNew: true, timeout: 20000 });
    s.send = (m) => socket.emit('echo', m);   // no ack: the server emits 'echo' back
    s.close = () => {
      if (socket.io.engine && socket.io.engine.transport && socket.io.engine.transport.name === 'websocket') st.upgraded++;
      socket.disconnect();
      s.end('io client disconnect');
    };
    socket.on('connect', s.onOpen);
    socket.on('echo', (reply) => s.echoed(String(reply.payload)));
    socket.on('connect_error', (e) => { report(st, `${s.id}: connect_error ${e.message}`); s.end('connect_error'); });
    socket.on('disconnect', (reason) => { if (reason !== 'io client disconnect') s.end(`disconnect: ${reason}`); });
  };
}

const summary = () => ({ t: Math.round((Date.now() - started) / 1000), live, kinds });
const status = setInterval(() => console.log(JSON.stringify({ status: summary() })), 5000);

function done() {
  clearInterval(status);
  console.log(JSON.stringify({ final: summary() }));
  const bad = Object.values(kinds).some((k) => k.lost || k.out_of_order || k.error_count);
  process.exit(bad ? 1 : 0);
}

setTimeout(() => {
  stopping = true;
  if (live === 0) done();
  // Sessions get their drain time (15 s) and then some.
  setTimeout(() => { report(kinds.ws, `sessions still open 30 s after the end: ${live}`); done(); }, 30000);
}, cfg.duration_ms);

for (let i = 0; i < (cfg.ws || 0); i++) session('ws', i, openWebSocket);
for (let i = 0; i < (cfg.sio_polling || 0); i++) session('sio_polling', i, openSocketIO(['polling']));
for (let i = 0; i < (cfg.sio_websocket || 0); i++) session('sio_websocket', i, openSocketIO(['polling', 'websocket']));
