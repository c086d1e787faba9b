#include "sluice/router.h"

namespace sluice::router {

nlohmann::ordered_json explain(const RouteTable& table, const ExplainRequest& request,
                               bool* matched) {
  using nlohmann::ordered_json;
  ordered_json j;
  std::string host = normalize_host(request.host);
  Target t = split_target(request.target);
  const Route* r = table.select(host, t.path);
  if (matched) *matched = r != nullptr;
  if (!r) {
    j["route"] = nullptr;
    j["upstream"] = nullptr;
    j["kind"] = nullptr;
    j["upstream_target"] = nullptr;
    j["websocket"] = false;
    j["timeouts"] = ordered_json::object();
    j["shadowed"] = ordered_json::array();
    j["error"] = base::error_info(base::ErrorCode::no_route).code;
    return j;
  }
  const config::Config& config = table.config();
  const config::Upstream* upstream =
      r->has_upstream() ? &config.upstreams.at(r->upstream_index) : nullptr;
  std::optional<std::string> target;
  if (upstream) target = upstream_target(*r, request.target);

  j["route"] = r->name;
  j["upstream"] = upstream ? ordered_json(upstream->name) : ordered_json(nullptr);
  j["kind"] = std::string(config::to_string(r->kind));
  j["upstream_target"] = target ? ordered_json(*target) : ordered_json(nullptr);
  j["websocket"] = r->forwards_websocket();
  ordered_json timeouts = ordered_json::object();
  if (upstream) {
    timeouts["connect"] = base::format_duration(upstream->connect_timeout);
    timeouts["read"] = base::format_duration(r->read_timeout);
    if (r->forwards_websocket()) timeouts["tunnel_idle"] = base::format_duration(r->tunnel_idle);
  }
  j["timeouts"] = std::move(timeouts);
  ordered_json shadowed = ordered_json::array();
  for (const auto& [loser, why] : table.shadowed(*r, host, t.path)) {
    std::string reason(to_string(why));
    if (why == LossReason::shorter_prefix) reason += " " + loser->path;
    shadowed.push_back({{"route", loser->name}, {"reason", reason}});
  }
  j["shadowed"] = std::move(shadowed);

  // What sluice itself would answer instead of forwarding, if anything.
  std::optional<base::ErrorCode> error = admission(*r, request.method, request.headers);
  if (!error && upstream && !target) error = base::ErrorCode::path_escape;
  if (error) j["error"] = base::error_info(*error).code;
  return j;
}

std::string json_text(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace sluice::router
