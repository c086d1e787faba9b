"""Realtime routes (issue 4) with real peers: the socket.io server and client
(Node, pinned in node/package-lock.json), a ws server and client, and
backends.py for SSE-style streaming."""

import json
import os
import socket
import subprocess
import time

import pytest

from conftest import REPO

NODE = REPO / "tests" / "integration" / "node"


def node(*args, timeout=90):
    p = subprocess.run(["node", *map(str, args)], cwd=NODE, capture_output=True, text=True, timeout=timeout)
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    return p.returncode, (json.loads(lines[-1]) if lines else {"stdout": p.stdout, "stderr": p.stderr})


def sio_client(url, transports, count, extra_wait_ms=0):
    return node("peers.js", "sio-client", url, transports, count, "/socket.io", extra_wait_ms)


def ws_client(url, **script):
    return node("ws_client.js", url, json.dumps(script))[1]


def sio_upstream(ports, affinity="engine.io", balance="round_robin"):
    servers = ", ".join(f'"127.0.0.1:{p}"' for p in ports)
    return (f'[upstream.sio]\nservers = [{servers}]\naffinity = "{affinity}"\nbalance = "{balance}"\n'
            '[[route]]\nname = "socketio"\nprefix = "/socket.io"\nupstream = "sio"\nkind = "socketio"\n'
            'ping_interval = "1s"\nping_timeout = "1s"\n')


def raw_get(port, target, headers="", timeout=10):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as c:
        c.sendall(f"GET {target} HTTP/1.1\r\nHost: h\r\n{headers}Connection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = c.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), head.decode("latin-1").lower(), body


def test_socketio_polling_then_websocket_1000_events_in_order(start_node, start_sluice):
    port = start_node("sio-server", "A", 1000, 1000)
    s = start_sluice(sio_upstream([port]))
    code, result = sio_client(s.url, "polling,websocket", 1000)
    assert code == 0, result
    assert result["received"] == 1000 and result["in_order"]
    assert result["final_transport"] == "websocket"
    logs = s.log_lines(wait_for=3)
    assert any("transport=polling" in l["target"] and l["status"] == 200 for l in logs)
    # The tunnel is logged when it closes, with upgrade = true.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any(l["upgrade"] for l in s.log_lines()):
        time.sleep(0.1)
    tunnel = [l for l in s.log_lines() if l["upgrade"]]
    assert tunnel and tunnel[0]["status"] == 101 and tunnel[0]["route"] == "socketio"


def test_socketio_polling_only_survives_heartbeats(start_node, start_sluice):
    port = start_node("sio-server", "A", 1000, 1000)
    s = start_sluice(sio_upstream([port]))
    code, result = sio_client(s.url, "polling", 50, extra_wait_ms=3500)
    assert code == 0, result
    assert result["final_transport"] == "polling"
    assert result.get("received_after_wait") is True


def test_engineio_affinity_keeps_a_polling_session_on_its_server(start_node, start_sluice):
    ports = [start_node("sio-server", name, 1000, 1000) for name in ("A", "B", "C")]
    s = start_sluice(sio_upstream(ports))
    for _ in range(3):
        code, result = sio_client(s.url, "polling", 30)
        assert code == 0, result
        assert len(result["servers"]) == 1
    targets = [l["target"] for l in s.log_lines() if "sid=" in l["target"]]
    upstream_targets = [l["upstream_target"] for l in s.log_lines() if "sid=" in l["target"]]
    assert targets and all("." in t.split("sid=")[1] for t in targets)
    # The backend sees its own sid, without sluice's token.
    assert all("." not in t.split("sid=")[1].split("&")[0] for t in upstream_targets)


def test_without_affinity_several_servers_lose_polling_sessions(start_node, start_sluice):
    # The control: the failure sluice exists to prevent ("Session ID unknown").
    ports = [start_node("sio-server", name, 1000, 1000) for name in ("A", "B")]
    s = start_sluice(sio_upstream(ports, affinity="none"))
    code, result = sio_client(s.url, "polling", 20)
    assert code != 0


def test_two_sluice_replicas_serve_one_session_without_shared_state(start_node, start_sluice):
    ports = [start_node("sio-server", name, 1000, 1000) for name in ("A", "B", "C")]
    a = start_sluice(sio_upstream(ports))
    b = start_sluice(sio_upstream(ports))
    status, _, body = raw_get(a.port, "/socket.io/?EIO=4&transport=polling")
    assert status == 200 and body.startswith(b'0{"sid":"')
    sid = json.loads(body[1:])["sid"]
    token, _, raw_sid = sid.partition(".")
    assert len(token) == 6 and raw_sid
    # Socket.IO connect sent through the other replica, then a poll through the first.
    with socket.create_connection(("127.0.0.1", b.port), timeout=10) as c:
        c.sendall(f"POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: h\r\n"
                  "Content-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\n40".encode())
        reply = b""
        while True:
            chunk = c.recv(4096)
            if not chunk:
                break
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 200"), reply
    status, _, body = raw_get(b.port, f"/socket.io/?EIO=4&transport=polling&sid={sid}")
    assert status == 200 and body.startswith(b"40"), body
    status, _, body = raw_get(a.port, f"/socket.io/?EIO=4&transport=polling&sid={sid}", timeout=10)
    assert status == 200, body


def test_token_of_a_gone_server_is_routed_like_a_new_session(start_node, start_sluice):
    port = start_node("sio-server", "A", 1000, 1000)
    s = start_sluice(sio_upstream([port]))
    status, _, body = raw_get(s.port, "/socket.io/?EIO=4&transport=polling&sid=zzzzzz.unknownsid")
    assert status == 400
    assert b"Session ID unknown" in body


def test_websocket_tunnel_echo_big_message_and_close_codes(start_node, start_sluice):
    port = start_node("ws-echo")
    s = start_sluice(f'[upstream.ws]\nservers = ["127.0.0.1:{port}"]\n'
                     '[[route]]\nname = "ws"\nprefix = "/ws"\nupstream = "ws"\nkind = "websocket"\n')
    r = ws_client(f"ws://127.0.0.1:{s.port}/ws/room?x=1", send=["one", "two"], expect=2, binary_mb=4)
    assert r["opened"], r
    hello = json.loads(r["messages"][0])
    assert hello["url"] == "/ws/room?x=1"
    assert hello["headers"]["connection"].lower() == "upgrade" and hello["headers"]["upgrade"] == "websocket"
    assert "x-forwarded-for" in hello["headers"]
    assert r["messages"][1:3] == ["one", "two"]
    assert r["binary_ok"] is True
    assert r["close_code"] == 1000
    # The upstream closes normally: its 1000 reaches the client unchanged.
    r = ws_client(f"ws://127.0.0.1:{s.port}/ws", send=["close-1000"], wait_close=True)
    assert r["close_code"] == 1000 and r["close_reason"] == "bye"
    # The upstream dies without a close frame: the client gets 1011 from sluice.
    r = ws_client(f"ws://127.0.0.1:{s.port}/ws", send=["die"], wait_close=True)
    assert r["close_code"] == 1011


def test_tunnel_idle_closes_with_1001(start_node, start_sluice):
    port = start_node("ws-echo")
    s = start_sluice(f'[upstream.ws]\nservers = ["127.0.0.1:{port}"]\n'
                     '[[route]]\nname = "ws"\nprefix = "/ws"\nupstream = "ws"\nkind = "websocket"\ntunnel_idle = "1s"\n')
    start = time.monotonic()
    r = ws_client(f"ws://127.0.0.1:{s.port}/ws", wait_close=True)
    assert r["close_code"] == 1001
    assert time.monotonic() - start < 10


def test_origin_check_on_websocket_and_polling(start_node, start_sluice):
    ws_port = start_node("ws-echo")
    sio_port = start_node("sio-server", "A", 1000, 1000)
    s = start_sluice(f'[upstream.ws]\nservers = ["127.0.0.1:{ws_port}"]\n'
                     '[[route]]\nname = "ws"\nprefix = "/ws"\nupstream = "ws"\nkind = "websocket"\n'
                     'allowed_origins = ["https://app.example.com"]\n' +
                     sio_upstream([sio_port], affinity="none") + 'allowed_origins = ["https://app.example.com"]\n')
    r = ws_client(f"ws://127.0.0.1:{s.port}/ws", origin="https://evil.example")
    assert r["status"] == 403 and r["sluice_error"] == "origin_forbidden"
    r = ws_client(f"ws://127.0.0.1:{s.port}/ws", origin="https://app.example.com", send=["hi"], expect=1)
    assert r["opened"] and r["messages"][1] == "hi"
    r = ws_client(f"ws://127.0.0.1:{s.port}/ws", send=["no origin"], expect=1)
    assert r["opened"]
    status, head, _ = raw_get(s.port, "/socket.io/?EIO=4&transport=polling", "Origin: https://evil.example\r\n")
    assert status == 403 and "sluice-error: origin_forbidden" in head
    status, _, body = raw_get(s.port, "/socket.io/?EIO=4&transport=polling", "Origin: https://app.example.com\r\n")
    assert status == 200 and body.startswith(b'0{"sid"')


def test_malformed_handshake_is_400_bad_upgrade(start_node, start_sluice):
    port = start_node("ws-echo")
    s = start_sluice(f'[upstream.ws]\nservers = ["127.0.0.1:{port}"]\n'
                     '[[route]]\nname = "ws"\nprefix = "/ws"\nupstream = "ws"\nkind = "websocket"\n')
    status, head, _ = raw_get(s.port, "/ws", "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n")
    assert status == 400 and "sluice-error: bad_upgrade" in head
    status, head, _ = raw_get(s.port, "/ws", "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n")
    assert status == 400 and "sluice-error: bad_upgrade" in head


def test_upgrade_answered_without_101_is_relayed_as_a_response(start_backend, start_sluice):
    port = start_backend()
    s = start_sluice(f'[upstream.b]\nservers = ["127.0.0.1:{port}"]\n'
                     '[[route]]\nname = "ws"\nprefix = "/"\nupstream = "b"\nkind = "websocket"\nread_timeout = "1s"\n')
    hs = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    status, head, body = raw_get(s.port, "/plain", hs)
    assert status == 200 and json.loads(body)["path"] == "/plain"
    # An upstream that never answers the upgrade: read_timeout, 504.
    status, head, _ = raw_get(s.port, "/slow?ms=3000", hs)
    assert status == 504 and "sluice-error: read_timeout" in head


def test_sse_streams_each_chunk_as_it_comes(start_backend, start_sluice):
    port = start_backend()
    s = start_sluice(f'[upstream.ev]\nservers = ["127.0.0.1:{port}"]\n'
                     '[[route]]\nname = "events"\nprefix = "/"\nupstream = "ev"\nkind = "sse"\n')
    with socket.create_connection(("127.0.0.1", s.port), timeout=10) as c:
        c.sendall(b"GET /chunked?n=3&size=4 HTTP/1.1\r\nHost: h\r\nLast-Event-ID: 7\r\n\r\n")
        data = b""
        while b"aaaa" not in data:
            data += c.recv(65536)
        # The first event arrived while the stream is still open: nothing held back.
        assert not data.endswith(b"0\r\n\r\n")
        while not data.endswith(b"0\r\n\r\n"):
            data += c.recv(65536)
    assert b"bbbb" in data and b"cccc" in data
    status, _, body = raw_get(s.port, "/echo", "Last-Event-ID: 42\r\n")
    assert ["Last-Event-ID", "42"] in json.loads(body)["headers"]
    status, head, _ = raw_get(s.port, "/ws", "Upgrade: websocket\r\nConnection: Upgrade\r\n")
    assert status == 400 and "sluice-error: upgrade_not_allowed" in head


def test_cookie_affinity(start_backend, start_sluice):
    ports = [start_backend(), start_backend(), start_backend()]
    servers = ", ".join(f'"127.0.0.1:{p}"' for p in ports)
    s = start_sluice(f'[upstream.b]\nservers = [{servers}]\naffinity = "cookie"\n'
                     '[[route]]\nname = "all"\nprefix = "/"\nupstream = "b"\n')
    status, head, body = raw_get(s.port, "/first")
    cookie = [l for l in head.split("\r\n") if l.startswith("set-cookie: sluice_affinity=")][0]
    assert "httponly" in cookie and "path=/" in cookie
    value = cookie.split("=", 1)[1].split(";")[0]
    first = json.loads(body)["port"]
    for _ in range(6):
        status, head, body = raw_get(s.port, "/again", f"Cookie: a=b; sluice_affinity={value}\r\n")
        assert json.loads(body)["port"] == first
        assert "set-cookie" not in head


def test_fifty_polling_clients_across_three_servers_with_affinity(start_node, start_sluice):
    ports = [start_node("sio-server", name, 1000, 1000) for name in ("A", "B", "C")]
    s = start_sluice(sio_upstream(ports))
    code, result = node("sio_many.js", s.url, "polling", 50, 5)
    assert code == 0, result
    assert result["ok"] == 50 and not result["errors"]
    assert len(result["servers"]) == 3  # sessions spread, and each stayed on its server


def test_raw_engineio_client_alternating_between_two_replicas(start_node, start_sluice):
    ports = [start_node("sio-server", name, 1000, 1000) for name in ("A", "B")]
    replicas = [start_sluice(sio_upstream(ports)), start_sluice(sio_upstream(ports))]
    status, _, body = raw_get(replicas[0].port, "/socket.io/?EIO=4&transport=polling")
    sid = json.loads(body[1:])["sid"]
    for i in range(10):
        port = replicas[i % 2].port
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            payload = "40" if i == 0 else f'42{i}["echo","m{i}"]'
            c.sendall(f"POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: h\r\n"
                      f"Content-Type: text/plain\r\nContent-Length: {len(payload)}\r\nConnection: close\r\n\r\n{payload}".encode())
            reply = b""
            while True:
                chunk = c.recv(4096)
                if not chunk:
                    break
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 200"), reply
        status, _, body = raw_get(replicas[(i + 1) % 2].port, f"/socket.io/?EIO=4&transport=polling&sid={sid}")
        assert status == 200, body
        assert b"Session ID unknown" not in body


def test_python_socketio_client_through_sluice(start_node, start_sluice):
    port = start_node("sio-server", "A", 1000, 1000)
    s = start_sluice(sio_upstream([port]))
    script = f"""
import socketio, sys
sio = socketio.Client(reconnection=False)
sio.connect({s.url!r}, transports=["polling", "websocket"], wait_timeout=10)
answers = [sio.call("echo", i, timeout=10)["payload"] for i in range(100)]
transport = sio.transport()
sio.disconnect()
print(answers == list(range(100)), transport)
"""
    p = subprocess.run(["/usr/bin/python3", "-c", script], capture_output=True, text=True, timeout=60,
                       env={"PATH": "/usr/bin:/bin"})
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["True", "websocket"]


@pytest.mark.skipif(os.environ.get("SLUICE_SLOW_TESTS") != "1", reason="slow: set SLUICE_SLOW_TESTS=1")
def test_socketio_polling_with_default_heartbeat_slow(start_node, start_sluice):
    port = start_node("sio-server", "A", 25000, 20000)
    s = start_sluice(sio_upstream([port]).replace('ping_interval = "1s"\nping_timeout = "1s"\n', ""))
    code, result = sio_client(s.url, "polling", 10, extra_wait_ms=60000)
    assert code == 0, result
    assert result.get("received_after_wait") is True


@pytest.fixture
def ws_proxy(start_node, start_sluice):
    port = start_node("ws-echo")
    s = start_sluice(f'[upstream.ws]\nservers = ["127.0.0.1:{port}"]\n'
                     '[[route]]\nname = "ws"\nprefix = "/ws"\nupstream = "ws"\nkind = "websocket"\n')
    s.ws_url = f"ws://127.0.0.1:{s.port}/ws"
    return s


def test_websocket_message_sizes_text_and_binary(ws_proxy):
    code, result = node("ws_cases.js", ws_proxy.ws_url, "sizes")
    assert code == 0, result
    assert len(result["results"]) == 6
    assert all(r["same"] for r in result["results"]), result


def test_websocket_ping_pong_and_custom_close(ws_proxy):
    code, result = node("ws_cases.js", ws_proxy.ws_url, "ping")
    assert code == 0 and result["pong"] == "are-you-there", result
    code, result = node("ws_cases.js", ws_proxy.ws_url, "close4001")
    assert result == {"code": 4001, "reason": "custom reason"}


def test_websocket_client_vanishing_mid_message(ws_proxy):
    fds = ws_proxy.fd_count()
    for _ in range(5):
        code, result = node("ws_cases.js", ws_proxy.ws_url, "vanish")
        assert code == 0, result
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and ws_proxy.fd_count() > fds:
        time.sleep(0.1)
    assert ws_proxy.fd_count() <= fds
    code, result = node("ws_cases.js", ws_proxy.ws_url, "ping")
    assert result["pong"] == "are-you-there"


def test_many_concurrent_idle_tunnels(ws_proxy):
    # 10,000 in the issue; 2,000 by default to stay inside CI's file limits
    # (each tunnel is two sockets in sluice, one in each peer).
    n = int(os.environ.get("SLUICE_IDLE_TUNNELS", "2000"))
    rss_before = ws_proxy.rss_kib()
    p = subprocess.Popen(["node", "ws_cases.js", ws_proxy.ws_url, "idle", str(n)], cwd=NODE,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        line = p.stdout.readline()
        assert line.strip() == f"open {n}"
        assert ws_proxy.fd_count() >= 2 * n
        per_tunnel = (ws_proxy.rss_kib() - rss_before) * 1024 / n
        print(f"{n} idle tunnels: {per_tunnel:.0f} bytes each")
        assert per_tunnel < 64 * 1024
        code, result = node("ws_cases.js", ws_proxy.ws_url, "ping")
        assert result["pong"] == "are-you-there"
    finally:
        p.stdin.close()
        p.wait(timeout=30)
