#pragma once
// Follows dns: servers (SPEC.md: "every address it resolves to is a
// server"): every resolve_interval each name is looked up again on the
// control loop with uv_getaddrinfo (never blocking it), and a change in the
// addresses of any upstream is handed over as a whole new address table.
// This is how sluice follows a Kubernetes headless Service's pods.

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sluice/proxy.h"

namespace sluice::server {

class Resolver {
 public:
  // `summary` says what changed, e.g. "upstream 'app': +10.0.0.9:8000 -10.0.0.7:8000".
  using OnChange = void (*)(void* arg, const proxy::Resolved& resolved, const std::string& summary);

  Resolver(uv_loop_t* loop, OnChange on_change, void* arg);
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // The config now serving and the addresses its snapshot was built with.
  void set(std::shared_ptr<const config::Config> config, proxy::Resolved current);
  void stop();

 private:
  struct Lookup;
  static void on_tick(uv_timer_t* timer) noexcept;
  static void on_resolved(uv_getaddrinfo_t* req, int status, addrinfo* res) noexcept;
  void start_round(size_t upstream);
  void finish_round(size_t upstream);

  uv_loop_t* loop_;
  uv_timer_t* timer_;  // freed in its close callback
  OnChange on_change_;
  void* arg_;
  std::shared_ptr<const config::Config> config_;
  proxy::Resolved current_;
  proxy::Resolved pending_;
  std::vector<int64_t> next_due_;  // per upstream, steady ms; -1: no dns: server
  std::vector<int> in_flight_;     // per upstream
  uint64_t generation_ = 0;        // lookups of an older config are dropped
  std::vector<Lookup*> lookups_;
  bool stopped_ = false;
};

}  // namespace sluice::server
