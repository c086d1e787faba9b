// What each admin endpoint answers.

#include <nlohmann/json.hpp>

#include "sluice/admin.h"
#include "sluice/router.h"
#include "sluice/upstream.h"

namespace sluice::admin {
namespace {

using json = nlohmann::ordered_json;

Response json_response(int status, const json& j) {
  // Request input (an /explain path) may hold bytes that are not UTF-8.
  return {status, "application/json", router::json_text(j) + "\n"};
}

json nullable(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

Response routes(const State& state) {
  json list = json::array();
  for (const config::Route* r : state.snapshot->routes->ordered()) {
    list.push_back({{"name", r->name},
                    {"host", nullable(r->host)},
                    {"match", r->match == config::MatchKind::exact ? "exact" : "prefix"},
                    {"path", r->path},
                    {"kind", config::to_string(r->kind)},
                    {"upstream", nullable(r->upstream)}});
  }
  return json_response(200, {{"routes", list}});
}

int64_t active_connections(const State& state, size_t upstream, size_t address) {
  int64_t n = 0;
  for (const metrics::ServerCells* c : state.snapshot->server_cells[upstream][address]) n += c->active.get();
  return n;
}

Response upstreams(const State& state) {
  const proxy::Snapshot& snap = *state.snapshot;
  json list = json::array();
  for (size_t u = 0; u < snap.config->upstreams.size(); ++u) {
    json servers = json::array();
    for (size_t a = 0; a < snap.addresses[u].size(); ++a) {
      servers.push_back({{"address", snap.addresses[u][a].text},
                         {"healthy", snap.health[u][a]->usable(health::now_ms())},
                         {"active_connections", active_connections(state, u, a)}});
    }
    list.push_back({{"name", snap.config->upstreams[u].name}, {"servers", servers}});
  }
  return json_response(200, {{"upstreams", list}});
}

Response explain(const State& state, std::string_view target) {
  auto path = upstream::query_param(target, "path");
  if (!path || path->empty()) {
    return json_response(400, {{"error", "missing query parameter 'path' (e.g. /explain?path=/socket.io/&host=app.example.com)"}});
  }
  router::ExplainRequest req;
  req.target = url_decode(*path);
  if (auto host = upstream::query_param(target, "host")) req.host = url_decode(*host);
  return json_response(200, router::explain(*state.snapshot->routes, req));
}

Response metrics_text(const State& state) {
  metrics::ScrapeExtras extras;
  extras.downstream_connections = state.connections ? state.connections->load(std::memory_order_relaxed) : 0;
  extras.reloads_ok = state.reloads_ok;
  extras.reloads_failed = state.reloads_failed;
  extras.draining = state.draining;
  const proxy::Snapshot& snap = *state.snapshot;
  int64_t now = health::now_ms();
  for (size_t u = 0; u < snap.config->upstreams.size(); ++u) {
    for (size_t a = 0; a < snap.addresses[u].size(); ++a) {
      const health::ServerHealth& h = *snap.health[u][a];
      extras.servers.push_back({snap.config->upstreams[u].name, snap.addresses[u][a].text,
                                h.usable(now), h.went_down(), h.went_up()});
    }
  }
  for (const config::Route& r : snap.config->routes) {
    extras.route_kinds[r.name] = std::string(config::to_string(r.kind));
  }
  return {200, "text/plain; version=0.0.4; charset=utf-8", state.registry->render(extras)};
}

}  // namespace

std::string url_decode(std::string_view s) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

Response handle(const State& state, std::string_view method, std::string_view target) {
  if (method != "GET" && method != "HEAD") {
    return {405, "text/plain; charset=utf-8", "admin endpoints answer GET only\n"};
  }
  std::string_view path = target.substr(0, target.find('?'));
  if (path == "/healthz") return {200, "text/plain; charset=utf-8", "ok\n"};
  if (path == "/readyz") {
    if (state.draining) return {503, "text/plain; charset=utf-8", "draining\n"};
    return {200, "text/plain; charset=utf-8", "ready\n"};
  }
  if (path == "/metrics") return metrics_text(state);
  if (path == "/routes") return routes(state);
  if (path == "/upstreams") return upstreams(state);
  if (path == "/explain") return explain(state, target);
  return {404, "text/plain; charset=utf-8",
          "no admin endpoint " + std::string(path) +
              "; there are /healthz /readyz /metrics /routes /upstreams /explain\n"};
}

}  // namespace sluice::admin
