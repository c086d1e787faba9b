// Rules that span tables (SPEC.md "Route selection" rule 4, "Details":
// Conflicts; issue 2: validation errors and warnings): one TEST_CASE per rule,
// each diagnostic asserted at its exact line:column. Warnings must never fail
// a load.

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "config_test_support.h"
#include "sluice/config.h"

namespace config = sluice::config;
namespace fs = std::filesystem;
using config::LoadResult;
using config::Severity;

using namespace sluice::config::testing;

namespace {

// A fresh directory holding c.pem and k.pem, removed when the test ends.
class CertDir : public TempDir {
 public:
  CertDir() {
    touch("c.pem");
    touch("k.pem");
  }
};

}  // namespace

// ------------------------------------------------------ duplicate routes

TEST_CASE("duplicate routes: same host and same prefix is an error at the later route's path") {
  auto r = load(R"([upstream.api]
servers = ["127.0.0.1:9000"]
[[route]]
name = "a"
prefix = "/api"
upstream = "api"
[[route]]
name = "b"
prefix = "/api"
upstream = "api"
)");
  INFO(dump(r));
  CHECK_FALSE(r.ok());
  std::string msg = find_diag(r, 9, 10);
  CHECK(msg.find("route 'b': matches the same requests as route 'a' (line 3)") != npos);
  CHECK(msg.find("same host (any) and same prefix /api") != npos);
  CHECK(count(r, Severity::error) == 1);
}

TEST_CASE("duplicate routes: found whichever is declared first") {
  auto r = load(R"([upstream.api]
servers = ["127.0.0.1:9000"]
[[route]]
name = "second"
prefix = "/api"
upstream = "api"
[[route]]
name = "first"
prefix = "/api"
upstream = "api"
)");
  INFO(dump(r));
  CHECK_FALSE(r.ok());
  CHECK(find_diag(r, 9, 10).find("route 'first': matches the same requests as route 'second' (line 3)") != npos);
  CHECK(count(r, Severity::error) == 1);
}

TEST_CASE("duplicate routes: \"/api\" and \"/api/\" are the same prefix") {
  SUBCASE("without slash first") {
    auto r = load(R"([[route]]
name = "a"
prefix = "/api"
respond = {}
[[route]]
name = "b"
prefix = "/api/"
respond = {}
)");
    INFO(dump(r));
    CHECK_FALSE(r.ok());
    CHECK(find_diag(r, 7, 10).find("route 'b': matches the same requests as route 'a' (line 1)") != npos);
    CHECK(find_diag(r, 7, 10).find("same prefix /api") != npos);
  }
  SUBCASE("with slash first") {
    auto r = load(R"([[route]]
name = "a"
prefix = "/api/"
respond = {}
[[route]]
name = "b"
prefix = "/api"
respond = {}
)");
    INFO(dump(r));
    CHECK_FALSE(r.ok());
    CHECK(find_diag(r, 7, 10).find("route 'b': matches the same requests as route 'a'") != npos);
  }
  SUBCASE("\"/\" and \"//\"") {
    auto r = load("[[route]]\nname = \"a\"\nprefix = \"/\"\nrespond = {}\n"
                  "[[route]]\nname = \"b\"\nprefix = \"//\"\nrespond = {}\n");
    INFO(dump(r));
    CHECK_FALSE(r.ok());
    CHECK(find_diag(r, 7, 10).find("matches the same requests as route 'a'") != npos);
  }
}

TEST_CASE("duplicate routes: exact paths, and host names compared without case") {
  auto r = load(R"([upstream.api]
servers = ["127.0.0.1:9000"]
[[route]]
name = "a"
exact = "/x"
host = "App.example.com"
upstream = "api"
[[route]]
name = "b"
host = "app.EXAMPLE.com"
exact = "/x"
respond = {}
)");
  INFO(dump(r));
  CHECK_FALSE(r.ok());
  std::string msg = find_diag(r, 11, 9);
  CHECK(msg.find("route 'b': matches the same requests as route 'a' (line 3)") != npos);
  CHECK(msg.find("same host (app.example.com) and same exact /x") != npos);
}

TEST_CASE("duplicate routes: the same wildcard host") {
  auto r = load(R"([[route]]
name = "a"
host = "*.example.com"
prefix = "/ws"
respond = {}
[[route]]
name = "b"
host = "*.Example.com"
prefix = "/ws/"
respond = {}
)");
  INFO(dump(r));
  CHECK_FALSE(r.ok());
  CHECK(find_diag(r, 9, 10).find("same host (*.example.com) and same prefix /ws") != npos);
}

TEST_CASE("duplicate routes: every later duplicate is reported against the first") {
  auto r = load(R"([[route]]
name = "a"
prefix = "/"
respond = {}
[[route]]
name = "b"
prefix = "/"
respond = {}
[[route]]
name = "c"
prefix = "/"
respond = {}
)");
  INFO(dump(r));
  CHECK_FALSE(r.ok());
  CHECK(find_diag(r, 7, 10).find("route 'b': matches the same requests as route 'a' (line 1)") != npos);
  CHECK(find_diag(r, 11, 10).find("route 'c': matches the same requests as route 'a' (line 1)") != npos);
  CHECK(count(r, Severity::error) == 2);
}

TEST_CASE("regressions: a route whose host is rejected is not also reported as a duplicate of a host-less route") {
  auto r = load(R"([[route]]
name = "catchall"
prefix = "/"
respond = {}
[[route]]
name = "app"
host = "app.example.com:8080"
prefix = "/"
respond = {}
)");
  INFO(dump(r));
  CHECK_FALSE(r.ok());
  CHECK(find_diag(r, 7, 8).find("carries a port") != npos);
  CHECK(find_diag(r, 8, 10).empty());  // it was never a host-less route
  CHECK(count(r, Severity::error) == 1);
}

TEST_CASE("not duplicates: same path on different hosts, exact beside prefix, /api beside /apix") {
  auto r = load(R"([upstream.api]
servers = ["127.0.0.1:9000"]
[[route]]
name = "any"
prefix = "/api"
upstream = "api"
[[route]]
name = "host-a"
host = "a.example.com"
prefix = "/api"
upstream = "api"
[[route]]
name = "host-b"
host = "b.example.com"
prefix = "/api"
upstream = "api"
[[route]]
name = "wild"
host = "*.example.com"
prefix = "/api"
upstream = "api"
[[route]]
name = "exact"
exact = "/api"
upstream = "api"
[[route]]
name = "exact-host-a"
host = "a.example.com"
exact = "/api"
respond = {}
[[route]]
name = "apix"
prefix = "/apix"
upstream = "api"
[[route]]
name = "nested"
prefix = "/api/v1"
upstream = "api"
)");
  INFO(dump(r));
  CHECK(r.ok());
  CHECK(r.diagnostics.empty());
}

// ------------------------------------------------------------ route shape

TEST_CASE("unknown upstream: an error at the route's upstream value, naming the upstreams defined") {
  SUBCASE("a typo") {
    auto r = load(R"([upstream.api]
servers = ["127.0.0.1:9000"]
[[route]]
name = "r"
prefix = "/"
upstream = "apii"
)");
    INFO(dump(r));
    CHECK_FALSE(r.ok());
    CHECK(find_diag(r, 6, 12).find("route 'r': unknown upstream 'apii' (defined: api)") != npos);
    CHECK(count(r, Severity::error) == 1);
  }
  SUBCASE("names are case-sensitive") {
    auto r = load("[upstream.api]\nservers = [\"127.0.0.1:9000\"]\n[[route]]\nname = \"r\"\nprefix = \"/\"\nupstream = \"API\"\n");
    INFO(dump(r));
    CHECK_FALSE(r.ok());
    CHECK(find_diag(r, 6, 12).find("unknown upstream 'API'") != npos);
  }
  SUBCASE("no upstream at all") {
    auto r = load("[[route]]\nname = \"r\"\nprefix = \"/\"\nupstream = \"api\"\n");
    INFO(dump(r));
    CHECK_FALSE(r.ok());
    CHECK(find_diag(r, 4, 12).find("unknown upstream 'api' (no [upstream.NAME] is defined)") != npos);
  }
  SUBCASE("a known upstream resolves to its index") {
    auto r = load(R"([upstream.a]
servers = ["127.0.0.1:1"]
[upstream.b]
servers = ["127.0.0.1:2"]
[[route]]
name = "r"
prefix = "/"
upstream = "b"
)");
    INFO(dump(r));
    REQUIRE(r.ok());
    const config::Route& route = r.config->routes[0];
    CHECK(r.config->upstreams.at(route.upstream_index).name == "b");
  }
}

TEST_CASE("strip_prefix together with rewrite_prefix is an error at rewrite_prefix") {
  auto r = load(R"([upstream.api]
servers = ["127.0.0.1:9000"]
[[route]]
name = "r"
prefix = "/api"
upstream = "api"
strip_prefix = true
rewrite_prefix = "/v2"
)");
  INFO(dump(r));
  CHECK_FALSE(r.ok());
  CHECK(find_diag(r, 8, 18).find("route 'r': 'strip_prefix' and 'rewrite_prefix' exclude each other") != npos);
  CHECK(count(r, Severity::error) == 1);

  auto off = load(R"([upstream.api]
servers = ["127.0.0.1:9000"]
[[route]]
name = "r"
prefix = "/api"
upstream = "api"
strip_prefix = false
rewrite_prefix = "/v2"
)");
  INFO(dump(off));
  CHECK(off.ok());
}

TEST_CASE("a route with neither upstream nor respond/redirect is an error at the route") {
  auto r = load(R"([upstream.api]
servers = ["127.0.0.1:9000"]
[[route]]
name = "r"
prefix = "/"
kind = "http"
)");
  INFO(dump(r));
  CHECK_FALSE(r.ok());
  CHECK(find_diag(r, 3, 1).find("route 'r': needs 'upstream', 'respond' or 'redirect'") != npos);
  CHECK(count(r, Severity::error) == 1);
}

TEST_CASE("a route with both upstream and respond/redirect is an error at upstream") {
  SUBCASE("upstream and respond") {
    auto r = load(R"([upstream.api]
servers = ["127.0.0.1:9000"]
[[route]]
name = "r"
prefix = "/"
upstream = "api"
respond = { body = "x" }
)");
    INFO(dump(r));
    CHECK_FALSE(r.ok());
    CHECK(find_diag(r, 6, 12).find("route 'r': has both 'upstream' and 'respond'") != npos);
    CHECK(count(r, Severity::error) == 1);
  }
  SUBCASE("upstream and redirect") {
    auto r = load(R"([upstream.api]
servers = ["127.0.0.1:9000"]
[[route]]
name = "r"
redirect = { scheme = "https" }
prefix = "/"
upstream = "api"
)");
    INFO(dump(r));
    CHECK_FALSE(r.ok());
    CHECK(find_diag(r, 7, 12).find("route 'r': has both 'upstream' and 'redirect'") != npos);
    CHECK(count(r, Severity::error) == 1);
  }
  SUBCASE("respond and redirect, at redirect") {
    auto r = load(R"([[route]]
name = "r"
prefix = "/"
respond = {}
redirect = { location = "/x" }
)");
    INFO(dump(r));
    CHECK_FALSE(r.ok());
    CHECK(find_diag(r, 5, 12).find("route 'r': give either 'respond' or 'redirect', not both") != npos);
  }
}

TEST_CASE("a route that answers itself takes no kind") {
  auto r = load(R"([[route]]
name = "r"
prefix = "/"
respond = {}
kind = "websocket"
)");
  INFO(dump(r));
  CHECK_FALSE(r.ok());
  CHECK(find_diag(r, 5, 8).find("route 'r': 'kind' applies only to routes with an upstream") != npos);
}

TEST_CASE("duplicate route names are an error at the later route") {
  auto r = load(R"([[route]]
name = "x"
exact = "/a"
respond = {}
[[route]]
name = "y"
exact = "/b"
respond = {}
[[route]]
name = "x"
exact = "/c"
respond = {}
)");
  INFO(dump(r));
  CHECK_FALSE(r.ok());
  CHECK(find_diag(r, 9, 1).find("route 'x': the name is already used by the route at line 1") != npos);
  CHECK(count(r, Severity::error) == 1);
}

// --------------------------------------------------------------- listeners

TEST_CASE("listeners: the same address twice is an error at the later address") {
  auto r = load(R"([[listener]]
address = "0.0.0.0:8080"
[[listener]]
address = "0.0.0.0:8080"
)");
  INFO(dump(r));
  CHECK_FALSE(r.ok());
  CHECK(find_diag(r, 4, 11).find("[[listener]]: address 0.0.0.0:8080 overlaps the listener 0.0.0.0:8080 at line 2") != npos);
  CHECK(count(r, Severity::error) == 1);
}

TEST_CASE("listeners: a wildcard address overlaps a specific one on the same port, in either order") {
  auto r = load(R"([[listener]]
address = "127.0.0.1:8080"
[[listener]]
address = "0.0.0.0:8080"
[[listener]]
address = "[::]:9000"
[[listener]]
address = "[::1]:9000"
)");
  INFO(dump(r));
  CHECK_FALSE(r.ok());
  CHECK(find_diag(r, 4, 11).find("address 0.0.0.0:8080 overlaps the listener 127.0.0.1:8080 at line 2") != npos);
  CHECK(find_diag(r, 8, 11).find("address [::1]:9000 overlaps the listener [::]:9000 at line 6") != npos);
  CHECK(count(r, Severity::error) == 2);
}

TEST_CASE("listeners: different ports, different addresses and port 0 do not overlap") {
  auto r = load(R"([[listener]]
address = "0.0.0.0:8080"
[[listener]]
address = "0.0.0.0:8443"
[[listener]]
address = "127.0.0.1:9000"
[[listener]]
address = "127.0.0.2:9000"
[[listener]]
address = "127.0.0.1:0"
[[listener]]
address = "0.0.0.0:0"
[admin]
address = "127.0.0.1:0"
)");
  INFO(dump(r));
  CHECK(r.ok());
  CHECK(r.diagnostics.empty());
}

TEST_CASE("listeners: an IPv4 and an IPv6 listener on one port do not overlap (sockets are IPV6_V6ONLY)") {
  auto r = load(R"([[listener]]
address = "0.0.0.0:8080"
[[listener]]
address = "[::]:8080"
)");
  INFO(dump(r));
  CHECK(r.ok());
  CHECK(r.diagnostics.empty());
}

TEST_CASE("listeners: one IPv6 address written two ways is still a duplicate") {
  auto r = load(R"([[listener]]
address = "[::1]:8080"
[[listener]]
address = "[0:0:0:0:0:0:0:1]:8080"
)");
  INFO(dump(r));
  CHECK_FALSE(r.ok());
  CHECK(find_diag(r, 4, 11).find("overlaps the listener [::1]:8080 at line 2") != npos);
}

TEST_CASE("listeners: the admin address must not overlap a listener") {
  SUBCASE("same address") {
    auto r = load(R"([[listener]]
address = "127.0.0.1:7000"
[admin]
address = "127.0.0.1:7000"
)");
    INFO(dump(r));
    CHECK_FALSE(r.ok());
    CHECK(find_diag(r, 4, 11).find("[admin]: address 127.0.0.1:7000 overlaps the listener 127.0.0.1:7000 at line 2") != npos);
  }
  SUBCASE("a wildcard listener on the admin port") {
    auto r = load(R"([admin]
address = "127.0.0.1:7000"
[[listener]]
address = "0.0.0.0:7000"
)");
    INFO(dump(r));
    CHECK_FALSE(r.ok());
    CHECK(find_diag(r, 2, 11).find("[admin]: address 127.0.0.1:7000 overlaps the listener 0.0.0.0:7000 at line 4") != npos);
  }
  SUBCASE("the default admin address against a listener the user wrote: reported at the listener") {
    auto r = load(R"([[listener]]
address = "0.0.0.0:9901"
)");
    INFO(dump(r));
    CHECK_FALSE(r.ok());
    CHECK(find_diag(r, 2, 11).find("9901") != npos);
  }
}

TEST_CASE("listener TLS: the same SNI host twice on one listener is an error at the later entry") {
  CertDir dir;
  auto r = dir.load(R"([[listener]]
address = "0.0.0.0:8443"
[listener.tls]
cert = "c.pem"
key = "k.pem"
[[listener.tls.sni]]
host = "api.example.com"
cert = "c.pem"
key = "k.pem"
[[listener.tls.sni]]
host = "*.example.com"
cert = "c.pem"
key = "k.pem"
[[listener.tls.sni]]
host = "API.Example.com"
cert = "c.pem"
key = "k.pem"
)");
  INFO(dump(r));
  CHECK_FALSE(r.ok());
  CHECK(find_diag(r, 14, 1).find("[[listener.tls.sni]]: host api.example.com already has a certificate at line 6") != npos);
  CHECK(count(r, Severity::error) == 1);
}

TEST_CASE("listener TLS: the same SNI host on two listeners is fine") {
  CertDir dir;
  auto r = dir.load(R"([[listener]]
address = "0.0.0.0:8443"
[listener.tls]
cert = "c.pem"
key = "k.pem"
[[listener.tls.sni]]
host = "api.example.com"
cert = "c.pem"
key = "k.pem"
[[listener]]
address = "0.0.0.0:9443"
[listener.tls]
cert = "c.pem"
key = "k.pem"
[[listener.tls.sni]]
host = "api.example.com"
cert = "c.pem"
key = "k.pem"
)");
  INFO(dump(r));
  CHECK(r.ok());
  CHECK(r.diagnostics.empty());
}

// ---------------------------------------------------------------- warnings

TEST_CASE("warning: a socketio read_timeout shorter than ping_interval + ping_timeout (45s by default)") {
  SUBCASE("40s against the default heartbeat: warned at read_timeout, load succeeds") {
    auto r = load(R"([upstream.api]
servers = ["127.0.0.1:9000"]
[[route]]
name = "sio"
prefix = "/socket.io"
upstream = "api"
kind = "socketio"
read_timeout = "40s"
)");
    INFO(dump(r));
    CHECK(r.ok());
    CHECK(r.error_count() == 0);
    CHECK(find_diag(r, 8, 16, Severity::warning)
              .find("route 'sio': read_timeout 40s is shorter than the Engine.IO heartbeat "
                    "(ping_interval 25s + ping_timeout 20s = 45s)") != npos);
    CHECK(count(r, Severity::warning) == 1);
  }
  SUBCASE("just under the heartbeat") {
    auto r = load("[upstream.api]\nservers = [\"127.0.0.1:9000\"]\n[[route]]\nname = \"sio\"\nprefix = \"/socket.io\"\n"
                  "upstream = \"api\"\nkind = \"socketio\"\nread_timeout = \"44999ms\"\n");
    INFO(dump(r));
    CHECK(r.ok());
    CHECK(find_diag(r, 8, 16, Severity::warning).find("read_timeout 44999ms is shorter") != npos);
  }
  SUBCASE("exactly the heartbeat, or the 90s default: no warning") {
    for (const char* extra : {"read_timeout = \"45s\"\n", ""}) {
      CAPTURE(extra);
      auto r = load(std::string("[upstream.api]\nservers = [\"127.0.0.1:9000\"]\n[[route]]\nname = \"sio\"\n"
                                "prefix = \"/socket.io\"\nupstream = \"api\"\nkind = \"socketio\"\n") + extra);
      INFO(dump(r));
      CHECK(r.ok());
      CHECK(r.diagnostics.empty());
    }
  }
  SUBCASE("a slower backend heartbeat against the default read_timeout: warned at the route") {
    auto r = load(R"([upstream.api]
servers = ["127.0.0.1:9000"]
[[route]]
name = "sio"
prefix = "/socket.io"
upstream = "api"
kind = "socketio"
ping_interval = "60s"
ping_timeout = "40s"
)");
    INFO(dump(r));
    CHECK(r.ok());
    CHECK(find_diag(r, 3, 1, Severity::warning)
              .find("read_timeout 90s is shorter than the Engine.IO heartbeat (ping_interval 1m + "
                    "ping_timeout 40s = 100s)") != npos);
  }
  SUBCASE("a tuned heartbeat makes a short read_timeout fine") {
    auto r = load(R"([upstream.api]
servers = ["127.0.0.1:9000"]
[[route]]
name = "sio"
prefix = "/socket.io"
upstream = "api"
kind = "socketio"
read_timeout = "20s"
ping_interval = "10s"
ping_timeout = "5s"
)");
    INFO(dump(r));
    CHECK(r.ok());
    CHECK(r.diagnostics.empty());
  }
  SUBCASE("websocket routes have no Engine.IO heartbeat") {
    auto r = load(R"([upstream.api]
servers = ["127.0.0.1:9000"]
[[route]]
name = "ws"
prefix = "/ws"
upstream = "api"
kind = "websocket"
read_timeout = "10s"
)");
    INFO(dump(r));
    CHECK(r.ok());
    CHECK(r.diagnostics.empty());
  }
}

TEST_CASE("warning: affinity on an upstream with a single server, at that server") {
  for (const char* affinity : {"engine.io", "cookie"}) {
    CAPTURE(affinity);
    auto r = load(std::string("[upstream.a]\nservers = [\"127.0.0.1:8000\"]\naffinity = \"") + affinity + "\"\n");
    INFO(dump(r));
    CHECK(r.ok());
    CHECK(find_diag(r, 2, 12, Severity::warning)
              .find(std::string("upstream 'a': affinity = \"") + affinity + "\" has no effect with a single server") != npos);
    CHECK(count(r, Severity::warning) == 1);
  }
  SUBCASE("no warning: two servers, affinity none, or a dns: name that may resolve to many") {
    for (const char* toml : {"[upstream.a]\nservers = [\"127.0.0.1:1\", \"127.0.0.1:2\"]\naffinity = \"engine.io\"\n",
                             "[upstream.a]\nservers = [\"127.0.0.1:1\"]\naffinity = \"none\"\n",
                             "[upstream.a]\nservers = [\"dns:sio.default.svc:1\"]\naffinity = \"cookie\"\n"}) {
      CAPTURE(toml);
      auto r = load(toml);
      INFO(dump(r));
      CHECK(r.ok());
      CHECK(r.diagnostics.empty());
    }
  }
}

TEST_CASE("warning: a catch-all http route beside a realtime one says which wins for /socket.io") {
  const char* catchall = "[[route]]\nname = \"catchall\"\nprefix = \"/\"\nupstream = \"api\"\n";
  const char* sio = "[[route]]\nname = \"sio\"\nprefix = \"/socket.io\"\nupstream = \"api\"\nkind = \"socketio\"\n";
  const std::string head = "[upstream.api]\nservers = [\"127.0.0.1:9000\"]\n";
  SUBCASE("catch-all declared first") {
    auto r = load(head + catchall + sio);
    INFO(dump(r));
    CHECK(r.ok());
    CHECK(r.error_count() == 0);
    std::string msg = find_diag(r, 5, 10, Severity::warning);
    CHECK(msg.find("route 'catchall' (prefix /, kind http) catches every path no other route matches") != npos);
    CHECK(msg.find("socketio route 'sio' still wins for /socket.io (longer prefix)") != npos);
    CHECK(count(r, Severity::warning) == 1);
  }
  SUBCASE("catch-all declared last") {
    auto r = load(head + sio + catchall);
    INFO(dump(r));
    CHECK(r.ok());
    CHECK(find_diag(r, 10, 10, Severity::warning).find("socketio route 'sio' still wins for /socket.io (longer prefix)") != npos);
    CHECK(count(r, Severity::warning) == 1);
  }
  SUBCASE("kind = \"http\" written out") {
    auto r = load(head + "[[route]]\nname = \"catchall\"\nkind = \"http\"\nprefix = \"/\"\nupstream = \"api\"\n" + sio);
    INFO(dump(r));
    CHECK(r.ok());
    CHECK(find_diag(r, 6, 10, Severity::warning).find("still wins for /socket.io") != npos);
  }
}

TEST_CASE("warning: the catch-all warning names every realtime kind and how it wins") {
  auto r = load(R"([upstream.api]
servers = ["127.0.0.1:9000"]
[[route]]
name = "catchall"
prefix = "/"
upstream = "api"
[[route]]
name = "ws"
exact = "/ws"
upstream = "api"
kind = "websocket"
[[route]]
name = "events"
prefix = "/events"
upstream = "api"
kind = "sse"
)");
  INFO(dump(r));
  CHECK(r.ok());
  std::string msg = find_diag(r, 5, 10, Severity::warning);
  CHECK(msg.find("websocket route 'ws' still wins for /ws (exact beats prefix)") != npos);
  CHECK(msg.find("sse route 'events' still wins for /events (longer prefix)") != npos);
  CHECK(count(r, Severity::warning) == 2);
}

TEST_CASE("warning: a catch-all on a host hides a realtime route with a less specific host") {
  SUBCASE("exact host catch-all, host-less socketio") {
    auto r = load(R"([upstream.api]
servers = ["127.0.0.1:9000"]
[[route]]
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
    INFO(dump(r));
    CHECK(r.ok());
    std::string msg = find_diag(r, 6, 10, Severity::warning);
    CHECK(msg.find("socketio route 'sio' (prefix /socket.io, less specific host) is never reached for www.example.com") != npos);
  }
  SUBCASE("exact host catch-all, wildcard socketio that covers it") {
    auto r = load(R"([upstream.api]
servers = ["127.0.0.1:9000"]
[[route]]
name = "web"
host = "www.example.com"
prefix = "/"
upstream = "api"
[[route]]
name = "sio"
host = "*.example.com"
prefix = "/socket.io"
upstream = "api"
kind = "socketio"
)");
    INFO(dump(r));
    CHECK(r.ok());
    CHECK(find_diag(r, 6, 10, Severity::warning).find("is never reached for www.example.com") != npos);
  }
  SUBCASE("no warning when the wildcard does not cover the host (it matches exactly one more label)") {
    auto r = load(R"([upstream.api]
servers = ["127.0.0.1:9000"]
[[route]]
name = "web"
host = "example.com"
prefix = "/"
upstream = "api"
[[route]]
name = "sio"
host = "*.example.com"
prefix = "/socket.io"
upstream = "api"
kind = "socketio"
)");
    INFO(dump(r));
    CHECK(r.ok());
    CHECK(r.diagnostics.empty());
  }
}

TEST_CASE("no catch-all warning without a realtime route, for a realtime catch-all, or a local one") {
  for (const char* routes : {
           // only http routes
           "[[route]]\nname = \"c\"\nprefix = \"/\"\nupstream = \"api\"\n"
           "[[route]]\nname = \"x\"\nprefix = \"/x\"\nupstream = \"api\"\n",
           // the catch-all is itself realtime
           "[[route]]\nname = \"c\"\nprefix = \"/\"\nupstream = \"api\"\nkind = \"websocket\"\n"
           "[[route]]\nname = \"s\"\nprefix = \"/socket.io\"\nupstream = \"api\"\nkind = \"socketio\"\n",
           // the catch-all answers itself
           "[[route]]\nname = \"c\"\nprefix = \"/\"\nrespond = {}\n"
           "[[route]]\nname = \"s\"\nprefix = \"/socket.io\"\nupstream = \"api\"\nkind = \"socketio\"\n",
       }) {
    CAPTURE(routes);
    auto r = load(std::string("[upstream.api]\nservers = [\"127.0.0.1:9000\"]\n") + routes);
    INFO(dump(r));
    CHECK(r.ok());
    CHECK(r.diagnostics.empty());
  }
}

TEST_CASE("warning: upstream tls verify = false, at the value") {
  auto r = load(R"([upstream.a]
servers = ["127.0.0.1:8443"]
tls = { sni = "a.internal", verify = false }
)");
  INFO(dump(r));
  CHECK(r.ok());
  CHECK(find_diag(r, 3, 38, Severity::warning).find("upstream 'a' tls: verify = false accepts any certificate") != npos);
  CHECK(count(r, Severity::warning) == 1);
  REQUIRE(r.config->upstreams[0].tls.has_value());
  CHECK_FALSE(r.config->upstreams[0].tls->verify);

  auto on = load("[upstream.a]\nservers = [\"127.0.0.1:8443\"]\ntls = { verify = true }\n");
  INFO(dump(on));
  CHECK(on.ok());
  CHECK(on.diagnostics.empty());
}

TEST_CASE("warning: settings that do nothing on a route's kind") {
  auto r = load(R"([upstream.api]
servers = ["127.0.0.1:9000"]
[[route]]
name = "plain"
prefix = "/plain"
upstream = "api"
tunnel_idle = "2h"
ping_interval = "10s"
allowed_origins = ["https://a.example.com"]
[[route]]
name = "local"
prefix = "/local"
respond = {}
strip_prefix = true
[[route]]
name = "moved"
prefix = "/moved"
redirect = { location = "https://x/" }
rewrite_prefix = "/y"
)");
  INFO(dump(r));
  CHECK(r.ok());
  CHECK(r.error_count() == 0);
  CHECK(find_diag(r, 7, 15, Severity::warning).find("route 'plain': 'tunnel_idle' is ignored on a http route") != npos);
  CHECK(find_diag(r, 8, 17, Severity::warning).find("'ping_interval'/'ping_timeout' apply only to socketio routes") != npos);
  CHECK(find_diag(r, 9, 19, Severity::warning).find("'allowed_origins' is checked only on websocket and socketio routes") != npos);
  CHECK(find_diag(r, 14, 16, Severity::warning).find("route 'local': path rewriting is ignored on a route that answers itself") != npos);
  CHECK(find_diag(r, 19, 18, Severity::warning).find("route 'moved': path rewriting is ignored") != npos);
  CHECK(count(r, Severity::warning) == 5);
}

TEST_CASE("warnings never fail a load, however many there are") {
  auto r = load(R"([upstream.api]
servers = ["127.0.0.1:9000"]
affinity = "engine.io"
tls = { verify = false }
[[route]]
name = "catchall"
prefix = "/"
upstream = "api"
[[route]]
name = "sio"
prefix = "/socket.io"
upstream = "api"
kind = "socketio"
read_timeout = "30s"
)");
  INFO(dump(r));
  REQUIRE(r.ok());
  CHECK(r.error_count() == 0);
  CHECK(count(r, Severity::warning) == 4);
  CHECK(find_diag(r, 2, 12, Severity::warning).find("has no effect with a single server") != npos);
  CHECK(find_diag(r, 4, 18, Severity::warning).find("verify = false") != npos);
  CHECK(find_diag(r, 7, 10, Severity::warning).find("still wins for /socket.io") != npos);
  CHECK(find_diag(r, 14, 16, Severity::warning).find("read_timeout 30s is shorter") != npos);
  CHECK(r.config->routes.size() == 2);
}

TEST_CASE("an error among warnings fails the load, and every diagnostic is still reported in file order") {
  auto r = load(R"([upstream.api]
servers = ["127.0.0.1:9000"]
affinity = "cookie"
[[route]]
name = "sio"
prefix = "/socket.io"
upstream = "api"
kind = "socketio"
read_timeout = "30s"
[[route]]
name = "dup"
prefix = "/socket.io/"
upstream = "nope"
)");
  INFO(dump(r));
  CHECK_FALSE(r.ok());
  CHECK(r.config == nullptr);
  CHECK(r.error_count() == 2);
  CHECK(count(r, Severity::warning) == 2);
  CHECK(find_diag(r, 12, 10).find("route 'dup': matches the same requests as route 'sio' (line 4)") != npos);
  CHECK(find_diag(r, 13, 12).find("unknown upstream 'nope'") != npos);
  for (size_t i = 1; i < r.diagnostics.size(); ++i) {
    const auto& a = r.diagnostics[i - 1].pos;
    const auto& b = r.diagnostics[i].pos;
    CHECK((a.line < b.line || (a.line == b.line && a.column <= b.column)));
  }
  REQUIRE_FALSE(r.diagnostics.empty());
  CHECK(config::format_diagnostic("conf/sluice.toml", r.diagnostics.front()) ==
        "conf/sluice.toml:2:12: warning: upstream 'api': affinity = \"cookie\" has no effect with a single server");
  CHECK(config::format_diagnostic("conf/sluice.toml", r.diagnostics.back())
            .starts_with("conf/sluice.toml:13:12: error: route 'dup': unknown upstream 'nope'"));
}
