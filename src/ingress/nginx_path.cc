#include "nginx_path.h"

#include <cctype>
#include <vector>

#include "sluice/base.h"

namespace sluice::ingress {
namespace {

bool is_quantifier(char c) { return c == '*' || c == '+' || c == '?' || c == '{'; }

// Regex syntax that ends the literal part of a path ('.' is handled apart:
// it is nearly always meant as a dot).
bool ends_literal(char c) {
  return c == '(' || c == ')' || c == '[' || c == ']' || c == '|' || c == '^' || c == '$';
}

struct Tail {
  std::string_view text;
  PathShape shape;
  int rest_group;
  bool rest_has_slash;
};

// The tails after a literal path L that a literal sluice path can express.
// L never ends with '/' here: a trailing '/' has been moved into the tail.
constexpr Tail kTails[] = {
    {"(/|$)(.*)", PathShape::segment, 2, false},
    {"(/|$).*", PathShape::segment, 0, false},
    {"(/|$)", PathShape::segment, 0, false},
    {"/(.*)", PathShape::below, 1, false},
    {"/.*", PathShape::below, 0, false},
    {"/", PathShape::below, 0, false},
    {"(/.*)", PathShape::below, 1, true},
    {"(/.*)?", PathShape::string_prefix, 1, true},
    {"(.*)", PathShape::string_prefix, 1, true},
    {".*", PathShape::string_prefix, 0, false},
    {"/?(.*)", PathShape::string_prefix, 1, false},
    {"/?", PathShape::string_prefix, 0, false},
    {"", PathShape::string_prefix, 0, false},
    {"$", PathShape::exact, 0, false},
};

}  // namespace

NginxPath analyze_regex_path(std::string_view path) {
  NginxPath out;
  if (path.empty() || path.front() != '/') {
    out.regex = true;
    return out;
  }
  std::string literal;
  std::vector<size_t> starts;  // where each literal character began in `path`
  size_t i = 0;
  while (i < path.size()) {
    char c = path[i];
    if (c == '\\') {
      // "\." or "\/" is the character itself; "\d", "\w"... are classes.
      if (i + 1 < path.size() && std::ispunct(static_cast<unsigned char>(path[i + 1]))) {
        starts.push_back(i);
        literal += path[i + 1];
        i += 2;
        out.regex = true;
        continue;
      }
      break;
    }
    if (is_quantifier(c)) {
      // The quantifier applies to the previous character: it is not literal.
      out.regex = true;
      if (!starts.empty()) {
        i = starts.back();
        starts.pop_back();
        literal.pop_back();
      }
      break;
    }
    if (ends_literal(c)) {
      out.regex = true;
      break;
    }
    if (c == '.') {
      if (i + 1 < path.size() && is_quantifier(path[i + 1])) {
        out.regex = true;
        break;  // ".*", ".+": any characters
      }
      out.regex = true;
      out.literal_dot = true;
    }
    starts.push_back(i);
    literal += c;
    ++i;
  }
  std::string tail(path.substr(i));
  if (!literal.empty() && literal.back() == '/') {
    literal.pop_back();
    tail.insert(tail.begin(), '/');
  }
  // A '$' after a greedy ".*" changes nothing.
  for (std::string_view any : {".*$", "(.*)$"}) {
    if (tail.size() >= any.size() && std::string_view(tail).substr(tail.size() - any.size()) == any) {
      tail.pop_back();
      break;
    }
  }
  if (literal.empty() && tail == "/$") {
    out.shape = PathShape::exact;
    out.prefix = "/";
    return out;
  }
  for (const Tail& t : kTails) {
    if (tail != t.text) continue;
    out.shape = t.shape;
    out.rest_group = t.rest_group;
    out.rest_has_slash = t.rest_has_slash;
    break;
  }
  if (out.shape == PathShape::unsupported) return out;
  if (literal.empty()) {
    // At the root, anything after '/' is every path.
    out.shape = PathShape::segment;
    out.prefix = "/";
    return out;
  }
  out.prefix = std::move(literal);
  return out;
}

NginxPath analyze_plain_path(std::string_view path) {
  NginxPath out;
  std::string p(path);
  if (p.empty()) p = "/";
  if (p == "/") {
    out.shape = PathShape::segment;
    out.prefix = "/";
    return out;
  }
  if (p.back() == '/') {
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    out.shape = PathShape::below;
  } else {
    out.shape = PathShape::string_prefix;
  }
  out.prefix = std::move(p);
  return out;
}

Rewrite translate_rewrite(const NginxPath& path, std::string_view original,
                          std::string_view target) {
  Rewrite out;
  if (target.empty() || target == original) return out;  // ingress-nginx skips these
  // Split `target` into a literal part and capture references ($1, ${1}).
  std::string literal;
  std::vector<int> refs;
  bool ref_last = false;
  for (size_t i = 0; i < target.size(); ++i) {
    char c = target[i];
    if (c != '$') {
      if (!refs.empty()) ref_last = false;
      literal += c;
      continue;
    }
    size_t j = i + 1;
    bool braced = j < target.size() && target[j] == '{';
    if (braced) ++j;
    size_t digits = j;
    while (j < target.size() && std::isdigit(static_cast<unsigned char>(target[j]))) ++j;
    if (j == digits || j - digits > 2 || (braced && (j >= target.size() || target[j] != '}'))) {
      out.kind = Rewrite::Kind::unsupported;
      out.why = "it uses an nginx variable, which sluice cannot rewrite with";
      return out;
    }
    refs.push_back(std::stoi(std::string(target.substr(digits, j - digits))));
    ref_last = true;
    i = braced ? j : j - 1;
  }
  if (literal.find('?') != std::string::npos) {
    out.kind = Rewrite::Kind::unsupported;
    out.why = "it sets a query string, which sluice never rewrites";
    return out;
  }
  if (refs.empty()) {
    out.kind = Rewrite::Kind::unsupported;
    out.why = "nginx sends every request of this path to \"" + std::string(target) +
              "\" (the whole path is replaced); sluice can only strip or replace the matched prefix";
    return out;
  }
  if (refs.size() != 1 || !ref_last || path.rest_group == 0 || refs[0] != path.rest_group) {
    out.kind = Rewrite::Kind::unsupported;
    out.why = "sluice can strip or replace the matched prefix, which needs a target of the form "
              "\"/$N\" or \"/new/$N\" where $N is the rest of the path after \"" +
              path.prefix + "\"";
    if (path.rest_group != 0) out.why += " ($" + std::to_string(path.rest_group) + ")";
    return out;
  }
  std::string with = literal;
  if (!path.rest_has_slash) {
    // "/$2" with $2 = "users" -> "/users": the literal must end with '/'.
    if (with.empty() || with.back() != '/') {
      out.kind = Rewrite::Kind::unsupported;
      out.why = "the part before $" + std::to_string(refs[0]) +
                " does not end with '/', so nginx glues it to the rest of the path";
      return out;
    }
    with.pop_back();
  } else if (!with.empty() && with.back() == '/') {
    out.kind = Rewrite::Kind::unsupported;
    out.why = "$" + std::to_string(refs[0]) + " starts with '/', so nginx sends a double slash";
    return out;
  }
  if (with.empty()) {
    out.kind = path.prefix == "/" ? Rewrite::Kind::none : Rewrite::Kind::strip;
    return out;
  }
  if (with.front() != '/') {
    out.kind = Rewrite::Kind::unsupported;
    out.why = "the target does not start with '/'";
    return out;
  }
  out.kind = Rewrite::Kind::prefix;
  out.prefix = std::move(with);
  return out;
}

std::string route_path_problem(std::string_view path) {
  if (path.empty() || path.front() != '/') return "does not start with '/'";
  for (char c : path) {
    if (c == '?' || c == '#') return "contains '" + std::string(1, c) + "'";
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

std::string route_host_problem(std::string_view host) {
  std::string_view name = host;
  if (name.starts_with("*.")) name.remove_prefix(2);
  if (name.empty()) return "is empty";
  if (name.find(':') != std::string_view::npos) return "carries a port";
  return base::dns_name_problem(name);
}

}  // namespace sluice::ingress
