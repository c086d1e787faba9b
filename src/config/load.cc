// TOML -> Config. Reading is forgiving in one way only: it goes on after an
// error so that a single `sluice check` run reports every problem. Cross-table
// rules (route -> upstream, conflicts, warnings) live in validate.cc.

#include <toml++/toml.h>

#include <cerrno>
#include <cstring>
#include <algorithm>
#include <thread>
#include <filesystem>
#include <tuple>
#include <fstream>
#include <sstream>

#include "sluice/config.h"
#include "table_reader.h"
#include "validate.h"

namespace sluice::config {
namespace {

std::string in_quotes(std::string_view s) { return "'" + std::string(s) + "'"; }

std::string resolve_path(const std::string& dir, const std::string& path) {
  if (path.empty() || path.front() == '/' || dir.empty()) return path;
  return (std::filesystem::path(dir) / path).lexically_normal().string();
}

template <typename Enum, size_t N>
bool read_enum(TableReader& r, std::string_view key,
               const std::pair<std::string_view, Enum> (&names)[N], Enum& out) {
  std::string text;
  if (!r.string(key, text)) return false;
  std::string allowed;
  for (const auto& [name, value] : names) {
    if (text == name) {
      out = value;
      return true;
    }
    allowed += (allowed.empty() ? "" : " | ") + std::string(name);
  }
  r.diags().error(r.pos(key), r.where() + ": " + in_quotes(key) + " = \"" + text +
                                  "\" is not one of " + allowed);
  return false;
}

constexpr std::pair<std::string_view, Balance> kBalanceNames[] = {
    {"round_robin", Balance::round_robin},
    {"least_conn", Balance::least_conn},
    {"random", Balance::random},
    {"ip_hash", Balance::ip_hash}};

constexpr std::pair<std::string_view, Affinity> kAffinityNames[] = {
    {"none", Affinity::none}, {"engine.io", Affinity::engine_io}, {"cookie", Affinity::cookie}};

constexpr std::pair<std::string_view, RouteKind> kKindNames[] = {
    {"http", RouteKind::http},
    {"websocket", RouteKind::websocket},
    {"socketio", RouteKind::socketio},
    {"sse", RouteKind::sse}};

class Loader {
 public:
  Loader(Config& config, Diagnostics& diags) : config_(config), diags_(diags) {}

  void load(const toml::table& root) {
    TableReader r(root, "config", diags_);
    if (const toml::table* t = r.table("server")) read_server(*t);
    read_listeners(r);
    if (const toml::table* t = r.table("admin")) read_admin(*t);
    if (const toml::table* t = r.table("upstream")) {
      for (auto&& [key, value] : *t) {
        if (!value.is_table()) {
          diags_.error(pos_of(value), "upstream " + in_quotes(key.str()) +
                                          " must be a table ([upstream." +
                                          std::string(key.str()) + "])");
          continue;
        }
        read_upstream(std::string(key.str()), *value.as_table());
      }
    }
    // toml++ keeps a table's keys sorted; the config speaks in file order.
    std::stable_sort(config_.upstreams.begin(), config_.upstreams.end(),
                     [](const Upstream& a, const Upstream& b) {
                       return std::tie(a.pos.line, a.pos.column) < std::tie(b.pos.line, b.pos.column);
                     });
    read_routes(r);
    r.finish();
    if (config_.listeners.empty() && !root.contains("listener")) {
      // No [[listener]] at all: listen where the spec's example does.
      Listener l;
      l.address = "0.0.0.0:8080";
      l.bind = {"0.0.0.0", 8080};
      config_.listeners.push_back(std::move(l));
    }
    if (!root.contains("admin")) {
      Listener admin;
      admin.address = "127.0.0.1:9901";
      admin.bind = {"127.0.0.1", 9901};
      config_.admin = std::move(admin);
    }
  }

 private:
  void read_server(const toml::table& t) {
    TableReader r(t, "[server]", diags_);
    ServerSettings& s = config_.server;
    int64_t v = 0;
    if (r.integer("workers", 0, 1024, v)) s.workers = static_cast<uint32_t>(v);
    r.duration("drain_timeout", s.drain_timeout);
    if (r.integer("max_connections", 1, 10'000'000, v)) s.max_connections = static_cast<uint32_t>(v);
    std::string log;
    if (r.string("access_log", log)) {
      if (log.empty()) {
        diags_.error(r.pos("access_log"),
                     "[server]: 'access_log' must be \"stdout\", \"off\" or a file path");
      } else {
        s.access_log = (log == "stdout" || log == "off") ? log : resolve_path(config_.dir, log);
      }
    }
    r.boolean("watch_config", s.watch_config);
    if (r.size("max_header_size", s.max_header_size) && s.max_header_size < 1024) {
      diags_.error(r.pos("max_header_size"),
                   "[server]: 'max_header_size' must be at least 1KiB");
    }
    r.duration("header_timeout", s.header_timeout);
    r.duration("keepalive_timeout", s.keepalive_timeout);
    r.finish();
  }

  std::optional<Listener> read_listener_address(TableReader& r) {
    std::string address;
    if (!r.string("address", address)) {
      if (!r.node("address")) diags_.error(r.pos(), r.where() + ": 'address' is required");
      return std::nullopt;
    }
    std::string why;
    auto hp = base::parse_host_port(address, why);
    if (!hp) {
      diags_.error(r.pos("address"), r.where() + ": address \"" + address + "\": " + why);
      return std::nullopt;
    }
    if (!hp->is_ip_literal()) {
      diags_.error(r.pos("address"), r.where() + ": address \"" + address +
                                         "\": the host must be an IP address "
                                         "(0.0.0.0, 127.0.0.1, [::])");
      return std::nullopt;
    }
    Listener l;
    l.address = address;
    l.bind = *hp;
    l.pos = r.pos("address");
    return l;
  }

  void read_listeners(TableReader& root) {
    const toml::node* n = root.node("listener");
    if (!n) return;
    const toml::array* arr = n->as_array();
    if (!arr || !arr->is_array_of_tables()) {
      diags_.error(pos_of(*n), "'listener' must be an array of tables: write [[listener]]");
      return;
    }
    for (const toml::node& item : *arr) {
      const toml::table& t = *item.as_table();
      TableReader r(t, "[[listener]]", diags_);
      auto listener = read_listener_address(r);
      std::optional<ListenerTls> tls;
      if (const toml::table* tt = r.table("tls")) tls = read_listener_tls(*tt);
      r.finish();
      if (!listener) continue;
      listener->tls = std::move(tls);
      config_.listeners.push_back(std::move(*listener));
    }
  }

  std::optional<CertKey> read_cert_key(TableReader& r) {
    CertKey ck;
    ck.pos = r.pos();
    bool ok = true;
    for (auto [key, out] : {std::pair{"cert", &ck.cert}, std::pair{"key", &ck.key}}) {
      std::string path;
      if (r.string(key, path)) {
        *out = resolve_path(config_.dir, path);
        check_file_exists(r.pos(key), r.where(), key, *out);
      } else {
        if (!r.node(key)) diags_.error(r.pos(), r.where() + ": '" + std::string(key) + "' is required");
        ok = false;
      }
    }
    if (!ok) return std::nullopt;
    return ck;
  }

  void check_file_exists(SourcePos pos, const std::string& where, std::string_view key,
                         const std::string& path) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) {
      diags_.error(pos, where + ": " + std::string(key) + " file \"" + path + "\" does not exist");
    }
  }

  std::optional<ListenerTls> read_listener_tls(const toml::table& t) {
    TableReader r(t, "[listener.tls]", diags_);
    auto default_cert = read_cert_key(r);
    std::vector<SniCert> sni;
    if (const toml::node* n = r.node("sni")) {
      const toml::array* arr = n->as_array();
      if (!arr || !arr->is_array_of_tables()) {
        diags_.error(pos_of(*n), "[listener.tls]: 'sni' must be an array of tables: "
                                 "write [[listener.tls.sni]]");
      } else {
        for (const toml::node& item : *arr) {
          TableReader sr(*item.as_table(), "[[listener.tls.sni]]", diags_);
          SniCert entry;
          if (!sr.string("host", entry.host) && !sr.node("host")) {
            diags_.error(sr.pos(), "[[listener.tls.sni]]: 'host' is required");
          } else if (sr.node("host") && entry.host.empty()) {
            diags_.error(sr.pos("host"), "[[listener.tls.sni]]: 'host' must not be empty");
          }
          entry.host = base::to_lower(entry.host);
          auto files = read_cert_key(sr);
          sr.finish();
          if (files && !entry.host.empty()) {
            entry.files = std::move(*files);
            sni.push_back(std::move(entry));
          }
        }
      }
    }
    r.finish();
    if (!default_cert) return std::nullopt;
    return ListenerTls{std::move(*default_cert), std::move(sni)};
  }

  void read_admin(const toml::table& t) {
    TableReader r(t, "[admin]", diags_);
    config_.admin = read_listener_address(r);
    r.finish();
  }

  void read_upstream(std::string name, const toml::table& t) {
    Upstream u;
    u.name = name;
    u.pos = pos_of(t);
    TableReader r(t, "upstream " + in_quotes(name), diags_);
    std::vector<std::string> servers;
    std::vector<SourcePos> positions;
    if (r.string_array("servers", servers, &positions)) {
      for (size_t i = 0; i < servers.size(); ++i) {
        auto server = parse_server(servers[i], positions[i], r.where());
        if (server) u.servers.push_back(std::move(*server));
      }
      if (servers.empty()) diags_.error(r.pos("servers"), r.where() + ": 'servers' is empty");
    } else if (!r.node("servers")) {
      diags_.error(r.pos(), r.where() + ": 'servers' is required (a list of \"host:port\")");
    }
    r.duration("resolve_interval", u.resolve_interval);
    read_enum(r, "balance", kBalanceNames, u.balance);
    read_enum(r, "affinity", kAffinityNames, u.affinity);
    r.duration("connect_timeout", u.connect_timeout);
    int64_t v = 0;
    if (r.integer("keepalive", 0, 100000, v)) u.keepalive = static_cast<uint32_t>(v);
    std::string host_header;
    if (r.string("host_header", host_header)) {
      if (host_header.empty()) {
        diags_.error(r.pos("host_header"), r.where() + ": 'host_header' must be \"client\" or a host name");
      } else if (host_header != "client") {
        u.host_header = host_header;
      }
    }
    if (const toml::table* h = r.table("health")) u.health = read_health(*h, name);
    if (const toml::table* tt = r.table("tls")) u.tls = read_upstream_tls(*tt, name);
    r.finish();
    config_.upstreams.push_back(std::move(u));
  }

  std::optional<UpstreamServer> parse_server(const std::string& text, SourcePos pos,
                                             const std::string& where) {
    UpstreamServer s;
    s.text = text;
    s.pos = pos;
    std::string_view rest = text;
    if (rest.starts_with("dns:")) {
      s.dns = true;
      rest.remove_prefix(4);
    }
    std::string why;
    auto hp = base::parse_host_port(rest, why);
    if (!hp) {
      diags_.error(pos, where + ": server \"" + text + "\": " + why);
      return std::nullopt;
    }
    if (hp->port == 0) {
      diags_.error(pos, where + ": server \"" + text + "\": port 0 cannot be connected to");
      return std::nullopt;
    }
    if (!s.dns && !hp->is_ip_literal()) {
      diags_.error(pos, where + ": server \"" + text + "\": \"" + hp->host +
                            "\" is a name, not an address; write \"dns:" + text +
                            "\" to resolve it (and re-resolve it every resolve_interval)");
      return std::nullopt;
    }
    s.address = std::move(*hp);
    return s;
  }

  HealthCheck read_health(const toml::table& t, const std::string& upstream) {
    HealthCheck h;
    TableReader r(t, "upstream " + in_quotes(upstream) + " health", diags_);
    if (r.string("path", h.path) && (h.path.empty() || h.path.front() != '/')) {
      diags_.error(r.pos("path"), r.where() + ": 'path' must start with '/'");
    }
    r.duration("interval", h.interval);
    r.duration("timeout", h.timeout);
    int64_t v = 0;
    if (r.integer("fails", 1, 1000, v)) h.fails = static_cast<uint32_t>(v);
    if (r.integer("passes", 1, 1000, v)) h.passes = static_cast<uint32_t>(v);
    r.finish();
    return h;
  }

  UpstreamTls read_upstream_tls(const toml::table& t, const std::string& upstream) {
    UpstreamTls tls;
    TableReader r(t, "upstream " + in_quotes(upstream) + " tls", diags_);
    r.boolean("verify", tls.verify);
    std::string ca;
    if (r.string("ca", ca)) {
      tls.ca = resolve_path(config_.dir, ca);
      check_file_exists(r.pos("ca"), r.where(), "ca", tls.ca);
    }
    r.string("sni", tls.sni);
    r.finish();
    if (!tls.verify) {
      diags_.warning(r.pos("verify"), r.where() + ": verify = false accepts any certificate "
                                                  "(anyone on the path can impersonate the upstream)");
    }
    return tls;
  }

  void read_routes(TableReader& root) {
    const toml::node* n = root.node("route");
    if (!n) return;
    const toml::array* arr = n->as_array();
    if (!arr || !arr->is_array_of_tables()) {
      diags_.error(pos_of(*n), "'route' must be an array of tables: write [[route]]");
      return;
    }
    for (const toml::node& item : *arr) read_route(*item.as_table());
  }

  void read_route(const toml::table& t) {
    Route route;
    route.pos = pos_of(t);
    bad_host_ = false;
    std::string label = "[[route]]";
    if (const toml::node* name = t.get("name"); name && name->is_string()) {
      label = "route " + in_quotes(name->as_string()->get());
    }
    TableReader r(t, label, diags_);
    if (!r.string("name", route.name) && !r.node("name")) {
      diags_.error(r.pos(), "[[route]]: 'name' is required (it appears in logs, metrics and explain)");
    } else if (r.node("name") && route.name.empty()) {
      diags_.error(r.pos("name"), "[[route]]: 'name' must not be empty");
    }
    read_route_host(r, route);
    read_route_path(r, route);
    r.string("upstream", route.upstream);
    if (r.node("upstream") && route.upstream.empty()) {
      diags_.error(r.pos("upstream"), label + ": 'upstream' must not be empty");
    }
    bool kind_given = read_enum(r, "kind", kKindNames, route.kind);
    route.read_timeout = default_read_timeout(route.kind);
    r.boolean("strip_prefix", route.strip_prefix);
    std::string rewrite;
    if (r.string("rewrite_prefix", rewrite)) {
      if (rewrite.empty() || rewrite.front() != '/') {
        diags_.error(r.pos("rewrite_prefix"), label + ": 'rewrite_prefix' must start with '/'");
      } else {
        route.rewrite_prefix = rewrite;
      }
    }
    r.duration("read_timeout", route.read_timeout);
    r.duration("tunnel_idle", route.tunnel_idle);
    r.duration("ping_interval", route.ping_interval);
    r.duration("ping_timeout", route.ping_timeout);
    std::vector<std::string> origins;
    if (r.string_array("allowed_origins", origins)) route.allowed_origins = std::move(origins);
    uint64_t max_body = 0;
    if (r.size("max_body", max_body)) route.max_body = max_body;
    if (const toml::table* rt = r.table("respond")) route.respond = read_respond(*rt, label);
    if (const toml::table* rt = r.table("redirect")) route.redirect = read_redirect(*rt, label);
    r.finish();
    record_route_positions(r, route, kind_given);
    config_.routes.push_back(std::move(route));
  }

  // Positions validate.cc needs for keys that exist only as flags on Route.
  void record_route_positions(TableReader& r, const Route& route, bool kind_given) {
    RoutePositions p;
    p.host = r.pos("host");
    p.path = r.pos(route.match == MatchKind::exact ? "exact" : "prefix");
    p.upstream = r.pos("upstream");
    p.kind = kind_given ? r.pos("kind") : r.pos();
    p.strip_prefix = r.node("strip_prefix") ? r.pos("strip_prefix") : SourcePos{};
    p.rewrite_prefix = r.node("rewrite_prefix") ? r.pos("rewrite_prefix") : SourcePos{};
    p.read_timeout = r.node("read_timeout") ? r.pos("read_timeout") : r.pos();
    p.has_tunnel_idle = r.node("tunnel_idle") != nullptr;
    p.tunnel_idle = r.pos("tunnel_idle");
    p.has_ping = r.node("ping_interval") || r.node("ping_timeout");
    p.ping = r.node("ping_interval") ? r.pos("ping_interval") : r.pos("ping_timeout");
    p.allowed_origins = r.pos("allowed_origins");
    p.respond = r.pos("respond");
    p.redirect = r.pos("redirect");
    p.has_read_timeout = r.node("read_timeout") != nullptr;
    p.has_kind = kind_given;
    p.bad_host = bad_host_;
    positions_.push_back(p);
  }

  void read_route_host(TableReader& r, Route& route) {
    std::string host;
    if (!r.string("host", host)) {
      bad_host_ = r.node("host") != nullptr;
      return;
    }
    std::string why = host_problem(host);
    if (!why.empty()) {
      diags_.error(r.pos("host"), r.where() + ": host \"" + host + "\" " + why);
      bad_host_ = true;
      return;
    }
    route.host = base::to_lower(host);
  }

  // Empty when `host` is a valid route host: a DNS name or "*.name", no port.
  static std::string host_problem(std::string_view host) {
    if (host.empty()) return "is empty (leave 'host' out to match any host)";
    std::string_view name = host;
    if (name.starts_with("*.")) name.remove_prefix(2);
    if (name.empty()) return "has nothing after '*.'";
    if (name.find(':') != std::string_view::npos) {
      return "carries a port; ports are ignored when matching, so leave it out";
    }
    if (name.find('*') != std::string_view::npos) {
      return "may use '*' only as the whole first label (\"*.example.com\")";
    }
    return base::dns_name_problem(name);
  }

  void read_route_path(TableReader& r, Route& route) {
    std::string exact, prefix;
    bool has_exact = r.string("exact", exact);
    bool has_prefix = r.string("prefix", prefix);
    if (r.node("exact") && r.node("prefix")) {
      diags_.error(r.pos("prefix"), r.where() + ": give either 'exact' or 'prefix', not both");
      return;
    }
    if (!r.node("exact") && !r.node("prefix")) {
      diags_.error(r.pos(), r.where() + ": needs 'prefix' or 'exact' (use prefix = \"/\" for every path)");
      return;
    }
    if (!has_exact && !has_prefix) return;  // wrong type, already reported
    std::string_view key = has_exact ? "exact" : "prefix";
    std::string path = has_exact ? exact : prefix;
    std::string why = path_problem(path);
    if (!why.empty()) {
      diags_.error(r.pos(key), r.where() + ": " + std::string(key) + " \"" + path + "\" " + why);
      return;
    }
    route.match = has_exact ? MatchKind::exact : MatchKind::prefix;
    if (has_prefix) {
      // "/api" and "/api/" are the same prefix: segments decide, not slashes.
      while (path.size() > 1 && path.back() == '/') path.pop_back();
    }
    route.path = std::move(path);
  }

  static std::string path_problem(std::string_view path) {
    if (path.empty() || path.front() != '/') return "must start with '/'";
    for (char c : path) {
      if (c == '?' || c == '#') {
        return "contains '" + std::string(1, c) + "'; the query string is never part of matching";
      }
      if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) return "contains a space or control character";
    }
    size_t start = 1;
    while (start <= path.size()) {
      size_t end = path.find('/', start);
      if (end == std::string_view::npos) end = path.size();
      std::string_view seg = path.substr(start, end - start);
      if (seg == "." || seg == "..") return "contains a '" + std::string(seg) + "' segment";
      start = end + 1;
    }
    return {};
  }

  Respond read_respond(const toml::table& t, const std::string& label) {
    Respond out;
    TableReader r(t, label + " respond", diags_);
    int64_t status = 0;
    if (r.integer("status", 200, 599, status)) out.status = static_cast<int>(status);
    r.string("body", out.body);
    r.string("content_type", out.content_type);
    r.finish();
    return out;
  }

  Redirect read_redirect(const toml::table& t, const std::string& label) {
    Redirect out;
    TableReader r(t, label + " redirect", diags_);
    if (r.string("scheme", out.scheme) && out.scheme != "http" && out.scheme != "https") {
      diags_.error(r.pos("scheme"), r.where() + ": 'scheme' must be \"http\" or \"https\"");
    }
    if (r.string("location", out.location) && out.location.empty()) {
      diags_.error(r.pos("location"), r.where() + ": 'location' must not be empty");
    }
    int64_t v = 0;
    if (r.integer("status", 300, 399, v)) {
      if (v != 301 && v != 302 && v != 303 && v != 307 && v != 308) {
        diags_.error(r.pos("status"), r.where() + ": 'status' must be 301, 302, 303, 307 or 308");
      } else {
        out.status = static_cast<int>(v);
      }
    }
    if (r.integer("port", 1, 65535, v)) out.port = static_cast<uint16_t>(v);
    bool has_scheme = r.node("scheme") != nullptr;
    bool has_location = r.node("location") != nullptr;
    if (has_scheme == has_location) {
      diags_.error(r.pos(), r.where() + ": give exactly one of 'scheme' or 'location'");
    }
    if (has_location && r.node("port")) {
      diags_.error(r.pos("port"), r.where() + ": 'port' applies only to scheme redirects");
    }
    r.finish();
    return out;
  }

 public:
  std::vector<RoutePositions> positions_;

 private:
  bool bad_host_ = false;  // the route being read had a host that was rejected

 private:
  Config& config_;
  Diagnostics& diags_;
};

LoadResult finish(Config config, Diagnostics& diags, const toml::table* root) {
  LoadResult result;
  if (root) {
    Loader loader(config, diags);
    loader.load(*root);
    validate(config, loader.positions_, diags);
  }
  bool failed = diags.has_errors();
  result.diagnostics = diags.take();
  if (!failed) result.config = std::make_shared<const Config>(std::move(config));
  return result;
}

}  // namespace

LoadResult load_string(std::string_view toml_text, const std::string& file) {
  Config config;
  config.file = file;
  config.dir = std::filesystem::path(file).parent_path().string();
  Diagnostics diags;
  toml::table root;
  try {
    root = toml::parse(toml_text, file);
  } catch (const toml::parse_error& err) {
    diags.error({static_cast<uint32_t>(err.source().begin.line),
                 static_cast<uint32_t>(err.source().begin.column)},
                std::string(err.description()));
    return finish(std::move(config), diags, nullptr);
  }
  return finish(std::move(config), diags, &root);
}

LoadResult load_file(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    LoadResult result;
    result.diagnostics.push_back(
        {Severity::error, {}, "cannot read config file: " + std::string(std::strerror(errno))});
    return result;
  }
  std::stringstream text;
  text << in.rdbuf();
  return load_string(text.str(), file);
}

size_t LoadResult::error_count() const {
  size_t n = 0;
  for (const Diagnostic& d : diagnostics) n += d.severity == Severity::error ? 1 : 0;
  return n;
}

const Upstream* Config::find_upstream(std::string_view name) const {
  for (const Upstream& u : upstreams)
    if (u.name == name) return &u;
  return nullptr;
}

Duration default_read_timeout(RouteKind kind) {
  switch (kind) {
    case RouteKind::http: return 60s;
    case RouteKind::websocket: return 60s;
    case RouteKind::socketio: return 90s;
    case RouteKind::sse: return 1h;
  }
  return 60s;
}

std::string_view to_string(RouteKind kind) {
  for (const auto& [name, value] : kKindNames)
    if (value == kind) return name;
  return "http";
}

std::string_view to_string(Balance balance) {
  for (const auto& [name, value] : kBalanceNames)
    if (value == balance) return name;
  return "round_robin";
}

std::string_view to_string(Affinity affinity) {
  for (const auto& [name, value] : kAffinityNames)
    if (value == affinity) return name;
  return "none";
}

size_t ServerSettings::worker_count() const {
  return workers ? workers : std::max(1u, std::thread::hardware_concurrency());
}

}  // namespace sluice::config
