"""An upstream that misbehaves on command, for sluice's fault-injection tests
(test_faults.py). Raw asyncio streams, so that every byte and every close is
the test's choice; backends.py covers the well-behaved and the simpler bad cases.

    /usr/bin/python3 faulty_upstream.py [PORT]

Prints "listening PORT" when ready. Keep-alive HTTP/1.1; what it answers
depends on the path:

  /head-cut[?rst=1]       half a status line and headers, then FIN (or RST)
  /body-cut?cl=N&send=M   promises N bytes (Content-Length), sends M, then FIN
                          (&rst=1: RST)
  /chunk-cut              a chunked body whose second chunk (size 0x64) is cut
                          after 10 bytes, then FIN (&rst=1: RST)
  /chunk-bad[?after=1]    a chunk size that is not hex ("zz"); with after=1 a
                          good chunk comes first
  /garbage?kind=K         K = binary (random bytes), status (a status code
                          that is not a number), version (HTTP/9.9), huge-status
                          (a 5-digit status), header (a header line without
                          a colon), nul (a NUL byte in a header value)
  /endless-head?mb=N      a status line, then N MiB (default 64) of header
                          lines, never ending the head: a proxy must not buffer it
  /interim?n=N            N interim responses (100 Continue and 103 Early Hints
                          with Link headers, alternating), then 200 "final\\n"
  /overlong?gap_ms=G      Content-Length: 5 and "hello", followed by a complete
                          second response ("SMUGGLED"): in the same write, or
                          after G ms. A proxy must not deliver "SMUGGLED" to
                          anyone, nor reuse the connection.
  /ws?then=T              a WebSocket handshake answered 101; the server sends
                          the text frame "hello", then T: close (FIN, no close
                          frame), rst, midframe (half a frame, then FIN), echo
                          (echoes frames until the peer closes), or hold (reads
                          frames without answering them); a close frame from
                          the peer is answered with the same code
  /no-body?code=C         a C response (204 or 304) that declares Content-Length: 5
                          but, as RFC 9110 says, has no body
  /hold?ms=M              answers 200 "held\\n" after M ms
  /raw?b64=B[&then=T]     writes exactly the bytes base64url B decodes to, then
                          T: keep (default: read the next request), close (FIN),
                          or hold (keep the connection, read nothing more)
  anything else           200, JSON: {"conn": connection number, "n": request
                          number on that connection, "path": target}

Control requests (not counted as traffic):
  /_ctl/stats             {"connections", "open", "requests", "peer_closed",
                           "events": [...]}: TCP connections accepted, still
                           open, request heads received, connections the peer
                           closed first, and the last 200 events, each "WHAT CONN
                           [DETAIL]": peer-closed, overlong-sent, ws-open,
                           ws-close-frame (DETAIL: the peer's close code),
                           ws-peer-gone, endless-head-stopped (DETAIL: bytes sent)
"""

import asyncio
import base64
import hashlib
import json
import os
import socket
import struct
import sys
import urllib.parse

STATS = {"connections": 0, "open": 0, "requests": 0, "peer_closed": 0}
EVENTS = []
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC11B65"


def event(text):
    EVENTS.append(text)
    del EVENTS[:-200]


def reply(status, body, headers=(), reason="OK"):
    head = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def rst(writer):
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


async def read_head(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if line:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
    return method, target, headers


async def skip_body(reader, headers):
    n = int(headers.get("content-length") or 0)
    if n:
        await reader.readexactly(n)
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            if size == 0:
                while await reader.readline() not in (b"\r\n", b""):
                    pass
                return
            await reader.readexactly(size + 2)


def ws_frame(payload, opcode=1):
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + payload


async def ws_read_frame(reader):
    b0, b1 = await reader.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", await reader.readexactly(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", await reader.readexactly(8))[0]
    mask = await reader.readexactly(4) if b1 & 0x80 else b"\0\0\0\0"
    data = bytearray(await reader.readexactly(n))
    for i in range(n):
        data[i] ^= mask[i % 4]
    return b0 & 0x0F, bytes(data)


async def websocket(reader, writer, headers, then, conn_id):
    key = headers.get("sec-websocket-key", "")
    accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
    writer.write(f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode() + ws_frame(b"hello"))
    await writer.drain()
    event(f"ws-open {conn_id}")
    if then == "close":
        return
    if then == "rst":
        rst(writer)
        return
    if then == "midframe":
        writer.write(ws_frame(b"x" * 1000)[:300])
        await writer.drain()
        return
    try:
        while True:
            opcode, data = await ws_read_frame(reader)
            if opcode == 8:
                event(f"ws-close-frame {conn_id} {struct.unpack('!H', data[:2])[0] if len(data) >= 2 else 0}")
                writer.write(ws_frame(data[:2], 8))
                await writer.drain()
                return
            if then == "echo":
                writer.write(ws_frame(data, opcode))
                await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        event(f"ws-peer-gone {conn_id}")
        raise


async def handle(reader, writer):
    STATS["connections"] += 1
    conn_id = STATS["connections"]
    counted = True
    STATS["open"] += 1
    n = 0
    peer_closed = False
    try:
        while True:
            try:
                method, target, headers = await read_head(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                peer_closed = True
                return
            url = urllib.parse.urlsplit(target)
            q = dict(urllib.parse.parse_qsl(url.query))
            path = url.path
            if path == "/_ctl/stats":
                if counted and n == 0:
                    counted = False
                    STATS["connections"] -= 1
                    STATS["open"] -= 1
                body = json.dumps({**STATS, "events": EVENTS}).encode()
                writer.write(reply(200, body, ["Connection: close"]))
                await writer.drain()
                return
            n += 1
            STATS["requests"] += 1
            await skip_body(reader, headers)
            if path == "/head-cut":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: te")
                await writer.drain()
                if q.get("rst"):
                    rst(writer)
                return
            if path == "/body-cut":
                cl, send = int(q.get("cl", "100000")), int(q.get("send", "5000"))
                writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {cl}\r\n\r\n".encode() + b"b" * send)
                await writer.drain()
                if q.get("rst"):
                    rst(writer)
                return
            if path == "/chunk-cut":
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                             b"5\r\nfirst\r\n64\r\n" + b"c" * 10)
                await writer.drain()
                if q.get("rst"):
                    rst(writer)
                return
            if path == "/chunk-bad":
                good = b"5\r\nfirst\r\n" if q.get("after") else b""
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + good +
                             b"zz\r\nhello\r\n0\r\n\r\n")
                await writer.drain()
                await asyncio.sleep(0.5)   # whatever sluice does, it must not wait for more
                return
            if path == "/garbage":
                kind = q.get("kind", "binary")
                data = {
                    "binary": os.urandom(4096),
                    "status": b"HTTP/1.1 abc OK\r\nContent-Length: 2\r\n\r\nok",
                    "version": b"HTTP/9.9 200 OK\r\nContent-Length: 2\r\n\r\nok",
                    "huge-status": b"HTTP/1.1 20000 OK\r\nContent-Length: 2\r\n\r\nok",
                    "header": b"HTTP/1.1 200 OK\r\nthis line has no colon\r\nContent-Length: 2\r\n\r\nok",
                    "nul": b"HTTP/1.1 200 OK\r\nX-Bad: a\0b\r\nContent-Length: 2\r\n\r\nok",
                }[kind]
                writer.write(data)
                await writer.drain()
                await asyncio.sleep(0.5)
                return
            if path == "/endless-head":
                writer.write(b"HTTP/1.1 200 OK\r\n")
                line = b"X-Fill: " + b"f" * 1000 + b"\r\n"
                sent = 0
                try:
                    while sent < int(q.get("mb", "64")) << 20:
                        writer.write(line * 64)
                        sent += len(line) * 64
                        await writer.drain()
                finally:
                    event(f"endless-head-stopped {conn_id} {sent}")
                return
            if path == "/interim":
                out = bytearray()
                for i in range(int(q.get("n", "500"))):
                    if i % 2:
                        out += b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n"
                    else:
                        out += b"HTTP/1.1 100 Continue\r\n\r\n"
                    if len(out) > 8192:
                        writer.write(bytes(out))
                        out.clear()
                        await writer.drain()
                writer.write(bytes(out) + reply(200, b"final\n"))
                await writer.drain()
                continue
            if path == "/no-body":
                code = int(q.get("code", "304"))
                writer.write(f"HTTP/1.1 {code} No Body\r\nContent-Length: 5\r\n\r\n".encode())
                await writer.drain()
                continue
            if path == "/overlong":
                first = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
                smuggled = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nSMUGGLED"
                gap = int(q.get("gap_ms", "0"))
                if gap:
                    writer.write(first)
                    await writer.drain()
                    await asyncio.sleep(gap / 1000)
                    writer.write(smuggled)
                else:
                    writer.write(first + smuggled)
                await writer.drain()
                event(f"overlong-sent {conn_id}")
                continue
            if path == "/ws":
                await websocket(reader, writer, headers, q.get("then", "close"), conn_id)
                return
            if path in ("/raw", "/raw/"):
                writer.write(base64.urlsafe_b64decode(q["b64"]))
                await writer.drain()
                then = q.get("then", "keep")
                if then == "close":
                    return
                if then == "hold":
                    await reader.read()   # until the peer goes
                    return
                continue
            if path == "/hold":
                await asyncio.sleep(int(q.get("ms", "1000")) / 1000)
                writer.write(reply(200, b"held\n"))
                await writer.drain()
                continue
            writer.write(reply(200, json.dumps({"conn": conn_id, "n": n, "path": target}).encode(),
                               ["Content-Type: application/json"]))
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        peer_closed = True
    finally:
        if peer_closed and counted:
            STATS["peer_closed"] += 1
            event(f"peer-closed {conn_id}")
        if counted:
            STATS["open"] -= 1
        writer.close()


async def main(port):
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
