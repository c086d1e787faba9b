// Reading the config (SPEC.md "Configuration" and "Details"): every section
// and key, the defaults, durations and sizes with their units, wrong types,
// unknown keys, server addresses and file paths. Every problem is asserted at
// the exact line:column it is reported at. Cross-table rules are in
// validate_test.cc.

#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "config_test_support.h"
#include "sluice/config.h"

using namespace std::chrono_literals;
namespace config = sluice::config;
namespace fs = std::filesystem;
using config::LoadResult;
using config::Severity;

using namespace sluice::config::testing;

namespace {

// The smallest valid route, for configs about other tables.
constexpr std::string_view kHealthRoute = R"(
[[route]]
name = "health"
exact = "/healthz"
respond = {}
)";

}  // namespace

// ---------------------------------------------------------------- [server]

TEST_CASE("server: every setting has the SPEC default when [server] is absent") {
  auto r = load(kHealthRoute);
  INFO(dump(r));
  REQUIRE(r.ok());
  CHECK(r.diagnostics.empty());
  const config::ServerSettings& s = r.config->server;
  CHECK(s.workers == 0);
  CHECK(s.drain_timeout == 30s);
  CHECK(s.max_connections == 100000);
  CHECK(s.access_log == "stdout");
  CHECK_FALSE(s.watch_config);
  CHECK(s.max_header_size == 32 * 1024);
  CHECK(s.header_timeout == 10s);
  CHECK(s.keepalive_timeout == 75s);
  CHECK(r.config->file == kFile);
  CHECK(r.config->dir == "/nonexistent/sluice");
}

TEST_CASE("server: an empty [server] table keeps every default") {
  auto r = load(std::string("[server]\n") + std::string(kHealthRoute));
  INFO(dump(r));
  REQUIRE(r.ok());
  CHECK(r.config->server.drain_timeout == 30s);
  CHECK(r.config->server.max_connections == 100000);
  CHECK(r.config->server.keepalive_timeout == 75s);
}

TEST_CASE("server: every key is read") {
  auto r = load(R"([server]
workers = 8
drain_timeout = "45s"
max_connections = 2000
access_log = "off"
watch_config = true
max_header_size = "64KiB"
header_timeout = "3s"
keepalive_timeout = "2m"
)");
  INFO(dump(r));
  REQUIRE(r.ok());
  CHECK(r.diagnostics.empty());
  const config::ServerSettings& s = r.config->server;
  CHECK(s.workers == 8);
  CHECK(s.drain_timeout == 45s);
  CHECK(s.max_connections == 2000);
  CHECK(s.access_log == "off");
  CHECK(s.watch_config);
  CHECK(s.max_header_size == 64 * 1024);
  CHECK(s.header_timeout == 3s);
  CHECK(s.keepalive_timeout == 2min);
}

TEST_CASE("server: out-of-range values are errors at the value") {
  auto r = load(R"([server]
workers = -1
max_connections = 0
max_header_size = "512B"
access_log = ""
)");
  INFO(dump(r));
  CHECK_FALSE(r.ok());
  CHECK(find_diag(r, 2, 11).find("'workers' must be between 0 and 1024, not -1") != npos);
  CHECK(find_diag(r, 3, 19).find("'max_connections' must be between 1 and") != npos);
  CHECK(find_diag(r, 4, 19).find("'max_header_size' must be at least 1KiB") != npos);
  CHECK(find_diag(r, 5, 14).find("'access_log' must be \"stdout\", \"off\" or a file path") != npos);
  CHECK(count(r, Severity::error) == 4);
}

TEST_CASE("server: access_log keeps stdout/off and resolves file paths against the config's directory") {
  auto access_log = [](std::string_view value, const std::string& file) {
    auto r = config::load_string("[server]\naccess_log = \"" + std::string(value) + "\"\n", file);
    INFO(dump(r));
    REQUIRE(r.ok());
    return r.config->server.access_log;
  };
  SUBCASE("stdout and off are keywords, not files") {
    CHECK(access_log("stdout", kFile) == "stdout");
    CHECK(access_log("off", kFile) == "off");
  }
  SUBCASE("a relative path is relative to the config file's directory, not the working directory") {
    CHECK(access_log("access.log", kFile) == "/nonexistent/sluice/access.log");
    CHECK(access_log("logs/access.log", kFile) == "/nonexistent/sluice/logs/access.log");
    CHECK(access_log("../log/access.log", kFile) == "/nonexistent/log/access.log");
    CHECK(access_log("logs/access.log", "conf/sluice.toml") == "conf/logs/access.log");
  }
  SUBCASE("an absolute path is kept") {
    CHECK(access_log("/var/log/sluice/access.log", kFile) == "/var/log/sluice/access.log");
  }
  SUBCASE("a config file without a directory part leaves the path relative to where it is") {
    CHECK(access_log("logs/access.log", "sluice.toml") == "logs/access.log");
  }
}

// ------------------------------------------------------ [[listener]] / [admin]

TEST_CASE("listener and admin: defaults when the config has neither") {
  auto r = load(kHealthRoute);
  INFO(dump(r));
  REQUIRE(r.ok());
  REQUIRE(r.config->listeners.size() == 1);
  const config::Listener& l = r.config->listeners[0];
  CHECK(l.address == "0.0.0.0:8080");
  CHECK(l.bind.host == "0.0.0.0");
  CHECK(l.bind.port == 8080);
  CHECK_FALSE(l.tls.has_value());
  REQUIRE(r.config->admin.has_value());
  CHECK(r.config->admin->address == "127.0.0.1:9901");
  CHECK(r.config->admin->bind.host == "127.0.0.1");
  CHECK(r.config->admin->bind.port == 9901);
}

TEST_CASE("listener and admin: given listeners replace the default, admin keeps its own default") {
  auto r = load(R"([[listener]]
address = "127.0.0.1:8000"
)");
  INFO(dump(r));
  REQUIRE(r.ok());
  REQUIRE(r.config->listeners.size() == 1);
  CHECK(r.config->listeners[0].address == "127.0.0.1:8000");
  REQUIRE(r.config->admin.has_value());
  CHECK(r.config->admin->address == "127.0.0.1:9901");
}

TEST_CASE("listener addresses: IPv4, IPv6 in brackets, port 0; positions of the address") {
  auto r = load(R"([[listener]]
address = "0.0.0.0:8080"
[[listener]]
address = "[::]:8443"
[[listener]]
address = "127.0.0.1:0"
[admin]
address = "[::1]:9901"
)");
  INFO(dump(r));
  REQUIRE(r.ok());
  CHECK(r.diagnostics.empty());
  const auto& ls = r.config->listeners;
  REQUIRE(ls.size() == 3);
  CHECK(ls[0].bind.host == "0.0.0.0");
  CHECK(ls[0].bind.port == 8080);
  CHECK(ls[0].pos.line == 2);
  CHECK(ls[0].pos.column == 11);
  CHECK(ls[1].address == "[::]:8443");
  CHECK(ls[1].bind.host == "::");  // without the brackets
  CHECK(ls[1].bind.port == 8443);
  CHECK(ls[1].pos.line == 4);
  CHECK(ls[2].bind.port == 0);  // any free port
  REQUIRE(r.config->admin.has_value());
  CHECK(r.config->admin->bind.host == "::1");
  CHECK(r.config->admin->bind.port == 9901);
  CHECK(r.config->admin->pos.line == 8);
  CHECK(r.config->admin->pos.column == 11);
}

TEST_CASE("listener addresses: the port is required and the host must be an IP address") {
  auto r = load(R"([[listener]]
address = "0.0.0.0"
[[listener]]
address = "localhost:8080"
[[listener]]
address = "::1:8080"
[[listener]]
address = "[::1]"
[[listener]]
address = "0.0.0.0:65536"
[admin]
address = "127.0.0.1:admin"
)");
  INFO(dump(r));
  CHECK_FALSE(r.ok());
  CHECK(find_diag(r, 2, 11).find("address \"0.0.0.0\": missing port") != npos);
  CHECK(find_diag(r, 4, 11).find("the host must be an IP address") != npos);
  CHECK(find_diag(r, 6, 11).find("IPv6 addresses must be written in brackets") != npos);
  CHECK(find_diag(r, 8, 11).find("missing port") != npos);
  CHECK(find_diag(r, 10, 11).find("out of range") != npos);
  CHECK(find_diag(r, 12, 11).find("[admin]: address \"127.0.0.1:admin\"") != npos);
  CHECK(find_diag(r, 12, 11).find("is not a number") != npos);
  CHECK(count(r, Severity::error) == 6);
}

TEST_CASE("listener: address is required; [listener] must be an array of tables") {
  SUBCASE("no address") {
    auto r = load("[[listener]]\n[admin]\n");
    INFO(dump(r));
    CHECK_FALSE(r.ok());
    CHECK(find_diag(r, 1, 1).find("[[listener]]: 'address' is required") != npos);
    CHECK(find_diag(r, 2, 1).find("[admin]: 'address' is required") != npos);
  }
  SUBCASE("a plain table") {
    auto r = load("[listener]\naddress = \"0.0.0.0:8080\"\n");
    INFO(dump(r));
    CHECK_FALSE(r.ok());
    CHECK(find_diag(r, 1, 1).find("write [[listener]]") != npos);
  }
  SUBCASE("address of the wrong type") {
    auto r = load("[[listener]]\naddress = 8080\n");
    INFO(dump(r));
    CHECK_FALSE(r.ok());
    CHECK(find_diag(r, 2, 11).find("'address' must be a string, not an integer") != npos);
  }
}

// ------------------------------------------------------------- listener TLS

TEST_CASE("listener TLS: existing files are accepted, relative paths resolve against the config directory") {
  TempDir dir;
  dir.touch("tls/cert.pem");
  dir.touch("tls/key.pem");
  dir.touch("tls/api.pem");
  dir.touch("tls/api.key");
  dir.touch("wild.pem");
  dir.touch("wild.key");
  std::string abs_key = dir.file("tls/key.pem");
  auto r = config::load_string(R"([[listener]]
address = "0.0.0.0:8443"
[listener.tls]
cert = "tls/cert.pem"
key = ")" + abs_key + R"("
[[listener.tls.sni]]
host = "API.Example.com"
cert = "tls/api.pem"
key = "tls/../tls/api.key"
[[listener.tls.sni]]
host = "*.example.org"
cert = "./wild.pem"
key = "wild.key"
[[listener]]
address = "0.0.0.0:8080"
)", dir.file("sluice.toml"));
  INFO(dump(r));
  REQUIRE(r.ok());
  CHECK(r.diagnostics.empty());
  REQUIRE(r.config->listeners.size() == 2);
  const config::Listener& https = r.config->listeners[0];
  REQUIRE(https.tls.has_value());
  CHECK(https.tls->default_cert.cert == dir.file("tls/cert.pem"));
  CHECK(https.tls->default_cert.key == abs_key);
  REQUIRE(https.tls->sni.size() == 2);
  CHECK(https.tls->sni[0].host == "api.example.com");  // lower case
  CHECK(https.tls->sni[0].files.cert == dir.file("tls/api.pem"));
  CHECK(https.tls->sni[0].files.key == dir.file("tls/api.key"));
  CHECK(https.tls->sni[1].host == "*.example.org");
  CHECK(https.tls->sni[1].files.cert == dir.file("wild.pem"));
  CHECK(https.tls->sni[1].files.key == dir.file("wild.key"));
  CHECK_FALSE(r.config->listeners[1].tls.has_value());
}

TEST_CASE("listener TLS: files that do not exist are errors at their value, naming the resolved path") {
  auto r = load(R"([[listener]]
address = "0.0.0.0:8443"
[listener.tls]
cert = "tls/cert.pem"
key = "/nonexistent/key.pem"
[[listener.tls.sni]]
host = "api.example.com"
cert = "api.pem"
key = "../api.key"
)");
  INFO(dump(r));
  CHECK_FALSE(r.ok());
  CHECK(find_diag(r, 4, 8).find("cert file \"/nonexistent/sluice/tls/cert.pem\" does not exist") != npos);
  CHECK(find_diag(r, 5, 7).find("key file \"/nonexistent/key.pem\" does not exist") != npos);
  CHECK(find_diag(r, 8, 8).find("cert file \"/nonexistent/sluice/api.pem\" does not exist") != npos);
  CHECK(find_diag(r, 9, 7).find("key file \"/nonexistent/api.key\" does not exist") != npos);
  CHECK(count(r, Severity::error) == 4);
}

TEST_CASE("listener TLS: one missing file among existing ones still fails") {
  TempDir dir;
  dir.touch("cert.pem");
  auto r = config::load_string(R"([[listener]]
address = "0.0.0.0:8443"
[listener.tls]
cert = "cert.pem"
key = "key.pem"
)", dir.file("sluice.toml"));
  INFO(dump(r));
  CHECK_FALSE(r.ok());
  CHECK(find_diag(r, 5, 7).find("key file \"" + dir.file("key.pem") + "\" does not exist") != npos);
  CHECK(count(r, Severity::error) == 1);
}

TEST_CASE("listener TLS: cert and key are required, sni entries need a host") {
  TempDir dir;
  dir.touch("c.pem");
  dir.touch("k.pem");
  auto r = config::load_string(R"([[listener]]
address = "0.0.0.0:8443"
[listener.tls]
cert = "c.pem"
[[listener.tls.sni]]
cert = "c.pem"
key = "k.pem"
[[listener.tls.sni]]
host = "b.example.com"
key = "k.pem"
)", dir.file("sluice.toml"));
  INFO(dump(r));
  CHECK_FALSE(r.ok());
  CHECK(find_diag(r, 3, 1).find("[listener.tls]: 'key' is required") != npos);
  CHECK(find_diag(r, 5, 1).find("[[listener.tls.sni]]: 'host' is required") != npos);
  CHECK(find_diag(r, 8, 1).find("[[listener.tls.sni]]: 'cert' is required") != npos);
  CHECK(count(r, Severity::error) == 3);
}

TEST_CASE("listener TLS: sni must be an array of tables") {
  auto r = load(R"([[listener]]
address = "0.0.0.0:8443"
[listener.tls]
cert = "/nonexistent/c.pem"
key = "/nonexistent/k.pem"
sni = "api.example.com"
)");
  INFO(dump(r));
  CHECK_FALSE(r.ok());
  CHECK(find_diag(r, 6, 7).find("write [[listener.tls.sni]]") != npos);
}

TEST_CASE("listener TLS: an sni entry with an empty host is reported, not silently dropped") {
  TempDir dir;
  dir.touch("c.pem");
  dir.touch("k.pem");
  auto r = config::load_string(R"([[listener]]
address = "0.0.0.0:8443"
[listener.tls]
cert = "c.pem"
key = "k.pem"
[[listener.tls.sni]]
host = ""
cert = "c.pem"
key = "k.pem"
)", dir.file("sluice.toml"));
  INFO(dump(r));
  CHECK_FALSE(r.ok());
  CHECK(find_diag(r, 7, 8).find("host") != npos);
}

// --------------------------------------------------------------- [upstream]

TEST_CASE("upstream: defaults for every key left out") {
  auto r = load(R"([upstream.api]
servers = ["127.0.0.1:9000"]
)");
  INFO(dump(r));
  REQUIRE(r.ok());
  CHECK(r.diagnostics.empty());
  REQUIRE(r.config->upstreams.size() == 1);
  const config::Upstream& u = r.config->upstreams[0];
  CHECK(u.name == "api");
  CHECK(u.pos.line == 1);
  REQUIRE(u.servers.size() == 1);
  CHECK(u.servers[0].text == "127.0.0.1:9000");
  CHECK_FALSE(u.servers[0].dns);
  CHECK(u.servers[0].address.host == "127.0.0.1");
  CHECK(u.servers[0].address.port == 9000);
  CHECK(u.resolve_interval == 5s);
  CHECK(u.balance == config::Balance::round_robin);
  CHECK(u.affinity == config::Affinity::none);
  CHECK(u.connect_timeout == 5s);
  CHECK(u.keepalive == 32);
  CHECK_FALSE(u.host_header.has_value());  // the client's Host
  CHECK_FALSE(u.health.has_value());       // no active checks without a health table
  CHECK_FALSE(u.tls.has_value());
  CHECK(r.config->find_upstream("api") == &u);
  CHECK(r.config->find_upstream("nope") == nullptr);
}

TEST_CASE("upstream: every key is read") {
  TempDir dir;
  dir.touch("tls/ca.pem");
  auto r = config::load_string(R"([upstream.gateway]
servers = ["10.0.0.7:8000", "10.0.0.8:8000"]
resolve_interval = "10s"
balance = "least_conn"
affinity = "engine.io"
connect_timeout = "250ms"
keepalive = 0
host_header = "gateway.internal"
health = { path = "/ready", interval = "3s", timeout = "1s", fails = 5, passes = 4 }
tls = { verify = true, ca = "tls/ca.pem", sni = "gateway.internal" }

[upstream.api]
servers = ["127.0.0.1:9000"]
)", dir.file("sluice.toml"));
  INFO(dump(r));
  REQUIRE(r.ok());
  CHECK(r.diagnostics.empty());
  REQUIRE(r.config->upstreams.size() == 2);
  REQUIRE(r.config->find_upstream("gateway") != nullptr);
  const config::Upstream& u = *r.config->find_upstream("gateway");
  CHECK(u.name == "gateway");
  REQUIRE(u.servers.size() == 2);
  CHECK(u.servers[1].address.host == "10.0.0.8");
  CHECK(u.resolve_interval == 10s);
  CHECK(u.balance == config::Balance::least_conn);
  CHECK(u.affinity == config::Affinity::engine_io);
  CHECK(u.connect_timeout == 250ms);
  CHECK(u.keepalive == 0);
  CHECK(u.host_header == std::optional<std::string>("gateway.internal"));
  REQUIRE(u.health.has_value());
  CHECK(u.health->path == "/ready");
  CHECK(u.health->interval == 3s);
  CHECK(u.health->timeout == 1s);
  CHECK(u.health->fails == 5);
  CHECK(u.health->passes == 4);
  REQUIRE(u.tls.has_value());
  CHECK(u.tls->verify);
  CHECK(u.tls->ca == dir.file("tls/ca.pem"));
  CHECK(u.tls->sni == "gateway.internal");
}

TEST_CASE("upstream: Config::upstreams keeps file order, as config.h documents") {
  auto r = load(R"([upstream.zeta]
servers = ["127.0.0.1:1"]
[upstream.alpha]
servers = ["127.0.0.1:2"]
[upstream.mid]
servers = ["127.0.0.1:3"]
)");
  INFO(dump(r));
  REQUIRE(r.ok());
  REQUIRE(r.config->upstreams.size() == 3);
  CHECK(r.config->upstreams[0].name == "zeta");
  CHECK(r.config->upstreams[1].name == "alpha");
  CHECK(r.config->upstreams[2].name == "mid");
  CHECK(r.config->upstreams[0].pos.line == 1);
}

TEST_CASE("upstream: host_header \"client\" means the client's Host; empty is an error") {
  SUBCASE("client") {
    auto r = load("[upstream.a]\nservers = [\"127.0.0.1:1\"]\nhost_header = \"client\"\n");
    INFO(dump(r));
    REQUIRE(r.ok());
    CHECK_FALSE(r.config->upstreams[0].host_header.has_value());
  }
  SUBCASE("empty") {
    auto r = load("[upstream.a]\nservers = [\"127.0.0.1:1\"]\nhost_header = \"\"\n");
    INFO(dump(r));
    CHECK_FALSE(r.ok());
    CHECK(find_diag(r, 3, 15).find("'host_header' must be \"client\" or a host name") != npos);
  }
}

TEST_CASE("upstream: balance and affinity take the SPEC values; a wrong one lists them") {
  auto upstream = [](std::string_view key, std::string_view value) {
    return load("[upstream.a]\nservers = [\"127.0.0.1:1\", \"127.0.0.1:2\"]\n" + std::string(key) + " = \"" +
                std::string(value) + "\"\n");
  };
  SUBCASE("balance") {
    for (auto [name, value] : {std::pair{"round_robin", config::Balance::round_robin},
                               {"least_conn", config::Balance::least_conn},
                               {"random", config::Balance::random},
                               {"ip_hash", config::Balance::ip_hash}}) {
      CAPTURE(name);
      auto r = upstream("balance", name);
      REQUIRE(r.ok());
      CHECK(r.config->upstreams[0].balance == value);
      CHECK(config::to_string(value) == name);
    }
    auto bad = upstream("balance", "roundrobin");
    INFO(dump(bad));
    CHECK_FALSE(bad.ok());
    CHECK(find_diag(bad, 3, 11).find("'balance' = \"roundrobin\" is not one of round_robin | least_conn | random | ip_hash") != npos);
  }
  SUBCASE("affinity") {
    for (auto [name, value] : {std::pair{"none", config::Affinity::none},
                               {"engine.io", config::Affinity::engine_io},
                               {"cookie", config::Affinity::cookie}}) {
      CAPTURE(name);
      auto r = upstream("affinity", name);
      REQUIRE(r.ok());
      CHECK(r.config->upstreams[0].affinity == value);
      CHECK(config::to_string(value) == name);
    }
    auto bad = upstream("affinity", "engineio");
    INFO(dump(bad));
    CHECK_FALSE(bad.ok());
    CHECK(find_diag(bad, 3, 12).find("is not one of none | engine.io | cookie") != npos);
  }
}

TEST_CASE("upstream servers: IPv4, IPv6 in brackets and dns: names, each with the position of its string") {
  auto r = load(R"([upstream.gw]
servers = ["127.0.0.1:8000", "[::1]:8001", "dns:gw.default.svc.cluster.local:8002", "dns:10.0.0.1:8003"]
)");
  INFO(dump(r));
  REQUIRE(r.ok());
  const auto& s = r.config->upstreams.at(0).servers;
  REQUIRE(s.size() == 4);
  CHECK(s[0].address.host == "127.0.0.1");
  CHECK(s[0].address.port == 8000);
  CHECK(s[0].pos.line == 2);
  CHECK(s[0].pos.column == 12);
  CHECK(s[1].address.host == "::1");
  CHECK(s[1].address.port == 8001);
  CHECK_FALSE(s[1].dns);
  CHECK(s[1].pos.column == 30);
  CHECK(s[2].dns);
  CHECK(s[2].text == "dns:gw.default.svc.cluster.local:8002");
  CHECK(s[2].address.host == "gw.default.svc.cluster.local");
  CHECK(s[2].address.port == 8002);
  CHECK(s[2].pos.column == 44);
  CHECK(s[3].dns);
  CHECK(s[3].address.host == "10.0.0.1");
  CHECK(s[3].pos.column == 85);
}

TEST_CASE("upstream servers: the port is mandatory and must be usable") {
  auto r = load(R"([upstream.a]
servers = [
  "127.0.0.1",
  "[::1]",
  "dns:gw.svc.cluster.local",
  "10.0.0.1:",
  "10.0.0.1:70000",
  "10.0.0.1:http",
  "127.0.0.1:0",
  "::1:8000",
  ":8000",
]
)");
  INFO(dump(r));
  CHECK_FALSE(r.ok());
  CHECK(find_diag(r, 3, 3).find("server \"127.0.0.1\": missing port") != npos);
  CHECK(find_diag(r, 4, 3).find("server \"[::1]\": missing port") != npos);
  CHECK(find_diag(r, 5, 3).find("server \"dns:gw.svc.cluster.local\": missing port") != npos);
  CHECK(find_diag(r, 6, 3).find("missing port") != npos);
  CHECK(find_diag(r, 7, 3).find("port 70000 is out of range") != npos);
  CHECK(find_diag(r, 8, 3).find("port 'http' is not a number") != npos);
  CHECK(find_diag(r, 9, 3).find("port 0 cannot be connected to") != npos);
  CHECK(find_diag(r, 10, 3).find("IPv6 addresses must be written in brackets") != npos);
  CHECK(find_diag(r, 11, 3).find("missing host") != npos);
  CHECK(count(r, Severity::error) == 9);
}

TEST_CASE("upstream servers: a host name without dns: is rejected with the fix") {
  auto r = load(R"([upstream.a]
servers = ["gateway:8000", "127.0.0.1:8001", "localhost:9000"]
)");
  INFO(dump(r));
  CHECK_FALSE(r.ok());
  CHECK(find_diag(r, 2, 12).find("\"gateway\" is a name, not an address; write \"dns:gateway:8000\"") != npos);
  CHECK(find_diag(r, 2, 46).find("write \"dns:localhost:9000\"") != npos);
  CHECK(count(r, Severity::error) == 2);
}

TEST_CASE("upstream servers: required, not empty, strings only") {
  SUBCASE("missing") {
    auto r = load("[upstream.a]\nbalance = \"random\"\n");
    INFO(dump(r));
    CHECK_FALSE(r.ok());
    CHECK(find_diag(r, 1, 1).find("upstream 'a': 'servers' is required") != npos);
  }
  SUBCASE("empty") {
    auto r = load("[upstream.a]\nservers = []\n");
    INFO(dump(r));
    CHECK_FALSE(r.ok());
    CHECK(find_diag(r, 2, 11).find("'servers' is empty") != npos);
  }
  SUBCASE("a string instead of an array") {
    auto r = load("[upstream.a]\nservers = \"127.0.0.1:1\"\n");
    INFO(dump(r));
    CHECK_FALSE(r.ok());
    CHECK(find_diag(r, 2, 11).find("'servers' must be an array of strings, not a string") != npos);
  }
  SUBCASE("a number inside") {
    auto r = load("[upstream.a]\nservers = [\"127.0.0.1:1\", 8000]\n");
    INFO(dump(r));
    CHECK_FALSE(r.ok());
    CHECK(find_diag(r, 2, 27).find("'servers' must hold only strings, not an integer") != npos);
  }
}

TEST_CASE("upstream: [upstream] holds only named tables") {
  auto r = load("[upstream]\nservers = [\"127.0.0.1:1\"]\n");
  INFO(dump(r));
  CHECK_FALSE(r.ok());
  CHECK(find_diag(r, 2, 11).find("upstream 'servers' must be a table ([upstream.servers])") != npos);
}

TEST_CASE("upstream health: keys left out take the defaults path /healthz, 5s, 2s, 3 fails, 2 passes") {
  auto r = load(R"([upstream.a]
servers = ["127.0.0.1:1"]
health = {}
[upstream.b]
servers = ["127.0.0.1:2"]
health = { path = "/up", fails = 1 }
)");
  INFO(dump(r));
  REQUIRE(r.ok());
  for (const config::Upstream& u : r.config->upstreams) {
    CAPTURE(u.name);
    REQUIRE(u.health.has_value());
    CHECK(u.health->interval == 5s);
    CHECK(u.health->timeout == 2s);
    CHECK(u.health->passes == 2);
  }
  CHECK(r.config->upstreams[0].health->path == "/healthz");
  CHECK(r.config->upstreams[0].health->fails == 3);
  CHECK(r.config->upstreams[1].health->path == "/up");
  CHECK(r.config->upstreams[1].health->fails == 1);
}

TEST_CASE("upstream health: bad values are errors at the value") {
  auto r = load(R"([upstream.a]
servers = ["127.0.0.1:1"]
health = { path = "healthz", interval = "5", timeout = 2, fails = 0, passes = "2" }
)");
  INFO(dump(r));
  CHECK_FALSE(r.ok());
  CHECK(find_diag(r, 3, 19).find("upstream 'a' health: 'path' must start with '/'") != npos);
  CHECK(find_diag(r, 3, 41).find("'interval' = \"5\" is not a duration") != npos);
  CHECK(find_diag(r, 3, 56).find("'timeout' must be a duration string with a unit") != npos);
  CHECK(find_diag(r, 3, 67).find("'fails' must be between 1 and 1000, not 0") != npos);
  CHECK(find_diag(r, 3, 79).find("'passes' must be an integer, not a string") != npos);
  CHECK(count(r, Severity::error) == 5);
}

TEST_CASE("upstream tls: defaults verify on, system CA, no SNI override") {
  auto r = load("[upstream.a]\nservers = [\"127.0.0.1:1\"]\ntls = {}\n");
  INFO(dump(r));
  REQUIRE(r.ok());
  const auto& tls = r.config->upstreams[0].tls;
  REQUIRE(tls.has_value());
  CHECK(tls->verify);
  CHECK(tls->ca.empty());
  CHECK(tls->sni.empty());
}

TEST_CASE("upstream tls: ca resolves against the config directory and must exist") {
  SUBCASE("missing") {
    auto r = load("[upstream.a]\nservers = [\"127.0.0.1:1\"]\ntls = { sni = \"x\", ca = \"tls/ca.pem\" }\n");
    INFO(dump(r));
    CHECK_FALSE(r.ok());
    CHECK(find_diag(r, 3, 25).find("ca file \"/nonexistent/sluice/tls/ca.pem\" does not exist") != npos);
  }
  SUBCASE("present, absolute") {
    TempDir dir;
    dir.touch("ca.pem");
    auto r = load("[upstream.a]\nservers = [\"127.0.0.1:1\"]\ntls = { ca = \"" + dir.file("ca.pem") + "\" }\n");
    INFO(dump(r));
    REQUIRE(r.ok());
    CHECK(r.config->upstreams[0].tls->ca == dir.file("ca.pem"));
  }
  SUBCASE("verify of the wrong type") {
    auto r = load("[upstream.a]\nservers = [\"127.0.0.1:1\"]\ntls = { verify = \"no\" }\n");
    INFO(dump(r));
    CHECK_FALSE(r.ok());
    CHECK(find_diag(r, 3, 18).find("'verify' must be true or false, not a string") != npos);
  }
}

// ------------------------------------------------------------------ [[route]]

TEST_CASE("route: defaults for every key left out") {
  auto r = load(R"([upstream.api]
servers = ["127.0.0.1:9000"]
[[route]]
name = "api"
prefix = "/api"
upstream = "api"
)");
  INFO(dump(r));
  REQUIRE(r.ok());
  CHECK(r.diagnostics.empty());
  REQUIRE(r.config->routes.size() == 1);
  const config::Route& route = r.config->routes[0];
  CHECK(route.name == "api");
  CHECK(route.host.empty());  // any host
  CHECK(route.match == config::MatchKind::prefix);
  CHECK(route.path == "/api");
  CHECK(route.upstream == "api");
  CHECK(route.upstream_index == 0);
  CHECK(route.kind == config::RouteKind::http);
  CHECK_FALSE(route.strip_prefix);  // the upstream sees the path unchanged
  CHECK_FALSE(route.rewrite_prefix.has_value());
  CHECK(route.read_timeout == 60s);
  CHECK(route.tunnel_idle == 1h);
  CHECK(route.ping_interval == 25s);
  CHECK(route.ping_timeout == 20s);
  CHECK_FALSE(route.allowed_origins.has_value());  // any origin
  CHECK_FALSE(route.max_body.has_value());         // unlimited
  CHECK_FALSE(route.respond.has_value());
  CHECK_FALSE(route.redirect.has_value());
  CHECK(route.pos.line == 3);
}

TEST_CASE("route: every key is read") {
  auto r = load(R"([upstream.gw]
servers = ["127.0.0.1:8000"]
[[route]]
name = "socketio"
prefix = "/socket.io"
host = "*.Example.COM"
upstream = "gw"
kind = "socketio"
read_timeout = "2m"
tunnel_idle = "30m"
ping_interval = "10s"
ping_timeout = "5s"
allowed_origins = ["https://app.example.com", "https://admin.example.com"]
max_body = "10MiB"
[[route]]
name = "api"
prefix = "/api"
upstream = "gw"
rewrite_prefix = "/v2"
[[route]]
name = "strip"
exact = "/strip"
upstream = "gw"
strip_prefix = true
)");
  INFO(dump(r));
  REQUIRE(r.ok());
  CHECK(r.diagnostics.empty());
  const auto& routes = r.config->routes;
  REQUIRE(routes.size() == 3);
  const config::Route& sio = routes[0];
  CHECK(sio.host == "*.example.com");
  CHECK(sio.is_wildcard_host());
  CHECK(sio.kind == config::RouteKind::socketio);
  CHECK(sio.forwards_websocket());
  CHECK(sio.read_timeout == 2min);
  CHECK(sio.tunnel_idle == 30min);
  CHECK(sio.ping_interval == 10s);
  CHECK(sio.ping_timeout == 5s);
  REQUIRE(sio.allowed_origins.has_value());
  CHECK(*sio.allowed_origins == std::vector<std::string>{"https://app.example.com", "https://admin.example.com"});
  CHECK(sio.max_body == std::optional<uint64_t>(10u * 1024 * 1024));
  CHECK(routes[1].rewrite_prefix == std::optional<std::string>("/v2"));
  CHECK_FALSE(routes[1].strip_prefix);
  CHECK(routes[2].match == config::MatchKind::exact);
  CHECK(routes[2].path == "/strip");
  CHECK(routes[2].strip_prefix);
}

TEST_CASE("route: read_timeout defaults per kind (http 60s, websocket 60s, socketio 90s, sse 1h), tunnel_idle 1h") {
  struct Case {
    const char* kind;
    config::RouteKind value;
    config::Duration read_timeout;
  };
  for (const Case& c : {Case{"http", config::RouteKind::http, 60s},
                        Case{"websocket", config::RouteKind::websocket, 60s},
                        Case{"socketio", config::RouteKind::socketio, 90s},
                        Case{"sse", config::RouteKind::sse, 1h}}) {
    CAPTURE(c.kind);
    std::string head = std::string("[upstream.a]\nservers = [\"127.0.0.1:1\"]\n[[route]]\nname = \"r\"\n"
                                   "prefix = \"/\"\nupstream = \"a\"\nkind = \"") + c.kind + "\"\n";
    auto r = load(head);
    INFO(dump(r));
    REQUIRE(r.ok());
    const config::Route& route = r.config->routes.at(0);
    CHECK(route.kind == c.value);
    CHECK(config::to_string(route.kind) == c.kind);
    CHECK(route.read_timeout == c.read_timeout);
    CHECK(config::default_read_timeout(c.value) == c.read_timeout);
    CHECK(route.tunnel_idle == 1h);
    // An explicit read_timeout wins over the kind's default, whichever comes first.
    auto set = load(head + "read_timeout = \"7m\"\n");
    INFO(dump(set));
    REQUIRE(set.ok());
    CHECK(set.config->routes.at(0).read_timeout == 7min);
    auto before = load(std::string("[upstream.a]\nservers = [\"127.0.0.1:1\"]\n[[route]]\nname = \"r\"\n"
                                   "read_timeout = \"7m\"\nprefix = \"/\"\nupstream = \"a\"\nkind = \"") +
                       c.kind + "\"\n");
    REQUIRE(before.ok());
    CHECK(before.config->routes.at(0).read_timeout == 7min);
  }
}

TEST_CASE("route: kind is one of http | websocket | socketio | sse") {
  auto r = load(R"([upstream.a]
servers = ["127.0.0.1:1"]
[[route]]
name = "r"
prefix = "/"
upstream = "a"
kind = "ws"
)");
  INFO(dump(r));
  CHECK_FALSE(r.ok());
  CHECK(find_diag(r, 7, 8).find("route 'r': 'kind' = \"ws\" is not one of http | websocket | socketio | sse") != npos);
}

TEST_CASE("route paths: a prefix drops its trailing slash, an exact path is kept as written") {
  auto r = load(R"([[route]]
name = "a"
prefix = "/api/"
respond = {}
[[route]]
name = "root"
prefix = "/"
respond = {}
[[route]]
name = "b"
exact = "/b/"
respond = {}
[[route]]
name = "c"
prefix = "/a%2Fb/c"
respond = {}
)");
  INFO(dump(r));
  REQUIRE(r.ok());
  const auto& routes = r.config->routes;
  CHECK(routes[0].path == "/api");
  CHECK(routes[1].path == "/");
  CHECK(routes[2].match == config::MatchKind::exact);
  CHECK(routes[2].path == "/b/");
  CHECK(routes[3].path == "/a%2Fb/c");  // never decoded
}

TEST_CASE("route paths: exactly one of exact/prefix, starting with '/', no query, no dot segments") {
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
prefix = "/d"
exact = "/d"
respond = {}
[[route]]
name = "e"
exact = "/e?x=1"
respond = {}
[[route]]
name = "f"
prefix = "/f/./g"
respond = {}
[[route]]
name = "g"
prefix = "/g h"
respond = {}
)");
  INFO(dump(r));
  CHECK_FALSE(r.ok());
  CHECK(find_diag(r, 3, 10).find("route 'a': prefix \"api\" must start with '/'") != npos);
  CHECK(find_diag(r, 5, 1).find("route 'b': needs 'prefix' or 'exact'") != npos);
  CHECK(find_diag(r, 10, 10).find("contains a '..' segment") != npos);
  CHECK(find_diag(r, 14, 10).find("give either 'exact' or 'prefix', not both") != npos);
  CHECK(find_diag(r, 19, 9).find("the query string is never part of matching") != npos);
  CHECK(find_diag(r, 23, 10).find("contains a '.' segment") != npos);
  CHECK(find_diag(r, 27, 10).find("contains a space or control character") != npos);
  CHECK(count(r, Severity::error) == 7);
}

TEST_CASE("route hosts: lower-cased; one leading wildcard label; no port") {
  auto r = load(R"([[route]]
name = "a"
host = "App.Example.com"
prefix = "/"
respond = {}
[[route]]
name = "b"
host = "app.example.com:8080"
prefix = "/"
respond = {}
[[route]]
name = "c"
host = "a.*.example.com"
prefix = "/"
respond = {}
[[route]]
name = "d"
host = "*."
prefix = "/"
respond = {}
[[route]]
name = "e"
host = ""
prefix = "/"
respond = {}
[[route]]
name = "f"
host = "app..example.com"
prefix = "/"
respond = {}
)");
  INFO(dump(r));
  CHECK_FALSE(r.ok());
  CHECK(find_diag(r, 3, 8).empty());
  CHECK(find_diag(r, 8, 8).find("route 'b': host \"app.example.com:8080\" carries a port") != npos);
  CHECK(find_diag(r, 13, 8).find("'*' only as the whole first label") != npos);
  CHECK(find_diag(r, 18, 8).find("nothing after '*.'") != npos);
  CHECK(find_diag(r, 23, 8).find("is empty (leave 'host' out to match any host)") != npos);
  CHECK(find_diag(r, 28, 8).find("has an empty label") != npos);

  auto ok = load("[[route]]\nname = \"a\"\nhost = \"App.Example.com\"\nprefix = \"/\"\nrespond = {}\n");
  INFO(dump(ok));
  REQUIRE(ok.ok());
  CHECK(ok.config->routes[0].host == "app.example.com");
  CHECK_FALSE(ok.config->routes[0].is_wildcard_host());
}

TEST_CASE("route names: required and not empty") {
  auto r = load(R"([[route]]
prefix = "/a"
respond = {}
[[route]]
name = ""
prefix = "/b"
respond = {}
[[route]]
name = 7
prefix = "/c"
respond = {}
)");
  INFO(dump(r));
  CHECK_FALSE(r.ok());
  CHECK(find_diag(r, 1, 1).find("'name' is required") != npos);
  CHECK(find_diag(r, 5, 8).find("'name' must not be empty") != npos);
  CHECK(find_diag(r, 9, 8).find("'name' must be a string, not an integer") != npos);
}

TEST_CASE("respond: defaults status 200, text/plain; charset=utf-8, empty body") {
  auto r = load(R"([[route]]
name = "a"
exact = "/a"
respond = {}
[[route]]
name = "b"
exact = "/b"
respond = { status = 404, body = "gone", content_type = "application/json" }
)");
  INFO(dump(r));
  REQUIRE(r.ok());
  CHECK(r.diagnostics.empty());
  const auto& a = r.config->routes[0];
  REQUIRE(a.respond.has_value());
  CHECK(a.respond->status == 200);
  CHECK(a.respond->body.empty());
  CHECK(a.respond->content_type == "text/plain; charset=utf-8");
  CHECK_FALSE(a.has_upstream());
  CHECK(a.upstream.empty());
  const auto& b = r.config->routes[1];
  REQUIRE(b.respond.has_value());
  CHECK(b.respond->status == 404);
  CHECK(b.respond->body == "gone");
  CHECK(b.respond->content_type == "application/json");
}

TEST_CASE("respond: bad values are errors at the value") {
  auto r = load(R"([[route]]
name = "a"
exact = "/a"
respond = { status = 99, body = 1 }
[[route]]
name = "b"
exact = "/b"
respond = "ok"
)");
  INFO(dump(r));
  CHECK_FALSE(r.ok());
  CHECK(find_diag(r, 4, 22).find("route 'a' respond: 'status' must be between") != npos);
  CHECK(find_diag(r, 4, 33).find("'body' must be a string, not an integer") != npos);
  CHECK(find_diag(r, 8, 11).find("route 'b': 'respond' must be a table, not a string") != npos);
}

TEST_CASE("redirect: scheme or location; default status 308; port only with scheme") {
  auto r = load(R"([[route]]
name = "to-https"
host = "app.example.com"
prefix = "/"
redirect = { scheme = "https" }
[[route]]
name = "moved"
prefix = "/old"
redirect = { location = "https://other/", status = 301 }
[[route]]
name = "port"
prefix = "/p"
redirect = { scheme = "http", port = 8080, status = 307 }
)");
  INFO(dump(r));
  REQUIRE(r.ok());
  CHECK(r.diagnostics.empty());
  const auto& routes = r.config->routes;
  REQUIRE(routes[0].redirect.has_value());
  CHECK(routes[0].redirect->scheme == "https");
  CHECK(routes[0].redirect->location.empty());
  CHECK(routes[0].redirect->status == 308);
  CHECK_FALSE(routes[0].redirect->port.has_value());  // the port is dropped
  REQUIRE(routes[1].redirect.has_value());
  CHECK(routes[1].redirect->location == "https://other/");
  CHECK(routes[1].redirect->scheme.empty());
  CHECK(routes[1].redirect->status == 301);
  REQUIRE(routes[2].redirect.has_value());
  CHECK(routes[2].redirect->port == std::optional<uint16_t>(8080));
  CHECK(routes[2].redirect->status == 307);
}

TEST_CASE("redirect: exactly one of scheme or location; redirect statuses only") {
  auto r = load(R"([[route]]
name = "a"
prefix = "/a"
redirect = {}
[[route]]
name = "b"
prefix = "/b"
redirect = { scheme = "https", location = "https://x/" }
[[route]]
name = "c"
prefix = "/c"
redirect = { location = "https://x/", port = 8443 }
[[route]]
name = "d"
prefix = "/d"
redirect = { scheme = "ftp", status = 200 }
[[route]]
name = "e"
prefix = "/e"
redirect = { scheme = "https", status = 300 }
)");
  INFO(dump(r));
  CHECK_FALSE(r.ok());
  CHECK(find_diag(r, 4, 12).find("route 'a' redirect: give exactly one of 'scheme' or 'location'") != npos);
  CHECK(find_diag(r, 8, 12).find("give exactly one of 'scheme' or 'location'") != npos);
  CHECK(find_diag(r, 12, 46).find("'port' applies only to scheme redirects") != npos);
  CHECK(find_diag(r, 16, 23).find("'scheme' must be \"http\" or \"https\"") != npos);
  CHECK(find_diag(r, 16, 39).find("'status' must be between 300 and 399, not 200") != npos);
  CHECK(find_diag(r, 20, 41).find("'status' must be 301, 302, 303, 307 or 308") != npos);
}

// ------------------------------------------------------- durations and sizes

TEST_CASE("durations: ms, s, m and h") {
  for (auto [text, expected] : {std::pair<const char*, config::Duration>{"250ms", 250ms},
                                {"30s", 30s},
                                {"5m", 5min},
                                {"1h", 1h},
                                {"1500ms", 1500ms},
                                {"90s", 90s}}) {
    CAPTURE(text);
    auto r = load(std::string("[server]\ndrain_timeout = \"") + text + "\"\n");
    INFO(dump(r));
    REQUIRE(r.ok());
    CHECK(r.config->server.drain_timeout == expected);
  }
}

TEST_CASE("durations: no unit, fractions, negatives, spaces, unknown units and zero are errors at the value") {
  auto r = load(R"([server]
drain_timeout = "30"
header_timeout = 10
keepalive_timeout = "1.5s"
[upstream.a]
servers = ["127.0.0.1:1"]
connect_timeout = "-5s"
resolve_interval = "1d"
[[route]]
name = "r"
prefix = "/"
upstream = "a"
kind = "socketio"
read_timeout = "30 s"
tunnel_idle = "0s"
ping_interval = ""
ping_timeout = "5S"
)");
  INFO(dump(r));
  CHECK_FALSE(r.ok());
  CHECK(find_diag(r, 2, 17).find("[server]: 'drain_timeout' = \"30\" is not a duration; write a whole number and a unit") != npos);
  CHECK(find_diag(r, 3, 18).find("'header_timeout' must be a duration string with a unit") != npos);
  CHECK(find_diag(r, 3, 18).find("not an integer") != npos);
  CHECK(find_diag(r, 4, 21).find("'keepalive_timeout' = \"1.5s\" is not a duration") != npos);
  CHECK(find_diag(r, 7, 19).find("upstream 'a': 'connect_timeout' = \"-5s\" is not a duration") != npos);
  CHECK(find_diag(r, 8, 20).find("'resolve_interval' = \"1d\" is not a duration") != npos);
  CHECK(find_diag(r, 14, 16).find("route 'r': 'read_timeout' = \"30 s\" is not a duration") != npos);
  CHECK(find_diag(r, 15, 15).find("'tunnel_idle' must be longer than 0") != npos);
  CHECK(find_diag(r, 16, 17).find("'ping_interval' = \"\" is not a duration") != npos);
  CHECK(find_diag(r, 17, 16).find("'ping_timeout' = \"5S\" is not a duration") != npos);
  CHECK(count(r, Severity::error) == 9);
}

TEST_CASE("sizes: B, KiB, MiB and GiB") {
  for (auto [text, expected] : {std::pair<const char*, uint64_t>{"512B", 512},
                                {"64KiB", 64u * 1024},
                                {"10MiB", 10u * 1024 * 1024},
                                {"1GiB", uint64_t{1} << 30},
                                {"0B", 0}}) {
    CAPTURE(text);
    auto r = load(std::string("[[route]]\nname = \"r\"\nprefix = \"/\"\nrespond = {}\nmax_body = \"") + text + "\"\n");
    INFO(dump(r));
    REQUIRE(r.ok());
    CHECK(r.config->routes.at(0).max_body == std::optional<uint64_t>(expected));
  }
  auto header = load("[server]\nmax_header_size = \"1MiB\"\n");
  REQUIRE(header.ok());
  CHECK(header.config->server.max_header_size == 1024u * 1024);
}

TEST_CASE("sizes: no unit, decimal units, fractions and wrong case are errors at the value") {
  auto r = load(R"([server]
max_header_size = "32KB"
[[route]]
name = "a"
prefix = "/a"
respond = {}
max_body = 10
[[route]]
name = "b"
prefix = "/b"
respond = {}
max_body = "10"
[[route]]
name = "c"
prefix = "/c"
respond = {}
max_body = "1.5MiB"
[[route]]
name = "d"
prefix = "/d"
respond = {}
max_body = "10mib"
)");
  INFO(dump(r));
  CHECK_FALSE(r.ok());
  CHECK(find_diag(r, 2, 19).find("[server]: 'max_header_size' = \"32KB\" is not a size") != npos);
  CHECK(find_diag(r, 7, 12).find("route 'a': 'max_body' must be a size string with a unit") != npos);
  CHECK(find_diag(r, 12, 12).find("'max_body' = \"10\" is not a size") != npos);
  CHECK(find_diag(r, 17, 12).find("'max_body' = \"1.5MiB\" is not a size") != npos);
  CHECK(find_diag(r, 22, 12).find("'max_body' = \"10mib\" is not a size") != npos);
  CHECK(count(r, Severity::error) == 5);
}

// ------------------------------------------------------ types and unknown keys

TEST_CASE("wrong types are errors at the value, naming the type expected and the type found") {
  auto r = load(R"(server = 5
[[listener]]
address = "0.0.0.0:8080"
tls = "yes"
[upstream.a]
servers = ["127.0.0.1:1"]
keepalive = 1.5
health = "/healthz"
[[route]]
name = "r"
prefix = "/"
upstream = "a"
strip_prefix = "true"
allowed_origins = "https://a"
kind = 1
rewrite_prefix = false
)");
  INFO(dump(r));
  CHECK_FALSE(r.ok());
  CHECK(find_diag(r, 1, 10).find("'server' must be a table, not an integer") != npos);
  CHECK(find_diag(r, 4, 7).find("[[listener]]: 'tls' must be a table, not a string") != npos);
  CHECK(find_diag(r, 7, 13).find("upstream 'a': 'keepalive' must be an integer, not a float") != npos);
  CHECK(find_diag(r, 8, 10).find("'health' must be a table, not a string") != npos);
  CHECK(find_diag(r, 13, 16).find("route 'r': 'strip_prefix' must be true or false, not a string") != npos);
  CHECK(find_diag(r, 14, 19).find("'allowed_origins' must be an array of strings, not a string") != npos);
  CHECK(find_diag(r, 15, 8).find("'kind' must be a string, not an integer") != npos);
  CHECK(find_diag(r, 16, 18).find("'rewrite_prefix' must be a string, not a boolean") != npos);
  CHECK(count(r, Severity::error) == 8);
}

TEST_CASE("unknown keys are errors at the key, with a hint when a known key is close") {
  SUBCASE("top level") {
    auto r = load("[sever]\nworkers = 1\n[[routes]]\nname = \"x\"\n");
    INFO(dump(r));
    CHECK_FALSE(r.ok());
    CHECK(find_diag(r, 1, 2).find("unknown key 'sever' (did you mean 'server'?)") != npos);
    CHECK(find_diag(r, 3, 3).find("unknown key 'routes' (did you mean 'route'?)") != npos);
  }
  SUBCASE("[server]") {
    auto r = load("[server]\nworkers = 1\n  drain_timout = \"30s\"\n");
    INFO(dump(r));
    CHECK_FALSE(r.ok());
    CHECK(find_diag(r, 3, 3).find("[server]: unknown key 'drain_timout' (did you mean 'drain_timeout'?)") != npos);
    CHECK(count(r, Severity::error) == 1);
  }
  SUBCASE("[[listener]] and [admin]") {
    auto r = load("[[listener]]\naddress = \"0.0.0.0:1\"\nadress = \"x\"\n[admin]\naddress = \"127.0.0.1:2\"\nport = 2\n");
    INFO(dump(r));
    CHECK_FALSE(r.ok());
    CHECK(find_diag(r, 3, 1).find("[[listener]]: unknown key 'adress' (did you mean 'address'?)") != npos);
    CHECK(find_diag(r, 6, 1).find("[admin]: unknown key 'port'") != npos);
  }
  SUBCASE("[listener.tls] and [[listener.tls.sni]]") {
    auto r = load(R"([[listener]]
address = "0.0.0.0:8443"
[listener.tls]
cert = "/nonexistent/c.pem"
key = "/nonexistent/k.pem"
certs = "x"
[[listener.tls.sni]]
hosts = "a.example.com"
cert = "/nonexistent/c.pem"
key = "/nonexistent/k.pem"
)");
    INFO(dump(r));
    CHECK_FALSE(r.ok());
    CHECK(find_diag(r, 6, 1).find("[listener.tls]: unknown key 'certs' (did you mean 'cert'?)") != npos);
    CHECK(find_diag(r, 8, 1).find("[[listener.tls.sni]]: unknown key 'hosts' (did you mean 'host'?)") != npos);
  }
  SUBCASE("[upstream.NAME], health and tls") {
    auto r = load(R"([upstream.api]
server = ["127.0.0.1:1"]
servers = ["127.0.0.1:1"]
health = { path = "/h", intervall = "5s" }
tls = { verfy = false }
)");
    INFO(dump(r));
    CHECK_FALSE(r.ok());
    CHECK(find_diag(r, 2, 1).find("upstream 'api': unknown key 'server' (did you mean 'servers'?)") != npos);
    CHECK(find_diag(r, 4, 25).find("upstream 'api' health: unknown key 'intervall' (did you mean 'interval'?)") != npos);
    CHECK(find_diag(r, 5, 9).find("upstream 'api' tls: unknown key 'verfy' (did you mean 'verify'?)") != npos);
  }
  SUBCASE("[[route]], respond and redirect") {
    auto r = load(R"([[route]]
name = "x"
prefx = "/"
respond = { status = 200, bdy = "ok" }
[[route]]
name = "y"
prefix = "/y"
redirect = { sheme = "https" }
)");
    INFO(dump(r));
    CHECK_FALSE(r.ok());
    CHECK(find_diag(r, 3, 1).find("route 'x': unknown key 'prefx' (did you mean 'prefix'?)") != npos);
    CHECK(find_diag(r, 4, 27).find("route 'x' respond: unknown key 'bdy' (did you mean 'body'?)") != npos);
    CHECK(find_diag(r, 8, 14).find("route 'y' redirect: unknown key 'sheme' (did you mean 'scheme'?)") != npos);
  }
}

TEST_CASE("unknown keys far from every known key get no hint") {
  auto r = load("[server]\nfrobnicate = true\n");
  INFO(dump(r));
  CHECK_FALSE(r.ok());
  std::string msg = find_diag(r, 2, 1);
  CHECK(msg.find("[server]: unknown key 'frobnicate'") != npos);
  CHECK(msg.find("did you mean") == npos);
}

TEST_CASE("TOML syntax errors carry their line and column and fail the load") {
  auto r = load("[server]\nworkers = 1\ndrain_timeout = \"30s\n");
  INFO(dump(r));
  CHECK_FALSE(r.ok());
  REQUIRE(r.diagnostics.size() == 1);
  CHECK(r.diagnostics[0].severity == Severity::error);
  CHECK(r.diagnostics[0].pos.line == 3);
  CHECK(r.diagnostics[0].pos.column > 0);
  CHECK(config::format_diagnostic(kFile, r.diagnostics[0]).starts_with(std::string(kFile) + ":3:"));

  auto dup = load("[upstream.a]\nservers = [\"127.0.0.1:1\"]\n[upstream.a]\nservers = [\"127.0.0.1:2\"]\n");
  INFO(dump(dup));
  CHECK_FALSE(dup.ok());
  REQUIRE(dup.diagnostics.size() == 1);
  CHECK(dup.diagnostics[0].pos.line == 3);
}

TEST_CASE("every problem in the file is reported, not only the first, in file order") {
  auto r = load(R"([server]
workers = "many"
[upstream.a]
servers = ["127.0.0.1"]
[[route]]
name = "r"
prefix = "/"
upstream = "a"
kind = "grpc"
)");
  INFO(dump(r));
  CHECK_FALSE(r.ok());
  CHECK(r.error_count() == 3);
  REQUIRE(r.diagnostics.size() == 3);
  CHECK(r.diagnostics[0].pos.line == 2);
  CHECK(r.diagnostics[1].pos.line == 4);
  CHECK(r.diagnostics[2].pos.line == 9);
}
