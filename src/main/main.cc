// Entry point: parses the command line and runs one command. Exceptions stop
// here; nothing below main throws across a C callback.

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli_args.h"
#include "probe.h"
#include "sluice/config.h"
#include "sluice/ingress.h"
#include "sluice/router.h"
#include "sluice/server.h"
#include "sluice/tls.h"
#include "sluice_version.h"

namespace sluice::cli {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitInvalid = 1;
constexpr int kExitUsage = 2;
constexpr int kExitNoRoute = 3;

void print_diagnostics(const config::LoadResult& result, const std::string& file) {
  for (const config::Diagnostic& d : result.diagnostics) {
    std::cerr << config::format_diagnostic(file, d) << "\n";
  }
}

// Loads every certificate, key and CA file the config names, as serving
// would; returns the problems found.
std::vector<config::Diagnostic> check_tls(const config::Config& cfg) {
  std::vector<config::Diagnostic> problems;
  for (const config::Listener& l : cfg.listeners) {
    if (l.tls) tls::ServerContext::load(*l.tls, problems);
  }
  for (const config::Upstream& u : cfg.upstreams) {
    std::string error;
    if (u.tls && !tls::ClientContext::load(*u.tls, error)) {
      problems.push_back({config::Severity::error, u.pos, "upstream '" + u.name + "': " + error});
    }
  }
  return problems;
}

int run_check(const CliArgs& args) {
  config::LoadResult loaded = config::load_file(args.config);
  print_diagnostics(loaded, args.config);
  if (!loaded.ok()) {
    std::cerr << args.config << ": " << loaded.error_count() << " error(s)\n";
    return kExitInvalid;
  }
  const config::Config& cfg = *loaded.config;
  int status = kExitOk;
  size_t warnings = loaded.diagnostics.size();
  for (const config::Diagnostic& d : check_tls(cfg)) {
    std::cerr << config::format_diagnostic(args.config, d) << "\n";
    if (d.severity == config::Severity::error) {
      status = kExitInvalid;
    } else {
      ++warnings;
    }
  }
  if (status != kExitOk) {
    std::cerr << args.config << ": certificates cannot be loaded\n";
    return status;
  }
  if (args.probe) {
    for (const ProbeResult& p : probe_upstreams(cfg)) {
      if (p.failure.empty()) {
        std::cout << "probe: upstream '" << p.upstream->name << "' server " << p.address
                  << " accepts connections\n";
        continue;
      }
      config::Diagnostic d{config::Severity::error, p.server->pos,
                           "upstream '" + p.upstream->name + "': server \"" + p.server->text +
                               "\" (" + p.address + "): " + p.failure};
      std::cerr << config::format_diagnostic(args.config, d) << "\n";
      status = kExitInvalid;
    }
  }
  std::cout << args.config << ": " << (status == kExitOk ? "ok" : "probe failed") << " ("
            << cfg.routes.size() << " routes, " << cfg.upstreams.size() << " upstreams, "
            << cfg.listeners.size() << " listeners, " << warnings << " warnings)\n";
  return status;
}

int run_explain(const CliArgs& args) {
  config::LoadResult loaded = config::load_file(args.config);
  if (!loaded.ok()) {
    print_diagnostics(loaded, args.config);
    return kExitInvalid;
  }
  router::RouteTable table(loaded.config);
  bool matched = false;
  nlohmann::ordered_json j = router::explain(table, args.explain, &matched);
  std::cout << router::json_text(j) << "\n";
  return matched ? kExitOk : kExitNoRoute;
}

// import-ingress: the JSON of `kubectl get ingress -A -o json` -> sluice.toml
// on stdout; each input not translated exactly is a warning line on stderr.
int run_import_ingress(const CliArgs& args) {
  bool from_stdin = args.ingress_file == "-";
  std::string name = from_stdin ? "<stdin>" : args.ingress_file;
  std::stringstream text;
  if (from_stdin) {
    text << std::cin.rdbuf();
  } else {
    std::ifstream in(args.ingress_file, std::ios::binary);
    if (!in) {
      std::cerr << name << ": error: cannot read: " << std::strerror(errno) << "\n";
      return kExitInvalid;
    }
    text << in.rdbuf();
  }
  nlohmann::json input;
  try {
    input = nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::parse_error& e) {
    // what() is "[json.exception.parse_error.101] parse error at line 1, column 2: ..."
    std::string_view why = e.what();
    if (size_t end = why.find("] "); why.starts_with("[json.exception") && end != std::string_view::npos) {
      why.remove_prefix(end + 2);
    }
    std::cerr << name << ": error: invalid JSON: " << why << "\n";
    return kExitInvalid;
  }
  ingress::ImportOptions options;
  options.source = name;
  options.tls_dir = args.tls_dir;
  ingress::ImportResult result = ingress::import_ingress(input, options);
  for (const ingress::Warning& w : result.warnings) {
    std::cerr << ingress::format_warning(name, w) << "\n";
  }
  if (!result.toml) {
    std::cerr << name << ": error: " << result.error << "\n";
    return kExitInvalid;
  }
  std::cout << *result.toml;
  return kExitOk;
}

int run_serve(const CliArgs& args) {
  config::LoadResult loaded = config::load_file(args.config);
  print_diagnostics(loaded, args.config);
  if (!loaded.ok()) return kExitInvalid;
  return server::run(loaded.config);
}

int main_impl(int argc, char** argv) {
  std::string error;
  auto args = parse_args(argc, argv, error);
  if (!args) {
    std::cerr << "sluice: " << error << "\n" << kUsage;
    return kExitUsage;
  }
  switch (args->command) {
    case Command::version: std::cout << "sluice " << SLUICE_VERSION << "\n"; return kExitOk;
    case Command::help: std::cout << kUsage; return kExitOk;
    case Command::check: return run_check(*args);
    case Command::explain: return run_explain(*args);
    case Command::import_ingress: return run_import_ingress(*args);
    case Command::run: return run_serve(*args);
  }
  return kExitUsage;
}

}  // namespace
}  // namespace sluice::cli

int main(int argc, char** argv) {
  try {
    return sluice::cli::main_impl(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "sluice: " << e.what() << "\n";
    return 1;
  }
}
