#pragma once
// How ingress-nginx matches a path and rewrites it, reduced to what a sluice
// route can say: an exact path or a whole-segment prefix, plus strip_prefix
// or rewrite_prefix. Private to src/ingress.

#include <string>
#include <string_view>

namespace sluice::ingress {

// The requests an ingress-nginx path matches, compared with the sluice
// route that has `NginxPath::prefix` as its path.
enum class PathShape {
  segment,        // L, L/ and L/...: exactly sluice's prefix L
  below,          // L/ and L/... but not L itself: prefix L also takes L
  string_prefix,  // L followed by anything: prefix L no longer takes "Lx"
  exact,          // L only: sluice's exact L
  unsupported,    // no literal path says which requests match
};

struct NginxPath {
  PathShape shape = PathShape::unsupported;
  std::string prefix;            // the literal path, no trailing '/' ("/" for the root)
  int rest_group = 0;            // capture group holding what follows `prefix`; 0 = none
  bool rest_has_slash = false;   // that group starts with the '/' that follows `prefix`
  bool regex = false;            // the path used regex syntax (and is listed in a warning)
  bool literal_dot = false;      // an unescaped '.' was read as a literal dot
};

// `path` as ingress-nginx matches it in regex mode (use-regex, or a
// rewrite-target): a case-insensitive regex anchored at the start only
// (location ~* "^PATH"). Recognises a literal part followed by one of the
// common tails: (/|$)(.*), /(.*), (/.*), (.*), .*, $, ...
NginxPath analyze_regex_path(std::string_view path);

// `path` of pathType ImplementationSpecific without regex mode: nginx's plain
// `location PATH`, a string prefix.
NginxPath analyze_plain_path(std::string_view path);

// What rewrite-target `target` does on a path shaped `path`, in sluice terms.
struct Rewrite {
  enum class Kind { none, strip, prefix, unsupported };
  Kind kind = Kind::none;
  std::string prefix;  // Kind::prefix: the rewrite_prefix value
  std::string why;     // Kind::unsupported: what nginx does that sluice cannot
};

// `original` is the path as written in the Ingress: ingress-nginx skips a
// rewrite whose target equals it.
Rewrite translate_rewrite(const NginxPath& path, std::string_view original,
                          std::string_view target);

// Empty when `path` can be a sluice route path (config/load.cc's rules:
// starts with '/', no '?', '#', whitespace, control characters, '.' or '..'
// segments); otherwise why not.
std::string route_path_problem(std::string_view path);

// Empty when `host` can be a sluice route host: a DNS name or "*.name", no port.
std::string route_host_problem(std::string_view host);

}  // namespace sluice::ingress
