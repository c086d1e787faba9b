#pragma once
// Counters for /metrics (SPEC.md, "Admin endpoints"). Each worker writes its
// own cells and nothing else writes them, so an increment is a relaxed load
// and store: no lock, no contended atomic. A scrape, on the control thread,
// reads every worker's cells (relaxed loads, never torn) and adds them up.
//
// Cells are created by the control plane when a config is loaded, keyed by
// names (route, upstream and server address), and never freed: a counter
// stays monotonic across reloads that remove and re-add a route.

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/base.h"

namespace sluice::metrics {

// Written by one thread, read by any.
class Counter {
 public:
  void add(uint64_t n = 1) { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  uint64_t get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

// A gauge one thread moves both ways (may go below zero per worker: a
// tunnel can be counted open on one worker's cell only).
class Gauge {
 public:
  void add(int64_t n) { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  int64_t get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> v_{0};
};

// Upper bounds (seconds) of histogram buckets; +Inf is implied.
inline constexpr std::array<double, 11> kRequestBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                           0.5,   1,    2.5,   5,    10};
inline constexpr std::array<double, 11> kTunnelBuckets = {1,    5,     10,    30,    60,   300,
                                                          1800, 3600, 14400, 43200, 86400};

class Histogram {
 public:
  explicit Histogram(const std::array<double, 11>& bounds) : bounds_(bounds) {}
  void observe(double seconds);
  const std::array<double, 11>& bounds() const { return bounds_; }
  // Per bucket (not cumulative), the last one is +Inf.
  const std::array<Counter, 12>& buckets() const { return buckets_; }
  uint64_t sum_micros() const { return sum_us_.get(); }

 private:
  const std::array<double, 11>& bounds_;
  std::array<Counter, 12> buckets_;
  Counter sum_us_;
};

// WebSocket close codes seen, as (code, count) cells claimed on first use;
// codes beyond the cells count as "other". Code 0 means "none" (no close
// frame was seen).
class CloseCodes {
 public:
  static constexpr size_t kCells = 16;
  void add(uint16_t code);
  struct Entry {
    std::atomic<uint32_t> code{UINT32_MAX};  // UINT32_MAX: unclaimed
    Counter count;
  };
  const std::array<Entry, kCells>& cells() const { return cells_; }
  uint64_t other() const { return other_.get(); }

 private:
  std::array<Entry, kCells> cells_;
  Counter other_;
};

// One route, one worker.
struct alignas(64) RouteCells {
  std::array<Counter, 5> requests;  // by status class: 1xx .. 5xx
  Histogram duration{kRequestBuckets};
  Gauge tunnels_active;
  Histogram tunnel_duration{kTunnelBuckets};
  CloseCodes tunnel_closes;
};

// One upstream server (by address), one worker.
struct alignas(64) ServerCells {
  std::array<Counter, base::kErrorCodeCount> errors;  // by Sluice-Error code
  Gauge active;  // requests and tunnels using it now
};

// Per worker, not tied to a route.
struct alignas(64) WorkerCells {
  Counter tls_handshakes;
  Counter tls_resumed;
  Counter tls_handshake_failures;
  Counter tls_handshake_timeouts;
  Counter tls_plain_http;
};

// Values the registry does not hold, read at scrape time.
struct ScrapeExtras {
  int64_t downstream_connections = 0;
  uint64_t reloads_ok = 0;
  uint64_t reloads_failed = 0;
  bool draining = false;
  // Every server of the current config.
  struct Server {
    std::string upstream;
    std::string address;
    bool healthy = true;
    uint64_t went_down = 0;  // health changes so far
    uint64_t went_up = 0;
  };
  std::vector<Server> servers;
  // Route name -> kind, to label tunnels (routes of the current config);
  // routes not in it use the kind they were registered with.
  std::map<std::string, std::string> route_kinds;
};

class Registry {
 public:
  explicit Registry(size_t workers);
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  size_t workers() const { return workers_; }
  // The cells of `name` for every worker (index = worker), created on
  // first use; the pointers stay valid for the registry's life. Requests
  // that match no route count under the name "(none)" (SPEC.md).
  // `kind` (the route's kind when it was loaded) labels its tunnels also
  // after a reload removed the route while tunnels of it are still open.
  std::vector<RouteCells*> route(const std::string& name, std::string_view kind = {});
  std::vector<ServerCells*> server(const std::string& upstream, const std::string& address);
  WorkerCells* worker(size_t index) { return workers_cells_[index].get(); }

  // The Prometheus text exposition of everything, summed over workers.
  std::string render(const ScrapeExtras& extras) const;

 private:
  size_t workers_;
  mutable std::mutex mutex_;  // guards the maps (control plane), never the cells
  std::map<std::string, std::vector<std::unique_ptr<RouteCells>>> routes_;
  std::map<std::string, std::string> kinds_;  // route name -> its last known kind
  std::map<std::pair<std::string, std::string>, std::vector<std::unique_ptr<ServerCells>>> servers_;
  std::vector<std::unique_ptr<WorkerCells>> workers_cells_;
};

// Index into RouteCells::requests for an HTTP status (0 for < 200 ...).
inline size_t status_class(int status) {
  if (status < 200) return 0;
  if (status >= 500) return 4;
  return static_cast<size_t>(status / 100 - 1);
}

}  // namespace sluice::metrics
