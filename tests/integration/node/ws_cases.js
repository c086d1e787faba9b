// WebSocket cases through a proxy against peers.js ws-echo.
//   node ws_cases.js URL CASE [N]
// CASE: sizes | ping | close4001 | vanish | idle N (open N idle tunnels, print
// "open N", then keep them until stdin closes or 60 s pass).
'use strict';
const WebSocket = require('ws');
const [url, which, nArg] = process.argv.slice(2);
const out = (o) => { console.log(JSON.stringify(o)); };
// Messages are queued from the first byte on: a proxy may deliver the 101
// and the server's first message in one read, and ws then emits 'message'
// before an awaiting caller could attach a listener.
const open = (u = url) => new Promise((resolve, reject) => {
  const ws = new WebSocket(u, { maxPayload: 64 << 20 });
  ws.queue = [];
  ws.waiters = [];
  ws.on('message', (data, isBinary) => {
    const m = { data, isBinary };
    if (ws.waiters.length) ws.waiters.shift()(m); else ws.queue.push(m);
  });
  ws.once('open', () => resolve(ws));
  ws.once('error', reject);
});
const next = (ws) => new Promise((resolve) => {
  if (ws.queue.length) resolve(ws.queue.shift()); else ws.waiters.push(resolve);
});

async function main() {
  if (which === 'sizes') {
    const ws = await open();
    await next(ws);  // hello
    const results = [];
    for (const size of [1, 64 << 10, 16 << 20]) {
      for (const binary of [false, true]) {
        const buf = Buffer.alloc(size);
        for (let i = 0; i < size; i++) buf[i] = binary ? (i * 7) & 0xff : 97 + (i % 26);
        const reply = next(ws);
        ws.send(binary ? buf : buf.toString(), { binary });
        const { data, isBinary } = await reply;
        results.push({ size, binary, same: isBinary === binary && Buffer.compare(Buffer.from(data), buf) === 0 });
      }
    }
    ws.close(1000);
    out({ results });
  } else if (which === 'ping') {
    const ws = await open();
    await next(ws);
    const pong = new Promise((resolve) => ws.once('pong', (data) => resolve(data.toString())));
    ws.ping('are-you-there');
    out({ pong: await pong });
    ws.close(1000);
  } else if (which === 'close4001') {
    const ws = await open();
    await next(ws);
    const closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.send('close-4001');
    out(await closed);
  } else if (which === 'vanish') {
    // Start a large message and disappear halfway through it.
    const ws = await open();
    await next(ws);
    const frame = Buffer.alloc(1 << 20, 120);
    ws._socket.write(Buffer.from([0x82, 0xff, 0, 0, 0, 0, 0, 0x10, 0, 0, 1, 2, 3, 4]));  // masked, 1 MiB
    ws._socket.write(frame.subarray(0, 1000));
    ws._socket.destroy();
    out({ vanished: true });
  } else if (which === 'idle') {
    const n = Number(nArg);
    const sockets = [];
    for (let i = 0; i < n; i += 100) {
      const batch = [];
      for (let k = i; k < Math.min(n, i + 100); k++) batch.push(open().then((ws) => { sockets.push(ws); }));
      await Promise.all(batch);
    }
    console.log(`open ${sockets.length}`);
    const t = setTimeout(() => process.exit(0), 60000);
    process.stdin.on('end', () => { clearTimeout(t); process.exit(0); });
    process.stdin.resume();
  }
}
main().then(() => { if (which !== 'idle') process.exit(0); }, (e) => { out({ error: String(e) }); process.exit(1); });
