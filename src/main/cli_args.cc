#include "cli_args.h"

#include <string_view>

namespace sluice::cli {

const char* const kUsage =
    "usage:\n"
    "  sluice [--config FILE]                 run (default config: conf/sluice.toml)\n"
    "  sluice check [--config FILE] [--probe] validate; --probe also connects to every upstream server\n"
    "  sluice explain [--config FILE] [--host H] [--method M] [--header 'K: V']... TARGET\n"
    "  sluice import-ingress [--tls-dir DIR] FILE.json\n"
    "                                         ingress-nginx Ingresses (kubectl get ingress -A -o json,\n"
    "                                         - for stdin) -> sluice.toml on stdout, warnings on stderr\n"
    "  sluice version\n";

std::optional<CliArgs> parse_args(int argc, const char* const* argv, std::string& error) {
  CliArgs args;
  int i = 1;
  if (i < argc) {
    std::string_view first = argv[i];
    if (first == "check") args.command = Command::check, ++i;
    else if (first == "explain") args.command = Command::explain, ++i;
    else if (first == "import-ingress") args.command = Command::import_ingress, ++i;
    else if (first == "version" || first == "--version") args.command = Command::version, ++i;
    else if (first == "help" || first == "--help" || first == "-h") args.command = Command::help, ++i;
    else if (first == "run") ++i;
  }
  bool host_given = false;
  std::optional<std::string> target;  // explain's TARGET, import-ingress's FILE
  // Options take their value either as the next word or after '='.
  auto value_of = [&](std::string_view arg, std::string_view name,
                      std::string& out) -> std::optional<bool> {
    if (arg == name) {
      if (i + 1 >= argc) {
        error = std::string(name) + " needs a value";
        return std::nullopt;
      }
      out = argv[++i];
      return true;
    }
    if (arg.starts_with(name) && arg.size() > name.size() && arg[name.size()] == '=') {
      out = std::string(arg.substr(name.size() + 1));
      return true;
    }
    return false;
  };
  for (; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string value;
    std::optional<bool> hit;
    if (args.command == Command::import_ingress) {
      // import-ingress reads no config: its only option is where TLS Secrets are mounted.
      if ((hit = value_of(arg, "--tls-dir", args.tls_dir)), !hit) return std::nullopt;
      if (*hit) {
        if (args.tls_dir.empty()) {
          error = "--tls-dir needs a directory";
          return std::nullopt;
        }
        continue;
      }
      if ((arg == "-" || !arg.starts_with("-")) && !target) {
        target = std::string(arg);
        continue;
      }
      error = "unexpected argument '" + std::string(arg) + "'";
      return std::nullopt;
    }
    if ((hit = value_of(arg, "--config", args.config)), !hit) return std::nullopt;
    if (*hit) continue;
    if (args.command == Command::check && arg == "--probe") {
      args.probe = true;
      continue;
    }
    if (args.command == Command::explain) {
      if ((hit = value_of(arg, "--host", args.explain.host)), !hit) return std::nullopt;
      if (*hit) {
        host_given = true;
        continue;
      }
      if ((hit = value_of(arg, "--method", args.explain.method)), !hit) return std::nullopt;
      if (*hit) continue;
      if ((hit = value_of(arg, "--header", value)), !hit) return std::nullopt;
      if (*hit) {
        size_t colon = value.find(':');
        if (colon == std::string::npos || colon == 0) {
          error = "--header takes 'Name: value', not '" + value + "'";
          return std::nullopt;
        }
        args.explain.headers.emplace_back(std::string(base::trim_ows(std::string_view(value).substr(0, colon))),
                                          std::string(base::trim_ows(std::string_view(value).substr(colon + 1))));
        continue;
      }
      if (!arg.starts_with("-") && !target) {
        target = std::string(arg);
        continue;
      }
    }
    error = "unexpected argument '" + std::string(arg) + "'";
    return std::nullopt;
  }
  if (args.command == Command::import_ingress) {
    if (!target) {
      error = "import-ingress needs a FILE: kubectl get ingress -A -o json > ingress.json (or - for stdin)";
      return std::nullopt;
    }
    args.ingress_file = *target;
  }
  if (args.command == Command::explain) {
    if (!target) {
      error = "explain needs a TARGET, e.g. /socket.io/?EIO=4&transport=polling";
      return std::nullopt;
    }
    args.explain.target = *target;
    if (!host_given) {
      // A Host given as a header counts as the request's Host.
      for (const auto& [k, v] : args.explain.headers)
        if (base::iequals(k, "host")) args.explain.host = v;
    }
  }
  return args;
}

}  // namespace sluice::cli
