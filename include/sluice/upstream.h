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

// ---- affinity (SPEC.md "Engine.IO affinity") ---------------------------------
// A short token naming a server, derived from its address alone so that every
// sluice replica with the same upstream list computes the same one:
// 6 characters of [a-z0-9].
std::string server_token(std::string_view address);

// The value of query parameter `name` in `target` ("/p?a=1&sid=x" -> "x").
std::optional<std::string_view> query_param(std::string_view target, std::string_view name);

// `target` with the value of query parameter `name` replaced by `value`
// (every other byte unchanged). Returns `target` unchanged when absent.
std::string replace_query_param(std::string_view target, std::string_view name,
                                std::string_view value);

// "<token>.<sid>" split in two; nullopt when the sid carries no token.
struct TokenSid {
  std::string_view token;
  std::string_view sid;
};
std::optional<TokenSid> split_token_sid(std::string_view value);

// Rewrites an Engine.IO polling handshake body so that its sid reads
// "<token>.<sid>": Engine.IO v4 `0{"sid":"…",…}` and the length-prefixed v3
// payload `96:0{"sid":"…",…}` (whose length is updated). nullopt when `body`
// is not a handshake.
std::optional<std::string> rewrite_handshake(std::string_view body, std::string_view token);

// The value of cookie `name` in a Cookie header value, or nullopt.
std::optional<std::string_view> cookie_value(std::string_view cookie_header, std::string_view name);

}  // namespace sluice::upstream
