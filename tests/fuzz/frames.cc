// fuzz_frames: tunnel::FrameTracker (src/tunnel/frame_tracker.cc), the
// WebSocket frame follower of byte-transparent tunnels. The input is one
// direction of a tunnel.
//
// Oracles (abort on violation):
//  - feeding the bytes in one piece, one byte at a time and in pieces cut
//    at points derived from the input ends in the same state: boundary,
//    frame count, close code, validity;
//  - that state is the one a plain reading of RFC 6455 5.2 gives (the
//    reference below walks whole frames over the whole input);
//  - while the stream is valid, at_boundary() after every single byte is
//    true exactly at the reference's frame ends;
//  - close_frame(code, reason, masked, mask) built from the input is one
//    complete frame the tracker reads back with that code, ending at a
//    boundary.

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.h"
#include "sluice/tunnel.h"

namespace {

using namespace sluice;
using fuzz::fail;
using fuzz::show;

constexpr const char* kName = "frames";

struct State {
  bool boundary = true;
  uint64_t frames = 0;
  std::optional<uint16_t> close;
  bool valid = true;

  bool operator==(const State&) const = default;
  std::string str() const {
    return "boundary=" + std::to_string(boundary) + " frames=" + std::to_string(frames) +
           " close=" + (close ? std::to_string(*close) : "none") + " valid=" + std::to_string(valid);
  }
};

State state_of(const tunnel::FrameTracker& t) {
  // at_boundary means nothing once the stream is invalid.
  return {t.valid() && t.at_boundary(), t.frames(), t.close_code(), t.valid()};
}

// RFC 6455 5.2, frame by frame over the whole input. `ends` gets the
// offset just past each complete frame.
State reference(std::string_view in, std::set<size_t>* ends) {
  State s;
  size_t p = 0;
  auto byte = [&](size_t i) { return static_cast<uint8_t>(in[i]); };
  while (p < in.size()) {
    if (in.size() - p < 2) {
      s.boundary = false;
      return s;
    }
    uint8_t opcode = byte(p) & 0x0f;
    if (!(opcode <= 2 || (opcode >= 8 && opcode <= 10))) {
      s.valid = false;
      s.boundary = false;
      return s;
    }
    bool masked = (byte(p + 1) & 0x80) != 0;
    uint8_t len7 = byte(p + 1) & 0x7f;
    size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
    size_t header = 2 + ext + (masked ? 4 : 0);
    if (in.size() - p < header) {
      s.boundary = false;  // (a bad 64-bit length is judged once the header is whole)
      return s;
    }
    uint64_t len = len7;
    if (ext == 2) len = uint64_t{byte(p + 2)} << 8 | byte(p + 3);
    if (ext == 8) {
      len = 0;
      for (size_t k = 0; k < 8; ++k) len = len << 8 | byte(p + 2 + k);
      if (len >> 63) {
        s.valid = false;
        s.boundary = false;
        return s;
      }
    }
    ++s.frames;
    size_t payload = p + header;
    if (len > in.size() - payload) {
      s.boundary = false;
      return s;
    }
    if (opcode == 8 && !s.close) {
      if (len >= 2) {
        uint8_t b0 = byte(payload), b1 = byte(payload + 1);
        if (masked) {
          b0 ^= byte(p + 2 + ext);
          b1 ^= byte(p + 2 + ext + 1);
        }
        s.close = static_cast<uint16_t>(b0 << 8 | b1);
      } else {
        s.close = 1005;
      }
    }
    p = payload + len;
    if (ends) ends->insert(p);
  }
  return s;
}

State feed(const std::vector<std::string_view>& pieces) {
  tunnel::FrameTracker t;
  for (std::string_view piece : pieces) t.feed(piece);
  return state_of(t);
}

void check_close_frame(std::string_view in) {
  if (in.size() < 7) return;
  auto b = [&](size_t i) { return static_cast<uint8_t>(in[i]); };
  uint16_t code = static_cast<uint16_t>(b(0) << 8 | b(1));
  bool masked = b(2) & 1;
  uint32_t mask = uint32_t{b(3)} << 24 | uint32_t{b(4)} << 16 | uint32_t{b(5)} << 8 | b(6);
  std::string_view reason = in.substr(7);
  std::string frame = tunnel::close_frame(code, reason, masked, mask);
  tunnel::FrameTracker t;
  t.feed(frame);
  if (!t.valid() || !t.at_boundary() || t.frames() != 1 || t.close_code() != code) {
    fail(kName, "close_frame(" + std::to_string(code) + ") does not read back: " + state_of(t).str() + " " +
                    show(frame));
  }
  if (frame.size() > 2 + (masked ? 4 : 0) + 125) fail(kName, "a close frame longer than a control frame may be");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::set<size_t> ends;
  State want = reference(in, &ends);
  State whole = feed({in});
  if (whole != want) fail(kName, "one piece: " + whole.str() + ", RFC 6455 reading: " + want.str());

  // One byte at a time, with the boundary checked after each byte.
  tunnel::FrameTracker t;
  for (size_t i = 0; i < in.size(); ++i) {
    t.feed(in.substr(i, 1));
    if (!t.valid()) break;
    bool at_end = ends.count(i + 1) > 0;
    if (t.at_boundary() != at_end) {
      fail(kName, "after byte " + std::to_string(i + 1) + " at_boundary() is " + std::to_string(t.at_boundary()) +
                      ", the frame ends say " + std::to_string(at_end));
    }
  }
  t.feed({});  // an empty read changes nothing
  if (state_of(t) != want) fail(kName, "one byte at a time: " + state_of(t).str() + ", one piece: " + want.str());

  for (uint64_t salt : {3, 4}) {
    State cut = feed(fuzz::pieces(in, salt, salt == 3 ? 7 : 300));
    if (cut != want) fail(kName, "random cuts: " + cut.str() + ", one piece: " + want.str());
  }
  check_close_frame(in);
  return 0;
}
