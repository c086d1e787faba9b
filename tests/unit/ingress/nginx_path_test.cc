// ingress-nginx paths and rewrite-target in sluice terms
// (docs/migrating-from-ingress-nginx.md, "Paths" and "rewrite-target").

#include <doctest/doctest.h>

#include <string>

#include "../../../src/ingress/nginx_path.h"

using namespace sluice::ingress;

namespace {

struct Case {
  const char* path;
  PathShape shape;
  const char* prefix;
  int rest_group;
  bool rest_has_slash;
};

}  // namespace

TEST_CASE("nginx path: regex tails with a literal equivalent") {
  const Case cases[] = {
      {"/api(/|$)(.*)", PathShape::segment, "/api", 2, false},
      {"/api(/|$).*", PathShape::segment, "/api", 0, false},
      {"/api(/|$)", PathShape::segment, "/api", 0, false},
      {"/api/(.*)", PathShape::below, "/api", 1, false},
      {"/api/.*", PathShape::below, "/api", 0, false},
      {"/api/", PathShape::below, "/api", 0, false},
      {"/api(/.*)", PathShape::below, "/api", 1, true},
      {"/api(/.*)?", PathShape::string_prefix, "/api", 1, true},
      {"/api(.*)", PathShape::string_prefix, "/api", 1, true},
      {"/api.*", PathShape::string_prefix, "/api", 0, false},
      {"/api/?(.*)", PathShape::string_prefix, "/api", 1, false},
      {"/api", PathShape::string_prefix, "/api", 0, false},
      {"/api$", PathShape::exact, "/api", 0, false},
      {"/api/v1(/|$)(.*)$", PathShape::segment, "/api/v1", 2, false},
      {"/(.*)", PathShape::segment, "/", 1, false},
      {"/.*", PathShape::segment, "/", 0, false},
      {"/", PathShape::segment, "/", 0, false},
      {"/$", PathShape::exact, "/", 0, false},
      {"/api\\/v1(/|$)(.*)", PathShape::segment, "/api/v1", 2, false},
  };
  for (const Case& c : cases) {
    CAPTURE(c.path);
    NginxPath p = analyze_regex_path(c.path);
    CHECK(p.shape == c.shape);
    CHECK(p.prefix == c.prefix);
    CHECK(p.rest_group == c.rest_group);
    CHECK(p.rest_has_slash == c.rest_has_slash);
  }
}

TEST_CASE("nginx path: regexes without a literal equivalent") {
  for (const char* path : {"/user/[0-9]+/profile", "/apis?", "/(api|v1)/x", "/api/\\d+", "^/api",
                           "api", "/api(/|$)(.*)/more", "/a{2}"}) {
    CAPTURE(path);
    CHECK(analyze_regex_path(path).shape == PathShape::unsupported);
  }
}

TEST_CASE("nginx path: a quantifier takes the character before it out of the literal") {
  NginxPath p = analyze_regex_path("/api/?");
  CHECK(p.shape == PathShape::string_prefix);
  CHECK(p.prefix == "/api");
}

TEST_CASE("nginx path: '.' is read as a literal dot, and said so") {
  NginxPath p = analyze_regex_path("/socket.io");
  CHECK(p.shape == PathShape::string_prefix);
  CHECK(p.prefix == "/socket.io");
  CHECK(p.literal_dot);
  CHECK(p.regex);
  NginxPath escaped = analyze_regex_path("/socket\\.io(/|$)(.*)");
  CHECK(escaped.prefix == "/socket.io");
  CHECK_FALSE(escaped.literal_dot);
  CHECK_FALSE(analyze_regex_path("/plain").regex);
}

TEST_CASE("nginx path: ImplementationSpecific without regex is a string prefix") {
  CHECK(analyze_plain_path("/static").shape == PathShape::string_prefix);
  CHECK(analyze_plain_path("/static").prefix == "/static");
  CHECK(analyze_plain_path("/static/").shape == PathShape::below);
  CHECK(analyze_plain_path("/static/").prefix == "/static");
  CHECK(analyze_plain_path("/").shape == PathShape::segment);
  CHECK(analyze_plain_path("").prefix == "/");
  // Regex syntax means nothing without use-regex.
  CHECK(analyze_plain_path("/a(b)").prefix == "/a(b)");
}

TEST_CASE("rewrite-target: the capture-group idiom strips or replaces the prefix") {
  NginxPath idiom = analyze_regex_path("/api(/|$)(.*)");
  Rewrite strip = translate_rewrite(idiom, "/api(/|$)(.*)", "/$2");
  CHECK(strip.kind == Rewrite::Kind::strip);
  Rewrite v2 = translate_rewrite(idiom, "/api(/|$)(.*)", "/v2/$2");
  CHECK(v2.kind == Rewrite::Kind::prefix);
  CHECK(v2.prefix == "/v2");
  CHECK(translate_rewrite(idiom, "/api(/|$)(.*)", "/${2}").kind == Rewrite::Kind::strip);

  NginxPath below = analyze_regex_path("/api/(.*)");
  CHECK(translate_rewrite(below, "/api/(.*)", "/$1").kind == Rewrite::Kind::strip);
  CHECK(translate_rewrite(below, "/api/(.*)", "/internal/$1").prefix == "/internal");

  NginxPath with_slash = analyze_regex_path("/api(/.*)");
  CHECK(translate_rewrite(with_slash, "/api(/.*)", "$1").kind == Rewrite::Kind::strip);
  Rewrite w = translate_rewrite(with_slash, "/api(/.*)", "/v3$1");
  CHECK(w.kind == Rewrite::Kind::prefix);
  CHECK(w.prefix == "/v3");
}

TEST_CASE("rewrite-target: what sluice cannot do is said, not guessed") {
  NginxPath idiom = analyze_regex_path("/api(/|$)(.*)");
  // A constant target replaces the whole path in nginx.
  Rewrite constant = translate_rewrite(analyze_regex_path("/api"), "/api", "/");
  CHECK(constant.kind == Rewrite::Kind::unsupported);
  CHECK(constant.why.find("every request") != std::string::npos);
  CHECK(translate_rewrite(idiom, "/api(/|$)(.*)", "/$1").kind == Rewrite::Kind::unsupported);
  CHECK(translate_rewrite(idiom, "/api(/|$)(.*)", "/v2$2").kind == Rewrite::Kind::unsupported);
  CHECK(translate_rewrite(idiom, "/api(/|$)(.*)", "/$2/x").kind == Rewrite::Kind::unsupported);
  CHECK(translate_rewrite(idiom, "/api(/|$)(.*)", "/$2?x=1").kind == Rewrite::Kind::unsupported);
  CHECK(translate_rewrite(idiom, "/api(/|$)(.*)", "$scheme://x/$2").kind == Rewrite::Kind::unsupported);
  CHECK(translate_rewrite(idiom, "/api(/|$)(.*)", "/$99999999999999999999").kind == Rewrite::Kind::unsupported);
  NginxPath with_slash = analyze_regex_path("/api(/.*)");
  CHECK(translate_rewrite(with_slash, "/api(/.*)", "/v3/$1").kind == Rewrite::Kind::unsupported);
}

TEST_CASE("rewrite-target: no rewrite when the target is the path, or at the root") {
  NginxPath root = analyze_regex_path("/");
  CHECK(translate_rewrite(root, "/", "/").kind == Rewrite::Kind::none);
  CHECK(translate_rewrite(analyze_regex_path("/(.*)"), "/(.*)", "/$1").kind == Rewrite::Kind::none);
  CHECK(translate_rewrite(analyze_regex_path("/api"), "/api", "").kind == Rewrite::Kind::none);
  Rewrite prefixed = translate_rewrite(analyze_regex_path("/(.*)"), "/(.*)", "/app/$1");
  CHECK(prefixed.kind == Rewrite::Kind::prefix);
  CHECK(prefixed.prefix == "/app");
}

TEST_CASE("route paths and hosts: the rules config/load.cc applies") {
  CHECK(route_path_problem("/api").empty());
  CHECK(route_path_problem("/api(/|$)").empty());  // odd but valid: matched literally
  CHECK_FALSE(route_path_problem("api").empty());
  CHECK_FALSE(route_path_problem("/a?b").empty());
  CHECK_FALSE(route_path_problem("/a b").empty());
  CHECK_FALSE(route_path_problem("/a/../b").empty());
  CHECK(route_host_problem("shop.example.com").empty());
  CHECK(route_host_problem("*.example.com").empty());
  CHECK_FALSE(route_host_problem("shop.example.com:8443").empty());
  CHECK_FALSE(route_host_problem("a.*.com").empty());
  CHECK_FALSE(route_host_problem("").empty());
}
