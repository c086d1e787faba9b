"""The HTTP/1.1 proxy core (issue 3) against real processes: the sluice
binary, real backends (backends.py, each its own process) and real clients
(curl, raw sockets).

Every socket operation has a timeout; waits are deadline polls on observable
state (backend counters, the access log, /proc), never sleeps used as
synchronization. The few sleeps left are stimuli (a client that stops reading
for a while) whose outcome does not depend on how long they last."""

import asyncio
import hashlib
import json
import os
import re
import socket
import struct
import subprocess
import threading
import time

import pytest

MiB = 1 << 20
ACCESS_LOG_FIELDS = {"ts", "request_id", "client", "method", "target", "host", "route", "upstream",
                     "server", "upstream_target", "status", "bytes_in", "bytes_out", "duration_ms",
                     "upgrade", "error"}
REQUEST_ID = re.compile(r"^[A-Za-z0-9\-_.:]{1,128}$")


# ---- config snippets ----------------------------------------------------------

def upstream(port, name="app", extra=""):
    return f'[upstream.{name}]\nservers = ["127.0.0.1:{port}"]\n{extra}\n'


def route(name, path, up="app", extra="", match="prefix"):
    return f'[[route]]\nname = "{name}"\n{match} = "{path}"\nupstream = "{up}"\n{extra}\n'


# ---- clients --------------------------------------------------------------------

def curl(*args, timeout=30):
    """Runs curl; returns the CompletedProcess (stdout bytes)."""
    return subprocess.run(["curl", "-sS", "--max-time", str(timeout), *args], capture_output=True,
                          timeout=timeout + 10, stdin=subprocess.DEVNULL)


class Response:
    def __init__(self, version, status, reason, headers, body, head):
        self.version, self.status, self.reason = version, status, reason
        self.headers = headers          # [(name, value)] as received
        self.body = body                # decoded (chunked framing removed)
        self.head = head                # the raw head bytes
        self.chunked = False

    def get(self, name, default=None):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default

    def all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def names(self):
        return {k.lower() for k, _ in self.headers}

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Response {self.status} {self.headers} {self.body[:300]!r}>"


class Conn:
    """A raw client connection to sluice. Every read has a deadline."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.timeout = timeout
        self.buf = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.sock.close()

    def reset(self):
        """Closes with a TCP reset (SO_LINGER 0)."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise EOFError("connection closed by sluice")
        self.buf += chunk

    def _read_until(self, marker):
        while marker not in self.buf:
            self._fill()
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def _read_exactly(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_head(self):
        head = self._read_until(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        version, status, reason = (lines[0].split(" ", 2) + [""])[:3]
        headers = [tuple(s.strip() for s in l.split(":", 1)) for l in lines[1:] if l]
        return Response(version, int(status), reason, headers, b"", head)

    def read_response(self, method="GET", interim=False):
        """Reads one response; with interim=False, 1xx responses are skipped.
        The body is framed as HTTP/1.1 says (HEAD/204/304: none; chunked;
        Content-Length; else until close)."""
        while True:
            r = self.read_head()
            if 100 <= r.status < 200 and not interim:
                continue
            break
        if method == "HEAD" or r.status in (204, 304) or 100 <= r.status < 200:
            return r
        if (r.get("transfer-encoding") or "").lower() == "chunked":
            r.chunked = True
            body = b""
            while True:
                size = int(self._read_until(b"\r\n").split(b";")[0].strip(), 16)
                if size == 0:
                    while self._read_until(b"\r\n") != b"\r\n":
                        pass
                    break
                body += self._read_exactly(size)
                assert self._read_exactly(2) == b"\r\n"
            r.body = body
        elif r.get("content-length") is not None:
            r.body = self._read_exactly(int(r.get("content-length")))
        else:
            r.body = self.read_until_close()
        return r

    def read_until_seen(self, marker):
        """Reads until `marker` is among the bytes received (the socket
        timeout bounds each wait); returns everything buffered so far."""
        while marker not in self.buf:
            self._fill()
        return self.buf

    def read_until_close(self):
        while True:
            try:
                self._fill()
            except EOFError:
                out, self.buf = self.buf, b""
                return out

    def is_closed(self):
        """True if sluice closed the connection (EOF, nothing more to read)."""
        try:
            self._fill()
        except (EOFError, ConnectionResetError):
            return not self.buf
        return False


def request(port, raw_bytes, method="GET", timeout=10):
    """One request on a fresh connection; returns its response."""
    with Conn(port, timeout) as c:
        c.send(raw_bytes)
        return c.read_response(method)


def get(port, target, headers="", method="GET", body=b"", timeout=10):
    head = f"{method} {target} HTTP/1.1\r\nHost: h\r\n{headers}"
    if body:
        head += f"Content-Length: {len(body)}\r\n"
    return request(port, head.encode() + b"\r\n" + body, method, timeout)


def assert_sluice_error(r, status, code):
    """An error sluice answered itself: exact status, Sluice-Error, a one-line text body."""
    assert r.status == status, r
    assert r.get("sluice-error") == code, r
    text = r.body.decode()
    assert text.strip() and "\n" not in text.rstrip("\n"), f"not a one-line body: {text!r}"


def free_port():
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout=10, what="condition", interval=0.05):
    """predicate()'s first true value, polled until `timeout`; `what` (or
    what()) names it in the failure."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            what = what() if callable(what) else what
            raise AssertionError(f"{what} not reached within {timeout}s (last: {value!r})")
        time.sleep(interval)


def refused(port):
    """True when a connection to 127.0.0.1:port is refused."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return False
    except ConnectionRefusedError:
        return True


class RssWatch:
    """Samples sluice's VmRSS every 20 ms in a thread; `peak` is the maximum."""

    def __init__(self, sluice):
        self.sluice = sluice
        self.base = sluice.rss_kib()
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.sluice.rss_kib())
            except (FileNotFoundError, ProcessLookupError):
                return
            time.sleep(0.02)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)

    @property
    def growth_mib(self):
        return (self.peak - self.base) / 1024


# ---- fixtures -------------------------------------------------------------------

@pytest.fixture
def app(backend, sluice_proc):
    """A backend and a sluice with the common routes in front of it."""
    b = backend()
    s = sluice_proc(upstream(b.port) + route("api", "/api", extra="strip_prefix = true") +
                    route("v2", "/v2", extra='rewrite_prefix = "/version2"') +
                    route("all", "/") +
                    '[[route]]\nname = "health"\nexact = "/healthz"\nrespond = { body = "ok\\n" }\n' +
                    '[[route]]\nname = "teapot"\nexact = "/teapot"\n'
                    'respond = { status = 418, body = "short and stout", content_type = "text/x-tea" }\n' +
                    '[[route]]\nname = "moved"\nprefix = "/old"\nredirect = { scheme = "https" }\n' +
                    '[[route]]\nname = "moved-port"\nprefix = "/oldport"\nredirect = { scheme = "https", port = 8443 }\n' +
                    '[[route]]\nname = "gone"\nexact = "/gone"\nredirect = { location = "https://x.example/", status = 301 }\n')
    s.backend = b
    return s


@pytest.fixture
def blackhole():
    """A 127.0.0.1 port whose accept queue is full: connects to it hang
    (the kernel drops the SYNs) until the caller's connect timeout."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    port = lsock.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):
            c = socket.socket()
            c.settimeout(0.3)
            try:
                c.connect(("127.0.0.1", port))
                fillers.append(c)
            except (socket.timeout, OSError):
                c.close()
                break
        else:
            pytest.skip("could not fill a listen backlog here")
        yield port
    finally:
        for c in fillers:
            c.close()
        lsock.close()


# ---- paths and routing ------------------------------------------------------------

def test_path_seen_by_the_backend(app):
    assert get(app.port, "/api/users?id=7").json()["path"] == "/users?id=7"      # strip_prefix
    assert get(app.port, "/api").json()["path"] == "/"
    assert get(app.port, "/api/").json()["path"] == "/"
    assert get(app.port, "/api?x=1").json()["path"] == "/?x=1"
    assert get(app.port, "/v2/x?y=1").json()["path"] == "/version2/x?y=1"       # rewrite_prefix
    assert get(app.port, "/v2").json()["path"] == "/version2"
    # Default: unchanged byte for byte; /apix is not under /api.
    assert get(app.port, "/apix/a%2Fb?q=%20&r").json()["path"] == "/apix/a%2Fb?q=%20&r"
    assert get(app.port, "/other//x/./y").json()["path"] == "/other//x/./y"
    assert app.backend.stats()["requests"] == 8


def test_path_climbing_above_the_prefix_is_400_path_escape(app):
    for target in ("/api/../admin", "/api/%2e%2e/admin", "/api/x/../../admin"):
        r = get(app.port, target)
        assert_sluice_error(r, 400, "path_escape")
    assert app.backend.stats()["requests"] == 0
    assert get(app.port, "/api/x/../y").json()["path"] == "/x/../y"   # stays under /api: passed as is


# ---- keep-alive -----------------------------------------------------------------------

def test_client_keepalive_many_requests_on_one_connection(app):
    with Conn(app.port) as c:
        for i in range(10):
            c.send(f"GET /api/{i} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
            r = c.read_response()
            assert r.status == 200 and r.json()["path"] == f"/{i}"
            assert (r.get("connection") or "").lower() != "close"
        c.send(b"POST /api/post HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc")
        assert c.read_response().json()["body_len"] == 3
        c.send(b"GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n")
        assert c.read_response().body == b"ok\n"
    # curl agrees: 12 URLs, one connection.
    args = []
    for i in range(12):
        args += ["-o", "/dev/null", f"{app.url}/api/{i}"]
    p = curl("-w", "%{num_connects}\\n", *args)
    assert sum(int(x) for x in p.stdout.split()) == 1, p


def test_upstream_keepalive_reuses_pooled_connections(app):
    for i in range(20):                          # one client connection
        assert get(app.port, f"/api/a{i}").status == 200
    p = curl("-w", "%{http_code}\\n", *sum((["-o", "/dev/null", f"{app.url}/api/b{i}"] for i in range(10)), []))
    assert p.stdout.split() == [b"200"] * 10
    st = app.backend.stats()
    assert st["requests"] == 30
    # Sequential requests: at most one upstream connection per worker (2).
    assert st["connections"] <= 2, st["connections"]


# ---- pipelining -----------------------------------------------------------------------

PIPELINE = (b"GET /slow?ms=300 HTTP/1.1\r\nHost: h\r\n\r\n"
            b"GET /api/one HTTP/1.1\r\nHost: h\r\n\r\n"
            b"POST /api/two HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
            b"GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n"
            b"POST /api/three HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
            b"HEAD /api/four HTTP/1.1\r\nHost: h\r\n\r\n"
            b"GET /api/last HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")


def check_pipeline(c):
    assert c.read_response().body == b"slow\n"          # the slow first answer still comes first
    assert c.read_response().json()["path"] == "/one"
    two = c.read_response().json()
    assert two["path"] == "/two" and two["body_len"] == 5
    assert c.read_response().body == b"ok\n"
    three = c.read_response().json()
    assert three["path"] == "/three" and three["body_len"] == 3
    four = c.read_response("HEAD")
    assert four.status == 200 and int(four.get("content-length")) > 0
    assert c.read_response().json()["path"] == "/last"
    assert c.is_closed()


def test_pipelined_requests_are_answered_in_order(app):
    with Conn(app.port) as c:
        c.send(PIPELINE)
        check_pipeline(c)


def test_pipelined_requests_split_at_every_few_bytes(app):
    with Conn(app.port) as c:
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(0, len(PIPELINE), 7):
            c.send(PIPELINE[i:i + 7])
        check_pipeline(c)


def test_regression_a_buffer_of_pipelined_local_replies_is_answered_without_recursion(app):
    # 1,700 pipelined requests answered by sluice itself used to recurse once
    # per request and overflow the worker's stack (found under ASan).
    req = b"GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n"
    n = 60000 // len(req)
    with Conn(app.port) as c:
        c.send(req * n)
        for _ in range(n):
            assert c.read_response().body == b"ok\n"
    assert app.alive()


# ---- bodies: chunked, streamed, large ----------------------------------------------------

def test_chunked_request_body(app):
    p = curl("-H", "Transfer-Encoding: chunked", "--data-binary", "hello chunked world", f"{app.url}/api/up")
    body = json.loads(p.stdout)
    assert body["body_len"] == 19
    assert body["body_sha256"] == hashlib.sha256(b"hello chunked world").hexdigest()
    # Raw: several chunks, a chunk extension, a trailer; the body arrives whole and re-chunked.
    with Conn(app.port) as c:
        c.send(b"POST /api/raw HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n1;ext=1\r\n \r\n6\r\nworld!\r\n0\r\nX-Trailer: t\r\n\r\n")
        info = c.read_response().json()
    assert info["body_len"] == 12
    assert info["body_sha256"] == hashlib.sha256(b"hello world!").hexdigest()
    framing = [(k.lower(), v.lower()) for k, v in info["headers"] if k.lower() in ("transfer-encoding", "content-length")]
    assert framing == [("transfer-encoding", "chunked")]


def test_chunked_response_body(app):
    with Conn(app.port) as c:
        c.send(b"GET /chunked?n=4&size=5 HTTP/1.1\r\nHost: h\r\n\r\n")
        r = c.read_response()
        assert r.chunked and r.body == b"aaaaabbbbbcccccddddd"
        c.send(b"GET /api/next HTTP/1.1\r\nHost: h\r\n\r\n")       # framing intact: the connection goes on
        assert c.read_response().json()["path"] == "/next"
    assert curl(f"{app.url}/chunked?n=4&size=5").stdout == b"aaaaabbbbbcccccddddd"


def test_response_ended_by_close_reaches_an_http11_client_chunked(app):
    with Conn(app.port) as c:
        c.send(b"GET /until-close HTTP/1.1\r\nHost: h\r\n\r\n")
        r = c.read_response()
    assert r.chunked and r.body == b"body until close"


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
def test_response_body_is_streamed_as_it_arrives(app, framing):
    """The backend sends "first\\n" and then waits for a release that the
    test gives only once "first\\n" reached the client through sluice: a
    proxy that buffered the response would never deliver it."""
    key = f"stream-{framing}"
    target = f"/hold?id={key}" + ("&cl=1" if framing == "content-length" else "")
    with Conn(app.port) as c:
        c.send(f"GET {target} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
        r = c.read_head()
        assert r.status == 200
        assert r.get("content-length") == ("13" if framing == "content-length" else None)
        c.read_until_seen(b"first\n")
        assert b"second" not in c.buf
        app.backend.release(key)
        c.read_until_seen(b"second\n")
        c.send(b"GET /api/next HTTP/1.1\r\nHost: h\r\n\r\n")
        if framing == "chunked":
            c.read_until_seen(b"0\r\n\r\n")
            c.buf = c.buf[c.buf.index(b"0\r\n\r\n") + 5:]
        else:
            c.buf = c.buf[c.buf.index(b"second\n") + 7:]
        assert c.read_response().json()["path"] == "/next"


def test_request_body_is_streamed_as_it_arrives(app):
    """Half a Content-Length body reaches the backend before the client sends
    the rest: nothing waits for the whole body."""
    with Conn(app.port) as c:
        c.send(b"POST /api/progress HTTP/1.1\r\nHost: h\r\nX-Progress-Id: p1\r\nContent-Length: 20000\r\n\r\n"
               + b"a" * 10000)
        app.backend.wait_stats(lambda st: st["progress"].get("p1") == 10000, what="first half at the backend")
        c.send(b"b" * 10000)
        info = c.read_response().json()
    assert info["body_len"] == 20000
    assert info["body_sha256"] == hashlib.sha256(b"a" * 10000 + b"b" * 10000).hexdigest()
    # The same with a chunked body.
    with Conn(app.port) as c:
        c.send(b"POST /api/progress HTTP/1.1\r\nHost: h\r\nX-Progress-Id: p2\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"2710\r\n" + b"c" * 10000 + b"\r\n")
        app.backend.wait_stats(lambda st: st["progress"].get("p2") == 10000, what="first chunk at the backend")
        c.send(b"3\r\nend\r\n0\r\n\r\n")
        assert c.read_response().json()["body_len"] == 10003


RSS_BOUND_MIB = 60


def test_large_download_streams_in_bounded_memory(app):
    get(app.port, "/api/warmup")
    with RssWatch(app) as rss:
        # 100 MiB with Content-Length to a client that first stops reading for
        # a while (sluice must stop reading the backend, not buffer), then reads all.
        with Conn(app.port, timeout=60) as c:
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            c.send(b"GET /big?mb=100 HTTP/1.1\r\nHost: h\r\n\r\n")
            time.sleep(1.5)   # stimulus: a slow reader
            r = c.read_head()
            assert r.status == 200 and r.get("content-length") == str(100 * MiB)
            got = len(c.buf)
            c.buf = b""
            while got < 100 * MiB:
                chunk = c.sock.recv(1 << 20)
                assert chunk, f"closed after {got} bytes"
                got += len(chunk)
            assert got == 100 * MiB
        # 100 MiB chunked from the backend, through curl.
        p = curl("-o", "/dev/null", "-w", "%{http_code} %{size_download}", f"{app.url}/big?mb=100&chunked=1",
                 timeout=110)
        assert p.stdout == f"200 {100 * MiB}".encode(), p
    print(f"RSS {rss.base} -> {rss.peak} KiB")
    assert rss.growth_mib < RSS_BOUND_MIB, f"RSS grew {rss.growth_mib:.1f} MiB (from {rss.base} KiB to {rss.peak} KiB)"


def test_large_upload_streams_in_bounded_memory(app, tmp_path):
    big = tmp_path / "upload.bin"
    block = os.urandom(MiB)
    with open(big, "wb") as f:
        for i in range(100):
            f.write(block[i:] + block[:i])
    sha = hashlib.sha256()
    with open(big, "rb") as f:
        for piece in iter(lambda: f.read(MiB), b""):
            sha.update(piece)
    get(app.port, "/api/warmup")
    with RssWatch(app) as rss:
        # Content-Length upload to a backend that waits before it reads: sluice
        # must stop reading the client rather than buffer.
        p = curl("-T", str(big), "-X", "POST", "-H", "Expect:", "-H", "X-Backend-Pause-Ms: 1500",
                 f"{app.url}/api/upload", timeout=110)
        info = json.loads(p.stdout)
        assert info["body_len"] == 100 * MiB and info["body_sha256"] == sha.hexdigest()
        assert ["Content-Length", str(100 * MiB)] in [[k.title(), v] for k, v in info["headers"]]
        # Chunked upload (curl reads stdin, so it cannot know the length).
        with open(big, "rb") as f:
            p = subprocess.run(["curl", "-sS", "--max-time", "110", "-T", "-", "-X", "POST", "-H", "Expect:",
                                "-H", "X-Backend-Pause-Ms: 1500", f"{app.url}/api/upload"],
                               stdin=f, capture_output=True, timeout=120)
        info = json.loads(p.stdout)
        assert info["body_len"] == 100 * MiB and info["body_sha256"] == sha.hexdigest()
        assert ["transfer-encoding", "chunked"] in [[k.lower(), v.lower()] for k, v in info["headers"]]
    print(f"RSS {rss.base} -> {rss.peak} KiB")
    assert rss.growth_mib < RSS_BOUND_MIB, f"RSS grew {rss.growth_mib:.1f} MiB (from {rss.base} KiB to {rss.peak} KiB)"


# ---- upstream failures ---------------------------------------------------------------------

def test_slow_upstream_gets_504_read_timeout(backend, sluice_proc):
    b = backend()
    s = sluice_proc(upstream(b.port, name="slowpoke") + route("slow", "/", up="slowpoke", extra='read_timeout = "1s"'))
    r = get(s.port, "/slow?ms=4000", timeout=30)
    assert_sluice_error(r, 504, "read_timeout")
    text = r.body.decode()
    assert "slowpoke" in text and b.addr in text and "read" in text
    line = s.wait_log(lambda l: l["status"] == 504)
    assert line["error"] == "read_timeout" and line["route"] == "slow" and line["upstream"] == "slowpoke"
    assert line["server"] == b.addr
    assert get(s.port, "/slow?ms=10").body == b"slow\n"          # a fast answer on the same route is fine


def test_regression_body_read_in_parts_does_not_leave_a_client_timer_running(backend, sluice_proc):
    # The client-body timer was re-armed per body read and never stopped when
    # the body ended: it cut a streaming response read_timeout later.
    b = backend()
    s = sluice_proc(upstream(b.port) + route("all", "/", extra='read_timeout = "1s"'))
    with Conn(s.port) as c:
        c.send(b"POST /chunked?n=40&size=3 HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n12345")
        time.sleep(0.2)
        c.send(b"67890")
        r = c.read_response()
    assert r.status == 200
    assert len(r.body) == 40 * 3  # two seconds of chunks, all of them


def test_read_timeout_is_silence_between_bytes_not_total_time(backend, sluice_proc):
    b = backend()
    s = sluice_proc(upstream(b.port) + route("stream", "/", extra='read_timeout = "2s"'))
    # 10 chunks 250 ms apart: 2.5 s in all, never 2 s of silence.
    r = get(s.port, "/stream?n=10&ms=250", timeout=30)
    assert r.status == 200 and r.body == b"".join(f"tick {i}\n".encode() for i in range(10))


def test_refused_port_is_502_naming_upstream_and_address(sluice_proc):
    port = free_port()
    s = sluice_proc(upstream(port, name="api") + route("api", "/", up="api"))
    r = get(s.port, "/x")
    assert_sluice_error(r, 502, "upstream_refused")
    text = r.body.decode()
    assert "api" in text and f"127.0.0.1:{port}" in text and "refused" in text
    p = curl("-i", f"{s.url}/y")
    assert p.stdout.startswith(b"HTTP/1.1 502") and b"sluice-error: upstream_refused" in p.stdout.lower()
    line = s.wait_log(lambda l: l["target"] == "/x")
    assert line["status"] == 502 and line["error"] == "upstream_refused"
    assert line["upstream"] == "api" and line["server"] == f"127.0.0.1:{port}"


def test_connect_failure_is_retried_on_another_server(backend, sluice_proc):
    good = backend()
    bad = free_port()
    s = sluice_proc(f'[upstream.app]\nservers = ["127.0.0.1:{bad}", "127.0.0.1:{good.port}"]\n' + route("all", "/"))
    for i in range(6):   # round robin: every other request first tries the refused server
        r = get(s.port, f"/r{i}", method="POST", body=b"x")
        assert r.status == 200 and r.json()["body_len"] == 1
    assert good.stats()["requests"] == 6


def test_connect_timeout_is_504(blackhole, sluice_proc):
    s = sluice_proc(upstream(blackhole, name="hole", extra='connect_timeout = "1s"') + route("all", "/", up="hole"))
    r = get(s.port, "/x", timeout=30)
    assert_sluice_error(r, 504, "connect_timeout")
    text = r.body.decode()
    assert "hole" in text and f"127.0.0.1:{blackhole}" in text and "connect" in text


def test_regression_an_unsolicited_101_is_a_502_never_a_tunnel(app):
    # A HEAD answered with 101 used to become a raw tunnel on an http route,
    # and a GET got a bare close instead of a 502.
    for method in ("GET", "HEAD"):
        with Conn(app.port) as c:
            c.send(f"{method} /switch HTTP/1.1\r\nHost: h\r\n\r\n".encode())
            r = c.read_response(method)
        assert r.status == 502, method
        assert r.get("sluice-error") == "upstream_bad_response"


def test_upstream_garbage_is_502_bad_response(app):
    assert_sluice_error(get(app.port, "/garbage"), 502, "upstream_bad_response")
    assert get(app.port, "/healthz").body == b"ok\n"


def test_upstream_reset_before_answering_is_502(app):
    r = get(app.port, "/reset", method="POST", body=b"data")
    assert_sluice_error(r, 502, "upstream_reset")
    assert app.backend.addr in r.body.decode()
    # A plain close without an answer is a 502 as well.
    r = get(app.port, "/close-early", method="POST", body=b"data")
    assert r.status == 502 and r.get("sluice-error") in ("upstream_reset", "upstream_bad_response"), r


def test_upstream_closing_mid_response_ends_the_client_connection(app):
    with Conn(app.port) as c:
        c.send(b"GET /close-mid HTTP/1.1\r\nHost: h\r\n\r\n")
        r = c.read_head()
        assert r.status == 200 and r.get("content-length") == "1000"
        rest = c.read_until_close()          # cut short: the client sees the connection end
        assert len(rest) < 1000
    assert curl(f"{app.url}/close-mid").returncode != 0
    assert get(app.port, "/healthz").body == b"ok\n"


def test_upstream_error_statuses_are_relayed_without_sluice_error(app):
    for code in (404, 500, 502, 503, 504):
        r = get(app.port, f"/status/{code}")
        assert r.status == code and r.get("sluice-error") is None


# ---- routing errors and local replies ----------------------------------------------------------

def test_unknown_route_is_404_naming_path_and_host(backend, sluice_proc):
    b = backend()
    s = sluice_proc(upstream(b.port) + route("api", "/api"))
    r = request(s.port, b"GET /nothing/here?x=1 HTTP/1.1\r\nHost: Shop.Example.com:8080\r\n\r\n")
    assert_sluice_error(r, 404, "no_route")
    text = r.body.decode()
    assert "/nothing/here" in text and "Shop.Example.com:8080" in text and "sluice explain" in text
    line = s.wait_log(lambda l: l["status"] == 404)
    assert line["route"] is None and line["upstream"] is None and line["error"] == "no_route"
    assert b.stats()["connections"] == 0


def test_respond_routes(app):
    r = get(app.port, "/healthz")
    assert r.status == 200 and r.body == b"ok\n"
    assert r.get("content-type") == "text/plain; charset=utf-8" and r.get("sluice-error") is None
    r = get(app.port, "/healthz", method="HEAD")
    assert r.status == 200 and r.get("content-length") == "3" and r.body == b""
    r = get(app.port, "/teapot")
    assert r.status == 418 and r.body == b"short and stout" and r.get("content-type") == "text/x-tea"
    assert app.backend.stats()["connections"] == 0


def test_redirect_routes(app):
    r = request(app.port, b"GET /old/path?q=1&r=%2F HTTP/1.1\r\nHost: app.example.com:8080\r\n\r\n")
    assert r.status == 308                                         # the default status
    assert r.get("location") == "https://app.example.com/old/path?q=1&r=%2F"  # path + query kept, port dropped
    r = request(app.port, b"GET /oldport/x?y HTTP/1.1\r\nHost: app.example.com:8080\r\n\r\n")
    assert r.status == 308 and r.get("location") == "https://app.example.com:8443/oldport/x?y"
    r = get(app.port, "/gone?ignored=1")
    assert r.status == 301 and r.get("location") == "https://x.example/"
    p = curl("-i", "-H", "Host: app.example.com", f"{app.url}/old")
    assert p.stdout.startswith(b"HTTP/1.1 308") and b"\nlocation: https://app.example.com/old\r\n" in p.stdout.lower()
    assert app.backend.stats()["connections"] == 0


def test_websocket_upgrade_on_http_route_is_400_naming_the_route(app):
    r = get(app.port, "/api/ws", headers="Upgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")
    assert_sluice_error(r, 400, "upgrade_not_allowed")
    assert "api" in r.body.decode()
    assert app.backend.stats()["requests"] == 0


def test_h2c_upgrade_is_dropped_and_the_request_proxied(app):
    r = get(app.port, "/api/h2c", headers="Upgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n"
            "HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n")
    assert r.status == 200
    seen = {k.lower() for k, _ in r.json()["headers"]}
    assert not seen & {"upgrade", "http2-settings", "connection"}


# ---- headers ------------------------------------------------------------------------------------

def test_hop_by_hop_headers_removed_on_the_request_leg(app):
    r = request(app.port,
                b"POST /api/h HTTP/1.1\r\nHost: h\r\n"
                b"Connection: keep-alive, X-Hop\r\nConnection: x-hop-two\r\nX-Hop: secret\r\nX-HOP-TWO: secret\r\n"
                b"Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-Sum\r\n"
                b"Upgrade: h2c\r\nX-End-To-End: yes\r\nX-Multi: 1\r\nX-Multi: 2\r\n"
                b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n")
    info = r.json()
    names = [k.lower() for k, _ in info["headers"]]
    for gone in ("connection", "x-hop", "x-hop-two", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"):
        assert gone not in names, (gone, info["headers"])
    pairs = [(k.lower(), v) for k, v in info["headers"]]
    assert ("x-end-to-end", "yes") in pairs and ("cache-control", "no-cache") in pairs
    assert [v for k, v in pairs if k == "x-multi"] in (["1", "2"], ["1, 2"])
    assert info["body_len"] == 4
    # The framing was regenerated: exactly one of Content-Length / Transfer-Encoding: chunked.
    framing = [(k, v.lower()) for k, v in pairs if k in ("content-length", "transfer-encoding")]
    assert framing in ([("transfer-encoding", "chunked")], [("content-length", "4")])


def test_hop_by_hop_headers_removed_on_the_response_leg(app):
    for method in ("GET", "HEAD"):
        r = get(app.port, "/hop", method=method)
        assert r.status == 200
        names = r.names()
        for gone in ("x-hop-response", "x-hop-other", "keep-alive", "proxy-connection", "upgrade", "trailer", "te"):
            assert gone not in names, (gone, r.headers)
        for value in r.all("connection"):   # sluice's own Connection header, if any, is its own
            assert value.lower() in ("keep-alive", "close"), r.headers
        assert r.get("x-end-to-end") == "kept"
    assert get(app.port, "/hop").body == b"hop\n"


def test_forwarded_headers(app):
    r = request(app.port, b"GET /api/h HTTP/1.1\r\nHost: App.Example:81\r\n"
                          b"X-Forwarded-For: 203.0.113.9, 198.51.100.2\r\n\r\n")
    seen = {}
    for k, v in r.json()["headers"]:
        seen.setdefault(k.lower(), []).append(v)
    assert seen["x-forwarded-for"] == ["203.0.113.9, 198.51.100.2, 127.0.0.1"]       # appended
    assert seen["x-forwarded-proto"] == ["http"]
    assert seen["x-forwarded-host"] == ["App.Example:81"]                               # as the client sent it
    assert seen["host"] == ["App.Example:81"]                                           # unchanged
    seen = {k.lower(): v for k, v in get(app.port, "/api/h").json()["headers"]}
    assert seen["x-forwarded-for"] == "127.0.0.1"
    # A client cannot claim another scheme.
    seen = [(k.lower(), v) for k, v in get(app.port, "/api/h", headers="X-Forwarded-Proto: https\r\n").json()["headers"]]
    assert [v for k, v in seen if k == "x-forwarded-proto"] == ["http"]


@pytest.mark.parametrize("sent,kept", [
    ("abc-123.x:y_Z", True),
    ("A" * 128, True),
    ("A" * 129, False),
    ("bad id!", False),
    ("semi;colon", False),
    ("", False),
    (None, False),
], ids=["valid", "128-chars", "129-chars", "space-bang", "semicolon", "empty", "absent"])
def test_request_id_kept_when_valid_replaced_otherwise(app, sent, kept):
    headers = f"X-Request-Id: {sent}\r\n" if sent is not None else ""
    r = get(app.port, "/api/rid", headers=headers)
    upstream_ids = [v for k, v in r.json()["headers"] if k.lower() == "x-request-id"]
    assert len(upstream_ids) == 1, r.json()["headers"]
    rid = upstream_ids[0]
    assert r.all("x-request-id") == [rid]                     # returned to the client
    if kept:
        assert rid == sent
    else:
        assert rid != sent and REQUEST_ID.match(rid), rid
    line = app.wait_log(lambda l: l["target"] == "/api/rid")
    assert line["request_id"] == rid


# ---- request framing attacks and malformed input -------------------------------------------------------

@pytest.mark.parametrize("request_bytes", [
    b"POST /api/x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"0\r\n\r\nGET /api/smuggled HTTP/1.1\r\nHost: h\r\n\r\n",
    b"POST /api/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 48\r\n\r\n"
    b"0\r\n\r\nGET /api/smuggled HTTP/1.1\r\nHost: h\r\n\r\n",
    b"POST /api/x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 44\r\n\r\n"
    b"helloGET /api/smuggled HTTP/1.1\r\nHost: h\r\n\r\n",
    b"POST /api/x HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 44\r\n\r\n"
    b"helloGET /api/smuggled HTTP/1.1\r\nHost: h\r\n\r\n",
    b"POST /api/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"POST /api/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n",
    b"POST /api/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
], ids=["cl-then-te", "te-then-cl", "double-cl", "cl-list", "te-xchunked", "te-twice", "te-not-final"])
def test_smuggling_shapes_are_400_and_nothing_reaches_the_backend(app, request_bytes):
    with Conn(app.port) as c:
        c.send(request_bytes)
        r = c.read_response()
        assert_sluice_error(r, 400, "request_smuggling")
        assert (r.get("connection") or "").lower() == "close"
        assert c.read_until_close() == b""      # one answer, then the connection ends: nothing smuggled through
    st = app.backend.stats()
    assert st["connections"] == 0 and st["requests"] == 0 and st["targets"] == [], st
    line = app.wait_log(lambda l: l["status"] == 400)
    assert line["error"] == "request_smuggling"


@pytest.mark.parametrize("request_bytes", [
    b"GARBAGE\r\n\r\n",
    b"GET /api HTTP/1.1\nHost: h\n\n",
    b"GET /api HTTP/1.1\r\nHost: h\r\nBad Header: x\r\n\r\n",
    b"POST /api HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    b"GET /api HTTP/1.1\r\n\r\n",
    b"GET /api HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET /api HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n",
    b"POST /api HTTP/1.1\r\nHost: h\r\nContent-Length: 12x\r\n\r\n",
    b"POST /api HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
    b"GET /a b HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET api HTTP/1.1\r\nHost: h\r\n\r\n",
    b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
], ids=["garbage", "bare-lf", "space-in-name", "space-before-colon", "no-host", "two-hosts", "nul",
        "cl-not-a-number", "cl-negative", "space-in-target", "relative-target", "connect"])
def test_malformed_requests_are_400_bad_request(app, request_bytes):
    with Conn(app.port) as c:
        c.send(request_bytes)
        r = c.read_response()
        assert_sluice_error(r, 400, "bad_request")
        assert (r.get("connection") or "").lower() == "close"
        assert c.read_until_close() == b""
    assert app.backend.stats()["connections"] == 0


def test_obsolete_line_folding_is_refused_or_unfolded(app):
    """RFC 9112 5.2: a proxy rejects obs-fold or replaces it with spaces;
    it never passes the fold on."""
    r = request(app.port, b"GET /api/fold HTTP/1.1\r\nHost: h\r\nX-Folded: a\r\n folded\r\n\r\n")
    if r.status == 400:
        assert_sluice_error(r, 400, "bad_request")
    else:
        headers = r.json()["headers"]
        assert all(k == k.strip() and k for k, _ in headers), headers
        assert [v.split() for k, v in headers if k.lower() == "x-folded"] == [["a", "folded"]]


# ---- limits ---------------------------------------------------------------------------------------

def test_oversized_head_is_431(backend, sluice_proc):
    b = backend()
    s = sluice_proc(upstream(b.port) + route("all", "/"), server='max_header_size = "4KiB"')
    with Conn(s.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n")
        r = c.read_response()
        assert_sluice_error(r, 431, "headers_too_large")
        assert (r.get("connection") or "").lower() == "close"
        assert c.read_until_close() == b""
    # Many small headers count too.
    r = request(s.port, b"GET / HTTP/1.1\r\nHost: h\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(600)) + b"\r\n")
    assert_sluice_error(r, 431, "headers_too_large")
    assert b.stats()["connections"] == 0
    # The size counts the request line, every header line, CRLFs and the final empty line.
    base = b"GET / HTTP/1.1\r\nHost: h\r\nX-Pad: \r\n\r\n"
    exact = b"GET / HTTP/1.1\r\nHost: h\r\nX-Pad: " + b"p" * (4096 - len(base)) + b"\r\n\r\n"
    assert len(exact) == 4096
    assert request(s.port, exact).status == 200
    over = b"GET / HTTP/1.1\r\nHost: h\r\nX-Pad: " + b"p" * (4097 - len(base)) + b"\r\n\r\n"
    assert_sluice_error(request(s.port, over), 431, "headers_too_large")


@pytest.fixture
def limited(backend, sluice_proc):
    b = backend()
    s = sluice_proc(upstream(b.port) + route("up", "/", extra='max_body = "1KiB"'))
    s.backend = b
    return s


def test_content_length_over_max_body_is_413_before_the_backend_sees_anything(limited):
    with Conn(limited.port) as c:
        c.send(b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 2000\r\n\r\n" + b"x" * 2000)
        r = c.read_response()
        assert_sluice_error(r, 413, "body_too_large")
        assert (r.get("connection") or "").lower() == "close"
    # With Expect: 100-continue the answer is the 413, not a 100.
    with Conn(limited.port) as c:
        c.send(b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 1025\r\nExpect: 100-continue\r\n\r\n")
        r = c.read_response(interim=True)
        assert_sluice_error(r, 413, "body_too_large")
    assert limited.backend.stats()["connections"] == 0
    p = curl("-i", "--data-binary", "x" * 2000, f"{limited.url}/x")
    assert p.stdout.startswith(b"HTTP/1.1 413") and b"sluice-error: body_too_large" in p.stdout.lower()
    # Exactly max_body passes.
    r = get(limited.port, "/ok", method="POST", body=b"z" * 1024)
    assert r.status == 200 and r.json()["body_len"] == 1024
    assert limited.backend.stats()["targets"] == ["/ok"]


def test_chunked_body_growing_past_max_body_is_413_or_closed(limited):
    with Conn(limited.port) as c:
        c.send(b"POST /grow HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"258\r\n" + b"y" * 600 + b"\r\n")
        try:
            c.send(b"258\r\n" + b"y" * 600 + b"\r\n0\r\n\r\n")
            r = c.read_response()
            assert_sluice_error(r, 413, "body_too_large")
            assert c.read_until_close() == b""
        except (EOFError, ConnectionResetError, BrokenPipeError):
            pass      # "or a closed connection if a response had started"
    # The backend never got a complete request, and its connection was closed (never pooled).
    st = limited.backend.wait_stats(lambda st: st["open"] == 0, what="upstream connection closed")
    assert st["completed"] == 0
    p = curl("-i", "-H", "Transfer-Encoding: chunked", "--data-binary", "y" * 5000, f"{limited.url}/x")
    assert p.stdout.startswith(b"HTTP/1.1 413") or p.returncode != 0
    assert limited.backend.stats()["completed"] == 0


def test_header_timeout_is_408(backend, sluice_proc):
    b = backend()
    s = sluice_proc(upstream(b.port) + route("all", "/"), server='header_timeout = "1s"')
    # A new connection that sends half a head.
    with Conn(s.port, timeout=15) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: h\r\n")
        r = c.read_response()
        assert_sluice_error(r, 408, "header_timeout")
        assert (r.get("connection") or "").lower() == "close"
        assert c.read_until_close() == b""
    # A kept-alive connection whose next head stalls after its first byte.
    with Conn(s.port, timeout=15) as c:
        c.send(b"GET /first HTTP/1.1\r\nHost: h\r\n\r\n")
        assert c.read_response().status == 200
        c.send(b"GET /second HTTP/1.1\r\nHo")
        assert_sluice_error(c.read_response(), 408, "header_timeout")
    assert b.stats()["targets"] == ["/first"]


def test_header_timeout_is_not_reset_by_a_trickle(backend, sluice_proc):
    """Slowloris: one header byte every 100 ms never completes a head."""
    b = backend()
    s = sluice_proc(upstream(b.port) + route("all", "/"), server='header_timeout = "1s"')
    with Conn(s.port, timeout=15) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: h\r\nX-Slow: ")
        c.sock.settimeout(0.1)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and b"\r\n\r\n" not in c.buf:
            try:
                c.send(b"a")
                c._fill()
            except socket.timeout:
                continue
            except (EOFError, BrokenPipeError, ConnectionResetError):
                break
        c.sock.settimeout(15)
        assert c.buf.startswith(b"HTTP/1.1 408"), c.buf[:200]
        r = c.read_response()
        assert_sluice_error(r, 408, "header_timeout")


def test_idle_keepalive_connection_closes_silently(backend, sluice_proc):
    b = backend()
    s = sluice_proc(upstream(b.port) + route("all", "/"), server='keepalive_timeout = "1s"')
    with Conn(s.port, timeout=15) as c:
        c.send(b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
        assert c.read_response().status == 200
        assert c.read_until_close() == b""      # closed without a 408 or anything else


def test_max_connections_over_capacity_is_503(backend, sluice_proc):
    b = backend()
    s = sluice_proc(upstream(b.port) + route("all", "/"), server="max_connections = 5")
    held = []
    try:
        for i in range(5):        # five connections, each proven accepted by a full exchange
            c = Conn(s.port)
            held.append(c)
            c.send(f"GET /held{i} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
            assert c.read_response().status == 200
        for _ in range(2):        # the 6th and 7th get 503, and sluice closes them
            with Conn(s.port) as c:
                c.send(b"GET /extra HTTP/1.1\r\nHost: h\r\n\r\n")
                r = c.read_response()
                assert_sluice_error(r, 503, "over_capacity")
                assert (r.get("connection") or "").lower() == "close"
                assert c.read_until_close() == b"", "sluice keeps an over-capacity connection open"
        assert "/extra" not in b.stats()["targets"]
        held[0].send(b"GET /still HTTP/1.1\r\nHost: h\r\n\r\n")      # the held ones still work
        assert held[0].read_response().status == 200
        # A slot freed: a new connection is served again (sluice sees the close asynchronously).
        held.pop().close()
        wait_until(lambda: get(s.port, "/after").status == 200, what="a new connection served after one closed")
    finally:
        for c in held:
            c.close()


# ---- client going away ------------------------------------------------------------------------------

def test_client_disconnect_mid_request(app):
    b = app.backend
    fds = app.fd_count()
    with Conn(app.port) as other:
        other.send(b"GET /hold?id=bystander HTTP/1.1\r\nHost: h\r\n\r\n")
        assert other.read_head().status == 200
        # A body promised, half sent, the client goes away.
        c = Conn(app.port)
        c.send(b"POST /api/half HTTP/1.1\r\nHost: h\r\nX-Progress-Id: half\r\nContent-Length: 100000\r\n\r\n"
               + b"x" * 1000)
        b.wait_stats(lambda st: st["progress"].get("half") == 1000, what="partial body at the backend")
        c.close()
        # The upstream connection of the aborted request is closed; the bystander's stays.
        b.wait_stats(lambda st: st["open"] == 1, what="aborted upstream connection closed")
        b.release("bystander")
        other.read_until_seen(b"0\r\n\r\n")      # the bystander's response completes
        assert b"second\n" in other.buf
    line = app.wait_log(lambda l: l["target"] == "/api/half")
    assert line["status"] == 499
    assert b.stats()["completed"] == 1          # only the bystander
    assert get(app.port, "/api/after").status == 200
    wait_until(lambda: app.fd_count() <= fds + 2, what=f"fd count back near {fds}")


@pytest.mark.parametrize("close", ["fin", "rst"])
def test_client_disconnect_mid_response(app, close):
    b = app.backend
    for target in (b"/stream?n=0&ms=20", b"/big?mb=50"):
        c = Conn(app.port)
        c.send(b"GET " + target + b" HTTP/1.1\r\nHost: h\r\n\r\n")
        assert c.read_head().status == 200
        c._fill()
        b.wait_stats(lambda st: st["open"] >= 1)
        c.close() if close == "fin" else c.reset()
        # sluice closes the upstream connection (the response was not read to the end).
        b.wait_stats(lambda st: st["open"] == 0, what=f"upstream connection of {target} closed")
    assert b.stats()["completed"] == 0
    # sluice keeps serving.
    assert get(app.port, "/api/after").json()["path"] == "/after"
    assert get(app.port, "/healthz").body == b"ok\n"


def test_aborted_exchanges_leave_no_sockets_behind(app):
    get(app.port, "/api/warm")
    fds = app.fd_count()
    for i in range(20):
        c = Conn(app.port)
        if i % 2:
            c.send(b"GET /big?mb=5 HTTP/1.1\r\nHost: h\r\n\r\n")
            c.read_head()
        else:
            c.send(b"POST /api/x HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100)
        c.reset() if i % 4 < 2 else c.close()
    app.backend.wait_stats(lambda st: st["open"] <= 2, what="aborted upstream connections closed")
    wait_until(lambda: app.fd_count() <= fds + 2, what=f"sluice fd count back near {fds}")
    assert get(app.port, "/api/after").status == 200


# ---- many clients ----------------------------------------------------------------------------------

def test_a_thousand_concurrent_clients(app):
    n = 1000

    async def one(i, connected, go):
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", app.port), 30)
        try:
            connected.append(i)
            await go.wait()
            writer.write(f"GET /api/c{i} HTTP/1.1\r\nHost: h\r\nX-Backend-Delay-Ms: 100\r\n"
                         f"Connection: close\r\n\r\n".encode())
            await writer.drain()
            data = await asyncio.wait_for(reader.read(), 60)
        finally:
            writer.close()
        head, _, body = data.partition(b"\r\n\r\n")
        return int(head.split()[1]), json.loads(body)["path"] if head.startswith(b"HTTP/1.1 200") else body

    async def main():
        connected, go = [], asyncio.Event()
        tasks = [asyncio.create_task(one(i, connected, go)) for i in range(n)]
        deadline = time.monotonic() + 60
        while len(connected) < n and time.monotonic() < deadline and not any(t.done() for t in tasks):
            await asyncio.sleep(0.05)
        go.set()                      # all 1,000 connections are open at once, then all ask
        return await asyncio.gather(*tasks, return_exceptions=True)

    results = asyncio.run(main())
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, f"{len(errors)} clients failed, e.g. {errors[:3]}"
    assert [s for s, _ in results] == [200] * n, [r for r in results if r[0] != 200][:5]
    assert [p for _, p in results] == [f"/c{i}" for i in range(n)]
    assert app.alive()
    assert get(app.port, "/healthz").body == b"ok\n"


# ---- protocol details -----------------------------------------------------------------------------

def test_expect_100_continue(app):
    with Conn(app.port) as c:
        c.send(b"POST /api/e HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        interim = c.read_response(interim=True)
        assert interim.status == 100
        c.send(b"hello")
        r = c.read_response()
        assert r.status == 200
        info = r.json()
        assert info["body_len"] == 5
        assert "expect" not in {k.lower() for k, _ in info["headers"]}   # answered by sluice, not forwarded
        # The connection goes on.
        c.send(b"GET /api/after HTTP/1.1\r\nHost: h\r\n\r\n")
        assert c.read_response().json()["path"] == "/after"
    body = b"e" * 3000
    p = curl("-H", "Expect: 100-continue", "--data-binary", body.decode(), "-w", "\n%{http_code}", f"{app.url}/api/curl")
    out, code = p.stdout.rsplit(b"\n", 1)
    assert code == b"200" and json.loads(out)["body_len"] == 3000


def test_expect_100_continue_to_a_refused_upstream_gets_the_error_not_100(sluice_proc):
    port = free_port()
    s = sluice_proc(upstream(port) + route("all", "/"))
    with Conn(s.port) as c:
        c.send(b"POST /x HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        r = c.read_response(interim=True)
        assert_sluice_error(r, 502, "upstream_refused")


def test_head_requests(app):
    with Conn(app.port) as c:
        c.send(b"HEAD /api/h HTTP/1.1\r\nHost: h\r\n\r\nGET /api/g HTTP/1.1\r\nHost: h\r\n\r\n")
        r = c.read_response("HEAD")
        assert r.status == 200 and int(r.get("content-length")) > 0
        assert c.read_response().json()["path"] == "/g"   # nothing between the HEAD answer and the next
        c.send(b"HEAD /big?mb=1 HTTP/1.1\r\nHost: h\r\n\r\nGET /healthz HTTP/1.1\r\nHost: h\r\n\r\n")
        r = c.read_response("HEAD")
        assert r.get("content-length") == str(MiB)
        assert c.read_response().body == b"ok\n"
    assert app.backend.stats()["targets"][0] == "/h"
    p = curl("-I", f"{app.url}/big?mb=1")
    assert b"content-length: 1048576" in p.stdout.lower()


@pytest.mark.parametrize("code", [204, 304])
def test_responses_without_body(app, code):
    with Conn(app.port) as c:
        c.send(f"GET /status/{code} HTTP/1.1\r\nHost: h\r\n\r\nGET /healthz HTTP/1.1\r\nHost: h\r\n\r\n".encode())
        r = c.read_response()
        assert r.status == code
        assert r.get("transfer-encoding") is None
        assert r.get("content-length") in (None, "0")
        assert c.read_response().body == b"ok\n"     # the next response follows directly: no body in between


def test_http10_client(app):
    # A response the backend sends chunked reaches a 1.0 client unchunked, ended by close.
    with Conn(app.port) as c:
        c.send(b"GET /chunked?n=2&size=3 HTTP/1.0\r\n\r\n")
        r = c.read_head()
        assert r.status == 200 and r.version in ("HTTP/1.0", "HTTP/1.1")
        assert r.get("transfer-encoding") is None
        assert c.read_until_close() == b"aaabbb"
    # An echo: the backend gets the request, the 1.0 client a complete answer, then the close.
    with Conn(app.port) as c:
        c.send(b"POST /api/ten HTTP/1.0\r\nContent-Length: 4\r\n\r\nbody")
        r = c.read_head()
        assert r.status == 200 and r.get("transfer-encoding") is None
        rest = c.read_until_close()
        info = json.loads(rest if r.get("content-length") is None else rest[:int(r.get("content-length"))])
        assert info["path"] == "/ten" and info["body_len"] == 4
    p = curl("-0", f"{app.url}/healthz")
    assert p.stdout == b"ok\n"


def test_access_log_lines(app):
    r = get(app.port, "/api/logged?x=1", headers="X-Request-Id: log-test-1\r\n")
    assert r.get("x-request-id") == "log-test-1"
    line = app.wait_log(lambda l: l["request_id"] == "log-test-1")
    assert set(line) == ACCESS_LOG_FIELDS
    assert line["route"] == "api" and line["upstream"] == "app"
    assert line["server"] == app.backend.addr
    assert line["method"] == "GET" and line["host"] == "h" and line["client"] == "127.0.0.1"
    assert line["target"] == "/api/logged?x=1" and line["upstream_target"] == "/logged?x=1"
    assert line["status"] == 200 and line["error"] is None and line["upgrade"] is False
    assert line["bytes_in"] > 0 and line["bytes_out"] >= len(r.body)
    assert isinstance(line["duration_ms"], (int, float)) and line["duration_ms"] >= 0
    # Each line's request_id is the one the client got.
    ids = [get(app.port, f"/api/n{i}").get("x-request-id") for i in range(5)]
    for i, rid in enumerate(ids):
        assert app.wait_log(lambda l: l["request_id"] == rid)["target"] == f"/api/n{i}"
    # Local answers: respond route, no route.
    r = get(app.port, "/healthz")
    line = app.wait_log(lambda l: l["request_id"] == r.get("x-request-id"))
    assert line["route"] == "health" and line["upstream"] is None and line["server"] is None
    assert line["status"] == 200 and line["error"] is None


def test_access_log_for_errors(app):
    r = get(app.port, "/garbage")
    line = app.wait_log(lambda l: l["target"] == "/garbage")
    assert set(line) == ACCESS_LOG_FIELDS
    assert line["status"] == 502 and line["error"] == "upstream_bad_response"
    assert line["route"] == "all" and line["upstream"] == "app" and line["server"] == app.backend.addr
    assert line["upstream_target"] == "/garbage"
    assert line["request_id"] == r.get("x-request-id")


def test_sigterm_exits_zero(app):
    assert get(app.port, "/healthz").status == 200
    assert app.stop() == 0
