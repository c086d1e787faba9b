// fuzz_ingress: `sluice import-ingress` (src/ingress/) on arbitrary JSON.
// The input is parsed as main.cc does (nlohmann::json::parse; text that is
// not JSON ends there) and translated with --tls-dir pointing at a
// directory that does not exist.
//
// Oracles (abort on violation; an exception escaping import_ingress is a
// crash too):
//  - a TOML output loads with config::load_string with no error other than
//    the certificate files under the TLS directory not existing (the unit
//    tests create them; a fuzzer does not write files), and never when the
//    result says it has nothing to translate;
//  - when it names no certificate, the output loads outright and each route
//    is reached by its own host and path;
//  - every warning names its object, and formats.

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "fuzz_support.h"
#include "sluice/config.h"
#include "sluice/ingress.h"
#include "sluice/router.h"

namespace {

using namespace sluice;
using fuzz::fail;
using fuzz::show;

constexpr const char* kName = "ingress";
constexpr std::string_view kTlsDir = "/nonexistent-sluice-fuzz-tls";

// "[listener.tls]: cert file "/nonexistent-sluice-fuzz-tls/ns/secret/tls.crt" does not exist"
bool missing_certificate(const config::Diagnostic& d) {
  if (d.severity != config::Severity::error) return true;
  const std::string& m = d.message;
  size_t file = m.find(" file \"" + std::string(kTlsDir) + "/");
  if (file == std::string::npos || !m.ends_with("\" does not exist")) return false;
  std::string_view before = std::string_view(m).substr(0, file);
  return before.ends_with(": cert") || before.ends_with(": key");
}

std::string host_for(const config::Route& r) {
  if (r.host.empty()) return "";
  if (r.is_wildcard_host()) return "tenant" + r.host.substr(1);
  return r.host;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nlohmann::json input = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (input.is_discarded()) return 0;
  ingress::ImportOptions options;
  options.source = "ingress.json";
  options.tls_dir = std::string(kTlsDir);
  ingress::ImportResult result = ingress::import_ingress(input, options);

  for (const ingress::Warning& w : result.warnings) {
    if (w.object.empty() && w.field.empty()) fail(kName, "a warning without object and field: " + w.message);
    (void)ingress::format_warning("ingress.json", w);
  }
  if (!result.toml) {
    if (result.error.empty()) fail(kName, "no TOML and no error");
    return 0;
  }
  if (result.ingresses == 0) fail(kName, "TOML for zero Ingress objects");

  const std::string& toml = *result.toml;
  config::LoadResult loaded = config::load_string(toml, std::string(kTlsDir) + "/sluice.toml");
  std::string errors;
  bool names_certificates = false;
  for (const config::Diagnostic& d : loaded.diagnostics) {
    if (d.severity != config::Severity::error) continue;
    if (missing_certificate(d)) {
      names_certificates = true;
      continue;
    }
    // Control bytes of Ingress names copied into TOML comments (comment_text
    // replaces only CR and LF): toml++ stops at them.
    if (d.message.find("parsing comment") != std::string::npos && fuzz::known("ingress-comment-ctl")) return 0;
    errors += config::format_diagnostic("out.toml", d) + "\n";
  }
  if (!errors.empty()) {
    bool comment = errors.find("parsing comment") != std::string::npos;
    fail(kName, std::string(comment ? "[ingress-comment-ctl] " : "") + "the imported config does not pass check:\n" + errors + "--- out.toml\n" + show(toml, 6000));
  }
  if (names_certificates) return 0;
  if (!loaded.ok()) fail(kName, "the imported config does not load, without any error");

  router::RouteTable table(loaded.config);
  for (const config::Route& r : loaded.config->routes) {
    const config::Route* chosen = table.select(host_for(r), r.path, false);
    if (!r.skipped_for(false) && (!chosen || !router::route_matches(*chosen, host_for(r), r.path))) {
      fail(kName, "imported route '" + r.name + "' is not reached by its own host and path");
    }
  }
  return 0;
}
