#pragma once
// Route selection and the path the upstream sees (SPEC.md, "Route selection"
// and "Path sent upstream"). Pure functions over an immutable table: live
// traffic, `sluice explain` and the admin /explain call the same code.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "sluice/base.h"
#include "sluice/config.h"

namespace sluice::router {

using config::Route;

// The Host header as matching sees it: lower case, port removed, brackets of
// an IPv6 literal kept. "" stays "" (no Host: only host-less routes match).
std::string normalize_host(std::string_view host_header);

// Origin-form target split at the first '?'. `query` keeps its '?'.
struct Target {
  std::string_view path;
  std::string_view query;
};
Target split_target(std::string_view target);

namespace detail {
// Lets maps keyed by std::string be searched with a string_view, no copy.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
template <typename V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;
}  // namespace detail

// Why `route` matched `path` over another candidate; shown by explain.
enum class LossReason { shorter_prefix, exact_beats_prefix, less_specific_host };

class RouteTable {
 public:
  // Builds the lookup structures once; the table keeps `config` alive.
  explicit RouteTable(std::shared_ptr<const config::Config> config);
  ~RouteTable();
  RouteTable(const RouteTable&) = delete;
  RouteTable& operator=(const RouteTable&) = delete;

  // The route for a request, or nullptr. `host` must be normalized (see
  // normalize_host); `path` is the target's path without the query. Costs
  // O(length of host + path), independent of the number of routes. Routes
  // that are skipped_for(tls) are passed over as if absent.
  const Route* select(std::string_view host, std::string_view path, bool tls = false) const;

  // Every other route whose host and path also match, most specific first,
  // each with the reason it lost to `winner`. Linear in the number of routes:
  // for explain, never for live traffic.
  std::vector<std::pair<const Route*, LossReason>> shadowed(const Route& winner,
                                                            std::string_view host,
                                                            std::string_view path) const;

  // All routes in the order of SPEC.md's /routes: host class (exact,
  // wildcard, none), exact before prefix, longer path first, then name.
  const std::vector<const Route*>& ordered() const { return ordered_; }

  const config::Config& config() const { return *config_; }

 private:
  struct PathTable;
  struct Node;

  std::shared_ptr<const config::Config> config_;
  detail::StringMap<std::unique_ptr<PathTable>> exact_hosts_;
  detail::StringMap<std::unique_ptr<PathTable>> wildcard_hosts_;  // key: "example.com"
  std::unique_ptr<PathTable> any_host_;
  std::vector<const Route*> ordered_;
};

// True when `route` matches `host` (normalized) and `path` on its own,
// ignoring every other route. The brute-force definition `select` must agree
// with; also used by `shadowed`.
bool route_matches(const Route& route, std::string_view host, std::string_view path);

// The request target sent upstream for `target` (path and query) on
// `route`, or nullopt when the path climbs above the matched prefix with
// `..` segments (path_escape). Never decodes or normalizes anything.
std::optional<std::string> upstream_target(const Route& route, std::string_view target);

// True when `rest`, a path tail that starts with '/' or is empty, has more
// `..` segments than segments to climb out of. Percent-encoded dots count as
// dots and "%2F" as a slash, since the upstream may decode them.
bool climbs_above(std::string_view rest);

// What sluice would answer itself before forwarding, from the request line
// and headers alone (Upgrade on the wrong kind, bad handshake, Origin).
// nullopt = forward. `headers` are (name, value) pairs as received.
using HeaderList = std::vector<std::pair<std::string, std::string>>;
std::optional<base::ErrorCode> admission(const Route& route, std::string_view method,
                                         const HeaderList& headers);

struct ExplainRequest {
  std::string target;
  std::string host;  // as the client would send it; "" = no Host
  std::string method = "GET";
  HeaderList headers;
};

// The JSON object of `sluice explain` and admin /explain (SPEC.md).
// `matched` is set false when no route matches (exit status 3).
nlohmann::ordered_json explain(const RouteTable& table, const ExplainRequest& request,
                               bool* matched = nullptr);

// One line of JSON text for `j`, as `sluice explain` prints it and admin
// /explain sends it. The request's bytes need not be UTF-8 (the admin
// decodes %ff): such bytes become U+FFFD, never an exception (the admin
// dumps inside a libuv callback).
std::string json_text(const nlohmann::ordered_json& j);

std::string_view to_string(LossReason reason);

}  // namespace sluice::router
