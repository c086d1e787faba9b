// A WebSocket client for the tunnel tests.
//   node ws_client.js URL SCRIPT
// SCRIPT is JSON: {"send": [...], "binary_mb": N, "origin": "...", "wait_close": true}
// Prints one JSON line: messages received, close code/reason, errors.
'use strict';
const WebSocket = require('ws');
const [url, scriptText] = process.argv.slice(2);
const script = JSON.parse(scriptText || '{}');
const headers = script.origin ? { Origin: script.origin } : {};
const ws = new WebSocket(url, { headers, maxPayload: 64 << 20 });
const result = { opened: false, messages: [], binary_ok: null, close_code: null, close_reason: null, errors: [], status: null };
const finish = () => { console.log(JSON.stringify(result)); process.exit(0); };
setTimeout(() => { result.errors.push('timeout'); finish(); }, Number(script.timeout_ms || 20000));
ws.on('unexpected-response', (req, res) => { result.status = res.statusCode; result.sluice_error = res.headers['sluice-error'] || null; finish(); });
ws.on('error', (e) => result.errors.push(e.message));
let binary = null;
ws.on('open', () => {
  result.opened = true;
  for (const m of script.send || []) ws.send(m);
  if (script.binary_mb) {
    binary = Buffer.alloc(script.binary_mb << 20);
    for (let i = 0; i < binary.length; i++) binary[i] = (i * 31) & 0xff;
    ws.send(binary);
  }
});
ws.on('message', (data, isBinary) => {
  if (isBinary) { result.binary_ok = binary !== null && Buffer.compare(data, binary) === 0; }
  else result.messages.push(data.toString().slice(0, 4000));
  if (!script.wait_close && result.messages.length >= (script.expect || 0) + 1 && (!script.binary_mb || result.binary_ok !== null)) ws.close(1000, 'done');
});
ws.on('close', (code, reason) => { result.close_code = code; result.close_reason = reason.toString(); finish(); });
