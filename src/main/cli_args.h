#pragma once
// The command line of SPEC.md: run | check | explain | version, and
// import-ingress (docs/migrating-from-ingress-nginx.md).

#include <optional>
#include <string>

#include "sluice/ingress.h"
#include "sluice/router.h"

namespace sluice::cli {

enum class Command { run, check, explain, version, help, import_ingress };

struct CliArgs {
  Command command = Command::run;
  std::string config = "conf/sluice.toml";
  bool probe = false;              // check --probe
  router::ExplainRequest explain;  // explain's request
  std::string ingress_file;        // import-ingress: the kubectl JSON; "-" = stdin
  std::string tls_dir = std::string(ingress::kDefaultTlsDir);  // import-ingress --tls-dir
};

// nullopt on a usage error, with `error` saying what was wrong.
std::optional<CliArgs> parse_args(int argc, const char* const* argv, std::string& error);

extern const char* const kUsage;

}  // namespace sluice::cli
