#include "sluice/router.h"

namespace sluice::router {
namespace {

// Number of dots when `seg` consists only of dots, literal or "%2e"/"%2E";
// 0 otherwise.
size_t dot_count(std::string_view seg) {
  size_t dots = 0;
  size_t i = 0;
  while (i < seg.size()) {
    if (seg[i] == '.') {
      ++i;
    } else if (seg.size() - i >= 3 && seg[i] == '%' && seg[i + 1] == '2' &&
               (seg[i + 2] == 'e' || seg[i + 2] == 'E')) {
      i += 3;
    } else {
      return 0;
    }
    ++dots;
  }
  return dots;
}

}  // namespace

bool climbs_above(std::string_view rest) {
  // Segments end at '/' and also at an encoded slash ("%2F"), since an
  // upstream that decodes the path would see one there.
  long depth = 0;
  size_t start = 0;
  auto close_segment = [&](std::string_view seg) {
    size_t dots = dot_count(seg);
    if (dots == 2) return --depth < 0;
    // Empty segments ("//") are folded by most servers; they lift nothing.
    if (dots != 1 && !seg.empty()) ++depth;
    return false;
  };
  for (size_t i = 0; i <= rest.size(); ++i) {
    size_t sep = 0;
    if (i == rest.size() || rest[i] == '/') {
      sep = 1;
    } else if (rest.size() - i >= 3 && rest[i] == '%' && rest[i + 1] == '2' &&
               (rest[i + 2] == 'f' || rest[i + 2] == 'F')) {
      sep = 3;
    }
    if (sep == 0) continue;
    if (close_segment(rest.substr(start, i - start))) return true;
    start = i + sep;
    i += sep - 1;
  }
  return false;
}

std::optional<std::string> upstream_target(const Route& route, std::string_view target) {
  Target t = split_target(target);
  size_t matched = 0;  // bytes of t.path covered by the route's path
  if (route.match == config::MatchKind::exact) {
    matched = t.path.size();
  } else if (route.path != "/") {
    matched = route.path.size();
  }
  std::string_view rest = t.path.substr(std::min(matched, t.path.size()));
  if (climbs_above(rest)) return std::nullopt;

  if (!route.strip_prefix && !route.rewrite_prefix) return std::string(target);

  std::string out;
  out.reserve(target.size() + (route.rewrite_prefix ? route.rewrite_prefix->size() : 0));
  if (route.rewrite_prefix) {
    std::string_view with = *route.rewrite_prefix;
    // "/v2/" joined with "/x" must give "/v2/x", not "/v2//x".
    while (!with.empty() && with.back() == '/') with.remove_suffix(1);
    out.append(with);
  }
  out.append(rest);
  if (out.empty() || out.front() != '/') out.insert(out.begin(), '/');
  out.append(t.query);
  return out;
}

}  // namespace sluice::router
