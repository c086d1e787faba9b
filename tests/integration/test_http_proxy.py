"""The HTTP/1.1 proxy core (issue 3) against real processes: sluice, a real
backend (backends.py) and real clients (curl, raw sockets)."""

import concurrent.futures
import hashlib
import json
import os
import socket
import subprocess
import threading
import time

import pytest


def upstream(port, name="app", extra=""):
    return f'[upstream.{name}]\nservers = ["127.0.0.1:{port}"]\n{extra}\n'


def route(name, prefix, up="app", extra="", match="prefix"):
    return f'[[route]]\nname = "{name}"\n{match} = "{prefix}"\nupstream = "{up}"\n{extra}\n'


def curl(*args, timeout=30):
    env = {k: v for k, v in os.environ.items() if k not in ("CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE")}
    p = subprocess.run(["curl", "-sS", "--max-time", str(timeout), *args], capture_output=True,
                       timeout=timeout + 5, env=env)
    return p


def raw(port, data, timeout=5.0, until_close=True, expect=None):
    """Sends `data` on a fresh connection; returns what came back (until the
    peer closes, or until `expect` bytes were seen, or the timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
            if expect is not None and out.count(expect) >= 1 and not until_close:
                break
        return out


def parse_responses(data):
    """Splits raw HTTP/1.1 responses (Content-Length framed) into
    (status, headers dict lower-case, body)."""
    out = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers.setdefault(k.strip().lower(), v.strip())
        n = int(headers.get("content-length", "0"))
        out.append((status, headers, rest[:n]))
        data = rest[n:]
    return out


def backend_stats(port):
    return json.loads(raw(port, b"GET /stats HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n").split(b"\r\n\r\n", 1)[1])


@pytest.fixture
def app(start_backend, start_sluice):
    """A backend and a sluice with the common routes in front of it."""
    port = start_backend()
    s = start_sluice(upstream(port) + route("api", "/api", extra="strip_prefix = true") +
                     route("v2", "/v2", extra='rewrite_prefix = "/version2"') +
                     route("all", "/") +
                     '[[route]]\nname = "health"\nexact = "/healthz"\nrespond = { body = "ok\\n" }\n' +
                     '[[route]]\nname = "moved"\nprefix = "/old"\nredirect = { scheme = "https" }\n' +
                     '[[route]]\nname = "gone"\nexact = "/gone"\nredirect = { location = "https://x.example/", status = 301 }\n')
    s.backend_port = port
    return s


def test_echo_and_paths_seen_by_the_backend(app):
    p = curl("-i", f"{app.url}/api/users?id=7")
    assert b"HTTP/1.1 200" in p.stdout
    body = json.loads(p.stdout.split(b"\r\n\r\n", 1)[1])
    assert body["path"] == "/users?id=7"
    assert json.loads(curl(f"{app.url}/api").stdout)["path"] == "/"
    assert json.loads(curl(f"{app.url}/v2/x?y=1").stdout)["path"] == "/version2/x?y=1"
    assert json.loads(curl(f"{app.url}/other/%2Fpath?q=%20").stdout)["path"] == "/other/%2Fpath?q=%20"


def test_keepalive_reuse_on_both_legs(app):
    before = backend_stats(app.backend_port)["connections"]
    args = []
    for i in range(20):
        args += ["-o", "/dev/null", f"{app.url}/api/{i}"]
    p = curl("-w", "%{num_connects}\\n", *args)
    connects = [int(x) for x in p.stdout.split()]
    assert sum(connects) == 1, "curl reused its one connection to sluice"
    after = backend_stats(app.backend_port)
    # 20 requests over pooled upstream connections: far fewer connections than requests.
    assert after["connections"] - before <= 3
    assert after["requests"] >= 20


def test_pipelined_requests_are_answered_in_order(app):
    reqs = b"".join(f"GET /api/{i} HTTP/1.1\r\nHost: h\r\n\r\n".encode() for i in range(5))
    reqs += b"GET /healthz HTTP/1.1\r\nHost: h\r\n\r\nGET /api/last HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
    out = parse_responses(raw(app.port, reqs))
    assert len(out) == 7
    paths = [json.loads(b)["path"] if s == 200 and b.startswith(b"{") else b.decode() for s, _, b in out]
    assert paths == ["/0", "/1", "/2", "/3", "/4", "ok\n", "/last"]


def test_chunked_request_and_response_bodies(app):
    p = curl("-H", "Transfer-Encoding: chunked", "--data-binary", "hello chunked world", f"{app.url}/api/up")
    body = json.loads(p.stdout)
    assert body["body_len"] == 19
    assert body["body_sha256"] == hashlib.sha256(b"hello chunked world").hexdigest()
    assert ["Transfer-Encoding", "chunked"] in body["headers"]
    p = curl("-i", "--raw", f"{app.url}/chunked?n=4&size=5")
    assert b"transfer-encoding: chunked" in p.stdout.lower()
    assert p.stdout.endswith(b"0\r\n\r\n")
    assert curl(f"{app.url}/chunked?n=4&size=5").stdout == b"aaaaabbbbbcccccddddd"


def test_response_ended_by_close_reaches_the_client_chunked(app):
    p = curl("-i", "--raw", f"{app.url}/until-close")
    assert b"transfer-encoding: chunked" in p.stdout.lower()
    assert curl(f"{app.url}/until-close").stdout == b"body until close"


def test_large_bodies_stream_both_ways_in_bounded_memory(app, tmp_path):
    rss_before = app.rss_kib()
    peak = [rss_before]
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            peak[0] = max(peak[0], app.rss_kib())
            time.sleep(0.05)

    t = threading.Thread(target=watch)
    t.start()
    try:
        p = curl("-o", "/dev/null", "-w", "%{size_download}", f"{app.url}/big?mb=100", timeout=120)
        assert p.stdout == str(100 << 20).encode()
        big = tmp_path / "upload.bin"
        with open(big, "wb") as f:
            f.write(os.urandom(1 << 20) * 100)
        p = curl("-H", "Expect:", "--data-binary", f"@{big}", f"{app.url}/api/upload", timeout=120)
        body = json.loads(p.stdout)
        assert body["body_len"] == 100 << 20
        assert body["body_sha256"] == hashlib.sha256(big.read_bytes()).hexdigest()
    finally:
        stop.set()
        t.join()
    # 100 MiB each way went through; sluice itself grew by a few buffers at most.
    assert peak[0] - rss_before < 40 * 1024, f"RSS grew from {rss_before} KiB to {peak[0]} KiB"


def test_slow_upstream_gets_504_read_timeout(start_backend, start_sluice):
    port = start_backend()
    s = start_sluice(upstream(port) + route("slow", "/", extra='read_timeout = "1s"'))
    p = curl("-i", f"{s.url}/slow?ms=3000")
    assert p.stdout.startswith(b"HTTP/1.1 504")
    assert b"sluice-error: read_timeout" in p.stdout.lower()
    assert f"127.0.0.1:{port}".encode() in p.stdout
    assert b"read_timeout 1s" in p.stdout
    # A fast answer on the same route is fine.
    assert curl(f"{s.url}/slow?ms=10").stdout == b"slow\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_refused_port_is_a_502_naming_upstream_and_address(start_sluice):
    port = free_port()
    s = start_sluice(upstream(port, name="api") + route("api", "/", up="api"))
    p = curl("-i", f"{s.url}/x")
    assert p.stdout.startswith(b"HTTP/1.1 502")
    assert b"sluice-error: upstream_refused" in p.stdout.lower()
    assert f"upstream 'api' server 127.0.0.1:{port}: connection refused".encode() in p.stdout
    log = s.log_lines()[-1]
    assert log["error"] == "upstream_refused" and log["status"] == 502
    assert log["server"] == f"127.0.0.1:{port}"


def test_connect_failure_retries_another_server(start_backend, start_sluice):
    good = start_backend()
    bad = free_port()
    s = start_sluice(f'[upstream.app]\nservers = ["127.0.0.1:{bad}", "127.0.0.1:{good}"]\n' + route("all", "/"))
    for _ in range(6):
        p = curl("-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-d", "x", f"{s.url}/x")
        assert p.stdout == b"200"


def test_upstream_garbage_and_truncation(app):
    p = curl("-i", f"{app.url}/garbage")
    assert p.stdout.startswith(b"HTTP/1.1 502")
    assert b"sluice-error: upstream_bad_response" in p.stdout.lower()
    # A body cut short after the head went out: the client sees the connection end.
    p = curl(f"{app.url}/close-mid")
    assert p.returncode != 0
    assert curl(f"{app.url}/healthz").stdout == b"ok\n"


def test_unknown_route_is_404_naming_path_and_host(start_backend, start_sluice):
    port = start_backend()
    s = start_sluice(upstream(port) + route("api", "/api"))
    p = curl("-i", "-H", "Host: Shop.Example.com:8080", f"{s.url}/nothing/here?x=1")
    assert p.stdout.startswith(b"HTTP/1.1 404")
    assert b"sluice-error: no_route" in p.stdout.lower()
    assert b"/nothing/here" in p.stdout and b"Shop.Example.com:8080" in p.stdout
    assert b"sluice explain" in p.stdout
    assert s.log_lines()[-1]["route"] is None


def test_hop_by_hop_headers_removed_on_both_legs(app):
    p = curl("-i", "-H", "Connection: keep-alive, X-Hop", "-H", "X-Hop: secret", "-H", "Keep-Alive: 5",
             "-H", "Proxy-Connection: keep-alive", "-H", "TE: trailers", "-H", "Trailer: X-Sum",
             "-H", "Upgrade: h2c", "-H", "X-End-To-End: yes", f"{app.url}/api/h")
    head, body = p.stdout.split(b"\r\n\r\n", 1)
    seen = {k.lower() for k, _ in json.loads(body)["headers"]}
    for gone in ("connection", "x-hop", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"):
        assert gone not in seen, gone
    assert "x-end-to-end" in seen
    p = curl("-i", f"{app.url}/hop")
    head = p.stdout.split(b"\r\n\r\n", 1)[0].lower()
    for gone in (b"x-hop-response", b"keep-alive", b"proxy-connection", b"upgrade", b"trailer"):
        assert gone + b":" not in head, gone
    assert b"x-end-to-end: kept" in head


def test_forwarded_headers_and_request_id(app):
    p = curl("-i", "-H", "X-Forwarded-For: 203.0.113.9", "-H", "X-Forwarded-Proto: https",
             "-H", "X-Request-Id: abc-123.x:y", "-H", "Host: App.Example:81", f"{app.url}/api/h")
    head, body = p.stdout.split(b"\r\n\r\n", 1)
    headers = {k.lower(): v for k, v in json.loads(body)["headers"]}
    assert headers["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-host"] == "App.Example:81"
    assert headers["host"] == "App.Example:81"
    assert headers["x-request-id"] == "abc-123.x:y"
    assert b"x-request-id: abc-123.x:y" in head.lower()
    p = curl("-i", "-H", "X-Request-Id: bad id!", f"{app.url}/api/h")
    head, body = p.stdout.split(b"\r\n\r\n", 1)
    rid = {k.lower(): v for k, v in json.loads(body)["headers"]}["x-request-id"]
    assert rid != "bad id!" and len(rid) == 32
    assert f"x-request-id: {rid}".encode() in head.lower()
    log = app.log_lines(wait_for=2)
    assert log[-1]["request_id"] == rid


@pytest.mark.parametrize("request_bytes", [
    b"POST /api/x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /api/smuggled HTTP/1.1\r\nHost: h\r\n\r\n",
    b"POST /api/x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\nhello",
    b"POST /api/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"POST /api/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n",
], ids=["cl-te", "double-cl", "te-xchunked", "te-twice"])
def test_smuggling_shapes_are_400_and_nothing_reaches_the_backend(app, request_bytes):
    before = backend_stats(app.backend_port)["requests"]
    out = raw(app.port, request_bytes)
    status, headers, _ = parse_responses(out)[0]
    assert status == 400
    assert headers["sluice-error"] == "request_smuggling"
    assert headers["connection"] == "close"
    assert backend_stats(app.backend_port)["requests"] == before + 1  # only the /stats call itself


@pytest.mark.parametrize("request_bytes", [
    b"GARBAGE\r\n\r\n",
    b"GET /api HTTP/1.1\nHost: h\n\n",
    b"GET /api HTTP/1.1\r\nHost: h\r\nBad Header: x\r\n\r\n",
    b"POST /api HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    b"GET /api HTTP/1.1\r\n\r\n",
    b"GET /api HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET /api HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n",
    b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
])
def test_malformed_requests_are_400_bad_request(app, request_bytes):
    status, headers, body = parse_responses(raw(app.port, request_bytes))[0]
    assert status == 400
    assert headers["sluice-error"] == "bad_request"


def test_websocket_upgrade_on_http_route_is_400_naming_the_route(app):
    p = curl("-i", "-H", "Upgrade: websocket", "-H", "Connection: Upgrade", f"{app.url}/api/ws")
    assert p.stdout.startswith(b"HTTP/1.1 400")
    assert b"sluice-error: upgrade_not_allowed" in p.stdout.lower()
    assert b"route 'api'" in p.stdout


def test_h2c_upgrade_is_dropped_and_proxied(app):
    p = curl("-H", "Upgrade: h2c", "-H", "Connection: Upgrade, HTTP2-Settings", "-H", "HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA",
             f"{app.url}/api/h2c")
    seen = {k.lower() for k, _ in json.loads(p.stdout)["headers"]}
    assert "upgrade" not in seen and "http2-settings" not in seen


def test_oversized_head_is_431(start_backend, start_sluice):
    port = start_backend()
    s = start_sluice(upstream(port) + route("all", "/"), server='max_header_size = "4KiB"')
    out = raw(s.port, b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n")
    status, headers, _ = parse_responses(out)[0]
    assert status == 431 and headers["sluice-error"] == "headers_too_large"
    # Exactly at the limit is fine: request line + headers + CRLFs = 4096 bytes.
    base = b"GET / HTTP/1.1\r\nHost: h\r\nX-Pad: \r\n\r\n"
    exact = b"GET / HTTP/1.1\r\nHost: h\r\nX-Pad: " + b"p" * (4096 - len(base)) + b"\r\n\r\n"
    assert len(exact) == 4096
    assert parse_responses(raw(s.port, exact[:-2] + b"Connection: close\r\n\r\n"[:0] + b"\r\n"))[0][0] == 200
    over = b"GET / HTTP/1.1\r\nHost: h\r\nX-Pad: " + b"p" * (4097 - len(base)) + b"\r\n\r\n"
    assert parse_responses(raw(s.port, over))[0][0] == 431


def test_body_over_max_body(start_backend, start_sluice):
    port = start_backend()
    s = start_sluice(upstream(port) + route("up", "/", extra='max_body = "1KiB"'))
    before = backend_stats(port)["requests"]
    p = curl("-i", "--data-binary", "x" * 2000, f"{s.url}/x")
    assert p.stdout.startswith(b"HTTP/1.1 413")
    assert b"sluice-error: body_too_large" in p.stdout.lower()
    assert backend_stats(port)["requests"] == before + 1
    p = curl("-i", "-H", "Transfer-Encoding: chunked", "--data-binary", "y" * 5000, f"{s.url}/x")
    assert p.stdout.startswith(b"HTTP/1.1 413") or p.returncode != 0
    assert curl("--data-binary", "z" * 1000, f"{s.url}/ok").returncode == 0


def test_header_timeout_is_408(start_backend, start_sluice):
    port = start_backend()
    s = start_sluice(upstream(port) + route("all", "/"), server='header_timeout = "1s"')
    with socket.create_connection(("127.0.0.1", s.port), timeout=5) as c:
        c.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n")
        out = b""
        while True:
            chunk = c.recv(4096)
            if not chunk:
                break
            out += chunk
    status, headers, _ = parse_responses(out)[0]
    assert status == 408 and headers["sluice-error"] == "header_timeout"


def test_idle_keepalive_connection_closes_silently(start_backend, start_sluice):
    port = start_backend()
    s = start_sluice(upstream(port) + route("all", "/"), server='keepalive_timeout = "1s"')
    with socket.create_connection(("127.0.0.1", s.port), timeout=5) as c:
        c.sendall(b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
        first = c.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        start = time.monotonic()
        rest = b""
        while True:
            chunk = c.recv(4096)
            if not chunk:
                break
            rest += chunk
        assert rest == b""  # closed without a 408
        assert time.monotonic() - start < 4


def test_client_disconnects_mid_response_and_mid_request(app):
    # Mid-response: read a little of a big body and hang up.
    with socket.create_connection(("127.0.0.1", app.port), timeout=5) as c:
        c.sendall(b"GET /big?mb=50 HTTP/1.1\r\nHost: h\r\n\r\n")
        c.recv(1000)
    # Mid-request: promise a body and hang up halfway.
    with socket.create_connection(("127.0.0.1", app.port), timeout=5) as c:
        c.sendall(b"POST /api/x HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(l.get("status") not in (200, 499) for l in app.log_lines(wait_for=2)):
        time.sleep(0.1)
    statuses = [l["status"] for l in app.log_lines(wait_for=2)]
    assert 499 in statuses or len(statuses) >= 1
    assert curl(f"{app.url}/healthz").stdout == b"ok\n"
    fds = app.fd_count()
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", app.port), timeout=5) as c:
            c.sendall(b"GET /big?mb=5 HTTP/1.1\r\nHost: h\r\n\r\n")
            c.recv(100)
    time.sleep(1.0)
    assert app.fd_count() <= fds + 4, "aborted exchanges leave no sockets behind"


def test_a_thousand_concurrent_clients(app):
    def one(i):
        with socket.create_connection(("127.0.0.1", app.port), timeout=30) as c:
            c.sendall(f"GET /api/c{i} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while True:
                chunk = c.recv(65536)
                if not chunk:
                    break
                data += chunk
        status, _, body = parse_responses(data)[0]
        return status, json.loads(body)["path"]

    with concurrent.futures.ThreadPoolExecutor(max_workers=200) as pool:
        results = list(pool.map(one, range(1000)))
    assert all(status == 200 for status, _ in results)
    assert sorted(path for _, path in results) == sorted(f"/c{i}" for i in range(1000))


def test_respond_and_redirect_routes(app):
    p = curl("-i", f"{app.url}/healthz")
    assert p.stdout.startswith(b"HTTP/1.1 200") and p.stdout.endswith(b"\r\n\r\nok\n")
    assert b"content-type: text/plain; charset=utf-8" in p.stdout.lower()
    p = curl("-I", f"{app.url}/healthz")
    assert b"content-length: 3" in p.stdout.lower()
    p = curl("-i", "-H", "Host: app.example.com:8080", f"{app.url}/old/path?q=1")
    assert p.stdout.startswith(b"HTTP/1.1 308")
    assert b"location: https://app.example.com/old/path?q=1\r\n" in p.stdout.lower()
    p = curl("-i", f"{app.url}/gone")
    assert p.stdout.startswith(b"HTTP/1.1 301")
    assert b"location: https://x.example/\r\n" in p.stdout.lower()


def test_expect_100_continue(app):
    with socket.create_connection(("127.0.0.1", app.port), timeout=5) as c:
        c.sendall(b"POST /api/e HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        interim = c.recv(4096)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        c.sendall(b"hello")
        data = b""
        while b"body_sha256" not in data:
            data += c.recv(65536)
    status, _, body = parse_responses(data.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n" + data.split(b"\r\n\r\n", 1)[1])[0]
    info = json.loads(body)
    assert info["body_len"] == 5
    assert not any(k.lower() == "expect" for k, _ in info["headers"])


def test_head_204_304_and_http10(app):
    p = curl("-I", f"{app.url}/big?mb=1")
    assert b"content-length: 1048576" in p.stdout.lower()
    for code in (204, 304):
        out = raw(app.port, f"GET /status/{code} HTTP/1.1\r\nHost: h\r\n\r\nGET /healthz HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n".encode())
        assert out.startswith(f"HTTP/1.1 {code}".encode())
        assert b"transfer-encoding" not in out.lower().split(b"\r\n\r\n")[0]
        assert out.endswith(b"ok\n")  # the next response follows directly: no body in between
    out = raw(app.port, b"GET /chunked?n=2&size=3 HTTP/1.0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200")
    head, body = out.split(b"\r\n\r\n", 1)
    assert b"transfer-encoding" not in head.lower()
    assert b"connection: close" in head.lower()
    assert body == b"aaabbb"


def test_max_connections_gives_503(start_backend, start_sluice):
    port = start_backend()
    s = start_sluice(upstream(port) + route("all", "/"), server="max_connections = 5")
    held = [socket.create_connection(("127.0.0.1", s.port), timeout=5) for _ in range(5)]
    try:
        time.sleep(0.3)
        out = raw(s.port, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        status, headers, _ = parse_responses(out)[0]
        assert status == 503 and headers["sluice-error"] == "over_capacity"
    finally:
        for c in held:
            c.close()
    time.sleep(0.3)
    assert parse_responses(raw(s.port, b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"))[0][0] == 200


def test_access_log_fields(app):
    curl("-H", "X-Request-Id: log-test-1", f"{app.url}/api/logged?x=1")
    line = [l for l in app.log_lines() if l["request_id"] == "log-test-1"][0]
    assert set(line) == {"ts", "request_id", "client", "method", "target", "host", "route", "upstream",
                         "server", "upstream_target", "status", "bytes_in", "bytes_out", "duration_ms",
                         "upgrade", "error"}
    assert line["route"] == "api" and line["upstream"] == "app"
    assert line["server"] == f"127.0.0.1:{app.backend_port}"
    assert line["target"] == "/api/logged?x=1" and line["upstream_target"] == "/logged?x=1"
    assert line["status"] == 200 and line["error"] is None and line["upgrade"] is False
    assert line["bytes_in"] > 0 and line["bytes_out"] > 0
    assert line["client"] == "127.0.0.1"


def test_sigterm_exits_zero(app):
    assert app.stop() == 0
    assert any("stopped" in l for l in app.err)
