// SPEC.md "Headers": hop-by-hop headers never cross sluice, framing is
// regenerated on each leg, and the X-Forwarded-* / X-Request-Id headers are
// written by sluice alone.

#include <array>
#include <charconv>

#include "sluice/http.h"

namespace sluice::http {
namespace {


// Headers whose meaning belongs to one connection (RFC 9110 7.6.1, SPEC.md).
constexpr std::array<std::string_view, 7> kHopByHop{
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"};

// True when header `name` of `head` must not be copied to the other leg:
// hop-by-hop, named in Connection, or Content-Length (framing is regenerated).
// `has_connection` says whether `head` has a Connection header at all, so the
// common case costs no scan per header.
bool dropped(const MessageHead& head, bool has_connection, std::string_view name) {
  return is_hop_by_hop(name) || base::iequals(name, "content-length") ||
         (has_connection && head.has_token("connection", name));
}

void append_header(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

void append_number(std::string& out, uint64_t n) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, end);
}

void append_framing(std::string& out, Framing framing, uint64_t content_length) {
  switch (framing) {
    case Framing::content_length:
      out.append("Content-Length: ");
      append_number(out, content_length);
      out.append("\r\n");
      break;
    case Framing::chunked: out.append("Transfer-Encoding: chunked\r\n"); break;
    default: break;
  }
}

}  // namespace

bool is_hop_by_hop(std::string_view name) {
  for (std::string_view h : kHopByHop)
    if (base::iequals(h, name)) return true;
  return false;
}

void append_upstream_request(std::string& out, const MessageHead& request, const ForwardInfo& info) {
  out.append(request.method());
  out.push_back(' ');
  out.append(info.upstream_target);
  out.append(" HTTP/1.1\r\n");

  std::optional<std::string_view> client_host = request.find("host");
  bool has_connection = request.count("connection") > 0;
  for (size_t i = 0; i < request.header_count(); ++i) {
    Header h = request.header(i);
    if (dropped(request, has_connection, h.name)) continue;
    if (base::iequals(h.name, "host") || base::iequals(h.name, "x-forwarded-proto") ||
        base::iequals(h.name, "x-forwarded-host") || base::iequals(h.name, "x-request-id") ||
        base::iequals(h.name, "expect")) {
      continue;  // written below, once
    }
    // Several X-Forwarded-For lines are one list (RFC 9110 5.3): folded below.
    if (base::iequals(h.name, "x-forwarded-for")) continue;
    append_header(out, h.name, h.value);
  }
  std::string_view host = info.host ? *info.host : client_host.value_or(info.fallback_host);
  append_header(out, "Host", host);

  out.append("X-Forwarded-For: ");
  if (request.count("x-forwarded-for") > 0) {
    bool first = true;
    for (size_t i = 0; i < request.header_count(); ++i) {
      Header h = request.header(i);
      if (!base::iequals(h.name, "x-forwarded-for") || base::trim_ows(h.value).empty()) continue;
      if (!first) out.append(", ");
      out.append(base::trim_ows(h.value));
      first = false;
    }
    if (!first) out.append(", ");
  }
  out.append(info.client_ip);
  out.append("\r\n");
  append_header(out, "X-Forwarded-Proto", info.proto);
  if (client_host) append_header(out, "X-Forwarded-Host", *client_host);
  append_header(out, "X-Request-Id", info.request_id);

  append_framing(out, info.framing, info.content_length);
  if (info.websocket) out.append("Connection: Upgrade\r\nUpgrade: websocket\r\n");
  out.append("\r\n");
}

void append_client_response(std::string& out, const MessageHead& response, const ResponseInfo& info) {
  out.append("HTTP/1.1 ");
  append_number(out, static_cast<uint64_t>(response.status));
  out.push_back(' ');
  // A reason with control bytes (llhttp passes NUL, say) is not relayed:
  // clients split or reject such lines differently.
  std::string_view reason = response.reason();
  out.append(reason.empty() || !is_clean_reason(reason) ? reason_phrase(response.status) : reason);
  out.append("\r\n");
  bool has_request_id = false;
  bool has_connection = response.count("connection") > 0;
  for (size_t i = 0; i < response.header_count(); ++i) {
    Header h = response.header(i);
    if (dropped(response, has_connection, h.name)) continue;
    if (base::iequals(h.name, "x-request-id")) has_request_id = true;
    append_header(out, h.name, h.value);
  }
  if (!has_request_id) append_header(out, "X-Request-Id", info.request_id);
  append_framing(out, info.framing, info.content_length);
  out.append(info.extra_headers);
  if (info.websocket) {
    out.append("Connection: Upgrade\r\nUpgrade: websocket\r\n");
  } else if (info.close) {
    out.append("Connection: close\r\n");
  }
  out.append("\r\n");
}

void append_chunk(std::string& out, std::string_view data) {
  if (data.empty()) return;  // an empty chunk would end the body
  char buf[20];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, data.size(), 16);
  out.append(buf, end);
  out.append("\r\n");
  out.append(data);
  out.append("\r\n");
}

bool valid_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == ':';
    if (!ok) return false;
  }
  return true;
}

std::string make_request_id(uint64_t hi, uint64_t lo) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(32, '0');
  for (int i = 0; i < 16; ++i) {
    id[15 - i] = kHex[(hi >> (4 * i)) & 0xf];
    id[31 - i] = kHex[(lo >> (4 * i)) & 0xf];
  }
  return id;
}

}  // namespace sluice::http
