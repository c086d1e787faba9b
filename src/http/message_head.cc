#include "sluice/http.h"

namespace sluice::http {
void MessageHead::clear() {
  arena_.clear();
  method_ = target_ = {};
  headers_.clear();
  in_value_ = false;
  http_major = 1;
  http_minor = 1;
  status = 0;
}

void MessageHead::append(Span& span, std::string_view piece) {
  if (span.length == 0) span.offset = static_cast<uint32_t>(arena_.size());
  // Pieces of one element arrive back to back, so the span stays contiguous.
  arena_.append(piece);
  span.length += static_cast<uint32_t>(piece.size());
}

void MessageHead::append_field(std::string_view piece) {
  if (headers_.empty() || in_value_) {
    headers_.emplace_back();
    in_value_ = false;
  }
  append(headers_.back().name, piece);
}

void MessageHead::append_value(std::string_view piece) {
  if (headers_.empty()) return;  // the parser never sends a value first
  in_value_ = true;
  append(headers_.back().value, piece);
}

std::optional<std::string_view> MessageHead::find(std::string_view name) const {
  for (const HeaderSpans& h : headers_)
    if (base::iequals(view(h.name), name)) return base::trim_ows(view(h.value));
  return std::nullopt;
}

size_t MessageHead::count(std::string_view name) const {
  size_t n = 0;
  for (const HeaderSpans& h : headers_) n += base::iequals(view(h.name), name) ? 1 : 0;
  return n;
}

bool MessageHead::has_token(std::string_view name, std::string_view token) const {
  for (const HeaderSpans& h : headers_) {
    if (base::iequals(view(h.name), name) && base::list_has_token(view(h.value), token)) return true;
  }
  return false;
}

}  // namespace sluice::http
