#pragma once
// Choosing an upstream server for a request. Per worker and lock-free: the
// balancer sees only this worker's view of each server (SPEC.md: least_conn
// is per worker). No I/O here.

#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <string_view>

#include "sluice/config.h"

namespace sluice::upstream {

// What the balancer knows of one server.
struct ServerLoad {
  bool healthy = true;
  uint32_t active = 0;  // requests in flight from this worker
};

class Balancer {
 public:
  Balancer(config::Balance policy, uint64_t seed) : policy_(policy), rng_(seed) {}

  // The server for the next request, never `exclude` (a server that just
  // failed, for the one retry) and never an unhealthy one; nullopt when no
  // server is eligible. `client_hash` feeds ip_hash.
  std::optional<size_t> pick(std::span<const ServerLoad> servers, uint64_t client_hash,
                             std::optional<size_t> exclude = std::nullopt);

 private:
  config::Balance policy_;
  size_t next_ = 0;
  std::mt19937_64 rng_;
};

// FNV-1a, stable across processes and builds (ip_hash must agree between
// sluice replicas).
uint64_t stable_hash(std::string_view bytes);

}  // namespace sluice::upstream
