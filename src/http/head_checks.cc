// What a request or response head must satisfy before sluice acts on it,
// beyond what llhttp (built without LLHTTP_STRICT_MODE, so lenient about a
// few bytes) already refuses. Pure: DownstreamConn, UpstreamConn and the
// fuzz targets call the same functions.

#include "sluice/http.h"

namespace sluice::http {

bool is_token_char(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-':
    case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

bool is_field_name(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!is_token_char(c)) return false;
  }
  return true;
}

bool is_clean_target(std::string_view target) {
  for (char c : target) {
    auto b = static_cast<unsigned char>(c);
    if (b <= 0x20 || b == 0x7f) return false;
  }
  return true;
}

bool is_clean_reason(std::string_view reason) {
  for (char c : reason) {
    auto b = static_cast<unsigned char>(c);
    if ((b < 0x20 && b != '\t') || b == 0x7f) return false;
  }
  return true;
}

bool split_absolute(std::string_view target, std::string_view& authority, std::string_view& rest) {
  size_t scheme_end = target.find("://");
  if (scheme_end == std::string_view::npos) return false;
  std::string_view scheme = target.substr(0, scheme_end);
  if (!base::iequals(scheme, "http") && !base::iequals(scheme, "https")) return false;
  std::string_view after = target.substr(scheme_end + 3);
  size_t slash = after.find_first_of("/?");
  authority = after.substr(0, slash);
  rest = slash == std::string_view::npos ? std::string_view("/") : after.substr(slash);
  return !authority.empty();
}

std::optional<HeadProblem> check_request_head(const MessageHead& head, Framing framing) {
  using base::ErrorCode;
  if (head.method() == "CONNECT") return HeadProblem{ErrorCode::bad_request, "CONNECT is not supported"};
  // RFC 9110 5.1: a field name is one or more tchar. llhttp 8 reports ": v"
  // as a field with an empty name (the callback checks the characters).
  for (size_t i = 0; i < head.header_count(); ++i) {
    if (!is_field_name(head.header(i).name)) {
      return HeadProblem{ErrorCode::bad_request, "invalid character in a header name"};
    }
  }
  // RFC 9112 3.2: the target has no whitespace or control byte. llhttp lets
  // HTAB and FF through; an upstream splitting the request line on them (RFC
  // 9112 3 allows it) would see another path than the one routed.
  if (!is_clean_target(head.target())) {
    return HeadProblem{ErrorCode::bad_request, "control character or whitespace in the request target"};
  }
  // RFC 9112 6.1: a Transfer-Encoding other than a final "chunked" on a
  // request cannot be framed safely.
  size_t te = head.count("transfer-encoding");
  if (te > 0 && framing != Framing::chunked) {
    return HeadProblem{ErrorCode::request_smuggling, "unsupported Transfer-Encoding"};
  }
  if (te > 1) return HeadProblem{ErrorCode::request_smuggling, "more than one Transfer-Encoding header"};
  size_t hosts = head.count("host");
  if (hosts > 1) return HeadProblem{ErrorCode::bad_request, "more than one Host header"};
  if (hosts == 0 && head.http_minor >= 1) {
    return HeadProblem{ErrorCode::bad_request, "HTTP/1.1 request without Host"};
  }
  std::string_view target = head.target(), authority, rest;
  if (!split_absolute(target, authority, rest) && (target.empty() || target.front() != '/')) {
    return HeadProblem{ErrorCode::bad_request, "request target must start with '/'"};
  }
  return std::nullopt;
}

std::optional<std::string_view> check_response_head(const MessageHead& head, bool upgrade) {
  for (size_t i = 0; i < head.header_count(); ++i) {
    if (!is_field_name(head.header(i).name)) return "invalid character in a response header name";
  }
  // A 101 that does not say what it switches to is an ordinary 1xx to
  // llhttp, which would read HTTP after it while the client reads frames.
  if (head.status == 101 &&
      (!upgrade || !head.has_token("upgrade", "websocket") || !head.has_token("connection", "upgrade"))) {
    return "101 without Upgrade: websocket and Connection: upgrade";
  }
  return std::nullopt;
}

}  // namespace sluice::http
