// What WebSocket frame awareness costs: FrameTracker::feed throughput over
// a stream of frames, next to a plain copy of the same bytes (the least a
// relay does with them anyway).
//   build-release/tools/bench/bench_frames

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "sluice/tunnel.h"

namespace {

std::string frames(size_t payload, size_t total) {
  std::string out;
  std::string body(payload, 'x');
  while (out.size() < total) {
    out.push_back(static_cast<char>(0x81));
    if (payload < 126) {
      out.push_back(static_cast<char>(payload));
    } else {
      out.push_back(126);
      out.push_back(static_cast<char>(payload >> 8));
      out.push_back(static_cast<char>(payload & 0xff));
    }
    out += body;
  }
  return out;
}

template <typename Fn>
double gib_per_second(const std::string& stream, int rounds, Fn&& fn) {
  auto start = std::chrono::steady_clock::now();
  for (int r = 0; r < rounds; ++r) fn(stream);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return static_cast<double>(stream.size()) * rounds / secs / (1 << 30);
}

}  // namespace

int main() {
  std::printf("| message size | FrameTracker::feed (GiB/s) | memcpy (GiB/s) |\n| ---: | ---: | ---: |\n");
  std::vector<char> sink(1 << 16);
  for (size_t payload : {16, 125, 1024, 60000}) {
    std::string stream = frames(payload, 64 << 20);
    sluice::tunnel::FrameTracker tracker;
    double track = gib_per_second(stream, 5, [&](const std::string& s) {
      // Fed in 64 KiB reads, as the relay sees them.
      for (size_t off = 0; off < s.size(); off += sink.size()) {
        tracker.feed(std::string_view(s).substr(off, sink.size()));
      }
    });
    double copy = gib_per_second(stream, 5, [&](const std::string& s) {
      for (size_t off = 0; off < s.size(); off += sink.size()) {
        size_t n = std::min(sink.size(), s.size() - off);
        std::memcpy(sink.data(), s.data() + off, n);
      }
    });
    if (!tracker.valid() || !tracker.at_boundary()) std::fprintf(stderr, "tracker lost the frames\n");
    std::printf("| %zu B | %.2f | %.2f |\n", payload, track, copy);
  }
  return sink[0] == 0;  // keep the copies observable
}
