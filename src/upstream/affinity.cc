#include <charconv>

#include "sluice/upstream.h"

namespace sluice::upstream {

std::string server_token(std::string_view address) {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
  uint64_t h = stable_hash(address);
  std::string token(6, 'a');
  for (char& c : token) {
    c = kAlphabet[h & 31];
    h >>= 5;
  }
  return token;
}

namespace {

// Finds the value span of parameter `name` in the query of `target`.
std::optional<std::pair<size_t, size_t>> find_param(std::string_view target, std::string_view name) {
  size_t q = target.find('?');
  if (q == std::string_view::npos) return std::nullopt;
  size_t pos = q + 1;
  while (pos <= target.size()) {
    size_t amp = target.find('&', pos);
    if (amp == std::string_view::npos) amp = target.size();
    std::string_view pair = target.substr(pos, amp - pos);
    if (pair.size() > name.size() && pair.substr(0, name.size()) == name && pair[name.size()] == '=') {
      return std::pair{pos + name.size() + 1, amp};
    }
    pos = amp + 1;
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string_view> query_param(std::string_view target, std::string_view name) {
  auto span = find_param(target, name);
  if (!span) return std::nullopt;
  return target.substr(span->first, span->second - span->first);
}

std::string replace_query_param(std::string_view target, std::string_view name, std::string_view value) {
  auto span = find_param(target, name);
  if (!span) return std::string(target);
  std::string out(target.substr(0, span->first));
  out.append(value);
  out.append(target.substr(span->second));
  return out;
}

std::optional<TokenSid> split_token_sid(std::string_view value) {
  size_t dot = value.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == value.size()) return std::nullopt;
  return TokenSid{value.substr(0, dot), value.substr(dot + 1)};
}

std::optional<std::string> rewrite_handshake(std::string_view body, std::string_view token) {
  static constexpr std::string_view kSidKey = "\"sid\":\"";
  size_t open = 0;          // where the open packet "0{" starts
  size_t length_digits = 0; // v3: digits of the length prefix
  if (body.starts_with("0{")) {
    open = 0;
  } else {
    while (length_digits < body.size() && body[length_digits] >= '0' && body[length_digits] <= '9') {
      ++length_digits;
    }
    if (length_digits == 0 || body.substr(length_digits).substr(0, 3) != ":0{") return std::nullopt;
    open = length_digits + 1;
  }
  size_t key = body.find(kSidKey, open);
  if (key == std::string_view::npos) return std::nullopt;
  size_t insert_at = key + kSidKey.size();
  std::string inserted = std::string(token) + ".";
  std::string out;
  out.reserve(body.size() + inserted.size() + 2);
  if (length_digits > 0) {
    uint64_t len = 0;
    std::from_chars(body.data(), body.data() + length_digits, len);
    // Only the first packet grows; later packets (a v2 "40") keep their prefix.
    if (insert_at > open + len) return std::nullopt;
    out.append(std::to_string(len + inserted.size()));
    out.append(body.substr(length_digits, insert_at - length_digits));
  } else {
    out.append(body.substr(0, insert_at));
  }
  out.append(inserted);
  out.append(body.substr(insert_at));
  return out;
}

std::optional<std::string_view> cookie_value(std::string_view header, std::string_view name) {
  size_t pos = 0;
  while (pos < header.size()) {
    size_t semi = header.find(';', pos);
    if (semi == std::string_view::npos) semi = header.size();
    std::string_view pair = header.substr(pos, semi - pos);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    if (pair.size() > name.size() && pair.substr(0, name.size()) == name && pair[name.size()] == '=') {
      return pair.substr(name.size() + 1);
    }
    pos = semi + 1;
  }
  return std::nullopt;
}

}  // namespace sluice::upstream
