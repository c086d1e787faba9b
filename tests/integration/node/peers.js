// Real WebSocket / Socket.IO peers for sluice's integration tests.
//   node peers.js ws-echo PORT                       WebSocket echo server
//   node peers.js sio-server PORT NAME [PING_INTERVAL_MS PING_TIMEOUT_MS]
//   node peers.js sio-client URL TRANSPORTS COUNT [PATH] [EXTRA_WAIT_MS]
// Servers print "listening PORT" once ready. The client prints one JSON line
// with what happened and exits 0 when every event came back in order.
'use strict';
const http = require('http');

const [mode, ...args] = process.argv.slice(2);

function listen(server, port) {
  server.listen(Number(port), '127.0.0.1', () => {
    console.log(`listening ${server.address().port}`);
  });
}

if (mode === 'ws-echo') {
  const { WebSocketServer } = require('ws');
  const server = http.createServer((req, res) => { res.writeHead(200); res.end('plain http\n'); });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws, req) => {
    ws.send(JSON.stringify({ hello: true, url: req.url, headers: req.headers }));
    ws.on('message', (data, isBinary) => {
      const text = isBinary ? null : data.toString();
      if (text === 'close-1000') return ws.close(1000, 'bye');
      if (text === 'close-4001') return ws.close(4001, 'custom reason');
      if (text === 'die') return ws.terminate();   // TCP close, no close frame
      ws.send(data, { binary: isBinary });
    });
  });
  listen(server, args[0]);
} else if (mode === 'sio-server') {
  const { Server } = require('socket.io');
  const [port, name, pingInterval, pingTimeout] = args;
  const server = http.createServer((req, res) => { res.writeHead(404); res.end(); });
  const io = new Server(server, {
    pingInterval: Number(pingInterval || 25000),
    pingTimeout: Number(pingTimeout || 20000),
    cors: { origin: true },
  });
  io.on('connection', (socket) => {
    socket.emit('welcome', { server: name, transport: socket.conn.transport.name });
    socket.on('echo', (payload, ack) => {
      const reply = { server: name, payload, transport: socket.conn.transport.name };
      if (typeof ack === 'function') ack(reply); else socket.emit('echo', reply);
    });
  });
  listen(server, port);
} else if (mode === 'sio-client') {
  const { io } = require('socket.io-client');
  const [url, transports, count, path, extraWait] = args;
  const socket = io(url, {
    transports: transports.split(','),
    path: path || '/socket.io',
    reconnection: false,
    timeout: 10000,
    extraHeaders: { 'X-Test': 'sluice' },
  });
  const result = { connected: false, received: 0, in_order: true, servers: [], transports: [], errors: [] };
  const done = (code) => { console.log(JSON.stringify(result)); socket.close(); process.exit(code); };
  const timer = setTimeout(() => { result.errors.push('timeout'); done(1); }, 60000);
  socket.on('connect_error', (err) => { result.errors.push(String(err && err.message)); clearTimeout(timer); done(1); });
  socket.on('disconnect', (reason) => { if (result.received < Number(count)) result.errors.push('disconnect: ' + reason); });
  socket.on('connect', async () => {
    result.connected = true;
    const n = Number(count);
    // Let an upgrade to WebSocket happen before counting transports.
    await new Promise((r) => setTimeout(r, 300));
    for (let i = 0; i < n; i++) {
      const reply = await socket.timeout(10000).emitWithAck('echo', i).catch((e) => ({ error: String(e) }));
      if (reply.error) { result.errors.push(reply.error); break; }
      if (reply.payload !== i) result.in_order = false;
      result.received++;
      if (!result.servers.includes(reply.server)) result.servers.push(reply.server);
      if (!result.transports.includes(reply.transport)) result.transports.push(reply.transport);
    }
    if (Number(extraWait || 0) > 0) {
      await new Promise((r) => setTimeout(r, Number(extraWait)));
      const reply = await socket.timeout(10000).emitWithAck('echo', 'after-wait').catch((e) => ({ error: String(e) }));
      if (reply.error) result.errors.push('after wait: ' + reply.error);
      else result.received_after_wait = true;
    }
    result.final_transport = socket.io.engine.transport.name;
    clearTimeout(timer);
    done(result.errors.length === 0 && result.in_order && result.received === n ? 0 : 1);
  });
} else {
  console.error('unknown mode ' + mode);
  process.exit(2);
}
