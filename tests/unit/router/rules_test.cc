// Route selection, the path sent upstream and explain, one TEST_CASE per
// rule of SPEC.md ("Route selection", "Path sent upstream", "Details").

#include <doctest/doctest.h>

#include <random>
#include <set>
#include <tuple>
#include <string>

#include "sluice/config.h"
#include "sluice/router.h"

using namespace sluice;
using router::RouteTable;

namespace {

std::shared_ptr<const config::Config> load(const std::string& routes) {
  auto r = config::load_string("[upstream.u]\nservers = [\"127.0.0.1:9000\"]\n" + routes, "/cfg/sluice.toml");
  std::string diags;
  for (const auto& d : r.diagnostics) diags += config::format_diagnostic("cfg", d) + "\n";
  INFO(diags);
  REQUIRE(r.ok());
  return r.config;
}

std::string route(std::string_view name, std::string_view match, std::string_view path,
                  std::string_view extra = "") {
  return "[[route]]\nname = \"" + std::string(name) + "\"\n" + std::string(match) + " = \"" +
         std::string(path) + "\"\nupstream = \"u\"\n" + std::string(extra) + "\n";
}

// The name of the route chosen for host (as a client sends it) and target.
std::string pick(const RouteTable& t, std::string_view host, std::string_view target) {
  const config::Route* r = t.select(router::normalize_host(host), router::split_target(target).path);
  return r ? r->name : "(none)";
}

const config::Route& named(const config::Config& c, std::string_view name) {
  for (const auto& r : c.routes)
    if (r.name == name) return r;
  FAIL("no route " << name);
  return c.routes.front();
}

}  // namespace

TEST_CASE("/socket.io beats a catch-all declared before or after it") {
  for (bool catchall_first : {true, false}) {
    std::string a = route("catchall", "prefix", "/");
    std::string b = route("socketio", "prefix", "/socket.io", "kind = \"socketio\"");
    RouteTable t(load(catchall_first ? a + b : b + a));
    CAPTURE(catchall_first);
    CHECK(pick(t, "", "/socket.io/?EIO=4&transport=polling") == "socketio");
    CHECK(pick(t, "", "/socket.io") == "socketio");
    CHECK(pick(t, "", "/other") == "catchall");
    CHECK(pick(t, "", "/socket.iox") == "catchall");
  }
}

TEST_CASE("prefixes match whole segments: /api matches /api, /api/, /api/x, never /apix") {
  RouteTable t(load(route("api", "prefix", "/api")));
  CHECK(pick(t, "", "/api") == "api");
  CHECK(pick(t, "", "/api/") == "api");
  CHECK(pick(t, "", "/api/x/y") == "api");
  CHECK(pick(t, "", "/api?x=1") == "api");
  CHECK(pick(t, "", "/apix") == "(none)");
  CHECK(pick(t, "", "/ap") == "(none)");
  CHECK(pick(t, "", "/") == "(none)");
}

TEST_CASE("a prefix written with a trailing slash is the same prefix") {
  RouteTable t(load(route("api", "prefix", "/api/")));
  CHECK(pick(t, "", "/api") == "api");
  CHECK(pick(t, "", "/api/x") == "api");
  CHECK(pick(t, "", "/apix") == "(none)");
}

TEST_CASE("the longest prefix wins") {
  RouteTable t(load(route("a", "prefix", "/a") + route("ab", "prefix", "/a/b") + route("abc", "prefix", "/a/b/c")));
  CHECK(pick(t, "", "/a/b/c/d") == "abc");
  CHECK(pick(t, "", "/a/b/cd") == "ab");
  CHECK(pick(t, "", "/a/bc") == "a");
}

TEST_CASE("exact beats prefix on the same path, and matches only that path") {
  RouteTable t(load(route("prefix", "prefix", "/healthz") + route("exact", "exact", "/healthz")));
  CHECK(pick(t, "", "/healthz") == "exact");
  CHECK(pick(t, "", "/healthz?full=1") == "exact");
  CHECK(pick(t, "", "/healthz/") == "prefix");
  CHECK(pick(t, "", "/healthz/x") == "prefix");
}

TEST_CASE("host classes: exact host, then wildcard, then none; a class without a path match falls through") {
  RouteTable t(load(route("exact-root", "prefix", "/", "host = \"api.example.com\"") +
                    route("exact-v2", "prefix", "/v2", "host = \"api.example.com\"") +
                    route("wild", "prefix", "/", "host = \"*.example.com\"") +
                    route("wild-sio", "prefix", "/socket.io", "host = \"*.example.com\"") +
                    route("any", "prefix", "/") + route("any-deep", "prefix", "/deep/path")));
  CHECK(pick(t, "api.example.com", "/v2/x") == "exact-v2");
  CHECK(pick(t, "api.example.com", "/socket.io/") == "exact-root");  // exact host class wins whole
  CHECK(pick(t, "acme.example.com", "/socket.io/") == "wild-sio");
  CHECK(pick(t, "acme.example.com", "/deep/path") == "wild");        // wildcard class matches first
  CHECK(pick(t, "other.org", "/deep/path/x") == "any-deep");
  CHECK(pick(t, "", "/x") == "any");
}

TEST_CASE("a class is used only when one of its routes matches the path") {
  RouteTable t(load(route("host-api", "prefix", "/api", "host = \"a.example.com\"") + route("any", "prefix", "/")));
  CHECK(pick(t, "a.example.com", "/api/1") == "host-api");
  CHECK(pick(t, "a.example.com", "/web") == "any");
}

TEST_CASE("*.example.com matches exactly one more label") {
  RouteTable t(load(route("wild", "prefix", "/", "host = \"*.example.com\"")));
  CHECK(pick(t, "a.example.com", "/") == "wild");
  CHECK(pick(t, "example.com", "/") == "(none)");
  CHECK(pick(t, "a.b.example.com", "/") == "(none)");
  CHECK(pick(t, ".example.com", "/") == "(none)");
  CHECK(pick(t, "aexample.com", "/") == "(none)");
}

TEST_CASE("host comparison ignores case and port") {
  RouteTable t(load(route("api", "prefix", "/", "host = \"api.example.com\"") +
                    route("v6", "prefix", "/", "host = \"*.example.org\"")));
  CHECK(pick(t, "API.Example.COM:8443", "/x") == "api");
  CHECK(pick(t, "api.example.com.", "/x") == "api");
  CHECK(pick(t, "Api.Example.Org:80", "/") == "v6");
  CHECK(router::normalize_host("[::1]:8080") == "[::1]");
  CHECK(router::normalize_host("Host.Example:1") == "host.example");
}

TEST_CASE("without a Host only host-less routes match") {
  RouteTable t(load(route("hosted", "prefix", "/", "host = \"a.example.com\"")));
  CHECK(pick(t, "", "/") == "(none)");
  CHECK(pick(t, "a.example.com", "/") == "hosted");
}

TEST_CASE("paths are not decoded: %2F is not a segment separator") {
  RouteTable t(load(route("ax", "prefix", "/api/x") + route("api", "prefix", "/api")));
  CHECK(pick(t, "", "/api%2Fx") == "(none)");
  CHECK(pick(t, "", "/api/x%2Fy") == "api");  // one segment "x%2Fy"
  CHECK(pick(t, "", "/api/x/%2Fy") == "ax");
  CHECK(pick(t, "", "/api/%78") == "api");  // %78 is 'x', but matching is on bytes
}

TEST_CASE("targets that are not origin-form never match") {
  RouteTable t(load(route("all", "prefix", "/")));
  CHECK(pick(t, "", "*") == "(none)");
  CHECK(pick(t, "", "") == "(none)");
  CHECK(pick(t, "", "/") == "all");
}

TEST_CASE("upstream target: unchanged by default, byte for byte, query included") {
  auto c = load(route("api", "prefix", "/api"));
  CHECK(router::upstream_target(named(*c, "api"), "/api/x%2Fy?q=a%20b&r=/api") == "/api/x%2Fy?q=a%20b&r=/api");
}

TEST_CASE("strip_prefix removes the matched prefix and always leaves a leading /") {
  auto c = load(route("api", "prefix", "/api", "strip_prefix = true") + route("root", "prefix", "/", "strip_prefix = true") +
                route("ex", "exact", "/exact/path", "strip_prefix = true"));
  const config::Route& api = named(*c, "api");
  CHECK(router::upstream_target(api, "/api") == "/");
  CHECK(router::upstream_target(api, "/api/") == "/");
  CHECK(router::upstream_target(api, "/api/x?y=/api") == "/x?y=/api");
  CHECK(router::upstream_target(api, "/api?x=1") == "/?x=1");
  CHECK(router::upstream_target(api, "/api//x") == "//x");
  CHECK(router::upstream_target(named(*c, "root"), "/a/b?c") == "/a/b?c");
  CHECK(router::upstream_target(named(*c, "ex"), "/exact/path?z=1") == "/?z=1");
}

TEST_CASE("rewrite_prefix replaces the matched prefix") {
  auto c = load(route("api", "prefix", "/api", "rewrite_prefix = \"/v2\"") +
                route("slash", "prefix", "/old", "rewrite_prefix = \"/new/\"") +
                route("root", "prefix", "/r", "rewrite_prefix = \"/\""));
  CHECK(router::upstream_target(named(*c, "api"), "/api/users?id=1") == "/v2/users?id=1");
  CHECK(router::upstream_target(named(*c, "api"), "/api") == "/v2");
  CHECK(router::upstream_target(named(*c, "api"), "/api/") == "/v2/");
  CHECK(router::upstream_target(named(*c, "slash"), "/old/x") == "/new/x");
  CHECK(router::upstream_target(named(*c, "root"), "/r/x") == "/x");
  CHECK(router::upstream_target(named(*c, "root"), "/r") == "/");
}

TEST_CASE("'..' climbing above the matched prefix is rejected, inside it is passed unchanged") {
  auto c = load(route("api", "prefix", "/api", "strip_prefix = true") + route("all", "prefix", "/"));
  const config::Route& api = named(*c, "api");
  CHECK_FALSE(router::upstream_target(api, "/api/../admin").has_value());
  CHECK_FALSE(router::upstream_target(api, "/api/a/../../admin").has_value());
  CHECK_FALSE(router::upstream_target(api, "/api/%2e%2e/admin").has_value());
  CHECK_FALSE(router::upstream_target(api, "/api/.%2E/admin").has_value());
  CHECK_FALSE(router::upstream_target(api, "/api/..").has_value());
  CHECK(router::upstream_target(api, "/api/a/../b") == "/a/../b");
  CHECK(router::upstream_target(api, "/api/a/./b") == "/a/./b");
  CHECK(router::upstream_target(api, "/api/..a/b") == "/..a/b");
  CHECK(router::upstream_target(api, "/api/x?y=../../..") == "/x?y=../../..");  // the query is not a path
  CHECK_FALSE(router::upstream_target(named(*c, "all"), "/../etc/passwd").has_value());
  CHECK_FALSE(router::climbs_above("/a//.."));  // empty segments lift nothing
  CHECK(router::climbs_above("/..%2Fadmin"));    // an encoded slash ends a segment too
  CHECK(router::climbs_above("/a%2f..%2F.."));
  CHECK_FALSE(router::climbs_above("/a%2F..%2Fb"));
  CHECK(router::climbs_above("/a//../.."));
}

TEST_CASE("/routes order: host class, exact before prefix, longer path first, then name") {
  RouteTable t(load(route("z-any", "prefix", "/") + route("b-any-long", "prefix", "/long/path") +
                    route("a-any-exact", "exact", "/x") + route("wild", "prefix", "/", "host = \"*.e.com\"") +
                    route("host2", "prefix", "/a", "host = \"h.e.com\"") + route("host1", "prefix", "/b", "host = \"g.e.com\"") +
                    route("a-any", "prefix", "/zz")));
  std::vector<std::string> names;
  for (const config::Route* r : t.ordered()) names.push_back(r->name);
  CHECK(names == std::vector<std::string>{"host1", "host2", "wild", "a-any-exact", "b-any-long", "a-any", "z-any"});
}

TEST_CASE("shadowed lists every other matching route with its reason") {
  RouteTable t(load(route("catchall", "prefix", "/") + route("sio", "prefix", "/socket.io") +
                    route("host-sio", "exact", "/socket.io/", "host = \"a.example.com\"")));
  const config::Route* winner = t.select("a.example.com", "/socket.io/");
  REQUIRE(winner != nullptr);
  CHECK(winner->name == "host-sio");
  auto lost = t.shadowed(*winner, "a.example.com", "/socket.io/");
  REQUIRE(lost.size() == 2);
  CHECK(lost[0].first->name == "sio");
  CHECK(lost[0].second == router::LossReason::less_specific_host);
  CHECK(lost[1].first->name == "catchall");
  const config::Route* plain = t.select("", "/socket.io/x");
  auto lost2 = t.shadowed(*plain, "", "/socket.io/x");
  REQUIRE(lost2.size() == 1);
  CHECK(lost2[0].second == router::LossReason::shorter_prefix);
}

TEST_CASE("select agrees with the brute-force definition on random tables") {
  std::mt19937 rng(20261124);
  const std::vector<std::string> hosts = {"", "", "a.example.com", "b.example.com", "*.example.com", "*.other.org"};
  const std::vector<std::string> segs = {"a", "b", "api", "socket.io", "x"};
  auto random_path = [&](int max_depth) {
    std::string p;
    int depth = std::uniform_int_distribution<int>(0, max_depth)(rng);
    for (int i = 0; i < depth; ++i) p += "/" + segs[rng() % segs.size()];
    return p.empty() ? std::string("/") : p;
  };
  int tables = 0;
  for (int round = 0; round < 200; ++round) {
    std::string toml;
    std::set<std::string> seen;
    int n = std::uniform_int_distribution<int>(1, 12)(rng);
    for (int i = 0; i < n; ++i) {
      std::string host = hosts[rng() % hosts.size()];
      bool exact = rng() % 3 == 0;
      std::string path = random_path(3);
      std::string key = host + (exact ? " exact " : " prefix ") + path;
      if (!seen.insert(key).second) continue;  // duplicates are config errors
      toml += route("r" + std::to_string(i), exact ? "exact" : "prefix", path,
                    host.empty() ? "" : "host = \"" + host + "\"");
    }
    auto c = load(toml);
    RouteTable t(c);
    ++tables;
    for (int q = 0; q < 50; ++q) {
      std::string host = std::vector<std::string>{"", "a.example.com", "b.example.com", "c.example.com", "x.other.org", "a.b.example.com"}[rng() % 6];
      std::string path = random_path(4) + (rng() % 4 == 0 ? "/" : "");
      // Reference: among the routes that match alone, the most specific by
      // host class, then exact over prefix, then the longest path.
      const config::Route* best = nullptr;
      auto rank = [](const config::Route& r) {
        int cls = r.host.empty() ? 2 : r.is_wildcard_host() ? 1 : 0;
        return std::tuple{cls, r.match == config::MatchKind::exact ? 0 : 1, -static_cast<int>(r.path.size())};
      };
      for (const auto& r : c->routes) {
        if (router::route_matches(r, host, path) && (!best || rank(r) < rank(*best))) best = &r;
      }
      const config::Route* got = t.select(host, path);
      CAPTURE(toml);
      CAPTURE(host);
      CAPTURE(path);
      CHECK(got == best);
    }
  }
  CHECK(tables == 200);
}

TEST_CASE("a scheme redirect is skipped on requests already on that scheme") {
  auto cfg = load(
      "[[route]]\nname = \"to-https\"\nhost = \"app.example.com\"\nprefix = \"/\"\n"
      "redirect = { scheme = \"https\" }\n" +
      route("api", "prefix", "/api") +
      "[[route]]\nname = \"home\"\nexact = \"/\"\nhost = \"app.example.com\"\n"
      "redirect = { scheme = \"https\" }\n" +
      "[[route]]\nname = \"to-http\"\nexact = \"/legacy\"\nredirect = { scheme = \"http\" }\n");
  RouteTable t(cfg);
  // Plain HTTP: the host's redirect wins over any-host routes.
  CHECK(t.select("app.example.com", "/api/x", false)->name == "to-https");
  CHECK(t.select("app.example.com", "/", false)->name == "home");
  // Over TLS the https redirects are passed over: the next most specific
  // route answers, or none.
  CHECK(t.select("app.example.com", "/api/x", true)->name == "api");
  CHECK(t.select("app.example.com", "/", true) == nullptr);
  CHECK(t.select("app.example.com", "/other", true) == nullptr);
  // And the other way round for an http redirect.
  CHECK(t.select("", "/legacy", true)->name == "to-http");
  CHECK(t.select("", "/legacy", false) == nullptr);
  CHECK_FALSE(named(*cfg, "api").skipped_for(true));
  CHECK(named(*cfg, "to-https").skipped_for(true));
}
