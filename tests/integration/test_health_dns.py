"""Upstream health and dns: servers (SPEC.md "Configuration": `health`,
`dns:` servers, `resolve_interval`; "Errors": `no_healthy_upstream`,
`upstream_unresolved`; "Admin endpoints": /upstreams, /metrics; "Details:
Health").

  1. active checks: a killed server is marked down and clients see no
     error; restarted, it is back after `passes` good checks
  2. a health path answering 500 marks a server down though TCP works;
     every server down -> 503 no_healthy_upstream
  3. passive ejection (no `health`): refused connections eject a server,
     the retry hides it; a lone refused server stays 502, never 503
  4. dns: servers follow the name (nss_wrapper hosts file): added and
     removed addresses join and leave; an unresolved name is 502
  5. a request in flight to an address DNS removed finishes; a client
     connection from before the change is not held to the removed address

Backends are host_backend.py (backends.py bound to any 127.0.0.x, with
`X-Served-By` and a switchable /_ctl/health). sluice gets a resolver of its
own through Debian's libnss-wrapper (LD_PRELOAD, NSS_WRAPPER_HOSTS): nothing
on the machine is touched. Every process is tracked by the `procs` fixture
and stopped with its process group when the test ends."""

import json
import os
import pathlib
import re
import signal
import socket
import threading
import time

import pytest

from conftest import SLUICE, Proc, Sluice
from test_http_proxy import free_port, wait_until

pytestmark = pytest.mark.timeout(120)

HOST_BACKEND = pathlib.Path(__file__).with_name("host_backend.py")
CLEAN_ENV = ["env", "-u", "REQUESTS_CA_BUNDLE", "-u", "CURL_CA_BUNDLE"]
HEALTH = '{ path = "%s", interval = "300ms", timeout = "200ms", fails = 2, passes = 2 }'


# ---- helpers -------------------------------------------------------------------





class Reply:
    def __init__(self, data):
        head, _, self.body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1]) if lines[0].startswith("HTTP/") else None
        self.headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers.setdefault(name.strip().lower(), value.strip())

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return f"<{self.status} {self.headers} {self.body[:200]!r}>"


def request(port, target="/", host="127.0.0.1", timeout=10):
    """One GET on a new connection (Connection: close), read to the end."""
    with socket.create_connection((host, port), timeout=timeout) as c:
        c.settimeout(timeout)
        c.sendall(f"GET {target} HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := c.recv(65536):
            data += chunk
    return Reply(data)


def admin_port(s):
    return int(s.wait_for(r"sluice: listening on \S+:(\d+) \(admin\)", stream="err").group(1))


def servers(s, upstream="app"):
    """{address: healthy} of one upstream, from /upstreams."""
    r = request(admin_port(s), "/upstreams")
    assert r.status == 200, r
    for u in json.loads(r.body)["upstreams"]:
        if u["name"] == upstream:
            return {srv["address"]: srv["healthy"] for srv in u["servers"]}
    raise AssertionError(f"no upstream {upstream!r} in /upstreams: {r.body!r}")


def metric(s, name, **labels):
    """The sum of the samples of `name` whose labels include `labels`, or None."""
    r = request(admin_port(s), "/metrics")
    assert r.status == 200, r
    total = None
    for line in r.body.decode().splitlines():
        m = re.match(r"(\w+)(?:\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            total = (total or 0) + float(m.group(3))
    return total


def stderr_lines(s, pattern):
    return [l for l in list(s.err) if re.search(pattern, l)]


class HostBackend(Proc):
    """host_backend.py on HOST:PORT (PORT 0: any free port)."""

    def __init__(self, host="127.0.0.1", port=0):
        super().__init__([*CLEAN_ENV, "/usr/bin/python3", str(HOST_BACKEND), host, str(port)],
                         f"backend {host}:{port}")
        try:
            self.port = int(self.wait_for(r"listening (\d+)", timeout=10).group(1))
        except BaseException:
            self.stop()
            raise
        self.host = host
        self.addr = f"{host}:{self.port}"

    def control(self, target):
        r = request(self.port, target, host=self.host)
        assert r.status == 200, r
        return r.body

    def requests(self):
        """Requests received, control requests (health checks) excluded."""
        return json.loads(self.control("/_ctl/stats"))["requests"]

    def set_health(self, status):
        self.control(f"/_ctl/health?set={status}")


@pytest.fixture
def host_backend(procs):
    def start(host="127.0.0.1", port=0):
        b = HostBackend(host, port)
        procs.append(b)
        return b
    return start


def backend_pair(host_backend, hosts=("127.0.0.2", "127.0.0.3")):
    """Backends on the same port of two addresses (a dns: server has one port)."""
    for _ in range(5):
        first = host_backend(hosts[0])
        try:
            return first, host_backend(hosts[1], first.port)
        except AssertionError:  # that port is taken on the second address
            first.stop()
    raise AssertionError("no port free on both addresses")


def app(servers_toml, extra=""):
    return (f'[upstream.app]\nservers = [{servers_toml}]\n{extra}\n'
            '[[route]]\nname = "app"\nprefix = "/"\nupstream = "app"\n')


class Traffic:
    """Threads sending GETs (a new connection each) until stopped; every
    result is kept as (monotonic time, status, X-Served-By, Sluice-Error)."""

    def __init__(self, port, threads=2):
        self.port, self.results = port, []
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]
        for t in self.threads:
            t.start()

    def _run(self, n):
        i = 0
        while not self.stopping.is_set():
            i += 1
            try:
                r = request(self.port, f"/stream/{n}/{i}", timeout=5)
                self.results.append((time.monotonic(), r.status, r.header("x-served-by"), r.header("sluice-error")))
            except OSError as e:
                self.results.append((time.monotonic(), None, None, repr(e)))
            time.sleep(0.005)

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=10)
        return self.results

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class HostsFile:
    """The hosts file nss_wrapper gives sluice. nss_wrapper reloads it only
    when its mtime (whole seconds) changes, so every rewrite moves the mtime
    forward explicitly."""

    def __init__(self, path, lines):
        self.path, self.mtime = pathlib.Path(path), int(time.time())
        self.write(lines)

    def write(self, lines):
        self.path.write_text("".join(f"{line}\n" for line in lines))
        self.mtime += 5
        os.utime(self.path, (self.mtime, self.mtime))
        self.changed = time.monotonic()


class DnsSluice(Sluice):
    """A Sluice whose name lookups read `hosts` (libnss-wrapper)."""

    def __init__(self, config_path, access_log, hosts):
        # Under ASan the sanitizer runtime must come first among preloads
        # (it still works with nss_wrapper preloaded, so the check is
        # waived), and nss_wrapper must not dlopen libc with RTLD_DEEPBIND.
        asan = os.environ.get("ASAN_OPTIONS", "")
        asan = f"ASAN_OPTIONS={asan}:verify_asan_link_order=0" if asan else "ASAN_OPTIONS=verify_asan_link_order=0"
        Proc.__init__(self, [*CLEAN_ENV, asan, "NSS_WRAPPER_DISABLE_DEEPBIND=1",
                             "LD_PRELOAD=libnss_wrapper.so", f"NSS_WRAPPER_HOSTS={hosts}",
                             "NSS_WRAPPER_PASSWD=/etc/passwd", "NSS_WRAPPER_GROUP=/etc/group",
                             SLUICE, "--config", str(config_path)], "sluice")
        self.config_path, self.access_log = pathlib.Path(config_path), access_log
        self.ports = self._listening(1, 15)
        self.port = self.ports[0]
        self.url = f"http://127.0.0.1:{self.port}"


@pytest.fixture
def dns_sluice(procs, tmp_path):
    """dns_sluice(body, hosts) -> a running DnsSluice (workers = 2, admin on
    127.0.0.1:0, one HTTP listener), stopped at teardown."""
    def start(body, hosts):
        log = tmp_path / "access.log"
        path = tmp_path / "sluice.toml"
        path.write_text(f'[server]\nworkers = 2\naccess_log = "{log}"\n'
                        '[[listener]]\naddress = "127.0.0.1:0"\n[admin]\naddress = "127.0.0.1:0"\n' + body)
        s = DnsSluice(path, log, hosts.path)
        procs.append(s)
        return s
    return start


def wait_dns(s, summary, since, timeout=2.5):
    """Waits for `sluice: dns: SUMMARY` and checks it came within `timeout`
    of `since` (about two resolve intervals of 500ms, with slack)."""
    s.wait_for(r"sluice: dns: " + re.escape(summary) + "$", stream="err", timeout=timeout + 5)
    elapsed = time.monotonic() - since
    assert elapsed < timeout, f"dns change {summary!r} seen after {elapsed:.1f}s"


# ---- 1. active checks: a killed server ------------------------------------------

def test_a_killed_server_is_marked_down_and_clients_see_no_error(host_backend, sluice_proc):
    a, b = host_backend(), host_backend()
    s = sluice_proc(app(f'"{a.addr}", "{b.addr}"', "health = " + HEALTH % "/healthz"))
    assert servers(s) == {a.addr: True, b.addr: True}
    assert {request(s.port, f"/warm/{i}").header("x-served-by") for i in range(8)} == {a.addr, b.addr}

    with Traffic(s.port) as traffic:
        time.sleep(0.5)
        b.stop(signal.SIGKILL)
        killed = time.monotonic()
        down = s.wait_for(rf"sluice: health: upstream 'app' server {re.escape(b.addr)} marked down: "
                          rf"GET /healthz on {re.escape(b.addr)}: (.+)$", stream="err", timeout=5)
        marked = time.monotonic()
        assert marked - killed < 2.5, f"marked down {marked - killed:.1f}s after the kill"
        assert "refused" in down.group(1)

        assert servers(s) == {a.addr: True, b.addr: False}
        assert metric(s, "sluice_upstream_healthy", upstream="app", server=b.addr) == 0
        assert metric(s, "sluice_upstream_healthy", upstream="app", server=a.addr) == 1
        # Unhealthy: no new request is even tried on it.
        tried = metric(s, "sluice_upstream_errors_total", upstream="app", server=b.addr) or 0
        time.sleep(1.5)
        assert (metric(s, "sluice_upstream_errors_total", upstream="app", server=b.addr) or 0) == tried
    results = traffic.results

    assert len(results) > 50, len(results)
    assert [r for r in results if r[1] != 200] == [], "client-visible errors around the kill"
    after = [r for r in results if r[0] > marked]
    assert after and {r[2] for r in after} == {a.addr}

    # One outage is one change to "down" (whichever of the passive ejection
    # and the active checks saw it first), and none back up yet.
    assert metric(s, "sluice_upstream_health_changes_total", upstream="app", server=b.addr, to="down") == 1, \
        "\n".join(stderr_lines(s, "sluice: health:"))
    assert metric(s, "sluice_upstream_health_changes_total", upstream="app", server=b.addr, to="up") == 0


def test_a_restarted_server_is_back_after_passes_checks(host_backend, sluice_proc):
    a, b = host_backend(), host_backend()
    s = sluice_proc(app(f'"{a.addr}", "{b.addr}"', "health = " + HEALTH % "/healthz"))
    with Traffic(s.port) as traffic:
        time.sleep(0.3)
        b.stop(signal.SIGKILL)
        s.wait_for(rf"server {re.escape(b.addr)} marked down", stream="err", timeout=5)
        time.sleep(0.3)

        b2 = host_backend(port=b.port)
        restarted = time.monotonic()
        s.wait_for(rf"sluice: health: upstream 'app' server {re.escape(b.addr)} is healthy again$",
                   stream="err", timeout=5)
        back = time.monotonic()
        # passes = 2 checks 300ms apart (the checker ticks every 100ms).
        assert back - restarted < 2.0, f"healthy again {back - restarted:.1f}s after the restart"
        # Logged healthy again: it is healthy and gets traffic again, now
        # (not once the passive ejection of the outage runs out).
        wait_until(lambda: servers(s)[b.addr], timeout=8, what=f"{b.addr} healthy in /upstreams")
        late = time.monotonic() - back
        assert late < 1, (f"logged healthy again, but healthy in /upstreams only {late:.1f}s later:\n"
                          + "\n".join(stderr_lines(s, "sluice: health:")))
        assert metric(s, "sluice_upstream_healthy", upstream="app", server=b.addr) == 1
        assert metric(s, "sluice_upstream_health_changes_total", upstream="app", server=b.addr, to="up") == 1
        wait_until(lambda: b2.requests() > 0, timeout=1, what="traffic on the restarted server")
        time.sleep(1.0)  # traffic well after the return, for the check below
    results = traffic.results
    assert [r for r in results if r[1] != 200] == [], "client-visible errors"
    assert {r[2] for r in results if r[0] > back + 0.5} == {a.addr, b.addr}


# ---- 2. a health path answering 500 ----------------------------------------------

def test_a_failing_health_path_marks_servers_down_and_none_left_is_503(host_backend, sluice_proc):
    a, b = host_backend(), host_backend()
    s = sluice_proc(app(f'"{a.addr}", "{b.addr}"', "health = " + HEALTH % "/_ctl/health"))
    a.set_health(500)
    down = s.wait_for(rf"sluice: health: upstream 'app' server {re.escape(a.addr)} marked down: "
                      rf"GET /_ctl/health on {re.escape(a.addr)}: (.+)$", stream="err", timeout=5)
    assert "500" in down.group(1)
    assert servers(s) == {a.addr: False, b.addr: True}
    # TCP works (a answers directly), yet it gets no traffic.
    assert request(a.port, "/direct").status == 200
    seen = a.requests()
    replies = [request(s.port, f"/one-down/{i}") for i in range(10)]
    assert [(r.status, r.header("x-served-by")) for r in replies] == [(200, b.addr)] * 10
    assert a.requests() == seen

    b.set_health(503)
    s.wait_for(rf"server {re.escape(b.addr)} marked down: .*: status 503$", stream="err", timeout=5)
    assert servers(s) == {a.addr: False, b.addr: False}
    assert metric(s, "sluice_upstream_healthy", upstream="app") == 0
    for i in range(4):
        r = request(s.port, f"/none/{i}")
        assert (r.status, r.header("sluice-error")) == (503, "no_healthy_upstream"), r
    seen = (a.requests(), b.requests())

    a.set_health(200)
    s.wait_for(rf"server {re.escape(a.addr)} is healthy again$", stream="err", timeout=5)
    assert servers(s) == {a.addr: True, b.addr: False}
    replies = [request(s.port, f"/back/{i}") for i in range(6)]
    assert [(r.status, r.header("x-served-by")) for r in replies] == [(200, a.addr)] * 6
    assert (a.requests(), b.requests()) == (seen[0] + 6, seen[1])
    assert metric(s, "sluice_upstream_health_changes_total", upstream="app", server=a.addr, to="down") == 1
    assert metric(s, "sluice_upstream_health_changes_total", upstream="app", server=a.addr, to="up") == 1


# ---- 3. passive ejection ---------------------------------------------------------

def test_passive_ejection_of_a_refusing_server_and_a_lone_one_stays_502(host_backend, sluice_proc):
    a = host_backend()
    dead, lone = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    s = sluice_proc(app(f'"{a.addr}", "{dead}"') +
                    f'[upstream.lone]\nservers = ["{lone}"]\n'
                    '[[route]]\nname = "lone"\nprefix = "/lone"\nupstream = "lone"\n')
    ejected = rf"sluice: health: upstream 'app' server {re.escape(dead)} ejected for (\d+)s after (\d+) failed \w+ in a row \((.*)\)$"
    replies = [request(s.port, f"/first/{i}") for i in range(12)]
    assert [(r.status, r.header("x-served-by")) for r in replies] == [(200, a.addr)] * 12
    m = s.wait_for(ejected, stream="err", timeout=2)
    assert m.groups() == ("5", "3", "connection refused")
    assert servers(s) == {a.addr: True, dead: False}
    assert metric(s, "sluice_upstream_healthy", upstream="app", server=dead) == 0

    # Ejected: not even tried while the 5s last.
    tried = metric(s, "sluice_upstream_errors_total", upstream="app", server=dead)
    replies = [request(s.port, f"/ejected/{i}") for i in range(10)]
    assert [r.status for r in replies] == [200] * 10
    assert metric(s, "sluice_upstream_errors_total", upstream="app", server=dead) == tried

    # A lone server that refuses: 502 upstream_refused, before and after its ejection.
    for i in range(6):
        r = request(s.port, f"/lone/{i}")
        assert (r.status, r.header("sluice-error")) == (502, "upstream_refused"), (i, r)
    s.wait_for(rf"upstream 'lone' server {re.escape(lone)} ejected for 5s", stream="err", timeout=2)
    for i in range(3):
        r = request(s.port, f"/lone/after/{i}")
        assert (r.status, r.header("sluice-error")) == (502, "upstream_refused"), (i, r)

    # After the 5s it is tried again; failing again doubles the ejection.
    def second_ejection():
        r = request(s.port, "/again")
        assert r.status == 200, r
        return [l for l in stderr_lines(s, ejected) if "ejected for 10s" in l]
    wait_until(second_ejection, timeout=10, interval=0.1, what="a second ejection of 10s")


# ---- 4. dns: servers ---------------------------------------------------------

def test_dns_servers_follow_the_name(host_backend, dns_sluice, tmp_path):
    b2, b3 = backend_pair(host_backend)
    port = b2.port
    hosts = HostsFile(tmp_path / "hosts", ["127.0.0.2 app.sluice.test", "127.0.0.3 app.sluice.test"])
    s = dns_sluice(app(f'"dns:app.sluice.test:{port}"', 'resolve_interval = "500ms"'), hosts)
    assert servers(s) == {b2.addr: True, b3.addr: True}
    replies = [request(s.port, f"/both/{i}") for i in range(12)]
    assert {r.status for r in replies} == {200}
    assert {r.header("x-served-by") for r in replies} == {b2.addr, b3.addr}

    hosts.write(["127.0.0.2 app.sluice.test"])
    wait_dns(s, f"upstream 'app': -{b3.addr}", hosts.changed)
    assert servers(s) == {b2.addr: True}
    seen = b3.requests()
    replies = [request(s.port, f"/one/{i}") for i in range(10)]
    assert [(r.status, r.header("x-served-by")) for r in replies] == [(200, b2.addr)] * 10
    assert b3.requests() == seen

    hosts.write(["127.0.0.2 app.sluice.test", "127.0.0.3 app.sluice.test"])
    wait_dns(s, f"upstream 'app': +{b3.addr}", hosts.changed)
    assert servers(s) == {b2.addr: True, b3.addr: True}
    replies = [request(s.port, f"/again/{i}") for i in range(12)]
    assert {r.status for r in replies} == {200}
    assert {r.header("x-served-by") for r in replies} == {b2.addr, b3.addr}


def test_a_name_resolving_to_nothing_is_502_until_it_resolves(host_backend, dns_sluice, tmp_path):
    b = host_backend("127.0.0.2")
    hosts = HostsFile(tmp_path / "hosts", ["127.0.0.9 other.sluice.test"])
    s = dns_sluice(app(f'"dns:ghost.sluice.test:{b.port}"', 'resolve_interval = "500ms"'), hosts)
    assert servers(s) == {}
    for i in range(3):
        r = request(s.port, f"/ghost/{i}")
        assert (r.status, r.header("sluice-error")) == (502, "upstream_unresolved"), r

    hosts.write(["127.0.0.9 other.sluice.test", "127.0.0.2 ghost.sluice.test"])
    wait_dns(s, f"upstream 'app': +{b.addr}", hosts.changed)
    r = request(s.port, "/ghost/now")
    assert (r.status, r.header("x-served-by")) == (200, b.addr), r

    # The name gone again: its servers go with it.
    hosts.write(["127.0.0.9 other.sluice.test"])
    wait_dns(s, f"upstream 'app': -{b.addr}", hosts.changed)
    r = request(s.port, "/ghost/gone")
    assert (r.status, r.header("sluice-error")) == (502, "upstream_unresolved"), r


# ---- 5. in flight across a DNS change -------------------------------------------

class KeepAlive:
    """One client connection used for several requests."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def send(self, target):
        self.sock.sendall(f"GET {target} HTTP/1.1\r\nHost: app\r\n\r\n".encode())

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed; got {self.buf!r}")
        self.buf += chunk

    def read_until(self, marker):
        while marker not in self.buf:
            self._fill()
        data, _, self.buf = self.buf.partition(marker)
        return data + marker

    def read_response(self):
        """A response framed by Content-Length or chunked: (Reply, body)."""
        r = Reply(self.read_until(b"\r\n\r\n"))
        if "content-length" in r.headers:
            n = int(r.header("content-length"))
            while len(self.buf) < n:
                self._fill()
            r.body, self.buf = self.buf[:n], self.buf[n:]
        else:
            assert r.header("transfer-encoding") == "chunked", r
            body = b""
            while True:
                size = int(self.read_until(b"\r\n")[:-2], 16)
                while len(self.buf) < size + 2:
                    self._fill()
                body += self.buf[:size]
                self.buf = self.buf[size + 2:]
                if size == 0:
                    break
            r.body = body
        return r

    def close(self):
        self.sock.close()


def test_a_request_in_flight_to_an_address_dns_removed_finishes(host_backend, dns_sluice, tmp_path):
    b2, b3 = backend_pair(host_backend)
    hosts = HostsFile(tmp_path / "hosts", ["127.0.0.3 app.sluice.test"])
    s = dns_sluice(app(f'"dns:app.sluice.test:{b2.port}"', 'resolve_interval = "500ms"'), hosts)
    c = KeepAlive(s.port)
    try:
        c.send("/hold?id=inflight")
        head = Reply(c.read_until(b"\r\n\r\n"))
        assert head.status == 200 and head.header("transfer-encoding") == "chunked", head
        assert c.read_until(b"first\n\r\n").endswith(b"first\n\r\n")
        assert "/hold?id=inflight" in json.loads(b3.control("/_ctl/stats"))["targets"]

        hosts.write(["127.0.0.2 app.sluice.test"])
        wait_dns(s, f"upstream 'app': +{b2.addr} -{b3.addr}", hosts.changed)
        assert servers(s) == {b2.addr: True}
        assert request(s.port, "/fresh").header("x-served-by") == b2.addr
        time.sleep(0.5)

        b3.control("/_ctl/release?id=inflight")
        assert b"second\n" in c.read_until(b"0\r\n\r\n")
        # The connection stays open and serves the next request.
        c.send("/next")
        r = c.read_response()
        assert r.status == 200 and r.header("x-served-by") in (b2.addr, b3.addr), r
    finally:
        c.close()


def test_a_keepalive_client_from_before_a_dns_change_survives_the_removed_server_going_away(
        host_backend, dns_sluice, tmp_path):
    """A Kubernetes rollout: the pod's address leaves the name, then the pod
    goes away. A client connection opened before the change must not keep
    being sent to the address that left."""
    b2, b3 = backend_pair(host_backend)
    hosts = HostsFile(tmp_path / "hosts", ["127.0.0.3 app.sluice.test"])
    s = dns_sluice(app(f'"dns:app.sluice.test:{b2.port}"', 'resolve_interval = "500ms"'), hosts)
    c = KeepAlive(s.port)
    try:
        c.send("/before")
        r = c.read_response()
        assert (r.status, r.header("x-served-by")) == (200, b3.addr), r

        hosts.write(["127.0.0.2 app.sluice.test"])
        wait_dns(s, f"upstream 'app': +{b2.addr} -{b3.addr}", hosts.changed)
        b3.stop(signal.SIGKILL)
        assert request(s.port, "/fresh").header("x-served-by") == b2.addr
        for i in range(3):
            c.send(f"/after/{i}")
            r = c.read_response()
            assert (r.status, r.header("x-served-by")) == (200, b2.addr), (i, r)
    finally:
        c.close()
