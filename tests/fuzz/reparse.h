#pragma once
// The other side's view of what sluice writes: bytes sluice sends upstream
// (a request) or to the client (a response), parsed again by a plain llhttp
// parser with default (strict) settings. The request and response targets
// use it as their oracle: whatever sluice forwards must parse as exactly the
// one message sluice meant, with nothing before, inside or after it.

#include <llhttp.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fuzz_support.h"
#include "sluice/base.h"

namespace sluice::fuzz {

struct ParsedMessage {
  std::string method;
  std::string url;
  std::string reason;
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool upgrade = false;
  bool complete = false;

  size_t count(std::string_view name) const {
    size_t n = 0;
    for (const auto& [k, v] : headers) n += base::iequals(k, name) ? 1 : 0;
    return n;
  }
  const std::string* find(std::string_view name) const {
    for (const auto& [k, v] : headers)
      if (base::iequals(k, name)) return &v;
    return nullptr;
  }
};

// Parses `bytes` as one message. `error` is llhttp's verdict after the
// first message: HPE_PAUSED (complete, `consumed` bytes used),
// HPE_PAUSED_UPGRADE, HPE_OK (incomplete) or a parse error.
struct Reparse {
  ParsedMessage message;
  llhttp_errno_t error = HPE_OK;
  size_t consumed = 0;
  std::string reason;  // llhttp's error reason
};

namespace detail {

struct Collector {
  ParsedMessage m;
  bool in_value = false;
  bool skip_body = false;  // a response to HEAD
};

inline Collector& col(llhttp_t* p) { return *static_cast<Collector*>(p->data); }

inline const llhttp_settings_t& reparse_settings() {
  static const llhttp_settings_t s = [] {
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_method = [](llhttp_t* p, const char* at, size_t n) {
      col(p).m.method.append(at, n);
      return 0;
    };
    s.on_url = [](llhttp_t* p, const char* at, size_t n) {
      col(p).m.url.append(at, n);
      return 0;
    };
    s.on_status = [](llhttp_t* p, const char* at, size_t n) {
      col(p).m.reason.append(at, n);
      return 0;
    };
    s.on_header_field = [](llhttp_t* p, const char* at, size_t n) {
      Collector& c = col(p);
      if (c.m.headers.empty() || c.in_value) c.m.headers.emplace_back();
      c.in_value = false;
      c.m.headers.back().first.append(at, n);
      return 0;
    };
    s.on_header_value = [](llhttp_t* p, const char* at, size_t n) {
      Collector& c = col(p);
      c.in_value = true;
      c.m.headers.back().second.append(at, n);
      return 0;
    };
    s.on_headers_complete = [](llhttp_t* p) {
      Collector& c = col(p);
      c.m.status = llhttp_get_status_code(p);
      c.m.upgrade = llhttp_get_upgrade(p) != 0;
      // A client reads no body after HEAD, nor for 1xx, 204 and 304 (RFC 9110
      // 6.4.1), whatever Content-Length says.
      int st = c.m.status;
      bool bodiless = llhttp_get_type(p) == HTTP_RESPONSE && ((st >= 100 && st < 200) || st == 204 || st == 304);
      return c.skip_body || bodiless ? 1 : 0;
    };
    s.on_body = [](llhttp_t* p, const char* at, size_t n) {
      col(p).m.body.append(at, n);
      return 0;
    };
    s.on_message_complete = [](llhttp_t* p) {
      col(p).m.complete = true;
      return static_cast<int>(HPE_PAUSED);
    };
    return s;
  }();
  return s;
}

}  // namespace detail

inline Reparse reparse(std::string_view bytes, llhttp_type_t type, bool head_response = false) {
  detail::Collector c;
  c.skip_body = head_response;
  llhttp_t parser;
  llhttp_init(&parser, type, &detail::reparse_settings());
  parser.data = &c;
  Reparse r;
  r.error = llhttp_execute(&parser, bytes.data(), bytes.size());
  if (r.error == HPE_OK) {
    r.consumed = bytes.size();
  } else {
    r.consumed = static_cast<size_t>(llhttp_get_error_pos(&parser) - bytes.data());
    r.reason = llhttp_get_error_reason(&parser);
  }
  r.message = std::move(c.m);
  return r;
}

// CR and LF may appear in a head sluice writes only as the CRLF that ends
// a line, other control bytes (NUL...) not at all; no line may start with whitespace (obs-fold, RFC 9112 5.2);
// every header line is "token: value". Returns "" or what is wrong.
inline std::string head_shape_problem(std::string_view head) {
  size_t end = head.find("\r\n\r\n");
  if (end == std::string_view::npos) return "no empty line ends the head";
  std::string_view lines = head.substr(0, end + 2);
  size_t pos = 0;
  bool first = true;
  while (pos < lines.size()) {
    size_t eol = lines.find("\r\n", pos);
    if (eol == std::string_view::npos) return "a line without CRLF";
    std::string_view line = lines.substr(pos, eol - pos);
    for (char c : line) {
      if (c == '\r' || c == '\n') return "bare CR or LF inside line '" + show(line) + "'";
      // RFC 9112 4 / 5.5: reason phrases and field values are HTAB, SP,
      // VCHAR and obs-text only.
      if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) {
        return std::string(first ? "control byte in the start line '" : "control byte inside line '") +
               show(line) + "'";
      }
    }
    if (first && !line.starts_with("HTTP/")) {
      // A request line: method SP request-target SP version, nothing else
      // that could read as whitespace (RFC 9112 3: a recipient MAY split on
      // HTAB, VT, FF too).
      size_t spaces = 0;
      for (char c : line) {
        if (c == ' ') ++spaces;
        if (c == '\t' || c == '\x0b' || c == '\x0c') return "control byte in the start line '" + show(line) + "'";
      }
      if (spaces != 2) return "a request line without exactly two spaces '" + show(line) + "'";
    }
    if (!first) {
      if (line.empty() || line[0] == ' ' || line[0] == '\t') return "obs-fold or empty line '" + show(line) + "'";
      size_t colon = line.find(':');
      if (colon == std::string_view::npos || colon == 0) return "header line without a name '" + show(line) + "'";
      for (char c : line.substr(0, colon)) {
        bool tchar = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
        if (!tchar) return "header name with a non-token byte '" + show(line) + "'";
      }
    }
    first = false;
    pos = eol + 2;
  }
  return "";
}

// The name of a finding already reported for this kind of head problem
// (see `known`), or "".
// `ctl_tag` names the finding for control bytes (they come from the
// request target in requests and local replies, from the reason phrase in
// responses).
inline std::string_view problem_tag(std::string_view problem, std::string_view ctl_tag) {
  if (problem.starts_with("header line without a name")) return "empty-header-name";
  if (problem.starts_with("control byte")) return ctl_tag;
  if (problem.starts_with("header name with a non-token byte")) return "header-name-token";
  return "";
}

// Aborts when `head` has a shape problem that is not a known finding.
inline void check_head_shape(const char* target, std::string_view head, const std::string& context,
                             std::string_view ctl_tag) {
  std::string problem = head_shape_problem(head);
  if (problem.empty()) return;
  std::string_view tag = problem_tag(problem, ctl_tag);
  if (!tag.empty() && known(tag)) return;
  fail(target, (tag.empty() ? std::string() : "[" + std::string(tag) + "] ") + problem + context);
}

}  // namespace sluice::fuzz
