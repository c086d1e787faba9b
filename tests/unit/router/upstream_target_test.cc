// The request target sent upstream, one TEST_CASE per rule of SPEC.md "Path
// sent upstream": unchanged by default, strip_prefix, rewrite_prefix, no
// decoding, and `..` that climbs above the matched prefix rejected.

#include <doctest/doctest.h>

#include <optional>
#include <string>

#include "sluice/config.h"
#include "sluice/router.h"

using namespace sluice;

namespace {

std::shared_ptr<const config::Config> load(std::string_view toml) {
  config::LoadResult r = config::load_string(toml, "/tmp/x/sluice.toml");
  std::string diags;
  for (const auto& d : r.diagnostics) diags += config::format_diagnostic("sluice.toml", d) + "\n";
  INFO(diags);
  REQUIRE(r.ok());
  return r.config;
}

const config::Route& named(const config::Config& c, std::string_view name) {
  for (const config::Route& r : c.routes)
    if (r.name == name) return r;
  FAIL("no route named " << name);
  return c.routes.front();
}

// "(rejected)" for nullopt, so that a failing CHECK prints something readable.
std::string target(const config::Route& route, std::string_view request_target) {
  std::optional<std::string> t = router::upstream_target(route, request_target);
  return t ? *t : "(rejected)";
}

}  // namespace

TEST_CASE("upstream target: unchanged by default, byte for byte, query kept") {
  auto c = load(R"(
[upstream.u]
servers = ["127.0.0.1:9000"]

[[route]]
name = "api"
prefix = "/api"
upstream = "u"

[[route]]
name = "socketio"
prefix = "/socket.io"
upstream = "u"
kind = "socketio"

[[route]]
name = "root"
prefix = "/"
upstream = "u"
)");
  const config::Route& api = named(*c, "api");
  CHECK(target(api, "/api") == "/api");
  CHECK(target(api, "/api/") == "/api/");
  CHECK(target(api, "/api/x?y=1&z=%20") == "/api/x?y=1&z=%20");
  CHECK(target(api, "/api//x///y") == "/api//x///y");
  CHECK(target(api, "/api/a/./b") == "/api/a/./b");
  CHECK(target(api, "/api?") == "/api?");
  CHECK(target(named(*c, "socketio"), "/socket.io/?EIO=4&transport=polling") ==
        "/socket.io/?EIO=4&transport=polling");
  CHECK(target(named(*c, "root"), "/a/b?c=d#frag") == "/a/b?c=d#frag");
}

TEST_CASE("upstream target: strip_prefix removes the prefix and always starts with /") {
  auto c = load(R"(
[upstream.u]
servers = ["127.0.0.1:9000"]

[[route]]
name = "api"
prefix = "/api"
upstream = "u"
strip_prefix = true
)");
  const config::Route& api = named(*c, "api");
  CHECK(target(api, "/api") == "/");
  CHECK(target(api, "/api/") == "/");
  CHECK(target(api, "/api/x?y=/api") == "/x?y=/api");
  CHECK(target(api, "/api/habits?x=1") == "/habits?x=1");  // SPEC's example
  CHECK(target(api, "/api?x=1") == "/?x=1");
  CHECK(target(api, "/api/x/api/y") == "/x/api/y");        // only the matched prefix goes
  CHECK(target(api, "/api/x/") == "/x/");
}

TEST_CASE("upstream target: strip_prefix on a prefix written with a trailing slash") {
  auto c = load(R"(
[upstream.u]
servers = ["127.0.0.1:9000"]

[[route]]
name = "api"
prefix = "/api/"
upstream = "u"
strip_prefix = true
)");
  const config::Route& api = named(*c, "api");
  CHECK(target(api, "/api") == "/");
  CHECK(target(api, "/api/") == "/");
  CHECK(target(api, "/api/x?q") == "/x?q");
}

TEST_CASE("upstream target: strip_prefix on the root prefix changes nothing") {
  auto c = load(R"(
[upstream.u]
servers = ["127.0.0.1:9000"]

[[route]]
name = "root"
prefix = "/"
upstream = "u"
strip_prefix = true
)");
  const config::Route& root = named(*c, "root");
  CHECK(target(root, "/") == "/");
  CHECK(target(root, "/a/b?c=/d") == "/a/b?c=/d");
}

TEST_CASE("upstream target: strip_prefix on an exact route leaves /") {
  auto c = load(R"(
[upstream.u]
servers = ["127.0.0.1:9000"]

[[route]]
name = "status"
exact = "/internal/status"
upstream = "u"
strip_prefix = true

[[route]]
name = "plain"
exact = "/internal/plain"
upstream = "u"
)");
  CHECK(target(named(*c, "status"), "/internal/status") == "/");
  CHECK(target(named(*c, "status"), "/internal/status?full=1") == "/?full=1");
  CHECK(target(named(*c, "plain"), "/internal/plain?full=1") == "/internal/plain?full=1");
}

TEST_CASE("upstream target: rewrite_prefix replaces the matched prefix") {
  auto c = load(R"(
[upstream.u]
servers = ["127.0.0.1:9000"]

[[route]]
name = "api"
prefix = "/api"
upstream = "u"
rewrite_prefix = "/v2"

[[route]]
name = "deep"
prefix = "/old/path"
upstream = "u"
rewrite_prefix = "/new"

[[route]]
name = "to-root"
prefix = "/r"
upstream = "u"
rewrite_prefix = "/"
)");
  const config::Route& api = named(*c, "api");
  CHECK(target(api, "/api/x") == "/v2/x");
  CHECK(target(api, "/api") == "/v2");
  CHECK(target(api, "/api/") == "/v2/");
  CHECK(target(api, "/api/users?id=1&next=/api") == "/v2/users?id=1&next=/api");
  CHECK(target(api, "/api?id=1") == "/v2?id=1");
  CHECK(target(named(*c, "deep"), "/old/path/a/b") == "/new/a/b");
  // rewrite_prefix = "/" is the same as strip (SPEC: the result starts with /).
  CHECK(target(named(*c, "to-root"), "/r/x?y") == "/x?y");
  CHECK(target(named(*c, "to-root"), "/r") == "/");
}

TEST_CASE("upstream target: rewrite_prefix with a trailing slash makes no double slash") {
  auto c = load(R"(
[upstream.u]
servers = ["127.0.0.1:9000"]

[[route]]
name = "api"
prefix = "/api"
upstream = "u"
rewrite_prefix = "/v2/"
)");
  const config::Route& api = named(*c, "api");
  CHECK(target(api, "/api/x") == "/v2/x");
  CHECK(target(api, "/api/x/y?z=1") == "/v2/x/y?z=1");
  std::string bare = target(api, "/api");
  CHECK(bare.find("//") == std::string::npos);
  CHECK(bare.starts_with("/v2"));
}

TEST_CASE("upstream target: rewrite_prefix on an exact route replaces the whole path") {
  auto c = load(R"(
[upstream.u]
servers = ["127.0.0.1:9000"]

[[route]]
name = "legacy"
exact = "/legacy.php"
upstream = "u"
rewrite_prefix = "/v2/legacy"
)");
  CHECK(target(named(*c, "legacy"), "/legacy.php?a=1") == "/v2/legacy?a=1");
}

TEST_CASE("upstream target: percent-encoding is never decoded or re-encoded") {
  auto c = load(R"(
[upstream.u]
servers = ["127.0.0.1:9000"]

[[route]]
name = "plain"
prefix = "/files"
upstream = "u"

[[route]]
name = "strip"
prefix = "/api"
upstream = "u"
strip_prefix = true

[[route]]
name = "rewrite"
prefix = "/old"
upstream = "u"
rewrite_prefix = "/new"
)");
  CHECK(target(named(*c, "plain"), "/files/a%2Fb%20c?q=%2F%3F") == "/files/a%2Fb%20c?q=%2F%3F");
  CHECK(target(named(*c, "strip"), "/api/x%2Fy?q=a%20b") == "/x%2Fy?q=a%20b");
  CHECK(target(named(*c, "strip"), "/api/%7Euser/%e2%82%ac") == "/%7Euser/%e2%82%ac");
  CHECK(target(named(*c, "rewrite"), "/old/%2E%2Fx") == "/new/%2E%2Fx");
  CHECK(target(named(*c, "strip"), "/api/a+b%2bc") == "/a+b%2bc");
}

TEST_CASE("upstream target: '..' climbing above the matched prefix is rejected") {
  auto c = load(R"(
[upstream.u]
servers = ["127.0.0.1:9000"]

[[route]]
name = "strip"
prefix = "/api"
upstream = "u"
strip_prefix = true

[[route]]
name = "plain"
prefix = "/socket.io"
upstream = "u"

[[route]]
name = "rewrite"
prefix = "/old"
upstream = "u"
rewrite_prefix = "/v2"

[[route]]
name = "root"
prefix = "/"
upstream = "u"
)");
  const config::Route& strip = named(*c, "strip");
  CHECK_FALSE(router::upstream_target(strip, "/api/..").has_value());
  CHECK_FALSE(router::upstream_target(strip, "/api/../").has_value());
  CHECK_FALSE(router::upstream_target(strip, "/api/../admin").has_value());
  CHECK_FALSE(router::upstream_target(strip, "/api/a/../../admin?x=1").has_value());
  CHECK_FALSE(router::upstream_target(strip, "/api/./../admin").has_value());
  // Rejected whether or not the path is rewritten: the upstream would
  // resolve it outside the prefix the route owns.
  CHECK_FALSE(router::upstream_target(named(*c, "plain"), "/socket.io/../admin").has_value());
  CHECK_FALSE(router::upstream_target(named(*c, "rewrite"), "/old/x/../../etc/passwd").has_value());
  CHECK_FALSE(router::upstream_target(named(*c, "root"), "/../etc/passwd").has_value());
  CHECK_FALSE(router::upstream_target(named(*c, "root"), "/a/../../etc/passwd").has_value());
}

TEST_CASE("upstream target: percent-encoded dots climb like literal ones") {
  auto c = load(R"(
[upstream.u]
servers = ["127.0.0.1:9000"]

[[route]]
name = "api"
prefix = "/api"
upstream = "u"
strip_prefix = true

[[route]]
name = "plain"
prefix = "/static"
upstream = "u"
)");
  const config::Route& api = named(*c, "api");
  CHECK_FALSE(router::upstream_target(api, "/api/%2e%2e/admin").has_value());
  CHECK_FALSE(router::upstream_target(api, "/api/%2E%2E/admin").has_value());
  CHECK_FALSE(router::upstream_target(api, "/api/.%2e/admin").has_value());
  CHECK_FALSE(router::upstream_target(api, "/api/%2E./admin").has_value());
  CHECK_FALSE(router::upstream_target(api, "/api/x/%2e%2e/%2e%2e").has_value());
  CHECK_FALSE(router::upstream_target(named(*c, "plain"), "/static/%2e%2e/secret").has_value());
}

TEST_CASE("upstream target: '..' that stays inside the prefix passes unchanged") {
  auto c = load(R"(
[upstream.u]
servers = ["127.0.0.1:9000"]

[[route]]
name = "api"
prefix = "/api"
upstream = "u"
strip_prefix = true

[[route]]
name = "plain"
prefix = "/static"
upstream = "u"
)");
  const config::Route& api = named(*c, "api");
  CHECK(target(api, "/api/a/../b") == "/a/../b");
  CHECK(target(api, "/api/a/b/../../c") == "/a/b/../../c");
  CHECK(target(api, "/api/a/..") == "/a/..");
  CHECK(target(api, "/api/a/%2e%2e/b") == "/a/%2e%2e/b");
  CHECK(target(api, "/api/.") == "/.");
  CHECK(target(api, "/api/...") == "/...");      // "..." is a name, not a climb
  CHECK(target(api, "/api/..a/b") == "/..a/b");
  CHECK(target(api, "/api/a..") == "/a..");
  CHECK(target(api, "/api/x?y=../../..") == "/x?y=../../..");  // the query is not the path
  CHECK(target(named(*c, "plain"), "/static/css/../img/a.png") == "/static/css/../img/a.png");
}

TEST_CASE("climbs_above counts .. against the segments before it") {
  CHECK_FALSE(router::climbs_above(""));
  CHECK_FALSE(router::climbs_above("/"));
  CHECK(router::climbs_above("/.."));
  CHECK(router::climbs_above("/../a"));
  CHECK_FALSE(router::climbs_above("/a/.."));
  CHECK(router::climbs_above("/a/../.."));
  CHECK(router::climbs_above("/./.."));
  CHECK_FALSE(router::climbs_above("/a/./.."));
  CHECK_FALSE(router::climbs_above("/..."));
  CHECK_FALSE(router::climbs_above("/..a"));
  CHECK(router::climbs_above("/%2e%2e"));
  CHECK(router::climbs_above("/%2E%2e/x"));
  CHECK(router::climbs_above("/a/b/../../../c"));
  CHECK_FALSE(router::climbs_above("/a/b/../../c"));
}
