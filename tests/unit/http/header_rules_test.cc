#include <doctest/doctest.h>

#include <string>

#include "sluice/http.h"

using namespace sluice;

namespace {

// Builds a head the way the parser callbacks do, in pieces.
http::MessageHead request(std::string_view method, std::string_view target,
                          std::initializer_list<std::pair<std::string_view, std::string_view>> headers) {
  http::MessageHead head;
  head.append_method(method);
  head.append_target(target);
  for (auto [name, value] : headers) {
    // Split each element in two pieces, as a read boundary would.
    head.append_field(name.substr(0, name.size() / 2));
    head.append_field(name.substr(name.size() / 2));
    head.append_value(value.substr(0, value.size() / 2));
    head.append_value(value.substr(value.size() / 2));
  }
  return head;
}

bool has_line(const std::string& head, std::string_view line) {
  return head.find("\r\n" + std::string(line) + "\r\n") != std::string::npos;
}

bool has_name(const std::string& head, std::string_view name) {
  std::string lower = base::to_lower(head);
  return lower.find("\r\n" + base::to_lower(name) + ":") != std::string::npos;
}

}  // namespace

TEST_CASE("MessageHead glues pieces and finds headers case-insensitively") {
  http::MessageHead h = request("GET", "/x", {{"Host", "a.example"}, {"X-Two", "v1"}, {"x-two", "v2"}});
  CHECK(h.method() == "GET");
  CHECK(h.target() == "/x");
  CHECK(h.header_count() == 3);
  CHECK(h.find("HOST") == "a.example");
  CHECK(h.count("X-TWO") == 2);
  CHECK_FALSE(h.find("missing").has_value());
  h.clear();
  CHECK(h.header_count() == 0);
  CHECK(h.method().empty());
}

TEST_CASE("has_token reads comma lists across header lines") {
  http::MessageHead h = request("GET", "/", {{"Connection", "keep-alive, X-Secret"}, {"Connection", " Upgrade "}});
  CHECK(h.has_token("connection", "x-secret"));
  CHECK(h.has_token("connection", "upgrade"));
  CHECK_FALSE(h.has_token("connection", "close"));
}

TEST_CASE("hop-by-hop headers are removed upstream, including those named in Connection") {
  http::MessageHead h = request("POST", "/api/x",
                                {{"Host", "app.example.com"},
                                 {"Connection", "keep-alive, X-Hop"},
                                 {"Keep-Alive", "timeout=5"},
                                 {"Proxy-Connection", "keep-alive"},
                                 {"TE", "trailers"},
                                 {"Trailer", "X-Checksum"},
                                 {"Transfer-Encoding", "chunked"},
                                 {"Upgrade", "h2c"},
                                 {"X-Hop", "secret"},
                                 {"Content-Length", "999"},
                                 {"Accept", "application/json"}});
  http::ForwardInfo info;
  info.upstream_target = "/x";
  info.client_ip = "10.1.2.3";
  info.request_id = "req-1";
  info.framing = http::Framing::chunked;
  std::string out;
  http::append_upstream_request(out, h, info);
  CHECK(out.starts_with("POST /x HTTP/1.1\r\n"));
  for (std::string_view gone : {"Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Upgrade", "X-Hop", "Content-Length"}) {
    CAPTURE(gone);
    CHECK_FALSE(has_name(out, gone));
  }
  CHECK(has_line(out, "Accept: application/json"));
  CHECK(has_line(out, "Host: app.example.com"));
  // Framing is regenerated: exactly one Transfer-Encoding, sluice's own.
  CHECK(has_line(out, "Transfer-Encoding: chunked"));
  CHECK(out.find("Transfer-Encoding") == out.rfind("Transfer-Encoding"));
  CHECK(out.ends_with("\r\n\r\n"));
}

TEST_CASE("X-Forwarded-* and X-Request-Id are written by sluice") {
  http::MessageHead h = request("GET", "/", {{"Host", "App.Example.com:8080"},
                                             {"X-Forwarded-For", "1.1.1.1"},
                                             {"X-Forwarded-For", "2.2.2.2"},
                                             {"X-Forwarded-Proto", "https"},
                                             {"X-Forwarded-Host", "evil"},
                                             {"X-Request-Id", "client-id"}});
  http::ForwardInfo info;
  info.upstream_target = "/";
  info.client_ip = "10.0.0.9";
  info.request_id = "kept-or-new";
  std::string out;
  http::append_upstream_request(out, h, info);
  CHECK(has_line(out, "X-Forwarded-For: 1.1.1.1, 2.2.2.2, 10.0.0.9"));
  CHECK(has_line(out, "X-Forwarded-Proto: http"));
  CHECK(has_line(out, "X-Forwarded-Host: App.Example.com:8080"));
  CHECK(has_line(out, "X-Request-Id: kept-or-new"));
  CHECK(out.find("evil") == std::string::npos);
  CHECK(out.find("client-id") == std::string::npos);
  CHECK_FALSE(has_name(out, "Content-Length"));
}

TEST_CASE("host_header replaces Host; a missing Host falls back to the server address") {
  http::MessageHead h = request("GET", "/", {{"Host", "client.example"}});
  http::ForwardInfo info;
  info.upstream_target = "/";
  info.client_ip = "1.2.3.4";
  info.request_id = "r";
  std::string fixed_host = "internal.svc";
  info.host = fixed_host;
  std::string out;
  http::append_upstream_request(out, h, info);
  CHECK(has_line(out, "Host: internal.svc"));
  CHECK(has_line(out, "X-Forwarded-Host: client.example"));

  http::MessageHead no_host = request("GET", "/", {});
  http::ForwardInfo info2 = info;
  info2.host.reset();
  info2.fallback_host = "10.0.0.7:8000";
  out.clear();
  http::append_upstream_request(out, no_host, info2);
  CHECK(has_line(out, "Host: 10.0.0.7:8000"));
  CHECK_FALSE(has_name(out, "X-Forwarded-Host"));
}

TEST_CASE("an allowed WebSocket upgrade sends exactly Connection: Upgrade and Upgrade: websocket") {
  http::MessageHead h = request("GET", "/ws", {{"Host", "h"}, {"Connection", "keep-alive, Upgrade"},
                                               {"Upgrade", "WebSocket"}, {"Sec-WebSocket-Key", "k"}});
  http::ForwardInfo info;
  info.upstream_target = "/ws";
  info.client_ip = "1.2.3.4";
  info.request_id = "r";
  info.websocket = true;
  std::string out;
  http::append_upstream_request(out, h, info);
  CHECK(has_line(out, "Connection: Upgrade"));
  CHECK(has_line(out, "Upgrade: websocket"));
  CHECK(out.find("Upgrade: WebSocket") == std::string::npos);
  CHECK(out.find("keep-alive") == std::string::npos);
  CHECK(has_line(out, "Sec-WebSocket-Key: k"));
}

TEST_CASE("response heads drop hop-by-hop headers and regenerate framing") {
  http::MessageHead r;
  r.status = 200;
  r.append_reason("OK");
  for (auto [n, v] : {std::pair{"Content-Type", "text/plain"}, {"Connection", "close, X-Internal"},
                      {"X-Internal", "1"}, {"Transfer-Encoding", "chunked"}, {"Keep-Alive", "timeout=1"}}) {
    r.append_field(n);
    r.append_value(v);
  }
  http::ResponseInfo info;
  info.request_id = "rid";
  info.framing = http::Framing::content_length;
  info.content_length = 42;
  std::string out;
  http::append_client_response(out, r, info);
  CHECK(out.starts_with("HTTP/1.1 200 OK\r\n"));
  CHECK(has_line(out, "Content-Type: text/plain"));
  CHECK(has_line(out, "Content-Length: 42"));
  CHECK(has_line(out, "X-Request-Id: rid"));
  for (std::string_view gone : {"Connection", "X-Internal", "Transfer-Encoding", "Keep-Alive"}) {
    CAPTURE(gone);
    CHECK_FALSE(has_name(out, gone));
  }
  info.close = true;
  info.framing = http::Framing::chunked;
  out.clear();
  http::append_client_response(out, r, info);
  CHECK(has_line(out, "Connection: close"));
  CHECK(has_line(out, "Transfer-Encoding: chunked"));
}

TEST_CASE("chunk encoding") {
  std::string out;
  http::append_chunk(out, "hello");
  http::append_chunk(out, "");  // never an accidental last chunk
  http::append_chunk(out, std::string(300, 'x'));
  CHECK(out.starts_with("5\r\nhello\r\n12c\r\n"));
  CHECK(out.size() == 10 + 5 + 300 + 2);
}

TEST_CASE("X-Request-Id validity per SPEC: 1-128 of A-Z a-z 0-9 - _ . :") {
  CHECK(http::valid_request_id("abc-DEF_1.2:3"));
  CHECK(http::valid_request_id(std::string(128, 'a')));
  CHECK_FALSE(http::valid_request_id(""));
  CHECK_FALSE(http::valid_request_id(std::string(129, 'a')));
  CHECK_FALSE(http::valid_request_id("a b"));
  CHECK_FALSE(http::valid_request_id("a/b"));
  CHECK_FALSE(http::valid_request_id("a\r\nX-Evil: 1"));
  std::string id = http::make_request_id(0x0123456789abcdefull, 0xfedcba9876543210ull);
  CHECK(id == "0123456789abcdeffedcba9876543210");
  CHECK(http::valid_request_id(id));
}

TEST_CASE("error replies carry status, Sluice-Error and a reason") {
  std::string r = http::error_reply(base::ErrorCode::upstream_refused,
                                    "upstream 'api' server 127.0.0.1:9003: connection refused", "rid", false);
  CHECK(r.starts_with("HTTP/1.1 502 Bad Gateway\r\n"));
  CHECK(has_line(r, "Sluice-Error: upstream_refused"));
  CHECK(has_line(r, "X-Request-Id: rid"));
  CHECK_FALSE(has_name(r, "Connection"));
  CHECK(r.find("127.0.0.1:9003: connection refused\n") != std::string::npos);
  size_t body_start = r.find("\r\n\r\n") + 4;
  CHECK(has_line(r, "Content-Length: " + std::to_string(r.size() - body_start)));

  std::string t = http::error_reply(base::ErrorCode::header_timeout, "", "rid", true);
  CHECK(t.starts_with("HTTP/1.1 408 Request Timeout\r\n"));
  CHECK(has_line(t, "Connection: close"));
  CHECK(has_line(t, "Sluice-Error: header_timeout"));
}
