#include "sluice/router.h"

namespace sluice::router {

std::string normalize_host(std::string_view host) {
  if (!host.empty() && host.front() == '[') {
    size_t close = host.find(']');
    if (close != std::string_view::npos) host = host.substr(0, close + 1);
  } else if (size_t colon = host.find(':'); colon != std::string_view::npos) {
    host = host.substr(0, colon);
  }
  // "example.com." names the same host as "example.com" (RFC 1034 absolute form).
  if (host.size() > 1 && host.back() == '.') host.remove_suffix(1);
  return base::to_lower(host);
}

Target split_target(std::string_view target) {
  size_t q = target.find('?');
  if (q == std::string_view::npos) return {target, {}};
  return {target.substr(0, q), target.substr(q)};
}

}  // namespace sluice::router
