// fuzz_handshake: Engine.IO affinity (src/upstream/affinity.cc). The input
// is used as a polling handshake body for rewrite_handshake, as a request
// target for the query helpers, as a sid for split_token_sid, as a Cookie
// header for cookie_value, and as a server address for server_token.
//
// Oracles (abort on violation):
//  - server_token: 6 characters of [a-z2-7], the same for the same address;
//  - rewrite_handshake: the output is the input with "<token>." inserted
//    right after the first `"sid":"` of the open packet and, for Engine.IO 3,
//    the length prefix raised by as much; when the input's length prefix
//    described its first packet, the new one describes the new packet;
//  - the round trip sluice relies on: the sid a client reads from the
//    rewritten handshake, sent back as ?sid=, splits into the token and the
//    backend's sid, and replace_query_param hands the backend its own sid;
//  - split_token_sid: token + "." + sid is the value; neither part empty,
//    the token has no dot;
//  - query_param / replace_query_param: replacing a parameter with its own
//    value changes nothing, replacing it with a value without '&' or '#'
//    reads back as that value, and nothing outside the value changes;
//  - cookie_value: a value found is a substring of the header, and a cookie
//    appended to the header is found again when nothing before it has the
//    same name.

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "fuzz_support.h"
#include "sluice/upstream.h"

namespace {

using namespace sluice;
using fuzz::fail;
using fuzz::show;

constexpr const char* kName = "handshake";
constexpr std::string_view kSidKey = "\"sid\":\"";

void check_token(std::string_view address) {
  std::string t = upstream::server_token(address);
  if (t.size() != 6) fail(kName, "token of length " + std::to_string(t.size()));
  for (char c : t) {
    if (!((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7'))) fail(kName, "token byte outside [a-z2-7]: " + show(t));
  }
  if (upstream::server_token(address) != t) fail(kName, "server_token is not deterministic");
}

// The sid of the handshake's open packet as a client reads it: the text
// between `"sid":"` and the next quote.
std::optional<std::string_view> sid_in(std::string_view body, size_t from) {
  size_t key = body.find(kSidKey, from);
  if (key == std::string_view::npos) return std::nullopt;
  size_t start = key + kSidKey.size();
  size_t end = body.find('"', start);
  if (end == std::string_view::npos) return std::nullopt;
  return body.substr(start, end - start);
}

void check_rewrite(std::string_view body, std::string_view token) {
  std::optional<std::string> out = upstream::rewrite_handshake(body, token);
  if (!out) return;
  std::string inserted = std::string(token) + ".";
  if (body.starts_with("0{")) {
    size_t at = body.find(kSidKey) + kSidKey.size();
    std::string want = std::string(body.substr(0, at)) + inserted + std::string(body.substr(at));
    if (*out != want) fail(kName, "v4 rewrite is not a plain insertion: " + show(*out));
  } else {
    // v3: "<len>:0{...": digits, then the packet.
    size_t digits = 0;
    while (digits < body.size() && body[digits] >= '0' && body[digits] <= '9') ++digits;
    if (digits == 0 || body.substr(digits, 3) != ":0{") fail(kName, "rewrote a body that is not a handshake: " + show(body));
    size_t out_digits = 0;
    while (out_digits < out->size() && (*out)[out_digits] >= '0' && (*out)[out_digits] <= '9') ++out_digits;
    uint64_t old_len = 0, new_len = 0;
    auto r1 = std::from_chars(body.data(), body.data() + digits, old_len);
    auto r2 = std::from_chars(out->data(), out->data() + out_digits, new_len);
    if (r1.ec != std::errc() || r2.ec != std::errc()) fail(kName, "v3 length prefix does not parse: " + show(*out));
    if (new_len != old_len + inserted.size()) fail(kName, "v3 length prefix not raised by the token: " + show(*out));
    std::string_view rest_in = body.substr(digits), rest_out = std::string_view(*out).substr(out_digits);
    size_t at = rest_in.find(kSidKey) + kSidKey.size();
    std::string want = std::string(rest_in.substr(0, at)) + inserted + std::string(rest_in.substr(at));
    if (rest_out != want) fail(kName, "v3 rewrite changed more than the sid and the length: " + show(*out));
    // A prefix that described the first packet still does.
    size_t open = digits + 1;
    if (old_len <= body.size() - open && new_len > out->size() - (out_digits + 1)) {
      fail(kName, "v3 length prefix now points past the body: " + show(*out));
    }
  }
  // The round trip: the client sends the sid it read back in ?sid=.
  std::optional<std::string_view> original = sid_in(body, 0);
  std::optional<std::string_view> seen = sid_in(*out, 0);
  if (!original || !seen) return;
  if (*seen != inserted + std::string(*original)) fail(kName, "the client does not read <token>.<sid>: " + show(*seen));
  if (seen->find_first_of("&#") != std::string_view::npos) return;  // not carried in a query as is
  std::string target = "/socket.io/?EIO=4&transport=polling&sid=" + std::string(*seen);
  std::optional<std::string_view> sid = upstream::query_param(target, "sid");
  if (sid != *seen) fail(kName, "query_param does not read the sid back: " + show(target));
  std::optional<upstream::TokenSid> parts = upstream::split_token_sid(*sid);
  if (!parts) {
    if (!original->empty()) fail(kName, "split_token_sid does not split a rewritten sid: " + show(*sid));
    return;
  }
  if (parts->token != token || parts->sid != *original) {
    fail(kName, "the token/sid split does not give back the server's token and sid: " + show(*sid));
  }
  std::string upstream_target = upstream::replace_query_param(target, "sid", parts->sid);
  if (upstream::query_param(upstream_target, "sid") != *original) {
    fail(kName, "the backend does not get its own sid back: " + show(upstream_target));
  }
}

void check_split(std::string_view value) {
  std::optional<upstream::TokenSid> parts = upstream::split_token_sid(value);
  if (!parts) return;
  if (parts->token.empty() || parts->sid.empty() || parts->token.find('.') != std::string_view::npos) {
    fail(kName, "split_token_sid gave an empty or dotted part for " + show(value));
  }
  if (std::string(parts->token) + "." + std::string(parts->sid) != value) {
    fail(kName, "split_token_sid lost bytes of " + show(value));
  }
}

void check_query(std::string_view target) {
  for (std::string_view name : {"sid", "EIO", "transport", "t", ""}) {
    std::optional<std::string_view> v = upstream::query_param(target, name);
    if (!v) {
      if (upstream::replace_query_param(target, name, "x") != target) {
        fail(kName, "replace_query_param changed a target without the parameter: " + show(target));
      }
      continue;
    }
    if (v->data() < target.data() || v->data() + v->size() > target.data() + target.size()) {
      fail(kName, "query_param returned a view outside the target");
    }
    if (upstream::replace_query_param(target, name, *v) != target) {
      fail(kName, "replacing a parameter by its own value changed " + show(target));
    }
    for (std::string_view value : {std::string_view(""), std::string_view("abcdef.XyZ-_0"), std::string_view("%26")}) {
      std::string replaced = upstream::replace_query_param(target, name, value);
      if (upstream::query_param(replaced, name) != value) {
        fail(kName, "a replaced parameter does not read back: " + show(replaced));
      }
      size_t begin = static_cast<size_t>(v->data() - target.data());
      if (replaced.substr(0, begin) != target.substr(0, begin) ||
          std::string_view(replaced).substr(begin + value.size()) != target.substr(begin + v->size())) {
        fail(kName, "replace_query_param changed bytes outside the value: " + show(replaced));
      }
    }
  }
}

void check_cookie(std::string_view header) {
  for (std::string_view name : {"sluice_affinity", "io", ""}) {
    std::optional<std::string_view> v = upstream::cookie_value(header, name);
    if (v && (v->data() < header.data() || v->data() + v->size() > header.data() + header.size())) {
      fail(kName, "cookie_value returned a view outside the header");
    }
    if (name.empty()) continue;
    if (v || header.find(std::string(name) + "=") != std::string_view::npos) continue;
    std::string appended = std::string(header) + "; " + std::string(name) + "=abcdef";
    if (upstream::cookie_value(appended, name) != "abcdef") {
      fail(kName, "an appended cookie is not found: " + show(appended));
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  check_token(input);
  for (std::string_view address : {"127.0.0.1:9000", "10.1.2.3:3000", "[::1]:8000"}) {
    std::string token = upstream::server_token(address);
    check_rewrite(input, token);
  }
  check_split(input);
  check_query(input);
  check_cookie(input);
  return 0;
}
