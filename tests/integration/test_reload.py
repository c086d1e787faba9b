"""Hot reload (SPEC.md "Signals", `[server] watch_config`) against real
processes: sluice, backends.py, the Node WebSocket echo peer (peers.js) and
certificates from tools/dev-cert.

A reload is triggered by SIGHUP (sent to sluice's pid only) or, with
`watch_config = true`, by changing the config file: in place, or the way a
Kubernetes ConfigMap volume does it (DIR/sluice.toml -> ..data/sluice.toml,
..data -> a timestamped directory, swapped by renaming a new symlink over
..data). Its outcome is read from sluice's stderr ("config reloaded" or
"reload refused") and from /metrics on the admin listener.

What a reload must keep: tunnels and requests in flight, and connections
opened before it, stay on the config (and upstream) they started with; new
connections get the new config. Every wait has a deadline; every process is
started through the conftest fixtures (or appended to `procs`) and stopped
with its process group when the test ends."""

import base64
import json
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time

import pytest

from conftest import REPO, SLUICE, Proc, Sluice
from test_http_proxy import Conn, free_port, get, refused, upstream, wait_until

DEV_CERT = REPO / "tools" / "dev-cert"
CA_ENV = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "NODE_EXTRA_CA_CERTS")
LISTENER = '[[listener]]\naddress = "127.0.0.1:0"\n'

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def no_ca_bundle_from_the_environment(monkeypatch):
    """Clients trust exactly the CA a test names (children inherit this env)."""
    for name in CA_ENV:
        monkeypatch.delenv(name, raising=False)


# ---- config ---------------------------------------------------------------------

def config(log, body, listeners=LISTENER, server=""):
    """A whole config: 2 workers, the access log `log`, `listeners` (TOML text),
    the admin listener on a free port, then `body` (upstreams and routes)."""
    return (f'[server]\nworkers = 2\naccess_log = "{log}"\n{server}\n{listeners}'
            '[admin]\naddress = "127.0.0.1:0"\n' + body)


def respond(name, path, text, match="exact"):
    return f'[[route]]\nname = "{name}"\n{match} = "{path}"\nrespond = {{ body = "{text}" }}\n'


def proxied(name, path, up, extra=""):
    return f'[[route]]\nname = "{name}"\nprefix = "{path}"\nupstream = "{up}"\n{extra}\n'


def api_to(port):
    """/api -> backends.py on `port`, prefix stripped (/api/hold -> /hold)."""
    return upstream(port, "api") + proxied("api", "/api", "api", "strip_prefix = true")


# ---- reload and its outcome -----------------------------------------------------

def admin_port(s, timeout=10):
    """The admin port sluice printed; once /healthz answers, the control loop
    runs and its signal handlers are installed (they come after the
    "listening on" lines), so a SIGHUP is safe from then on."""
    if not hasattr(s, "admin_port"):
        m = s.wait_for(r"sluice: listening on \S+:(\d+) \(admin\)", stream="err", timeout=timeout)
        s.admin_port = int(m.group(1))
        wait_until(lambda: get(s.admin_port, "/healthz").status == 200, timeout, "admin /healthz")
    return s.admin_port


def outcome(s, since, timeout=10):
    """Waits for the first "config reloaded" / "reload refused" line among
    sluice's stderr lines from index `since`; returns ("ok" | "refused",
    the stderr lines from `since` up to that one)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = list(s.err[since:])
        for i, line in enumerate(lines):
            if line.startswith("sluice: config reloaded"):
                return "ok", lines[: i + 1]
            if line.startswith("sluice: reload refused"):
                return "refused", lines[: i + 1]
        if time.monotonic() > deadline or not s.alive():
            raise AssertionError(f"no reload outcome within {timeout}s (alive={s.alive()}):\n" + "\n".join(lines))
        time.sleep(0.02)


def sighup(s, text=None, timeout=10):
    """Writes `text` (if given) over sluice's config file, sends SIGHUP and
    returns outcome()."""
    admin_port(s)
    since = len(s.err)
    if text is not None:
        s.config_path.write_text(text)
    os.kill(s.pid, signal.SIGHUP)
    return outcome(s, since, timeout)


def reloads(s):
    """{"ok": N, "failed": M} from sluice_config_reloads_total on /metrics."""
    text = get(admin_port(s), "/metrics").body.decode()
    found = dict(re.findall(r'^sluice_config_reloads_total\{result="(ok|failed)"\} (\d+)', text, re.M))
    return {k: int(found.get(k, -1)) for k in ("ok", "failed")}


def route_names(s):
    return sorted(r["name"] for r in get(admin_port(s), "/routes").json()["routes"])


def listening_ports(lines, kind="http"):
    return [int(m.group(1)) for m in (re.search(rf"sluice: listening on \S+:(\d+) \({kind}\)", l) for l in lines) if m]


def body_of(port, target, timeout=10):
    r = get(port, target, timeout=timeout)
    assert r.status == 200, r
    return r.body


def served_by(port, target):
    """The port of the backends.py that answered `target` (its echo JSON)."""
    return json.loads(body_of(port, target))["port"]


def rest_of_hold(conn):
    """After /hold's head and "first": the rest of the chunked body, consumed."""
    data = conn.read_until_seen(b"0\r\n\r\n")
    conn.buf = b""
    return data




# ---- a WebSocket client that stays open across a reload -------------------------

class WebSocket:
    """A minimal RFC 6455 client over a raw socket (text frames, masked)."""

    def __init__(self, port, path, timeout=10):
        self.conn = Conn(port, timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.conn.send(f"GET {path} HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        self.handshake = self.conn.read_head()

    def send(self, text):
        payload, mask = text.encode(), os.urandom(4)
        n = len(payload)
        head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n))
        self.conn.send(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def recv(self):
        """The next data frame: (opcode, payload). Pings are skipped."""
        while True:
            b0, b1 = self.conn._read_exactly(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self.conn._read_exactly(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self.conn._read_exactly(8))[0]
            payload = self.conn._read_exactly(n)
            if b0 & 0x0F != 0x9:
                return b0 & 0x0F, payload

    def echo(self, text):
        self.send(text)
        opcode, payload = self.recv()
        assert (opcode, payload) == (1, text.encode()), (opcode, payload)

    def close(self):
        self.conn.close()


# ---- 1. SIGHUP moves new traffic; tunnels and requests in flight stay -----------

def test_sighup_moves_new_traffic_while_a_tunnel_and_a_request_in_flight_stay(backend, start_node, sluice_proc,
                                                                              tmp_path):
    a, b = backend(), backend()
    ws_port = start_node("ws-echo")
    log = tmp_path / "access.log"
    ws = upstream(ws_port, "ws") + proxied("ws", "/ws", "ws", 'kind = "websocket"')
    s = sluice_proc(config=config(log, api_to(a.port) + ws + respond("version", "/version", "v1")))
    assert served_by(s.port, "/api/x") == a.port
    assert body_of(s.port, "/version") == b"v1"

    tunnel = WebSocket(s.port, "/ws/room")
    assert tunnel.handshake.status == 101, tunnel.handshake
    assert json.loads(tunnel.recv()[1])["url"] == "/ws/room"
    tunnel.echo("before the reload")
    held = Conn(s.port)
    held.send(b"GET /api/hold?id=inflight HTTP/1.1\r\nHost: h\r\n\r\n")
    assert held.read_head().status == 200
    held.read_until_seen(b"first\n")
    held.buf = b""

    # /api moves to B, /version changes, the WebSocket route and its upstream go.
    result, lines = sighup(s, config(log, api_to(b.port) + respond("version", "/version", "v2")))
    assert result == "ok", lines
    assert lines[-1] == "sluice: config reloaded (2 routes, 1 upstreams, 1 listeners)"
    # New connections: the new config at once.
    for i in range(20):
        assert served_by(s.port, f"/api/new-{i}") == b.port
    assert body_of(s.port, "/version") == b"v2"
    r = WebSocket(s.port, "/ws/room")
    assert r.handshake.status == 404 and r.handshake.get("sluice-error") == "no_route", r.handshake
    r.close()
    assert route_names(s) == ["api", "version"]

    # The tunnel opened before keeps echoing through the upstream it started with.
    for i in range(5):
        tunnel.echo(f"after the reload {i}")
    tunnel.close()
    # The request in flight completes, from A.
    a.release("inflight")
    assert rest_of_hold(held).endswith(b"7\r\nsecond\n\r\n0\r\n\r\n")
    held.close()
    assert "/hold?id=inflight" in a.stats()["targets"]
    assert not any("hold" in t for t in b.stats()["targets"])
    assert reloads(s) == {"ok": 1, "failed": 0}


def test_a_keepalive_connection_opened_before_the_reload_uses_the_new_config_from_its_next_request(
        backend, sluice_proc, tmp_path):
    a, b = backend(), backend()
    log = tmp_path / "access.log"
    s = sluice_proc(config=config(log, api_to(a.port) + respond("version", "/version", "v1")))
    with Conn(s.port) as old:
        old.send(b"GET /api/one HTTP/1.1\r\nHost: h\r\n\r\n")
        assert old.read_response().json()["port"] == a.port
        assert sighup(s, config(log, api_to(b.port) + respond("version", "/version", "v2")))[0] == "ok"
        assert served_by(s.port, "/api/fresh") == b.port
        # The same connection, idle across the reload: its next requests see
        # the new config (only what was in flight finishes on the old one).
        for target, expected in (("/api/two", b.port), ("/api/three", b.port)):
            old.send(f"GET {target} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
            assert old.read_response().json()["port"] == expected
        old.send(b"GET /version HTTP/1.1\r\nHost: h\r\n\r\n")
        assert old.read_response().body == b"v2"
    assert body_of(s.port, "/version") == b"v2"


# ---- 2. a broken config is refused; fixing it succeeds --------------------------

BROKEN = {
    # name: (text inserted, where: "server" (into [server]) or "body", the token the error points at)
    "unknown key": ('bogus_key = 1\n', "server", "bogus_key"),
    "duration without unit": ('keepalive_timeout = "75"\n', "server", '"75"'),
    "route naming a missing upstream": (proxied("ghost", "/ghost", "missing"), "body", '"missing"'),
}


@pytest.mark.parametrize("case", BROKEN)
def test_a_broken_config_is_refused_with_its_position_and_the_old_one_keeps_serving(case, backend, sluice_proc,
                                                                                  tmp_path):
    a, b = backend(), backend()
    log = tmp_path / "access.log"
    good = api_to(a.port) + respond("version", "/version", "v1")
    s = sluice_proc(config=config(log, good))
    assert reloads(s) == {"ok": 0, "failed": 0}

    inserted, where, token = BROKEN[case]
    new_body = api_to(b.port) + respond("version", "/version", "v2")
    text = (config(log, new_body, server=inserted) if where == "server" else config(log, new_body + inserted))
    line_no, line = next((i, l) for i, l in enumerate(text.split("\n"), 1) if token in l)
    col = line.index(token) + 1

    result, lines = sighup(s, text)
    assert result == "refused", lines
    assert any(l.startswith(f"{s.config_path}:{line_no}:{col}: error:") for l in lines), \
        f"expected {s.config_path}:{line_no}:{col}: error: in\n" + "\n".join(lines)
    assert re.fullmatch(r"sluice: reload refused: .+; still serving the previous config", lines[-1]), lines
    # The old config keeps serving, new connections included.
    assert served_by(s.port, "/api/x") == a.port
    assert body_of(s.port, "/version") == b"v1"
    assert route_names(s) == ["api", "version"]
    assert reloads(s) == {"ok": 0, "failed": 1}
    assert s.alive()

    # A second SIGHUP of the same broken file is refused again.
    assert sighup(s)[0] == "refused"
    assert reloads(s) == {"ok": 0, "failed": 2}

    # Fixed: the next SIGHUP applies it.
    result, lines = sighup(s, config(log, new_body))
    assert result == "ok", lines
    assert served_by(s.port, "/api/x") == b.port
    assert body_of(s.port, "/version") == b"v2"
    assert reloads(s) == {"ok": 1, "failed": 2}


def test_settings_that_need_a_restart_warn_and_the_rest_of_the_reload_applies(sluice_proc, tmp_path):
    log = tmp_path / "access.log"
    s = sluice_proc(config=config(log, respond("version", "/version", "v1")))
    port = admin_port(s)
    text = config(tmp_path / "other.log", respond("version", "/version", "v2")).replace("workers = 2", "workers = 3")
    result, lines = sighup(s, text)
    assert result == "ok", lines
    assert any("warning" in l and "next start" in l for l in lines), lines
    assert body_of(s.port, "/version") == b"v2"
    # The admin listener and the access log stay where they were.
    assert get(port, "/healthz").status == 200
    wait_until(lambda: any(l.get("target") == "/version" and l.get("status") == 200 for l in s.read_log()),
               5, "the request in the old access log")
    assert not (tmp_path / "other.log").exists()


# ---- 3. watch_config ------------------------------------------------------------

class ConfigMapVolume:
    """A directory laid out like a Kubernetes ConfigMap volume: DIR/sluice.toml
    -> ..data/sluice.toml, ..data -> ..<timestamp>; update() writes a new
    timestamped directory, points ..data_tmp at it, renames that over ..data
    (atomic) and removes the old directory, as the kubelet's AtomicWriter does."""

    def __init__(self, root, text):
        self.root = root
        self.version = 0
        self.current = None
        root.mkdir(exist_ok=True)
        self.update(text)
        (root / "sluice.toml").symlink_to("..data/sluice.toml")

    def update(self, text):
        self.version += 1
        new = f"..2026_11_29_18_00_{self.version:02d}.{1000 + self.version}"
        (self.root / new).mkdir()
        (self.root / new / "sluice.toml").write_text(text)
        tmp = self.root / "..data_tmp"
        tmp.symlink_to(new)
        os.rename(tmp, self.root / "..data")
        if self.current:
            shutil.rmtree(self.root / self.current)
        self.current = new

    @property
    def path(self):
        return self.root / "sluice.toml"


def watched_sluice(procs, path, log):
    s = Sluice(path, log)
    procs.append(s)
    admin_port(s)
    return s


def test_watch_config_reloads_on_a_configmap_style_symlink_swap(procs, tmp_path):
    log = tmp_path / "access.log"
    server = "watch_config = true"
    volume = ConfigMapVolume(tmp_path / "config", config(log, respond("version", "/version", "v1"), server=server))
    s = watched_sluice(procs, volume.path, log)
    assert body_of(s.port, "/version") == b"v1"

    serving = b"v1"
    for version, expected in (("v2", "ok"), ("broken", "refused"), ("v3", "ok")):
        since = len(s.err)
        started = time.monotonic()
        extra = "\nbogus = 1" if version == "broken" else ""
        volume.update(config(log, respond("version", "/version", version) + respond("extra", f"/{version}", "x"),
                             server=server + extra))
        result, lines = outcome(s, since, timeout=10)
        assert result == expected, lines
        assert time.monotonic() - started < 5, f"reload took {time.monotonic() - started:.1f}s"
        assert any("config file changed" in l for l in lines), lines
        if result == "ok":
            serving = version.encode()
        assert body_of(s.port, "/version") == serving
        assert route_names(s) == sorted(["version", "extra"])
    assert reloads(s) == {"ok": 2, "failed": 1}
    # Nothing changes: no further reload.
    since = len(s.err)
    time.sleep(2.5)
    assert not [l for l in s.err[since:] if "reload" in l], s.err[since:]


def test_watch_config_reloads_on_an_in_place_rewrite_and_refuses_a_bad_one(sluice_proc, tmp_path):
    log = tmp_path / "access.log"
    server = "watch_config = true"
    s = sluice_proc(config=config(log, respond("version", "/version", "v1"), server=server))
    assert body_of(s.port, "/version") == b"v1"
    admin_port(s)

    # Same size, same path, same inode: only the content and mtime change.
    since = len(s.err)
    text = config(log, respond("version", "/version", "v2"), server=server)
    assert len(text) == len(s.config_path.read_text())
    with open(s.config_path, "r+") as f:
        f.write(text)
    result, lines = outcome(s, since, timeout=10)
    assert result == "ok", lines
    assert body_of(s.port, "/version") == b"v2"

    # A broken edit is refused (and the old config serves); the fix applies.
    since = len(s.err)
    s.config_path.write_text(config(log, respond("version", "/version", "v3"), server=server + "\nbogus = 1"))
    result, lines = outcome(s, since, timeout=10)
    assert result == "refused", lines
    assert body_of(s.port, "/version") == b"v2"
    since = len(s.err)
    s.config_path.write_text(config(log, respond("version", "/version", "v4"), server=server))
    assert outcome(s, since, timeout=10)[0] == "ok"
    assert body_of(s.port, "/version") == b"v4"
    assert reloads(s) == {"ok": 2, "failed": 1}


def test_watch_config_does_not_apply_a_file_caught_between_its_truncation_and_its_write(sluice_proc, tmp_path):
    """An in-place rewrite truncates, then writes. A poll that lands in between
    sees an empty file, which parses as a config of defaults only (no routes,
    a listener on 0.0.0.0:8080, watch_config off). Applying it would close the
    real listener and stop the watcher, so the write that follows is never
    seen; the old config must keep serving until the complete file is there."""
    log = tmp_path / "access.log"
    server = "watch_config = true"
    s = sluice_proc(config=config(log, respond("version", "/version", "v1"), server=server))
    admin_port(s)
    since = len(s.err)
    open(s.config_path, "w").close()  # a slow writer: truncated, not yet written
    time.sleep(2.5)                   # two polls see the empty file
    lines = s.err[since:]
    assert not refused(s.port), f"the listener was closed by reloading an empty file: {lines}"
    assert body_of(s.port, "/version") == b"v1", lines
    since = len(s.err)
    s.config_path.write_text(config(log, respond("version", "/version", "v2"), server=server))
    wait_until(lambda: not refused(s.port) and get(s.port, "/version").body == b"v2", 5,
               f"the completed file applied: {s.err[since:]}")


def test_watch_config_turned_on_and_off_by_a_reload(sluice_proc, tmp_path):
    log = tmp_path / "access.log"
    s = sluice_proc(config=config(log, respond("version", "/version", "v1")))
    assert sighup(s, config(log, respond("version", "/version", "v2"), server="watch_config = true"))[0] == "ok"
    since = len(s.err)
    s.config_path.write_text(config(log, respond("version", "/version", "v3"), server="watch_config = false"))
    assert outcome(s, since, timeout=10)[0] == "ok"
    assert body_of(s.port, "/version") == b"v3"
    # Now off: a change is not picked up.
    since = len(s.err)
    s.config_path.write_text(config(log, respond("version", "/version", "v4")))
    time.sleep(3)
    assert not [l for l in s.err[since:] if "reload" in l], s.err[since:]
    assert body_of(s.port, "/version") == b"v3"


# ---- 4. listeners added and removed ---------------------------------------------

def test_a_reload_adds_a_listener_and_removing_it_refuses_new_connections_there(backend, sluice_proc, tmp_path):
    a = backend()
    log = tmp_path / "access.log"
    body = api_to(a.port) + respond("hello", "/hello", "hello")
    s = sluice_proc(config=config(log, body))
    first = s.port

    result, lines = sighup(s, config(log, body, listeners=LISTENER * 2))
    assert result == "ok", lines
    added = listening_ports(lines)
    assert len(added) == 1 and added[0] != first, lines  # the kept listener is not bound again
    second = added[0]
    assert body_of(second, "/hello") == b"hello"
    assert body_of(first, "/hello") == b"hello"

    # A request in flight and an idle keep-alive connection on the second listener.
    held = Conn(second)
    held.send(b"GET /api/hold?id=on-second HTTP/1.1\r\nHost: h\r\n\r\n")
    assert held.read_head().status == 200
    held.read_until_seen(b"first\n")
    held.buf = b""
    idle = Conn(second)
    idle.send(b"GET /hello HTTP/1.1\r\nHost: h\r\n\r\n")
    assert idle.read_response().body == b"hello"

    result, lines = sighup(s, config(log, body))
    assert result == "ok", lines
    assert "sluice: stopped listening on 127.0.0.1:0" in lines, lines
    assert not listening_ports(lines), lines
    wait_until(lambda: refused(second), 5, f"connection refused on the removed listener {second}")
    assert body_of(first, "/hello") == b"hello"

    # The connections opened before finish their requests.
    a.release("on-second")
    assert rest_of_hold(held).endswith(b"7\r\nsecond\n\r\n0\r\n\r\n")
    held.send(b"GET /hello HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    assert held.read_response().body == b"hello"
    held.close()
    idle.send(b"GET /hello HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    assert idle.read_response().body == b"hello"
    idle.close()
    assert refused(second)
    assert reloads(s) == {"ok": 2, "failed": 0}


def test_a_kept_listener_keeps_its_socket(sluice_proc, tmp_path):
    """The listening socket (its inode in /proc/PID/fd) survives reloads that
    keep its listener, including one that adds and removes another."""
    log = tmp_path / "access.log"
    s = sluice_proc(config=config(log, respond("hello", "/hello", "hello")))

    def listening_sockets():
        inodes = set()
        for line in open("/proc/net/tcp").read().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].split(":")[1], 16) == s.port:
                inodes.add(fields[9])
        return inodes

    before = listening_sockets()
    assert before
    assert sighup(s, config(log, respond("hello", "/hello", "again"), listeners=LISTENER * 2))[0] == "ok"
    assert sighup(s, config(log, respond("hello", "/hello", "third")))[0] == "ok"
    assert listening_sockets() == before
    assert body_of(s.port, "/hello") == b"third"


# ---- 5. certificates of TLS listeners -------------------------------------------

def dev_cert(out, *hosts, name):
    p = subprocess.run([str(DEV_CERT), "-o", str(out), "-n", name, *hosts], capture_output=True, text=True,
                       timeout=60, start_new_session=True)
    assert p.returncode == 0, p.stderr
    return out / f"{name}.pem", out / f"{name}.key"


def tls_listener(cert, key):
    return f'[[listener]]\naddress = "127.0.0.1:0"\n[listener.tls]\ncert = "{cert}"\nkey = "{key}"\n'


class TlsClient:
    """A TLS connection to 127.0.0.1:port verified against `ca`."""

    def __init__(self, port, ca, timeout=10):
        ctx = ssl.create_default_context(cafile=str(ca))
        self.conn = Conn(port, timeout)
        self.conn.sock = ctx.wrap_socket(self.conn.sock, server_hostname="127.0.0.1")
        self.cert = self.conn.sock.getpeercert()

    @property
    def serial(self):
        return self.cert["serialNumber"]

    @property
    def subject_cn(self):
        return dict(x[0] for x in self.cert["subject"])["commonName"]

    def get(self, target, close=False):
        extra = "Connection: close\r\n" if close else ""
        self.conn.send(f"GET {target} HTTP/1.1\r\nHost: h\r\n{extra}\r\n".encode())
        return self.conn.read_response()

    def close(self):
        self.conn.close()


def serial_of(pem):
    out = subprocess.run(["openssl", "x509", "-noout", "-serial", "-in", str(pem)], capture_output=True, text=True,
                         timeout=20, check=True).stdout
    return out.strip().split("=", 1)[1].upper().lstrip("0")


def s_client_subject(port, ca):
    p = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", str(ca),
                        "-verify_return_error", "-showcerts"], input=b"", capture_output=True, timeout=20,
                       start_new_session=True)
    out = (p.stdout + p.stderr).decode(errors="replace")
    assert "Verify return code: 0 (ok)" in out, out
    return re.search(r"^subject=(.*)$", out, re.M).group(1)


def test_sighup_reloads_the_certificates_of_a_tls_listener(sluice_proc, tmp_path):
    pki = tmp_path / "pki"
    v1 = dev_cert(pki, "127.0.0.1", "localhost", name="v1")       # CN=127.0.0.1
    v2 = dev_cert(pki, "localhost", "127.0.0.1", name="v2")       # CN=localhost, same CA
    ca = pki / "ca.pem"
    live = tmp_path / "live"
    live.mkdir()
    cert, key = live / "cert.pem", live / "key.pem"
    shutil.copy(v1[0], cert)
    shutil.copy(v1[1], key)
    log = tmp_path / "access.log"
    text = config(log, respond("hello", "/hello", "hello"), listeners=tls_listener(cert, key))
    s = sluice_proc(config=text)

    old = TlsClient(s.port, ca)
    assert old.serial.lstrip("0") == serial_of(v1[0]) and old.subject_cn == "127.0.0.1"
    assert old.get("/hello").body == b"hello"
    assert "CN=127.0.0.1" in s_client_subject(s.port, ca).replace(" ", "")

    # Same paths, new files; nothing else in the config changes.
    shutil.copy(v2[0], cert)
    shutil.copy(v2[1], key)
    result, lines = sighup(s)
    assert result == "ok", lines
    assert not listening_ports(lines, "https"), lines  # the listener is kept
    new = TlsClient(s.port, ca)
    assert new.serial.lstrip("0") == serial_of(v2[0]) and new.subject_cn == "localhost"
    assert new.get("/hello", close=True).body == b"hello"
    new.close()
    assert "CN=localhost" in s_client_subject(s.port, ca).replace(" ", "")
    # The connection from before the reload keeps working.
    for _ in range(3):
        assert old.get("/hello").body == b"hello"
    old.close()


def test_a_reload_with_unloadable_certificates_is_refused_and_the_old_ones_serve(sluice_proc, tmp_path):
    pki = tmp_path / "pki"
    v1 = dev_cert(pki, "127.0.0.1", name="v1")
    v2 = dev_cert(pki, "127.0.0.1", name="v2")
    ca = pki / "ca.pem"
    live = tmp_path / "live"
    live.mkdir()
    cert, key = live / "cert.pem", live / "key.pem"
    shutil.copy(v1[0], cert)
    shutil.copy(v1[1], key)
    log = tmp_path / "access.log"
    s = sluice_proc(config=config(log, respond("hello", "/hello", "v1"), listeners=tls_listener(cert, key)))
    # Half a rotation: the new certificate, still the old key.
    shutil.copy(v2[0], cert)
    result, lines = sighup(s, config(log, respond("hello", "/hello", "v2"), listeners=tls_listener(cert, key)))
    assert result == "refused", lines
    c = TlsClient(s.port, ca)
    assert c.serial.lstrip("0") == serial_of(v1[0])
    assert c.get("/hello", close=True).body == b"v1"
    c.close()
    assert reloads(s) == {"ok": 0, "failed": 1}
    # The rotation completed: accepted.
    shutil.copy(v2[1], key)
    assert sighup(s)[0] == "ok"
    c = TlsClient(s.port, ca)
    assert c.serial.lstrip("0") == serial_of(v2[0])
    assert c.get("/hello", close=True).body == b"v2"
    c.close()


# ---- 6. a new listener on a port in use -----------------------------------------

def test_a_reload_whose_new_listener_port_is_taken_is_refused_whole(sluice_proc, tmp_path):
    log = tmp_path / "access.log"
    s = sluice_proc(config=config(log, respond("version", "/version", "v1")))
    taken = socket.socket()
    try:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        busy = f'[[listener]]\naddress = "127.0.0.1:{port}"\n'
        text = config(log, respond("version", "/version", "v2"), listeners=LISTENER + busy)
        result, lines = sighup(s, text)
        assert result == "refused", lines
        assert any(f"cannot listen on 127.0.0.1:{port}" in l for l in lines), lines
        assert lines[-1] == (f"sluice: reload refused: cannot listen on 127.0.0.1:{port}; "
                             "still serving the previous config"), lines
        # Nothing of it applied: the old route answers, on the old listener only.
        assert body_of(s.port, "/version") == b"v1"
        assert reloads(s) == {"ok": 0, "failed": 1}
    finally:
        taken.close()
    # The port is free again: the same file now applies.
    result, lines = sighup(s)
    assert result == "ok", lines
    assert listening_ports(lines) == [port], lines
    assert body_of(port, "/version") == b"v2"
    assert body_of(s.port, "/version") == b"v2"


def test_a_refused_reload_leaves_no_listener_it_opened_before_the_failure(sluice_proc, tmp_path):
    """New listeners are bound in order; when a later one fails, the earlier
    ones are closed again. Nothing may then claim to be listening there."""
    log = tmp_path / "access.log"
    s = sluice_proc(config=config(log, respond("version", "/version", "v1")))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        busy = f'[[listener]]\naddress = "127.0.0.1:{port}"\n'
        result, lines = sighup(s, config(log, respond("version", "/version", "v2"), listeners=LISTENER * 2 + busy))
        assert result == "refused", lines
        opened = listening_ports(lines)
        for p in opened:
            assert refused(p), f"port {p} of the refused reload accepts connections"
        assert not opened, f"a refused reload printed 'listening on' for a port it closed again: {lines}"
    assert body_of(s.port, "/version") == b"v1"


def test_sighup_right_after_the_listening_lines_reloads_and_never_kills(procs, tmp_path):
    """sluice prints "listening on" before it serves; a SIGHUP sent as soon as
    those lines appear (a config reloader that just wrote the file) must be a
    reload, not the default action of SIGHUP (terminate)."""
    log = tmp_path / "access.log"
    path = tmp_path / "sluice.toml"
    path.write_text(config(log, respond("version", "/version", "v1")))
    deaths = []
    for attempt in range(20):
        p = Proc([SLUICE, "--config", str(path)], f"sluice #{attempt}")
        procs.append(p)
        deadline = time.monotonic() + 10
        while not any("listening on" in l for l in list(p.err)):
            assert time.monotonic() < deadline and p.proc.poll() is None, p.err
            time.sleep(0.0002)
        os.kill(p.proc.pid, signal.SIGHUP)
        try:
            p.proc.wait(timeout=0.3)
            deaths.append(p.proc.returncode)
        except subprocess.TimeoutExpired:
            pass
        p.stop()
    assert not deaths, f"{len(deaths)} of 20 sluice processes died of a SIGHUP sent after 'listening on': {deaths}"


def test_a_tunnel_of_a_route_removed_by_the_reload_keeps_its_metric_labels(start_node, sluice_proc, tmp_path):
    ws_port = start_node("ws-echo")
    log = tmp_path / "access.log"
    ws = upstream(ws_port, "ws") + proxied("ws", "/ws", "ws", 'kind = "websocket"')
    s = sluice_proc(config=config(log, ws + respond("version", "/version", "v1")))
    tunnel = WebSocket(s.port, "/ws")
    assert tunnel.handshake.status == 101
    tunnel.recv()

    def active():
        text = get(admin_port(s), "/metrics").body.decode()
        return re.findall(r'^sluice_tunnels_active\{(.*)\} (\d+)', text, re.M)

    assert ('route="ws",kind="websocket"', "1") in active(), active()
    assert sighup(s, config(log, respond("version", "/version", "v2")))[0] == "ok"
    tunnel.echo("still here")
    assert ('route="ws",kind="websocket"', "1") in active(), active()
    tunnel.close()


def test_drain_after_a_reload_ends_the_tunnels_of_the_old_config(start_node, sluice_proc, tmp_path):
    ws_port = start_node("ws-echo")
    log = tmp_path / "access.log"
    ws = upstream(ws_port, "ws") + proxied("ws", "/ws", "ws", 'kind = "websocket"')
    server = 'drain_timeout = "4s"'
    s = sluice_proc(config=config(log, ws, server=server))
    tunnel = WebSocket(s.port, "/ws")
    assert tunnel.handshake.status == 101
    tunnel.recv()
    assert sighup(s, config(log, respond("version", "/version", "v2"), server=server))[0] == "ok"
    tunnel.echo("across the reload")
    s.stopped = True
    started = time.monotonic()
    os.kill(s.pid, signal.SIGTERM)
    opcode, payload = tunnel.recv()
    assert opcode == 8 and struct.unpack("!H", payload[:2])[0] == 1001, (opcode, payload)
    tunnel.close()
    assert s.proc.wait(timeout=10) == 0, s.stderr
    assert time.monotonic() - started < 6


def test_a_listener_switched_to_tls_on_the_same_port_serves_tls(sluice_proc, tmp_path):
    pki = tmp_path / "pki"
    cert, key = dev_cert(pki, "127.0.0.1", name="server")
    ca = pki / "ca.pem"
    log = tmp_path / "access.log"
    port = free_port()
    plain = f'[[listener]]\naddress = "127.0.0.1:{port}"\n'
    tls = plain + f'[listener.tls]\ncert = "{cert}"\nkey = "{key}"\n'
    s = sluice_proc(config=config(log, respond("hello", "/hello", "hello"), listeners=plain))
    assert body_of(port, "/hello") == b"hello"
    result, lines = sighup(s, config(log, respond("hello", "/hello", "hello"), listeners=tls))
    assert result == "ok", lines
    assert listening_ports(lines, "https") == [port], lines
    assert f"sluice: stopped listening on 127.0.0.1:{port}" in lines, lines

    def serves_tls():
        try:
            c = TlsClient(port, ca)
        except (OSError, ssl.SSLError):
            return False
        try:
            return c.get("/hello", close=True).body == b"hello"
        finally:
            c.close()

    wait_until(serves_tls, 5, "TLS on the switched listener")
    # Every new connection from now on is TLS.
    for _ in range(10):
        assert serves_tls()


def test_many_reloads_leak_no_descriptors_memory_or_idle_upstream_connections(backend, sluice_proc, tmp_path):
    a, b = backend(), backend()
    log = tmp_path / "access.log"
    bulk = "".join(respond(f"r{i}", f"/bulk/{i}", "x" * 200) for i in range(1500))

    def text(i):
        port = (a, b)[i % 2].port
        return config(log, api_to(port) + bulk, listeners=LISTENER * (1 + i % 2))

    s = sluice_proc(config=text(0))
    baseline = None
    for i in range(1, 61):
        assert sighup(s, text(i), timeout=20)[0] == "ok"
        for _ in range(4):
            assert served_by(s.port, f"/api/{i}") == (a, b)[i % 2].port
        if i == 2:
            baseline = (s.fd_count(), s.rss_kib())
    # The last reload (60) moved /api from B to A: B's idle pooled connections are closed.
    assert b.stats()["connections"] > 0
    b.wait_stats(lambda st: st["open"] == 0, 5, "no connection left open to the backend of the old config")
    wait_until(lambda: s.fd_count() <= baseline[0] + 2, 5,
               f"descriptors back to {baseline[0]} (now {s.fd_count()})")
    growth_mib = (s.rss_kib() - baseline[1]) / 1024
    assert growth_mib < 40, f"RSS grew {growth_mib:.0f} MiB over 58 reloads"


def test_no_request_fails_while_reloads_come_one_after_another(backend, sluice_proc, tmp_path):
    """Clients on new connections and on one keep-alive connection, without
    pause, while 30 reloads move /api between two backends and add and remove
    a second listener: every request gets its 200."""
    a, b = backend(), backend()
    log = tmp_path / "access.log"

    def text(i):
        return config(log, api_to((a, b)[i % 2].port) + respond("version", "/version", f"v{i}"),
                      listeners=LISTENER * (1 + i % 2))

    s = sluice_proc(config=text(0))
    admin_port(s)
    stop = threading.Event()
    errors, done = [], [0]

    def fresh_connections():
        while not stop.is_set():
            try:
                r = get(s.port, "/api/fresh")
                if r.status != 200:
                    errors.append(repr(r))
                done[0] += 1
            except Exception as e:  # noqa: BLE001 - every failure is reported
                errors.append(f"new connection: {e!r}")

    def keepalive():
        while not stop.is_set():
            try:
                with Conn(s.port) as c:
                    for _ in range(50):
                        c.send(b"GET /api/kept HTTP/1.1\r\nHost: h\r\n\r\n")
                        r = c.read_response()
                        if r.status != 200:
                            errors.append(repr(r))
                        done[0] += 1
            except Exception as e:  # noqa: BLE001
                errors.append(f"keep-alive: {e!r}")

    threads = [threading.Thread(target=f, daemon=True) for f in (fresh_connections, fresh_connections, keepalive)]
    for t in threads:
        t.start()
    try:
        for i in range(1, 31):
            assert sighup(s, text(i))[0] == "ok"
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=15)
    assert not errors, f"{len(errors)} failed of {done[0]}: {errors[:5]}"
    assert done[0] > 100
    assert body_of(s.port, "/version") == b"v30"
