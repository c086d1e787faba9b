// Many Socket.IO clients at once, each echoing a few events.
//   node sio_many.js URL TRANSPORTS CLIENTS EVENTS
// Prints one JSON line: how many clients finished, the errors seen, and the
// servers that answered. Exits 0 when every client echoed every event.
'use strict';
const { io } = require('socket.io-client');
const [url, transports, clients, events] = process.argv.slice(2);
const result = { ok: 0, errors: [], servers: {} };
let pending = Number(clients);
const finish = () => { console.log(JSON.stringify(result)); process.exit(result.ok === Number(clients) ? 0 : 1); };
setTimeout(() => { result.errors.push('timeout'); finish(); }, 60000);
for (let c = 0; c < Number(clients); c++) {
  const socket = io(url, { transports: transports.split(','), reconnection: false, forceNew: true, timeout: 20000 });
  socket.on('connect_error', (e) => { result.errors.push(String(e.message)); socket.close(); if (--pending === 0) finish(); });
  socket.on('disconnect', (reason) => { if (reason !== 'io client disconnect') result.errors.push('disconnect: ' + reason); });
  socket.on('connect', async () => {
    let good = true;
    for (let i = 0; i < Number(events); i++) {
      const reply = await socket.timeout(15000).emitWithAck('echo', `${c}-${i}`).catch((e) => ({ error: String(e) }));
      if (reply.error || reply.payload !== `${c}-${i}`) { good = false; result.errors.push(reply.error || 'mismatch'); break; }
      result.servers[reply.server] = (result.servers[reply.server] || 0) + 1;
    }
    if (good) result.ok++;
    socket.close();
    if (--pending === 0) finish();
  });
}
