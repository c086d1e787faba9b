"""TLS listeners and upstreams against real processes: sluice with certificates
made by tools/dev-cert (a root CA, an intermediate, leaves), real clients
(curl, openssl s_client, Python's ssl, Node's socket.io-client and ws) and
backends.py, itself over TLS for the upstream tests.

Clients trust exactly the CA a test names: the CA bundle variables of the
environment are removed for every process a test starts."""

import hashlib
import json
import os
import random
import re
import shutil
import socket
import ssl
import subprocess
import time
import types

import pytest

from conftest import BACKENDS, REPO, Backend, Proc
from test_http_proxy import (MiB, RSS_BOUND_MIB, Conn, RssWatch, assert_sluice_error, curl, get, route,
                             upstream, wait_until)
from test_realtime import node, sio_client, sio_upstream, ws_client

DEV_CERT = REPO / "tools" / "dev-cert"
TLS_PEERS = REPO / "tests" / "integration" / "node" / "tls_peers.js"
CA_ENV = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "NODE_EXTRA_CA_CERTS")
HELLO = '[[route]]\nname = "hello"\nexact = "/hello"\nrespond = { body = "hello over tls\\n" }\n'
GET_HELLO = b"GET /hello HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
SNI_HOSTS = {"api": "api.example.test", "www": "www.example.test", "wild": "*.wild.test"}


@pytest.fixture(autouse=True)
def no_ca_bundle_from_the_environment(monkeypatch):
    for name in CA_ENV:
        monkeypatch.delenv(name, raising=False)


# ---- certificates ---------------------------------------------------------------

def dev_cert(out, *hosts, name=None):
    """tools/dev-cert into `out`; returns (chain file, key file)."""
    args = ["-o", str(out)] + (["-n", name] if name else []) + list(hosts)
    p = subprocess.run([str(DEV_CERT), *args], capture_output=True, text=True, timeout=60, start_new_session=True)
    assert p.returncode == 0, p.stderr
    return (out / f"{name}.pem", out / f"{name}.key") if name else (out / "cert.pem", out / "key.pem")


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    """One CA (with its intermediate) signing the default certificate (127.0.0.1,
    localhost) and one per SNI_HOSTS entry; `other_ca` is an unrelated CA."""
    main = tmp_path_factory.mktemp("pki")
    other = tmp_path_factory.mktemp("other-pki")
    c = types.SimpleNamespace(ca=main / "ca.pem", other_ca=other / "ca.pem")
    c.cert, c.key = dev_cert(main, "127.0.0.1", "localhost")
    c.sni = {host: dev_cert(main, host, name=name) for name, host in SNI_HOSTS.items()}
    dev_cert(other, "127.0.0.1", name="unrelated")
    return c


# ---- sluice with a TLS listener -------------------------------------------------

def bound_port(sluice, kind):
    return int(re.search(rf"listening on \S+:(\d+) \({kind}\)", sluice.stderr).group(1))


@pytest.fixture
def tls_proxy(sluice_proc, tmp_path, certs):
    """tls_proxy(body, server="") -> a Sluice with a TLS listener (the default
    certificate plus the SNI ones; `https_port`, `https`) and a plain one
    (`http_port`), and the /hello respond route."""
    count = [0]

    def start(body="", server=""):
        count[0] += 1
        sni = "".join(f'[[listener.tls.sni]]\nhost = "{host}"\ncert = "{cert}"\nkey = "{key}"\n'
                      for host, (cert, key) in certs.sni.items())
        s = sluice_proc(config=f'[server]\nworkers = 2\naccess_log = "{tmp_path}/tls-access-{count[0]}.log"\n'
                        f'{server}\n[[listener]]\naddress = "127.0.0.1:0"\n'
                        f'[listener.tls]\ncert = "{certs.cert}"\nkey = "{certs.key}"\n{sni}'
                        '[[listener]]\naddress = "127.0.0.1:0"\n[admin]\naddress = "127.0.0.1:0"\n'
                        + HELLO + body)
        s.https_port, s.http_port = bound_port(s, "https"), bound_port(s, "http")
        s.https = f"https://127.0.0.1:{s.https_port}"
        return s
    return start


@pytest.fixture
def tls_app(backend, tls_proxy):
    """A tls_proxy with a backends.py (`backend`) behind /api, paths unchanged."""
    b = backend()
    s = tls_proxy(upstream(b.port) + route("app", "/api"))
    s.backend = b
    return s


# ---- clients --------------------------------------------------------------------

class TlsConn(Conn):
    """A Conn over TLS that verifies sluice's certificate against `ca` for
    `server_name` (also sent as SNI unless it is an IP address)."""

    def __init__(self, port, ca, server_name="127.0.0.1", timeout=10):
        super().__init__(port, timeout)
        ctx = ssl.create_default_context(cafile=str(ca))
        ctx.set_alpn_protocols(["http/1.1"])
        self.sock = ctx.wrap_socket(self.sock, server_hostname=server_name)


def https_get(port, ca, target, server_name="127.0.0.1"):
    with TlsConn(port, ca, server_name) as c:
        c.send(f"GET {target} HTTP/1.1\r\nHost: {server_name}\r\nConnection: close\r\n\r\n".encode())
        return c.read_response()


def curl_summary(*args, summary="%{http_code}"):
    """Runs curl ARGS; returns (body, the -w `summary` written after it) as text."""
    p = curl(*args, "-w", "\n" + summary)
    body, _, written = p.stdout.decode().rpartition("\n")
    return body, written


def serves_https(port, ca):
    """True if a new TLS connection gets /hello answered (False if refused or reset)."""
    try:
        return https_get(port, ca, "/hello").status == 200
    except OSError:
        return False


def s_client(port, *args, ca=None, request=None, commands=b"", timeout=20):
    """openssl s_client to 127.0.0.1:port, verifying against `ca` if given;
    returns (exit code, stdout + stderr).
    With `request` it is sent and s_client waits for sluice to close; else
    `commands` are s_client's own ("R\\n": renegotiate), then it ends."""
    argv = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *args]
    if ca:
        argv += ["-CAfile", str(ca)]
    if request:
        argv.append("-ign_eof")
    p = subprocess.run(argv, input=request or commands, capture_output=True, timeout=timeout,
                       start_new_session=True)
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace")


def subject(s_client_output):
    return re.search(r"^subject=(.*)$", s_client_output, re.M).group(1)


def session_line(s_client_output):
    """("New" | "Reused", "TLSv1.x") from s_client's summary."""
    return re.search(r"^(New|Reused), (TLSv[\d.]+)", s_client_output, re.M).groups()


def client_hello():
    """The bytes of a real ClientHello, as a client would send them first."""
    out = ssl.MemoryBIO()
    tls = ssl.create_default_context().wrap_bio(ssl.MemoryBIO(), out, server_hostname="sluice.test")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return out.read()


def closed_at(sock, timeout):
    """Reads (discarding, e.g. an alert) until the peer closes; returns when
    (time.monotonic()). A socket timeout fails the test."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    return time.monotonic()


def seconds_to_close(port, data, timeout=6):
    """Connects, sends `data` and returns the seconds until sluice closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        sent = time.monotonic()
        c.sendall(data)
        return closed_at(c, timeout) - sent


def open_fds(sluice):
    """sluice's open file descriptors: {fd: what it points at}."""
    out = {}
    for fd in os.listdir(f"/proc/{sluice.pid}/fd"):
        try:
            out[fd] = os.readlink(f"/proc/{sluice.pid}/fd/{fd}")
        except FileNotFoundError:
            pass
    return out


def tcp_states():
    """{"socket:[inode]": "local remote state"} from /proc/net/tcp (hex, as the kernel writes it)."""
    lines = open("/proc/net/tcp").read().splitlines()[1:]
    return {f"socket:[{f[9]}]": f"{f[1]} {f[2]} {f[3]}" for f in map(str.split, lines)}


def wait_fds_back_to(sluice, baseline, timeout=10):
    """Waits until sluice holds no file descriptor that it did not hold in `baseline`."""
    deadline = time.monotonic() + timeout
    while True:
        extra = {fd: link for fd, link in open_fds(sluice).items() if baseline.get(fd) != link}
        if not extra:
            return
        if time.monotonic() > deadline:
            states = tcp_states()
            raise AssertionError(f"sluice still holds {len(extra)} new fds after {timeout}s: "
                                 + ", ".join(f"{fd} {link} {states.get(link, '')}" for fd, link in extra.items()))
        time.sleep(0.05)


def assert_streamed_while_held(conn, backend, target, key):
    """GETs `target` (a backends.py /hold?id=KEY behind sluice) on `conn`: the
    backend sends "first" and holds the rest until released, so "first"
    arriving means sluice passed it on at once, without buffering."""
    conn.send(f"GET {target} HTTP/1.1\r\nHost: h\r\nAccept: text/event-stream\r\n\r\n".encode())
    assert conn.read_head().status == 200
    conn.read_until_seen(b"first\n")
    assert b"second" not in conn.buf
    backend.release(key)
    conn.read_until_seen(b"0\r\n\r\n")
    assert conn.buf.index(b"first\n") < conn.buf.index(b"second\n")


def receive_count(conn, n):
    """Receives and counts (without keeping) the next n bytes on `conn`."""
    got, conn.buf = len(conn.buf), b""
    while got < n:
        chunk = conn.sock.recv(1 << 20)
        assert chunk, f"closed after {got} bytes"
        got += len(chunk)
    return got


def tls_log_lines(sluice, text):
    return [l for l in sluice.err if l.startswith("sluice: tls:") and text in l]


# ---- HTTPS basics -------------------------------------------------------------------

def test_https_respond_and_proxy_with_the_ca_refused_without(tls_app, certs):
    s, b = tls_app, tls_app.backend
    assert curl_summary("--cacert", str(certs.ca), f"{s.https}/hello", summary="%{http_code} %{http_version}") == \
        ("hello over tls\n", "200 1.1")
    body, code = curl_summary("--cacert", str(certs.ca), f"{s.https}/api/x?y=1")
    assert code == "200", body
    echo = json.loads(body)
    assert echo["path"] == "/api/x?y=1"
    assert ["X-Forwarded-Proto", "https"] in echo["headers"]
    # Without the CA the client cannot verify sluice's certificate: curl's exit 60.
    assert curl(f"{s.https}/hello").returncode == 60
    assert b.stats()["requests"] == 1


def test_alpn_is_http11_even_when_h2_is_offered_first(tls_proxy, certs):
    s = tls_proxy()
    code, out = s_client(s.https_port, "-alpn", "h2,http/1.1", ca=certs.ca)
    assert code == 0 and "ALPN protocol: http/1.1" in out, out
    # h2 only: no ALPN answer, and the handshake still succeeds.
    code, out = s_client(s.https_port, "-alpn", "h2", ca=certs.ca)
    assert code == 0 and "No ALPN negotiated" in out, out


@pytest.mark.parametrize("flag, version", [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")])
def test_tls12_and_tls13_are_served(tls_proxy, certs, flag, version):
    s = tls_proxy()
    code, out = s_client(s.https_port, flag, ca=certs.ca, request=GET_HELLO)
    assert code == 0, out
    assert session_line(out) == ("New", version)
    assert "hello over tls" in out


def test_tls11_is_refused_by_sluice(tls_proxy, certs):
    s = tls_proxy()
    # SECLEVEL=0 lets this client offer TLS 1.1, so the refusal is sluice's alert.
    code, out = s_client(s.https_port, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
    assert code != 0
    assert "alert protocol version" in out, out
    assert https_get(s.https_port, certs.ca, "/hello").status == 200


def test_the_whole_chain_is_served_and_verifies_with_the_root_only(tls_proxy, certs):
    s = tls_proxy()
    code, out = s_client(s.https_port, "-showcerts", ca=certs.ca)
    assert code == 0, out
    assert out.count("-----BEGIN CERTIFICATE-----") == 2
    assert re.findall(r"^ (\d) s:(.*)$", out, re.M) == [("0", "CN = 127.0.0.1"),
                                                        ("1", "CN = sluice dev intermediate CA")]
    assert "Verify return code: 0 (ok)" in out


def test_relative_certificate_paths_resolve_against_the_config_directory(sluice_proc, tmp_path, certs):
    (tmp_path / "tls").mkdir()
    shutil.copy(certs.cert, tmp_path / "tls" / "chain.pem")
    shutil.copy(certs.key, tmp_path / "tls" / "chain.key")
    s = sluice_proc(config='[server]\nworkers = 1\naccess_log = "off"\n'
                    '[[listener]]\naddress = "127.0.0.1:0"\n'
                    '[listener.tls]\ncert = "tls/chain.pem"\nkey = "tls/chain.key"\n' + HELLO)
    assert not (REPO / "tls").exists()          # sluice runs in REPO: only the config's directory has them
    assert https_get(bound_port(s, "https"), certs.ca, "/hello").body == b"hello over tls\n"


def test_check_reports_a_key_that_does_not_match_its_certificate(sluice, write_config, certs):
    api_cert, _ = certs.sni["api.example.test"]
    path = write_config('[[listener]]\naddress = "127.0.0.1:0"\n'
                        f'[listener.tls]\ncert = "{api_cert}"\nkey = "{certs.key}"\n' + HELLO)
    code, out, err = sluice("check", "--config", str(path))
    assert code == 1
    assert re.search(rf"^{re.escape(str(path))}:\d+:\d+: error: .*does not match", out + err, re.M), out + err


# ---- certificates by SNI ------------------------------------------------------------

@pytest.mark.parametrize("name, expected", [
    ("api.example.test", "CN = api.example.test"),
    ("API.Example.TEST", "CN = api.example.test"),      # names compare without case
    ("www.example.test", "CN = www.example.test"),
    ("a.wild.test", "CN = *.wild.test"),                # a wildcard covers one label
    ("a.b.wild.test", "CN = 127.0.0.1"),
    ("wild.test", "CN = 127.0.0.1"),
    ("unknown.example.test", "CN = 127.0.0.1"),         # unknown name: the default
    (None, "CN = 127.0.0.1"),                           # no SNI: the default
])
def test_sni_chooses_the_certificate(tls_proxy, certs, name, expected):
    s = tls_proxy()
    args = ["-servername", name] if name else ["-noservername"]
    code, out = s_client(s.https_port, *args, ca=certs.ca)
    assert code == 0, out
    assert subject(out) == expected
    assert "Verify return code: 0 (ok)" in out


def test_https_request_with_an_sni_certificate(tls_proxy, certs):
    s = tls_proxy()
    r = https_get(s.https_port, certs.ca, "/hello", server_name="api.example.test")
    assert r.status == 200 and r.body == b"hello over tls\n"


# ---- connections and sessions -----------------------------------------------------------

def test_keepalive_over_tls_and_one_pooled_upstream_connection(tls_app, certs):
    s, b = tls_app, tls_app.backend
    with TlsConn(s.https_port, certs.ca) as c:
        assert c.sock.selected_alpn_protocol() == "http/1.1"
        for i in range(3):
            c.send(f"GET /api/{i} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
            r = c.read_response()
            assert r.status == 200 and r.json()["path"] == f"/api/{i}"
        st = b.stats()
    assert (st["requests"], st["connections"]) == (3, 1)
    args = sum((["-o", "/dev/null", f"{s.https}/api/c{i}"] for i in range(5)), [])
    p = curl("--cacert", str(certs.ca), "-w", "%{http_code} %{num_connects}\\n", *args)
    assert p.stdout.decode().split("\n")[:5] == ["200 1"] + ["200 0"] * 4, p
    st = b.stats()
    assert st["requests"] == 8
    assert st["connections"] <= 2, st       # sequential: at most one per worker


def test_pipelined_requests_in_one_record_and_a_request_one_byte_per_record(tls_app, certs):
    with TlsConn(tls_app.https_port, certs.ca) as c:
        c.send(b"".join(f"GET /api/p{i} HTTP/1.1\r\nHost: h\r\n\r\n".encode() for i in range(3)))
        assert [c.read_response().json()["path"] for _ in range(3)] == ["/api/p0", "/api/p1", "/api/p2"]
        for byte in b"POST /api/bytes HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello":
            c.send(bytes([byte]))            # Python's ssl writes one record per call
        echo = c.read_response().json()
        assert (echo["path"], echo["body_len"]) == ("/api/bytes", 5)


def test_request_heads_spanning_several_records(tls_app, certs):
    # max_header_size is 32KiB; a TLS record holds at most 16 KiB.
    for size, status in [(30 << 10, 200), (40 << 10, 431)]:
        with TlsConn(tls_app.https_port, certs.ca) as c:
            c.send(f"GET /api/h HTTP/1.1\r\nHost: h\r\nX-Big: {'v' * size}\r\n\r\n".encode())
            assert c.read_response().status == status
    assert tls_app.backend.stats()["requests"] == 1


def test_renegotiation_is_refused(tls_proxy, certs):
    s = tls_proxy()
    code, out = s_client(s.https_port, "-tls1_2", ca=certs.ca, commands=b"R\n")
    assert "RENEGOTIATING" in out and "no renegotiation" in out, out
    assert serves_https(s.https_port, certs.ca)


def test_access_log_counts_the_plaintext_bytes_of_https_exchanges(tls_proxy, certs):
    s = tls_proxy()
    exchanged = []
    with TlsConn(s.https_port, certs.ca) as c:
        for i, extra in enumerate(["", "Connection: close\r\n"]):
            request = f"GET /hello?n={i} HTTP/1.1\r\nHost: h\r\n{extra}\r\n".encode()
            c.send(request)
            r = c.read_response()
            exchanged.append((len(request), len(r.head) + len(r.body)))
    logged = [s.wait_log(lambda l, i=i: l["target"] == f"/hello?n={i}") for i in range(2)]
    assert [(l["bytes_in"], l["bytes_out"]) for l in logged] == exchanged


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_session_resumption_by_ticket(tls_proxy, certs, tmp_path, version):
    s = tls_proxy()
    session = tmp_path / "session.pem"
    code, out = s_client(s.https_port, version, "-sess_out", str(session), ca=certs.ca, request=GET_HELLO)
    assert code == 0 and session_line(out)[0] == "New", out
    # Six connections, accepted by whichever of the two workers: the ticket is good on each.
    for _ in range(6):
        code, out = s_client(s.https_port, version, "-sess_in", str(session), ca=certs.ca, request=GET_HELLO)
        assert code == 0 and session_line(out)[0] == "Reused", out
        assert "hello over tls" in out


def test_tls_client_over_max_connections_is_closed_at_once(tls_proxy, certs):
    s = tls_proxy(server="max_connections = 2")
    held = [TlsConn(s.https_port, certs.ca) for _ in range(2)]   # handshakes done: both accepted
    try:
        assert seconds_to_close(s.https_port, client_hello()) < 2
        held.pop().close()
        wait_until(lambda: serves_https(s.https_port, certs.ca), what="a TLS client served after a slot freed")
    finally:
        for c in held:
            c.close()


# ---- realtime over TLS ------------------------------------------------------------------

def websocket_route(name, port, extra=""):
    """An upstream NAME at 127.0.0.1:port and a websocket route /NAME to it."""
    return upstream(port, name, extra) + route(name, f"/{name}", up=name, extra='kind = "websocket"')


def test_socketio_over_tls_polling_then_websocket(start_node, tls_proxy, certs, monkeypatch):
    port = start_node("sio-server", "A", 1000, 1000)
    s = tls_proxy(sio_upstream([port]))
    code, result = sio_client(s.https, "polling,websocket", 200)
    assert code != 0 and result["connected"] is False, result      # sluice's CA not trusted yet
    monkeypatch.setenv("NODE_EXTRA_CA_CERTS", str(certs.ca))
    code, result = sio_client(s.https, "polling,websocket", 200)
    assert code == 0, result
    assert result["received"] == 200 and result["in_order"] and not result["errors"]
    assert result["final_transport"] == "websocket"
    s.wait_log(lambda l: "transport=polling" in l["target"] and l["status"] == 200, what="a polling request")
    tunnel = s.wait_log(lambda l: l["upgrade"], what="the websocket tunnel")
    assert tunnel["status"] == 101 and tunnel["route"] == "socketio"


def test_wss_echoes_16mib_text_and_binary_messages(start_node, tls_proxy, certs, monkeypatch):
    port = start_node("ws-echo")
    s = tls_proxy(websocket_route("ws", port))
    monkeypatch.setenv("NODE_EXTRA_CA_CERTS", str(certs.ca))
    code, result = node("ws_cases.js", f"wss://127.0.0.1:{s.https_port}/ws", "sizes")
    assert code == 0, result
    # Each message is compared byte for byte with what was sent (Buffer.compare).
    assert [(r["size"], r["binary"]) for r in result["results"]] == [
        (size, binary) for size in (1, 64 << 10, 16 << 20) for binary in (False, True)]
    assert all(r["same"] for r in result["results"]), result


def test_sse_over_tls_delivers_each_event_as_it_is_sent(backend, tls_proxy, certs):
    b = backend()
    s = tls_proxy(upstream(b.port) + route("events", "/events", extra='kind = "sse"\nstrip_prefix = true'))
    with TlsConn(s.https_port, certs.ca) as c:
        assert_streamed_while_held(c, b, "/events/hold?id=ev", "ev")


# ---- upstream TLS ---------------------------------------------------------------------------

def listening_port(peer):
    """The port a backends.py or Node peer printed ("listening PORT"); stops it if it never does."""
    try:
        return int(peer.wait_for(r"listening (\d+)").group(1))
    except BaseException:
        peer.stop()
        raise


class TlsBackend(Backend):
    """backends.py serving HTTPS with the given certificate chain; its
    control requests (stats, release) go over TLS too."""

    def __init__(self, cert, key, ca):
        Proc.__init__(self, ["/usr/bin/python3", str(BACKENDS), "0", "--tls-cert", str(cert),
                             "--tls-key", str(key)], "tls backend")
        self.ca = ca
        self.port = listening_port(self)
        self.addr = f"127.0.0.1:{self.port}"

    def control(self, target, timeout=10):
        r = https_get(self.port, self.ca, target)
        assert r.status == 200, r
        return r.body


UPSTREAM_TLS = {   # upstream name -> its tls table; every one points at the same TLS backend
    "good": 'tls = {{ ca = "{ca}" }}',
    "named": 'tls = {{ ca = "{ca}", sni = "localhost" }}',
    "noverify": "tls = {{ verify = false }}",
    "wrongca": 'tls = {{ ca = "{other_ca}" }}',
    "wrongname": 'tls = {{ ca = "{ca}", sni = "wrong.name" }}',
}


@pytest.fixture
def tls_upstreams(procs, tls_proxy, certs):
    """A TLS backend (certificate for 127.0.0.1 and localhost) behind one
    upstream per UPSTREAM_TLS entry, each reached at /NAME/..."""
    b = TlsBackend(certs.cert, certs.key, certs.ca)
    procs.append(b)
    body = "".join(upstream(b.port, name, tls.format(ca=certs.ca, other_ca=certs.other_ca)) +
                   route(name, f"/{name}", up=name, extra="strip_prefix = true")
                   for name, tls in UPSTREAM_TLS.items())
    s = tls_proxy(body)
    s.backend = b
    return s


@pytest.mark.parametrize("name", ["good", "named", "noverify"])
def test_upstream_over_tls(tls_upstreams, certs, name):
    s = tls_upstreams
    with TlsConn(s.https_port, certs.ca) as c:
        for i in range(3):
            c.send(f"GET /{name}/x{i}?q=1 HTTP/1.1\r\nHost: h\r\n\r\n".encode())
            r = c.read_response()
            assert r.status == 200, r
            assert r.json()["path"] == f"/x{i}?q=1"
    st = s.backend.stats()
    assert (st["requests"], st["connections"]) == (3, 1)   # the TLS connection is pooled


@pytest.mark.parametrize("name, cause", [
    ("wrongca", "certificate verify failed (unable to get local issuer certificate)"),
    ("wrongname", "certificate verify failed (hostname mismatch)"),
])
def test_upstream_tls_failure_is_502_upstream_tls(tls_upstreams, name, cause):
    s = tls_upstreams
    r = get(s.http_port, f"/{name}/x")
    assert_sluice_error(r, 502, "upstream_tls")
    body = r.body.decode()
    assert f"'{name}'" in body and s.backend.addr in body and cause in body, body
    assert s.backend.stats()["requests"] == 0
    line = s.wait_log(lambda l: l["route"] == name)
    assert (line["status"], line["error"], line["server"]) == (502, "upstream_tls", s.backend.addr)


def test_upstream_tls_streams_and_frames_responses(tls_upstreams, certs):
    s = tls_upstreams
    with TlsConn(s.https_port, certs.ca) as c:
        assert_streamed_while_held(c, s.backend, "/good/hold?id=up", "up")
    # A body ended by the upstream's close (close_notify, then FIN) arrives whole.
    assert https_get(s.https_port, certs.ca, "/good/until-close").body == b"body until close"
    # A body cut short (1000 promised, 10 sent): the client's connection is closed, not completed.
    with TlsConn(s.https_port, certs.ca) as c:
        c.send(b"GET /good/close-mid HTTP/1.1\r\nHost: h\r\n\r\n")
        r = c.read_head()
        assert (r.status, r.get("content-length")) == (200, "1000")
        assert c.read_until_close() == b"0123456789"


def test_big_bodies_through_two_tls_legs_stream_in_bounded_memory(tls_upstreams, certs, tmp_path):
    s = tls_upstreams
    big = tmp_path / "upload.bin"
    big.write_bytes(random.Random(1).randbytes(64 * MiB))
    sha = hashlib.sha256(big.read_bytes()).hexdigest()
    assert https_get(s.https_port, certs.ca, "/good/warmup").status == 200
    with RssWatch(s) as rss:
        # 100 MiB to a client that stops reading for a while: sluice must stop reading the upstream.
        with TlsConn(s.https_port, certs.ca, timeout=60) as c:
            c.send(b"GET /good/big?mb=100 HTTP/1.1\r\nHost: h\r\n\r\n")
            time.sleep(1.5)   # stimulus: a slow reader
            r = c.read_head()
            assert (r.status, r.get("content-length")) == (200, str(100 * MiB))
            assert receive_count(c, 100 * MiB) == 100 * MiB
        # 64 MiB up to a backend that waits before it reads: sluice must stop reading the client.
        p = curl("--cacert", str(certs.ca), "-T", str(big), "-X", "POST", "-H", "Expect:",
                 "-H", "X-Backend-Pause-Ms: 1500", f"{s.https}/good/upload", timeout=110)
        info = json.loads(p.stdout)
        assert (info["body_len"], info["body_sha256"]) == (64 * MiB, sha)
    assert rss.growth_mib < RSS_BOUND_MIB, f"RSS grew {rss.growth_mib:.1f} MiB ({rss.base} -> {rss.peak} KiB)"


def test_wss_tunnel_to_a_tls_upstream_with_and_without_sni(procs, tls_proxy, certs, monkeypatch):
    peer = Proc(["node", str(TLS_PEERS), "wss-echo", "0", str(certs.cert), str(certs.key)], "node wss-echo")
    procs.append(peer)
    port = listening_port(peer)
    s = tls_proxy(websocket_route("byip", port, f'tls = {{ ca = "{certs.ca}" }}') +
                  websocket_route("byname", port, f'tls = {{ ca = "{certs.ca}", sni = "localhost" }}'))
    monkeypatch.setenv("NODE_EXTRA_CA_CERTS", str(certs.ca))
    # SNI is sent for a name, never for an IP address.
    for name, sni in [("byip", None), ("byname", "localhost")]:
        r = ws_client(f"wss://127.0.0.1:{s.https_port}/{name}/room?x=1", send=["one", "two"], expect=2, binary_mb=4)
        assert r["opened"] and not r["errors"], r
        assert json.loads(r["messages"][0]) == {"hello": True, "url": f"/{name}/room?x=1", "sni": sni}
        assert r["messages"][1:] == ["one", "two"] and r["binary_ok"] is True
        assert r["close_code"] == 1000


def test_check_warns_about_verify_false(tls_upstreams, sluice):
    code, out, err = sluice("check", "--config", str(tls_upstreams.config_path))
    assert code == 0, out + err
    warnings = [l for l in (out + err).splitlines() if ": warning: " in l]
    assert len(warnings) == 1 and "upstream 'noverify'" in warnings[0] and "verify = false" in warnings[0], warnings
    line = int(warnings[0].split(":")[1])
    assert "verify = false" in tls_upstreams.config_path.read_text().splitlines()[line - 1]


def test_upstream_handshake_counts_against_connect_timeout(tls_proxy, certs):
    with socket.create_server(("127.0.0.1", 0)) as silent:     # accepts TCP, never answers a ClientHello
        port = silent.getsockname()[1]
        s = tls_proxy(upstream(port, "mute", f'connect_timeout = "1s"\ntls = {{ ca = "{certs.ca}" }}') +
                      route("mute", "/", up="mute"))
        start = time.monotonic()
        r = get(s.http_port, "/x")
        assert_sluice_error(r, 504, "connect_timeout")
        assert 0.8 < time.monotonic() - start < 5      # 1s, or 2s with the one retry of a connect failure
        assert f"127.0.0.1:{port}" in r.body.decode() and "TLS handshake" in r.body.decode(), r.body


# ---- what is not TLS on a TLS port ----------------------------------------------------------

def test_plain_http_to_the_tls_port_is_400_and_closed(tls_proxy, certs):
    s = tls_proxy()
    with Conn(s.https_port) as c:
        c.send(b"GET /hello HTTP/1.1\r\nHost: h\r\n\r\n")
        r = c.read_response()
        assert_sluice_error(r, 400, "bad_request")
        assert "plain HTTP" in r.body.decode()
        assert r.get("content-type").startswith("text/plain")
        assert (r.get("connection") or "").lower() == "close"
        assert c.is_closed()
    assert https_get(s.https_port, certs.ca, "/hello").body == b"hello over tls\n"
    s.wait_for(r"^sluice: tls: plain HTTP from 127\.0\.0\.1", stream="err")


def test_stalled_handshakes_are_closed_after_header_timeout_without_leaking(tls_proxy, certs):
    s = tls_proxy(server='header_timeout = "1s"')
    baseline = open_fds(s)
    hello = client_hello()
    opened = time.monotonic()
    stalled = [socket.create_connection(("127.0.0.1", s.https_port), timeout=10) for _ in range(10)]
    try:
        for c in stalled[:5]:
            c.sendall(hello[: len(hello) // 2])     # half a ClientHello; the others send nothing
        wait_until(lambda: len(open_fds(s)) >= len(baseline) + 10, what="sluice holding the stalled connections")
        waited = [closed_at(c, 6) - opened for c in stalled]
    finally:
        for c in stalled:
            c.close()
    assert all(0.5 < w < 4 for w in waited), waited
    assert https_get(s.https_port, certs.ca, "/hello").status == 200
    lines = tls_log_lines(s, "no complete handshake from 127.0.0.1 within 1s")
    assert 1 <= len(lines) <= 4, s.stderr      # ten timeouts, at most one line per second per worker
    for _ in range(5):                          # clients that give up mid-handshake themselves
        with socket.create_connection(("127.0.0.1", s.https_port), timeout=10) as c:
            c.sendall(hello[: len(hello) // 2])
    wait_fds_back_to(s, baseline)


def test_incomplete_head_after_the_handshake_is_408(tls_proxy, certs):
    s = tls_proxy(server='header_timeout = "1s"')
    with TlsConn(s.https_port, certs.ca) as c:
        c.send(b"GET /hello HTTP/1.1\r\nHost: h\r\n")
        assert_sluice_error(c.read_response(), 408, "header_timeout")
        assert c.is_closed()


HELLO_RECORD = client_hello()


@pytest.mark.parametrize("garbage", [
    bytes([0x01]) + random.Random(7).randbytes(4095),                       # not a TLS record
    b"\x16\x03\x01\x02\x00" + random.Random(8).randbytes(512),              # a handshake record of noise
    HELLO_RECORD[:5] + bytes(b ^ 0x5A for b in HELLO_RECORD[5:]),           # a ClientHello, scrambled
], ids=["random", "noise-record", "scrambled-hello"])
def test_garbage_instead_of_a_client_hello_is_closed_at_once(tls_proxy, certs, garbage):
    s = tls_proxy(server='header_timeout = "5s"')
    baseline = open_fds(s)
    assert seconds_to_close(s.https_port, garbage) < 2     # a failed handshake does not wait for the timer
    assert s.alive()
    assert https_get(s.https_port, certs.ca, "/hello").status == 200
    s.wait_for(r"^sluice: tls: handshake with 127\.0\.0\.1 failed: ", stream="err")
    wait_fds_back_to(s, baseline)


# ---- redirect to HTTPS ----------------------------------------------------------------------

def test_scheme_redirect_to_https_and_following_it(backend, tls_proxy, certs):
    b = backend()
    # Routes belong to no listener: on TLS the scheme redirects are skipped and "app" answers.
    s = tls_proxy(upstream(b.port) + route("app", "/") +
                  '[[route]]\nname = "to-https"\nhost = "localhost"\nprefix = "/"\n'
                  'redirect = { scheme = "https", status = 308 }\n'
                  '[[route]]\nname = "kept-port"\nhost = "localhost"\nprefix = "/kept"\n'
                  'redirect = { scheme = "https", status = 308, port = 8443 }\n')
    plain = f"http://localhost:{s.http_port}"
    for target, location in [("/docs/x?y=1", "https://localhost/docs/x?y=1"),
                             ("/kept/a?b=c", "https://localhost:8443/kept/a?b=c")]:
        p = curl("-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", plain + target)
        assert p.stdout.decode() == f"308 {location}", p
    # Followed to the TLS listener (port 443 of the Location is sluice's TLS port here).
    to_tls_port = f"localhost:443:127.0.0.1:{s.https_port}"
    body, summary = curl_summary("-L", "--cacert", str(certs.ca), "--connect-to", to_tls_port, plain + "/docs/x?y=1",
                                 summary="%{http_code} %{num_redirects} %{url_effective}")
    assert summary == "200 1 https://localhost/docs/x?y=1", body
    echo = json.loads(body)
    assert echo["path"] == "/docs/x?y=1"
    assert ["X-Forwarded-Proto", "https"] in echo["headers"] and ["Host", "localhost"] in echo["headers"]
