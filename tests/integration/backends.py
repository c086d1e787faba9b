"""A controllable HTTP/1.1 backend for sluice's integration tests.

    /usr/bin/python3 backends.py PORT [--tls-cert FILE --tls-key FILE]

Prints "listening PORT" when ready. Speaks HTTP/1.1 with keep-alive over raw
asyncio streams so that tests control every byte; with --tls-cert/--tls-key,
over TLS (Python's ssl module; the certificate file may hold a chain, and
control requests then need TLS too). What it does depends on the path:

  /chunked?n=K&size=S    a chunked body of K chunks of S bytes, 50 ms apart
  /stream?n=K&ms=M       a chunked body of K chunks ("tick N\\n"), M ms apart;
                         n=0 streams until the peer goes away
  /hold?id=X             a chunked body: "first\\n" at once, then waits until
                         /_ctl/release?id=X, then "second\\n" and the end;
                         with &cl=1 the same with Content-Length framing
  /big?mb=N              N MiB with Content-Length, streamed (&chunked=1: chunked)
  /slow?ms=N             answers "slow\\n" after N ms
  /close-mid             promises 1000 bytes, sends 10, closes
  /garbage               answers something that is not HTTP
  /switch                answers 101 Switching Protocols unasked, then raw bytes
  /reset                 reads the request and resets the connection, no answer
  /close-early           reads the request and closes the connection, no answer
  /status/NNN            an empty answer with that status
  /hop                   a response carrying hop-by-hop headers
  /until-close           a body without framing, ended by closing
  anything else          echo (JSON): port, method, path, version, headers as
                         a list of [name, value] pairs, body_len, body_sha256

Request headers that steer any echo:
  X-Backend-Delay-Ms: N  wait N ms before answering
  X-Backend-Pause-Ms: N  wait N ms before reading the request body (a slow consumer)
  X-Progress-Id: X       publish the body bytes read so far under X

Control requests (never counted as traffic; a connection whose first request
is one of them is a control connection):
  /_ctl/stats            {"accepted", "connections", "open", "max_open",
                          "requests", "completed", "targets", "progress"}
  /_ctl/release?id=X     lets /hold?id=X finish
  /stats                 the same as /_ctl/stats (older tests)

HEAD requests get the head only, as HTTP requires.
"""

import argparse
import asyncio
import hashlib
import json
import socket
import ssl
import struct
import sys
import urllib.parse

STATS = {"accepted": 0, "control": 0, "open": 0, "max_open": 0, "requests": 0, "completed": 0}
TARGETS = []          # every non-control request target, in arrival order
PROGRESS = {}         # X-Progress-Id -> body bytes read so far
RELEASES = {}         # /hold id -> asyncio.Event
MAX_TARGETS = 20000


def release_event(key):
    if key not in RELEASES:
        RELEASES[key] = asyncio.Event()
    return RELEASES[key]


async def read_head(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, version = lines[0].split(" ", 2)
    headers = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append([name, value.strip()])
    return method, target, version, headers


def header(headers, name):
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


async def read_body(reader, headers, progress=None):
    """Reads the body, hashing it as it streams (never held whole)."""
    h = hashlib.sha256()
    n = 0

    def got(chunk):
        nonlocal n
        h.update(chunk)
        n += len(chunk)
        if progress is not None:
            PROGRESS[progress] = n

    if (header(headers, "transfer-encoding") or "").lower() == "chunked":
        while True:
            line = await reader.readline()
            if not line:
                raise ConnectionError("eof in chunk size")
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                while True:
                    line = await reader.readline()
                    if line == b"":
                        raise ConnectionError("eof in trailers")
                    if line == b"\r\n":
                        break
                break
            left = size
            while left:
                chunk = await reader.read(min(left, 1 << 16))
                if not chunk:
                    raise ConnectionError("eof in chunk")
                got(chunk)
                left -= len(chunk)
            if await reader.readline() != b"\r\n":
                raise ConnectionError("bad chunk end")
    else:
        left = int(header(headers, "content-length") or 0)
        while left:
            chunk = await reader.read(min(left, 1 << 16))
            if not chunk:
                raise ConnectionError("eof in body")
            got(chunk)
            left -= len(chunk)
    return n, h.hexdigest()


def response(status, body=b"", headers=(), reason="OK", head_only=False):
    out = [f"HTTP/1.1 {status} {reason}"]
    out += [f"{k}: {v}" for k, v in headers]
    if status not in (204, 304) and not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in headers):
        out.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(out) + "\r\n\r\n").encode()
    return head if head_only or status in (204, 304) else head + body


def chunk(data):
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def stats():
    out = dict(STATS)
    out["connections"] = STATS["accepted"] - STATS["control"]
    out["targets"] = TARGETS
    out["progress"] = PROGRESS
    return out


async def control(path, q, writer):
    if path in ("/_ctl/stats", "/stats"):
        writer.write(response(200, json.dumps(stats()).encode(), [("Content-Type", "application/json")]))
    elif path == "/_ctl/release":
        release_event(q.get("id", "")).set()
        writer.write(response(200, b"released\n"))
    else:
        writer.write(response(404, b"unknown control\n", reason="Not Found"))
    await writer.drain()


async def handle(reader, writer):
    STATS["accepted"] += 1
    STATS["open"] += 1
    STATS["max_open"] = max(STATS["max_open"], STATS["open"])
    counted = True      # counts in "open" until it turns out to be a control connection
    first = True
    try:
        while True:
            try:
                method, target, version, headers = await read_head(reader)
            except (asyncio.IncompleteReadError, ConnectionError, ValueError):
                return
            url = urllib.parse.urlsplit(target)
            q = dict(urllib.parse.parse_qsl(url.query))
            path = url.path
            if path.startswith("/_ctl/") or path == "/stats":
                if first and counted:
                    counted = False
                    STATS["open"] -= 1
                    STATS["control"] += 1
                first = False
                await control(path, q, writer)
                if (header(headers, "connection") or "").lower() == "close":
                    return
                continue
            first = False
            STATS["requests"] += 1
            if len(TARGETS) < MAX_TARGETS:
                TARGETS.append(target)
            head_only = method == "HEAD"
            if (header(headers, "expect") or "").lower() == "100-continue":
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            pause = int(header(headers, "x-backend-pause-ms") or 0)
            if pause:
                await asyncio.sleep(pause / 1000)
            body_len, body_sha = await read_body(reader, headers, header(headers, "x-progress-id"))
            delay = int(header(headers, "x-backend-delay-ms") or 0)
            if delay:
                await asyncio.sleep(delay / 1000)
            if path == "/slow":
                await asyncio.sleep(int(q.get("ms", "1000")) / 1000)
                writer.write(response(200, b"slow\n", head_only=head_only))
            elif path == "/chunked":
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                for i in range(int(q.get("n", "3"))):
                    writer.write(chunk(bytes([97 + i % 26]) * int(q.get("size", "10"))))
                    await writer.drain()
                    await asyncio.sleep(0.05)
                writer.write(b"0\r\n\r\n")
            elif path == "/stream":
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                n, ms, i = int(q.get("n", "10")), int(q.get("ms", "50")), 0
                while n == 0 or i < n:
                    writer.write(chunk(f"tick {i}\n".encode()))
                    await writer.drain()
                    await asyncio.sleep(ms / 1000)
                    i += 1
                writer.write(b"0\r\n\r\n")
            elif path == "/hold":
                event = release_event(q.get("id", ""))
                if q.get("cl"):
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nfirst\n")
                    await writer.drain()
                    await event.wait()
                    writer.write(b"second\n")
                else:
                    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(b"first\n"))
                    await writer.drain()
                    await event.wait()
                    writer.write(chunk(b"second\n") + b"0\r\n\r\n")
            elif path == "/big":
                total = int(q.get("mb", "1")) << 20
                is_chunked = bool(q.get("chunked"))
                framing = "Transfer-Encoding: chunked" if is_chunked else f"Content-Length: {total}"
                writer.write(f"HTTP/1.1 200 OK\r\n{framing}\r\n\r\n".encode())
                if not head_only:
                    block = b"x" * (1 << 16)
                    sent = 0
                    while sent < total:
                        piece = block[: total - sent]
                        writer.write(chunk(piece) if is_chunked else piece)
                        sent += len(piece)
                        await writer.drain()
                    if is_chunked:
                        writer.write(b"0\r\n\r\n")
            elif path == "/close-mid":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
                await writer.drain()
                return
            elif path == "/switch":
                # 101 to a request that asked for no upgrade, then raw bytes.
                writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             b"Connection: Upgrade\r\n\r\nRAW BYTES AFTER A 101")
                await writer.drain()
                return
            elif path == "/garbage":
                writer.write(b"THIS IS NOT HTTP\r\n\r\n")
                await writer.drain()
                return
            elif path == "/reset":
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            elif path == "/close-early":
                return
            elif path.startswith("/status/"):
                writer.write(response(int(path.split("/")[2]), reason="Status", head_only=head_only))
            elif path == "/hop":
                writer.write(response(200, b"hop\n", [
                    ("Connection", "X-Hop-Response, x-hop-other"), ("X-Hop-Response", "secret"),
                    ("X-Hop-Other", "secret"),
                    ("Keep-Alive", "timeout=5"), ("Proxy-Connection", "keep-alive"),
                    ("Upgrade", "h2c"), ("Trailer", "X-Sum"), ("TE", "trailers"),
                    ("X-End-To-End", "kept")], head_only=head_only))
            elif path == "/until-close":
                writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
                if not head_only:
                    writer.write(b"body until close")
                await writer.drain()
                return
            else:
                body = json.dumps({"port": writer.get_extra_info("sockname")[1],
                                   "method": method, "path": target, "version": version,
                                   "headers": headers, "body_len": body_len,
                                   "body_sha256": body_sha}).encode()
                writer.write(response(200, body, [("Content-Type", "application/json")], head_only=head_only))
            await writer.drain()
            STATS["completed"] += 1
            if (header(headers, "connection") or "").lower() == "close":
                return
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        pass
    finally:
        if counted:
            STATS["open"] -= 1
        writer.close()


async def main(port, tls=None):
    server = await asyncio.start_server(handle, "127.0.0.1", port, limit=1 << 20, backlog=4096, ssl=tls)
    print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def tls_context(cert, key):
    """A server context for --tls-cert/--tls-key, or None without them."""
    if not cert and not key:
        return None
    if not (cert and key):
        sys.exit("backends.py: --tls-cert and --tls-key go together")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("port", nargs="?", type=int, default=0)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    args = parser.parse_args()
    asyncio.run(main(args.port, tls_context(args.tls_cert, args.tls_key)))
