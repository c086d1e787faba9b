// host:port as written in the config (SPEC.md: "host:port — the port is
// mandatory", "port 0 = any free port") and the one table of error codes
// (SPEC.md "Errors sluice itself answers").

#include <doctest/doctest.h>

#include <set>
#include <string>

#include "sluice/base.h"

using namespace sluice::base;

namespace {

// The error sentence for `text`, or "(parsed)" when it parses.
std::string why_rejected(std::string_view text) {
  std::string why;
  std::optional<HostPort> hp = parse_host_port(text, why);
  if (hp) return "(parsed)";
  CHECK_FALSE(why.empty());
  return why;
}

}  // namespace

TEST_CASE("parse_host_port: IPv4 and names with a port") {
  std::string why;
  auto a = parse_host_port("127.0.0.1:8000", why);
  REQUIRE(a.has_value());
  CHECK(a->host == "127.0.0.1");
  CHECK(a->port == 8000);
  CHECK(a->is_ip_literal());
  CHECK(a->to_string() == "127.0.0.1:8000");

  auto b = parse_host_port("localhost:3000", why);
  REQUIRE(b.has_value());
  CHECK(b->host == "localhost");
  CHECK(b->port == 3000);
  CHECK_FALSE(b->is_ip_literal());

  auto c = parse_host_port("gateway-headless.default.svc.cluster.local:8000", why);
  REQUIRE(c.has_value());
  CHECK(c->host == "gateway-headless.default.svc.cluster.local");
  CHECK(c->port == 8000);
}

TEST_CASE("parse_host_port: IPv6 literals are written in brackets") {
  std::string why;
  auto a = parse_host_port("[::1]:8000", why);
  REQUIRE(a.has_value());
  CHECK(a->host == "::1");
  CHECK(a->port == 8000);
  CHECK(a->is_ip_literal());
  CHECK(a->to_string() == "[::1]:8000");

  auto b = parse_host_port("[2001:db8::7]:443", why);
  REQUIRE(b.has_value());
  CHECK(b->host == "2001:db8::7");
  CHECK(b->port == 443);
  CHECK(b->to_string() == "[2001:db8::7]:443");

  auto any = parse_host_port("[::]:8080", why);
  REQUIRE(any.has_value());
  CHECK(any->host == "::");

  CHECK(why_rejected("::1:8000").find("bracket") != std::string::npos);
  CHECK(why_rejected("[::1:8000") != "(parsed)");
  CHECK(why_rejected("[::1]8000") != "(parsed)");
}

TEST_CASE("parse_host_port: the port is mandatory") {
  CHECK(why_rejected("localhost").find("missing port") != std::string::npos);
  CHECK(why_rejected("127.0.0.1").find("missing port") != std::string::npos);
  CHECK(why_rejected("localhost:").find("missing port") != std::string::npos);
  CHECK(why_rejected("[::1]").find("missing port") != std::string::npos);
  CHECK(why_rejected("[::1]:").find("missing port") != std::string::npos);
  CHECK(why_rejected("") != "(parsed)");
}

TEST_CASE("parse_host_port: the host is required") {
  CHECK(why_rejected(":8000") != "(parsed)");
  CHECK(why_rejected("[]:8000") != "(parsed)");
}

TEST_CASE("parse_host_port: the port is a number from 0 to 65535") {
  std::string why;
  auto top = parse_host_port("127.0.0.1:65535", why);
  REQUIRE(top.has_value());
  CHECK(top->port == 65535);
  auto zero = parse_host_port("0.0.0.0:0", why);  // port 0 = any free port
  REQUIRE(zero.has_value());
  CHECK(zero->port == 0);

  CHECK(why_rejected("127.0.0.1:65536").find("range") != std::string::npos);
  CHECK(why_rejected("127.0.0.1:70000").find("70000") != std::string::npos);
  CHECK(why_rejected("127.0.0.1:99999999999999999999") != "(parsed)");
  CHECK(why_rejected("127.0.0.1:-1") != "(parsed)");
  CHECK(why_rejected("127.0.0.1:+80") != "(parsed)");
  CHECK(why_rejected("127.0.0.1:80a") != "(parsed)");
  CHECK(why_rejected("127.0.0.1:http") != "(parsed)");
  CHECK(why_rejected("127.0.0.1: 80") != "(parsed)");
}

TEST_CASE("parse_host_port: hosts with characters no host name has are rejected") {
  CHECK(why_rejected("exa mple.com:80") != "(parsed)");
  CHECK(why_rejected("http://example.com:80") != "(parsed)");
  CHECK(why_rejected("user@example.com:80") != "(parsed)");
  CHECK(why_rejected("example.com/x:80") != "(parsed)");
}

TEST_CASE("error_info: every code has the status and Sluice-Error string of SPEC.md") {
  struct Row {
    ErrorCode code;
    std::string_view name;
    int status;
  };
  // SPEC.md "Errors sluice itself answers": the status table, the list of
  // codes, and the notes on bad_upgrade (400), header_timeout (408) and
  // upstream_unresolved (502).
  const Row rows[] = {
      {ErrorCode::bad_request, "bad_request", 400},
      {ErrorCode::request_smuggling, "request_smuggling", 400},
      {ErrorCode::upgrade_not_allowed, "upgrade_not_allowed", 400},
      {ErrorCode::bad_upgrade, "bad_upgrade", 400},
      {ErrorCode::origin_forbidden, "origin_forbidden", 403},
      {ErrorCode::path_escape, "path_escape", 400},
      {ErrorCode::no_route, "no_route", 404},
      {ErrorCode::body_too_large, "body_too_large", 413},
      {ErrorCode::headers_too_large, "headers_too_large", 431},
      {ErrorCode::header_timeout, "header_timeout", 408},
      {ErrorCode::upstream_refused, "upstream_refused", 502},
      {ErrorCode::upstream_reset, "upstream_reset", 502},
      {ErrorCode::upstream_bad_response, "upstream_bad_response", 502},
      {ErrorCode::upstream_tls, "upstream_tls", 502},
      {ErrorCode::upstream_unresolved, "upstream_unresolved", 502},
      {ErrorCode::connect_timeout, "connect_timeout", 504},
      {ErrorCode::read_timeout, "read_timeout", 504},
      {ErrorCode::no_healthy_upstream, "no_healthy_upstream", 503},
      {ErrorCode::over_capacity, "over_capacity", 503},
  };
  std::set<std::string_view> seen;
  for (const Row& row : rows) {
    const ErrorInfo& info = error_info(row.code);
    CAPTURE(row.name);
    CHECK(info.code == row.name);
    CHECK(info.status == row.status);
    CHECK_FALSE(info.reason.empty());
    seen.insert(info.code);
  }
  CHECK(seen.size() == 19);  // SPEC.md lists 19 codes, each distinct
}

TEST_CASE("iequals and to_lower compare ASCII without case") {
  CHECK(iequals("Upgrade", "upgrade"));
  CHECK(iequals("WEBSOCKET", "websocket"));
  CHECK_FALSE(iequals("websocket", "websockets"));
  CHECK_FALSE(iequals("a", "b"));
  CHECK(to_lower("API.Example.COM") == "api.example.com");
}
