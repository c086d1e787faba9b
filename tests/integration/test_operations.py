"""Operating sluice (SPEC.md "Admin endpoints", "Signals", "Details: Drain",
"Details: Metrics"): the admin listener and its endpoints, the Prometheus
exposition after known traffic, tunnel gauges and close codes, and the
graceful drain on SIGTERM/SIGINT with real WebSocket peers
(node/ws_fleet.js) and backends.py.

Every process is started through the conftest fixtures (or appended to
`procs`), so it is stopped with its process group when the test ends. A test
that signals sluice itself marks it stopped first, so the teardown does not
take the exit for a crash."""

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.parse

import pytest

from conftest import REPO, Proc, run_sluice
from test_http_proxy import free_port, refused, wait_until

NODE = REPO / "tests" / "integration" / "node"
FLEET = NODE / "ws_fleet.js"

pytestmark = pytest.mark.timeout(120)


# ---- small helpers --------------------------------------------------------------





def admin_port(s, timeout=10):
    """The admin port sluice printed ("listening on ADDR:PORT (admin)")."""
    return int(s.wait_for(r"sluice: listening on \S+:(\d+) \(admin\)", stream="err", timeout=timeout).group(1))


class Response:
    def __init__(self, status, headers, body, head):
        self.status, self.headers, self.body, self.head = status, headers, body, head

    def header(self, name):
        return self.headers.get(name.lower())

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} {self.headers} {self.body[:300]!r}>"


def parse_head(head):
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    return status, headers


class Conn:
    """One client connection to sluice, read with a deadline."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError(f"connection closed; buffered {self.buf[:200]!r}")
        self.buf += chunk

    def _until(self, marker):
        while marker not in self.buf:
            self._fill()
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def _exactly(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_until_seen(self, marker):
        while marker not in self.buf:
            self._fill()

    def read_response(self, method="GET"):
        head = self._until(b"\r\n\r\n")
        status, headers = parse_head(head)
        body = b""
        if method == "HEAD" or status in (101, 204, 304):
            pass
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int(self._until(b"\r\n").split(b";")[0], 16)
                if size == 0:
                    self._until(b"\r\n")
                    break
                body += self._exactly(size)
                self._exactly(2)
        elif "content-length" in headers:
            body = self._exactly(int(headers["content-length"]))
        else:
            while True:
                try:
                    self._fill()
                except EOFError:
                    break
            body, self.buf = self.buf, b""
        return Response(status, headers, body, head)

    def at_eof(self, timeout=2):
        """True when the peer closed (EOF or reset) within `timeout` with no
        bytes pending; False when the connection is still open then."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        assert not data, f"unexpected bytes: {data[:200]!r}"
        return True


def get(port, target, headers="", method="GET", timeout=10):
    c = Conn(port, timeout)
    try:
        c.send(f"{method} {target} HTTP/1.1\r\nHost: h\r\n{headers}Connection: close\r\n\r\n")
        return c.read_response(method)
    finally:
        c.close()


def admin(port, target, method="GET", timeout=10):
    """One admin request without `Connection: close`: the admin listener
    answers one request per connection and closes it (checked here)."""
    c = Conn(port, timeout)
    try:
        c.send(f"{method} {target} HTTP/1.1\r\nHost: admin\r\n\r\n")
        r = c.read_response(method)
        assert c.at_eof(timeout), f"admin connection left open after {target}"
        return r
    finally:
        c.close()


# ---- the Prometheus text format, parsed strictly ---------------------------------

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
SAMPLE = re.compile(rf"^({NAME})(\{{.*\}})? (\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="')


def parse_labels(text):
    """The inside of {...}: name="value" pairs with \\\\, \\" and \\n escapes."""
    labels, i = {}, 0
    while i < len(text):
        m = LABEL.match(text, i)
        assert m, f"bad label at {text[i:]!r}"
        name, i, value = m.group(1), m.end(), []
        while True:
            c = text[i]
            if c == "\\":
                esc = text[i + 1]
                assert esc in '\\"n', f"bad escape \\{esc} in {text!r}"
                value.append({"\\": "\\", '"': '"', "n": "\n"}[esc])
                i += 2
            elif c == '"':
                i += 1
                break
            else:
                value.append(c)
                i += 1
        assert name not in labels, f"label {name} twice in {text!r}"
        labels[name] = "".join(value)
        if i < len(text):
            assert text[i] == ",", f"expected ',' in {text!r} at {i}"
            i += 1
    return labels


def parse_value(v):
    if v in ("+Inf", "-Inf", "NaN"):
        return float(v.replace("Inf", "inf").replace("NaN", "nan"))
    assert re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", v), f"bad value {v!r}"
    return float(v)


class Metrics:
    """A /metrics body, checked as it is parsed:
    - every family has exactly one HELP and one TYPE line, before its samples,
      and its samples form one block;
    - every sample belongs to a declared family (histograms: _bucket, _sum,
      _count), no series appears twice, every value is a number;
    - counters end in _total and are never negative;
    - each histogram series has ascending `le` buckets ending at +Inf, counts
      never decreasing, +Inf equal to _count, and a _sum."""

    def __init__(self, text):
        assert text.endswith("\n"), "the exposition must end with a newline"
        self.text = text
        self.types, self.helps, self.samples = {}, {}, {}
        self.order = []  # (name, labels) in the order printed
        done, current = set(), None
        for line in text.split("\n")[:-1]:
            assert line, "empty line in the exposition"
            if line.startswith("# HELP "):
                name, _, help_text = line[7:].partition(" ")
                assert re.fullmatch(NAME, name), line
                assert name not in self.helps, f"second HELP for {name}"
                assert help_text, f"empty HELP for {name}"
                self.helps[name] = help_text
                continue
            if line.startswith("# TYPE "):
                name, _, kind = line[7:].partition(" ")
                assert name in self.helps, f"TYPE before HELP for {name}"
                assert name not in self.types, f"second TYPE for {name}"
                assert kind in ("counter", "gauge", "histogram"), line
                if kind == "counter":
                    assert name.endswith("_total"), f"counter {name} does not end in _total"
                self.types[name] = kind
                if current:
                    done.add(current)
                current = name
                continue
            assert not line.startswith("#"), f"unexpected comment {line!r}"
            m = SAMPLE.match(line)
            assert m, f"not a sample line: {line!r}"
            name, labels_text, value = m.group(1), m.group(2), m.group(3)
            labels = parse_labels(labels_text[1:-1]) if labels_text else {}
            family = self.family_of(name)
            assert family in self.types, f"sample of an undeclared family: {line!r}"
            assert family == current and family not in done, f"sample outside its family's block: {line!r}"
            key = (name, tuple(sorted(labels.items())))
            assert key not in self.samples, f"series printed twice: {line!r}"
            v = parse_value(value)
            if self.types[family] == "counter" or name.endswith(("_bucket", "_count")):
                assert v >= 0 and v == int(v), f"counter not a whole non-negative number: {line!r}"
            self.samples[key] = v
            self.order.append((name, labels))
        for family, kind in self.types.items():
            if kind == "histogram":
                self._check_histogram(family)

    def family_of(self, name):
        for suffix in ("_bucket", "_sum", "_count"):
            base = name[: -len(suffix)]
            if name.endswith(suffix) and self.types.get(base) == "histogram":
                return base
        return name

    def _check_histogram(self, family):
        series = {}
        for name, labels in self.order:
            if name == family + "_bucket":
                assert "le" in labels, f"bucket without le: {labels}"
                rest = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
                series.setdefault(rest, []).append((labels["le"], self.samples[(name, tuple(sorted(labels.items())))]))
            elif name != family and self.family_of(name) == family:
                assert name in (family + "_sum", family + "_count"), f"{name} in histogram {family}"
            elif name == family:
                raise AssertionError(f"histogram {family} has a sample without a suffix")
        counts = {k for (n, k) in self.samples if n == family + "_count"}
        assert counts == set(series), f"{family}: _count series {counts} differ from bucket series {set(series)}"
        for rest, buckets in series.items():
            les = [parse_value(le) for le, _ in buckets]
            assert les == sorted(les) and len(set(les)) == len(les), f"{family}{rest}: le not ascending {les}"
            assert buckets[-1][0] == "+Inf", f"{family}{rest}: last bucket is not +Inf"
            values = [v for _, v in buckets]
            assert values == sorted(values), f"{family}{rest}: buckets not cumulative {values}"
            assert self.samples[(family + "_count", rest)] == values[-1], f"{family}{rest}: +Inf != _count"
            assert (family + "_sum", rest) in self.samples, f"{family}{rest}: no _sum"

    def get(self, name, **labels):
        """The value of the series with exactly these labels, or None."""
        return self.samples.get((name, tuple(sorted(labels.items()))))

    def series(self, name, **labels):
        """[(labels, value)] of every series of `name` whose labels include these."""
        return [(dict(k), v) for (n, k), v in self.samples.items()
                if n == name and all(dict(k).get(a) == b for a, b in labels.items())]

    def total(self, name, **labels):
        return sum(v for _, v in self.series(name, **labels))


def scrape(port):
    r = admin(port, "/metrics")
    assert r.status == 200, r
    assert r.header("content-type").startswith("text/plain; version=0.0.4"), r.headers
    return Metrics(r.body.decode())


def scrape_until(port, predicate, timeout=5, what="metrics"):
    """Scrapes until predicate(metrics) holds (counters are merged from the
    workers at scrape time; a worker may finish its bookkeeping a moment
    after the client read the response)."""
    deadline = time.monotonic() + timeout
    while True:
        m = scrape(port)
        if predicate(m):
            return m
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s:\n{m.text}")
        time.sleep(0.05)


# ---- node peers -----------------------------------------------------------------

class PipedProc(Proc):
    """A Proc whose stdin is a pipe (commands for ws_fleet.js clients)."""

    def __init__(self, argv, name, cwd=NODE):
        self.name = name
        self.proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)
        self.out, self.err = [], []
        self.stopped = False
        self._threads = [threading.Thread(target=self._pump, args=(self.proc.stdout, self.out), daemon=True),
                         threading.Thread(target=self._pump, args=(self.proc.stderr, self.err), daemon=True)]
        for t in self._threads:
            t.start()

    def command(self, line):
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()

    def events(self, kind=None):
        out = []
        for line in list(self.out):
            if line.startswith("{"):
                e = json.loads(line)
                if kind is None or e.get("event") == kind:
                    out.append(e)
        return out


def ws_upstream(procs, handshake_delay_ms=0):
    p = PipedProc(["node", str(FLEET), "upstream", "0", str(handshake_delay_ms)], "ws upstream")
    procs.append(p)
    p.port = int(p.wait_for(r"listening (\d+)").group(1))
    return p


def ws_clients(procs, url, n, timeout_ms=60000, wait_open=True):
    """n WebSocket clients, all open when this returns (with wait_open)."""
    p = PipedProc(["node", str(FLEET), "clients", url, str(n), str(timeout_ms)], f"ws clients x{n}")
    procs.append(p)
    if wait_open:
        p.wait_for(r'"event":"open","n":' + str(n), timeout=20)
    return p


def wait_events(p, kind, count, timeout=10):
    return wait_until(lambda: len(p.events(kind)) >= count and p.events(kind), timeout=timeout,
                      what=lambda: f"{count} {kind!r} events from {p.name} (last lines: {p.out[-5:]})")


def terminate(s, sig=signal.SIGTERM):
    """Signals sluice itself (the teardown must not take its exit for a
    crash); returns the wall-clock time of the signal."""
    s.stopped = True
    t = time.time()
    os.kill(s.pid, sig)
    return t




# ---- configs --------------------------------------------------------------------

def upstream(name, *ports):
    servers = ", ".join(f'"127.0.0.1:{p}"' for p in ports)
    return f'[upstream.{name}]\nservers = [{servers}]\n'


def route(name, path, up=None, extra="", match="prefix"):
    target = f'upstream = "{up}"\n' if up else ""
    return f'[[route]]\nname = "{name}"\n{match} = "{path}"\n{target}{extra}'


# ---- 1. /metrics after known traffic ------------------------------------------------

def test_metrics_count_known_traffic_exactly(backend, sluice_proc):
    b = backend()
    # Two refused servers: each 502 tried both (a connect failure is retried
    # once on another server), so each server fails only twice, below any
    # passive ejection threshold.
    dead = [free_port(), free_port()]
    s = sluice_proc(upstream("app", b.port) + upstream("dead", *dead) +
                    route("api", "/api", "app") + route("down", "/down", "dead"))
    port = admin_port(s)
    for i in range(7):
        r = get(s.port, f"/api/item/{i}")
        assert r.status == 200, r
    for _ in range(3):
        r = get(s.port, "/nowhere")
        assert r.status == 404 and r.header("sluice-error") == "no_route", r
    for _ in range(2):
        r = get(s.port, "/down/x")
        assert r.status == 502 and r.header("sluice-error") == "upstream_refused", r

    m = scrape_until(port, lambda m: m.total("sluice_request_duration_seconds_count") >= 12
                     and m.get("sluice_downstream_connections") == 0, what="12 requests counted")
    for code, n in {"1xx": 0, "2xx": 7, "3xx": 0, "4xx": 0, "5xx": 0}.items():
        assert m.get("sluice_requests_total", route="api", code=code) == n, (code, m.text)
    for code, n in {"1xx": 0, "2xx": 0, "3xx": 0, "4xx": 0, "5xx": 2}.items():
        assert m.get("sluice_requests_total", route="down", code=code) == n, (code, m.text)
    # Unrouted requests: 3 × 4xx under one route label (its name has a test of its own).
    unrouted = [l for l, _ in m.series("sluice_requests_total") if l["route"] not in ("api", "down")]
    assert {l["route"] for l in unrouted} and len({l["route"] for l in unrouted}) == 1, m.text
    other = unrouted[0]["route"]
    assert m.get("sluice_requests_total", route=other, code="4xx") == 3
    assert m.total("sluice_requests_total", route=other) == 3
    assert m.total("sluice_requests_total") == 12
    # Every route prints its five classes.
    for r in ("api", "down", other):
        assert sorted(l["code"] for l, _ in m.series("sluice_requests_total", route=r)) == \
            ["1xx", "2xx", "3xx", "4xx", "5xx"]
    # One duration observation per request.
    assert m.get("sluice_request_duration_seconds_count", route="api") == 7
    assert m.get("sluice_request_duration_seconds_count", route="down") == 2
    assert m.get("sluice_request_duration_seconds_count", route=other) == 3
    assert 0 < m.get("sluice_request_duration_seconds_sum", route="api") < 7 * 5
    assert m.get("sluice_request_duration_seconds_bucket", route="api", le="+Inf") == 7
    # Every failed attempt counts, the retried ones too: 2 requests x 2 servers.
    for p in dead:
        assert m.get("sluice_upstream_errors_total", upstream="dead", server=f"127.0.0.1:{p}",
                     error="upstream_refused") == 2, m.text
    assert m.total("sluice_upstream_errors_total") == 4, m.text
    assert m.series("sluice_upstream_errors_total", upstream="app") == []
    assert all(v > 0 for _, v in m.series("sluice_upstream_errors_total")), "zero error lines are printed"
    assert m.get("sluice_upstream_healthy", upstream="app", server=f"127.0.0.1:{b.port}") == 1
    assert {l["server"] for l, _ in m.series("sluice_upstream_healthy", upstream="dead")} == \
        {f"127.0.0.1:{p}" for p in dead}
    assert m.get("sluice_upstream_active", upstream="app", server=f"127.0.0.1:{b.port}") == 0
    # No tunnel series for http routes.
    assert m.series("sluice_tunnels_active") == []
    assert m.series("sluice_tunnel_duration_seconds_count") == []
    assert m.get("sluice_draining") == 0
    assert m.get("sluice_config_reloads_total", result="ok") == 0
    assert m.get("sluice_config_reloads_total", result="failed") == 0
    for family in ("sluice_requests_total", "sluice_request_duration_seconds", "sluice_downstream_connections",
                   "sluice_tunnels_active", "sluice_tunnel_duration_seconds", "sluice_tunnel_closes_total",
                   "sluice_upstream_healthy", "sluice_upstream_errors_total", "sluice_config_reloads_total"):
        assert family in m.types, family
    assert m.types["sluice_request_duration_seconds"] == "histogram"
    assert m.types["sluice_downstream_connections"] == "gauge"
    # A second scrape of an idle proxy gives the same counts: scrapes do not count.
    again = scrape(port)
    assert again.total("sluice_requests_total") == 12


def test_metrics_duration_buckets_place_a_slow_request(backend, sluice_proc):
    b = backend()
    s = sluice_proc(upstream("app", b.port) + route("api", "/", "app"))
    port = admin_port(s)
    assert get(s.port, "/slow?ms=600").status == 200
    assert get(s.port, "/fast").status == 200
    m = scrape_until(port, lambda m: m.get("sluice_request_duration_seconds_count", route="api") == 2)
    bucket = lambda le: m.get("sluice_request_duration_seconds_bucket", route="api", le=le)
    # The slow one is above 0.5 s and below 2.5 s; the fast one well below 0.5 s.
    assert bucket("0.5") == 1 and bucket("2.5") == 2, m.text
    assert 0.6 <= m.get("sluice_request_duration_seconds_sum", route="api") < 3


def test_metrics_requests_without_a_route_use_route_none(sluice_proc):
    # SPEC.md, Details, Metrics: "requests that matched no route use route="(none)"".
    s = sluice_proc(route("only", "/only", extra='respond = { status = 200, body = "x" }\n'))
    port = admin_port(s)
    for _ in range(3):
        assert get(s.port, "/elsewhere").status == 404
    m = scrape_until(port, lambda m: m.total("sluice_requests_total") >= 3)
    assert m.get("sluice_requests_total", route="(none)", code="4xx") == 3, m.text
    assert m.get("sluice_request_duration_seconds_count", route="(none)") == 3, m.text


# ---- 2. tunnels ---------------------------------------------------------------------

def test_tunnel_gauges_and_close_codes(procs, sluice_proc):
    up = ws_upstream(procs)
    s = sluice_proc(upstream("ws", up.port) + route("ws", "/ws", "ws", 'kind = "websocket"\n'))
    port = admin_port(s)
    clients = ws_clients(procs, f"ws://127.0.0.1:{s.port}/ws/room", 3)
    server = f"127.0.0.1:{up.port}"

    m = scrape_until(port, lambda m: m.get("sluice_tunnels_active", route="ws", kind="websocket") == 3,
                     what="3 tunnels active")
    assert m.get("sluice_downstream_connections") == 3, m.text
    assert m.get("sluice_upstream_active", upstream="ws", server=server) == 3, m.text
    assert m.get("sluice_tunnel_duration_seconds_count", route="ws") == 0
    assert m.series("sluice_tunnel_closes_total", route="ws") == []

    clients.command("close 0 1000")
    clients.command("close 1 4001")
    clients.command("vanish 2")
    closes = {e["i"]: e["code"] for e in wait_events(clients, "close", 3)}
    assert closes[0] == 1000 and closes[1] == 4001, closes  # echoed by the upstream, through sluice

    m = scrape_until(port, lambda m: m.get("sluice_tunnels_active", route="ws", kind="websocket") == 0
                     and m.get("sluice_tunnel_duration_seconds_count", route="ws") == 3,
                     what="every tunnel closed")
    closes_total = {l["code"]: v for l, v in m.series("sluice_tunnel_closes_total", route="ws")}
    assert closes_total == {"1000": 1, "4001": 1, "none": 1}, m.text
    # A tunnel counts once in requests_total, as 1xx.
    assert m.get("sluice_requests_total", route="ws", code="1xx") == 3, m.text
    assert m.total("sluice_requests_total", route="ws") == 3
    assert m.get("sluice_tunnel_duration_seconds_bucket", route="ws", le="+Inf") == 3
    assert m.get("sluice_upstream_active", upstream="ws", server=server) == 0
    assert wait_until(lambda: scrape(port).get("sluice_downstream_connections") == 0, timeout=5)
    # The upstream saw the two close frames.
    codes = sorted(e["code"] for e in wait_events(up, "close", 3))
    assert 1000 in codes and 4001 in codes, codes


def test_socketio_tunnels_are_labelled_with_their_kind(procs, sluice_proc):
    up = ws_upstream(procs)
    s = sluice_proc(upstream("sio", up.port) + route("sio", "/socket.io", "sio", 'kind = "socketio"\n') +
                    route("plain", "/plain", extra='respond = { status = 200 }\n'))
    port = admin_port(s)
    clients = ws_clients(procs, f"ws://127.0.0.1:{s.port}/socket.io/?EIO=4&transport=websocket", 2)
    m = scrape_until(port, lambda m: m.get("sluice_tunnels_active", route="sio", kind="socketio") == 2,
                     what="2 socketio tunnels")
    # Only realtime routes have tunnel series.
    assert [l["route"] for l, _ in m.series("sluice_tunnels_active")] == ["sio"], m.text
    clients.command("close 0 1000")
    clients.command("close 1 1000")
    wait_events(clients, "close", 2)
    m = scrape_until(port, lambda m: m.get("sluice_tunnels_active", route="sio", kind="socketio") == 0
                     and m.get("sluice_tunnel_duration_seconds_count", route="sio") == 2)
    assert m.get("sluice_tunnel_closes_total", route="sio", code="1000") == 2, m.text
    assert m.get("sluice_requests_total", route="sio", code="1xx") == 2, m.text


def test_local_replies_count_under_their_route(sluice_proc):
    s = sluice_proc(route("status", "/status", extra='respond = { status = 204 }\n', match="exact") +
                    route("gone", "/gone", extra='respond = { status = 410, body = "gone" }\n') +
                    route("moved", "/old", extra='redirect = { location = "http://example.com/new", status = 301 }\n'))
    port = admin_port(s)
    for _ in range(2):
        assert get(s.port, "/status").status == 204
    assert get(s.port, "/gone/x").status == 410
    for _ in range(3):
        assert get(s.port, "/old/page").status == 301
    m = scrape_until(port, lambda m: m.total("sluice_requests_total") >= 6)
    assert m.get("sluice_requests_total", route="status", code="2xx") == 2, m.text
    assert m.get("sluice_requests_total", route="gone", code="4xx") == 1, m.text
    assert m.get("sluice_requests_total", route="moved", code="3xx") == 3, m.text
    assert m.total("sluice_requests_total") == 6
    assert m.get("sluice_request_duration_seconds_count", route="moved") == 3
    assert m.series("sluice_upstream_errors_total") == []


# ---- 3. /routes /upstreams /explain /healthz, 404 and 405 -----------------------------

def routes_config(b_port, dead_port):
    # Declared in an order unrelated to the order /routes must print.
    return (upstream("app", b_port) + upstream("pair", b_port, dead_port) +
            route("zeta", "/zz", "app") +
            route("root", "/", extra='respond = { status = 200, body = "root" }\n', match="exact") +
            route("ws", "/ws", "app", 'kind = "websocket"\n') +
            route("wild-sio", "/socket.io", "pair", 'host = "*.example.com"\nkind = "socketio"\n') +
            route("api", "/api", "app", "strip_prefix = true\n") +
            route("status", "/status", extra='respond = { status = 204 }\n', match="exact") +
            route("alpha", "/aa", "pair", 'kind = "sse"\n') +
            route("app-root", "/", "app", 'host = "app.example.com"\n'))


def test_admin_routes_upstreams_and_plain_endpoints(backend, sluice_proc):
    b = backend()
    dead = free_port()
    s = sluice_proc(routes_config(b.port, dead))
    port = admin_port(s)

    r = admin(port, "/healthz")
    assert r.status == 200 and r.body.strip() == b"ok", r
    assert r.header("connection") == "close"
    r = admin(port, "/readyz")
    assert r.status == 200 and r.body.strip() == b"ready", r
    r = admin(port, "/healthz", method="HEAD")
    assert r.status == 200 and r.body == b""
    r = admin(port, "/nothing-here")
    assert r.status == 404, r
    for path in ("/metrics", "/healthz", "/routes"):
        r = admin(port, path, method="POST")
        assert r.status == 405, (path, r)
    r = admin(port, "/healthz", method="DELETE")
    assert r.status == 405, r
    # The proxy's listener does not serve admin endpoints: that path has no route there.
    assert get(s.port, "/routes").status == 404

    r = admin(port, "/routes")
    assert r.status == 200 and r.header("content-type").startswith("application/json"), r
    routes = r.json()["routes"]
    assert [x["name"] for x in routes] == ["app-root", "wild-sio", "status", "root", "api", "alpha", "ws", "zeta"]
    by_name = {x["name"]: x for x in routes}
    assert by_name["app-root"] == {"name": "app-root", "host": "app.example.com", "match": "prefix", "path": "/",
                                   "kind": "http", "upstream": "app"}
    assert by_name["wild-sio"] == {"name": "wild-sio", "host": "*.example.com", "match": "prefix",
                                   "path": "/socket.io", "kind": "socketio", "upstream": "pair"}
    assert by_name["status"] == {"name": "status", "host": None, "match": "exact", "path": "/status",
                                 "kind": "http", "upstream": None}
    assert by_name["ws"]["kind"] == "websocket" and by_name["alpha"]["kind"] == "sse"
    assert by_name["api"]["upstream"] == "app" and by_name["api"]["match"] == "prefix"

    def servers():
        r = admin(port, "/upstreams")
        assert r.status == 200 and r.header("content-type").startswith("application/json"), r
        ups = r.json()["upstreams"]
        assert sorted(u["name"] for u in ups) == ["app", "pair"]
        return {u["name"]: u["servers"] for u in ups}

    idle = servers()
    assert idle["app"] == [{"address": f"127.0.0.1:{b.port}", "healthy": True, "active_connections": 0}]
    assert idle["pair"] == [{"address": f"127.0.0.1:{b.port}", "healthy": True, "active_connections": 0},
                            {"address": f"127.0.0.1:{dead}", "healthy": True, "active_connections": 0}]

    # A response held by the backend: one active connection on app's server
    # (upstream "pair" shares the address but not the count).
    c = Conn(s.port)
    try:
        c.send("GET /api/hold?id=routes HTTP/1.1\r\nHost: h\r\n\r\n")
        c.read_until_seen(b"first\n")
        held = servers()
        assert held["app"][0]["active_connections"] == 1, held
        assert [x["active_connections"] for x in held["pair"]] == [0, 0], held
        m = scrape(port)
        assert m.get("sluice_upstream_active", upstream="app", server=f"127.0.0.1:{b.port}") == 1
        # Admin connections are not downstream connections.
        assert m.get("sluice_downstream_connections") == 1, m.text
        b.release("routes")
        r = c.read_response()
        assert r.status == 200 and r.body == b"first\nsecond\n"
    finally:
        c.close()
    wait_until(lambda: servers()["app"][0]["active_connections"] == 0, timeout=5,
               what="active_connections back to 0")
    assert wait_until(lambda: scrape(port).get("sluice_downstream_connections") == 0, timeout=5)


@pytest.mark.parametrize("target,host", [
    ("/api/x?y=1", None),
    ("/socket.io/?EIO=4&transport=polling", "chat.example.com"),
    ("/socket.io/?EIO=4&transport=polling", "app.example.com"),
    ("/ws/room", None),
    ("/", None),
    ("/status", "app.example.com"),
    ("/nothing", None),            # no route: null route, the CLI exits 3
    ("/a b/%2F?q=1&r=2", None),    # encoded in the query string of /explain
])
def test_admin_explain_matches_the_cli(backend, sluice_proc, target, host):
    b = backend()
    s = sluice_proc(routes_config(b.port, free_port()))
    port = admin_port(s)
    args = ["explain", "--config", str(s.config_path)] + (["--host", host] if host else []) + [target]
    code, out, err = run_sluice(*args)
    assert code in (0, 3), err
    cli = json.loads(out)
    query = "path=" + urllib.parse.quote(target, safe="")
    if host:
        query += "&host=" + urllib.parse.quote(host, safe="")
    r = admin(port, "/explain?" + query)
    assert r.status == 200 and r.header("content-type").startswith("application/json"), r
    assert r.json() == cli
    assert (cli["route"] is None) == (code == 3)


def test_admin_explain_without_path_is_400(sluice_proc):
    s = sluice_proc(route("root", "/", extra='respond = { status = 200 }\n'))
    r = admin(admin_port(s), "/explain?host=x")
    assert r.status == 400, r


# ---- 4-6. drain ------------------------------------------------------------------------

def test_drain_spreads_tunnel_closes_finishes_requests_and_exits_0(procs, backend, sluice_proc):
    b = backend()
    up = ws_upstream(procs)
    s = sluice_proc(upstream("ws", up.port) + upstream("app", b.port) +
                    route("ws", "/ws", "ws", 'kind = "websocket"\n') + route("api", "/", "app"),
                    server='drain_timeout = "4s"')
    port = admin_port(s)
    n = 20
    clients = ws_clients(procs, f"ws://127.0.0.1:{s.port}/ws", n)
    wait_events(up, "open", n)

    slow = {}

    def slow_request():
        c = Conn(s.port, timeout=15)
        try:
            c.send("GET /slow?ms=2000 HTTP/1.1\r\nHost: h\r\n\r\n")   # keep-alive asked
            slow["response"] = c.read_response()
            slow["done"] = time.time()
            slow["eof"] = c.at_eof(3)
        except Exception as e:  # reported by the asserts below
            slow["error"] = repr(e)
        finally:
            c.close()

    t = threading.Thread(target=slow_request, daemon=True)
    t.start()
    b.wait_stats(lambda st: st["requests"] >= 1, what="the slow request at the backend")
    assert admin(port, "/readyz").status == 200

    t0 = terminate(s)
    # /readyz turns 503 at once; the admin listener keeps serving.
    ready = wait_until(lambda: (lambda r: r if r.status == 503 else None)(admin(port, "/readyz")),
                       timeout=0.5, interval=0.01, what="/readyz 503")
    assert ready.body.strip() == b"draining"
    assert admin(port, "/healthz").status == 200
    # The listening sockets close: new connections are refused (every worker's).
    wait_until(lambda: refused(s.port), timeout=0.5, interval=0.01, what="connections refused")
    time.sleep(0.05)
    assert all(refused(s.port) for _ in range(20))
    m = scrape(port)
    assert m.get("sluice_draining") == 1, m.text

    closes = wait_events(clients, "close", n, timeout=10)
    t.join(timeout=10)
    rc = s.proc.wait(timeout=10)
    t_exit = time.time()

    assert "error" not in slow, slow
    r = slow["response"]
    assert r.status == 200 and r.body == b"slow\n", r
    assert r.header("connection") == "close", r.headers
    assert slow["eof"], "sluice left the connection open after a response marked Connection: close"

    assert sorted(e["code"] for e in closes) == [1001] * n, closes
    times = sorted((e["t"] / 1000 - t0) for e in closes)
    print("tunnel close times after SIGTERM:", [round(x, 3) for x in times])
    # Spread over the first half of drain_timeout (2 s), not all at once.
    assert times[-1] - times[0] >= 1.0, times
    assert times[-1] <= 2.5, times
    early = sum(1 for x in times if x < 1.0)
    assert n * 0.25 <= early <= n * 0.75, times
    # The ws upstream saw a close frame for each tunnel too.
    up_closes = wait_events(up, "close", n)
    assert sorted(e["code"] for e in up_closes) == [1001] * n, up_closes

    assert rc == 0, s.stderr
    # It exited because nothing was left, before drain_timeout.
    assert t_exit - t0 < 3.6, (t_exit - t0, s.stderr)
    assert t_exit - t0 >= times[-1] - 0.05
    assert "passed" not in s.stderr and "drained" in s.stderr, s.stderr


def test_drain_deadline_closes_what_is_left_and_exits_0(backend, sluice_proc):
    b = backend()
    s = sluice_proc(upstream("app", b.port) + route("api", "/", "app"), server='drain_timeout = "2s"')
    port = admin_port(s)
    c = Conn(s.port, timeout=15)
    c.send("GET /slow?ms=15000 HTTP/1.1\r\nHost: h\r\n\r\n")   # never answered in time
    b.wait_stats(lambda st: st["requests"] >= 1, what="the request at the backend")

    t0 = terminate(s)
    assert wait_until(lambda: admin(port, "/readyz").status == 503, timeout=0.5, interval=0.01)
    # The client sees its connection closed (EOF or reset) at about drain_timeout, with no response.
    data = b""
    try:
        while True:
            chunk = c.sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    closed_after = time.time() - t0
    c.close()
    assert not data.startswith(b"HTTP/1.1 200"), data[:200]
    assert 1.7 <= closed_after <= 3.5, closed_after
    rc = s.proc.wait(timeout=10)
    exited_after = time.time() - t0
    assert rc == 0, s.stderr
    assert 1.7 <= exited_after <= 3.5, exited_after
    assert "drain_timeout" in s.stderr


def test_drain_closes_waiting_connections_on_schedule_and_serves_heads_in_progress(backend, sluice_proc):
    b = backend()
    s = sluice_proc(upstream("app", b.port) + route("api", "/", "app"), server='drain_timeout = "10s"')
    port = admin_port(s)
    # idle: a kept-alive connection between requests; fresh: connected, nothing sent yet.
    idle = Conn(s.port)
    idle.send("GET /first HTTP/1.1\r\nHost: h\r\n\r\n")
    first = idle.read_response()
    assert first.status == 200 and first.header("connection") != "close"
    fresh = Conn(s.port)
    # held: a response in flight that keeps sluice draining.
    held = Conn(s.port, timeout=15)
    held.send("GET /hold?id=drain HTTP/1.1\r\nHost: h\r\n\r\n")
    held.read_until_seen(b"first\n")
    # partial: a request head begun before the signal.
    partial = Conn(s.port)
    partial.send("GET /partial HTTP/1.1\r\nHost: h\r\n")
    wait_until(lambda: scrape(port).get("sluice_downstream_connections") == 4, timeout=5)

    t0 = terminate(s)
    # Connections waiting for a request close on the drain's schedule: within
    # the first half of drain_timeout (5 s here), spread, not all at once.
    assert idle.at_eof(6.0), "idle keep-alive connection not closed in the first half of drain_timeout"
    assert fresh.at_eof(6.0), "connection without a request not closed in the first half of drain_timeout"
    assert time.time() - t0 < 5.5
    assert s.alive(), "sluice exited with a response still in flight"
    # The request whose head had begun is served, with Connection: close.
    partial.send("\r\n")
    r = partial.read_response()
    assert r.status == 200 and json.loads(r.body)["path"] == "/partial", r
    assert r.header("connection") == "close", r.headers
    assert partial.at_eof(2)
    # The held response finishes, then its connection closes, then sluice exits 0.
    assert s.alive()
    b.release("drain")
    held.read_until_seen(b"0\r\n\r\n")
    assert b"second\n" in held.buf
    assert held.at_eof(2)
    assert s.proc.wait(timeout=5) == 0, s.stderr
    for c in (idle, fresh, held, partial):
        c.close()


def test_second_signal_exits_at_once_with_1(backend, sluice_proc):
    b = backend()
    s = sluice_proc(upstream("app", b.port) + route("api", "/", "app"), server='drain_timeout = "30s"')
    port = admin_port(s)
    held = Conn(s.port, timeout=15)
    held.send("GET /hold?id=twice HTTP/1.1\r\nHost: h\r\n\r\n")
    held.read_until_seen(b"first\n")
    terminate(s, signal.SIGINT)   # SIGINT drains like SIGTERM
    assert wait_until(lambda: admin(port, "/readyz").status == 503, timeout=1, interval=0.01)
    time.sleep(0.2)
    assert s.alive(), "sluice exited although a response is in flight"
    t1 = terminate(s, signal.SIGTERM)
    rc = s.proc.wait(timeout=5)
    assert time.time() - t1 < 1.0
    assert rc == 1, s.stderr
    assert held.at_eof(2)
    held.close()


def test_drain_with_nothing_open_exits_0_at_once(sluice_proc):
    s = sluice_proc(route("root", "/", extra='respond = { status = 200 }\n'), server='drain_timeout = "30s"')
    assert get(s.port, "/").status == 200
    t0 = terminate(s)
    assert s.proc.wait(timeout=5) == 0, s.stderr
    assert time.time() - t0 < 1.5


def test_drain_ends_a_tunnel_whose_handshake_was_in_flight_with_1001(procs, sluice_proc):
    # The upgrade request is at the upstream when SIGTERM comes; its 101
    # arrives during the drain. That tunnel is a WebSocket client too: it
    # must get its 1001 within the first half of drain_timeout, not be cut
    # without a close frame when drain_timeout ends.
    up = ws_upstream(procs, handshake_delay_ms=800)
    s = sluice_proc(upstream("ws", up.port) + route("ws", "/ws", "ws", 'kind = "websocket"\n'),
                    server='drain_timeout = "6s"')
    port = admin_port(s)
    clients = ws_clients(procs, f"ws://127.0.0.1:{s.port}/ws/late", 1, wait_open=False)
    wait_events(up, "handshake", 1)
    t0 = terminate(s)
    assert wait_until(lambda: admin(port, "/readyz").status == 503, timeout=0.5, interval=0.01)
    opened = wait_events(clients, "opened", 1, timeout=5)
    assert opened[0]["t"] / 1000 - t0 > 0.3, "the 101 came before the drain began"
    close = wait_events(clients, "close", 1, timeout=10)[0]
    closed_after = close["t"] / 1000 - t0
    rc = s.proc.wait(timeout=10)
    exited_after = time.time() - t0
    assert close["code"] == 1001, (close, closed_after, s.stderr)
    assert closed_after <= 3.5, (closed_after, s.stderr)
    assert rc == 0 and exited_after < 5.5, (rc, exited_after, s.stderr)


def test_drain_closes_a_listener_added_by_a_reload_just_before(sluice_proc):
    # SIGHUP (the new config adds a listener) then SIGTERM at once: whatever
    # order the workers see the two in, the drain must leave no listener
    # open. Tried a few times, since the two signals race inside sluice.
    accepted = []
    for attempt in range(10):
        s = sluice_proc(route("root", "/", extra='respond = { status = 200, body = "x" }\n'),
                        server='drain_timeout = "3s"')
        port = admin_port(s)
        held = Conn(s.port)
        held.send("GET / HTTP/1.1\r\nHost: h\r\n")   # a head in progress keeps the drain going
        wait_until(lambda: scrape(port).get("sluice_downstream_connections") == 1, timeout=5)
        added = free_port()
        text = s.config_path.read_text()
        s.config_path.write_text(text.replace("[admin]", f'[[listener]]\naddress = "127.0.0.1:{added}"\n[admin]'))
        s.stopped = True
        os.kill(s.pid, signal.SIGHUP)
        os.kill(s.pid, signal.SIGTERM)
        assert wait_until(lambda: admin(port, "/readyz").status == 503, timeout=2, interval=0.01)
        time.sleep(0.3)
        reloaded = "config reloaded" in s.stderr
        for p in (s.port, added):
            if not refused(p):
                accepted.append((attempt, p == added, reloaded))
        held.close()
        assert s.proc.wait(timeout=10) == 0, s.stderr
    assert not accepted, f"(attempt, on the added listener, reloaded) accepting during the drain: {accepted}"


def test_drain_after_a_completed_reload_closes_the_added_listener(sluice_proc):
    s = sluice_proc(route("root", "/", extra='respond = { status = 200, body = "x" }\n'),
                    server='drain_timeout = "3s"')
    port = admin_port(s)
    added = free_port()
    text = s.config_path.read_text()
    s.config_path.write_text(text.replace("[admin]", f'[[listener]]\naddress = "127.0.0.1:{added}"\n[admin]'))
    os.kill(s.pid, signal.SIGHUP)
    s.wait_for(r"config reloaded", stream="err", timeout=5)
    assert get(added, "/").status == 200
    held = Conn(s.port)
    held.send("GET / HTTP/1.1\r\nHost: h\r\n")
    wait_until(lambda: scrape(port).get("sluice_downstream_connections") == 1, timeout=5)
    terminate(s)
    wait_until(lambda: refused(s.port) and refused(added), timeout=1, interval=0.01,
               what="both listeners refusing")
    held.send("\r\n")
    assert held.read_response().status == 200
    assert held.at_eof(2)
    held.close()
    assert s.proc.wait(timeout=5) == 0, s.stderr


def test_local_replies_during_a_drain_carry_connection_close(sluice_proc):
    # SPEC.md, Details, Drain: requests on connections already open are
    # still served, with Connection: close -- the replies sluice writes
    # itself (respond, redirect, 404) as much as proxied ones.
    s = sluice_proc(route("status", "/status", extra='respond = { status = 200, body = "up" }\n', match="exact") +
                    route("moved", "/old", extra='redirect = { location = "http://example.com/", status = 301 }\n'),
                    server='drain_timeout = "5s"')
    port = admin_port(s)
    targets = {"/status": 200, "/old/x": 301, "/nowhere": 404}
    conns = {}
    for target in targets:
        conns[target] = Conn(s.port)
        conns[target].send(f"GET {target} HTTP/1.1\r\nHost: h\r\n")   # head begun, not finished
    wait_until(lambda: scrape(port).get("sluice_downstream_connections") == len(targets), timeout=5)
    terminate(s)
    assert wait_until(lambda: admin(port, "/readyz").status == 503, timeout=1, interval=0.01)
    problems = []
    for target, status in targets.items():
        c = conns[target]
        c.send("\r\n")
        r = c.read_response()
        closed = c.at_eof(2)
        c.close()
        if r.status != status or r.header("connection") != "close" or not closed:
            problems.append((target, r.status, r.header("connection"), "closed" if closed else "open"))
    assert s.proc.wait(timeout=5) == 0, s.stderr
    assert not problems, f"(target, status, Connection header, connection state): {problems}"


def test_drain_serves_requests_on_open_connections_with_connection_close(backend, sluice_proc):
    """SPEC.md, Drain: requests on connections already open are still served, with
    Connection: close. Idle connections are closed over the first half of
    drain_timeout, so those whose turn has not come answer a request sent now."""
    b = backend()
    s = sluice_proc(upstream("app", b.port) + route("api", "/", "app"), server='drain_timeout = "4s"')
    conns = []
    for i in range(40):
        c = Conn(s.port)
        c.send(f"GET /warm{i} HTTP/1.1\r\nHost: h\r\n\r\n")
        assert c.read_response().status == 200
        conns.append(c)
    terminate(s)
    time.sleep(0.1)  # the workers hear of the drain a moment after the signal
    for i, c in enumerate(conns):
        try:
            c.send(f"GET /after{i} HTTP/1.1\r\nHost: h\r\n\r\n")
        except OSError:
            pass  # its turn came first: closed
    served = 0
    for c in conns:
        try:
            r = c.read_response()
        except (AssertionError, OSError, EOFError):
            continue  # closed before the request arrived
        assert r.status == 200 and r.header("connection") == "close", r.headers
        served += 1
        assert c.at_eof(3)
    assert served >= 20, f"only {served} of 40 open connections were served during the drain"
    assert s.proc.wait(timeout=10) == 0, s.stderr
    for c in conns:
        c.close()
