#pragma once
// The configuration as loaded from TOML (SPEC.md, "Configuration"): plain
// data, immutable once loaded. Loading never throws and never stops at the
// first problem: every error and warning comes back as a Diagnostic with the
// line and column it refers to.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/base.h"

namespace sluice::config {

using base::Duration;
using namespace std::chrono_literals;

struct SourcePos {
  uint32_t line = 0;  // 1-based; 0 when unknown
  uint32_t column = 0;
};

enum class Severity { error, warning };

struct Diagnostic {
  Severity severity = Severity::error;
  SourcePos pos;
  std::string message;
};

// "FILE:LINE:COL: error: message", as compilers print it.
std::string format_diagnostic(std::string_view file, const Diagnostic& d);

struct ServerSettings {
  uint32_t workers = 0;  // 0 = one per core
  Duration drain_timeout = 30s;
  uint32_t max_connections = 100000;
  std::string access_log = "stdout";  // "stdout" | "off" | a resolved file path
  bool watch_config = false;
  uint64_t max_header_size = 32 * 1024;
  Duration header_timeout = 10s;
  Duration keepalive_timeout = 75s;

  // The worker threads to run: `workers`, or one per core when it is 0.
  size_t worker_count() const;
};

struct CertKey {
  std::string cert;  // resolved against the config file's directory
  std::string key;
  SourcePos pos;
};

struct SniCert {
  std::string host;  // lower case; may start with "*."
  CertKey files;
};

struct ListenerTls {
  CertKey default_cert;
  std::vector<SniCert> sni;
};

struct Listener {
  std::string address;  // as written
  base::HostPort bind;
  std::optional<ListenerTls> tls;
  SourcePos pos;
};

enum class Balance { round_robin, least_conn, random, ip_hash };
enum class Affinity { none, engine_io, cookie };

struct UpstreamServer {
  std::string text;  // as written, e.g. "dns:gw.default.svc:8000"
  bool dns = false;  // re-resolved every resolve_interval
  base::HostPort address;
  SourcePos pos;     // of the string inside `servers`
};

struct HealthCheck {
  std::string path = "/healthz";
  Duration interval = 5s;
  Duration timeout = 2s;
  uint32_t fails = 3;
  uint32_t passes = 2;
};

struct UpstreamTls {
  bool verify = true;
  std::string ca;   // resolved path, empty = system store
  std::string sni;  // empty = the server's host name
};

struct Upstream {
  std::string name;
  std::vector<UpstreamServer> servers;
  Duration resolve_interval = 5s;
  Balance balance = Balance::round_robin;
  Affinity affinity = Affinity::none;
  Duration connect_timeout = 5s;
  uint32_t keepalive = 32;
  std::optional<std::string> host_header;  // nullopt = the client's Host
  std::optional<HealthCheck> health;
  std::optional<UpstreamTls> tls;
  SourcePos pos;
};

enum class RouteKind { http, websocket, socketio, sse };
enum class MatchKind { exact, prefix };

struct Respond {
  int status = 200;
  std::string body;
  std::string content_type = "text/plain; charset=utf-8";
};

struct Redirect {
  std::string scheme;    // exactly one of scheme and location is set
  std::string location;
  int status = 308;
  std::optional<uint16_t> port;  // scheme redirects only; default drops the port
};

struct Route {
  std::string name;
  std::string host;  // lower case, no port; "" = any host; "*.x.y" = wildcard
  MatchKind match = MatchKind::prefix;
  std::string path;  // exact path, or prefix without trailing '/' ("/" for root)
  std::string upstream;  // "" for respond/redirect routes
  size_t upstream_index = 0;
  RouteKind kind = RouteKind::http;
  bool strip_prefix = false;
  std::optional<std::string> rewrite_prefix;
  Duration read_timeout = 60s;
  Duration tunnel_idle = 1h;
  Duration ping_interval = 25s;
  Duration ping_timeout = 20s;
  std::optional<std::vector<std::string>> allowed_origins;  // nullopt = any origin
  std::optional<uint64_t> max_body;                          // nullopt = unlimited
  std::optional<Respond> respond;
  std::optional<Redirect> redirect;
  SourcePos pos;

  bool has_upstream() const { return !upstream.empty(); }
  // A scheme redirect never applies to requests already on that scheme
  // (redirecting https to https would loop): on them the route is skipped.
  bool skipped_for(bool tls) const {
    return redirect && !redirect->scheme.empty() && (redirect->scheme == "https") == tls;
  }
  bool is_wildcard_host() const { return host.size() > 2 && host[0] == '*' && host[1] == '.'; }
  // WebSocket upgrades are forwarded (SPEC.md, route kinds table).
  bool forwards_websocket() const {
    return kind == RouteKind::websocket || kind == RouteKind::socketio;
  }
};

struct Config {
  std::string file;  // the path it was loaded from, as given
  std::string dir;   // its directory; relative paths resolve against it
  ServerSettings server;
  std::vector<Listener> listeners;
  std::optional<Listener> admin;
  std::vector<Upstream> upstreams;  // in file order
  std::vector<Route> routes;        // in file order; order never decides anything

  const Upstream* find_upstream(std::string_view name) const;
};

struct LoadResult {
  std::shared_ptr<const Config> config;  // null when any error was found
  std::vector<Diagnostic> diagnostics;   // errors and warnings, by position

  bool ok() const { return config != nullptr; }
  size_t error_count() const;
};

// Reads and validates a config file. `file` appears in Config::file.
LoadResult load_file(const std::string& file);

// The same from text; `file` names it and sets the directory relative paths
// resolve against (tests use a path that need not exist).
LoadResult load_string(std::string_view toml, const std::string& file);

std::string_view to_string(RouteKind kind);
std::string_view to_string(Balance balance);
std::string_view to_string(Affinity affinity);

// Default read_timeout per route kind (SPEC.md, "Route kinds and their defaults").
Duration default_read_timeout(RouteKind kind);

}  // namespace sluice::config
