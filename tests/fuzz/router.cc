// fuzz_router: fixed route tables (the fixture of fuzz_support.h and the
// configs of conf/ that load without certificate files) against fuzzed
// requests. Input: "HOST\nTARGET\nMETHOD\nName: value\n..." (each part
// optional; HOST is the Host header as sent, "" = none).
//
// Oracles (abort on violation):
//  - RouteTable::select agrees with a brute-force reading of SPEC.md's
//    rules over router::route_matches (host class, exact before prefix,
//    longest prefix, scheme redirects skipped on their own scheme), for
//    plain and TLS requests;
//  - climbs_above agrees with a reference that decodes %2e and %2f first
//    and then counts segments;
//  - upstream_target: nullopt exactly when the tail past the matched prefix
//    climbs; unchanged without strip/rewrite; under rewrite_prefix starts
//    with it; the result is origin-form;
//  - explain names the route select chose, lists only routes that match as
//    shadowed, and router::json_text (what admin /explain sends) does not
//    throw and parses back (SLUICE_FUZZ_KNOWN=explain-utf8 skips that check);
//  - normalize_host leaves no upper case (hosts compare without case).

#include <cstdint>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.h"
#include "sluice/config.h"
#include "sluice/router.h"

namespace {

using namespace sluice;
using config::Route;
using fuzz::fail;
using fuzz::show;

constexpr const char* kName = "router";

struct Tables {
  std::vector<std::unique_ptr<router::RouteTable>> all;
};

const Tables& tables() {
  static const Tables t = [] {
    Tables t;
    t.all.push_back(std::make_unique<router::RouteTable>(fuzz::fixture_config(kName)));
    for (const char* file : {"conf/sluice.toml", "conf/examples/kubernetes-ingress.toml",
                             "conf/examples/socketio-gateway.toml", "conf/examples/sse.toml",
                             "conf/examples/tls.toml"}) {
      std::ifstream in(std::string(SLUICE_SOURCE_ROOT) + "/" + file, std::ios::binary);
      if (!in) continue;
      std::stringstream text;
      text << in.rdbuf();
      // Certificates resolve against a directory that does not exist; a
      // config that needs them simply does not take part.
      config::LoadResult r = config::load_string(text.str(), "/nonexistent-sluice-fuzz/" + std::string(file));
      if (r.ok()) t.all.push_back(std::make_unique<router::RouteTable>(r.config));
    }
    return t;
  }();
  return t;
}

int host_class(const Route& r) { return r.host.empty() ? 2 : r.is_wildcard_host() ? 1 : 0; }

// SPEC.md "Route selection", read literally.
const Route* brute_select(const config::Config& c, std::string_view host, std::string_view path, bool tls) {
  for (int cls = 0; cls < 3; ++cls) {
    const Route* best = nullptr;
    for (const Route& r : c.routes) {
      if (r.path.empty() || host_class(r) != cls || r.skipped_for(tls)) continue;
      if (!router::route_matches(r, host, path)) continue;
      if (!best) {
        best = &r;
      } else if (best->match != r.match) {
        if (r.match == config::MatchKind::exact) best = &r;
      } else if (r.path.size() > best->path.size()) {
        best = &r;
      }
    }
    if (best) return best;
  }
  return nullptr;
}

// climbs_above, written the other way round: decode the encoded dots and
// slashes, then walk the segments.
bool brute_climbs(std::string_view rest) {
  std::string decoded;
  for (size_t i = 0; i < rest.size(); ++i) {
    if (i + 2 < rest.size() && rest[i] == '%' && rest[i + 1] == '2') {
      char c = rest[i + 2];
      if (c == 'e' || c == 'E') {
        decoded += '.';
        i += 2;
        continue;
      }
      if (c == 'f' || c == 'F') {
        decoded += '/';
        i += 2;
        continue;
      }
    }
    decoded += rest[i];
  }
  long depth = 0;
  size_t start = 0;
  for (size_t i = 0; i <= decoded.size(); ++i) {
    if (i < decoded.size() && decoded[i] != '/') continue;
    std::string_view seg = std::string_view(decoded).substr(start, i - start);
    start = i + 1;
    if (seg == "..") {
      if (--depth < 0) return true;
    } else if (!seg.empty() && seg != ".") {
      ++depth;
    }
  }
  return false;
}

std::string_view matched_tail(const Route& r, std::string_view path) {
  size_t matched = 0;
  if (r.match == config::MatchKind::exact) {
    matched = path.size();
  } else if (r.path != "/") {
    matched = r.path.size();
  }
  return path.substr(std::min(matched, path.size()));
}

void check_table(const router::RouteTable& table, const router::ExplainRequest& req) {
  const config::Config& c = table.config();
  std::string host = router::normalize_host(req.host);
  for (char ch : host) {
    if (ch >= 'A' && ch <= 'Z') fail(kName, "normalize_host left upper case in " + show(host));
  }
  router::Target t = router::split_target(req.target);
  for (bool tls : {false, true}) {
    const Route* got = table.select(host, t.path, tls);
    const Route* want = brute_select(c, host, t.path, tls);
    if (got != want) {
      fail(kName, "select chose " + (got ? "'" + got->name + "'" : std::string("nothing")) + ", the rules say " +
                      (want ? "'" + want->name + "'" : std::string("nothing")) + " (host " + show(host) + ", path " +
                      show(t.path) + ", tls " + std::to_string(tls) + ", config " + c.file + ")");
    }
  }
  const Route* r = table.select(host, t.path, false);

  bool matched = false;
  nlohmann::ordered_json j = router::explain(table, req, &matched);
  if (matched != (r != nullptr)) fail(kName, "explain and select disagree on whether a route matches");
  if (r && j["route"] != r->name) fail(kName, "explain names another route than select");
  for (const auto& s : j["shadowed"]) {
    bool found = false;
    for (const Route& x : c.routes) {
      if (x.name == s["route"] && router::route_matches(x, host, t.path)) found = true;
    }
    if (!found) fail(kName, "explain lists a shadowed route that does not match: " + s.dump());
  }
  if (!fuzz::known("explain-utf8")) {
    // What admin /explain and `sluice explain` send: it must not throw, and
    // must read back as JSON (strict UTF-8) with the route it names.
    try {
      nlohmann::ordered_json back = nlohmann::ordered_json::parse(router::json_text(j));
      if (back["route"] != j["route"]) fail(kName, "the explain text names another route");
    } catch (const std::exception& e) {
      fail(kName, std::string("[explain-utf8] the explain JSON does not serialize (admin /explain would throw "
                              "inside a libuv callback): ") +
                      e.what() + "; target " + show(req.target) + ", host " + show(req.host));
    }
  }

  if (!r) return;
  std::string_view rest = matched_tail(*r, t.path);
  if (router::climbs_above(rest) != brute_climbs(rest)) {
    fail(kName, "climbs_above(" + show(rest) + ") disagrees with the reference");
  }
  std::optional<std::string> up = router::upstream_target(*r, req.target);
  if (up.has_value() == router::climbs_above(rest)) {
    fail(kName, "upstream_target and climbs_above disagree on " + show(req.target));
  }
  if (!up) return;
  if (!r->strip_prefix && !r->rewrite_prefix && *up != req.target) {
    fail(kName, "upstream_target changed a target on a route without strip/rewrite: " + show(*up));
  }
  if ((r->strip_prefix || r->rewrite_prefix) && (up->empty() || up->front() != '/')) {
    fail(kName, "upstream_target is not origin-form: " + show(*up));
  }
  if (r->rewrite_prefix) {
    std::string_view with = *r->rewrite_prefix;
    while (!with.empty() && with.back() == '/') with.remove_suffix(1);
    if (!std::string_view(*up).starts_with(with)) fail(kName, "rewrite_prefix lost: " + show(*up));
  }
  if (!t.query.empty() && !std::string_view(*up).ends_with(t.query)) fail(kName, "query lost: " + show(*up));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> lines;
  size_t pos = 0;
  while (pos <= input.size() && lines.size() < 64) {
    size_t nl = input.find('\n', pos);
    if (nl == std::string_view::npos) nl = input.size();
    lines.push_back(input.substr(pos, nl - pos));
    pos = nl + 1;
  }
  router::ExplainRequest req;
  req.host = std::string(lines.size() > 0 ? lines[0] : "");
  req.target = std::string(lines.size() > 1 ? lines[1] : "/");
  if (lines.size() > 2 && !lines[2].empty()) req.method = std::string(lines[2]);
  for (size_t i = 3; i < lines.size(); ++i) {
    size_t colon = lines[i].find(':');
    if (colon == std::string_view::npos) continue;
    req.headers.emplace_back(std::string(lines[i].substr(0, colon)), std::string(lines[i].substr(colon + 1)));
  }
  for (const auto& table : tables().all) check_table(*table, req);
  return 0;
}
