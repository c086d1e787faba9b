#include "validate.h"

#include <arpa/inet.h>

#include <cstring>

#include <map>
#include <tuple>

namespace sluice::config {
namespace {

std::string in_quotes(std::string_view s) { return "'" + std::string(s) + "'"; }

std::string line_of(SourcePos pos) { return "line " + std::to_string(pos.line); }

std::string describe_match(const Route& r) {
  return std::string(r.match == MatchKind::exact ? "exact " : "prefix ") + r.path;
}

// Host class of a route: 0 exact host, 1 wildcard, 2 any host. Lower wins.
int host_class(const Route& r) {
  if (r.host.empty()) return 2;
  return r.is_wildcard_host() ? 1 : 0;
}

// True when every request for `narrow`'s host is also one for `wide`'s host.
bool host_within(const Route& narrow, const Route& wide) {
  if (wide.host.empty()) return true;
  if (narrow.host.empty()) return false;
  if (!wide.is_wildcard_host()) return narrow.host == wide.host;
  if (narrow.is_wildcard_host()) return narrow.host == wide.host;
  std::string_view suffix = std::string_view(wide.host).substr(1);  // ".example.com"
  size_t dot = narrow.host.find('.');
  return dot != std::string::npos && dot > 0 && std::string_view(narrow.host).substr(dot) == suffix;
}

void check_route_shape(Config& config, const std::vector<RoutePositions>& positions,
                       Diagnostics& diags) {
  std::map<std::string, const Route*> names;
  for (size_t i = 0; i < config.routes.size(); ++i) {
    Route& r = config.routes[i];
    const RoutePositions& p = positions[i];
    std::string label = "route " + in_quotes(r.name);
    if (!r.name.empty()) {
      auto [it, inserted] = names.emplace(r.name, &r);
      if (!inserted) {
        diags.error(r.pos, label + ": the name is already used by the route at " +
                               line_of(it->second->pos));
      }
    }
    bool local = r.respond || r.redirect;
    if (r.respond && r.redirect) {
      diags.error(p.redirect, label + ": give either 'respond' or 'redirect', not both");
    }
    if (r.has_upstream() && local) {
      diags.error(p.upstream, label + ": has both 'upstream' and '" +
                                  std::string(r.respond ? "respond" : "redirect") +
                                  "'; a route either proxies or answers itself");
    } else if (!r.has_upstream() && !local) {
      diags.error(r.pos, label + ": needs 'upstream', 'respond' or 'redirect'");
    }
    if (r.has_upstream()) {
      const Upstream* u = config.find_upstream(r.upstream);
      if (!u) {
        std::string known;
        for (const Upstream& up : config.upstreams) known += (known.empty() ? "" : ", ") + up.name;
        diags.error(p.upstream, label + ": unknown upstream " + in_quotes(r.upstream) +
                                    (known.empty() ? " (no [upstream.NAME] is defined)"
                                                   : " (defined: " + known + ")"));
      } else {
        r.upstream_index = static_cast<size_t>(u - config.upstreams.data());
      }
    }
    if (local && p.has_kind && r.kind != RouteKind::http) {
      diags.error(p.kind, label + ": 'kind' applies only to routes with an upstream");
    }
    if (r.strip_prefix && r.rewrite_prefix) {
      diags.error(p.rewrite_prefix, label + ": 'strip_prefix' and 'rewrite_prefix' exclude each "
                                            "other (rewrite_prefix = \"/\" is the same as strip)");
    }
    if (local && (r.strip_prefix || r.rewrite_prefix)) {
      SourcePos at = r.rewrite_prefix ? p.rewrite_prefix : p.strip_prefix;
      diags.warning(at, label + ": path rewriting is ignored on a route that answers itself");
    }
    if (p.has_tunnel_idle && !r.forwards_websocket()) {
      diags.warning(p.tunnel_idle, label + ": 'tunnel_idle' is ignored on a " +
                                       std::string(to_string(r.kind)) + " route (no tunnels)");
    }
    if (p.has_ping && r.kind != RouteKind::socketio) {
      diags.warning(p.ping, label + ": 'ping_interval'/'ping_timeout' apply only to socketio routes");
    }
    if (r.allowed_origins && !r.forwards_websocket()) {
      diags.warning(p.allowed_origins, label + ": 'allowed_origins' is checked only on websocket "
                                               "and socketio routes");
    }
    if (r.kind == RouteKind::socketio) {
      Duration heartbeat = r.ping_interval + r.ping_timeout;
      if (r.read_timeout < heartbeat) {
        diags.warning(p.read_timeout,
                      label + ": read_timeout " + base::format_duration(r.read_timeout) +
                          " is shorter than the Engine.IO heartbeat (ping_interval " +
                          base::format_duration(r.ping_interval) + " + ping_timeout " +
                          base::format_duration(r.ping_timeout) + " = " +
                          base::format_duration(heartbeat) +
                          "); idle long-polls will be cut with 504");
      }
    }
  }
}

void check_route_conflicts(const Config& config, const std::vector<RoutePositions>& positions,
                           Diagnostics& diags) {
  std::map<std::tuple<std::string, MatchKind, std::string>, const Route*> seen;
  for (size_t i = 0; i < config.routes.size(); ++i) {
    const Route& r = config.routes[i];
    if (r.path.empty() || positions[i].bad_host) continue;  // already reported
    auto [it, inserted] = seen.emplace(std::tuple{r.host, r.match, r.path}, &r);
    if (inserted) continue;
    const Route& first = *it->second;
    diags.error(positions[i].path,
                "route " + in_quotes(r.name) + ": matches the same requests as route " +
                    in_quotes(first.name) + " (" + line_of(first.pos) + "): same host (" +
                    (r.host.empty() ? std::string("any") : r.host) + ") and same " +
                    describe_match(r) + "; order never decides, so one must change");
  }
}

// A catch-all `/` http route is fine, but people fear it swallows realtime
// paths (it does in order-based proxies). Say what actually wins.
void warn_catch_alls(const Config& config, const std::vector<RoutePositions>& positions,
                     Diagnostics& diags) {
  for (size_t i = 0; i < config.routes.size(); ++i) {
    const Route& c = config.routes[i];
    if (c.match != MatchKind::prefix || c.path != "/" || c.kind != RouteKind::http ||
        !c.has_upstream()) {
      continue;
    }
    for (const Route& r : config.routes) {
      if (&r == &c || r.kind == RouteKind::http || r.path.empty()) continue;
      std::string what = "route " + in_quotes(c.name) + " (prefix /, kind http) catches every path";
      if (r.host == c.host) {
        diags.warning(positions[i].path,
                      what + " no other route matches; " + std::string(to_string(r.kind)) +
                          " route " + in_quotes(r.name) + " still wins for " + r.path + " (" +
                          (r.match == MatchKind::exact ? "exact beats prefix" : "longer prefix") +
                          ")");
      } else if (host_class(c) < host_class(r) && host_within(c, r)) {
        diags.warning(positions[i].path,
                      what + " for host " + c.host + ", so " + std::string(to_string(r.kind)) +
                          " route " + in_quotes(r.name) + " (" + describe_match(r) +
                          ", less specific host) is never reached for " + c.host +
                          "; give it host = \"" + c.host + "\" too if that host serves " + r.path);
      }
    }
  }
}

void check_upstreams(const Config& config, Diagnostics& diags) {
  for (const Upstream& u : config.upstreams) {
    bool single = u.servers.size() == 1 && !u.servers[0].dns;
    if (single && u.affinity != Affinity::none) {
      diags.warning(u.servers[0].pos, "upstream " + in_quotes(u.name) + ": affinity = \"" +
                                          std::string(to_string(u.affinity)) +
                                          "\" has no effect with a single server");
    }
  }
}

// Two bind addresses that cannot both be bound without sharing traffic:
// the same port and the same address, or a wildcard of the same family
// (sluice's IPv6 sockets are IPV6_V6ONLY, so 0.0.0.0 and :: coexist).
bool overlaps(const base::HostPort& a, const base::HostPort& b) {
  if (a.port != b.port || a.port == 0) return false;
  bool v6a = a.host.find(':') != std::string::npos;
  bool v6b = b.host.find(':') != std::string::npos;
  if (v6a != v6b) return false;
  unsigned char x[16] = {0}, y[16] = {0};
  int family = v6a ? AF_INET6 : AF_INET;
  if (inet_pton(family, a.host.c_str(), x) != 1 || inet_pton(family, b.host.c_str(), y) != 1) {
    return a.host == b.host;
  }
  size_t len = v6a ? 16 : 4;
  static const unsigned char kAny[16] = {0};
  return std::memcmp(x, y, len) == 0 || std::memcmp(x, kAny, len) == 0 ||
         std::memcmp(y, kAny, len) == 0;
}

void check_listeners(const Config& config, Diagnostics& diags) {
  std::vector<const Listener*> all;
  for (const Listener& l : config.listeners) all.push_back(&l);
  if (config.admin) all.push_back(&*config.admin);
  for (size_t i = 0; i < all.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (!overlaps(all[i]->bind, all[j]->bind)) continue;
      bool admin = config.admin && all[i] == &*config.admin;
      if (admin && all[i]->pos.line == 0) {
        // The admin address was not written: point at the listener that was.
        diags.error(all[j]->pos, "[[listener]]: address " + all[j]->address +
                                     " overlaps the default admin address " + all[i]->address +
                                     "; move the listener or set [admin] address");
      } else {
        diags.error(all[i]->pos, std::string(admin ? "[admin]" : "[[listener]]") + ": address " +
                                     all[i]->address + " overlaps the listener " +
                                     all[j]->address + " at " + line_of(all[j]->pos));
      }
      break;
    }
  }
  for (const Listener& l : config.listeners) {
    if (!l.tls) continue;
    std::map<std::string, SourcePos> hosts;
    for (const SniCert& sni : l.tls->sni) {
      auto [it, inserted] = hosts.emplace(sni.host, sni.files.pos);
      if (!inserted) {
        diags.error(sni.files.pos, "[[listener.tls.sni]]: host " + sni.host +
                                       " already has a certificate at " + line_of(it->second));
      }
    }
  }
}

}  // namespace

void validate(Config& config, const std::vector<RoutePositions>& positions, Diagnostics& diags) {
  check_route_shape(config, positions, diags);
  check_route_conflicts(config, positions, diags);
  warn_catch_alls(config, positions, diags);
  check_upstreams(config, diags);
  check_listeners(config, diags);
}

}  // namespace sluice::config
