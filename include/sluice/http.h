#pragma once
// HTTP/1.1 message heads and the header rules of SPEC.md ("Headers"): what
// is copied, what is dropped on each leg, what sluice adds, and the replies
// sluice writes itself. Pure functions over bytes; parsing is llhttp's job
// (src/proxy), this module only stores what the parser reported.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/base.h"

namespace sluice::http {

struct Header {
  std::string_view name;
  std::string_view value;
};

// A request or response head, copied once out of the read buffer into one
// arena string (llhttp's spans die with the callback). Header names and
// values may arrive in several pieces; append_* glue them.
class MessageHead {
 public:
  void clear();

  // Parser callbacks. Each piece is appended to the current element.
  void append_method(std::string_view piece) { append(method_, piece); }
  void append_target(std::string_view piece) { append(target_, piece); }
  void append_reason(std::string_view piece) { append(target_, piece); }
  void append_field(std::string_view piece);
  void append_value(std::string_view piece);

  std::string_view method() const { return view(method_); }
  std::string_view target() const { return view(target_); }
  std::string_view reason() const { return view(target_); }  // responses reuse the slot
  size_t header_count() const { return headers_.size(); }
  Header header(size_t i) const { return {view(headers_[i].name), view(headers_[i].value)}; }
  // The first header called `name` (ASCII case-insensitive), or nullopt.
  std::optional<std::string_view> find(std::string_view name) const;
  size_t count(std::string_view name) const;
  // True when a comma-separated header `name` lists `token` in any instance.
  bool has_token(std::string_view name, std::string_view token) const;

  // Filled from the parser at headers-complete.
  uint8_t http_major = 1;
  uint8_t http_minor = 1;
  int status = 0;  // responses only

 private:
  struct Span {
    uint32_t offset = 0;
    uint32_t length = 0;
  };
  struct HeaderSpans {
    Span name;
    Span value;
  };
  void append(Span& span, std::string_view piece);
  std::string_view view(Span s) const { return {arena_.data() + s.offset, s.length}; }

  std::string arena_;
  Span method_, target_;
  std::vector<HeaderSpans> headers_;
  bool in_value_ = false;
};

// RFC 9110 5.6.2 tchar, and a field name: one or more of them.
bool is_token_char(char c);
bool is_field_name(std::string_view name);
// A request target without whitespace or control bytes (RFC 9112 3.2;
// bytes from 0x80 up pass, as real clients send them).
bool is_clean_target(std::string_view target);
// A reason phrase of HTAB, SP, VCHAR and obs-text only (RFC 9112 4).
bool is_clean_reason(std::string_view reason);
// Splits an absolute-form target (RFC 9112 3.2.2) into authority and the
// origin-form rest. Returns false when `target` is not absolute-form.
bool split_absolute(std::string_view target, std::string_view& authority, std::string_view& rest);

// How a body travels on one leg.
enum class Framing : uint8_t {
  none,            // no body
  content_length,  // exactly N bytes
  chunked,         // Transfer-Encoding: chunked, re-encoded by sluice
  until_close,     // response only: the body ends when the connection does
};

struct HeadProblem {
  base::ErrorCode code;
  std::string_view detail;  // a constant: valid for the program's life
};

// The checks of a complete request head that need nothing but the head:
// CONNECT, header names, the target's bytes and form, Transfer-Encoding
// other than one final chunked (`framing` is llhttp's reading), Host
// missing or repeated. nullopt = acceptable.
std::optional<HeadProblem> check_request_head(const MessageHead& head, Framing framing);

// Why a final response head from an upstream cannot be relayed, or nullopt:
// a header name that is not a token (llhttp 8 accepts spaces and empty
// names), or a 101 that is not a WebSocket switch llhttp also saw
// (`upgrade` = llhttp_get_upgrade()).
std::optional<std::string_view> check_response_head(const MessageHead& head, bool upgrade);

// RFC 9110 7.6.1 hop-by-hop headers, plus those named in `Connection`.
bool is_hop_by_hop(std::string_view name);

// What sluice adds to a request it forwards (SPEC.md "Headers").
struct ForwardInfo {
  std::string_view upstream_target;
  std::string_view client_ip;
  std::string_view proto = "http";          // X-Forwarded-Proto
  std::string_view request_id;
  std::optional<std::string_view> host;     // fixed host_header; nullopt = client's Host
  std::string_view fallback_host;           // used when the client sent no Host
  Framing framing = Framing::none;
  uint64_t content_length = 0;
  bool websocket = false;                   // an allowed upgrade
};

// Appends the head sent upstream: request line, the client's end-to-end
// headers, X-Forwarded-*, X-Request-Id and the regenerated framing.
void append_upstream_request(std::string& out, const MessageHead& request, const ForwardInfo& info);

struct ResponseInfo {
  std::string_view request_id;
  Framing framing = Framing::none;
  uint64_t content_length = 0;
  bool close = false;      // add Connection: close
  bool websocket = false;  // relaying a 101 for a WebSocket upgrade
  std::string_view extra_headers;  // complete "Name: value\r\n" lines sluice adds
};

// Appends the head relayed to the client: status line, the upstream's
// end-to-end headers, X-Request-Id and the regenerated framing.
void append_client_response(std::string& out, const MessageHead& response, const ResponseInfo& info);

// Chunked-encoding pieces for regenerated framing (RFC 9112 7.1).
void append_chunk(std::string& out, std::string_view data);
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";

// A client's X-Request-Id is kept when it is 1-128 characters of
// A-Z a-z 0-9 - _ . : (SPEC.md); otherwise sluice generates one.
bool valid_request_id(std::string_view id);
// 32 hex characters from two random words.
std::string make_request_id(uint64_t hi, uint64_t lo);

std::string_view reason_phrase(int status);

// A complete reply sluice answers itself for `code`, with Sluice-Error and a
// text body of the code's reason plus `detail`. `head`: the answer to a HEAD
// request, whose Content-Length is the body's but which carries none (RFC
// 9110 9.3.2; a client reads no body after HEAD, so one sent would be taken
// for the next response).
std::string error_reply(base::ErrorCode code, std::string_view detail, std::string_view request_id,
                        bool close, bool head = false);

// A complete reply with the given status, content type and body (`head` as
// for error_reply).
std::string simple_reply(int status, std::string_view content_type, std::string_view body,
                         std::string_view request_id, bool close,
                         std::string_view extra_headers = {}, bool head = false);

}  // namespace sluice::http
