#include <doctest/doctest.h>

#include <string>

#include "sluice/http.h"

using namespace sluice;

namespace {

using Fields = std::initializer_list<std::pair<std::string_view, std::string_view>>;

void add_fields(http::MessageHead& head, Fields headers) {
  for (auto [name, value] : headers) {
    head.append_field(name);
    head.append_value(value);
  }
}

http::MessageHead request(std::string_view method, std::string_view target, Fields headers,
                          uint8_t minor = 1) {
  http::MessageHead head;
  head.append_method(method);
  head.append_target(target);
  add_fields(head, headers);
  head.http_minor = minor;
  return head;
}

http::MessageHead response(int status, std::string_view reason, Fields headers) {
  http::MessageHead head;
  head.append_reason(reason);
  add_fields(head, headers);
  head.status = status;
  return head;
}

std::optional<base::ErrorCode> problem(const http::MessageHead& head,
                                       http::Framing framing = http::Framing::none) {
  auto p = http::check_request_head(head, framing);
  if (p) return p->code;
  return std::nullopt;
}

}  // namespace

TEST_CASE("field names are one or more tchar (RFC 9110 5.1, 5.6.2)") {
  CHECK(http::is_field_name("X-Request-Id"));
  CHECK(http::is_field_name("!#$%&'*+-.^_`|~09azAZ"));
  CHECK_FALSE(http::is_field_name(""));
  CHECK_FALSE(http::is_field_name("Transfer Encoding"));
  CHECK_FALSE(http::is_field_name("Host:"));
  CHECK_FALSE(http::is_field_name("a\tb"));
  CHECK_FALSE(http::is_field_name("caf\xc3\xa9"));
}

TEST_CASE("a request target has no whitespace or control byte; bytes from 0x80 pass") {
  CHECK(http::is_clean_target("/a/b?c=d&e=%20"));
  CHECK(http::is_clean_target("/caf\xc3\xa9"));
  for (char c : std::string("\t\f\v \x01\x7f", 6)) {
    CAPTURE(static_cast<int>(c));
    CHECK_FALSE(http::is_clean_target(std::string("/a") + c + "b"));
  }
  CHECK_FALSE(http::is_clean_target(std::string("/a\0b", 4)));
}

TEST_CASE("a reason phrase is HTAB, SP, VCHAR or obs-text (RFC 9112 4)") {
  CHECK(http::is_clean_reason("Not Found"));
  CHECK(http::is_clean_reason("Very\tOK \xe2\x9c\x93"));
  CHECK_FALSE(http::is_clean_reason(std::string("O\0K", 3)));
  CHECK_FALSE(http::is_clean_reason("O\x1bK"));
  CHECK_FALSE(http::is_clean_reason("O\x7fK"));
}

TEST_CASE("absolute-form targets split into authority and origin-form") {
  std::string_view authority, rest;
  REQUIRE(http::split_absolute("http://a.example:8080/x?y", authority, rest));
  CHECK(authority == "a.example:8080");
  CHECK(rest == "/x?y");
  REQUIRE(http::split_absolute("HTTPS://b.example", authority, rest));
  CHECK(rest == "/");
  CHECK_FALSE(http::split_absolute("ftp://c.example/", authority, rest));
  CHECK_FALSE(http::split_absolute("http:///x", authority, rest));
  CHECK_FALSE(http::split_absolute("/x", authority, rest));
}

TEST_CASE("check_request_head: every rule and its code") {
  using base::ErrorCode;
  CHECK_FALSE(problem(request("GET", "/", {{"Host", "a"}})));
  CHECK_FALSE(problem(request("GET", "http://a/x", {{"Host", "b"}})));
  CHECK_FALSE(problem(request("GET", "/", {}, 0)));  // HTTP/1.0 needs no Host
  CHECK(problem(request("CONNECT", "a:443", {{"Host", "a"}})) == ErrorCode::bad_request);
  CHECK(problem(request("GET", "/", {{"Host", "a"}, {"", "v"}})) == ErrorCode::bad_request);
  CHECK(problem(request("GET", "/", {{"Host", "a"}, {"Bad Name", "v"}})) == ErrorCode::bad_request);
  CHECK(problem(request("GET", "/a\tb", {{"Host", "a"}})) == ErrorCode::bad_request);
  CHECK(problem(request("GET", "*", {{"Host", "a"}})) == ErrorCode::bad_request);
  CHECK(problem(request("GET", "a.example:80", {{"Host", "a"}})) == ErrorCode::bad_request);
  CHECK(problem(request("GET", "", {{"Host", "a"}})) == ErrorCode::bad_request);
  CHECK(problem(request("GET", "/", {})) == ErrorCode::bad_request);
  CHECK(problem(request("GET", "/", {{"Host", "a"}, {"host", "b"}})) == ErrorCode::bad_request);
  CHECK(problem(request("POST", "/", {{"Host", "a"}, {"Transfer-Encoding", "gzip"}})) ==
        ErrorCode::request_smuggling);
  CHECK_FALSE(problem(request("POST", "/", {{"Host", "a"}, {"Transfer-Encoding", "chunked"}}),
                      http::Framing::chunked));
  CHECK(problem(request("POST", "/", {{"Host", "a"}, {"Transfer-Encoding", "chunked"},
                                      {"Transfer-Encoding", "chunked"}}),
                http::Framing::chunked) == ErrorCode::request_smuggling);
  auto p = http::check_request_head(request("GET", "/a\fb", {{"Host", "a"}}), http::Framing::none);
  REQUIRE(p);
  CHECK(p->detail == "control character or whitespace in the request target");
}

TEST_CASE("check_response_head: names and the 101 switch") {
  CHECK_FALSE(http::check_response_head(response(200, "OK", {{"Content-Length", "0"}}), false));
  CHECK(http::check_response_head(response(200, "OK", {{"", "v"}}), false));
  CHECK(http::check_response_head(response(200, "OK", {{"Transfer Encoding", "chunked"}}), false));
  http::MessageHead ws = response(101, "Switching Protocols",
                                  {{"Upgrade", "websocket"}, {"Connection", "Upgrade"}});
  CHECK_FALSE(http::check_response_head(ws, true));
  CHECK(http::check_response_head(ws, false));  // llhttp did not see the switch
  CHECK(http::check_response_head(response(101, "Switching Protocols", {}), false));
  CHECK(http::check_response_head(response(101, "Switching Protocols", {{"Connection", "Upgrade"}}), true));
  CHECK(http::check_response_head(response(101, "Switching Protocols",
                                           {{"Upgrade", "h2c"}, {"Connection", "Upgrade"}}),
                                  true));
}

TEST_CASE("regressions") {
  // [reason-ctl] found by fuzzing: a NUL in the upstream's reason phrase was
  // relayed; the standard phrase replaces it.
  std::string out;
  http::ResponseInfo info;
  info.request_id = "rid";
  http::append_client_response(out, response(200, std::string_view("O\0K", 3), {}), info);
  CHECK(out.starts_with("HTTP/1.1 200 OK\r\n"));
  out.clear();
  http::append_client_response(out, response(404, "Nope", {}), info);
  CHECK(out.starts_with("HTTP/1.1 404 Nope\r\n"));
  // [head-reply-body] found by fuzzing: an error reply to HEAD carried its
  // body, which a client reads as the next response. The length stays.
  std::string get = http::error_reply(base::ErrorCode::no_route, "path /x", "rid", false);
  std::string head = http::error_reply(base::ErrorCode::no_route, "path /x", "rid", false, true);
  size_t body = get.find("\r\n\r\n") + 4;
  CHECK(head == get.substr(0, body));
  CHECK(head.find("Content-Length: " + std::to_string(get.size() - body) + "\r\n") != std::string::npos);
}
