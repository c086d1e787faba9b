#pragma once
// `sluice import-ingress`: Kubernetes Ingress objects as ingress-nginx serves
// them -> a sluice.toml (docs/migrating-from-ingress-nginx.md). A pure
// function of the parsed `kubectl get ingress -A -o json` output: no files,
// no cluster. Whatever cannot be carried over exactly comes back as a Warning
// naming the Ingress and the field; the TOML itself passes `sluice check`
// once the certificate files it names exist.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace sluice::ingress {

// Where the TLS Secrets are mounted: <tls_dir>/<namespace>/<secret>/tls.crt
// and tls.key (a Secret volume of type kubernetes.io/tls).
inline constexpr std::string_view kDefaultTlsDir = "/etc/sluice/tls";

struct ImportOptions {
  std::string source = "-";  // the input's name, written in the header comment
  std::string tls_dir = std::string(kDefaultTlsDir);
};

// One input the translation could not carry over exactly.
struct Warning {
  std::string object;  // "<namespace>/<name>" of the Ingress (or of the item)
  std::string field;   // path inside that object: "spec.rules[0].http.paths[1].path"
  std::string message;
};

struct ImportResult {
  std::optional<std::string> toml;  // nullopt: nothing to translate, `error` says why
  std::string error;
  std::vector<Warning> warnings;  // in input order
  size_t ingresses = 0;           // Ingress objects read
};

// `input` is a List (kind List or IngressList, `items`) of
// networking.k8s.io/v1 Ingress objects, or a single Ingress. Output is
// deterministic: upstreams sorted by name, routes in input order.
ImportResult import_ingress(const nlohmann::json& input, const ImportOptions& options);

// "FILE: <namespace>/<name>: <field>: <message>"
std::string format_warning(std::string_view file, const Warning& w);

}  // namespace sluice::ingress
