"""Fault injection (issue 8): upstreams that break at every point of a
response, clients that reset at every point of an exchange, slow readers,
file-descriptor exhaustion, workers that must not wait on each other,
slowloris, and a short run of tools/soak.

Besides its own point, every test checks that sluice is still running (the
`procs` fixture fails a test whose sluice died) and still serves; those that
abort exchanges also check that nothing leaked: sluice's sockets and other
descriptors, counted from /proc, back to where they were (idle upstream
pools allowed for).

Upstream faults come from faulty_upstream.py (raw asyncio, every byte and
every close chosen), normal traffic from backends.py. Waits are deadline
polls on observable state; the few sleeps are stimuli (a client that stalls)
whose outcome does not depend on their length."""

import asyncio
import collections
import json
import os
import random
import re
import resource
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import REPO, SLUICE, Proc
from test_http_proxy import (Conn, RssWatch, assert_sluice_error, get, route, upstream,
                             wait_until)

MiB = 1 << 20
FAULTY = REPO / "tests" / "integration" / "faulty_upstream.py"
WS_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
HANDSHAKE = ("Upgrade: websocket\r\nConnection: Upgrade\r\n"
             f"Sec-WebSocket-Key: {WS_KEY}\r\nSec-WebSocket-Version: 13\r\n")


# ---- the misbehaving upstream ------------------------------------------------------

class Faulty(Proc):
    """faulty_upstream.py in its own process (see its docstring)."""

    def __init__(self):
        super().__init__(["/usr/bin/python3", str(FAULTY), "0"], "faulty upstream")
        try:
            self.port = int(self.wait_for(r"listening (\d+)").group(1))
        except BaseException:
            self.stop()
            raise
        self.addr = f"127.0.0.1:{self.port}"

    def stats(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as c:
            c.settimeout(10)
            c.sendall(b"GET /_ctl/stats HTTP/1.1\r\nHost: f\r\n\r\n")
            data = b""
            while True:
                chunk = c.recv(65536)
                if not chunk:
                    break
                data += chunk
        return json.loads(data.partition(b"\r\n\r\n")[2])

    def events(self, prefix=""):
        return [e for e in self.stats()["events"] if e.startswith(prefix)]

    def wait_event(self, prefix, timeout=10):
        """The first event starting with `prefix`, waiting for it."""
        return wait_until(lambda: next(iter(self.events(prefix)), None), timeout=timeout,
                          what=lambda: f"faulty upstream event {prefix!r} (events: {self.events()[-10:]})")


@pytest.fixture
def faulty(procs):
    def start():
        f = Faulty()
        procs.append(f)
        return f
    return start


def admin_port(s):
    return int(s.wait_for(r"sluice: listening on \S+:(\d+) \(admin\)", stream="err").group(1))


def metric_total(s, name, **labels):
    """Sum of the samples of `name` whose labels include `labels`."""
    port = admin_port(s)
    with Conn(port) as c:
        c.send(b"GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")
        text = c.read_response().body.decode()
    total = 0.0
    for line in text.splitlines():
        m = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if all(have.get(k) == str(v) for k, v in labels.items()):
            total += float(m.group(3))
    return total


@pytest.fixture
def faulty_proxy(faulty, sluice_proc):
    """A faulty upstream behind sluice: every path on an http route, /ws on
    a websocket route."""
    f = faulty()
    s = sluice_proc(upstream(f.port) + route("all", "/") + route("ws", "/ws", extra='kind = "websocket"'))
    s.faulty = f
    return s


# ---- sockets and descriptors of sluice --------------------------------------------------

def socket_inodes(s):
    """The inodes of sluice's sockets, and how many other descriptors it has."""
    inodes, others = set(), 0
    for fd in os.listdir(f"/proc/{s.pid}/fd"):
        try:
            link = os.readlink(f"/proc/{s.pid}/fd/{fd}")
        except FileNotFoundError:
            continue
        if link.startswith("socket:["):
            inodes.add(int(link[8:-1]))
        else:
            others += 1
    return inodes, others


def sluice_fds(s, listen_ports=None):
    """Sluice's descriptors by kind: listen, downstream (a connection to one
    of sluice's own ports), upstream (any other TCP connection), other
    (files, pipes, eventfds, epoll, non-TCP sockets)."""
    ports = set(listen_ports or s.ports) | {admin_port(s)}
    counts = collections.Counter(listen=0, downstream=0, upstream=0, other=0)
    inodes, counts["other"] = socket_inodes(s)
    seen = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                parts = line.split()
                inode = int(parts[9])
                if inode not in inodes or inode in seen:
                    continue
                seen.add(inode)
                if parts[3] == "0A":
                    counts["listen"] += 1
                elif int(parts[1].split(":")[1], 16) in ports:
                    counts["downstream"] += 1
                else:
                    counts["upstream"] += 1
    counts["other"] += len(inodes - seen)
    return counts


def accept_queue(s):
    """Connections waiting in the accept queues of sluice's listening sockets
    (rx_queue of a LISTEN socket in /proc/net/tcp)."""
    inodes, _ = socket_inodes(s)
    waiting = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                parts = line.split()
                if parts[3] == "0A" and int(parts[9]) in inodes:
                    waiting += int(parts[4].split(":")[1], 16)
    return waiting


def assert_no_leak(s, base, upstream_slack=4, timeout=15):
    """Waits until sluice holds no client connection, no more descriptors of
    other kinds than at `base`, and at most `upstream_slack` upstream
    connections more (idle pools)."""
    def settled():
        now = sluice_fds(s)
        ok = (now["downstream"] == 0 and now["other"] <= base["other"] and
              now["listen"] == base["listen"] and now["upstream"] <= base["upstream"] + upstream_slack)
        return now if ok else None
    wait_until(settled, timeout=timeout,
               what=lambda: f"sluice's descriptors back to {dict(base)} (now {dict(sluice_fds(s))})")


def cpu_seconds(pid):
    """User + system CPU time of a process, all threads."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu(pid):
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        out[tid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


# ---- raw WebSocket frames -------------------------------------------------------------------

def ws_frames(buf):
    """(complete frames as (opcode, payload), leftover bytes)."""
    out = []
    while len(buf) >= 2:
        n, i = buf[1] & 0x7F, 2
        if n == 126:
            n, i = struct.unpack("!H", buf[2:4])[0], 4
        elif n == 127:
            n, i = struct.unpack("!Q", buf[2:10])[0], 10
        if buf[1] & 0x80:
            i += 4
        if len(buf) < i + n:
            break
        out.append((buf[0] & 0x0F, bytes(buf[i:i + n])))
        buf = buf[i + n:]
    return out, buf


def client_frame(payload, opcode=1):
    """A masked client frame (RFC 6455 5.3)."""
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def ws_open(port, target, timeout=10):
    """A Conn after a 101 to `target`; c.buf holds what followed the head."""
    c = Conn(port, timeout)
    c.send(f"GET {target} HTTP/1.1\r\nHost: h\r\n{HANDSHAKE}\r\n".encode())
    r = c.read_head()
    assert r.status == 101, r
    return c


def close_code(payload):
    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None


# ---- upstream faults ---------------------------------------------------------------------

@pytest.mark.parametrize("how", ["fin", "rst"])
def test_upstream_closing_mid_head_is_502_and_the_client_connection_goes_on(faulty_proxy, how):
    s, f = faulty_proxy, faulty_proxy.faulty
    q = "?rst=1" if how == "rst" else ""
    with Conn(s.port) as c:
        c.send(f"GET /head-cut{q} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
        r = c.read_response()
        assert_sluice_error(r, 502, "upstream_reset")
        assert f.addr in r.body.decode()
        # A body-less request: the client connection stays usable.
        c.send(b"GET /after HTTP/1.1\r\nHost: h\r\n\r\n")
        assert c.read_response().json()["path"] == "/after"
    # A request with a body is never repeated: exactly one attempt reaches the upstream.
    before = f.stats()["requests"]
    r = get(s.port, f"/head-cut{q}", method="POST", body=b"payload")
    assert_sluice_error(r, 502, "upstream_reset")
    assert f.stats()["requests"] == before + 1
    line = s.wait_log(lambda l: l["method"] == "POST" and l["target"].startswith("/head-cut"))
    assert line["status"] == 502 and line["error"] == "upstream_reset" and line["server"] == f.addr


@pytest.mark.parametrize("method", ["GET", "DELETE"])
@pytest.mark.parametrize("pooled", [False, True])
def test_a_request_the_upstream_began_answering_is_not_sent_again(faulty_proxy, method, pooled):
    """README: "A reset before any response byte (a pooled connection the
    server closed, or a server that died) is retried once for body-less
    idempotent requests." Here the server got the request and began its
    answer (half a head) before it died: the request may have had its
    effect, and an upstream that crashes on a request would get it twice.
    One attempt, then 502."""
    s, f = faulty_proxy, faulty_proxy.faulty
    with Conn(s.port) as c:
        if pooled:
            c.send(b"GET /first HTTP/1.1\r\nHost: h\r\n\r\n")
            assert c.read_response().json()["n"] == 1
        before = f.stats()["requests"]
        c.send(f"{method} /head-cut HTTP/1.1\r\nHost: h\r\n\r\n".encode())
        assert_sluice_error(c.read_response(), 502, "upstream_reset")
    attempts = f.stats()["requests"] - before
    assert attempts == 1, f"{method} /head-cut reached the upstream {attempts} times"


@pytest.mark.parametrize("how", ["fin", "rst"])
def test_upstream_closing_mid_body_cuts_the_client_short(faulty_proxy, how):
    """Content-Length promised 100,000 bytes, 5,000 came: the client gets
    those and then a closed connection (its only signal that the body is
    short), never a hang and never padding."""
    s = faulty_proxy
    q = "&rst=1" if how == "rst" else ""
    with Conn(s.port) as c:
        c.send(f"GET /body-cut?cl=100000&send=5000{q} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
        r = c.read_head()
        assert r.status == 200 and r.get("content-length") == "100000"
        try:
            rest = c.read_until_close()
        except ConnectionResetError:
            rest = c.buf
        assert len(rest) <= 5000 and set(rest) <= {ord("b")}
        if how == "fin":
            assert len(rest) == 5000
    assert get(s.port, "/after").json()["path"] == "/after"


@pytest.mark.parametrize("how", ["fin", "rst"])
def test_upstream_closing_mid_chunk_never_looks_complete(faulty_proxy, how):
    """The upstream dies inside a chunk: the client must not receive the
    last-chunk marker, which would make a truncated body look whole."""
    s = faulty_proxy
    q = "?rst=1" if how == "rst" else ""
    with Conn(s.port) as c:
        c.send(f"GET /chunk-cut{q} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
        r = c.read_head()
        assert r.status == 200 and (r.get("transfer-encoding") or "").lower() == "chunked"
        try:
            rest = c.read_until_close()
        except ConnectionResetError:
            rest = c.buf
    assert b"first" in rest or how == "rst"
    assert not rest.endswith(b"0\r\n\r\n"), rest
    assert b"\r\n0\r\n" not in b"\r\n" + rest, rest
    assert get(s.port, "/after").json()["path"] == "/after"


@pytest.mark.parametrize("then", ["close", "rst"])
def test_upstream_dying_mid_tunnel_sends_1011_to_the_client(faulty_proxy, then):
    s = faulty_proxy
    with ws_open(s.port, f"/ws?then={then}") as c:
        data = c.read_until_close()
    frames, rest = ws_frames(data)
    assert frames[0] == (1, b"hello")
    assert [(op, close_code(p)) for op, p in frames[1:]] == [(8, 1011)], frames
    assert rest == b""
    wait_until(lambda: metric_total(s, "sluice_tunnel_closes_total", route="ws", code="1011") >= 1,
               what="the tunnel close counted as 1011")
    assert get(s.port, "/after").json()["path"] == "/after"


def test_upstream_dying_mid_frame_closes_the_client_without_a_forged_frame(faulty_proxy):
    """Half a frame was relayed: a close frame of sluice's own now would be
    read as payload, so the client sees the TCP close instead."""
    s = faulty_proxy
    with ws_open(s.port, "/ws?then=midframe") as c:
        data = c.read_until_close()
    frames, rest = ws_frames(data)
    assert frames == [(1, b"hello")]
    assert 0 < len(rest) <= 300 and set(rest[4:]) <= {ord("x")}
    assert get(s.port, "/after").json()["path"] == "/after"


@pytest.mark.parametrize("kind", ["binary", "status", "version", "huge-status", "header", "nul"])
def test_upstream_garbage_is_502_bad_response(faulty_proxy, kind):
    s, f = faulty_proxy, faulty_proxy.faulty
    with Conn(s.port) as c:
        c.send(f"GET /garbage?kind={kind} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
        r = c.read_response()
        assert_sluice_error(r, 502, "upstream_bad_response")
        assert f.addr in r.body.decode()
        c.send(b"GET /after HTTP/1.1\r\nHost: h\r\n\r\n")
        after = c.read_response().json()
    assert after["path"] == "/after" and after["n"] == 1   # a fresh upstream connection


def test_a_storm_of_interim_responses_is_absorbed(faulty_proxy):
    """Hundreds of 100 and 103 responses before the final one: none reaches
    the client, the final one does, and the upstream connection's framing is
    intact afterwards (it is reused for the next request)."""
    s = faulty_proxy
    with RssWatch(s) as rss:
        with Conn(s.port) as c:
            for n in (500, 5000):
                c.send(f"GET /interim?n={n} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
                r = c.read_response(interim=True)
                assert r.status == 200 and r.body == b"final\n", r
            c.send(b"GET /after HTTP/1.1\r\nHost: h\r\n\r\n")
            after = c.read_response(interim=True).json()
            assert after["path"] == "/after" and after["n"] == 3     # same upstream connection
            # With Expect: exactly one 100 Continue, sluice's own.
            c.send(b"POST /interim?n=300 HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
            assert c.read_response(interim=True).status == 100
            c.send(b"body")
            r = c.read_response(interim=True)
            assert r.status == 200 and r.body == b"final\n", r
    assert rss.growth_mib < 16, f"RSS grew {rss.growth_mib:.1f} MiB"


@pytest.mark.parametrize("pipelined", [False, True])
def test_response_longer_than_its_content_length_goes_no_further(faulty_proxy, pipelined):
    """The upstream sends 5 bytes of body and then a whole second response.
    The extra bytes reach nobody and the connection is never pooled."""
    s, f = faulty_proxy, faulty_proxy.faulty
    with Conn(s.port) as c:
        first = b"GET /overlong HTTP/1.1\r\nHost: h\r\n\r\n"
        nxt = b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n"
        c.send(first + nxt if pipelined else first)
        r = c.read_response()
        assert r.status == 200 and r.body == b"hello"
        if not pipelined:
            c.send(nxt)
        r = c.read_response()
        assert b"SMUGGLED" not in r.body and r.json()["path"] == "/next"
        assert r.json()["n"] == 1, "the overlong response's connection was reused"
        assert b"SMUGGLED" not in c.buf
    conn = f.wait_event("overlong-sent").split()[1]
    f.wait_event(f"peer-closed {conn}")   # sluice closed it


def test_extra_bytes_arriving_on_an_idle_pooled_connection_close_it(faulty_proxy):
    s, f = faulty_proxy, faulty_proxy.faulty
    with Conn(s.port) as c:
        c.send(b"GET /overlong?gap_ms=200 HTTP/1.1\r\nHost: h\r\n\r\n")
        assert c.read_response().body == b"hello"
        conn = f.wait_event("overlong-sent").split()[1]
        f.wait_event(f"peer-closed {conn}")   # noticed while idle in the pool, and closed
        c.send(b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n")
        r = c.read_response()
        assert r.json()["path"] == "/next" and r.json()["n"] == 1
        assert b"SMUGGLED" not in r.body + c.buf


@pytest.mark.parametrize("after", [False, True])
def test_bad_chunk_size_ends_the_client_connection(faulty_proxy, after):
    s = faulty_proxy
    with Conn(s.port) as c:
        c.send(f"GET /chunk-bad{'?after=1' if after else ''} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
        r = c.read_head()
        assert r.status == 200
        rest = c.read_until_close()
    assert b"hello" not in rest and not rest.endswith(b"0\r\n\r\n")
    assert (b"first" in rest) == after
    assert get(s.port, "/after").json()["path"] == "/after"


@pytest.mark.parametrize("target, code", [("/body-cut?cl=100000&send=5000", "upstream_reset"),
                                          ("/chunk-cut", "upstream_reset"),
                                          ("/chunk-bad?after=1", "upstream_bad_response")])
def test_a_response_cut_after_its_head_is_logged_as_an_error(faulty_proxy, target, code):
    """The client only sees a closed connection; the access log and the
    metrics must still say that the response was cut, and why. A clean
    `"status": 200, "error": null` line would hide the failure from whoever
    reads the logs."""
    s = faulty_proxy
    with Conn(s.port) as c:
        c.send(f"GET {target} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
        assert c.read_head().status == 200
        c.read_until_close()
    wait_until(lambda: metric_total(s, "sluice_upstream_errors_total", error=code) >= 1,
               what=f"sluice_upstream_errors_total{{error={code!r}}} counted")
    line = s.wait_log(lambda l: l["target"] == target)
    assert line["error"] == code, line


def test_endless_response_head_is_502_in_bounded_memory(faulty_proxy):
    """An upstream whose response head never ends (64 MiB of header lines):
    sluice limits what it keeps of a head, answers 502 and drops the
    connection, instead of buffering the lot."""
    s, f = faulty_proxy, faulty_proxy.faulty
    get(s.port, "/warm")
    with RssWatch(s) as rss:
        r = get(s.port, "/endless-head?mb=64", timeout=60)
    sent = int(f.wait_event("endless-head-stopped").split()[2])
    print(f"RSS {rss.base} -> {rss.peak} KiB; the upstream got {sent} bytes of head in")
    assert r.status == 502, r
    assert rss.growth_mib < 16, (f"RSS grew {rss.growth_mib:.1f} MiB on an endless response head "
                                 f"({sent >> 20} MiB of it read)")


# ---- clients that reset ------------------------------------------------------------------

@pytest.fixture
def mixed_proxy(backend, faulty, sluice_proc):
    """backends.py on every path but /ws, which is a WebSocket route to the
    faulty upstream's echo."""
    b, f = backend(), faulty()
    s = sluice_proc(upstream(b.port) + upstream(f.port, name="ws") + route("all", "/") +
                    route("ws", "/ws", up="ws", extra='kind = "websocket"'))
    s.backend, s.faulty = b, f
    return s


def reset_mid_head(s, i):
    c = Conn(s.port)
    c.send(b"GET /api/partial HTTP/1.1\r\nHost: h\r\nX-Partial: abc")
    time.sleep(0.05)   # stimulus: sluice reads the partial head
    c.reset()


def reset_mid_upload(s, i):
    c = Conn(s.port)
    c.send(f"POST /api/upload HTTP/1.1\r\nHost: h\r\nX-Progress-Id: up{i}\r\n"
           f"Content-Length: {10 * MiB}\r\n\r\n".encode() + b"u" * 100000)
    s.backend.wait_stats(lambda st: st["progress"].get(f"up{i}", 0) > 0, what="upload under way")
    c.reset()


def reset_waiting_for_response(s, i):
    before = s.backend.stats()["requests"]
    c = Conn(s.port)
    c.send(f"GET /slow?ms=1500&i={i} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
    s.backend.wait_stats(lambda st: st["requests"] > before, what="request at the backend")
    c.reset()


def reset_mid_download(s, i):
    c = Conn(s.port)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    c.send(b"GET /big?mb=50 HTTP/1.1\r\nHost: h\r\n\r\n")
    assert c.read_head().status == 200
    c._fill()
    c.reset()


def reset_mid_tunnel(s, i):
    c = ws_open(s.port, "/ws?then=echo")
    c.send(client_frame(f"message {i}".encode()))
    while len(ws_frames(c.buf)[0]) < 2:   # hello, then the echo
        c._fill()
    c.reset()


def reset_mid_tunnel_frame(s, i):
    c = ws_open(s.port, "/ws?then=echo")
    c.send(client_frame(b"m" * 100000)[:5000])   # half a frame
    time.sleep(0.05)   # stimulus: sluice relays the half frame
    c.reset()


RESET_STAGES = {
    "mid-head": reset_mid_head,
    "mid-upload": reset_mid_upload,
    "waiting-for-response": reset_waiting_for_response,
    "mid-download": reset_mid_download,
    "mid-tunnel": reset_mid_tunnel,
    "mid-tunnel-frame": reset_mid_tunnel_frame,
}


@pytest.mark.parametrize("stage", list(RESET_STAGES))
def test_client_reset_at_every_stage(mixed_proxy, stage):
    """Ten clients reset (SO_LINGER 0) at the same point of their exchange:
    sluice keeps serving, closes the upstream side of each (an aborted
    exchange is never pooled), and gets back to the descriptors it had."""
    s, b, f = mixed_proxy, mixed_proxy.backend, mixed_proxy.faulty
    assert get(s.port, "/api/warm").status == 200
    base = sluice_fds(s)
    for i in range(10):
        RESET_STAGES[stage](s, i)
        assert get(s.port, f"/api/between{i}").status == 200
    assert s.alive()
    # The upstream side of every aborted exchange is closed.
    b.wait_stats(lambda st: st["open"] <= 2, timeout=15, what="aborted upstream connections closed")
    if stage.startswith("mid-tunnel"):
        wait_until(lambda: f.stats()["open"] == 0, what="tunnel upstream connections closed")
        if stage == "mid-tunnel":
            # At a frame boundary the upstream hears 1001 (going away) first.
            wait_until(lambda: len(f.events("ws-close-frame")) == 10,
                       what=lambda: f"10 close frames at the upstream: {f.events('ws')[-12:]}")
            assert all(e.endswith(" 1001") for e in f.events("ws-close-frame"))
    if stage == "waiting-for-response":
        line = s.wait_log(lambda l: l["target"].startswith("/slow"))
        assert line["status"] == 499
    assert_no_leak(s, base)
    assert get(s.port, "/api/after").json()["path"] == "/api/after"


# ---- a slow reader ---------------------------------------------------------------------------

def test_slow_reader_of_200_mib_keeps_rss_bounded(backend, sluice_proc):
    """Two clients (Content-Length and chunked) read 200 MiB each, first
    slowly (16 KiB every 20 ms for 6 s) while the upstream could send at
    full speed, then at full speed. Backpressure must hold the upstream back:
    sluice's RSS grows by less than 30 MiB."""
    b = backend()
    s = sluice_proc(upstream(b.port) + route("all", "/"))
    get(s.port, "/warm")
    total = 200 * MiB
    results = {}

    def reader(name, target):
        try:
            with Conn(s.port, timeout=60) as c:
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
                c.send(f"GET {target} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
                r = c.read_head()
                assert r.status == 200, r
                chunked = (r.get("transfer-encoding") or "").lower() == "chunked"
                got = len(c.buf)
                c.buf = b""
                slow_until = time.monotonic() + 6
                while time.monotonic() < slow_until:
                    got += len(c.sock.recv(16384))
                    time.sleep(0.02)
                tail = b""
                while True:
                    chunk = c.sock.recv(1 << 20)
                    if not chunk:
                        break
                    got += len(chunk)
                    tail = (tail + chunk)[-16:]
                    if not chunked and got >= total:
                        break
                    if chunked and tail.endswith(b"\r\n0\r\n\r\n"):
                        break
                results[name] = (got, tail)
        except BaseException as e:   # reported by the main thread
            results[name] = e

    with RssWatch(s) as rss:
        threads = [threading.Thread(target=reader, args=("cl", "/big?mb=200")),
                   threading.Thread(target=reader, args=("chunked", "/big?mb=200&chunked=1"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=110)
    print(f"RSS {rss.base} -> {rss.peak} KiB")
    got, _ = results["cl"]
    assert got == total
    got, tail = results["chunked"]
    assert got > total and tail.endswith(b"\r\n0\r\n\r\n")   # the body plus chunk framing
    assert rss.growth_mib < 30, f"RSS grew {rss.growth_mib:.1f} MiB (from {rss.base} KiB to {rss.peak} KiB)"


# ---- file-descriptor exhaustion -----------------------------------------------------------

FD_LIMIT = 256


def try_request(port, timeout=1.0, errors=None, target="/fd"):
    """One request on a new connection: its status as a string, or what
    happened instead (refused, reset, closed, timeout). The heads of 5xx
    answers are appended to `errors`."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as c:
            c.settimeout(timeout)
            c.sendall(f"GET {target} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n".encode())
            data = c.recv(1000)
    except ConnectionRefusedError:
        return "refused"
    except (ConnectionResetError, BrokenPipeError):
        return "reset"
    except (socket.timeout, TimeoutError):
        return "timeout"
    if not data:
        return "closed"
    m = re.match(rb"HTTP/1\.1 (\d{3})", data)
    if m and m.group(1).startswith(b"5") and errors is not None:
        errors.append(data.decode("latin-1").replace("\r\n", " | "))
    return m.group(1).decode() if m else "garbage"


def limit_to_free_fds(pid, free):
    """Lowers pid's soft RLIMIT_NOFILE so that exactly `free` more
    descriptors can be opened; returns the limits to restore."""
    old = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    used = sorted(int(fd) for fd in os.listdir(f"/proc/{pid}/fd"))
    limit = len(used)
    while limit - sum(1 for fd in used if fd < limit) < free:
        limit += 1
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (limit, old[1]))
    return old


def hold_at_emfile(s, n=150):
    """Opens `n` client connections while sluice's descriptor budget still
    has room for them, then lowers its RLIMIT_NOFILE to what it holds: the
    next accept fails with EMFILE (the budget alone would answer 503 before
    that). Returns the held sockets and the limit set."""
    held = []
    for _ in range(n):
        held.append(socket.create_connection(("127.0.0.1", s.port), timeout=5))
    wait_until(lambda: sluice_fds(s)["downstream"] >= n,
               what=lambda: f"sluice holding {n} clients ({dict(sluice_fds(s))})")
    limit_to_free_fds(s.pid, 0)
    return held, resource.prlimit(s.pid, resource.RLIMIT_NOFILE)[0]


def test_fd_exhaustion_never_spins_and_recovers(backend, sluice_proc):
    """sluice at its RLIMIT_NOFILE (hold_at_emfile), max_connections far
    above it. Connections past the limit are refused, closed or answered 503
    — never a crash; while sluice sits at the limit with connections waiting
    in its accept queue it does not burn CPU (libuv's accept loop can spin
    on EMFILE); once clients leave it serves again."""
    b = backend()
    s = sluice_proc(upstream(b.port) + route("all", "/"),
                    server='max_connections = 5000\nheader_timeout = "60s"\nkeepalive_timeout = "60s"')
    assert get(s.port, "/warm").status == 200
    base = sluice_fds(s)
    held, _ = hold_at_emfile(s)
    try:
        for _ in range(50):                   # the kernel's accept queue takes what sluice cannot
            held.append(socket.create_connection(("127.0.0.1", s.port), timeout=5))
        # Clients keep arriving at the limit, from several threads at once.
        outcomes, errors = collections.Counter(), []
        stop = time.monotonic() + 5

        def hammer():
            while time.monotonic() < stop:
                outcomes[try_request(s.port, errors=errors)] += 1
        threads = [threading.Thread(target=hammer) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print("outcomes at the limit:", dict(outcomes), "5xx answers:", errors[:3])
        assert s.alive()
        assert set(outcomes) <= {"refused", "reset", "closed", "timeout", "503", "502", "200"}, outcomes
        # A few more connections wait in the accept queue; nothing else happens.
        for _ in range(20):
            held.append(socket.create_connection(("127.0.0.1", s.port), timeout=5))
        before, threads_before = cpu_seconds(s.pid), thread_cpu(s.pid)
        time.sleep(3)    # stimulus: an idle period at the limit
        spent = cpu_seconds(s.pid) - before
        per_thread = {t: round(v - threads_before.get(t, 0), 2) for t, v in thread_cpu(s.pid).items()}
    finally:
        for c in held:
            c.close()
    # Recovery: the clients left, sluice serves again and lets their descriptors go.
    try:
        wait_until(lambda: try_request(s.port, timeout=2) == "200", timeout=20, what="service after the clients left")
        recovered = None
    except AssertionError as e:
        recovered = f"{e}; sluice holds {s.fd_count()} descriptors, results now: " + \
            str(collections.Counter(try_request(s.port, timeout=1) for _ in range(10)))
    print(f"CPU in 3 idle seconds at EMFILE: {spent:.2f} s (per thread: {per_thread})")
    assert spent < 0.5 and recovered is None, (
        f"sluice used {spent:.2f} s of CPU in 3 idle seconds at EMFILE (per thread: {per_thread}); "
        f"recovery: {recovered or 'ok'}")
    # The connections queued during the pause are worked through (their
    # clients are gone): until their close callbacks run they count against
    # the descriptor budget, which is only 52 clients under this limit. Then
    # every request is served, under the same limit.
    wait_until(lambda: sluice_fds(s)["downstream"] == 0 and accept_queue(s) == 0, timeout=15,
               what=lambda: f"the queued connections worked through ({dict(sluice_fds(s))}, "
                            f"{accept_queue(s)} in the accept queues)")
    errors = []
    results = collections.Counter(try_request(s.port, timeout=5, errors=errors) for _ in range(50))
    assert results == {"200": 50}, (results, errors[:3])
    assert_no_leak(s, base, upstream_slack=8)
    before = cpu_seconds(s.pid)
    time.sleep(1)
    assert cpu_seconds(s.pid) - before < 0.3, "sluice busy while idle after recovery"


@pytest.mark.parametrize("workers", [1, 2])
def test_regression_a_drain_at_the_fd_limit_exits_0(backend, sluice_proc, tmp_path, workers):
    """Bug 1 also made SIGTERM useless: a worker spinning in libuv's accept
    loop at EMFILE never saw the drain, and only SIGKILL ended sluice. At
    the limit, with clients waiting in the accept queue and more arriving,
    a SIGTERM drains and exits 0 within drain_timeout; a listener that
    stopped accepting says so at most once a second per worker."""
    b = backend()
    config = (f'[server]\nworkers = {workers}\naccess_log = "{tmp_path / "access.log"}"\n'
              'max_connections = 5000\nheader_timeout = "60s"\ndrain_timeout = "2s"\n'
              '[[listener]]\naddress = "127.0.0.1:0"\n[admin]\naddress = "127.0.0.1:0"\n'
              + upstream(b.port) + route("all", "/"))
    s = sluice_proc(config=config)
    assert get(s.port, "/warm").status == 200
    held, limit = hold_at_emfile(s)
    try:
        for _ in range(50):
            held.append(socket.create_connection(("127.0.0.1", s.port), timeout=5))
        started = time.monotonic()
        stop = started + 3

        def hammer():
            while time.monotonic() < stop:
                try_request(s.port, timeout=0.5)
        threads = [threading.Thread(target=hammer) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        s.stopped = True   # the teardown must not take this exit for a crash
        signalled = time.monotonic()
        os.kill(s.pid, signal.SIGTERM)
        try:
            rc = s.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            per_thread = thread_cpu(s.pid)
            s.proc.kill()
            raise AssertionError(f"SIGTERM at the fd limit: sluice still running after 10 s "
                                 f"(CPU per thread: {per_thread})") from None
        took = time.monotonic() - signalled
    finally:
        for c in held:
            c.close()
    s.stop()   # joins the stderr reader
    assert rc == 0, s.stderr
    assert took < 2 + 1.5, f"the drain took {took:.1f} s (drain_timeout 2 s)"
    paused = [line for line in s.err if "not accepting on" in line]
    print(f"drain took {took:.2f} s; pause lines: {paused}")
    seconds = time.monotonic() - started
    assert len(paused) <= workers * (seconds + 1), paused
    assert all(f"out of file descriptors (RLIMIT_NOFILE {limit})" in line for line in paused), paused
    assert "sluice: stopped" in s.stderr


def test_the_admin_listener_at_the_fd_limit_pauses_and_recovers(backend, sluice_proc):
    """The admin endpoints run on the main thread's loop, which also handles
    signals and reloads: at EMFILE its accept loop must pause like a
    worker's, never spin, and /healthz must answer again once descriptors
    are free."""
    b = backend()
    s = sluice_proc(upstream(b.port) + route("all", "/"), server='max_connections = 5000\nheader_timeout = "60s"')
    port = admin_port(s)
    held, _ = hold_at_emfile(s)
    try:
        for _ in range(40):             # admin clients waiting in its accept queue
            held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        before = cpu_seconds(s.pid)
        time.sleep(2)    # stimulus: an idle period at the limit
        spent = cpu_seconds(s.pid) - before
    finally:
        for c in held:
            c.close()
    assert spent < 0.5, f"sluice used {spent:.2f} s of CPU in 2 idle seconds at EMFILE"
    wait_until(lambda: try_request(port, timeout=2, target="/healthz") == "200", timeout=20,
               what="the admin endpoints after the clients left")
    assert s.alive()


def test_a_local_fd_shortage_is_not_blamed_on_the_upstream(backend, sluice_proc):
    """sluice has a descriptor for the client but none left for the upstream
    socket. That is sluice's own shortage: 503 (over_capacity), not a 502
    saying the upstream refused, and the upstream's health is left alone."""
    b = backend()
    s = sluice_proc(upstream(b.port) + route("all", "/"), server="max_connections = 5000")
    with Conn(s.port) as c:
        wait_until(lambda: sluice_fds(s)["downstream"] == 1, what="the client accepted")
        old = limit_to_free_fds(s.pid, 0)     # the client is in; no descriptor is left
        try:
            replies = []
            for i in range(4):        # more than the 3 failures that eject a server
                c.send(f"GET /x{i} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
                r = c.read_response()
                replies.append((r.status, r.get("sluice-error"), r.body.decode().strip()))
                if (r.get("connection") or "").lower() == "close":
                    break
        finally:
            resource.prlimit(s.pid, resource.RLIMIT_NOFILE, old)
    ejected = metric_total(s, "sluice_upstream_health_changes_total")
    assert get(s.port, "/after").status == 200
    assert len(replies) == 4, replies
    assert all(status == 503 and code == "over_capacity" and "no socket for the upstream connection" in body
               for status, code, body in replies), replies
    assert ejected == 0, f"the upstream's health changed {ejected} times over sluice's own fd shortage"


def test_clients_past_the_descriptor_budget_get_503(backend, sluice_proc):
    """RLIMIT_NOFILE 256 with 2 workers and 1 listener allows
    (256 - 64 - 2 x (3 + 2 x 1)) / 2 = 91 client connections (each may hold
    an upstream socket too): the 92nd and later are answered 503
    over_capacity at once, naming the limit, instead of meeting EMFILE; once
    clients leave, new ones are served."""
    b = backend()
    s = sluice_proc(upstream(b.port) + route("all", "/"),
                    server='max_connections = 5000\nheader_timeout = "60s"')
    assert get(s.port, "/warm").status == 200
    base = sluice_fds(s)
    resource.prlimit(s.pid, resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))
    time.sleep(1.1)   # the budget reads the limit at most once a second
    budget = (FD_LIMIT - 64 - 2 * (3 + 2 * 1)) // 2
    held = []
    try:
        for _ in range(budget + 30):
            c = Conn(s.port, timeout=5)
            held.append(c)
        answered = []
        for c in held:
            c.sock.settimeout(0.3)
            try:
                answered.append(c.read_response())
            except (socket.timeout, TimeoutError):
                pass
    finally:
        for c in held:
            c.close()
    assert len(answered) == 30, f"{len(answered)} answered of {budget + 30} (budget {budget})"
    for r in answered:
        assert_sluice_error(r, 503, "over_capacity")
        assert f"RLIMIT_NOFILE {FD_LIMIT} allows {budget} client connections" in r.body.decode(), r
        assert r.get("connection") == "close"
    wait_until(lambda: try_request(s.port, timeout=2, target="/after") == "200", timeout=10,
               what="service after the clients left")
    assert_no_leak(s, base)


# ---- workers ----------------------------------------------------------------------------------

def test_a_worker_never_blocks_on_another(backend, sluice_proc):
    """workers = 2. Twenty responses are stuck mid-body (the upstream holds
    them) — spread over both workers by SO_REUSEPORT — while 200 other
    requests on new connections are all served promptly. Then the held ones
    finish."""
    b = backend()
    s = sluice_proc(upstream(b.port) + route("all", "/"))
    held = []
    try:
        for i in range(20):
            c = Conn(s.port, timeout=30)
            c.send(f"GET /hold?id=w{i} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
            assert c.read_head().status == 200
            c.read_until_seen(b"first\n")
            held.append(c)
        latencies = []
        for i in range(200):
            t0 = time.monotonic()
            r = get(s.port, f"/api/free{i}", timeout=5)
            latencies.append(time.monotonic() - t0)
            assert r.status == 200 and r.json()["path"] == f"/api/free{i}"
        latencies.sort()
        print(f"p50 {latencies[100] * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms")
        assert latencies[-1] < 1.0
        for i, c in enumerate(held):
            b.release(f"w{i}")
        for c in held:
            c.read_until_seen(b"0\r\n\r\n")
            assert b"second\n" in c.buf
    finally:
        for c in held:
            c.close()


# ---- slowloris ------------------------------------------------------------------------------

SLOWLORIS = 2000
HEADER_TIMEOUT = 3.0

# A well-behaved client in its own process (the attack's event loop must not
# delay it through the GIL): requests for DURATION seconds, alternating a new
# connection and a kept-alive one, every latency printed as JSON at the end.
NORMAL_CLIENT = r"""
import json, socket, sys, time
port, duration = int(sys.argv[1]), float(sys.argv[2])
def request(sock, i):
    sock.sendall(f"GET /api/n{i} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("closed")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0])
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split()[1]), json.loads(body)["path"] == f"/n{i}"
out, keep, i = [], None, 0
end = time.monotonic() + duration
while time.monotonic() < end:
    i += 1
    t0 = time.monotonic()
    try:
        if i % 2:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
                c.settimeout(5)
                status, ok = request(c, i)
        else:
            if keep is None:
                keep = socket.create_connection(("127.0.0.1", port), timeout=5)
                keep.settimeout(5)
            status, ok = request(keep, i)
        out.append([time.monotonic() - t0, status, ok])
    except Exception as e:
        out.append([time.monotonic() - t0, repr(e), False])
        keep = None
    time.sleep(0.02)
print(json.dumps(out))
"""


def raise_fd_limit(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < need:
        pytest.fail(f"RLIMIT_NOFILE hard limit {hard} < {need}: this test needs {need} descriptors")
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def slowloris(port, n, duration):
    """n connections that each send one header byte every 2-3 s, kept at n
    for `duration` seconds (a connection that is cut is replaced). Returns
    [(lifetime, outcome)] per cut connection; outcome is "408", "closed",
    "reset" or "open" (still open when the attack ended)."""
    head = b"GET / HTTP/1.1\r\nHost: h\r\nX-Slow: " + b"a" * 1000
    results = []
    end = time.monotonic() + duration

    async def one(k):
        await asyncio.sleep(k * 1.0 / n)      # ramp up over the first second
        while time.monotonic() < end:
            t0 = time.monotonic()
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
            except (OSError, asyncio.TimeoutError):
                results.append((time.monotonic() - t0, "connect failed"))
                await asyncio.sleep(0.5)
                continue
            data, outcome, sent = b"", None, 0
            try:
                while outcome is None:
                    if sent < len(head):
                        writer.write(head[sent:sent + 1])
                        sent += 1
                    try:
                        chunk = await asyncio.wait_for(reader.read(4096), random.uniform(2, 3))
                    except asyncio.TimeoutError:
                        if time.monotonic() > end + HEADER_TIMEOUT + 3:
                            outcome = "open"
                        continue
                    if chunk:
                        data += chunk
                        continue
                    outcome = "408" if data.startswith(b"HTTP/1.1 408") else ("closed" if not data else "other")
            except (ConnectionError, OSError):
                outcome = "408" if data.startswith(b"HTTP/1.1 408") else "reset"
            finally:
                writer.close()
            results.append((time.monotonic() - t0, outcome))

    await asyncio.gather(*(one(k) for k in range(n)))
    return results


def test_slowloris_is_cut_at_header_timeout_while_normal_clients_are_served(backend, sluice_proc):
    raise_fd_limit(2 * SLOWLORIS + 1000)    # sluice inherits the raised limit
    b = backend()
    s = sluice_proc(upstream(b.port) + route("api", "/api", extra="strip_prefix = true"),
                    server=f'header_timeout = "{int(HEADER_TIMEOUT)}s"\nmax_connections = 10000')
    assert get(s.port, "/api/warm").status == 200
    base = sluice_fds(s)
    duration = 20
    normal = subprocess.Popen(["/usr/bin/python3", "-c", NORMAL_CLIENT, str(s.port), str(duration + 2)],
                              stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        results = asyncio.run(slowloris(s.port, SLOWLORIS, duration))
        out, _ = normal.communicate(timeout=60)
    finally:
        if normal.poll() is None:
            normal.kill()
    latencies = json.loads(out)
    outcomes = collections.Counter(o for _, o in results)
    lifetimes = sorted(t for t, o in results if o in ("408", "closed", "reset"))
    ok = sorted(t for t, status, good in latencies if status == 200 and good)
    bad = [l for l in latencies if not (l[1] == 200 and l[2])]
    p99 = ok[int(len(ok) * 0.99)] if ok else None
    print(f"slowloris: {len(results)} connections cut: {dict(outcomes)}; lifetime min "
          f"{lifetimes[0]:.2f} s, median {lifetimes[len(lifetimes) // 2]:.2f} s, max {lifetimes[-1]:.2f} s; "
          f"normal client: {len(latencies)} requests, {len(bad)} failed, p50 {ok[len(ok) // 2] * 1000:.1f} ms, "
          f"p99 {p99 * 1000:.1f} ms, max {ok[-1] * 1000:.1f} ms")
    # Every attacking connection was cut (none outlived the attack), with a 408
    # or a close, around header_timeout after it was accepted.
    assert outcomes["open"] == 0 and outcomes["connect failed"] == 0 and outcomes["other"] == 0, outcomes
    assert len(results) >= SLOWLORIS * (duration // (HEADER_TIMEOUT + 1)), "the attack did not keep its pace"
    assert lifetimes[0] > HEADER_TIMEOUT - 0.5, f"a connection was cut after {lifetimes[0]:.2f} s"
    late = [t for t in lifetimes if t > HEADER_TIMEOUT + 2.5]
    assert not late, f"{len(late)} connections lived longer than header_timeout + 2.5 s (max {lifetimes[-1]:.2f} s)"
    # The normal client never failed and stayed fast throughout.
    assert not bad, bad[:5]
    assert len(ok) > 100 and p99 < 1.0, f"p99 {p99}"
    assert_no_leak(s, base)


# ---- soak ------------------------------------------------------------------------------------

def test_soak_short():
    """tools/soak for 20 s with fewer clients: mixed HTTP, WebSocket and
    Socket.IO traffic, then no lost message, stable RSS, no descriptor leak
    and a clean exit (the full run is 10 minutes: docs/RELIABILITY.md)."""
    p = subprocess.run([str(REPO / "tools" / "soak"), "20", "--bin", SLUICE, "--http-threads", "3",
                        "--ws", "30", "--sio-polling", "10", "--sio-websocket", "10"],
                       capture_output=True, text=True, timeout=110, start_new_session=True)
    print(p.stdout, p.stderr)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "result: PASS" in p.stdout


@pytest.mark.parametrize("code", [204, 304])
def test_regression_a_no_body_status_with_content_length_is_not_read_as_having_a_body(faulty_proxy, code):
    """Found by fuzzing: a 204/304 declaring Content-Length made sluice wait
    for a body that never comes (RFC 9110: there is none), stalling the
    connection and the requests pipelined behind it."""
    with Conn(faulty_proxy.port, timeout=5) as c:
        c.send(f"GET /no-body?code={code} HTTP/1.1\r\nHost: h\r\n\r\nGET /after HTTP/1.1\r\nHost: h\r\n\r\n".encode())
        first = c.read_response()
        assert first.status == code and first.body == b""
        second = c.read_response()
        assert second.status == 200 and json.loads(second.body)["path"] == "/after"


def test_regression_admin_explain_with_bytes_that_are_not_utf8_does_not_crash(faulty_proxy):
    """Found by fuzzing: /explain?path=/%ff made the JSON dump throw inside a
    libuv callback and abort the process."""
    port = admin_port(faulty_proxy)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /explain?path=/%ff HTTP/1.1\r\nHost: a\r\n\r\n")
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    assert faulty_proxy.alive()
