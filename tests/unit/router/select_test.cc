// Route selection, one TEST_CASE per rule of SPEC.md "Route selection (never
// depends on order)", the /routes order of "Details", and a randomized check
// of RouteTable::select against a reference written from those rules.

#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "sluice/config.h"
#include "sluice/router.h"

using namespace sluice;
using router::LossReason;
using router::RouteTable;

namespace {

std::string diagnostics_of(const config::LoadResult& r) {
  std::string out;
  for (const auto& d : r.diagnostics) out += config::format_diagnostic("sluice.toml", d) + "\n";
  return out;
}

std::shared_ptr<const config::Config> load(std::string_view toml) {
  config::LoadResult r = config::load_string(toml, "/tmp/x/sluice.toml");
  INFO(diagnostics_of(r));
  REQUIRE(r.ok());
  return r.config;
}

// Guaranteed copy elision: the table is built in the caller's object.
RouteTable table(std::string_view toml) { return RouteTable(load(toml)); }

// The route chosen for a request with Host `host` (as a client sends it, ""
// = no Host) and request target `target`, the way live traffic asks.
std::string pick(const RouteTable& t, std::string_view host, std::string_view target) {
  const config::Route* r = t.select(router::normalize_host(host), router::split_target(target).path);
  return r ? r->name : "(none)";
}

std::vector<std::string> names(const std::vector<const config::Route*>& routes) {
  std::vector<std::string> out;
  for (const config::Route* r : routes) out.push_back(r->name);
  return out;
}

const config::Route& named(const RouteTable& t, std::string_view name) {
  for (const config::Route& r : t.config().routes)
    if (r.name == name) return r;
  FAIL("no route named " << name);
  return t.config().routes.front();
}

}  // namespace

TEST_CASE("select: /socket.io beats a catch-all / whichever is declared first") {
  constexpr std::string_view catchall_first = R"(
[upstream.gateway]
servers = ["127.0.0.1:8000"]

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
  constexpr std::string_view socketio_first = R"(
[upstream.gateway]
servers = ["127.0.0.1:8000"]

[[route]]
name = "socketio"
prefix = "/socket.io"
upstream = "gateway"
kind = "socketio"

[[route]]
name = "catchall"
prefix = "/"
upstream = "gateway"
)";
  for (std::string_view toml : {catchall_first, socketio_first}) {
    RouteTable t = table(toml);
    CAPTURE(toml);
    CHECK(pick(t, "", "/socket.io/?EIO=4&transport=polling") == "socketio");
    CHECK(pick(t, "", "/socket.io/?EIO=4&transport=websocket&sid=abc") == "socketio");
    CHECK(pick(t, "", "/socket.io") == "socketio");
    CHECK(pick(t, "", "/socket.io/") == "socketio");
    CHECK(pick(t, "", "/") == "catchall");
    CHECK(pick(t, "", "/users/1") == "catchall");
    CHECK(pick(t, "", "/socket.iox") == "catchall");
    CHECK(pick(t, "", "/api/socket.io/") == "catchall");
  }
}

TEST_CASE("select: /api matches /api, /api/ and /api/x, never /apix") {
  RouteTable t = table(R"(
[upstream.u]
servers = ["127.0.0.1:9000"]

[[route]]
name = "api"
prefix = "/api"
upstream = "u"
)");
  CHECK(pick(t, "", "/api") == "api");
  CHECK(pick(t, "", "/api/") == "api");
  CHECK(pick(t, "", "/api/x") == "api");
  CHECK(pick(t, "", "/api/x/y/z") == "api");
  CHECK(pick(t, "", "/apix") == "(none)");
  CHECK(pick(t, "", "/apix/y") == "(none)");
  CHECK(pick(t, "", "/ap") == "(none)");
  CHECK(pick(t, "", "/") == "(none)");
  CHECK(pick(t, "", "/x/api") == "(none)");
}

TEST_CASE("select: /api and /apix side by side each get their own segment") {
  RouteTable t = table(R"(
[upstream.u]
servers = ["127.0.0.1:9000"]

[[route]]
name = "apix"
prefix = "/apix"
upstream = "u"

[[route]]
name = "api"
prefix = "/api"
upstream = "u"
)");
  CHECK(pick(t, "", "/api") == "api");
  CHECK(pick(t, "", "/api/x") == "api");
  CHECK(pick(t, "", "/api/apix") == "api");
  CHECK(pick(t, "", "/apix") == "apix");
  CHECK(pick(t, "", "/apix/") == "apix");
  CHECK(pick(t, "", "/apix/1") == "apix");
  CHECK(pick(t, "", "/apixy") == "(none)");
}

TEST_CASE("select: a request with a trailing slash matches the prefix without it") {
  RouteTable t = table(R"(
[upstream.u]
servers = ["127.0.0.1:9000"]

[[route]]
name = "api"
prefix = "/api"
upstream = "u"

[[route]]
name = "v1"
prefix = "/api/v1"
upstream = "u"
)");
  CHECK(pick(t, "", "/api/") == "api");
  CHECK(pick(t, "", "/api//") == "api");
  CHECK(pick(t, "", "/api/v1/") == "v1");
  CHECK(pick(t, "", "/api/v1") == "v1");
  CHECK(pick(t, "", "/api/v1x/") == "api");
}

TEST_CASE("select: a prefix written with a trailing slash is the same prefix") {
  RouteTable t = table(R"(
[upstream.u]
servers = ["127.0.0.1:9000"]

[[route]]
name = "api"
prefix = "/api/"
upstream = "u"

[[route]]
name = "v1"
prefix = "/api/v1/"
upstream = "u"
)");
  CHECK(pick(t, "", "/api") == "api");
  CHECK(pick(t, "", "/api/") == "api");
  CHECK(pick(t, "", "/api/x") == "api");
  CHECK(pick(t, "", "/api/v1") == "v1");
  CHECK(pick(t, "", "/api/v1/x") == "v1");
  CHECK(pick(t, "", "/apix") == "(none)");
  CHECK(pick(t, "", "/api/v1x") == "api");
}

TEST_CASE("select: the longest prefix wins, by whole segments") {
  RouteTable t = table(R"(
[upstream.u]
servers = ["127.0.0.1:9000"]

[[route]]
name = "root"
prefix = "/"
upstream = "u"

[[route]]
name = "abc"
prefix = "/a/b/c"
upstream = "u"

[[route]]
name = "a"
prefix = "/a"
upstream = "u"

[[route]]
name = "ab"
prefix = "/a/b"
upstream = "u"
)");
  CHECK(pick(t, "", "/a/b/c/d") == "abc");
  CHECK(pick(t, "", "/a/b/c") == "abc");
  CHECK(pick(t, "", "/a/b/cd") == "ab");
  CHECK(pick(t, "", "/a/b") == "ab");
  CHECK(pick(t, "", "/a/bc") == "a");
  CHECK(pick(t, "", "/ab") == "root");
  CHECK(pick(t, "", "/") == "root");
}

TEST_CASE("select: exact beats prefix on the same path and matches only that path") {
  RouteTable t = table(R"(
[upstream.u]
servers = ["127.0.0.1:9000"]

[[route]]
name = "health-prefix"
prefix = "/healthz"
upstream = "u"

[[route]]
name = "health-exact"
exact = "/healthz"
respond = { status = 200, body = "ok" }

[[route]]
name = "root-exact"
exact = "/"
respond = { status = 200 }

[[route]]
name = "root"
prefix = "/"
upstream = "u"
)");
  CHECK(pick(t, "", "/healthz") == "health-exact");
  CHECK(pick(t, "", "/healthz?verbose=1") == "health-exact");
  CHECK(pick(t, "", "/healthz/") == "health-prefix");
  CHECK(pick(t, "", "/healthz/deep") == "health-prefix");
  CHECK(pick(t, "", "/healthzz") == "root");
  CHECK(pick(t, "", "/") == "root-exact");
  CHECK(pick(t, "", "/x") == "root");
}

TEST_CASE("select: an exact path is compared byte for byte, trailing slash included") {
  RouteTable t = table(R"(
[upstream.u]
servers = ["127.0.0.1:9000"]

[[route]]
name = "dir"
exact = "/dir/"
upstream = "u"

[[route]]
name = "file"
exact = "/file"
upstream = "u"
)");
  CHECK(pick(t, "", "/dir/") == "dir");
  CHECK(pick(t, "", "/dir") == "(none)");
  CHECK(pick(t, "", "/dir/x") == "(none)");
  CHECK(pick(t, "", "/file") == "file");
  CHECK(pick(t, "", "/file/") == "(none)");
  CHECK(pick(t, "", "/file/x") == "(none)");
}

TEST_CASE("select: exact host, then wildcard host, then no host") {
  RouteTable t = table(R"(
[upstream.u]
servers = ["127.0.0.1:9000"]

[[route]]
name = "any"
prefix = "/"
upstream = "u"

[[route]]
name = "wild"
host = "*.example.com"
prefix = "/"
upstream = "u"

[[route]]
name = "api-host"
host = "api.example.com"
prefix = "/"
upstream = "u"
)");
  CHECK(pick(t, "api.example.com", "/x") == "api-host");
  CHECK(pick(t, "www.example.com", "/x") == "wild");
  CHECK(pick(t, "example.com", "/x") == "any");
  CHECK(pick(t, "other.org", "/x") == "any");
  CHECK(pick(t, "", "/x") == "any");
}

TEST_CASE("select: the host class decides before exact-vs-prefix and prefix length") {
  RouteTable t = table(R"(
[upstream.u]
servers = ["127.0.0.1:9000"]

[[route]]
name = "any-health"
exact = "/healthz"
upstream = "u"

[[route]]
name = "any-socketio"
prefix = "/socket.io"
upstream = "u"
kind = "socketio"

[[route]]
name = "wild-deep"
host = "*.example.com"
prefix = "/a/b/c"
upstream = "u"

[[route]]
name = "host-root"
host = "app.example.com"
prefix = "/"
upstream = "u"

[[route]]
name = "wild-root"
host = "*.example.com"
prefix = "/"
upstream = "u"
)");
  // An exact host with prefix / wins over an exact path and a longer prefix
  // of less specific hosts.
  CHECK(pick(t, "app.example.com", "/healthz") == "host-root");
  CHECK(pick(t, "app.example.com", "/a/b/c/d") == "host-root");
  CHECK(pick(t, "app.example.com", "/socket.io/") == "host-root");
  // A wildcard prefix / wins over host-less routes.
  CHECK(pick(t, "www.example.com", "/healthz") == "wild-root");
  CHECK(pick(t, "www.example.com", "/socket.io/") == "wild-root");
  CHECK(pick(t, "www.example.com", "/a/b/c/d") == "wild-deep");
  // Without a host route that matches, the host-less ones decide.
  CHECK(pick(t, "other.org", "/healthz") == "any-health");
  CHECK(pick(t, "other.org", "/socket.io/") == "any-socketio");
}

TEST_CASE("select: a host class is used only if one of its routes matches the path") {
  RouteTable t = table(R"(
[upstream.u]
servers = ["127.0.0.1:9000"]

[[route]]
name = "host-api"
host = "api.example.com"
prefix = "/api"
upstream = "u"

[[route]]
name = "wild-ws"
host = "*.example.com"
prefix = "/ws"
upstream = "u"

[[route]]
name = "any-root"
prefix = "/"
upstream = "u"
)");
  CHECK(pick(t, "api.example.com", "/api/users") == "host-api");
  CHECK(pick(t, "api.example.com", "/ws/1") == "wild-ws");    // exact host class has no match
  CHECK(pick(t, "api.example.com", "/other") == "any-root");  // neither host class matches
  CHECK(pick(t, "api.example.com", "/apix") == "any-root");
  CHECK(pick(t, "www.example.com", "/api/users") == "any-root");
  CHECK(pick(t, "www.example.com", "/ws") == "wild-ws");
}

TEST_CASE("select: with no host-less route, an unmatched host class gives no route") {
  RouteTable t = table(R"(
[upstream.u]
servers = ["127.0.0.1:9000"]

[[route]]
name = "host-api"
host = "api.example.com"
prefix = "/api"
upstream = "u"
)");
  CHECK(pick(t, "api.example.com", "/api") == "host-api");
  CHECK(pick(t, "api.example.com", "/web") == "(none)");
  CHECK(pick(t, "web.example.com", "/api") == "(none)");
}

TEST_CASE("select: *.example.com matches exactly one more label") {
  RouteTable t = table(R"(
[upstream.u]
servers = ["127.0.0.1:9000"]

[[route]]
name = "wild"
host = "*.example.com"
prefix = "/"
upstream = "u"
)");
  CHECK(pick(t, "a.example.com", "/") == "wild");
  CHECK(pick(t, "www-2.example.com", "/x") == "wild");
  CHECK(pick(t, "example.com", "/") == "(none)");
  CHECK(pick(t, "a.b.example.com", "/") == "(none)");
  CHECK(pick(t, "aexample.com", "/") == "(none)");
  CHECK(pick(t, "a.example.org", "/") == "(none)");
  CHECK(pick(t, "a.example.com.evil.org", "/") == "(none)");
  CHECK(pick(t, "", "/") == "(none)");
}

TEST_CASE("select: a deeper wildcard is its own suffix") {
  RouteTable t = table(R"(
[upstream.u]
servers = ["127.0.0.1:9000"]

[[route]]
name = "deep"
host = "*.b.example.com"
prefix = "/"
upstream = "u"

[[route]]
name = "shallow"
host = "*.example.com"
prefix = "/"
upstream = "u"
)");
  CHECK(pick(t, "a.b.example.com", "/") == "deep");
  CHECK(pick(t, "b.example.com", "/") == "shallow");
  CHECK(pick(t, "x.a.b.example.com", "/") == "(none)");
}

TEST_CASE("select: host comparison ignores case and port") {
  RouteTable t = table(R"(
[upstream.u]
servers = ["127.0.0.1:9000"]

[[route]]
name = "api"
host = "api.example.com"
prefix = "/"
upstream = "u"

[[route]]
name = "upper-in-config"
host = "Admin.Example.COM"
prefix = "/"
upstream = "u"

[[route]]
name = "wild"
host = "*.example.org"
prefix = "/"
upstream = "u"
)");
  CHECK(router::normalize_host("API.Example.com:8443") == "api.example.com");
  CHECK(pick(t, "API.Example.com:8443", "/x") == "api");
  CHECK(pick(t, "api.example.com:80", "/x") == "api");
  CHECK(pick(t, "API.EXAMPLE.COM", "/x") == "api");
  CHECK(pick(t, "admin.example.com", "/") == "upper-in-config");
  CHECK(pick(t, "ADMIN.example.com:9", "/") == "upper-in-config");
  CHECK(pick(t, "WWW.Example.ORG:8443", "/") == "wild");
  CHECK(pick(t, "apix.example.com:8443", "/") == "(none)");
}

TEST_CASE("select: without a Host only host-less routes can match") {
  RouteTable t = table(R"(
[upstream.u]
servers = ["127.0.0.1:9000"]

[[route]]
name = "hosted"
host = "a.example.com"
prefix = "/"
upstream = "u"

[[route]]
name = "wild"
host = "*.example.com"
prefix = "/"
upstream = "u"

[[route]]
name = "hostless"
prefix = "/x"
upstream = "u"
)");
  CHECK(router::normalize_host("") == "");
  CHECK(pick(t, "", "/") == "(none)");
  CHECK(pick(t, "", "/y") == "(none)");
  CHECK(pick(t, "", "/x/1") == "hostless");
  CHECK(pick(t, "a.example.com", "/x/1") == "hosted");
}

TEST_CASE("select: the query string is never part of matching") {
  CHECK(router::split_target("/a/b?c=/d?e").path == "/a/b");
  CHECK(router::split_target("/a/b?c=/d?e").query == "?c=/d?e");
  CHECK(router::split_target("/a/b").path == "/a/b");
  CHECK(router::split_target("/a/b").query.empty());
  CHECK(router::split_target("/?").path == "/");
  CHECK(router::split_target("/?").query == "?");

  RouteTable t = table(R"(
[upstream.u]
servers = ["127.0.0.1:9000"]

[[route]]
name = "search"
exact = "/search"
upstream = "u"

[[route]]
name = "api"
prefix = "/api"
upstream = "u"

[[route]]
name = "socketio"
prefix = "/socket.io"
upstream = "u"
kind = "socketio"
)");
  CHECK(pick(t, "", "/search?q=1") == "search");
  CHECK(pick(t, "", "/search?") == "search");
  CHECK(pick(t, "", "/api?x=1") == "api");
  CHECK(pick(t, "", "/apix?y=/api") == "(none)");
  CHECK(pick(t, "", "/?p=/socket.io/") == "(none)");
  CHECK(pick(t, "", "/other?next=/api/x") == "(none)");
  CHECK(pick(t, "", "/socket.io?EIO=4") == "socketio");
}

TEST_CASE("select: paths are not decoded or normalized before matching") {
  RouteTable t = table(R"(
[upstream.u]
servers = ["127.0.0.1:9000"]

[[route]]
name = "api-x"
prefix = "/api/x"
upstream = "u"

[[route]]
name = "api"
prefix = "/api"
upstream = "u"
)");
  CHECK(pick(t, "", "/api%2Fx") == "(none)");    // one segment "api%2Fx"
  CHECK(pick(t, "", "/api/x%2Fy") == "api");     // segment "x%2Fy" is not "x"
  CHECK(pick(t, "", "/api/x/%2Fy") == "api-x");
  CHECK(pick(t, "", "/%61pi/x") == "(none)");    // %61 is 'a', but bytes decide
  CHECK(pick(t, "", "/api/%78") == "api");       // %78 is 'x'
  CHECK(pick(t, "", "/API/x") == "(none)");      // paths are case-sensitive
}

TEST_CASE("select: a prefix with percent-encoding matches the same bytes only") {
  RouteTable t = table(R"(
[upstream.u]
servers = ["127.0.0.1:9000"]

[[route]]
name = "encoded"
prefix = "/a%2Fb"
upstream = "u"
)");
  CHECK(pick(t, "", "/a%2Fb") == "encoded");
  CHECK(pick(t, "", "/a%2Fb/c") == "encoded");
  CHECK(pick(t, "", "/a/b") == "(none)");
  CHECK(pick(t, "", "/a%2fb") == "(none)");
}

TEST_CASE("ordered: host class, exact before prefix, longer path first, then name") {
  RouteTable t = table(R"(
[upstream.u]
servers = ["127.0.0.1:9000"]

[[route]]
name = "z-root"
prefix = "/"
upstream = "u"

[[route]]
name = "y-bb"
prefix = "/bb"
upstream = "u"

[[route]]
name = "x-aa"
prefix = "/aa"
upstream = "u"

[[route]]
name = "m-long"
prefix = "/long/path/"
upstream = "u"

[[route]]
name = "n-exact"
exact = "/x"
upstream = "u"

[[route]]
name = "wild-root"
host = "*.example.com"
prefix = "/"
upstream = "u"

[[route]]
name = "wild-exact"
host = "*.example.com"
exact = "/"
upstream = "u"

[[route]]
name = "host-b"
host = "b.example.com"
prefix = "/a"
upstream = "u"

[[route]]
name = "host-a"
host = "a.example.com"
prefix = "/b"
upstream = "u"

[[route]]
name = "host-exact"
host = "c.example.com"
exact = "/e"
upstream = "u"
)");
  CHECK(names(t.ordered()) == std::vector<std::string>{
                                  "host-exact",  // exact host, exact path
                                  "host-a",      // exact host, prefix, same length: by name
                                  "host-b",
                                  "wild-exact",  // wildcard, exact path
                                  "wild-root",
                                  "n-exact",     // no host, exact path
                                  "m-long",      // "/long/path" is the longest prefix
                                  "x-aa",        // "/aa" and "/bb": by name
                                  "y-bb",
                                  "z-root",
                              });
  CHECK(t.ordered().size() == t.config().routes.size());
}

TEST_CASE("shadowed: a longer prefix shadows the catch-all with reason shorter prefix") {
  RouteTable t = table(R"(
[upstream.u]
servers = ["127.0.0.1:9000"]

[[route]]
name = "catchall"
prefix = "/"
upstream = "u"

[[route]]
name = "socketio"
prefix = "/socket.io"
upstream = "u"
kind = "socketio"

[[route]]
name = "api"
prefix = "/api"
upstream = "u"
)");
  const config::Route* winner = t.select("", "/socket.io/");
  REQUIRE(winner != nullptr);
  CHECK(winner->name == "socketio");
  auto lost = t.shadowed(*winner, "", "/socket.io/");
  REQUIRE(lost.size() == 1);  // "api" does not match, the winner is not listed
  CHECK(lost[0].first->name == "catchall");
  CHECK(lost[0].second == LossReason::shorter_prefix);
  CHECK(router::to_string(LossReason::shorter_prefix) == "shorter prefix");

  const config::Route* root = t.select("", "/users");
  REQUIRE(root != nullptr);
  CHECK(root->name == "catchall");
  CHECK(t.shadowed(*root, "", "/users").empty());
}

TEST_CASE("shadowed: an exact route lists the prefixes it beats as exact beats prefix") {
  RouteTable t = table(R"(
[upstream.u]
servers = ["127.0.0.1:9000"]

[[route]]
name = "root"
prefix = "/"
upstream = "u"

[[route]]
name = "health-prefix"
prefix = "/healthz"
upstream = "u"

[[route]]
name = "health"
exact = "/healthz"
respond = { status = 200, body = "ok" }
)");
  const config::Route& winner = named(t, "health");
  CHECK(t.select("", "/healthz") == &winner);
  auto lost = t.shadowed(winner, "", "/healthz");
  REQUIRE(lost.size() == 2);
  CHECK(lost[0].first->name == "health-prefix");  // most specific first
  CHECK(lost[0].second == LossReason::exact_beats_prefix);
  CHECK(lost[1].first->name == "root");
  CHECK(lost[1].second == LossReason::exact_beats_prefix);
  CHECK(router::to_string(LossReason::exact_beats_prefix) == "exact beats prefix");
}

TEST_CASE("shadowed: routes of less specific host classes lose as less specific host") {
  RouteTable t = table(R"(
[upstream.u]
servers = ["127.0.0.1:9000"]

[[route]]
name = "any-sio"
prefix = "/socket.io"
upstream = "u"

[[route]]
name = "any-exact"
exact = "/socket.io/"
upstream = "u"

[[route]]
name = "wild"
host = "*.example.com"
prefix = "/socket.io"
upstream = "u"

[[route]]
name = "host"
host = "app.example.com"
prefix = "/"
upstream = "u"

[[route]]
name = "other-host"
host = "other.example.com"
prefix = "/"
upstream = "u"
)");
  const config::Route* winner = t.select("app.example.com", "/socket.io/");
  REQUIRE(winner != nullptr);
  CHECK(winner->name == "host");
  auto lost = t.shadowed(*winner, "app.example.com", "/socket.io/");
  REQUIRE(lost.size() == 3);  // "other-host" does not match the host
  CHECK(lost[0].first->name == "wild");
  CHECK(lost[1].first->name == "any-exact");
  CHECK(lost[2].first->name == "any-sio");
  for (const auto& [route, why] : lost) {
    CAPTURE(route->name);
    CHECK(why == LossReason::less_specific_host);
  }
  CHECK(router::to_string(LossReason::less_specific_host) == "less specific host");
}

TEST_CASE("select agrees with a brute-force reference of the SPEC rules on random tables") {
  // Reference, written from SPEC.md alone: Host lower-cased without port;
  // `*.d` matches exactly one more label; a prefix matches whole segments and
  // "/p/" is the prefix "/p"; an exact path matches byte for byte. Among the
  // matching routes the best host class wins, then exact, then the longest
  // prefix; two routes that tie are a config error.
  struct Gen {
    std::string name;
    std::string host;  // as written in the config, "" = none
    bool exact = false;
    std::string path;  // as written in the config
  };
  auto lower = [](std::string s) {
    for (char& c : s)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return s;
  };
  auto ref_host = [&](std::string_view h) {
    size_t colon = h.find(':');
    return lower(std::string(h.substr(0, colon)));
  };
  auto ref_prefix = [](std::string p) {
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    return p;
  };
  auto host_class = [](const std::string& host) { return host.empty() ? 2 : host.starts_with("*.") ? 1 : 0; };
  auto host_matches = [&](const Gen& g, const std::string& req) {
    std::string h = lower(g.host);
    if (h.empty()) return true;
    if (req.empty()) return false;
    if (!h.starts_with("*.")) return h == req;
    size_t dot = req.find('.');
    return dot != std::string::npos && dot > 0 && req.substr(dot + 1) == h.substr(2);
  };
  auto path_matches = [&](const Gen& g, const std::string& path) {
    if (g.exact) return path == g.path;
    std::string p = ref_prefix(g.path);
    if (p == "/") return path.starts_with("/");
    return path.starts_with(p) && (path.size() == p.size() || path[p.size()] == '/');
  };
  auto rank = [&](const Gen& g) {
    return std::tuple{host_class(g.host), g.exact ? 0 : 1, -static_cast<long>(ref_prefix(g.path).size())};
  };
  auto to_toml = [](const std::vector<Gen>& routes) {
    std::string toml = "[upstream.u]\nservers = [\"127.0.0.1:9000\"]\n";
    for (const Gen& g : routes) {
      toml += "\n[[route]]\nname = \"" + g.name + "\"\n";
      if (!g.host.empty()) toml += "host = \"" + g.host + "\"\n";
      toml += std::string(g.exact ? "exact" : "prefix") + " = \"" + g.path + "\"\nupstream = \"u\"\n";
    }
    return toml;
  };

  std::mt19937 rng(424242);
  auto one_of = [&](const std::vector<std::string>& v) { return v[rng() % v.size()]; };
  const std::vector<std::string> route_hosts = {"", "", "", "a.example.com", "A.Example.COM", "example.com",
                                                "*.example.com", "*.EXAMPLE.com", "*.b.example.com",
                                                "*.other.org"};
  const std::vector<std::string> request_hosts = {"", "a.example.com", "A.EXAMPLE.COM:8443", "a.example.com:80",
                                                  "b.example.com", "example.com", "a.b.example.com",
                                                  "c.b.example.com", "x.other.org", "other.org"};
  const std::vector<std::string> segments = {"a", "b", "ab", "s.io", "x%2Fy", "A"};
  auto random_path = [&](int max_depth, bool allow_empty_segments) {
    std::string p;
    int depth = static_cast<int>(rng() % static_cast<unsigned>(max_depth + 1));
    for (int i = 0; i < depth; ++i) {
      p += "/";
      if (!allow_empty_segments || rng() % 8 != 0) p += one_of(segments);
    }
    if (p.empty() || rng() % 4 == 0) p += "/";
    return p;
  };

  int loaded = 0, rejected = 0, queries = 0;
  for (int round = 0; round < 300; ++round) {
    std::vector<Gen> routes;
    int n = 1 + static_cast<int>(rng() % 10);
    for (int i = 0; i < n; ++i) {
      Gen g;
      g.name = "r" + std::to_string(i);
      g.host = one_of(route_hosts);
      g.exact = rng() % 3 == 0;
      g.path = random_path(3, false);
      routes.push_back(g);
    }
    // SPEC rule 4 and "Conflicts": same host and same exact/prefix is an error.
    std::set<std::tuple<std::string, bool, std::string>> keys;
    bool duplicate = false;
    for (const Gen& g : routes) {
      std::string path = g.exact ? g.path : ref_prefix(g.path);
      duplicate = !keys.emplace(lower(g.host), g.exact, path).second || duplicate;
    }
    std::string toml = to_toml(routes);
    config::LoadResult result = config::load_string(toml, "/tmp/x/sluice.toml");
    CAPTURE(toml);
    if (duplicate) {
      CHECK_FALSE(result.ok());
      ++rejected;
      continue;
    }
    INFO(diagnostics_of(result));
    CHECK(result.ok());
    if (!result.ok()) continue;
    ++loaded;
    RouteTable t(result.config);

    // The same routes declared in another order must choose the same way.
    std::vector<Gen> shuffled = routes;
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    config::LoadResult result2 = config::load_string(to_toml(shuffled), "/tmp/x/sluice.toml");
    REQUIRE(result2.ok());
    RouteTable t2(result2.config);

    for (int q = 0; q < 60; ++q) {
      std::string host_header = one_of(request_hosts);
      std::string target = random_path(4, true);
      if (rng() % 4 == 0) target += "?next=/a/b&x=" + one_of(segments);
      std::string host = ref_host(host_header);
      std::string path = target.substr(0, target.find('?'));
      CAPTURE(host_header);
      CAPTURE(target);

      const Gen* best = nullptr;
      bool tie = false;
      std::set<std::string> matching;
      for (const Gen& g : routes) {
        bool matches = host_matches(g, host) && path_matches(g, path);
        CAPTURE(g.name);
        CHECK(router::route_matches(named(t, g.name), host, path) == matches);
        if (!matches) continue;
        matching.insert(g.name);
        if (!best || rank(g) < rank(*best)) {
          best = &g;
          tie = false;
        } else if (rank(g) == rank(*best)) {
          tie = true;
        }
      }
      CHECK_FALSE(tie);  // a loaded config never has two equally good matches
      std::string want = best ? best->name : "(none)";
      CHECK(router::normalize_host(host_header) == host);
      CHECK(pick(t, host_header, target) == want);
      CHECK(pick(t2, host_header, target) == want);
      ++queries;

      if (best) {
        // shadowed: exactly the other matching routes, each with its reason.
        auto lost = t.shadowed(named(t, best->name), host, path);
        std::set<std::string> lost_names;
        for (const auto& [route, why] : lost) {
          lost_names.insert(route->name);
          const Gen& g = *std::find_if(routes.begin(), routes.end(),
                                       [&](const Gen& x) { return x.name == route->name; });
          LossReason expected = host_class(g.host) > host_class(best->host) ? LossReason::less_specific_host
                                : best->exact                              ? LossReason::exact_beats_prefix
                                                                           : LossReason::shorter_prefix;
          CAPTURE(route->name);
          CHECK(why == expected);
        }
        matching.erase(best->name);
        CHECK(lost_names == matching);
        CHECK(lost.size() == matching.size());
      }
    }
  }
  CHECK(loaded > 100);
  CHECK(rejected > 10);
  CHECK(queries == loaded * 60);
}
