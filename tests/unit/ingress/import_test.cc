// `sluice import-ingress` (docs/migrating-from-ingress-nginx.md): Ingress
// JSON -> sluice.toml. Every output here is loaded with the real config
// loader and must be valid; routing is checked with the real route table.

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "sluice/config.h"
#include "sluice/ingress.h"
#include "sluice/router.h"

using namespace sluice;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// A directory for the certificate files TLS outputs name (the loader checks
// that they exist; their content is not read here).
// Removed when the test program exits.
const fs::path& tls_dir() {
  struct TempDir {
    fs::path path = fs::temp_directory_path() / ("sluice-ingress-test-" + std::to_string(::getpid()));
    TempDir() { fs::create_directories(path); }
    ~TempDir() {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  };
  static const TempDir dir;
  return dir.path;
}

void touch_cert_files(const std::string& toml) {
  for (const char* key : {"cert = \"", "key = \""}) {
    size_t at = 0;
    while ((at = toml.find(key, at)) != std::string::npos) {
      at += std::string_view(key).size();
      std::string path = toml.substr(at, toml.find('"', at) - at);
      fs::create_directories(fs::path(path).parent_path());
      std::ofstream(path) << "x";
    }
  }
}

struct Imported {
  ingress::ImportResult result;
  std::shared_ptr<const config::Config> config;
  std::vector<std::string> warnings;  // formatted, FILE = "in.json"

  bool warned(std::string_view object, std::string_view field, std::string_view words) const {
    for (const ingress::Warning& w : result.warnings)
      if (w.object == object && w.field == field && w.message.find(words) != std::string::npos) return true;
    return false;
  }
  const config::Route* route(std::string_view name) const {
    for (const config::Route& r : config->routes)
      if (r.name == name) return &r;
    return nullptr;
  }
  // The route a plain-HTTP request reaches, and the target it sends.
  std::pair<std::string, std::string> select(std::string_view host, std::string_view target) const {
    router::RouteTable table(config);
    router::Target t = router::split_target(target);
    const config::Route* r = table.select(host, t.path);
    if (!r) return {"(none)", ""};
    return {r->name, r->has_upstream() ? router::upstream_target(*r, target).value_or("(escape)") : ""};
  }
};

// Imports `input` (JSON text) and loads the output; the output must be valid.
Imported import(std::string_view input) {
  Imported out;
  ingress::ImportOptions options;
  options.source = "in.json";
  options.tls_dir = tls_dir().string();
  out.result = ingress::import_ingress(json::parse(input), options);
  for (const auto& w : out.result.warnings) out.warnings.push_back(ingress::format_warning("in.json", w));
  INFO(out.result.error);
  REQUIRE(out.result.toml.has_value());
  touch_cert_files(*out.result.toml);
  config::LoadResult loaded = config::load_string(*out.result.toml, (tls_dir() / "sluice.toml").string());
  std::string diags;
  for (const auto& d : loaded.diagnostics) diags += config::format_diagnostic("out.toml", d) + "\n";
  INFO(*out.result.toml);
  INFO(diags);
  REQUIRE(loaded.ok());
  out.config = loaded.config;
  return out;
}

// One Ingress as JSON text: namespace/name, spec, annotations (a JSON object).
std::string ingress_json(std::string_view ns, std::string_view name, std::string_view spec,
                         std::string_view annotations = "{}") {
  return R"({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"namespace": ")" +
         std::string(ns) + R"(", "name": ")" + std::string(name) + R"(", "annotations": )" +
         std::string(annotations) + R"(}, "spec": )" + std::string(spec) + "}";
}

std::string list_json(std::initializer_list<std::string> items) {
  std::string out = R"({"apiVersion": "v1", "kind": "List", "items": [)";
  bool first = true;
  for (const std::string& i : items) {
    out += (first ? "" : ",") + i;
    first = false;
  }
  return out + "]}";
}

// A rule for `host` with one path to service:port.
std::string rule(std::string_view host, std::string_view path, std::string_view type,
                 std::string_view service, int port) {
  return R"({"host": ")" + std::string(host) + R"(", "http": {"paths": [{"path": ")" + std::string(path) +
         R"(", "pathType": ")" + std::string(type) + R"(", "backend": {"service": {"name": ")" +
         std::string(service) + R"(", "port": {"number": )" + std::to_string(port) + "}}}}]}}";
}

std::string spec_rules(std::initializer_list<std::string> rules, std::string_view extra = "") {
  std::string out = R"({"rules": [)";
  bool first = true;
  for (const std::string& r : rules) {
    out += (first ? "" : ",") + r;
    first = false;
  }
  out += "]";
  if (!extra.empty()) out += "," + std::string(extra);
  return out + "}";
}

}  // namespace

// ---------------------------------------------------------------- input forms

TEST_CASE("import: a kubectl List and a single Ingress both translate") {
  std::string one = ingress_json("web", "app", spec_rules({rule("app.example.com", "/", "Prefix", "app", 80)}));
  Imported a = import(list_json({one}));
  Imported b = import(one);
  CHECK(a.result.ingresses == 1);
  CHECK(b.result.ingresses == 1);
  CHECK(a.warnings.empty());
  REQUIRE(a.config->routes.size() == 1);
  CHECK(a.config->routes[0].name == "web-app-1");
  CHECK(*a.result.toml == *b.result.toml);
  Imported c = import(R"({"kind": "IngressList", "items": [{"metadata": {"name": "x", "namespace": "n"},
      "spec": {"defaultBackend": {"service": {"name": "s", "port": {"number": 80}}}}}]})");
  CHECK(c.result.ingresses == 1);
}

TEST_CASE("import: no Ingress is an error, not an empty config") {
  for (const char* input : {R"({"apiVersion": "v1", "kind": "List", "items": []})",
                            R"({"kind": "Service", "metadata": {"name": "x"}})", R"([])", R"("text")"}) {
    CAPTURE(input);
    ingress::ImportResult r = ingress::import_ingress(json::parse(input), {});
    CHECK_FALSE(r.toml.has_value());
    CHECK_FALSE(r.error.empty());
  }
}

TEST_CASE("import: items that are not Ingresses are warned about and skipped") {
  Imported r = import(list_json(
      {R"({"apiVersion": "v1", "kind": "Service", "metadata": {"namespace": "web", "name": "app"}})",
       ingress_json("web", "app", spec_rules({rule("app.example.com", "/", "Prefix", "app", 80)}))}));
  CHECK(r.result.ingresses == 1);
  CHECK(r.warned("web/app", "kind", "a Service, not an Ingress"));
}

// ---------------------------------------------------------------- listeners and TLS

TEST_CASE("import: plain HTTP listens on 0.0.0.0:8080, and only there without spec.tls") {
  Imported r = import(ingress_json("web", "app", spec_rules({rule("app.example.com", "/", "Prefix", "app", 80)})));
  REQUIRE(r.config->listeners.size() == 1);
  CHECK(r.config->listeners[0].address == "0.0.0.0:8080");
  CHECK_FALSE(r.config->listeners[0].tls.has_value());
}

TEST_CASE("import: spec.tls adds 8443 with one SNI certificate per host; the first secret is the default") {
  std::string shop = ingress_json(
      "shop", "storefront",
      spec_rules({rule("shop.example.com", "/", "Prefix", "web", 80)},
                 R"("tls": [{"hosts": ["shop.example.com", "www.shop.example.com"], "secretName": "shop-tls"}])"));
  std::string chat = ingress_json(
      "chat", "chat",
      spec_rules({rule("chat.example.com", "/", "Prefix", "web", 80)},
                 R"("tls": [{"hosts": ["chat.example.com"], "secretName": "chat-tls"},
                            {"hosts": ["shop.example.com"], "secretName": "other"}])"));
  Imported r = import(list_json({shop, chat}));
  REQUIRE(r.config->listeners.size() == 2);
  const config::Listener& https = r.config->listeners[1];
  CHECK(https.address == "0.0.0.0:8443");
  REQUIRE(https.tls.has_value());
  std::string dir = tls_dir().string();
  CHECK(https.tls->default_cert.cert == dir + "/shop/shop-tls/tls.crt");
  CHECK(https.tls->default_cert.key == dir + "/shop/shop-tls/tls.key");
  REQUIRE(https.tls->sni.size() == 3);
  CHECK(https.tls->sni[0].host == "shop.example.com");
  CHECK(https.tls->sni[1].host == "www.shop.example.com");
  CHECK(https.tls->sni[1].files.cert == dir + "/shop/shop-tls/tls.crt");
  CHECK(https.tls->sni[2].host == "chat.example.com");
  CHECK(https.tls->sni[2].files.cert == dir + "/chat/chat-tls/tls.crt");
  // A host whose certificate is already chosen keeps it.
  CHECK(r.warned("chat/chat", "spec.tls[1].hosts[0]", "already has the certificate of Secret shop/shop-tls"));
}

TEST_CASE("import: certificates default to /etc/sluice/tls/<namespace>/<secret>/") {
  std::string in = ingress_json("shop", "web",
                                spec_rules({rule("shop.example.com", "/", "Prefix", "web", 80)},
                                           R"("tls": [{"hosts": ["shop.example.com"], "secretName": "s"}])"));
  ingress::ImportResult r = ingress::import_ingress(json::parse(in), {});
  REQUIRE(r.toml.has_value());
  CHECK(r.toml->find("cert = \"/etc/sluice/tls/shop/s/tls.crt\"") != std::string::npos);
  CHECK(r.toml->find("key = \"/etc/sluice/tls/shop/s/tls.key\"") != std::string::npos);
}

TEST_CASE("import: a TLS entry without a secret gets no certificate, and says so") {
  Imported r = import(ingress_json("shop", "web",
                                   spec_rules({rule("shop.example.com", "/", "Prefix", "web", 80)},
                                              R"("tls": [{"hosts": ["shop.example.com"]}])")));
  CHECK(r.config->listeners.size() == 1);
  CHECK(r.warned("shop/web", "spec.tls[0].secretName", "default certificate"));
}

// ---------------------------------------------------------------- paths

TEST_CASE("import: Prefix and Exact paths keep their meaning; route names are readable") {
  std::string spec = R"({"rules": [{"host": "app.example.com", "http": {"paths": [
      {"path": "/api/", "pathType": "Prefix", "backend": {"service": {"name": "api", "port": {"number": 8080}}}},
      {"path": "/healthz", "pathType": "Exact", "backend": {"service": {"name": "api", "port": {"number": 8080}}}}]}},
      {"host": "other.example.com", "http": {"paths": [
      {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]})";
  Imported r = import(ingress_json("prod", "app", spec));
  CHECK(r.warnings.empty());
  const config::Route* api = r.route("prod-app-1");
  REQUIRE(api);
  CHECK(api->host == "app.example.com");
  CHECK(api->match == config::MatchKind::prefix);
  CHECK(api->path == "/api");
  CHECK(api->upstream == "prod-api-8080");
  const config::Route* health = r.route("prod-app-2");
  REQUIRE(health);
  CHECK(health->match == config::MatchKind::exact);
  CHECK(health->path == "/healthz");
  CHECK(r.route("prod-app-3")->host == "other.example.com");
  CHECK(r.select("app.example.com", "/api/users").first == "prod-app-1");
  CHECK(r.select("app.example.com", "/apix").first == "(none)");  // whole segments, as Kubernetes
}

TEST_CASE("import: ImplementationSpecific is a prefix, with a warning") {
  Imported r = import(ingress_json("web", "app",
                                   spec_rules({rule("app.example.com", "/static", "ImplementationSpecific", "s", 80)})));
  CHECK(r.route("web-app-1")->path == "/static");
  CHECK(r.warned("web/app", "spec.rules[0].http.paths[0].path", "plain string prefix"));
}

TEST_CASE("import: the same host and path twice keeps the first and warns about the second") {
  std::string a = ingress_json("shop", "a", spec_rules({rule("shop.example.com", "/", "Prefix", "one", 80)}));
  std::string b = ingress_json("shop", "b", spec_rules({rule("shop.example.com", "/", "Prefix", "two", 80)}));
  std::string c = ingress_json("shop", "c", spec_rules({rule("shop.example.com", "/", "Exact", "three", 80)}));
  Imported r = import(list_json({a, b, c}));
  CHECK(r.route("shop-a-1"));
  CHECK_FALSE(r.route("shop-b-1"));
  CHECK(r.route("shop-c-1"));  // exact / is another path than prefix /
  CHECK(r.warned("shop/b", "spec.rules[0].http.paths[0].path", "already routed by route \"shop-a-1\""));
  CHECK(r.config->find_upstream("shop-two-80") == nullptr);  // no route uses it
}

TEST_CASE("import: route and upstream names stay unique when dashes make them collide") {
  std::string a = ingress_json("a-b", "c", spec_rules({rule("x.example.com", "/", "Prefix", "d", 80)}));
  std::string b = ingress_json("a", "b-c", spec_rules({rule("y.example.com", "/", "Prefix", "b-d", 80)}));
  Imported r = import(list_json({a, b}));
  CHECK(r.route("a-b-c-1"));
  CHECK(r.route("a-b-c-1-2"));
  CHECK(r.config->find_upstream("a-b-d-80"));
  CHECK(r.config->find_upstream("a-b-d-80-2"));
}

// ---------------------------------------------------------------- backends

TEST_CASE("import: a Service backend is an upstream of its cluster DNS name") {
  Imported r = import(ingress_json("shop", "web", spec_rules({rule("shop.example.com", "/", "Prefix", "web", 8080)})));
  const config::Upstream* u = r.config->find_upstream("shop-web-8080");
  REQUIRE(u);
  REQUIRE(u->servers.size() == 1);
  CHECK(u->servers[0].text == "dns:web.shop.svc.cluster.local:8080");
  CHECK(u->servers[0].dns);
}

TEST_CASE("import: extensions/v1beta1 backends (serviceName, servicePort) are read, with a warning") {
  Imported r = import(R"({"apiVersion": "extensions/v1beta1", "kind": "Ingress",
      "metadata": {"name": "old", "namespace": "legacy"},
      "spec": {"rules": [{"host": "old.example.com", "http": {"paths": [
        {"path": "/", "backend": {"serviceName": "web", "servicePort": 8080}},
        {"path": "/named", "backend": {"serviceName": "web", "servicePort": "http"}}]}}]}})");
  CHECK(r.route("legacy-old-1")->upstream == "legacy-web-8080");
  CHECK_FALSE(r.route("legacy-old-2"));
  CHECK(r.warned("legacy/old", "apiVersion", "extensions/v1beta1"));
  CHECK(r.warned("legacy/old", "spec.rules[0].http.paths[1].backend.servicePort", "named port \"http\""));
}

TEST_CASE("import: a rule without host matches any host") {
  Imported r = import(ingress_json("web", "any", R"({"rules": [{"http": {"paths": [
      {"path": "/api", "pathType": "Prefix", "backend": {"service": {"name": "api", "port": {"number": 80}}}}]}}]})"));
  CHECK(r.route("web-any-1")->host.empty());
  CHECK(r.select("whatever.example.com", "/api/x").first == "web-any-1");
  CHECK(r.warnings.empty());
}

TEST_CASE("import: a named port skips the path and names it") {
  std::string spec = R"({"rules": [{"host": "g.example.com", "http": {"paths": [
      {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "grafana", "port": {"name": "http"}}}},
      {"path": "/x", "pathType": "Prefix", "backend": {"service": {"name": "grafana", "port": {"number": 3000}}}}]}}]})";
  Imported r = import(ingress_json("ops", "grafana", spec));
  CHECK_FALSE(r.route("ops-grafana-1"));
  CHECK(r.route("ops-grafana-2"));  // numbering follows the input
  CHECK(r.warned("ops/grafana", "spec.rules[0].http.paths[0].backend.service.port.name", "named port \"http\""));
}

TEST_CASE("import: a resource backend is skipped with a warning") {
  std::string spec = R"({"rules": [{"host": "a.example.com", "http": {"paths": [
      {"path": "/s", "pathType": "Prefix", "backend": {"resource": {"kind": "StorageBucket", "name": "b"}}},
      {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]})";
  Imported r = import(ingress_json("web", "a", spec));
  CHECK(r.config->routes.size() == 1);
  CHECK(r.warned("web/a", "spec.rules[0].http.paths[0].backend.resource", "StorageBucket"));
}

TEST_CASE("import: spec.defaultBackend is a catch-all route without host") {
  Imported r = import(ingress_json("default", "fallback",
                                   R"({"defaultBackend": {"service": {"name": "default-http-backend", "port": {"number": 80}}}})"));
  const config::Route* d = r.route("default-fallback-default");
  REQUIRE(d);
  CHECK(d->host.empty());
  CHECK(d->path == "/");
  CHECK(d->upstream == "default-default-http-backend-80");
  CHECK(r.select("anything.example.com", "/x").first == "default-fallback-default");
}

// ---------------------------------------------------------------- annotations

TEST_CASE("import: rewrite-target /$2 on (/|$)(.*) strips the prefix") {
  Imported r = import(ingress_json(
      "shop", "api", spec_rules({rule("shop.example.com", "/api(/|$)(.*)", "ImplementationSpecific", "api", 8080)}),
      R"({"nginx.ingress.kubernetes.io/rewrite-target": "/$2", "nginx.ingress.kubernetes.io/use-regex": "true"})"));
  const config::Route* api = r.route("shop-api-1");
  REQUIRE(api);
  CHECK(api->path == "/api");
  CHECK(api->strip_prefix);
  CHECK(r.select("shop.example.com", "/api/users?page=2") ==
        std::pair<std::string, std::string>{"shop-api-1", "/users?page=2"});
  CHECK(r.select("shop.example.com", "/api").second == "/");
  // Regex paths are always listed, even when translated exactly.
  CHECK(r.warned("shop/api", "spec.rules[0].http.paths[0].path", "regex path \"/api(/|$)(.*)\""));
}

TEST_CASE("import: rewrite-target /v2/$2 is rewrite_prefix") {
  Imported r = import(ingress_json(
      "shop", "api", spec_rules({rule("shop.example.com", "/legacy(/|$)(.*)", "ImplementationSpecific", "api", 8080)}),
      R"({"nginx.ingress.kubernetes.io/rewrite-target": "/v2/$2"})"));
  REQUIRE(r.route("shop-api-1")->rewrite_prefix.has_value());
  CHECK(*r.route("shop-api-1")->rewrite_prefix == "/v2");
  CHECK(r.select("shop.example.com", "/legacy/orders/7").second == "/v2/orders/7");
}

TEST_CASE("import: a rewrite-target sluice cannot express keeps the path and warns") {
  Imported r = import(ingress_json("api", "m", spec_rules({rule("api.example.com", "/metrics", "Prefix", "m", 9090)}),
                                   R"({"nginx.ingress.kubernetes.io/rewrite-target": "/"})"));
  const config::Route* m = r.route("api-m-1");
  REQUIRE(m);
  CHECK_FALSE(m->strip_prefix);
  CHECK_FALSE(m->rewrite_prefix.has_value());
  CHECK(r.warned("api/m", "metadata.annotations[\"nginx.ingress.kubernetes.io/rewrite-target\"]",
                 "the route sends the path as the client sent it"));
}

TEST_CASE("import: use-regex paths are listed; safe ones become prefixes, the others are skipped") {
  std::string spec = R"({"rules": [{"host": "api.example.com", "http": {"paths": [
      {"path": "/assets/.*", "pathType": "ImplementationSpecific", "backend": {"service": {"name": "cdn", "port": {"number": 80}}}},
      {"path": "/user/[0-9]+/profile", "pathType": "ImplementationSpecific", "backend": {"service": {"name": "p", "port": {"number": 80}}}},
      {"path": "/reports$", "pathType": "ImplementationSpecific", "backend": {"service": {"name": "r", "port": {"number": 80}}}}]}}]})";
  Imported r = import(ingress_json("api", "regex", spec, R"({"nginx.ingress.kubernetes.io/use-regex": "true"})"));
  CHECK(r.route("api-regex-1")->path == "/assets");
  CHECK_FALSE(r.route("api-regex-2"));
  CHECK(r.route("api-regex-3")->match == config::MatchKind::exact);
  CHECK(r.warned("api/regex", "spec.rules[0].http.paths[0].path", "also matches \"/assets\" itself"));
  CHECK(r.warned("api/regex", "spec.rules[0].http.paths[1].path", "regex path \"/user/[0-9]+/profile\""));
  CHECK(r.warned("api/regex", "spec.rules[0].http.paths[1].path", "skipped"));
  CHECK(r.warned("api/regex", "spec.rules[0].http.paths[2].path", "translated as exact \"/reports\""));
}

TEST_CASE("import: proxy-read-timeout is read_timeout; a different send timeout is warned about") {
  Imported r = import(ingress_json("a", "b", spec_rules({rule("a.example.com", "/", "Prefix", "s", 80)}),
                                   R"({"nginx.ingress.kubernetes.io/proxy-read-timeout": "120",
                                       "nginx.ingress.kubernetes.io/proxy-send-timeout": "30"})"));
  CHECK(r.route("a-b-1")->read_timeout == std::chrono::seconds(120));
  CHECK(r.warned("a/b", "metadata.annotations[\"nginx.ingress.kubernetes.io/proxy-send-timeout\"]",
                 "no separate send timeout"));
  Imported same = import(ingress_json("a", "b", spec_rules({rule("a.example.com", "/", "Prefix", "s", 80)}),
                                      R"({"nginx.ingress.kubernetes.io/proxy-read-timeout": "120",
                                          "nginx.ingress.kubernetes.io/proxy-send-timeout": "120"})"));
  CHECK(same.warnings.empty());
  Imported bad = import(ingress_json("a", "b", spec_rules({rule("a.example.com", "/", "Prefix", "s", 80)}),
                                     R"({"nginx.ingress.kubernetes.io/proxy-read-timeout": "60s"})"));
  CHECK(bad.route("a-b-1")->read_timeout == std::chrono::seconds(60));
  CHECK(bad.warned("a/b", "metadata.annotations[\"nginx.ingress.kubernetes.io/proxy-read-timeout\"]",
                   "not a number of seconds"));
}

TEST_CASE("import: affinity cookie is set on the upstream") {
  Imported r = import(ingress_json("shop", "web", spec_rules({rule("shop.example.com", "/", "Prefix", "web", 80)}),
                                   R"({"nginx.ingress.kubernetes.io/affinity": "cookie"})"));
  CHECK(r.config->find_upstream("shop-web-80")->affinity == config::Affinity::cookie);
  CHECK(r.warned("shop/web", "metadata.annotations[\"nginx.ingress.kubernetes.io/affinity\"]", "headless Service"));
}

TEST_CASE("import: websocket-services makes the routes to those services websocket routes") {
  std::string spec = R"({"rules": [{"host": "chat.example.com", "http": {"paths": [
      {"path": "/ws", "pathType": "Prefix", "backend": {"service": {"name": "ws", "port": {"number": 8080}}}},
      {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]})";
  Imported r = import(ingress_json("chat", "chat", spec,
                                   R"({"nginx.ingress.kubernetes.io/websocket-services": "ws, missing"})"));
  CHECK(r.route("chat-chat-1")->kind == config::RouteKind::websocket);
  CHECK(r.route("chat-chat-2")->kind == config::RouteKind::http);
  CHECK(r.result.toml->find("# websocket-services names ws") != std::string::npos);
  CHECK(r.warned("chat/chat", "metadata.annotations[\"nginx.ingress.kubernetes.io/websocket-services\"]",
                 "\"missing\" is not a backend"));
}

TEST_CASE("import: /socket.io paths are socketio routes, with a comment") {
  Imported r = import(ingress_json("chat", "io", spec_rules({rule("chat.example.com", "/socket.io", "Prefix", "io", 3000)})));
  CHECK(r.route("chat-io-1")->kind == config::RouteKind::socketio);
  CHECK(r.result.toml->find("# Socket.IO: kind = \"socketio\"") != std::string::npos);
  CHECK(r.warnings.empty());
}

TEST_CASE("import: TLS hosts redirect plain HTTP to HTTPS unless ssl-redirect is false") {
  std::string tls = R"("tls": [{"hosts": ["shop.example.com"], "secretName": "s"}])";
  Imported r = import(ingress_json("shop", "web", spec_rules({rule("shop.example.com", "/api", "Prefix", "api", 80)}, tls)));
  const config::Route* redirect = r.route("https-redirect-shop.example.com");
  REQUIRE(redirect);
  CHECK(redirect->host == "shop.example.com");
  CHECK(redirect->path == "/");
  REQUIRE(redirect->redirect.has_value());
  CHECK(redirect->redirect->scheme == "https");
  CHECK(redirect->redirect->status == 308);
  CHECK(r.select("shop.example.com", "/").first == "https-redirect-shop.example.com");
  // On HTTPS the redirect is skipped (route_table), so the same routes serve both listeners.
  router::RouteTable table(r.config);
  CHECK(table.select("shop.example.com", "/", true) == nullptr);
  // A longer path of the host still wins on plain HTTP: said in a warning.
  CHECK(r.select("shop.example.com", "/api/x").first == "shop-web-1");
  CHECK(r.warned("shop/web", "spec.tls[0].hosts[0]", "prefix /api are proxied, not redirected"));

  Imported off = import(ingress_json("shop", "web", spec_rules({rule("shop.example.com", "/api", "Prefix", "api", 80)}, tls),
                                     R"({"nginx.ingress.kubernetes.io/ssl-redirect": "false"})"));
  CHECK_FALSE(off.route("https-redirect-shop.example.com"));
}

TEST_CASE("import: force-ssl-redirect redirects without TLS; ssl-redirect alone does not") {
  Imported forced = import(ingress_json("ops", "g", spec_rules({rule("g.example.com", "/x", "Prefix", "g", 80)}),
                                        R"({"nginx.ingress.kubernetes.io/force-ssl-redirect": "true"})"));
  CHECK(forced.route("https-redirect-g.example.com"));
  Imported plain = import(ingress_json("ops", "g", spec_rules({rule("g.example.com", "/x", "Prefix", "g", 80)}),
                                       R"({"nginx.ingress.kubernetes.io/ssl-redirect": "true"})"));
  CHECK_FALSE(plain.route("https-redirect-g.example.com"));
  CHECK(plain.warnings.empty());
}

TEST_CASE("import: a host with a / route gets its redirect on exact /") {
  std::string tls = R"("tls": [{"hosts": ["shop.example.com"], "secretName": "s"}])";
  Imported r = import(ingress_json("shop", "web", spec_rules({rule("shop.example.com", "/", "Prefix", "web", 80)}, tls)));
  const config::Route* redirect = r.route("https-redirect-shop.example.com");
  REQUIRE(redirect);
  CHECK(redirect->match == config::MatchKind::exact);
  CHECK(r.warned("shop/web", "spec.tls[0].hosts[0]", "only \"/\" itself is redirected"));
}

TEST_CASE("import: other nginx annotations are reported as not translated; others are ignored") {
  Imported r = import(ingress_json("a", "b", spec_rules({rule("a.example.com", "/", "Prefix", "s", 80)}),
                                   R"({"nginx.ingress.kubernetes.io/enable-cors": "true",
                                       "nginx.ingress.kubernetes.io/some-future-thing": "1",
                                       "cert-manager.io/cluster-issuer": "letsencrypt"})"));
  CHECK(r.warnings.size() == 2);
  CHECK(r.warned("a/b", "metadata.annotations[\"nginx.ingress.kubernetes.io/enable-cors\"]", "not translated: sluice adds no CORS"));
  CHECK(r.warned("a/b", "metadata.annotations[\"nginx.ingress.kubernetes.io/some-future-thing\"]", "not translated"));
}

TEST_CASE("import: proxy-body-size, proxy-connect-timeout, backend-protocol, permanent-redirect") {
  std::string spec = spec_rules({rule("a.example.com", "/", "Prefix", "s", 443)});
  Imported r = import(ingress_json("a", "b", spec,
                                   R"({"nginx.ingress.kubernetes.io/proxy-body-size": "8m",
                                       "nginx.ingress.kubernetes.io/proxy-connect-timeout": "10",
                                       "nginx.ingress.kubernetes.io/backend-protocol": "HTTPS"})"));
  CHECK(r.route("a-b-1")->max_body == 8u * 1024 * 1024);
  const config::Upstream* u = r.config->find_upstream("a-s-443");
  CHECK(u->connect_timeout == std::chrono::seconds(10));
  REQUIRE(u->tls.has_value());
  CHECK_FALSE(u->tls->verify);

  Imported moved = import(ingress_json("a", "b", spec, R"({"nginx.ingress.kubernetes.io/permanent-redirect": "https://new.example.com/"})"));
  const config::Route* m = moved.route("a-b-1");
  REQUIRE(m->redirect.has_value());
  CHECK(m->redirect->location == "https://new.example.com/");
  CHECK(m->redirect->status == 301);
  CHECK(moved.config->upstreams.empty());
}

TEST_CASE("import: Ingresses sharing a Service disagree on affinity: warned, applied to all") {
  std::string a = ingress_json("shop", "a", spec_rules({rule("a.example.com", "/", "Prefix", "web", 80)}));
  std::string b = ingress_json("shop", "b", spec_rules({rule("b.example.com", "/", "Prefix", "web", 80)}),
                               R"({"nginx.ingress.kubernetes.io/affinity": "cookie"})");
  Imported r = import(list_json({a, b}));
  CHECK(r.config->find_upstream("shop-web-80")->affinity == config::Affinity::cookie);
  CHECK(r.warned("shop/b", "metadata.annotations[\"nginx.ingress.kubernetes.io/affinity\"]", "shared with shop/a"));
}

TEST_CASE("import: an ingress class other than nginx is translated with a warning") {
  Imported r = import(ingress_json("a", "b", R"({"ingressClassName": "traefik", "rules": [)" +
                                                 rule("a.example.com", "/", "Prefix", "s", 80) + "]}"));
  CHECK(r.route("a-b-1"));
  CHECK(r.warned("a/b", "spec.ingressClassName", "\"traefik\""));
}

TEST_CASE("import: use-regex or rewrite-target puts the whole host in regex mode, other Ingresses too") {
  // ingress-nginx writes every location of such a host as ~* "^PATH".
  std::string regex = ingress_json("shop", "api", spec_rules({rule("shop.example.com", "/api(/|$)(.*)", "ImplementationSpecific", "api", 80)}),
                                   R"({"nginx.ingress.kubernetes.io/rewrite-target": "/$2"})");
  std::string spec = R"({"rules": [{"host": "shop.example.com", "http": {"paths": [
      {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}},
      {"path": "/socket.io", "pathType": "Prefix", "backend": {"service": {"name": "io", "port": {"number": 80}}}},
      {"path": "/healthz", "pathType": "Exact", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}},
      {"host": "other.example.com", "http": {"paths": [
      {"path": "/x", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]})";
  Imported r = import(list_json({ingress_json("shop", "web", spec), regex}));
  CHECK(r.route("shop-web-2")->path == "/socket.io");
  CHECK(r.route("shop-web-3")->match == config::MatchKind::exact);
  std::string field = "spec.rules[0].http.paths[";
  CHECK_FALSE(r.warned("shop/web", field + "0].path", ""));  // ^/ is every path: nothing lost
  CHECK(r.warned("shop/web", field + "1].path", "regex paths (use-regex or rewrite-target in shop/api)"));
  CHECK(r.warned("shop/web", field + "1].path", "\"/socket.iox\""));
  CHECK(r.warned("shop/web", field + "2].path", "Exact \"/healthz\" was ^/healthz"));
  CHECK_FALSE(r.warned("shop/web", "spec.rules[1].http.paths[0].path", ""));  // another host
}

// ---------------------------------------------------------------- output

TEST_CASE("import: the output is deterministic: header, sorted upstreams, routes in input order") {
  std::string a = ingress_json("z", "first", spec_rules({rule("a.example.com", "/", "Prefix", "zeta", 80)}));
  std::string b = ingress_json("a", "second", spec_rules({rule("b.example.com", "/", "Prefix", "alpha", 80)}));
  Imported r = import(list_json({a, b}));
  const std::string& toml = *r.result.toml;
  CHECK(toml.starts_with("# Generated by `sluice import-ingress` from in.json (2 Ingress objects).\n"));
  CHECK(toml.find("[upstream.a-alpha-80]") < toml.find("[upstream.z-zeta-80]"));
  CHECK(toml.find("name = \"z-first-1\"") < toml.find("name = \"a-second-1\""));
  CHECK(r.config->upstreams[0].name == "a-alpha-80");
  Imported again = import(list_json({a, b}));
  CHECK(*again.result.toml == toml);
}

TEST_CASE("import: warnings read FILE: namespace/name: field: message") {
  ingress::Warning w{"shop/web", "spec.rules[0].host", "a message"};
  CHECK(ingress::format_warning("in.json", w) == "in.json: shop/web: spec.rules[0].host: a message");
}

TEST_CASE("import: strings that need escaping stay valid TOML") {
  Imported r = import(ingress_json("a", "b", spec_rules({rule("a.example.com", "/x\\\\y\\\"z", "Exact", "s", 80)})));
  CHECK(r.route("a-b-1")->path == "/x\\y\"z");
}

TEST_CASE("import: regressions") {
  // A Prefix path under use-regex without regex syntax stays a segment prefix.
  Imported r = import(ingress_json("a", "b", spec_rules({rule("a.example.com", "/api", "Prefix", "s", 80)}),
                                   R"({"nginx.ingress.kubernetes.io/use-regex": "true"})"));
  CHECK(r.route("a-b-1")->path == "/api");
  CHECK(r.route("a-b-1")->match == config::MatchKind::prefix);
  // Wrong JSON types read as absent, never as a crash.
  Imported odd = import(R"({"kind": "Ingress", "metadata": {"name": "x", "namespace": "n", "annotations": {"nginx.ingress.kubernetes.io/use-regex": true}},
      "spec": {"rules": [{"host": 7, "http": {"paths": "no"}}], "tls": {"x": 1}}})");
  CHECK(odd.config->routes.empty());
  CHECK(odd.warned("n/x", "metadata.annotations[\"nginx.ingress.kubernetes.io/use-regex\"]", "not a string"));
  CHECK(odd.warned("n/x", "spec.tls", "not a list"));
  // Names that go into dns: servers and certificate paths are checked (found by fuzzing).
  Imported names = import(ingress_json("n", "x", spec_rules({rule("a.example.com", "/", "Prefix", "$1", 80)},
                                                            R"("tls": [{"hosts": ["a.example.com"], "secretName": "../etc"}])")));
  CHECK(names.config->routes.empty());
  CHECK(names.config->listeners.size() == 1);
  CHECK(names.warned("n/x", "spec.rules[0].http.paths[0].backend", "not a valid Service name"));
  CHECK(names.warned("n/x", "spec.tls[0].secretName", "not a valid Secret name"));
  // A control byte in a name reaches a TOML comment as a space: TOML forbids
  // control characters in comments (found by fuzzing: the output did not load).
  Imported del = import(ingress_json("shop", "w\\u007f\\u0001eb", spec_rules({rule("s.example.com", "/", "Prefix", "web", 80)})));
  REQUIRE(del.result.toml);
  CHECK(del.result.toml->find("# Ingress shop/w  eb") != std::string::npos);
  CHECK(del.config->routes.size() == 1);
}
