// One TEST_CASE per validation rule of SPEC.md and issue 2, each asserting
// the exact line:column of the diagnostic.

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "config_test_support.h"
#include "sluice/config.h"

using namespace sluice;
using config::Severity;

namespace {

// Relative paths in these configs resolve against /cfg (messages name them).
config::LoadResult load(std::string_view toml) { return config::load_string(toml, "/cfg/sluice.toml"); }

// The diagnostic at line:col with `severity` whose message contains `text`.
bool has(const config::LoadResult& r, uint32_t line, uint32_t col, Severity severity, std::string_view text) {
  return config::testing::find_diag(r, line, col, severity).find(text) != std::string::npos;
}

using config::testing::dump;

constexpr std::string_view kUpstream = R"(
[upstream.api]
servers = ["127.0.0.1:9000"]
)";

}  // namespace

TEST_CASE("a minimal valid config loads with the SPEC defaults") {
  auto r = load(std::string(kUpstream) + R"(
[[route]]
name = "api"
prefix = "/api/"
upstream = "api"
)");
  INFO(dump(r));
  REQUIRE(r.ok());
  const config::Config& c = *r.config;
  CHECK(c.server.workers == 0);
  CHECK(c.server.drain_timeout == std::chrono::seconds(30));
  CHECK(c.server.max_connections == 100000);
  CHECK(c.server.access_log == "stdout");
  CHECK(c.server.max_header_size == 32 * 1024);
  CHECK(c.server.header_timeout == std::chrono::seconds(10));
  CHECK(c.server.keepalive_timeout == std::chrono::seconds(75));
  REQUIRE(c.listeners.size() == 1);
  CHECK(c.listeners[0].address == "0.0.0.0:8080");
  REQUIRE(c.admin.has_value());
  CHECK(c.admin->address == "127.0.0.1:9901");
  const config::Upstream& u = c.upstreams.at(0);
  CHECK(u.balance == config::Balance::round_robin);
  CHECK(u.affinity == config::Affinity::none);
  CHECK(u.connect_timeout == std::chrono::seconds(5));
  CHECK(u.keepalive == 32);
  CHECK(u.resolve_interval == std::chrono::seconds(5));
  CHECK_FALSE(u.host_header.has_value());
  const config::Route& route = c.routes.at(0);
  CHECK(route.path == "/api");  // "/api/" and "/api" are one prefix
  CHECK(route.kind == config::RouteKind::http);
  CHECK_FALSE(route.strip_prefix);
  CHECK(route.read_timeout == std::chrono::seconds(60));
  CHECK_FALSE(route.max_body.has_value());
  CHECK(r.diagnostics.empty());
}

TEST_CASE("read_timeout defaults per kind: http 60s, websocket 60s, socketio 90s, sse 1h") {
  for (auto [kind, expected] : {std::pair{"http", 60}, {"websocket", 60}, {"socketio", 90}, {"sse", 3600}}) {
    auto r = load(std::string(kUpstream) + "[[route]]\nname = \"r\"\nprefix = \"/\"\nupstream = \"api\"\nkind = \"" + kind + "\"\n");
    REQUIRE(r.ok());
    CAPTURE(kind);
    CHECK(r.config->routes[0].read_timeout == std::chrono::seconds(expected));
    CHECK(r.config->routes[0].tunnel_idle == std::chrono::hours(1));
  }
}

TEST_CASE("every key of the schema is accepted") {
  auto dir = std::filesystem::temp_directory_path() / "sluice-config-test";
  std::filesystem::create_directories(dir / "tls");
  for (const char* f : {"tls/cert.pem", "tls/key.pem", "tls/api.pem", "tls/api.key", "tls/ca.pem"}) {
    std::ofstream(dir / f) << "x";
  }
  auto r = config::load_string(R"(
[server]
workers = 4
drain_timeout = "45s"
max_connections = 5000
access_log = "logs/access.log"
watch_config = true
max_header_size = "64KiB"
header_timeout = "5s"
keepalive_timeout = "2m"

[[listener]]
address = "0.0.0.0:8080"

[[listener]]
address = "[::]:8443"
[listener.tls]
cert = "tls/cert.pem"
key = "tls/key.pem"
[[listener.tls.sni]]
host = "API.example.com"
cert = "tls/api.pem"
key = "tls/api.key"

[admin]
address = "127.0.0.1:9901"

[upstream.gateway]
servers = ["127.0.0.1:8000", "dns:gw.default.svc.cluster.local:8000", "[::1]:8001"]
resolve_interval = "10s"
balance = "least_conn"
affinity = "engine.io"
connect_timeout = "250ms"
keepalive = 8
host_header = "gateway.internal"
health = { path = "/ready", interval = "3s", timeout = "1s", fails = 2, passes = 1 }
tls = { verify = true, ca = "tls/ca.pem", sni = "gateway.internal" }

[[route]]
name = "socketio"
prefix = "/socket.io"
host = "*.Example.com"
upstream = "gateway"
kind = "socketio"
read_timeout = "2m"
tunnel_idle = "30m"
ping_interval = "10s"
ping_timeout = "5s"
allowed_origins = ["https://app.example.com"]
max_body = "10MiB"

[[route]]
name = "api"
prefix = "/api"
upstream = "gateway"
rewrite_prefix = "/v2"

[[route]]
name = "health"
exact = "/healthz"
respond = { status = 204, body = "", content_type = "text/plain" }

[[route]]
name = "to-https"
host = "app.example.com"
prefix = "/"
redirect = { scheme = "https", status = 301, port = 8443 }
)", (dir / "sluice.toml").string());
  INFO(dump(r));
  REQUIRE(r.ok());
  const config::Config& c = *r.config;
  CHECK(c.server.workers == 4);
  CHECK(c.server.access_log == (dir / "logs/access.log").string());
  CHECK(c.server.max_header_size == 64 * 1024);
  CHECK(c.server.keepalive_timeout == std::chrono::minutes(2));
  REQUIRE(c.listeners.size() == 2);
  REQUIRE(c.listeners[1].tls.has_value());
  CHECK(c.listeners[1].bind.host == "::");
  CHECK(c.listeners[1].tls->default_cert.cert == (dir / "tls/cert.pem").string());
  CHECK(c.listeners[1].tls->sni.at(0).host == "api.example.com");
  const config::Upstream& u = c.upstreams.at(0);
  CHECK(u.servers.size() == 3);
  CHECK(u.servers[1].dns);
  CHECK(u.servers[1].address.host == "gw.default.svc.cluster.local");
  CHECK(u.servers[2].address.host == "::1");
  CHECK(u.balance == config::Balance::least_conn);
  CHECK(u.affinity == config::Affinity::engine_io);
  CHECK(u.connect_timeout == std::chrono::milliseconds(250));
  CHECK(u.host_header == "gateway.internal");
  REQUIRE(u.health.has_value());
  CHECK(u.health->path == "/ready");
  CHECK(u.health->fails == 2);
  REQUIRE(u.tls.has_value());
  CHECK(u.tls->ca == (dir / "tls/ca.pem").string());
  const config::Route& sio = c.routes.at(0);
  CHECK(sio.host == "*.example.com");
  CHECK(sio.is_wildcard_host());
  CHECK(sio.max_body == 10u * 1024 * 1024);
  CHECK(sio.allowed_origins->at(0) == "https://app.example.com");
  CHECK(c.routes.at(1).rewrite_prefix == "/v2");
  CHECK(c.routes.at(2).respond->status == 204);
  CHECK(c.routes.at(3).redirect->port == 8443);
  CHECK(c.routes.at(3).redirect->status == 301);
  std::filesystem::remove_all(dir);
}

TEST_CASE("unknown keys are errors at the key, with a spelling hint") {
  auto r = load(R"([server]
workers = 1
drain_timout = "30s"
[[route]]
name = "x"
prefx = "/"
respond = {}
)");
  INFO(dump(r));
  CHECK_FALSE(r.ok());
  CHECK(has(r, 3, 1, Severity::error, "unknown key 'drain_timout' (did you mean 'drain_timeout'?)"));
  CHECK(has(r, 6, 1, Severity::error, "unknown key 'prefx' (did you mean 'prefix'?)"));
  auto top = load("[sever]\nworkers = 1\n");
  CHECK(has(top, 1, 2, Severity::error, "unknown key 'sever' (did you mean 'server'?)"));
  auto inline_table = load(std::string(kUpstream) + "[[route]]\nname = \"h\"\nexact = \"/h\"\nrespond = { status = 200, bdy = \"ok\" }\n");
  INFO(dump(inline_table));
  CHECK(has(inline_table, 7, 27, Severity::error, "unknown key 'bdy'"));
}

TEST_CASE("wrong types are errors at the value") {
  auto r = load(R"([server]
workers = "4"
watch_config = 1
[upstream.a]
servers = "127.0.0.1:1"
)");
  INFO(dump(r));
  CHECK(has(r, 2, 11, Severity::error, "'workers' must be an integer, not a string"));
  CHECK(has(r, 3, 16, Severity::error, "'watch_config' must be true or false, not an integer"));
  CHECK(has(r, 5, 11, Severity::error, "'servers' must be an array of strings, not a string"));
}

TEST_CASE("durations and sizes need a unit") {
  auto r = load(R"([server]
drain_timeout = "30"
header_timeout = 10
keepalive_timeout = "1.5s"
max_header_size = "32KB"
)");
  INFO(dump(r));
  CHECK(has(r, 2, 17, Severity::error, "is not a duration"));
  CHECK(has(r, 3, 18, Severity::error, "must be a duration string with a unit"));
  CHECK(has(r, 4, 21, Severity::error, "is not a duration"));
  CHECK(has(r, 5, 19, Severity::error, "is not a size"));
  auto zero = load("[server]\ndrain_timeout = \"0s\"\n");
  CHECK(has(zero, 2, 17, Severity::error, "must be longer than 0"));
}

TEST_CASE("server addresses need a port; names need dns:") {
  auto r = load(R"([upstream.a]
servers = ["127.0.0.1", "10.0.0.1:99999", "gateway:8000", "dns:gateway", "[::1]8000", "127.0.0.1:0"]
)");
  INFO(dump(r));
  CHECK(has(r, 2, 12, Severity::error, "\"127.0.0.1\": missing port"));
  CHECK(has(r, 2, 25, Severity::error, "out of range"));
  CHECK(has(r, 2, 43, Severity::error, "write \"dns:gateway:8000\""));
  CHECK(has(r, 2, 59, Severity::error, "\"dns:gateway\": missing port"));
  CHECK(has(r, 2, 74, Severity::error, "missing port"));
  CHECK(has(r, 2, 87, Severity::error, "port 0 cannot be connected to"));
  auto empty = load("[upstream.a]\nservers = []\n");
  CHECK(has(empty, 2, 11, Severity::error, "'servers' is empty"));
  auto missing = load("[upstream.a]\nbalance = \"random\"\n");
  CHECK(has(missing, 1, 1, Severity::error, "'servers' is required"));
}

TEST_CASE("enumerations list their values") {
  auto r = load(R"([upstream.a]
servers = ["127.0.0.1:1"]
balance = "roundrobin"
affinity = "sticky"
[[route]]
name = "r"
prefix = "/"
upstream = "a"
kind = "ws"
)");
  INFO(dump(r));
  CHECK(has(r, 3, 11, Severity::error, "round_robin | least_conn | random | ip_hash"));
  CHECK(has(r, 4, 12, Severity::error, "none | engine.io | cookie"));
  CHECK(has(r, 9, 8, Severity::error, "http | websocket | socketio | sse"));
}

TEST_CASE("duplicate routes: same host and same path, whatever the order or trailing slash") {
  auto r = load(std::string(kUpstream) + R"(
[[route]]
name = "a"
prefix = "/api"
upstream = "api"

[[route]]
name = "b"
prefix = "/api/"
upstream = "api"
)");
  INFO(dump(r));
  CHECK_FALSE(r.ok());
  CHECK(has(r, 12, 10, Severity::error, "route 'b': matches the same requests as route 'a' (line 5)"));
}

TEST_CASE("same path on different hosts, or exact and prefix on one path, is fine") {
  auto r = load(std::string(kUpstream) + R"(
[[route]]
name = "a"
prefix = "/api"
upstream = "api"
[[route]]
name = "b"
prefix = "/api"
host = "x.example.com"
upstream = "api"
[[route]]
name = "c"
exact = "/api"
upstream = "api"
[[route]]
name = "d"
prefix = "/api"
host = "*.example.com"
upstream = "api"
)");
  INFO(dump(r));
  CHECK(r.ok());
}

TEST_CASE("duplicate exact routes and host case do not hide a conflict") {
  auto r = load(std::string(kUpstream) + R"(
[[route]]
name = "a"
exact = "/x"
host = "App.example.com"
upstream = "api"
[[route]]
name = "b"
exact = "/x"
host = "app.EXAMPLE.com"
upstream = "api"
)");
  INFO(dump(r));
  CHECK(has(r, 12, 9, Severity::error, "same host (app.example.com) and same exact /x"));
}

TEST_CASE("unknown upstream names the ones defined") {
  auto r = load(std::string(kUpstream) + "[[route]]\nname = \"r\"\nprefix = \"/\"\nupstream = \"apii\"\n");
  INFO(dump(r));
  CHECK(has(r, 7, 12, Severity::error, "unknown upstream 'apii' (defined: api)"));
}

TEST_CASE("strip_prefix together with rewrite_prefix is an error") {
  auto r = load(std::string(kUpstream) + R"([[route]]
name = "r"
prefix = "/api"
upstream = "api"
strip_prefix = true
rewrite_prefix = "/v2"
)");
  CHECK(has(r, 9, 18, Severity::error, "'strip_prefix' and 'rewrite_prefix' exclude each other"));
}

TEST_CASE("a route needs exactly one of upstream, respond, redirect") {
  auto none = load("[[route]]\nname = \"r\"\nprefix = \"/\"\n");
  CHECK(has(none, 1, 1, Severity::error, "needs 'upstream', 'respond' or 'redirect'"));
  auto both = load(std::string(kUpstream) + "[[route]]\nname = \"r\"\nprefix = \"/\"\nupstream = \"api\"\nrespond = { body = \"x\" }\n");
  INFO(dump(both));
  CHECK(has(both, 7, 12, Severity::error, "has both 'upstream' and 'respond'"));
  auto two_local = load("[[route]]\nname = \"r\"\nprefix = \"/\"\nrespond = {}\nredirect = { location = \"/x\" }\n");
  CHECK(has(two_local, 5, 12, Severity::error, "either 'respond' or 'redirect', not both"));
}

TEST_CASE("route paths: exactly one of exact/prefix, starting with '/', no dot segments") {
  auto r = load(R"([[route]]
name = "a"
prefix = "api"
respond = {}
[[route]]
name = "b"
respond = {}
[[route]]
name = "c"
prefix = "/a/../b"
respond = {}
[[route]]
name = "d"
prefix = "/a"
exact = "/a"
respond = {}
[[route]]
name = "e"
prefix = "/a?x=1"
respond = {}
)");
  INFO(dump(r));
  CHECK(has(r, 3, 10, Severity::error, "must start with '/'"));
  CHECK(has(r, 5, 1, Severity::error, "needs 'prefix' or 'exact'"));
  CHECK(has(r, 10, 10, Severity::error, "contains a '..' segment"));
  CHECK(has(r, 14, 10, Severity::error, "either 'exact' or 'prefix', not both"));
  CHECK(has(r, 19, 10, Severity::error, "the query string is never part of matching"));
}

TEST_CASE("route names are required and unique") {
  auto r = load("[[route]]\nprefix = \"/\"\nrespond = {}\n[[route]]\nname = \"x\"\nexact = \"/a\"\nrespond = {}\n[[route]]\nname = \"x\"\nexact = \"/b\"\nrespond = {}\n");
  CHECK(has(r, 1, 1, Severity::error, "'name' is required"));
  CHECK(has(r, 8, 1, Severity::error, "the name is already used by the route at line 4"));
}

TEST_CASE("route hosts: names or one leading wildcard label, no port") {
  auto r = load(R"([[route]]
name = "a"
host = "app.example.com:8080"
prefix = "/"
respond = {}
[[route]]
name = "b"
host = "a.*.example.com"
prefix = "/"
respond = {}
[[route]]
name = "c"
host = "*."
prefix = "/"
respond = {}
)");
  CHECK(has(r, 3, 8, Severity::error, "carries a port"));
  CHECK(has(r, 8, 8, Severity::error, "'*' only as the whole first label"));
  CHECK(has(r, 13, 8, Severity::error, "nothing after '*.'"));
}

TEST_CASE("listener addresses: IP literals, no duplicates or overlaps, admin included") {
  auto r = load(R"([[listener]]
address = "0.0.0.0:8080"
[[listener]]
address = "127.0.0.1:8080"
[[listener]]
address = "localhost:9000"
[[listener]]
address = "127.0.0.1:7000"
[admin]
address = "127.0.0.1:7000"
)");
  INFO(dump(r));
  CHECK(has(r, 4, 11, Severity::error, "overlaps the listener 0.0.0.0:8080 at line 2"));
  CHECK(has(r, 6, 11, Severity::error, "the host must be an IP address"));
  CHECK(has(r, 10, 11, Severity::error, "[admin]: address 127.0.0.1:7000 overlaps"));
  auto ok = load("[[listener]]\naddress = \"127.0.0.1:0\"\n[[listener]]\naddress = \"127.0.0.1:0\"\n[admin]\naddress = \"127.0.0.1:0\"\n");
  CHECK(ok.ok());  // port 0: every bind gets its own port
  auto table = load("[listener]\naddress = \"0.0.0.0:1\"\n");
  CHECK(has(table, 1, 1, Severity::error, "write [[listener]]"));
}

TEST_CASE("TLS files that do not exist are errors at their key") {
  auto r = load(R"([[listener]]
address = "0.0.0.0:8443"
[listener.tls]
cert = "tls/missing.pem"
key = "/nonexistent/key.pem"
[upstream.a]
servers = ["127.0.0.1:1"]
tls = { ca = "ca.pem" }
)");
  INFO(dump(r));
  CHECK(has(r, 4, 8, Severity::error, "cert file \"/cfg/tls/missing.pem\" does not exist"));
  CHECK(has(r, 5, 7, Severity::error, "key file \"/nonexistent/key.pem\" does not exist"));
  CHECK(has(r, 8, 14, Severity::error, "ca file \"/cfg/ca.pem\" does not exist"));
  auto missing_key = load("[[listener]]\naddress = \"0.0.0.0:8443\"\n[listener.tls]\n");
  CHECK(has(missing_key, 3, 1, Severity::error, "'cert' is required"));
}

TEST_CASE("warning: socketio read_timeout shorter than the Engine.IO heartbeat") {
  auto r = load(std::string(kUpstream) + R"([[route]]
name = "sio"
prefix = "/socket.io"
upstream = "api"
kind = "socketio"
read_timeout = "40s"
)");
  INFO(dump(r));
  CHECK(r.ok());
  CHECK(has(r, 9, 16, Severity::warning, "read_timeout 40s is shorter than the Engine.IO heartbeat (ping_interval 25s + ping_timeout 20s = 45s)"));
  auto tuned = load(std::string(kUpstream) + "[[route]]\nname = \"sio\"\nprefix = \"/socket.io\"\nupstream = \"api\"\nkind = \"socketio\"\nread_timeout = \"40s\"\nping_interval = \"10s\"\nping_timeout = \"5s\"\n");
  CHECK(tuned.diagnostics.empty());
}

TEST_CASE("warning: affinity with a single server") {
  auto r = load("[upstream.a]\nservers = [\"127.0.0.1:1\"]\naffinity = \"cookie\"\n");
  CHECK(r.ok());
  CHECK(has(r, 2, 12, Severity::warning, "has no effect with a single server"));
  auto dns = load("[upstream.a]\nservers = [\"dns:svc.local:1\"]\naffinity = \"engine.io\"\n");
  CHECK(dns.diagnostics.empty());  // a dns: name may resolve to many pods
}

TEST_CASE("warning: a catch-all http route next to a realtime one says who wins /socket.io") {
  auto r = load(std::string(kUpstream) + R"([[route]]
name = "catchall"
prefix = "/"
upstream = "api"
[[route]]
name = "sio"
prefix = "/socket.io"
upstream = "api"
kind = "socketio"
)");
  INFO(dump(r));
  CHECK(r.ok());
  CHECK(has(r, 6, 10, Severity::warning, "socketio route 'sio' still wins for /socket.io (longer prefix)"));
}

TEST_CASE("warning: a catch-all on an exact host hides a host-less realtime route") {
  auto r = load(std::string(kUpstream) + R"([[route]]
name = "web"
host = "www.example.com"
prefix = "/"
upstream = "api"
[[route]]
name = "sio"
prefix = "/socket.io"
upstream = "api"
kind = "socketio"
)");
  CHECK(r.ok());
  INFO(dump(r));
  CHECK(has(r, 7, 10, Severity::warning, "is never reached for www.example.com"));
}

TEST_CASE("warning: verify = false on upstream TLS") {
  auto r = load("[upstream.a]\nservers = [\"127.0.0.1:1\"]\ntls = { verify = false }\n");
  CHECK(r.ok());
  INFO(dump(r));
  CHECK(has(r, 3, 18, Severity::warning, "verify = false accepts any certificate"));
}

TEST_CASE("TOML syntax errors carry their position") {
  auto r = load("[server]\nworkers = \n");
  CHECK_FALSE(r.ok());
  REQUIRE(r.diagnostics.size() == 1);
  CHECK(r.diagnostics[0].pos.line == 2);
}

TEST_CASE("format_diagnostic prints FILE:LINE:COL: severity: message") {
  config::Diagnostic d{Severity::warning, {3, 7}, "something"};
  CHECK(config::format_diagnostic("conf/x.toml", d) == "conf/x.toml:3:7: warning: something");
  config::Diagnostic e{Severity::error, {}, "cannot read"};
  CHECK(config::format_diagnostic("x.toml", e) == "x.toml: error: cannot read");
}

TEST_CASE("regressions: diagnostics come back sorted by position") {
  auto r = load("[[route]]\nname = \"z\"\nprefix = \"/\"\nupstream = \"nope\"\n[server]\nworkers = -1\n");
  REQUIRE(r.diagnostics.size() >= 2);
  for (size_t i = 1; i < r.diagnostics.size(); ++i) {
    CHECK(r.diagnostics[i - 1].pos.line <= r.diagnostics[i].pos.line);
  }
}
