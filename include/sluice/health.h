#pragma once
// Whether an upstream server may get new requests. One ServerHealth per
// (upstream, address), shared by every worker and the control thread's
// health checker, and kept across reloads: a server that was down stays down
// until a check passes.
//
// Two sources mark a server down: active checks (`health = {...}`: `fails`
// failed checks in a row, back after `passes` good ones), and passive
// ejection (consecutive connect failures or resets seen by traffic eject it
// for a back-off that doubles from 5 s up to 60 s, reset by a success).

#include <uv.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <mutex>
#include <string>
#include <vector>

#include <sys/socket.h>

#include "sluice/config.h"
#include "sluice/tls.h"

namespace sluice::health {

// Milliseconds on the steady clock, comparable across threads.
int64_t now_ms();

inline constexpr uint32_t kPassiveFailures = 3;  // in a row, without health.fails
inline constexpr int64_t kEjectFirstMs = 5'000;
inline constexpr int64_t kEjectMaxMs = 60'000;

class ServerHealth {
 public:
  ServerHealth(std::string upstream, std::string address)
      : upstream_(std::move(upstream)), address_(std::move(address)) {}

  bool usable(int64_t now) const {
    return check_ok_.load(std::memory_order_relaxed) &&
           ejected_until_.load(std::memory_order_relaxed) <= now;
  }
  bool check_ok() const { return check_ok_.load(std::memory_order_relaxed); }

  // Passive, from any worker. A failure that ejects the server logs it.
  void traffic_failed(uint32_t threshold, const std::string& cause);
  void traffic_succeeded();

  // Active, from the checker. Returns true when the state flipped.
  bool check_result(bool ok, uint32_t fails, uint32_t passes, const std::string& cause);

  uint64_t went_down() const { return went_down_.load(std::memory_order_relaxed); }
  uint64_t went_up() const { return went_up_.load(std::memory_order_relaxed); }
  const std::string& upstream() const { return upstream_; }
  const std::string& address() const { return address_; }

 private:
  std::string upstream_;
  std::string address_;
  std::atomic<bool> check_ok_{true};
  std::atomic<uint32_t> traffic_failures_{0};
  std::atomic<uint32_t> ejections_{0};
  std::atomic<int64_t> ejected_until_{0};
  std::atomic<uint64_t> went_down_{0};
  std::atomic<uint64_t> went_up_{0};
  // Checker-only state (one thread).
  uint32_t check_fails_ = 0;
  uint32_t check_passes_ = 0;
};

// Owner of every ServerHealth; lookups happen on the control plane.
class HealthTable {
 public:
  ServerHealth* get(const std::string& upstream, const std::string& address);
  // (upstream, address, health) of every server ever seen.
  template <typename Fn>
  void for_each(Fn&& fn) const {
    std::lock_guard lock(mutex_);
    for (const auto& [key, h] : table_) fn(*h);
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<ServerHealth>> table_;
};

// Active health checks (`health = {path, interval, timeout, fails, passes}`),
// run on the control thread's loop: `GET path` with `Host: <address>` and
// `Connection: close`; a 2xx or 3xx status line within `timeout` passes.
// TLS upstreams are checked over TLS with the upstream's settings.
class Checker {
 public:
  struct Target {
    std::string upstream;
    config::HealthCheck check;
    sockaddr_storage addr{};
    std::string address;  // "10.0.0.7:8000"
    std::string host;     // the server's host as written (SNI, name check)
    std::shared_ptr<const tls::ClientContext> tls;
    ServerHealth* health = nullptr;
  };

  explicit Checker(uv_loop_t* loop);
  ~Checker();
  Checker(const Checker&) = delete;
  Checker& operator=(const Checker&) = delete;

  // Replaces the servers checked (after a reload or a DNS change). A server
  // kept keeps its schedule.
  void set_targets(std::vector<Target> targets);
  void stop();

  class Probe;

 private:
  struct Scheduled {
    Target target;
    int64_t next_ms = 0;
    bool in_flight = false;
  };
  static void on_tick(uv_timer_t* timer) noexcept;
  // `ok` nullopt: no verdict (sluice could not make the check), rescheduled only.
  void finished(Probe* probe, const Target& target, std::optional<bool> ok, const std::string& cause);

  uv_loop_t* loop_;
  uv_timer_t* timer_;  // freed in its close callback
  std::vector<Scheduled> targets_;
  std::vector<Probe*> probes_;
  bool stopped_ = false;
};

}  // namespace sluice::health
