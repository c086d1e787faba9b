// Ingress objects -> sluice.toml. Reading goes Ingress by Ingress, in input
// order: annotations first (they apply to every path of the Ingress), then
// spec.tls, spec.rules and spec.defaultBackend. What depends on every Ingress
// at once (which hosts have TLS, so which routes ingress-nginx would redirect
// to HTTPS) is decided in finish(), before the text is written.

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include "nginx_path.h"
#include "sluice/base.h"
#include "sluice/ingress.h"

namespace sluice::ingress {
namespace {

using nlohmann::json;

constexpr std::string_view kAnnotationPrefix = "nginx.ingress.kubernetes.io/";
constexpr int64_t kDefaultNginxTimeout = 60;  // proxy_read_timeout / proxy_send_timeout
constexpr int64_t kDefaultTunnelIdle = 3600;  // sluice's tunnel_idle on websocket/socketio
constexpr int64_t kMaxSeconds = 365LL * 24 * 3600;

// ---------------------------------------------------------------- JSON access
// Nothing here throws: a value of the wrong type reads as absent.

const json* member(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

std::string string_member(const json& obj, const char* key) {
  const json* j = member(obj, key);
  return j && j->is_string() ? j->get<std::string>() : std::string();
}

const json* array_member(const json& obj, const char* key) {
  const json* j = member(obj, key);
  return j && j->is_array() ? j : nullptr;
}

std::string in_quotes(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::string annotation_field(std::string_view name) {
  return "metadata.annotations[\"" + std::string(kAnnotationPrefix) + std::string(name) + "\"]";
}

// Go's strconv.ParseBool, which ingress-nginx uses for boolean annotations.
std::optional<bool> parse_bool(std::string_view s) {
  for (std::string_view t : {"1", "t", "T", "TRUE", "true", "True"})
    if (s == t) return true;
  for (std::string_view f : {"0", "f", "F", "FALSE", "false", "False"})
    if (s == f) return false;
  return std::nullopt;
}

// A positive whole number (seconds, a status code), as the annotations write them.
std::optional<int64_t> parse_positive(std::string_view s) {
  if (s.empty() || s.size() > 9) return std::nullopt;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v <= 0 || v > kMaxSeconds) return std::nullopt;
  return v;
}

// nginx's size syntax: a number, optionally followed by k, m or g (binary).
// 0 means unlimited (nullopt in `out`).
bool parse_nginx_size(std::string_view s, std::optional<uint64_t>& out) {
  if (s.empty()) return false;
  uint64_t unit = 1;
  char last = s.back();
  if (last == 'k' || last == 'K') unit = 1024;
  if (last == 'm' || last == 'M') unit = 1024 * 1024;
  if (last == 'g' || last == 'G') unit = 1024 * 1024 * 1024;
  if (unit != 1) s.remove_suffix(1);
  if (s.empty() || s.size() > 12) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  out = v == 0 ? std::nullopt : std::optional<uint64_t>(v * unit);
  return true;
}

// Kubernetes names that end up in DNS names and file paths: a DNS label
// (Service, namespace) or a DNS subdomain (Secret). The API server enforces
// these; the check keeps hand-edited input from producing an invalid config.
bool is_dns_name(std::string_view s, bool dots) {
  if (s.empty() || s.size() > 253) return false;
  if (s.front() == '-' || s.back() == '-' || s.front() == '.' || s.back() == '.') return false;
  return std::all_of(s.begin(), s.end(), [dots](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || (dots && c == '.');
  });
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

// ---------------------------------------------------------------- TOML text

std::string toml_string(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04X", c);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

// A table key: bare when TOML allows it, quoted otherwise.
std::string toml_key(std::string_view s) {
  bool bare = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
  });
  return bare ? std::string(s) : toml_string(s);
}

// A comment line never continues onto a line of its own.
// TOML comments may hold no control character but TAB (TOML 1.0 "Comment"):
// every one (CR and LF included, which would end the comment) becomes a space.
std::string comment_text(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    auto b = static_cast<unsigned char>(c);
    if ((b < 0x20 && b != '\t') || b == 0x7f) c = ' ';
  }
  return out;
}

// ---------------------------------------------------------------- the model

// Annotations of one Ingress: they apply to every path it routes.
struct Settings {
  std::string rewrite_target;
  std::optional<int64_t> read_timeout;  // seconds
  std::optional<int64_t> connect_timeout;
  std::optional<uint64_t> max_body;
  bool cookie_affinity = false;
  std::vector<std::string> websocket_services;
  std::optional<bool> ssl_redirect;
  bool force_ssl_redirect = false;
  bool upstream_tls = false;  // backend-protocol: HTTPS
  std::string redirect_location;  // permanent-redirect / temporal-redirect
  int redirect_status = 0;
};

struct IngressRef {
  std::string id;  // "<namespace>/<name>"
  std::string ns;
  std::string created;  // metadata.creationTimestamp (RFC 3339 sorts as text)
  Settings settings;
};

struct UpstreamKey {
  std::string ns;
  std::string service;
  uint32_t port = 0;
  auto operator<=>(const UpstreamKey&) const = default;
};

struct UpstreamOut {
  std::string name;
  UpstreamKey key;
  bool cookie = false;
  std::optional<int64_t> connect_timeout;
  bool tls = false;
  bool used = false;            // a route points at it (only those are written)
  std::set<std::string> users;  // Ingress ids whose settings were merged in
};

struct RouteOut {
  std::string name;
  std::string host;
  bool exact = false;
  std::string path;
  std::string upstream;  // "" for redirect routes
  std::string kind = "http";
  bool strip_prefix = false;
  std::optional<std::string> rewrite_prefix;
  std::optional<int64_t> read_timeout;
  std::optional<int64_t> tunnel_idle;
  std::optional<uint64_t> max_body;
  std::string redirect_location;
  int redirect_status = 0;
  bool https_redirect = false;
  std::vector<std::string> comments;
  size_t ingress = 0;  // index into Importer::ingresses_; kGenerated for HTTPS redirects
  std::string field;   // where it came from, for warnings
};

constexpr size_t kGenerated = static_cast<size_t>(-1);

// Reasons for the annotations sluice has no equivalent of, where a word
// more than "not translated" helps.
const std::map<std::string_view, std::string_view>& untranslated_reasons() {
  static const std::map<std::string_view, std::string_view> reasons = {
      {"configuration-snippet", "nginx configuration cannot be carried over; do what it does another way"},
      {"server-snippet", "nginx configuration cannot be carried over; do what it does another way"},
      {"auth-url", "sluice does no authentication; let the service (or a gateway behind sluice) do it"},
      {"auth-signin", "sluice does no authentication; let the service (or a gateway behind sluice) do it"},
      {"auth-type", "sluice does no authentication; let the service (or a gateway behind sluice) do it"},
      {"auth-secret", "sluice does no authentication; let the service (or a gateway behind sluice) do it"},
      {"auth-realm", "sluice does no authentication; let the service (or a gateway behind sluice) do it"},
      {"enable-cors", "sluice adds no CORS headers; let the service answer CORS"},
      {"cors-allow-origin", "sluice adds no CORS headers; let the service answer CORS"},
      {"cors-allow-methods", "sluice adds no CORS headers; let the service answer CORS"},
      {"cors-allow-headers", "sluice adds no CORS headers; let the service answer CORS"},
      {"cors-allow-credentials", "sluice adds no CORS headers; let the service answer CORS"},
      {"limit-rps", "sluice has no rate limiting"},
      {"limit-rpm", "sluice has no rate limiting"},
      {"limit-connections", "sluice has no per-client connection limits (server.max_connections is global)"},
      {"whitelist-source-range", "sluice has no client address allow-lists"},
      {"allowlist-source-range", "sluice has no client address allow-lists"},
      {"denylist-source-range", "sluice has no client address deny-lists"},
      {"affinity-mode", "sluice's cookie affinity moves a session only when its server is gone or unhealthy"},
      {"session-cookie-name", "sluice's affinity cookie is always sluice_affinity (Path=/, HttpOnly, a session cookie)"},
      {"session-cookie-path", "sluice's affinity cookie is always sluice_affinity (Path=/, HttpOnly, a session cookie)"},
      {"session-cookie-max-age", "sluice's affinity cookie is always sluice_affinity (Path=/, HttpOnly, a session cookie)"},
      {"session-cookie-expires", "sluice's affinity cookie is always sluice_affinity (Path=/, HttpOnly, a session cookie)"},
      {"session-cookie-samesite", "sluice's affinity cookie is always sluice_affinity (Path=/, HttpOnly, a session cookie)"},
      {"session-cookie-secure", "sluice's affinity cookie is always sluice_affinity (Path=/, HttpOnly, a session cookie)"},
      {"upstream-hash-by", "the nearest is balance = \"ip_hash\" on the upstream (it hashes the client address only)"},
      {"load-balance", "set balance on the upstream: round_robin, least_conn, random or ip_hash"},
      {"ssl-passthrough", "sluice terminates TLS itself; it cannot pass TLS through"},
      {"app-root", "write a route with exact = \"/\" and redirect = { location = ..., status = 302 }"},
      {"upstream-vhost", "set host_header on the upstream"},
      {"proxy-next-upstream", "sluice retries a failed connect once on another server; nothing else is retried"},
      {"proxy-next-upstream-tries", "sluice retries a failed connect once on another server; nothing else is retried"},
      {"canary", "sluice has no canary (weighted) routing"},
      {"canary-weight", "sluice has no canary (weighted) routing"},
      {"canary-by-header", "sluice has no canary (weighted) routing"},
      {"canary-by-cookie", "sluice has no canary (weighted) routing"},
      {"client-body-buffer-size", "sluice streams request bodies; it never buffers them"},
      {"proxy-buffer-size", "sluice streams responses; it never buffers them"},
      {"proxy-buffers-number", "sluice streams responses; it never buffers them"},
      {"proxy-request-buffering", "sluice streams request bodies; it never buffers them"},
      {"ssl-ciphers", "sluice's TLS settings are fixed (TLS 1.2 and 1.3, Mozilla's intermediate ciphers)"},
  };
  return reasons;
}

// ---------------------------------------------------------------- importer

class Importer {
 public:
  explicit Importer(const ImportOptions& options) : options_(options) {}

  // "<namespace>/<name>" of an item; the namespace defaults as kubectl's does.
  static std::string item_id(const json& item, size_t index) {
    const json* meta = member(item, "metadata");
    std::string ns = meta ? string_member(*meta, "namespace") : "";
    std::string name = meta ? string_member(*meta, "name") : "";
    return (ns.empty() ? "default" : ns) + "/" +
           (name.empty() ? "items[" + std::to_string(index) + "]" : name);
  }

  // First pass: the hosts ingress-nginx serves in regex mode because an
  // Ingress with use-regex or a rewrite-target has a rule for them. In
  // that mode every path of the host is a regex, whichever Ingress it is in.
  void scan_regex_hosts(const json& item, size_t index) {
    std::string kind = string_member(item, "kind");
    const json* meta = member(item, "metadata");
    const json* annotations = meta ? member(*meta, "annotations") : nullptr;
    if ((!kind.empty() && kind != "Ingress") || !annotations) return;
    std::string use = string_member(*annotations, "nginx.ingress.kubernetes.io/use-regex");
    std::string target = string_member(*annotations, "nginx.ingress.kubernetes.io/rewrite-target");
    if (!parse_bool(use).value_or(false) && target.empty()) return;
    const json* spec = member(item, "spec");
    const json* rules = spec ? array_member(*spec, "rules") : nullptr;
    if (!rules) return;
    for (const json& rule : *rules) {
      regex_hosts_.emplace(base::to_lower(string_member(rule, "host")), item_id(item, index));
    }
  }

  void add_item(const json& item, size_t index, bool list_of_ingresses) {
    std::string kind = string_member(item, "kind");
    const json* meta = member(item, "metadata");
    std::string ns = meta ? string_member(*meta, "namespace") : "";
    std::string name = meta ? string_member(*meta, "name") : "";
    if (ns.empty()) ns = "default";
    std::string id = item_id(item, index);
    if (!item.is_object()) {
      warn("items[" + std::to_string(index) + "]", "", "not an object; skipped");
      return;
    }
    if (!kind.empty() && kind != "Ingress") {
      warn(id, "kind", "a " + kind + ", not an Ingress; skipped");
      return;
    }
    if (kind.empty() && !list_of_ingresses && !member(item, "spec")) {
      warn(id, "kind", "not an Ingress (no kind, no spec); skipped");
      return;
    }
    if (name.empty()) warn(id, "metadata.name", "missing; the Ingress is called " + id);
    std::string api = string_member(item, "apiVersion");
    if (!api.empty() && api != "networking.k8s.io/v1") {
      warn(id, "apiVersion", api + ": read as networking.k8s.io/v1 (extensions/v1beta1 serviceName/servicePort backends are understood too)");
    }
    IngressRef ref;
    ref.id = id;
    ref.ns = ns;
    ref.created = meta ? string_member(*meta, "creationTimestamp") : "";
    ingresses_.push_back(std::move(ref));
    add_ingress(item);
  }

  size_t ingress_count() const { return ingresses_.size(); }

  ImportResult finish() {
    add_https_redirects();
    ImportResult result;
    result.ingresses = ingresses_.size();
    result.toml = write();
    result.warnings = std::move(warnings_);
    return result;
  }

 private:
  // ------------------------------------------------------------ one Ingress

  IngressRef& current() { return ingresses_.back(); }

  void warn(std::string object, std::string field, std::string message) {
    warnings_.push_back({std::move(object), std::move(field), std::move(message)});
  }
  void warn(std::string field, std::string message) {
    warn(current().id, std::move(field), std::move(message));
  }

  void add_ingress(const json& ing) {
    const json* meta = member(ing, "metadata");
    const json* annotations = meta ? member(*meta, "annotations") : nullptr;
    if (annotations && annotations->is_object()) read_annotations(*annotations);
    const json* spec = member(ing, "spec");
    if (!spec || !spec->is_object()) {
      warn("spec", "missing; nothing to translate");
      return;
    }
    check_class(*spec, annotations);
    read_tls(*spec);
    size_t n = 0;  // paths of this Ingress so far: the route names' numbers
    if (const json* rules = member(*spec, "rules")) {
      if (!rules->is_array()) {
        warn("spec.rules", "not a list; ignored");
      } else {
        for (size_t i = 0; i < rules->size(); ++i) read_rule((*rules)[i], i, n);
      }
    }
    if (const json* backend = member(*spec, "defaultBackend")) {
      read_default_backend(*backend);
    } else if (const json* old = member(*spec, "backend")) {
      read_default_backend(*old, "spec.backend");
    }
    check_websocket_services(*spec);
  }

  void check_class(const json& spec, const json* annotations) {
    std::string cls = string_member(spec, "ingressClassName");
    std::string field = "spec.ingressClassName";
    if (cls.empty() && annotations) {
      cls = string_member(*annotations, "kubernetes.io/ingress.class");
      field = "metadata.annotations[\"kubernetes.io/ingress.class\"]";
    }
    if (!cls.empty() && cls != "nginx") {
      warn(field, "ingress class " + in_quotes(cls) +
                      " is not \"nginx\": check that ingress-nginx served this Ingress; translated anyway");
    }
  }

  void read_annotations(const json& annotations) {
    Settings& s = current().settings;
    std::optional<int64_t> send_timeout;
    std::string temporal;
    for (auto it = annotations.begin(); it != annotations.end(); ++it) {
      const std::string& key = it.key();
      if (!key.starts_with(kAnnotationPrefix)) continue;
      std::string name = key.substr(kAnnotationPrefix.size());
      std::string field = annotation_field(name);
      if (!it.value().is_string()) {
        warn(field, "not a string; ignored");
        continue;
      }
      std::string value = it.value().get<std::string>();
      if (name == "rewrite-target") {
        s.rewrite_target = value;
      } else if (name == "use-regex") {
        if (!parse_bool(value)) {
          warn(field, in_quotes(value) + " is not a boolean; ignored");
        }
      } else if (name == "proxy-read-timeout" || name == "proxy-send-timeout" ||
                 name == "proxy-connect-timeout") {
        auto v = parse_positive(value);
        if (!v) {
          warn(field, in_quotes(value) + " is not a number of seconds (ingress-nginx ignores it too)");
        } else if (name == "proxy-read-timeout") {
          s.read_timeout = v;
        } else if (name == "proxy-send-timeout") {
          send_timeout = v;
        } else {
          s.connect_timeout = v;
        }
      } else if (name == "proxy-body-size") {
        if (!parse_nginx_size(value, s.max_body)) {
          warn(field, in_quotes(value) + " is not an nginx size (a number, optionally with k, m or g)");
        }
      } else if (name == "affinity") {
        if (value == "cookie") {
          s.cookie_affinity = true;
        } else {
          warn(field, in_quotes(value) + ": only \"cookie\" affinity exists in ingress-nginx; ignored");
        }
      } else if (name == "websocket-services") {
        std::stringstream list(value);
        std::string svc;
        while (std::getline(list, svc, ',')) {
          svc = trim(svc);
          if (!svc.empty()) s.websocket_services.push_back(svc);
        }
      } else if (name == "ssl-redirect" || name == "force-ssl-redirect") {
        auto b = parse_bool(value);
        if (!b) {
          warn(field, in_quotes(value) + " is not a boolean; ignored");
        } else if (name == "ssl-redirect") {
          s.ssl_redirect = b;
        } else {
          s.force_ssl_redirect = *b;
        }
      } else if (name == "backend-protocol") {
        std::string upper = value;
        std::transform(upper.begin(), upper.end(), upper.begin(), [](char c) {
          return static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        });
        if (upper == "HTTPS") {
          s.upstream_tls = true;
        } else if (upper != "HTTP") {
          warn(field, in_quotes(value) + ": sluice speaks HTTP/1.1 to upstreams, over TCP or TLS only; "
                                      "the routes proxy HTTP/1.1");
        }
      } else if (name == "permanent-redirect" || name == "temporal-redirect") {
        if (value.empty()) continue;
        if (name == "temporal-redirect") {
          temporal = value;
        } else {
          s.redirect_location = value;
          if (s.redirect_status == 0) s.redirect_status = 301;
        }
      } else if (name == "permanent-redirect-code") {
        auto v = parse_positive(value);
        if (v && (*v == 301 || *v == 302 || *v == 303 || *v == 307 || *v == 308)) {
          s.redirect_status = static_cast<int>(*v);
        } else {
          warn(field, in_quotes(value) + ": sluice redirects with 301, 302, 303, 307 or 308; 301 is used");
        }
      } else if (name == "proxy-buffering") {
        if (value != "off") warn(field, "sluice streams every response; it never buffers them");
      } else if (name == "proxy-http-version") {
        if (value != "1.1") warn(field, "sluice always speaks HTTP/1.1 to upstreams");
      } else {
        auto reason = untranslated_reasons().find(name);
        std::string why = reason != untranslated_reasons().end() && !reason->second.empty()
                              ? ": " + std::string(reason->second)
                              : "";
        warn(field, "not translated" + why);
      }
    }
    if (!temporal.empty()) {
      if (!s.redirect_location.empty()) {
        warn(annotation_field("temporal-redirect"), "permanent-redirect is given too and wins");
      } else {
        s.redirect_location = temporal;
        s.redirect_status = 302;
      }
    }
    if (send_timeout) {
      int64_t read = s.read_timeout.value_or(kDefaultNginxTimeout);
      if (*send_timeout != read) {
        warn(annotation_field("proxy-send-timeout"),
             std::to_string(*send_timeout) +
                 "s not translated: sluice has no separate send timeout; its read_timeout (" +
                 std::to_string(read) +
                 "s here) also bounds a client that stalls its request body");
      }
    }
  }

  void read_tls(const json& spec) {
    const json* tls = member(spec, "tls");
    if (!tls) return;
    if (!tls->is_array()) {
      warn("spec.tls", "not a list; ignored");
      return;
    }
    for (size_t i = 0; i < tls->size(); ++i) {
      const json& entry = (*tls)[i];
      std::string field = "spec.tls[" + std::to_string(i) + "]";
      std::string secret = string_member(entry, "secretName");
      if (!secret.empty() && (!is_dns_name(secret, true) || !is_dns_name(current().ns, false))) {
        warn(field + ".secretName", in_quotes(current().ns + "/" + secret) +
                                        " is not a valid Secret name; the entry is skipped");
        continue;
      }
      const json* hosts = array_member(entry, "hosts");
      if (secret.empty()) {
        warn(field + ".secretName",
             "missing: ingress-nginx serves its default certificate; sluice serves the default "
             "certificate of its TLS listener to these hosts");
      } else if (!default_cert_) {
        default_cert_ = std::pair{current().ns, secret};
      }
      if (!hosts || hosts->empty()) {
        if (!secret.empty()) {
          warn(field + ".hosts",
               "empty: ingress-nginx offers this certificate to the hosts it names; sluice cannot "
               "read the Secret to know them: add [[listener.tls.sni]] entries for them");
        }
        continue;
      }
      for (size_t h = 0; h < hosts->size(); ++h) {
        const json& hj = (*hosts)[h];
        std::string hfield = field + ".hosts[" + std::to_string(h) + "]";
        std::string host = hj.is_string() ? base::to_lower(hj.get<std::string>()) : "";
        if (std::string why = route_host_problem(host); !why.empty()) {
          warn(hfield, "host " + in_quotes(host) + " " + why + "; skipped");
          continue;
        }
        tls_hosts_.emplace(host, std::pair{current().id, hfield});
        if (secret.empty()) continue;
        auto [it, inserted] = sni_index_.emplace(host, sni_.size());
        if (inserted) {
          sni_.push_back({host, current().ns, secret});
        } else if (sni_[it->second].ns != current().ns || sni_[it->second].secret != secret) {
          warn(hfield, "host " + host + " already has the certificate of Secret " +
                           sni_[it->second].ns + "/" + sni_[it->second].secret +
                           ", which is kept; " + current().ns + "/" + secret + " is not used for it");
        }
      }
    }
  }

  void read_rule(const json& rule, size_t i, size_t& n) {
    std::string field = "spec.rules[" + std::to_string(i) + "]";
    std::string host;
    if (const json* h = member(rule, "host"); h && h->is_string()) {
      host = base::to_lower(h->get<std::string>());
      if (std::string why = route_host_problem(host); !host.empty() && !why.empty()) {
        warn(field + ".host", "host " + in_quotes(host) + " " + why + "; the rule is skipped");
        return;
      }
    }
    const json* http = member(rule, "http");
    const json* paths = http ? array_member(*http, "paths") : nullptr;
    if (!paths) {
      warn(field, "no http.paths: nothing to route for " + (host.empty() ? "any host" : host));
      return;
    }
    for (size_t j = 0; j < paths->size(); ++j) {
      ++n;
      read_path((*paths)[j], host, field + ".http.paths[" + std::to_string(j) + "]", n);
    }
  }

  // An Ingress path as ingress-nginx matched it, in sluice terms.
  struct PathMatch {
    NginxPath np;
    bool exact = false;
    std::string type;                    // pathType as written
    const std::string* regex_by = nullptr;  // the Ingress that put the host in regex mode
  };

  // How the path of an Ingress path entry matches, or nullopt (warned) when
  // it cannot be translated. On a host in regex mode ingress-nginx writes
  // every location of the host as ~* "^PATH", whatever its pathType.
  std::optional<PathMatch> path_match(const json& entry, const std::string& field,
                                      const std::string& host) {
    PathMatch m;
    m.type = string_member(entry, "pathType");
    std::string path = string_member(entry, "path");
    if (auto it = regex_hosts_.find(host); it != regex_hosts_.end()) m.regex_by = &it->second;
    NginxPath& np = m.np;
    if (m.type == "Exact") {
      np.shape = PathShape::exact;
      np.prefix = path.empty() ? "/" : path;
    } else if (m.type == "Prefix" &&
               !(m.regex_by && path.find_first_of("*+?()[]{}|^$\\") != std::string::npos)) {
      // Kubernetes' Prefix matches whole path elements, as sluice's prefix does.
      np.shape = PathShape::segment;
      np.prefix = path.empty() ? "/" : path;
      while (np.prefix.size() > 1 && np.prefix.back() == '/') np.prefix.pop_back();
    } else {
      if (!m.type.empty() && m.type != "ImplementationSpecific" && m.type != "Prefix") {
        warn(field + ".pathType", in_quotes(m.type) + " is not a Kubernetes pathType; read as ImplementationSpecific");
      }
      np = m.regex_by ? analyze_regex_path(path.empty() ? "/" : path) : analyze_plain_path(path);
      if (np.shape == PathShape::unsupported) {
        warn(field + ".path", "regex path " + in_quotes(path) +
                                  ": sluice has no regex paths, and no prefix or exact path matches "
                                  "the same requests; skipped (write a route for each path it must serve)");
        return std::nullopt;
      }
    }
    m.exact = np.shape == PathShape::exact;
    if (std::string why = route_path_problem(np.prefix); !why.empty()) {
      warn(field + ".path", "path " + in_quotes(np.prefix) + " " + why + ", which sluice does not route; skipped");
      return std::nullopt;
    }
    return m;
  }

  // The warning for a path that sluice does not match exactly as
  // ingress-nginx did (a regex, a string prefix), or "".
  static std::string path_translation(const PathMatch& m, std::string_view original, const RouteOut& r) {
    const NginxPath& np = m.np;
    std::string as = std::string(r.exact ? "exact " : "prefix ") + in_quotes(r.path);
    if (r.strip_prefix) as += " with strip_prefix = true";
    if (r.rewrite_prefix) as += " with rewrite_prefix = " + in_quotes(*r.rewrite_prefix);
    std::string lost = "; paths that merely start with it, such as " + in_quotes(r.path + "x") +
                       ", no longer match";
    std::string also = ", which also matches " + in_quotes(r.path) + " itself";
    if (np.regex) {
      std::string out = "regex path " + in_quotes(original);
      if (np.literal_dot) out += " ('.' read as a literal dot)";
      out += ": sluice has no regex paths; translated as " + as;
      switch (np.shape) {
        case PathShape::segment: out += " (the same paths, compared case-sensitively)"; break;
        case PathShape::below: out += also; break;
        case PathShape::string_prefix: out += lost; break;
        default: break;
      }
      return out;
    }
    if (m.regex_by && (m.type == "Exact" || m.type == "Prefix") && !(r.path == "/" && !r.exact)) {
      std::string host = r.host.empty() ? std::string("requests without a host rule") : "host " + r.host;
      return host + " has regex paths (use-regex or rewrite-target in " + *m.regex_by +
             "), so ingress-nginx matched every path of it as a case-insensitive regex: " + m.type +
             " " + in_quotes(original) + " was ^" + std::string(original) + ", which also took " +
             (r.exact ? "longer paths such as " : std::string()) + in_quotes(r.path + "x") +
             "; translated as " + as + (r.exact ? "" : " (whole segments)") + ", as the Ingress meant";
    }
    if (np.shape == PathShape::string_prefix && r.path != "/") {
      return "pathType ImplementationSpecific: ingress-nginx matches " + in_quotes(original) +
             " as a plain string prefix; sluice matches whole path segments: translated as " + as +
             lost;
    }
    if (np.shape == PathShape::below) {
      return "pathType ImplementationSpecific: ingress-nginx matches " + in_quotes(original) +
             " as a plain string prefix; translated as " + as + also;
    }
    return "";
  }

  void read_path(const json& entry, const std::string& host, const std::string& field, size_t n) {
    const Settings& s = current().settings;
    auto m = path_match(entry, field, host);
    if (!m) return;
    RouteOut r;
    r.host = host;
    r.exact = m->exact;
    r.path = m->np.prefix;
    r.field = field;
    std::string original = string_member(entry, "path");
    if (!s.rewrite_target.empty() && s.redirect_location.empty()) {
      Rewrite rw = translate_rewrite(m->np, original, s.rewrite_target);
      if (rw.kind == Rewrite::Kind::strip) r.strip_prefix = true;
      if (rw.kind == Rewrite::Kind::prefix) r.rewrite_prefix = rw.prefix;
      if (rw.kind == Rewrite::Kind::unsupported) {
        warn(annotation_field("rewrite-target"),
             in_quotes(s.rewrite_target) + " on path " + in_quotes(original) + " (" + field + "): " + rw.why +
                 "; the route sends the path as the client sent it");
      }
    }
    std::string note = path_translation(*m, original, r);
    if (!s.redirect_location.empty()) {
      r.redirect_location = s.redirect_location;
      r.redirect_status = s.redirect_status;
    } else {
      auto key = backend_of(member(entry, "backend"), field + ".backend");
      if (!key) return;
      r.upstream = upstream_for(*key);
      if (std::find(s.websocket_services.begin(), s.websocket_services.end(), key->service) !=
          s.websocket_services.end()) {
        r.kind = "websocket";
        r.comments.push_back("websocket-services names " + key->service +
                             ": sluice forwards WebSocket upgrades only on websocket and socketio "
                             "routes (ingress-nginx forwarded them on every path).");
      }
      if (r.path == "/socket.io" || r.path.ends_with("/socket.io")) {
        r.kind = "socketio";  // the comment is written with the upstream's final affinity
        r.comments.clear();
      }
      r.read_timeout = s.read_timeout;
      if (s.read_timeout && *s.read_timeout > kDefaultTunnelIdle && r.kind != "http") {
        r.tunnel_idle = s.read_timeout;  // nginx let an idle WebSocket live that long
      }
      r.max_body = s.max_body;
    }
    r.name = unique_route_name(route_base() + "-" + std::to_string(n));
    if (!add_route(std::move(r), field + ".path")) return;
    if (!note.empty()) warn(field + ".path", note);
    if (!routes_.back().upstream.empty()) use_upstream(routes_.back().upstream);
  }

  void read_default_backend(const json& backend, const std::string& field = "spec.defaultBackend") {
    const Settings& s = current().settings;
    RouteOut r;
    r.path = "/";
    r.field = field;
    auto key = backend_of(&backend, field);
    if (!key) return;
    r.upstream = upstream_for(*key);
    if (std::find(s.websocket_services.begin(), s.websocket_services.end(), key->service) !=
        s.websocket_services.end()) {
      r.kind = "websocket";
    }
    r.read_timeout = s.read_timeout;
    r.max_body = s.max_body;
    r.comments.push_back("spec.defaultBackend: every request no other route matches.");
    r.name = unique_route_name(route_base() + "-default");
    if (!add_route(std::move(r), field)) return;
    use_upstream(routes_.back().upstream);
  }

  void check_websocket_services(const json& spec) {
    const Settings& s = current().settings;
    if (s.websocket_services.empty()) return;
    std::set<std::string> backends;
    auto collect = [&](const json* backend) {
      const json* svc = backend ? member(*backend, "service") : nullptr;
      if (svc) backends.insert(string_member(*svc, "name"));
      if (backend) backends.insert(string_member(*backend, "serviceName"));
    };
    collect(member(spec, "defaultBackend"));
    if (const json* rules = array_member(spec, "rules")) {
      for (const json& rule : *rules) {
        const json* http = member(rule, "http");
        if (const json* paths = http ? array_member(*http, "paths") : nullptr) {
          for (const json& p : *paths) collect(member(p, "backend"));
        }
      }
    }
    for (const std::string& svc : s.websocket_services) {
      if (!backends.count(svc)) {
        warn(annotation_field("websocket-services"),
             "service " + in_quotes(svc) + " is not a backend of this Ingress; nothing to do");
      }
    }
  }

  // The Service and port number a backend names, or nullopt (warned).
  std::optional<UpstreamKey> backend_of(const json* backend, const std::string& field) {
    if (!backend || !backend->is_object()) {
      warn(field, "missing; the path is skipped");
      return std::nullopt;
    }
    if (const json* resource = member(*backend, "resource")) {
      warn(field + ".resource", "a " + string_member(*resource, "kind") + " resource (" +
                                    string_member(*resource, "name") +
                                    "), not a Service: sluice proxies only to Services; the path is skipped");
      return std::nullopt;
    }
    UpstreamKey key;
    key.ns = current().ns;
    const json* port = nullptr;
    std::string port_field;
    if (const json* svc = member(*backend, "service")) {
      key.service = string_member(*svc, "name");
      if (const json* p = member(*svc, "port")) {
        if (const json* number = member(*p, "number")) port = number;
        port_field = field + ".service.port.number";
        if (!port) {
          if (std::string name = string_member(*p, "name"); !name.empty()) {
            warn(field + ".service.port.name",
                 "named port " + in_quotes(name) + " of Service " + key.ns + "/" + key.service +
                     ": sluice needs the port number (its servers are host:port); the path is "
                     "skipped: give service.port.number instead and import again");
            return std::nullopt;
          }
        }
      }
      if (key.service.empty()) {
        warn(field + ".service.name", "missing; the path is skipped");
        return std::nullopt;
      }
    } else if (member(*backend, "serviceName")) {  // extensions/v1beta1 shape
      key.service = string_member(*backend, "serviceName");
      port = member(*backend, "servicePort");
      port_field = field + ".servicePort";
      if (port && port->is_string()) {
        warn(port_field, "named port " + in_quotes(port->get<std::string>()) + " of Service " + key.ns +
                             "/" + key.service +
                             ": sluice needs the port number (its servers are host:port); the path is "
                             "skipped");
        return std::nullopt;
      }
    } else {
      warn(field, "names no Service; the path is skipped");
      return std::nullopt;
    }
    if (!port || !port->is_number_integer() || port->get<int64_t>() < 1 || port->get<int64_t>() > 65535) {
      warn(port_field.empty() ? field : port_field,
           "no valid port number for Service " + key.ns + "/" + key.service + "; the path is skipped");
      return std::nullopt;
    }
    key.port = static_cast<uint32_t>(port->get<int64_t>());
    if (!is_dns_name(key.service, false) || !is_dns_name(key.ns, false)) {
      warn(field, "Service " + in_quotes(key.ns + "/" + key.service) +
                      " is not a valid Service name (a DNS label); the path is skipped");
      return std::nullopt;
    }
    return key;
  }

  // The name of the upstream for `key`, created on first use.
  std::string upstream_for(const UpstreamKey& key) {
    for (const auto& [name, u] : upstreams_)
      if (u.key == key) return name;
    std::string base = key.ns + "-" + key.service + "-" + std::to_string(key.port);
    std::string name = base;
    for (int i = 2; upstreams_.count(name); ++i) name = base + "-" + std::to_string(i);
    UpstreamOut u;
    u.name = name;
    u.key = key;
    upstreams_.emplace(name, std::move(u));
    return name;
  }

  // Merges the current Ingress's upstream settings into upstream `name`,
  // which a route of it now uses, warning where Ingresses sharing the
  // upstream disagree: sluice settles these per upstream.
  void use_upstream(const std::string& name) {
    UpstreamOut& u = upstreams_.at(name);
    const IngressRef& ing = current();
    if (!u.users.insert(ing.id).second) return;
    const Settings& s = ing.settings;
    bool cookie_before = u.cookie;
    if (!u.used) {
      u.used = true;
      u.cookie = s.cookie_affinity;
      u.connect_timeout = s.connect_timeout;
      u.tls = s.upstream_tls;
    } else {
      std::string others = other_users(u, ing.id);
      if (s.cookie_affinity != u.cookie) {
        warn(annotation_field("affinity"),
             "upstream " + name + " is shared with " + others + ", which " +
                 (u.cookie ? "asks" : "does not ask") +
                 " for cookie affinity; sluice sets affinity per upstream, so it applies to every "
                 "route of " + name);
        u.cookie = true;
      }
      if (s.connect_timeout != u.connect_timeout) {
        if (!u.connect_timeout) u.connect_timeout = s.connect_timeout;
        warn(annotation_field("proxy-connect-timeout"),
             "upstream " + name + " is shared with " + others +
                 ", which has another connect timeout; sluice sets it per upstream: connect_timeout = \"" +
                 std::to_string(*u.connect_timeout) + "s\" for all");
      }
      if (s.upstream_tls != u.tls) {
        warn(annotation_field("backend-protocol"),
             "upstream " + name + " is shared with " + others + ", which uses " +
                 (u.tls ? "HTTPS" : "HTTP") + " to it; sluice keeps " + (u.tls ? "HTTPS" : "HTTP"));
      }
    }
    if (u.cookie && !cookie_before) {
      warn(annotation_field("affinity"),
           "affinity = \"cookie\" on upstream " + name + " pins each client to one of the addresses " +
               "dns:" + u.key.service + "." + u.key.ns +
               ".svc.cluster.local resolves to; a ClusterIP Service is a single address, so point it "
               "at a headless Service (one address per pod, with the pods' port)");
    }
  }

  static std::string other_users(const UpstreamOut& u, const std::string& except) {
    std::string out;
    for (const std::string& id : u.users) {
      if (id == except) continue;
      out += (out.empty() ? "" : ", ") + id;
    }
    return out;
  }

  // "<namespace>-<name>" of the current Ingress: its routes' names start so.
  std::string route_base() {
    const std::string& id = current().id;
    size_t slash = id.find('/');
    return id.substr(0, slash) + "-" + id.substr(slash + 1);
  }

  std::string unique_route_name(const std::string& base) {
    std::string name = base;
    for (int i = 2; route_names_.count(name); ++i) name = base + "-" + std::to_string(i);
    return name;
  }

  // Adds `r` unless a route with the same host and path exists (sluice
  // refuses two); then warns at `field` and returns false.
  bool add_route(RouteOut r, const std::string& field) {
    auto key = std::tuple{r.host, r.exact, r.path};
    if (auto it = route_keys_.find(key); it != route_keys_.end()) {
      const RouteOut& kept = routes_[it->second];
      const IngressRef& owner = ingresses_[kept.ingress];
      std::string msg = "host " + (r.host.empty() ? std::string("(any)") : r.host) + " and " +
                        (r.exact ? "exact " : "prefix ") + in_quotes(r.path) +
                        " are already routed by route " + in_quotes(kept.name) + " (" + owner.id + " " +
                        kept.field + "), which is kept; this path is skipped";
      if (owner.id != current().id && !current().created.empty() && !owner.created.empty() &&
          current().created < owner.created) {
        msg += " (ingress-nginx gives a path defined twice to the oldest Ingress, which is this one)";
      }
      warn(field, msg);
      return false;
    }
    r.ingress = ingresses_.size() - 1;
    route_keys_.emplace(key, routes_.size());
    route_names_.insert(r.name);
    routes_.push_back(std::move(r));
    return true;
  }

  // ------------------------------------------------------------ HTTPS redirects

  // True when ingress-nginx serves `host` with a certificate: a spec.tls
  // entry names it, or a wildcard one label up.
  const std::pair<std::string, std::string>* tls_source(const std::string& host) const {
    if (host.empty()) return nullptr;
    if (auto it = tls_hosts_.find(host); it != tls_hosts_.end()) return &it->second;
    size_t dot = host.find('.');
    if (dot == std::string::npos || host.starts_with("*.")) return nullptr;
    if (auto it = tls_hosts_.find("*" + host.substr(dot)); it != tls_hosts_.end()) return &it->second;
    return nullptr;
  }

  // ingress-nginx redirects plain HTTP to HTTPS on a path when its Ingress
  // says force-ssl-redirect, or when the host has a certificate and the
  // Ingress does not say ssl-redirect: "false". sluice can only redirect per
  // host: a route host = H, prefix = "/" that wins on plain HTTP for the paths
  // no other route of H matches (and is skipped on HTTPS).
  void add_https_redirects() {
    std::vector<std::string> hosts;
    std::map<std::string, std::vector<size_t>> by_host;
    for (size_t i = 0; i < routes_.size(); ++i) {
      auto [it, inserted] = by_host.try_emplace(routes_[i].host);
      if (inserted) hosts.push_back(routes_[i].host);
      it->second.push_back(i);
    }
    for (const std::string& host : hosts) {
      const std::vector<size_t>& members = by_host[host];
      std::vector<size_t> wanting, not_wanting;
      for (size_t i : members) (wants_https(routes_[i]) ? wanting : not_wanting).push_back(i);
      if (wanting.empty()) continue;
      const RouteOut& first = routes_[wanting.front()];
      auto [object, field] = https_reason(first);
      std::string who = host.empty() ? std::string("requests without a matching host") : host;
      if (!not_wanting.empty()) {
        const RouteOut& other = routes_[not_wanting.front()];
        warn(object, field,
             "plain HTTP is not redirected to HTTPS for " + who + ": route " + in_quotes(first.name) +
                 " asks for it but route " + in_quotes(other.name) + " (" + ingresses_[other.ingress].id +
                 ") does not, and sluice redirects a whole host or nothing");
        continue;
      }
      bool root_prefix = false, root_exact = false;
      for (size_t i : members) {
        if (routes_[i].path == "/") (routes_[i].exact ? root_exact : root_prefix) = true;
      }
      RouteOut r;
      r.host = host;
      r.https_redirect = true;
      r.redirect_status = 308;
      r.ingress = kGenerated;
      r.name = unique_route_name("https-redirect" + (host.empty() ? "" : "-" + host));
      r.comments.push_back("Plain HTTP to HTTPS for " + who + " (" + object + " " + field + ").");
      std::string paths;
      for (size_t i : members) {
        paths += (paths.empty() ? "" : ", ") + std::string(routes_[i].exact ? "exact " : "prefix ") +
                 routes_[i].path;
      }
      std::string limit =
          "sluice skips a scheme redirect on HTTPS, but on plain HTTP a longer or exact path of the same "
          "host still wins, so ";
      if (!root_prefix) {
        r.path = "/";
        warn(object, field,
             "plain HTTP to HTTPS for " + who + " is route " + in_quotes(r.name) + " (prefix /): " + limit +
                 "plain-HTTP requests for " + paths +
                 " are proxied, not redirected; redirect them at the load balancer if that matters");
      } else if (!root_exact) {
        r.path = "/";
        r.exact = true;
        warn(object, field,
             "plain HTTP to HTTPS for " + who + " is route " + in_quotes(r.name) +
                 " (exact /): a host cannot have two routes for prefix /, so only \"/\" itself is "
                 "redirected and every other path is proxied on plain HTTP too; redirect at the load "
                 "balancer if that matters");
      } else {
        warn(object, field,
             "plain HTTP is not redirected to HTTPS for " + who +
                 ": routes for prefix / and exact / exist already, and sluice allows one route per path; "
                 "redirect at the load balancer");
        continue;
      }
      route_names_.insert(r.name);
      routes_.push_back(std::move(r));
    }
  }

  bool wants_https(const RouteOut& r) const {
    if (r.https_redirect || r.ingress == kGenerated) return false;
    const Settings& s = ingresses_[r.ingress].settings;
    if (s.force_ssl_redirect) return true;
    return s.ssl_redirect.value_or(true) && tls_source(r.host) != nullptr;
  }

  // The Ingress and field that make ingress-nginx redirect route `r`.
  std::pair<std::string, std::string> https_reason(const RouteOut& r) const {
    const IngressRef& ing = ingresses_[r.ingress];
    if (ing.settings.force_ssl_redirect) return {ing.id, annotation_field("force-ssl-redirect")};
    if (ing.settings.ssl_redirect) return {ing.id, annotation_field("ssl-redirect")};
    return *tls_source(r.host);
  }

  // ------------------------------------------------------------ the text

  std::string tls_file(const std::string& ns, const std::string& secret, const char* file) const {
    std::string dir = options_.tls_dir;
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    return dir + "/" + ns + "/" + secret + "/" + file;
  }

  std::string write() const {
    std::ostringstream out;
    std::string source = comment_text(options_.source);
    out << "# Generated by `sluice import-ingress` from " << source << " (" << ingresses_.size()
        << " Ingress object" << (ingresses_.size() == 1 ? "" : "s") << ").\n";
    if (warnings_.empty()) {
      out << "# Every input was translated; review it anyway, then run `sluice check`.\n";
    } else {
      out << "# " << warnings_.size() << " input" << (warnings_.size() == 1 ? " was" : "s were")
          << " not translated exactly: review the warnings printed on stderr\n"
          << "# (" << source << ": NAMESPACE/NAME: FIELD: MESSAGE) before deploying, then run `sluice check`.\n";
    }
    out << "#\n"
        << "# - Servers are the Services' cluster DNS names, re-resolved every 5s. Through a\n"
        << "#   ClusterIP Service kube-proxy picks the pod; to balance per pod, point them at a\n"
        << "#   headless Service (its port is then the pods' port).\n"
        << "# - WebSocket upgrades pass only on websocket and socketio routes; the others answer\n"
        << "#   them 400 (ingress-nginx forwarded upgrades on every path).\n";
    if (default_cert_) {
      out << "# - TLS: mount each Secret (type kubernetes.io/tls) as a volume at\n"
          << "#   " << comment_text(tls_file("NAMESPACE", "SECRET", "")) << " (files tls.crt, tls.key).\n";
    }
    bool redirects = std::any_of(routes_.begin(), routes_.end(), [](const RouteOut& r) { return r.https_redirect; });
    if (redirects) {
      out << "# - HTTPS redirects drop the port: expose 8080 as port 80 and 8443 as port 443.\n";
    }
    out << "\n[[listener]]\naddress = \"0.0.0.0:8080\"\n";
    if (default_cert_) {
      out << "\n[[listener]]\naddress = \"0.0.0.0:8443\"\n[listener.tls]\n"
          << "cert = " << toml_string(tls_file(default_cert_->first, default_cert_->second, "tls.crt")) << "\n"
          << "key = " << toml_string(tls_file(default_cert_->first, default_cert_->second, "tls.key")) << "\n";
      for (const Sni& s : sni_) {
        out << "\n[[listener.tls.sni]]\nhost = " << toml_string(s.host) << "\n"
            << "cert = " << toml_string(tls_file(s.ns, s.secret, "tls.crt")) << "\n"
            << "key = " << toml_string(tls_file(s.ns, s.secret, "tls.key")) << "\n";
      }
    }
    for (const auto& [name, u] : upstreams_) {  // std::map: sorted by name
      if (!u.used) continue;
      out << "\n[upstream." << toml_key(name) << "]\n"
          << "servers = [" << toml_string("dns:" + u.key.service + "." + u.key.ns + ".svc.cluster.local:" +
                                          std::to_string(u.key.port))
          << "]\n";
      if (u.cookie) out << "affinity = \"cookie\"\n";
      if (u.connect_timeout) out << "connect_timeout = \"" << *u.connect_timeout << "s\"\n";
      if (u.tls) out << "tls = { verify = false }   # backend-protocol: HTTPS; ingress-nginx does not verify either\n";
    }
    size_t group = kGenerated - 1;
    for (const RouteOut& r : routes_) {
      if (r.ingress != group) {
        group = r.ingress;
        out << "\n# " << comment_text(group == kGenerated ? std::string("HTTP -> HTTPS") : "Ingress " + ingresses_[group].id)
            << "\n";
      }
      out << "\n";
      for (const std::string& c : r.comments) out << "# " << comment_text(c) << "\n";
      if (r.kind == "socketio") {
        out << "# Socket.IO: kind = \"socketio\" passes Engine.IO long-polls and the WebSocket upgrade.\n";
        if (!upstreams_.at(r.upstream).cookie) {
          out << "# With several pods, set affinity = \"engine.io\" on upstream " << r.upstream
              << " (and use a headless Service)\n# so that a polling session stays on one pod.\n";
        }
      }
      out << "[[route]]\nname = " << toml_string(r.name) << "\n";
      if (!r.host.empty()) out << "host = " << toml_string(r.host) << "\n";
      out << (r.exact ? "exact = " : "prefix = ") << toml_string(r.path) << "\n";
      if (!r.upstream.empty()) out << "upstream = " << toml_string(r.upstream) << "\n";
      if (r.kind != "http") out << "kind = \"" << r.kind << "\"\n";
      if (r.strip_prefix) out << "strip_prefix = true\n";
      if (r.rewrite_prefix) out << "rewrite_prefix = " << toml_string(*r.rewrite_prefix) << "\n";
      if (r.read_timeout) out << "read_timeout = \"" << *r.read_timeout << "s\"\n";
      if (r.tunnel_idle) out << "tunnel_idle = \"" << *r.tunnel_idle << "s\"\n";
      if (r.max_body) out << "max_body = \"" << base::format_size(*r.max_body) << "\"\n";
      if (r.https_redirect) {
        out << "redirect = { scheme = \"https\", status = " << r.redirect_status << " }\n";
      } else if (!r.redirect_location.empty()) {
        out << "redirect = { location = " << toml_string(r.redirect_location)
            << ", status = " << r.redirect_status << " }\n";
      }
    }
    return out.str();
  }

  struct Sni {
    std::string host;
    std::string ns;
    std::string secret;
  };

  const ImportOptions& options_;
  std::vector<Warning> warnings_;
  std::vector<IngressRef> ingresses_;
  std::optional<std::pair<std::string, std::string>> default_cert_;  // namespace, secret
  std::vector<Sni> sni_;
  std::map<std::string, size_t> sni_index_;
  std::map<std::string, std::pair<std::string, std::string>> tls_hosts_;  // host -> (ingress, field)
  std::map<std::string, UpstreamOut> upstreams_;  // also those no route ended up using
  std::vector<RouteOut> routes_;
  std::map<std::tuple<std::string, bool, std::string>, size_t> route_keys_;
  std::set<std::string> route_names_;
  std::map<std::string, std::string> regex_hosts_;  // host -> the Ingress that made it regex
};

}  // namespace

ImportResult import_ingress(const json& input, const ImportOptions& options) {
  Importer importer(options);
  std::string kind = string_member(input, "kind");
  const json* items = array_member(input, "items");
  if (input.is_array()) items = &input;
  if (items) {
    bool ingress_list = kind == "IngressList";
    for (size_t i = 0; i < items->size(); ++i) importer.scan_regex_hosts((*items)[i], i);
    for (size_t i = 0; i < items->size(); ++i) importer.add_item((*items)[i], i, ingress_list);
  } else if (kind == "Ingress") {
    importer.scan_regex_hosts(input, 0);
    importer.add_item(input, 0, true);
  } else {
    ImportResult r;
    r.error = input.is_object()
                  ? "not a List or an Ingress (kind " + (kind.empty() ? std::string("missing") : in_quotes(kind)) +
                        "); expected the output of kubectl get ingress -A -o json"
                  : "not a JSON object; expected the output of kubectl get ingress -A -o json";
    return r;
  }
  if (importer.ingress_count() == 0) {
    ImportResult r = importer.finish();
    r.toml.reset();
    r.error = "no Ingress objects in the input";
    return r;
  }
  return importer.finish();
}

std::string format_warning(std::string_view file, const Warning& w) {
  std::string out = std::string(file) + ": " + w.object + ": ";
  if (!w.field.empty()) out += w.field + ": ";
  return out + w.message;
}

}  // namespace sluice::ingress
