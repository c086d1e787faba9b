#include <doctest/doctest.h>

#include <string>

#include "sluice/tunnel.h"

using sluice::tunnel::close_frame;
using sluice::tunnel::FrameTracker;

namespace {

// An unmasked (server) or masked (client) frame with `payload`.
std::string frame(uint8_t opcode, const std::string& payload, bool masked = false) {
  std::string f;
  f.push_back(static_cast<char>(0x80 | opcode));
  uint8_t mask_bit = masked ? 0x80 : 0;
  if (payload.size() < 126) {
    f.push_back(static_cast<char>(mask_bit | payload.size()));
  } else if (payload.size() < 65536) {
    f.push_back(static_cast<char>(mask_bit | 126));
    f.push_back(static_cast<char>(payload.size() >> 8));
    f.push_back(static_cast<char>(payload.size() & 0xff));
  } else {
    f.push_back(static_cast<char>(mask_bit | 127));
    for (int i = 7; i >= 0; --i) f.push_back(static_cast<char>((uint64_t{payload.size()} >> (8 * i)) & 0xff));
  }
  std::string body = payload;
  if (masked) {
    const char key[4] = {0x12, 0x34, 0x56, 0x78};
    f.append(key, 4);
    for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>(body[i] ^ key[i % 4]);
  }
  return f + body;
}

}  // namespace

TEST_CASE("boundaries are tracked across every split of the stream") {
  std::string stream = frame(1, "hello") + frame(2, std::string(300, 'b')) + frame(9, "") +
                       frame(1, std::string(70000, 'x'));
  for (size_t split = 0; split <= stream.size(); split += (split < 40 ? 1 : 997)) {
    FrameTracker t;
    t.feed(std::string_view(stream).substr(0, split));
    t.feed(std::string_view(stream).substr(split));
    CAPTURE(split);
    CHECK(t.valid());
    CHECK(t.at_boundary());
    CHECK(t.frames() == 4);
    CHECK_FALSE(t.close_code().has_value());
  }
}

TEST_CASE("mid-frame is not a boundary") {
  std::string f = frame(1, "hello world");
  FrameTracker t;
  CHECK(t.at_boundary());
  t.feed(f.substr(0, 1));
  CHECK_FALSE(t.at_boundary());
  t.feed(f.substr(1, 5));
  CHECK_FALSE(t.at_boundary());
  t.feed(f.substr(6));
  CHECK(t.at_boundary());
}

TEST_CASE("the close code is read from unmasked and masked close frames, byte by byte") {
  for (bool masked : {false, true}) {
    std::string payload = std::string("\x03\xe9", 2) + "bye";  // 1001
    std::string stream = frame(1, "x", masked) + frame(8, payload, masked);
    FrameTracker t;
    for (char c : stream) t.feed(std::string_view(&c, 1));
    CAPTURE(masked);
    REQUIRE(t.close_code().has_value());
    CHECK(*t.close_code() == 1001);
  }
  FrameTracker empty;
  empty.feed(frame(8, ""));
  CHECK(empty.close_code() == 1005);
}

TEST_CASE("only the first close code counts") {
  FrameTracker t;
  t.feed(frame(8, std::string("\x03\xe8", 2)) + frame(8, std::string("\x03\xf3", 2)));
  CHECK(t.close_code() == 1000);
}

TEST_CASE("a reserved opcode makes the stream untrusted") {
  FrameTracker t;
  t.feed(std::string("\x83\x00", 2));  // opcode 3 is reserved
  CHECK_FALSE(t.valid());
  FrameTracker huge;
  huge.feed(std::string("\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x00", 10));  // length with the top bit set
  CHECK_FALSE(huge.valid());
}

TEST_CASE("close_frame builds what the tracker reads back") {
  std::string server = close_frame(1011, "upstream went away");
  CHECK(static_cast<uint8_t>(server[0]) == 0x88);
  CHECK(static_cast<uint8_t>(server[1]) == 2 + 18);
  FrameTracker t;
  t.feed(server);
  CHECK(t.at_boundary());
  CHECK(t.close_code() == 1011);

  std::string client = close_frame(1001, "going away", true, 0xdeadbeef);
  CHECK((static_cast<uint8_t>(client[1]) & 0x80) != 0);
  FrameTracker c;
  c.feed(client);
  CHECK(c.close_code() == 1001);

  std::string long_reason = close_frame(1000, std::string(500, 'r'));
  CHECK(long_reason.size() == 2 + 125);  // control frames carry at most 125 bytes
}
