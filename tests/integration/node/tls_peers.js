// Peers that speak TLS themselves, for sluice's upstream TLS tests.
//   node tls_peers.js wss-echo PORT CERT KEY    WebSocket echo server over TLS
// Prints "listening PORT" once ready. Each WebSocket client first gets a JSON
// hello naming the request URL and the SNI name the client sent (null when
// none), then every message back as it came (text or binary).
'use strict';
const fs = require('fs');
const https = require('https');
const { WebSocketServer } = require('ws');

const [mode, port, cert, key] = process.argv.slice(2);

if (mode !== 'wss-echo') {
  console.error('unknown mode ' + mode);
  process.exit(2);
}
const server = https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, (req, res) => {
  res.writeHead(200);
  res.end('plain https\n');
});
const wss = new WebSocketServer({ server, maxPayload: 64 << 20 });
wss.on('connection', (ws, req) => {
  ws.send(JSON.stringify({ hello: true, url: req.url, sni: req.socket.servername || null }));
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
server.listen(Number(port), '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`);
});
