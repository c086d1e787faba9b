// `sluice explain` JSON (SPEC.md "Command line" and "Details": explain) and
// the admission decisions it reports (SPEC.md "Errors sluice itself answers").

#include <doctest/doctest.h>

#include <string>

#include "sluice/config.h"
#include "sluice/router.h"

using namespace sluice;
using nlohmann::ordered_json;
using router::RouteTable;

namespace {

std::shared_ptr<const config::Config> load(std::string_view toml) {
  config::LoadResult r = config::load_string(toml, "/tmp/x/sluice.toml");
  std::string diags;
  for (const auto& d : r.diagnostics) diags += config::format_diagnostic("sluice.toml", d) + "\n";
  INFO(diags);
  REQUIRE(r.ok());
  return r.config;
}

RouteTable table(std::string_view toml) { return RouteTable(load(toml)); }

ordered_json explain(const RouteTable& t, std::string target, std::string host = "",
                     std::string method = "GET", router::HeaderList headers = {},
                     bool* matched = nullptr) {
  router::ExplainRequest request;
  request.target = std::move(target);
  request.host = std::move(host);
  request.method = std::move(method);
  request.headers = std::move(headers);
  return router::explain(t, request, matched);
}

const config::Route& named(const RouteTable& t, std::string_view name) {
  for (const config::Route& r : t.config().routes)
    if (r.name == name) return r;
  FAIL("no route named " << name);
  return t.config().routes.front();
}

// A valid RFC 6455 client handshake, plus `extra`.
router::HeaderList websocket_handshake(router::HeaderList extra = {}) {
  router::HeaderList h = {{"Host", "app.example.com"},
                          {"Upgrade", "websocket"},
                          {"Connection", "Upgrade"},
                          {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
                          {"Sec-WebSocket-Version", "13"}};
  h.insert(h.end(), extra.begin(), extra.end());
  return h;
}

// The Socket.IO app behind a catch-all gateway, as in SPEC.md's example.
constexpr std::string_view kGateway = R"(
[upstream.gateway]
servers = ["127.0.0.1:8000", "10.0.0.7:8000"]

[[route]]
name = "catchall"
prefix = "/"
upstream = "gateway"

[[route]]
name = "socketio"
prefix = "/socket.io"
upstream = "gateway"
kind = "socketio"
)";

}  // namespace

TEST_CASE("explain: the SPEC example, field by field and in order") {
  RouteTable t = table(kGateway);
  bool matched = false;
  ordered_json j = explain(t, "/socket.io/?EIO=4&transport=polling", "", "GET", {}, &matched);
  CHECK(matched);
  // Verbatim from SPEC.md "Command line"; ordered_json compares key order too.
  ordered_json spec = ordered_json::parse(R"(
    {"route": "socketio", "upstream": "gateway", "kind": "socketio",
     "upstream_target": "/socket.io/?EIO=4&transport=polling", "websocket": true,
     "timeouts": {"connect": "5s", "read": "90s", "tunnel_idle": "1h"},
     "shadowed": [{"route": "catchall", "reason": "shorter prefix /"}]})");
  CHECK(j == spec);
  CHECK(j.dump() == spec.dump());
}

TEST_CASE("explain: the catch-all itself shadows nothing") {
  RouteTable t = table(kGateway);
  bool matched = false;
  ordered_json j = explain(t, "/users/1?x=2", "", "GET", {}, &matched);
  CHECK(matched);
  CHECK(j["route"] == "catchall");
  CHECK(j["upstream"] == "gateway");
  CHECK(j["kind"] == "http");
  CHECK(j["upstream_target"] == "/users/1?x=2");
  CHECK(j["websocket"] == false);
  CHECK(j["shadowed"] == ordered_json::array());
  CHECK_FALSE(j.contains("error"));
}

TEST_CASE("explain: a respond route has upstream null and no connect timeout") {
  RouteTable t = table(R"(
[upstream.u]
servers = ["127.0.0.1:9000"]

[[route]]
name = "root"
prefix = "/"
upstream = "u"

[[route]]
name = "health"
exact = "/healthz"
respond = { status = 200, body = "ok" }
)");
  bool matched = false;
  ordered_json j = explain(t, "/healthz", "", "GET", {}, &matched);
  CHECK(matched);
  CHECK(j["route"] == "health");
  REQUIRE(j.contains("upstream"));
  CHECK(j["upstream"].is_null());
  CHECK(j["websocket"] == false);
  REQUIRE(j["timeouts"].is_object());
  CHECK_FALSE(j["timeouts"].contains("connect"));
  CHECK_FALSE(j["timeouts"].contains("tunnel_idle"));
  CHECK(j["shadowed"] == ordered_json::parse(R"([{"route": "root", "reason": "exact beats prefix"}])"));
  CHECK_FALSE(j.contains("error"));
}

TEST_CASE("explain: a redirect route has upstream null") {
  RouteTable t = table(R"(
[[route]]
name = "to-https"
host = "app.example.com"
prefix = "/"
redirect = { scheme = "https", status = 308 }
)");
  ordered_json j = explain(t, "/x", "app.example.com");
  CHECK(j["route"] == "to-https");
  REQUIRE(j.contains("upstream"));
  CHECK(j["upstream"].is_null());
  CHECK_FALSE(j["timeouts"].contains("connect"));
}

TEST_CASE("explain: an http route has connect and read, no tunnel_idle") {
  RouteTable t = table(R"(
[upstream.api]
servers = ["127.0.0.1:9000"]

[[route]]
name = "api"
prefix = "/api"
upstream = "api"
strip_prefix = true
)");
  ordered_json j = explain(t, "/api/habits?x=1");
  CHECK(j["route"] == "api");
  CHECK(j["upstream"] == "api");
  CHECK(j["kind"] == "http");
  CHECK(j["upstream_target"] == "/habits?x=1");
  CHECK(j["websocket"] == false);
  // 60 s, printed in the largest whole unit (SPEC.md "Details").
  CHECK(j["timeouts"] == ordered_json::parse(R"({"connect": "5s", "read": "1m"})"));
}

TEST_CASE("explain: an sse route has a 1h read and no tunnel_idle") {
  RouteTable t = table(R"(
[upstream.events]
servers = ["127.0.0.1:9000"]

[[route]]
name = "events"
prefix = "/events"
upstream = "events"
kind = "sse"
)");
  ordered_json j = explain(t, "/events/stream");
  CHECK(j["kind"] == "sse");
  CHECK(j["websocket"] == false);
  CHECK(j["timeouts"] == ordered_json::parse(R"({"connect": "5s", "read": "1h"})"));
}

TEST_CASE("explain: a websocket route has tunnel_idle; configured durations print in the largest unit") {
  RouteTable t = table(R"(
[upstream.ws]
servers = ["127.0.0.1:9000"]
connect_timeout = "250ms"

[[route]]
name = "ws"
prefix = "/ws"
upstream = "ws"
kind = "websocket"
read_timeout = "120s"
tunnel_idle = "1800s"
)");
  ordered_json j = explain(t, "/ws/chat");
  CHECK(j["kind"] == "websocket");
  CHECK(j["websocket"] == true);
  CHECK(j["timeouts"] == ordered_json::parse(R"({"connect": "250ms", "read": "2m", "tunnel_idle": "30m"})"));
}

TEST_CASE("explain: shadowed reasons for exact paths and less specific hosts") {
  RouteTable t = table(R"(
[upstream.u]
servers = ["127.0.0.1:9000"]

[[route]]
name = "catchall"
prefix = "/"
upstream = "u"

[[route]]
name = "wild"
host = "*.example.com"
prefix = "/socket.io"
upstream = "u"
kind = "socketio"

[[route]]
name = "app"
host = "app.example.com"
exact = "/socket.io/"
upstream = "u"
kind = "socketio"

[[route]]
name = "app-prefix"
host = "app.example.com"
prefix = "/socket.io"
upstream = "u"
kind = "socketio"
)");
  ordered_json j = explain(t, "/socket.io/?EIO=4", "App.Example.com:8443");
  CHECK(j["route"] == "app");
  CHECK(j["shadowed"] == ordered_json::parse(R"([
    {"route": "app-prefix", "reason": "exact beats prefix"},
    {"route": "wild", "reason": "less specific host"},
    {"route": "catchall", "reason": "less specific host"}])"));

  ordered_json k = explain(t, "/socket.io/x", "app.example.com");
  CHECK(k["route"] == "app-prefix");
  CHECK(k["shadowed"] == ordered_json::parse(R"([
    {"route": "wild", "reason": "less specific host"},
    {"route": "catchall", "reason": "less specific host"}])"));
}

TEST_CASE("explain: without --host only host-less routes match") {
  RouteTable t = table(R"(
[upstream.u]
servers = ["127.0.0.1:9000"]

[[route]]
name = "hosted"
host = "app.example.com"
prefix = "/"
upstream = "u"

[[route]]
name = "hostless"
prefix = "/public"
upstream = "u"
)");
  bool matched = true;
  ordered_json j = explain(t, "/private", "", "GET", {}, &matched);
  CHECK_FALSE(matched);
  CHECK(j["route"].is_null());
  j = explain(t, "/public/x", "", "GET", {}, &matched);
  CHECK(matched);
  CHECK(j["route"] == "hostless");
  CHECK(j["shadowed"] == ordered_json::array());  // "hosted" does not match without a Host
  j = explain(t, "/private", "app.example.com", "GET", {}, &matched);
  CHECK(matched);
  CHECK(j["route"] == "hosted");
}

TEST_CASE("explain: no route gives route null and matched false") {
  RouteTable t = table(R"(
[upstream.u]
servers = ["127.0.0.1:9000"]

[[route]]
name = "api"
prefix = "/api"
upstream = "u"
)");
  bool matched = true;
  ordered_json j = explain(t, "/apix", "", "GET", {}, &matched);
  CHECK_FALSE(matched);
  REQUIRE(j.contains("route"));
  CHECK(j["route"].is_null());
  CHECK(j.begin().key() == "route");
}

TEST_CASE("explain: Upgrade: websocket on an http route is upgrade_not_allowed") {
  RouteTable t = table(R"(
[upstream.u]
servers = ["127.0.0.1:9000"]

[[route]]
name = "api"
prefix = "/api"
upstream = "u"

[[route]]
name = "events"
prefix = "/events"
upstream = "u"
kind = "sse"
)");
  bool matched = false;
  ordered_json j = explain(t, "/api/ws", "", "GET", websocket_handshake(), &matched);
  CHECK(matched);  // a route was found; sluice answers 400 naming it
  CHECK(j["route"] == "api");
  CHECK(j["error"] == "upgrade_not_allowed");
  CHECK(explain(t, "/events", "", "GET", websocket_handshake())["error"] == "upgrade_not_allowed");
  // The token is case-insensitive and may be one of several.
  CHECK(explain(t, "/api", "", "GET", {{"upgrade", "WebSocket"}, {"connection", "upgrade"}})["error"] ==
        "upgrade_not_allowed");
  // Other upgrade tokens are dropped and the request proxied (SPEC: h2c).
  CHECK_FALSE(explain(t, "/api", "", "GET", {{"Upgrade", "h2c"}, {"Connection", "Upgrade, HTTP2-Settings"}})
                  .contains("error"));
  CHECK_FALSE(explain(t, "/api").contains("error"));
}

TEST_CASE("explain: a malformed WebSocket handshake is bad_upgrade") {
  RouteTable t = table(R"(
[upstream.u]
servers = ["127.0.0.1:9000"]

[[route]]
name = "ws"
prefix = "/ws"
upstream = "u"
kind = "websocket"
)");
  auto without = [](std::string_view name) {
    router::HeaderList h = websocket_handshake();
    std::erase_if(h, [&](const auto& kv) { return kv.first == name; });
    return h;
  };
  auto with = [](std::string_view name, std::string value) {
    router::HeaderList h = websocket_handshake();
    for (auto& [k, v] : h)
      if (k == name) v = value;
    return h;
  };
  CHECK_FALSE(explain(t, "/ws", "", "GET", websocket_handshake()).contains("error"));
  CHECK_FALSE(explain(t, "/ws", "", "GET", with("Connection", "keep-alive, Upgrade")).contains("error"));
  CHECK(explain(t, "/ws", "", "GET", without("Sec-WebSocket-Key"))["error"] == "bad_upgrade");
  CHECK(explain(t, "/ws", "", "GET", with("Sec-WebSocket-Version", "8"))["error"] == "bad_upgrade");
  CHECK(explain(t, "/ws", "", "GET", without("Sec-WebSocket-Version"))["error"] == "bad_upgrade");
  CHECK(explain(t, "/ws", "", "GET", with("Sec-WebSocket-Key", "abc"))["error"] == "bad_upgrade");
  CHECK(explain(t, "/ws", "", "POST", websocket_handshake())["error"] == "bad_upgrade");
}

TEST_CASE("explain: an Origin not in allowed_origins is origin_forbidden") {
  RouteTable t = table(R"(
[upstream.u]
servers = ["127.0.0.1:9000"]

[[route]]
name = "ws"
prefix = "/ws"
upstream = "u"
kind = "websocket"
allowed_origins = ["https://app.example.com"]

[[route]]
name = "socketio"
prefix = "/socket.io"
upstream = "u"
kind = "socketio"
allowed_origins = ["https://app.example.com"]

[[route]]
name = "open"
prefix = "/open"
upstream = "u"
kind = "websocket"
)");
  auto origin = [](std::string o) { return websocket_handshake({{"Origin", std::move(o)}}); };
  CHECK(explain(t, "/ws", "", "GET", origin("https://evil.example.net"))["error"] == "origin_forbidden");
  CHECK_FALSE(explain(t, "/ws", "", "GET", origin("https://app.example.com")).contains("error"));
  // No Origin: a non-browser client, allowed.
  CHECK_FALSE(explain(t, "/ws", "", "GET", websocket_handshake()).contains("error"));
  // No allowed_origins: every origin.
  CHECK_FALSE(explain(t, "/open", "", "GET", origin("https://evil.example.net")).contains("error"));
  // On socketio routes the check also covers polling requests.
  CHECK(explain(t, "/socket.io/?EIO=4&transport=polling", "", "GET", {{"Origin", "https://evil.example.net"}})
            ["error"] == "origin_forbidden");
  CHECK_FALSE(explain(t, "/socket.io/?EIO=4&transport=polling", "", "GET", {{"Origin", "https://app.example.com"}})
                  .contains("error"));
}

TEST_CASE("explain: a path climbing above the prefix is path_escape") {
  RouteTable t = table(R"(
[upstream.u]
servers = ["127.0.0.1:9000"]

[[route]]
name = "api"
prefix = "/api"
upstream = "u"
strip_prefix = true
)");
  bool matched = false;
  ordered_json j = explain(t, "/api/../admin", "", "GET", {}, &matched);
  CHECK(matched);
  CHECK(j["route"] == "api");
  CHECK(j["upstream_target"].is_null());
  CHECK(j["error"] == "path_escape");
  CHECK(explain(t, "/api/%2e%2e/admin")["error"] == "path_escape");
  CHECK(explain(t, "/api/a/../b")["upstream_target"] == "/a/../b");
  CHECK_FALSE(explain(t, "/api/a/../b").contains("error"));
}

TEST_CASE("admission: the decisions explain reports, from request line and headers alone") {
  RouteTable t = table(R"(
[upstream.u]
servers = ["127.0.0.1:9000"]

[[route]]
name = "http"
prefix = "/http"
upstream = "u"

[[route]]
name = "ws"
prefix = "/ws"
upstream = "u"
kind = "websocket"
allowed_origins = ["https://app.example.com"]
)");
  using base::ErrorCode;
  const config::Route& http = named(t, "http");
  const config::Route& ws = named(t, "ws");
  CHECK_FALSE(router::admission(http, "GET", {}).has_value());
  CHECK_FALSE(router::admission(http, "POST", {{"Content-Length", "3"}}).has_value());
  CHECK(router::admission(http, "GET", websocket_handshake()) == ErrorCode::upgrade_not_allowed);
  CHECK_FALSE(router::admission(ws, "GET", websocket_handshake()).has_value());
  CHECK(router::admission(ws, "PUT", websocket_handshake()) == ErrorCode::bad_upgrade);
  CHECK(router::admission(ws, "GET", websocket_handshake({{"Origin", "https://other.example.com"}})) ==
        ErrorCode::origin_forbidden);
  // A plain request on a websocket route is not a handshake: no Origin check.
  CHECK_FALSE(router::admission(ws, "GET", {{"Origin", "https://other.example.com"}}).has_value());
}

TEST_CASE("explain: regressions") {
  // [explain-utf8] found by fuzzing: admin /explain decodes %ff into a byte
  // that is not UTF-8, and a strict dump threw inside a libuv callback.
  nlohmann::ordered_json j = {{"route", nullptr}, {"upstream_target", "/caf\xe9"}};
  std::string text;
  CHECK_NOTHROW(text = router::json_text(j));
  CHECK(text == "{\"route\":null,\"upstream_target\":\"/caf\xef\xbf\xbd\"}");
  CHECK(nlohmann::ordered_json::parse(text)["upstream_target"] == "/caf\xef\xbf\xbd");
}
