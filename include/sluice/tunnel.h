#pragma once
// WebSocket frame awareness for byte-transparent tunnels (RFC 6455 5.2).
// sluice relays tunnel bytes unchanged; the tracker only follows frame
// boundaries, so that sluice can inject a close frame of its own between two
// frames (1001 at drain, 1011 when the upstream dies) and can report the
// close code of the first close frame seen. It keeps a few bytes of state
// per direction and never buffers payload.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::tunnel {

class FrameTracker {
 public:
  // Feeds the next bytes of one direction of a tunnel, in order.
  void feed(std::string_view bytes);

  // True between frames: a frame sluice writes now is not spliced into one.
  bool at_boundary() const { return state_ == State::header && header_len_ == 0; }

  // The status code of the first close frame seen in this direction, 1005
  // when it carried none; nullopt while no close frame was seen.
  std::optional<uint16_t> close_code() const { return close_code_; }

  // False once the stream could not be a WebSocket (a reserved opcode or a
  // 64-bit length with the top bit set): the tracker stops trusting
  // boundaries, and sluice then closes without a frame of its own.
  bool valid() const { return valid_; }

  uint64_t frames() const { return frames_; }

 private:
  enum class State : uint8_t { header, payload };
  void start_payload();

  State state_ = State::header;
  uint8_t header_[14];
  uint8_t header_len_ = 0;
  uint8_t header_need_ = 2;
  uint64_t payload_left_ = 0;
  bool masked_ = false;
  uint8_t mask_[4] = {0, 0, 0, 0};
  uint64_t payload_pos_ = 0;
  bool in_close_ = false;     // the current frame is a close frame
  uint8_t close_bytes_[2];
  uint8_t close_have_ = 0;
  std::optional<uint16_t> close_code_;
  bool valid_ = true;
  uint64_t frames_ = 0;
};

// A close frame with `code` and a short reason. `masked` for frames sent to a
// server (RFC 6455 5.3), with `mask` as the masking key.
std::string close_frame(uint16_t code, std::string_view reason, bool masked = false,
                        uint32_t mask = 0);

}  // namespace sluice::tunnel
