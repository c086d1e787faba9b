// The registry of cells and its Prometheus text exposition (format 0.0.4).

#include <charconv>
#include <cstdio>
#include <map>

#include "sluice/metrics.h"

namespace sluice::metrics {
namespace {

std::string escape(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

// The shortest text that reads back as `v`: a large _sum keeps its
// fractional part (rates of it stay exact).
std::string number(double v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : std::string("NaN");
}

// Writes one metric family: HELP and TYPE once, then its samples.
class Writer {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  // `labels` is a list of (name, value) pairs.
  void sample(std::string_view name, std::initializer_list<std::pair<std::string_view, std::string_view>> labels,
              std::string_view value) {
    out_ += name;
    if (labels.size() > 0) {
      out_ += '{';
      bool first = true;
      for (const auto& [k, v] : labels) {
        if (!first) out_ += ',';
        first = false;
        out_ += k;
        out_ += "=\"";
        out_ += escape(v);
        out_ += '"';
      }
      out_ += '}';
    }
    out_ += ' ';
    out_ += value;
    out_ += '\n';
  }
  void sample(std::string_view name, std::initializer_list<std::pair<std::string_view, std::string_view>> labels,
              uint64_t value) {
    sample(name, labels, std::to_string(value));
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

// A histogram summed over workers.
struct Summed {
  std::array<uint64_t, 12> buckets{};
  uint64_t sum_us = 0;
  void add(const Histogram& h) {
    for (size_t i = 0; i < buckets.size(); ++i) buckets[i] += h.buckets()[i].get();
    sum_us += h.sum_micros();
  }
};

void write_histogram(Writer& w, std::string_view name, std::string_view route,
                     const std::array<double, 11>& bounds, const Summed& h) {
  std::string bucket = std::string(name) + "_bucket";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds.size(); ++i) {
    cumulative += h.buckets[i];
    w.sample(bucket, {{"route", route}, {"le", number(bounds[i])}}, cumulative);
  }
  cumulative += h.buckets.back();
  w.sample(bucket, {{"route", route}, {"le", "+Inf"}}, cumulative);
  w.sample(std::string(name) + "_sum", {{"route", route}}, number(static_cast<double>(h.sum_us) / 1e6));
  w.sample(std::string(name) + "_count", {{"route", route}}, cumulative);
}

constexpr std::array<std::string_view, 5> kClasses = {"1xx", "2xx", "3xx", "4xx", "5xx"};

}  // namespace

Registry::Registry(size_t workers) : workers_(workers) {
  for (size_t i = 0; i < workers; ++i) workers_cells_.push_back(std::make_unique<WorkerCells>());
}

std::vector<RouteCells*> Registry::route(const std::string& name, std::string_view kind) {
  std::lock_guard lock(mutex_);
  if (!kind.empty()) kinds_[name] = std::string(kind);
  auto& cells = routes_[name];
  while (cells.size() < workers_) cells.push_back(std::make_unique<RouteCells>());
  std::vector<RouteCells*> out;
  for (auto& c : cells) out.push_back(c.get());
  return out;
}

std::vector<ServerCells*> Registry::server(const std::string& upstream, const std::string& address) {
  std::lock_guard lock(mutex_);
  auto& cells = servers_[{upstream, address}];
  while (cells.size() < workers_) cells.push_back(std::make_unique<ServerCells>());
  std::vector<ServerCells*> out;
  for (auto& c : cells) out.push_back(c.get());
  return out;
}

std::string Registry::render(const ScrapeExtras& extras) const {
  std::lock_guard lock(mutex_);
  Writer w;

  w.family("sluice_requests_total", "counter", "Requests answered, by route and status class.");
  for (const auto& [route, cells] : routes_) {
    for (size_t c = 0; c < kClasses.size(); ++c) {
      uint64_t n = 0;
      for (const auto& cell : cells) n += cell->requests[c].get();
      w.sample("sluice_requests_total", {{"route", route}, {"code", kClasses[c]}}, n);
    }
  }
  w.family("sluice_request_duration_seconds", "histogram",
           "Time from the request's first byte to its last response byte.");
  for (const auto& [route, cells] : routes_) {
    Summed h;
    for (const auto& cell : cells) h.add(cell->duration);
    write_histogram(w, "sluice_request_duration_seconds", route, kRequestBuckets, h);
  }

  w.family("sluice_downstream_connections", "gauge", "Client connections open now.");
  w.sample("sluice_downstream_connections", {}, std::to_string(extras.downstream_connections));

  // Tunnel families list the routes that carry tunnels now, and any other
  // that ever did (a route removed or changed by a reload keeps its counts).
  auto kind_of = [&](const std::string& route) -> std::string_view {
    if (auto it = extras.route_kinds.find(route); it != extras.route_kinds.end()) return it->second;
    auto it = kinds_.find(route);
    return it == kinds_.end() ? std::string_view() : std::string_view(it->second);
  };
  auto has_tunnels = [&](const std::string& route, const std::vector<std::unique_ptr<RouteCells>>& cells) {
    std::string_view kind = kind_of(route);
    if (kind == "websocket" || kind == "socketio") return true;
    for (const auto& cell : cells) {
      if (cell->tunnels_active.get() != 0) return true;
      for (const auto& b : cell->tunnel_duration.buckets()) {
        if (b.get() != 0) return true;
      }
    }
    return false;
  };
  w.family("sluice_tunnels_active", "gauge", "WebSocket tunnels open now.");
  for (const auto& [route, cells] : routes_) {
    if (!has_tunnels(route, cells)) continue;
    int64_t n = 0;
    for (const auto& cell : cells) n += cell->tunnels_active.get();
    w.sample("sluice_tunnels_active", {{"route", route}, {"kind", kind_of(route)}}, std::to_string(n));
  }
  w.family("sluice_tunnel_duration_seconds", "histogram", "Lifetime of closed WebSocket tunnels.");
  for (const auto& [route, cells] : routes_) {
    if (!has_tunnels(route, cells)) continue;
    Summed h;
    for (const auto& cell : cells) h.add(cell->tunnel_duration);
    write_histogram(w, "sluice_tunnel_duration_seconds", route, kTunnelBuckets, h);
  }
  w.family("sluice_tunnel_closes_total", "counter",
           "Closed tunnels by the code of the first close frame (none: no close frame).");
  for (const auto& [route, cells] : routes_) {
    std::map<uint32_t, uint64_t> codes;
    uint64_t other = 0;
    for (const auto& cell : cells) {
      for (const auto& e : cell->tunnel_closes.cells()) {
        uint32_t code = e.code.load(std::memory_order_acquire);
        if (code != UINT32_MAX) codes[code] += e.count.get();
      }
      other += cell->tunnel_closes.other();
    }
    for (const auto& [code, n] : codes) {
      w.sample("sluice_tunnel_closes_total",
               {{"route", route}, {"code", code == 0 ? "none" : std::to_string(code)}}, n);
    }
    if (other > 0) w.sample("sluice_tunnel_closes_total", {{"route", route}, {"code", "other"}}, other);
  }

  w.family("sluice_upstream_healthy", "gauge", "1 when the server receives new requests.");
  for (const auto& s : extras.servers) {
    w.sample("sluice_upstream_healthy", {{"upstream", s.upstream}, {"server", s.address}}, s.healthy ? "1" : "0");
  }
  w.family("sluice_upstream_health_changes_total", "counter",
           "Health changes of a server (active checks and passive ejection), by new state.");
  for (const auto& s : extras.servers) {
    w.sample("sluice_upstream_health_changes_total", {{"upstream", s.upstream}, {"server", s.address}, {"to", "down"}},
             s.went_down);
    w.sample("sluice_upstream_health_changes_total", {{"upstream", s.upstream}, {"server", s.address}, {"to", "up"}},
             s.went_up);
  }
  w.family("sluice_upstream_active", "gauge", "Requests and tunnels using the server now.");
  for (const auto& [key, cells] : servers_) {
    int64_t n = 0;
    for (const auto& cell : cells) n += cell->active.get();
    w.sample("sluice_upstream_active", {{"upstream", key.first}, {"server", key.second}},
             std::to_string(n));
  }
  w.family("sluice_upstream_errors_total", "counter",
           "Failed upstream exchanges, by the Sluice-Error code answered.");
  for (const auto& [key, cells] : servers_) {
    for (size_t e = 0; e < base::kErrorCodeCount; ++e) {
      uint64_t n = 0;
      for (const auto& cell : cells) n += cell->errors[e].get();
      if (n == 0) continue;
      w.sample("sluice_upstream_errors_total",
               {{"upstream", key.first}, {"server", key.second},
                {"error", base::error_info(static_cast<base::ErrorCode>(e)).code}},
               n);
    }
  }

  w.family("sluice_config_reloads_total", "counter", "Config reloads, by result.");
  w.sample("sluice_config_reloads_total", {{"result", "ok"}}, extras.reloads_ok);
  w.sample("sluice_config_reloads_total", {{"result", "failed"}}, extras.reloads_failed);
  w.family("sluice_draining", "gauge", "1 while sluice drains before exiting.");
  w.sample("sluice_draining", {}, extras.draining ? "1" : "0");

  uint64_t handshakes = 0, resumed = 0, failed = 0, timeouts = 0, plain = 0;
  for (const auto& c : workers_cells_) {
    handshakes += c->tls_handshakes.get();
    resumed += c->tls_resumed.get();
    failed += c->tls_handshake_failures.get();
    timeouts += c->tls_handshake_timeouts.get();
    plain += c->tls_plain_http.get();
  }
  w.family("sluice_tls_handshakes_total", "counter", "Completed TLS handshakes on listeners.");
  w.sample("sluice_tls_handshakes_total", {{"resumed", "false"}}, handshakes - resumed);
  w.sample("sluice_tls_handshakes_total", {{"resumed", "true"}}, resumed);
  w.family("sluice_tls_handshake_errors_total", "counter",
           "TLS connections that never completed a handshake, by cause.");
  w.sample("sluice_tls_handshake_errors_total", {{"reason", "failed"}}, failed);
  w.sample("sluice_tls_handshake_errors_total", {{"reason", "timeout"}}, timeouts);
  w.sample("sluice_tls_handshake_errors_total", {{"reason", "plain_http"}}, plain);
  return w.take();
}

}  // namespace sluice::metrics
