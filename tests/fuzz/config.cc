// fuzz_config: config::load_string on arbitrary text (TOML or not), then
// what `sluice check`, `sluice explain` and a starting server do with a
// config that loads: build the route table and ask it about every route.
//
// Oracles (abort on violation; exceptions and sanitizer reports are
// crashes too):
//  - ok() exactly when there is no error diagnostic; every diagnostic has a
//    message and, text being what was loaded, a line and column inside it
//    (SPEC.md: "every problem has a position");
//  - a config that loads reaches each of its routes: a request for the
//    route's own host and path selects a route that matches it (the route
//    itself unless a more specific one shares the path), explain agrees and
//    its JSON serializes, and the route's own path never escapes;
//  - every upstream of a route exists.
// The file name points at a directory that does not exist, so certificate
// and CA paths never resolve to files (their "does not exist" errors are
// ordinary diagnostics).

#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_support.h"
#include "sluice/config.h"
#include "sluice/router.h"

namespace {

using namespace sluice;
using fuzz::fail;
using fuzz::show;

constexpr const char* kName = "config";

// A host the route's host pattern matches.
std::string host_for(const config::Route& r) {
  if (r.host.empty()) return "";
  if (r.is_wildcard_host()) return "tenant" + r.host.substr(1);
  return r.host;
}

void check_loaded(std::string_view text, const config::LoadResult& result) {
  uint32_t lines = 1;
  for (char c : text) lines += c == '\n' ? 1 : 0;
  for (const config::Diagnostic& d : result.diagnostics) {
    std::string shown = config::format_diagnostic("sluice.toml", d);
    if (d.message.empty()) fail(kName, "a diagnostic without a message: " + shown);
    if ((d.pos.line == 0 || d.pos.column == 0) && !fuzz::known("diag-position")) {
      fail(kName, "[diag-position] a diagnostic without a position: " + show(shown));
    }
    if (d.pos.line > lines) fail(kName, "a diagnostic past the last line: " + show(shown));
  }
  if (result.ok() != (result.error_count() == 0)) fail(kName, "ok() disagrees with error_count()");
  if (!result.ok()) return;

  const config::Config& config = *result.config;
  for (const config::Route& r : config.routes) {
    if (r.has_upstream() && (r.upstream_index >= config.upstreams.size() ||
                             config.upstreams[r.upstream_index].name != r.upstream)) {
      fail(kName, "route '" + r.name + "' points at the wrong upstream");
    }
  }
  router::RouteTable table(result.config);
  for (const config::Route& r : config.routes) {
    if (r.path.empty()) continue;
    std::string host = host_for(r);
    for (bool tls : {false, true}) {
      const config::Route* chosen = table.select(host, r.path, tls);
      if (r.skipped_for(tls)) continue;
      if (!chosen) fail(kName, "route '" + r.name + "' is not reached by its own host and path");
      if (!router::route_matches(*chosen, host, r.path)) {
        fail(kName, "select chose '" + chosen->name + "', which does not match route '" + r.name + "''s path");
      }
    }
    router::ExplainRequest req;
    req.target = r.path;
    req.host = host;
    bool matched = false;
    nlohmann::ordered_json j = router::explain(table, req, &matched);
    const config::Route* plain = table.select(host, r.path, false);
    if (matched != (plain != nullptr) || (plain && j["route"] != plain->name)) {
      fail(kName, "explain and select disagree for route '" + r.name + "'");
    }
    try {
      (void)j.dump();
    } catch (const std::exception& e) {
      fail(kName, std::string("explain JSON of a loaded config does not serialize: ") + e.what());
    }
    if (r.has_upstream() && !router::upstream_target(r, r.path)) {
      fail(kName, "route '" + r.name + "': its own path " + show(r.path) + " is a path_escape");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  config::LoadResult result = config::load_string(text, "/nonexistent-sluice-fuzz/conf/sluice.toml");
  check_loaded(text, result);
  return 0;
}
