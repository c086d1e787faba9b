// The per-worker cells: histogram buckets and close-code slots.

#include <algorithm>
#include <cmath>

#include "sluice/metrics.h"

namespace sluice::metrics {

void Histogram::observe(double seconds) {
  size_t i = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), seconds) -
                                 bounds_.begin());
  buckets_[i].add();
  sum_us_.add(static_cast<uint64_t>(std::llround(std::max(seconds, 0.0) * 1e6)));
}

void CloseCodes::add(uint16_t code) {
  for (Entry& e : cells_) {
    uint32_t c = e.code.load(std::memory_order_relaxed);
    if (c == code) {
      e.count.add();
      return;
    }
    if (c == UINT32_MAX) {
      // Only this worker claims its cells; the count is written before a
      // reader can see the code (release), so a scrape never reads a
      // claimed cell with a stale count from an earlier code.
      e.count.add();
      e.code.store(code, std::memory_order_release);
      return;
    }
  }
  other_.add();
}

}  // namespace sluice::metrics
