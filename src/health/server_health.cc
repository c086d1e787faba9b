// Health state transitions, logged once per change.

#include <unistd.h>

#include "sluice/health.h"

namespace sluice::health {
namespace {

void log_line(const std::string& line) {
  std::string out = "sluice: health: " + line + "\n";
  ssize_t ignored = ::write(2, out.data(), out.size());  // one write: lines never interleave
  (void)ignored;
}

}  // namespace

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// went_down/went_up count changes of usable(): each outage once, whichever
// source saw it first, and each return once.

void ServerHealth::traffic_failed(uint32_t threshold, const std::string& cause) {
  uint32_t failures = traffic_failures_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (failures < threshold) return;
  int64_t now = now_ms();
  if (ejected_until_.load(std::memory_order_relaxed) > now) return;  // already out
  traffic_failures_.store(0, std::memory_order_relaxed);
  uint32_t n = ejections_.fetch_add(1, std::memory_order_relaxed);
  int64_t backoff = std::min(kEjectMaxMs, kEjectFirstMs << std::min<uint32_t>(n, 4));
  ejected_until_.store(now + backoff, std::memory_order_relaxed);
  if (!check_ok()) return;  // the checks already keep it out
  went_down_.fetch_add(1, std::memory_order_relaxed);
  log_line("upstream '" + upstream_ + "' server " + address_ + " ejected for " +
           std::to_string(backoff / 1000) + "s after " + std::to_string(failures) +
           " failed attempts in a row (" + cause + ")");
}

void ServerHealth::traffic_succeeded() {
  if (traffic_failures_.load(std::memory_order_relaxed) != 0) {
    traffic_failures_.store(0, std::memory_order_relaxed);
  }
  // The first success after an ejection ran out (one worker wins the swap).
  uint32_t n = ejections_.load(std::memory_order_relaxed);
  if (n == 0 || ejected_until_.load(std::memory_order_relaxed) > now_ms()) return;
  if (!ejections_.compare_exchange_strong(n, 0, std::memory_order_relaxed)) return;
  went_up_.fetch_add(1, std::memory_order_relaxed);
  log_line("upstream '" + upstream_ + "' server " + address_ + " answers again after its ejection");
}

bool ServerHealth::check_result(bool ok, uint32_t fails, uint32_t passes, const std::string& cause) {
  if (ok) {
    check_fails_ = 0;
    if (check_ok()) return false;
    if (++check_passes_ < passes) return false;
    check_passes_ = 0;
    // A passing check also lifts a passive ejection: the server is back now.
    ejected_until_.store(0, std::memory_order_relaxed);
    ejections_.store(0, std::memory_order_relaxed);
    traffic_failures_.store(0, std::memory_order_relaxed);
    check_ok_.store(true, std::memory_order_relaxed);
    went_up_.fetch_add(1, std::memory_order_relaxed);
    log_line("upstream '" + upstream_ + "' server " + address_ + " is healthy again");
    return true;
  }
  check_passes_ = 0;
  if (!check_ok()) return false;
  if (++check_fails_ < fails) return false;
  check_fails_ = 0;
  bool was_usable = ejected_until_.load(std::memory_order_relaxed) <= now_ms();
  check_ok_.store(false, std::memory_order_relaxed);
  if (was_usable) went_down_.fetch_add(1, std::memory_order_relaxed);
  log_line("upstream '" + upstream_ + "' server " + address_ + " marked down: " + cause);
  return true;
}

ServerHealth* HealthTable::get(const std::string& upstream, const std::string& address) {
  std::lock_guard lock(mutex_);
  auto& slot = table_[{upstream, address}];
  if (!slot) slot = std::make_unique<ServerHealth>(upstream, address);
  return slot.get();
}

}  // namespace sluice::health
