// The route table: per host class, a hash map of exact paths and a trie of
// prefix path segments. A lookup hashes the host at most twice (exact, then
// wildcard suffix) and walks the path's segments once, so its cost depends on
// the request, not on how many routes there are.

#include <algorithm>
#include <functional>

#include "sluice/router.h"

namespace sluice::router {
namespace {

using detail::StringMap;

int host_class(const Route& r) {
  if (r.host.empty()) return 2;
  return r.is_wildcard_host() ? 1 : 0;
}

// Calls `fn(segment)` for each '/'-separated segment of `path` after its
// leading '/', stopping early when `fn` returns false. "/" has no segments;
// "/a/" has two ("a" and "").
template <typename Fn>
void for_each_segment(std::string_view path, Fn&& fn) {
  if (path.size() <= 1) return;
  size_t start = 1;
  for (;;) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (!fn(path.substr(start, end - start))) return;
    if (end == path.size()) return;
    start = end + 1;
  }
}

}  // namespace

struct RouteTable::Node {
  StringMap<std::unique_ptr<Node>> children;
  const Route* route = nullptr;
};

struct RouteTable::PathTable {
  StringMap<const Route*> exact;
  Node root;

  void insert(const Route& r) {
    if (r.match == config::MatchKind::exact) {
      exact.emplace(r.path, &r);
      return;
    }
    Node* node = &root;
    for_each_segment(r.path, [&](std::string_view seg) {
      auto it = node->children.find(seg);
      if (it == node->children.end()) {
        it = node->children.emplace(std::string(seg), std::make_unique<Node>()).first;
      }
      node = it->second.get();
      return true;
    });
    // Config validation rejects duplicates; keep the first if one slips by.
    if (!node->route) node->route = &r;
  }

  const Route* match(std::string_view path, bool tls) const {
    if (auto it = exact.find(path); it != exact.end() && !it->second->skipped_for(tls)) {
      return it->second;
    }
    auto usable = [tls](const Route* r) { return r && !r->skipped_for(tls); };
    const Node* node = &root;
    const Route* best = usable(root.route) ? root.route : nullptr;
    for_each_segment(path, [&](std::string_view seg) {
      auto it = node->children.find(seg);
      if (it == node->children.end()) return false;
      node = it->second.get();
      if (usable(node->route)) best = node->route;
      return true;
    });
    return best;
  }
};

RouteTable::RouteTable(std::shared_ptr<const config::Config> config)
    : config_(std::move(config)), any_host_(std::make_unique<PathTable>()) {
  for (const Route& r : config_->routes) {
    if (r.path.empty()) continue;
    PathTable* table = any_host_.get();
    if (!r.host.empty()) {
      auto& map = r.is_wildcard_host() ? wildcard_hosts_ : exact_hosts_;
      std::string key = r.is_wildcard_host() ? r.host.substr(2) : r.host;
      auto& slot = map[key];
      if (!slot) slot = std::make_unique<PathTable>();
      table = slot.get();
    }
    table->insert(r);
    ordered_.push_back(&r);
  }
  std::stable_sort(ordered_.begin(), ordered_.end(), [](const Route* a, const Route* b) {
    if (host_class(*a) != host_class(*b)) return host_class(*a) < host_class(*b);
    if (a->match != b->match) return a->match == config::MatchKind::exact;
    if (a->path.size() != b->path.size()) return a->path.size() > b->path.size();
    return a->name < b->name;
  });
}

RouteTable::~RouteTable() = default;

const Route* RouteTable::select(std::string_view host, std::string_view path, bool tls) const {
  if (path.empty() || path.front() != '/') return nullptr;
  if (!host.empty()) {
    if (auto it = exact_hosts_.find(host); it != exact_hosts_.end()) {
      if (const Route* r = it->second->match(path, tls)) return r;
    }
    size_t dot = host.find('.');
    if (dot != std::string_view::npos && dot > 0 && !wildcard_hosts_.empty()) {
      auto it = wildcard_hosts_.find(host.substr(dot + 1));
      if (it != wildcard_hosts_.end()) {
        if (const Route* r = it->second->match(path, tls)) return r;
      }
    }
  }
  return any_host_->match(path, tls);
}

bool route_matches(const Route& route, std::string_view host, std::string_view path) {
  if (!route.host.empty()) {
    if (host.empty()) return false;
    if (route.is_wildcard_host()) {
      size_t dot = host.find('.');
      if (dot == std::string_view::npos || dot == 0) return false;
      if (host.substr(dot + 1) != std::string_view(route.host).substr(2)) return false;
    } else if (host != route.host) {
      return false;
    }
  }
  if (path.empty() || path.front() != '/') return false;
  if (route.match == config::MatchKind::exact) return path == route.path;
  if (route.path == "/") return true;
  return path.starts_with(route.path) &&
         (path.size() == route.path.size() || path[route.path.size()] == '/');
}

std::vector<std::pair<const Route*, LossReason>> RouteTable::shadowed(const Route& winner,
                                                                      std::string_view host,
                                                                      std::string_view path) const {
  std::vector<std::pair<const Route*, LossReason>> out;
  for (const Route* r : ordered_) {
    if (r == &winner || !route_matches(*r, host, path)) continue;
    LossReason why = LossReason::shorter_prefix;
    if (host_class(*r) > host_class(winner)) {
      why = LossReason::less_specific_host;
    } else if (winner.match == config::MatchKind::exact) {
      why = LossReason::exact_beats_prefix;
    }
    out.emplace_back(r, why);
  }
  return out;
}

std::string_view to_string(LossReason reason) {
  switch (reason) {
    case LossReason::shorter_prefix: return "shorter prefix";
    case LossReason::exact_beats_prefix: return "exact beats prefix";
    case LossReason::less_specific_host: return "less specific host";
  }
  return "";
}

}  // namespace sluice::router
