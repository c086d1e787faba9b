#include "sluice/config.h"

namespace sluice::config {

std::string format_diagnostic(std::string_view file, const Diagnostic& d) {
  std::string out(file);
  if (d.pos.line > 0) {
    out += ":" + std::to_string(d.pos.line) + ":" + std::to_string(d.pos.column);
  }
  out += d.severity == Severity::error ? ": error: " : ": warning: ";
  out += d.message;
  return out;
}

}  // namespace sluice::config
