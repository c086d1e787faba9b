#pragma once
// Reads one TOML table key by key, checking types and units, and reports
// every key nobody asked for as unknown: a typo must not pass silently.

#include <toml++/toml.h>

#include <string>
#include <string_view>
#include <vector>

#include "sluice/config.h"

namespace sluice::config {

SourcePos pos_of(const toml::node& node);
SourcePos pos_of(const toml::key& key);

class Diagnostics {
 public:
  void error(SourcePos pos, std::string message);
  void warning(SourcePos pos, std::string message);
  bool has_errors() const { return errors_ > 0; }
  std::vector<Diagnostic> take();  // sorted by position, stable

 private:
  std::vector<Diagnostic> items_;
  size_t errors_ = 0;
};

class TableReader {
 public:
  // `where` names the table in messages: "[server]", "route 'api'".
  TableReader(const toml::table& table, std::string where, Diagnostics& diags);
  TableReader(const TableReader&) = delete;
  TableReader& operator=(const TableReader&) = delete;

  // Each getter marks `key` as known. It returns true when the key is present
  // with a valid value (stored in `out`); a present but invalid value is
  // reported and leaves `out` unchanged.
  bool string(std::string_view key, std::string& out);
  bool boolean(std::string_view key, bool& out);
  bool integer(std::string_view key, int64_t min, int64_t max, int64_t& out);
  bool duration(std::string_view key, Duration& out);
  bool size(std::string_view key, uint64_t& out);
  bool string_array(std::string_view key, std::vector<std::string>& out,
                    std::vector<SourcePos>* positions = nullptr);
  const toml::table* table(std::string_view key);
  const toml::node* node(std::string_view key);  // any type

  // Reports unknown keys. Call once, after every getter.
  void finish();

  SourcePos pos() const { return pos_of(table_); }
  SourcePos pos(std::string_view key) const;  // of the key's value, or the table
  const std::string& where() const { return where_; }
  Diagnostics& diags() { return diags_; }

 private:
  const toml::node* lookup(std::string_view key);
  void wrong_type(std::string_view key, const toml::node& node, std::string_view expected);

  const toml::table& table_;
  std::string where_;
  Diagnostics& diags_;
  std::vector<std::string> known_;
};

std::string_view type_name(const toml::node& node);

}  // namespace sluice::config
