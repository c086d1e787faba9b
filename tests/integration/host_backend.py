"""backends.py's server on any address: for the health and dns: tests.

    /usr/bin/python3 host_backend.py HOST PORT

Answers exactly as backends.py does (same paths, same control requests),
bound to HOST (any 127.0.0.x: the whole 127/8 is loopback) instead of
127.0.0.1, and prints "listening PORT" when ready. Two additions:

  every response made by backends.response() (echo, /status, /slow) carries
  `X-Served-By: HOST:PORT`, so a test can tell servers on one port apart;

  /_ctl/health           a health check path answering the status last set by
                         /_ctl/health?set=NNN (200 at first). Being a control
                         request, a check is not counted as traffic.
"""

import asyncio
import sys

import backends

HEALTH = {"status": 200}
SERVED_BY = ""

_response = backends.response
_control = backends.control


def response(status, body=b"", headers=(), reason="OK", head_only=False):
    return _response(status, body, [*headers, ("X-Served-By", SERVED_BY)], reason, head_only)


async def control(path, q, writer):
    if path != "/_ctl/health":
        return await _control(path, q, writer)
    if "set" in q:
        HEALTH["status"] = int(q["set"])
        writer.write(_response(200, b"set\n"))
    else:
        writer.write(response(HEALTH["status"], b"health\n", reason="Health"))
    await writer.drain()


backends.response = response
backends.control = control


async def main(host, port):
    global SERVED_BY
    server = await asyncio.start_server(backends.handle, host, port, limit=1 << 20, backlog=4096)
    port = server.sockets[0].getsockname()[1]
    SERVED_BY = f"{host}:{port}"
    print(f"listening {port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
