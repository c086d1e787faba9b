#include "sluice/tunnel.h"

namespace sluice::tunnel {

void FrameTracker::feed(std::string_view bytes) {
  size_t i = 0;
  while (i < bytes.size() && valid_) {
    if (state_ == State::header) {
      header_[header_len_++] = static_cast<uint8_t>(bytes[i++]);
      if (header_len_ == 2) {
        uint8_t opcode = header_[0] & 0x0f;
        bool known = opcode <= 2 || (opcode >= 8 && opcode <= 10);
        if (!known) {
          valid_ = false;
          return;
        }
        uint8_t len7 = header_[1] & 0x7f;
        masked_ = (header_[1] & 0x80) != 0;
        header_need_ = static_cast<uint8_t>(2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) +
                                            (masked_ ? 4 : 0));
      }
      if (header_len_ >= 2 && header_len_ == header_need_) start_payload();
      continue;
    }
    // Payload: skip it, except the first two bytes of a close frame.
    uint64_t take = std::min<uint64_t>(payload_left_, bytes.size() - i);
    if (in_close_) {
      for (uint64_t k = 0; k < take && close_have_ < 2; ++k) {
        uint8_t b = static_cast<uint8_t>(bytes[i + k]);
        if (masked_) b ^= mask_[(payload_pos_ + k) % 4];
        close_bytes_[close_have_++] = b;
      }
    }
    i += take;
    payload_pos_ += take;
    payload_left_ -= take;
    if (payload_left_ == 0) {
      if (in_close_ && !close_code_) {
        close_code_ = close_have_ == 2 ? static_cast<uint16_t>(close_bytes_[0] << 8 | close_bytes_[1])
                                       : uint16_t{1005};
      }
      state_ = State::header;
      header_len_ = 0;
      header_need_ = 2;
    }
  }
}

void FrameTracker::start_payload() {
  uint8_t len7 = header_[1] & 0x7f;
  size_t p = 2;
  uint64_t len = len7;
  if (len7 == 126) {
    len = uint64_t{header_[2]} << 8 | header_[3];
    p = 4;
  } else if (len7 == 127) {
    len = 0;
    for (int k = 0; k < 8; ++k) len = len << 8 | header_[2 + k];
    if (len >> 63) {
      valid_ = false;
      return;
    }
    p = 10;
  }
  if (masked_) {
    for (int k = 0; k < 4; ++k) mask_[k] = header_[p + k];
  }
  ++frames_;
  in_close_ = (header_[0] & 0x0f) == 8;
  close_have_ = 0;
  payload_pos_ = 0;
  payload_left_ = len;
  if (len == 0) {
    if (in_close_ && !close_code_) close_code_ = 1005;
    header_len_ = 0;
    header_need_ = 2;
    return;
  }
  state_ = State::payload;
}

std::string close_frame(uint16_t code, std::string_view reason, bool masked, uint32_t mask) {
  if (reason.size() > 123) reason = reason.substr(0, 123);  // control frames carry <= 125 bytes
  std::string payload;
  payload.push_back(static_cast<char>(code >> 8));
  payload.push_back(static_cast<char>(code & 0xff));
  payload.append(reason);
  std::string frame;
  frame.push_back(static_cast<char>(0x88));  // FIN + close
  frame.push_back(static_cast<char>((masked ? 0x80 : 0) | payload.size()));
  if (masked) {
    uint8_t key[4] = {static_cast<uint8_t>(mask >> 24), static_cast<uint8_t>(mask >> 16),
                      static_cast<uint8_t>(mask >> 8), static_cast<uint8_t>(mask)};
    frame.append(reinterpret_cast<const char*>(key), 4);
    for (size_t k = 0; k < payload.size(); ++k) payload[k] = static_cast<char>(payload[k] ^ key[k % 4]);
  }
  frame.append(payload);
  return frame;
}

}  // namespace sluice::tunnel
