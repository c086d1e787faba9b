#include "sluice/upstream.h"

namespace sluice::upstream {

uint64_t stable_hash(std::string_view bytes) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::optional<size_t> Balancer::pick(std::span<const ServerLoad> servers, uint64_t client_hash,
                                     std::optional<size_t> exclude) {
  size_t n = servers.size();
  auto eligible = [&](size_t i) { return servers[i].healthy && exclude != i; };
  size_t start = 0;
  switch (policy_) {
    case config::Balance::round_robin:
      start = n ? next_++ % n : 0;
      break;
    case config::Balance::random:
      start = n ? std::uniform_int_distribution<size_t>(0, n - 1)(rng_) : 0;
      break;
    case config::Balance::ip_hash:
      start = n ? client_hash % n : 0;
      break;
    case config::Balance::least_conn: {
      std::optional<size_t> best;
      // Ties go round-robin so that an idle upstream still spreads load.
      size_t offset = n ? next_++ % n : 0;
      for (size_t k = 0; k < n; ++k) {
        size_t i = (offset + k) % n;
        if (eligible(i) && (!best || servers[i].active < servers[*best].active)) best = i;
      }
      return best;
    }
  }
  // The first eligible server from `start` on: with ip_hash, a client whose
  // server is down moves to the next one and comes back when it recovers.
  for (size_t k = 0; k < n; ++k) {
    size_t i = (start + k) % n;
    if (eligible(i)) return i;
  }
  return std::nullopt;
}

}  // namespace sluice::upstream
