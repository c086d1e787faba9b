#include "sluice/router.h"

namespace sluice::router {
namespace {


const std::string* find_header(const HeaderList& headers, std::string_view name) {
  for (const auto& [k, v] : headers)
    if (base::iequals(k, name)) return &v;
  return nullptr;
}

bool any_header_has_token(const HeaderList& headers, std::string_view name, std::string_view token) {
  for (const auto& [k, v] : headers)
    if (base::iequals(k, name) && base::list_has_token(v, token)) return true;
  return false;
}

}  // namespace

std::optional<base::ErrorCode> admission(const Route& route, std::string_view method,
                                         const HeaderList& headers) {
  using base::ErrorCode;
  bool websocket = any_header_has_token(headers, "upgrade", "websocket");
  if (websocket) {
    if (!route.forwards_websocket()) return ErrorCode::upgrade_not_allowed;
    // RFC 6455 4.2.1: GET, Connection: Upgrade, a 16-byte base64 key, version 13.
    const std::string* key = find_header(headers, "sec-websocket-key");
    const std::string* version = find_header(headers, "sec-websocket-version");
    if (method != "GET" || !any_header_has_token(headers, "connection", "upgrade") || !key ||
        base::trim_ows(*key).size() != 24 || !version || base::trim_ows(*version) != "13") {
      return ErrorCode::bad_upgrade;
    }
  }
  bool origin_checked = websocket || route.kind == config::RouteKind::socketio;
  if (route.allowed_origins && route.forwards_websocket() && origin_checked) {
    if (const std::string* origin = find_header(headers, "origin")) {
      bool allowed = false;
      for (const std::string& o : *route.allowed_origins) allowed = allowed || base::iequals(o, base::trim_ows(*origin));
      if (!allowed) return ErrorCode::origin_forbidden;
    }
  }
  return std::nullopt;
}

}  // namespace sluice::router
