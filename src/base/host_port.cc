#include <arpa/inet.h>

#include <charconv>

#include "sluice/base.h"

namespace sluice::base {

bool HostPort::is_ip_literal() const {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

std::string HostPort::to_string() const {
  std::string out = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return out + ":" + std::to_string(port);
}

std::optional<HostPort> parse_host_port(std::string_view text, std::string& why) {
  HostPort out;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) {
      why = "unterminated '[' in IPv6 address";
      return std::nullopt;
    }
    out.host = std::string(text.substr(1, close - 1));
    std::string_view rest = text.substr(close + 1);
    if (rest.empty() || rest.front() != ':') {
      why = "missing port (write [ADDRESS]:PORT)";
      return std::nullopt;
    }
    port_text = rest.substr(1);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      why = "missing port (write HOST:PORT; the port is mandatory)";
      return std::nullopt;
    }
    if (text.find(':') != colon) {
      why = "IPv6 addresses must be written in brackets: [ADDRESS]:PORT";
      return std::nullopt;
    }
    out.host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
  }
  if (out.host.empty()) {
    why = "missing host before the port";
    return std::nullopt;
  }
  if (port_text.empty()) {
    why = "missing port (write HOST:PORT; the port is mandatory)";
    return std::nullopt;
  }
  unsigned long port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc{} || end != port_text.data() + port_text.size()) {
    why = "port '" + std::string(port_text) + "' is not a number";
    return std::nullopt;
  }
  if (port > 65535) {
    why = "port " + std::string(port_text) + " is out of range (0-65535)";
    return std::nullopt;
  }
  for (char c : out.host) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == ':' || c == '_' || c == '%';
    if (!ok) {
      why = "host '" + out.host + "' contains '" + std::string(1, c) + "'";
      return std::nullopt;
    }
  }
  out.port = static_cast<uint16_t>(port);
  return out;
}

std::string dns_name_problem(std::string_view name) {
  size_t label = 0;
  for (char c : name) {
    if (c == '.') {
      if (label == 0) return "has an empty label";
      label = 0;
      continue;
    }
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_';
    if (!ok) return "contains '" + std::string(1, c) + "'";
    ++label;
  }
  if (label == 0) return "ends with '.'";
  return {};
}

}  // namespace sluice::base
