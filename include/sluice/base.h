#pragma once
// Small vocabulary shared by every module: durations and sizes as the config
// writes them, host:port addresses, and the one table of error codes.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::base {

using Duration = std::chrono::milliseconds;

// "250ms", "30s", "5m", "1h": a whole number followed by exactly one unit.
// A bare number, a negative or fractional value, or an unknown unit is
// rejected (nullopt): a config must never guess what "30" means.
std::optional<Duration> parse_duration(std::string_view text);

// The largest unit that divides the value exactly: 90s -> "90s", 3600s -> "1h".
std::string format_duration(Duration d);

// "512B", "64KiB", "10MiB", "1GiB" (binary units only). nullopt on anything else.
std::optional<uint64_t> parse_size(std::string_view text);

// The largest binary unit that divides the value exactly: 32768 -> "32KiB".
std::string format_size(uint64_t bytes);

// An address as written in the config: "127.0.0.1:8000", "[::1]:8000",
// "localhost:8000". The port is always explicit.
struct HostPort {
  std::string host;  // without brackets for IPv6
  uint16_t port = 0;

  bool is_ip_literal() const;
  std::string to_string() const;  // brackets IPv6 hosts again
};

// Parses "host:port". On failure returns nullopt and sets `why` to a sentence
// fit for a diagnostic ("missing port", "port 70000 out of range"...).
std::optional<HostPort> parse_host_port(std::string_view text, std::string& why);

// Every response sluice answers itself carries one of these codes in
// `Sluice-Error`. The table in error_code.cc maps each to its status and a
// reason; metrics label errors with the same string.
enum class ErrorCode : uint8_t {
  bad_request,
  request_smuggling,
  upgrade_not_allowed,
  bad_upgrade,
  origin_forbidden,
  path_escape,
  no_route,
  body_too_large,
  headers_too_large,
  header_timeout,
  upstream_refused,
  upstream_reset,
  upstream_bad_response,
  upstream_tls,
  upstream_unresolved,
  connect_timeout,
  read_timeout,
  no_healthy_upstream,
  over_capacity,
};
inline constexpr size_t kErrorCodeCount = static_cast<size_t>(ErrorCode::over_capacity) + 1;

struct ErrorInfo {
  std::string_view code;    // the Sluice-Error value, e.g. "path_escape"
  int status;               // HTTP status of the local reply
  std::string_view reason;  // one sentence for the body and the logs
};

const ErrorInfo& error_info(ErrorCode code);

// `s` without leading and trailing spaces and tabs (HTTP's OWS).
std::string_view trim_ows(std::string_view s);

// True when the comma-separated list `value` (RFC 9110 5.6.1) holds `token`,
// compared case-insensitively.
bool list_has_token(std::string_view value, std::string_view token);

// Empty when `name` is a plausible DNS name (labels of letters, digits, '-'
// and '_', no empty label); else what is wrong, for a diagnostic.
std::string dns_name_problem(std::string_view name);

// Lower-case ASCII copy; HTTP names and host names are ASCII-case-insensitive.
std::string to_lower(std::string_view s);
bool iequals(std::string_view a, std::string_view b);

}  // namespace sluice::base
