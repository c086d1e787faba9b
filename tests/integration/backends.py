"""A controllable HTTP/1.1 backend for sluice's integration tests.

    /usr/bin/python3 backends.py PORT

Prints "listening PORT" when ready. Speaks HTTP/1.1 with keep-alive over raw
asyncio streams so that tests control every byte. What it does depends on the
path:

  /stats                 {"connections": N, "requests": M} seen so far
  /slow?ms=N             answers after N ms
  /chunked?n=K&size=S    a chunked body of K chunks of S bytes, 50 ms apart
  /big?mb=N              N MiB with Content-Length, streamed
  /close-mid             promises 1000 bytes, sends 10, closes
  /garbage               answers something that is not HTTP
  /status/NNN            an empty answer with that status
  /hop                   a response carrying hop-by-hop headers
  /until-close           a body without framing, ended by closing
  anything else          echo: method, path, headers, body length and sha256
"""

import asyncio
import hashlib
import json
import sys
import urllib.parse

STATS = {"connections": 0, "requests": 0}


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


async def read_body(reader, headers):
    """Reads the body, hashing it as it streams (never held whole)."""
    h = hashlib.sha256()
    n = 0
    if (header(headers, "transfer-encoding") or "").lower() == "chunked":
        while True:
            size = int((await reader.readline()).split(b";")[0].strip(), 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b""):
                    pass
                break
            left = size
            while left:
                chunk = await reader.read(min(left, 1 << 16))
                if not chunk:
                    raise ConnectionError("eof in chunk")
                h.update(chunk)
                n += len(chunk)
                left -= len(chunk)
            await reader.readline()
    else:
        left = int(header(headers, "content-length") or 0)
        while left:
            chunk = await reader.read(min(left, 1 << 16))
            if not chunk:
                raise ConnectionError("eof in body")
            h.update(chunk)
            n += len(chunk)
            left -= len(chunk)
    return n, h.hexdigest()


def response(status, body=b"", headers=(), reason="OK"):
    out = [f"HTTP/1.1 {status} {reason}"]
    out += [f"{k}: {v}" for k, v in headers]
    if status not in (204, 304) and not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in headers):
        out.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(out) + "\r\n\r\n").encode() + body


async def handle(reader, writer):
    STATS["connections"] += 1
    try:
        while True:
            try:
                method, target, version, headers = await read_head(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            STATS["requests"] += 1
            url = urllib.parse.urlsplit(target)
            q = dict(urllib.parse.parse_qsl(url.query))
            path = url.path
            if (header(headers, "expect") or "").lower() == "100-continue":
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            body_len, body_sha = await read_body(reader, headers)
            if path == "/stats":
                writer.write(response(200, json.dumps(STATS).encode(), [("Content-Type", "application/json")]))
            elif path == "/slow":
                await asyncio.sleep(int(q.get("ms", "1000")) / 1000)
                writer.write(response(200, b"slow\n"))
            elif path == "/chunked":
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                for i in range(int(q.get("n", "3"))):
                    data = bytes([97 + i % 26]) * int(q.get("size", "10"))
                    writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                    await writer.drain()
                    await asyncio.sleep(0.05)
                writer.write(b"0\r\n\r\n")
            elif path == "/big":
                total = int(q.get("mb", "1")) << 20
                writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {total}\r\n\r\n".encode())
                block = b"x" * (1 << 16)
                sent = 0
                while sent < total:
                    writer.write(block[: total - sent])
                    sent += min(len(block), total - sent)
                    await writer.drain()
            elif path == "/close-mid":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
                await writer.drain()
                return
            elif path == "/garbage":
                writer.write(b"THIS IS NOT HTTP\r\n\r\n")
                await writer.drain()
                return
            elif path.startswith("/status/"):
                writer.write(response(int(path.split("/")[2]), reason="Status"))
            elif path == "/hop":
                writer.write(response(200, b"hop\n", [
                    ("Connection", "X-Hop-Response"), ("X-Hop-Response", "secret"),
                    ("Keep-Alive", "timeout=5"), ("Proxy-Connection", "keep-alive"),
                    ("Upgrade", "h2c"), ("Trailer", "X-Sum"), ("X-End-To-End", "kept")]))
            elif path == "/until-close":
                writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody until close")
                await writer.drain()
                return
            else:
                body = json.dumps({"port": writer.get_extra_info("sockname")[1],
                                   "method": method, "path": target, "version": version,
                                   "headers": headers, "body_len": body_len,
                                   "body_sha256": body_sha}).encode()
                writer.write(response(200, body, [("Content-Type", "application/json")]))
            await writer.drain()
            if (header(headers, "connection") or "").lower() == "close":
                return
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def main(port):
    server = await asyncio.start_server(handle, "127.0.0.1", port, limit=1 << 20)
    print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
