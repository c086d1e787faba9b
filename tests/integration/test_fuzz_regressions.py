"""Regressions of the fuzzing findings (tests/fuzz/README.md, "Findings";
tests/fuzz/regressions/README.md has each input, stack and cause), on the
real binary: every one of them had been reproduced against build-release/sluice
with a raw-socket peer before it was fixed, and each test here failed then.

Upstream bytes come from faulty_upstream.py's /raw mode (exact bytes the test
chooses); client bytes from raw sockets."""

import base64
import socket
import threading
import time

import pytest

from test_faults import HANDSHAKE, faulty, faulty_proxy  # noqa: F401  (fixtures)
from test_http_proxy import Conn, RssWatch, assert_sluice_error, get, route, upstream


def raw_target(data, then="keep", prefix="/raw"):
    return f"{prefix}?b64={base64.urlsafe_b64encode(data).decode()}&then={then}"


def raw_get(port, data, then="keep", prefix="/raw", extra="", method="GET"):
    with Conn(port, timeout=10) as c:
        c.send(f"{method} {raw_target(data, then, prefix)} HTTP/1.1\r\nHost: h\r\n{extra}\r\n".encode())
        return c.read_response(method)


class RawUpstream:
    """A one-connection upstream on a plain socket: records every byte sluice
    sends and answers `reply` once it has seen `until`."""

    def __init__(self, reply, until=b"0\r\n\r\n"):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(10)
        self.port = self.sock.getsockname()[1]
        self.received = b""
        self.reply, self.until = reply, until
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(10)
            try:
                while self.until not in self.received:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    self.received += chunk
                conn.sendall(self.reply)
                time.sleep(0.3)   # anything sluice still sends arrives here
                conn.setblocking(False)
                try:
                    self.received += conn.recv(65536)
                except BlockingIOError:
                    pass
            except OSError:
                pass

    def close(self):
        self.sock.close()
        self.thread.join(timeout=5)


# ---- [trailers-in-head] ------------------------------------------------------------------

def test_request_trailers_are_not_forwarded_nor_kept(sluice_proc):
    """A chunked request's trailer fields reached DownstreamConn's head after
    the head was complete (and were not forwarded). They are dropped; the
    upstream gets the body and a bare last chunk."""
    up = RawUpstream(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    try:
        s = sluice_proc(upstream(up.port) + route("all", "/"))
        with Conn(s.port) as c:
            c.send(b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"5\r\nhello\r\n0\r\nX-Trailer-1: a\r\nX-Trailer-2: b\r\n\r\n")
            r = c.read_response()
        assert r.status == 200 and r.body == b"ok"
    finally:
        up.close()
    head, _, body = up.received.partition(b"\r\n\r\n")
    assert body == b"5\r\nhello\r\n0\r\n\r\n", up.received
    assert b"X-Trailer" not in up.received


def test_request_trailers_are_bounded_by_max_header_size(sluice_proc):
    """Found by fuzzing: 200 MB of trailer fields took sluice from 6.7 to 139 MB
    of RSS (nothing bounded them). Now they count against max_header_size:
    past it the client gets 431 and the upstream request is abandoned."""
    up = RawUpstream(b"", until=b"never")
    try:
        s = sluice_proc(upstream(up.port) + route("all", "/"), server='max_header_size = "4KiB"')
        with RssWatch(s) as rss, Conn(s.port) as c:
            c.send(b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n")
            line = b"X-T: " + b"v" * 1000 + b"\r\n"
            try:
                for _ in range(20000):        # 20 MB, far past the limit
                    c.send(line * 10)
            except (BrokenPipeError, ConnectionResetError):
                pass
            r = c.read_response()
        assert_sluice_error(r, 431, "headers_too_large")
        assert "trailer" in r.body.decode()
        assert rss.growth_mib < 8, f"RSS grew by {rss.growth_mib:.1f} MiB"
    finally:
        up.close()
    assert b"X-T" not in up.received
    assert s.alive()


def test_response_trailers_do_not_become_header_fields_of_a_rewritten_handshake(faulty, sluice_proc):
    """Found by fuzzing: on the Engine.IO handshake rewrite (affinity =
    "engine.io") the head is written when the body ends, and the upstream's
    trailer fields had become header fields of the client's response."""
    f = faulty()
    s = sluice_proc(upstream(f.port, extra='affinity = "engine.io"') +
                    route("sio", "/sio", extra='kind = "socketio"\nrewrite_prefix = "/raw"'))
    body = b'0{"sid":"abc","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000}'
    data = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n" +
            f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\nSet-Cookie: from-trailer=1\r\n\r\n")
    with Conn(s.port) as c:
        c.send(f"GET /sio/?EIO=4&transport=polling&b64={base64.urlsafe_b64encode(data).decode()} "
               "HTTP/1.1\r\nHost: h\r\n\r\n".encode())
        r = c.read_response()
    assert r.status == 200
    assert b'"sid":"' in r.body and b'"sid":"abc"' not in r.body, r.body   # the token was added
    assert "set-cookie" not in r.names(), r.headers
    assert b"from-trailer" not in (r.head + r.body)


# ---- [head-reply-body] -------------------------------------------------------------------

@pytest.mark.parametrize("target, code, status", [("/nowhere", "no_route", 404),
                                                  ("/api/../../x", "path_escape", 400)])
def test_an_error_reply_to_head_has_no_body(faulty, sluice_proc, target, code, status):
    """Found by fuzzing: sluice's error replies to HEAD carried their body,
    which a client (reading no body after HEAD) took for the next response."""
    f = faulty()
    s = sluice_proc(upstream(f.port) + route("api", "/api", extra="strip_prefix = true"))
    with Conn(s.port) as c:
        c.send(f"HEAD {target} HTTP/1.1\r\nHost: h\r\n\r\nGET {target} HTTP/1.1\r\nHost: h\r\n\r\n"
               "GET /api/after HTTP/1.1\r\nHost: h\r\n\r\n".encode())
        head = c.read_response("HEAD")
        full = c.read_response()
        after = c.read_response()
    assert head.status == status and head.get("sluice-error") == code, head
    assert_sluice_error(full, status, code)
    assert head.get("content-length") == str(len(full.body))
    assert after.status == 200 and b'"path": "/after"' in after.body, after


# ---- [target-ctl] ------------------------------------------------------------------------

@pytest.mark.parametrize("byte", [b"\t", b"\x0c", b"\x0b", b"\x01", b"\x7f"])
def test_a_request_target_with_a_control_byte_is_refused(faulty_proxy, byte):
    """Found by fuzzing: llhttp (built without strict mode) lets HTAB and FF
    through in the target; sluice routed on the whole target but forwarded it
    verbatim, and an upstream splitting the request line there saw another
    path. Now 400 bad_request, and the upstream gets nothing."""
    with Conn(faulty_proxy.port) as c:
        c.send(b"GET /admin" + byte + b"x HTTP/1.1\r\nHost: h\r\n\r\n")
        r = c.read_response()
    assert r.status == 400 and r.get("sluice-error") in ("bad_request",), r
    assert faulty_proxy.faulty.stats()["requests"] == 0


def test_a_redirect_never_echoes_a_control_byte(sluice_proc):
    s = sluice_proc('[[route]]\nname = "r"\nprefix = "/app"\nredirect = { scheme = "https" }\n')
    with Conn(s.port) as c:
        c.send(b"GET /app/\x0c HTTP/1.1\r\nHost: localhost\r\n\r\n")
        r = c.read_response()
    assert_sluice_error(r, 400, "bad_request")
    assert r.get("location") is None


# ---- [empty-header-name] [header-name-token] [reason-ctl] [101-without-upgrade] ------------

def test_a_request_header_with_an_empty_name_is_refused(faulty_proxy):
    with Conn(faulty_proxy.port) as c:
        c.send(b"GET /x HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n")
        r = c.read_response()
    assert_sluice_error(r, 400, "bad_request")
    assert faulty_proxy.faulty.stats()["requests"] == 0


@pytest.mark.parametrize("line", [b": v", b"Transfer Encoding: chunked", b"X Y: z"])
def test_a_response_header_name_that_is_not_a_token_is_502(faulty_proxy, line):
    """An upstream's `: v` or `Transfer Encoding: chunked` (llhttp 8 accepts
    both) was relayed to clients, which may read it differently."""
    r = raw_get(faulty_proxy.port, b"HTTP/1.1 200 OK\r\n" + line + b"\r\nContent-Length: 2\r\n\r\nok")
    assert_sluice_error(r, 502, "upstream_bad_response")
    assert "header name" in r.body.decode()
    assert get(faulty_proxy.port, "/after").status == 200


def test_a_control_byte_in_the_reason_phrase_is_not_relayed(faulty_proxy):
    r = raw_get(faulty_proxy.port, b"HTTP/1.1 200 O\x00K\r\nContent-Length: 2\r\n\r\nok")
    assert r.status == 200 and r.reason == "OK" and r.body == b"ok"
    assert b"\x00" not in (r.head + r.body)


@pytest.mark.parametrize("headers", [b"", b"Upgrade: websocket\r\n", b"Connection: Upgrade\r\n",
                                     b"Upgrade: h2c\r\nConnection: Upgrade\r\n"])
def test_a_101_that_is_not_a_websocket_switch_is_502(faulty, sluice_proc, headers):
    """Found by fuzzing: a 101 without Upgrade/Connection: upgrade is an
    ordinary 1xx to llhttp. sluice told the client it had switched, then
    parsed the next response as HTTP and relayed it into the WebSocket stream."""
    f = faulty()
    s = sluice_proc(upstream(f.port) + route("ws", "/ws-raw", extra='kind = "websocket"\nrewrite_prefix = "/raw"'))
    data = (b"HTTP/1.1 101 Switching Protocols\r\n" + headers + b"\r\n"
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
    r = raw_get(s.port, data, prefix="/ws-raw", extra=HANDSHAKE)
    assert_sluice_error(r, 502, "upstream_bad_response")
    assert "101" in r.body.decode()
    assert b"hello" not in (r.head + r.body)


# ---- [cl-error-class] --------------------------------------------------------------------

@pytest.mark.parametrize("bytewise", [False, True])
def test_an_overflowing_content_length_is_bad_request_however_it_is_cut(faulty_proxy, bytewise):
    """Found by fuzzing: `Content-Length: 18446744073709551616,` was
    request_smuggling in one read and bad_request when the read ended at the
    digit. The code no longer depends on TCP segmentation."""
    data = b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551616,\r\n\r\n"
    with Conn(faulty_proxy.port) as c:
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if bytewise:
            cut = data.index(b"6,") + 1     # the read ends at the digit that overflows
            c.send(data[:cut])
            time.sleep(0.2)
            try:
                c.send(data[cut:])
            except (BrokenPipeError, ConnectionResetError):
                pass
        else:
            c.send(data)
        r = c.read_response()
    assert_sluice_error(r, 400, "bad_request")


def test_a_content_length_list_is_still_smuggling(faulty_proxy):
    with Conn(faulty_proxy.port) as c:
        c.send(b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\nhello")
        r = c.read_response()
    assert_sluice_error(r, 400, "request_smuggling")
