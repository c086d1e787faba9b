#pragma once
// Helpers shared by the config unit tests: load inline TOML, look up the
// diagnostics at a line:col, and temporary directories for file checks.

#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "sluice/config.h"

namespace sluice::config::testing {

inline constexpr auto npos = std::string::npos;

// A config file in a directory that does not exist: relative paths resolve
// against /nonexistent/sluice, and no file there can be found.
inline constexpr const char* kFile = "/nonexistent/sluice/sluice.toml";

inline LoadResult load(std::string_view toml) { return load_string(toml, kFile); }

// The messages of every diagnostic of `severity` at line:col, one per line;
// "" when there is none, so `find` on it fails the check.
inline std::string find_diag(const LoadResult& r, uint32_t line, uint32_t col,
                             Severity severity = Severity::error) {
  std::string out;
  for (const Diagnostic& d : r.diagnostics) {
    if (d.pos.line == line && d.pos.column == col && d.severity == severity) out += d.message + "\n";
  }
  return out;
}

inline size_t count(const LoadResult& r, Severity severity) {
  size_t n = 0;
  for (const Diagnostic& d : r.diagnostics) n += d.severity == severity ? 1 : 0;
  return n;
}

// Everything reported, for INFO() when a check fails.
inline std::string dump(const LoadResult& r) {
  std::string out;
  for (const Diagnostic& d : r.diagnostics) out += format_diagnostic("sluice.toml", d) + "\n";
  return out;
}

// A fresh directory under the system temp dir, removed with everything in it
// when the test ends.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sluice-config-test-XXXXXX").string();
    const char* made = ::mkdtemp(tmpl.data());
    REQUIRE(made != nullptr);
    path_ = made;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

  // Creates `name` (and its directories) with a little content.
  void touch(const std::string& name) const {
    std::filesystem::create_directories((path_ / name).parent_path());
    std::ofstream(path_ / name) << "-----BEGIN PLACEHOLDER-----\n";
  }

  // Loads `toml` as if it were sluice.toml in this directory.
  LoadResult load(std::string_view toml) const { return load_string(toml, file("sluice.toml")); }

 private:
  std::filesystem::path path_;
};

}  // namespace sluice::config::testing
