#include "table_reader.h"

#include <algorithm>

namespace sluice::config {
namespace {

// Levenshtein distance, for "did you mean" hints on unknown keys.
size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

}  // namespace

SourcePos pos_of(const toml::node& node) {
  return {static_cast<uint32_t>(node.source().begin.line),
          static_cast<uint32_t>(node.source().begin.column)};
}

SourcePos pos_of(const toml::key& key) {
  return {static_cast<uint32_t>(key.source().begin.line),
          static_cast<uint32_t>(key.source().begin.column)};
}

std::string_view type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    default: return "nothing";
  }
}

void Diagnostics::error(SourcePos pos, std::string message) {
  items_.push_back({Severity::error, pos, std::move(message)});
  ++errors_;
}

void Diagnostics::warning(SourcePos pos, std::string message) {
  items_.push_back({Severity::warning, pos, std::move(message)});
}

std::vector<Diagnostic> Diagnostics::take() {
  std::stable_sort(items_.begin(), items_.end(), [](const Diagnostic& a, const Diagnostic& b) {
    if (a.pos.line != b.pos.line) return a.pos.line < b.pos.line;
    return a.pos.column < b.pos.column;
  });
  errors_ = 0;
  return std::move(items_);
}

TableReader::TableReader(const toml::table& table, std::string where, Diagnostics& diags)
    : table_(table), where_(std::move(where)), diags_(diags) {}

const toml::node* TableReader::lookup(std::string_view key) {
  known_.emplace_back(key);
  return table_.get(key);
}

SourcePos TableReader::pos(std::string_view key) const {
  const toml::node* n = table_.get(key);
  return n ? pos_of(*n) : pos_of(table_);
}

void TableReader::wrong_type(std::string_view key, const toml::node& node,
                             std::string_view expected) {
  diags_.error(pos_of(node), where_ + ": '" + std::string(key) + "' must be " +
                                 std::string(expected) + ", not " + std::string(type_name(node)));
}

bool TableReader::string(std::string_view key, std::string& out) {
  const toml::node* n = lookup(key);
  if (!n) return false;
  if (!n->is_string()) {
    wrong_type(key, *n, "a string");
    return false;
  }
  out = n->as_string()->get();
  return true;
}

bool TableReader::boolean(std::string_view key, bool& out) {
  const toml::node* n = lookup(key);
  if (!n) return false;
  if (!n->is_boolean()) {
    wrong_type(key, *n, "true or false");
    return false;
  }
  out = n->as_boolean()->get();
  return true;
}

bool TableReader::integer(std::string_view key, int64_t min, int64_t max, int64_t& out) {
  const toml::node* n = lookup(key);
  if (!n) return false;
  if (!n->is_integer()) {
    wrong_type(key, *n, "an integer");
    return false;
  }
  int64_t v = n->as_integer()->get();
  if (v < min || v > max) {
    diags_.error(pos_of(*n), where_ + ": '" + std::string(key) + "' must be between " +
                                 std::to_string(min) + " and " + std::to_string(max) + ", not " +
                                 std::to_string(v));
    return false;
  }
  out = v;
  return true;
}

bool TableReader::duration(std::string_view key, Duration& out) {
  const toml::node* n = lookup(key);
  if (!n) return false;
  if (!n->is_string()) {
    wrong_type(key, *n, "a duration string with a unit (\"250ms\", \"30s\", \"5m\", \"1h\")");
    return false;
  }
  const std::string& text = n->as_string()->get();
  auto d = base::parse_duration(text);
  if (!d) {
    diags_.error(pos_of(*n), where_ + ": '" + std::string(key) + "' = \"" + text +
                                 "\" is not a duration; write a whole number and a unit: "
                                 "\"250ms\", \"30s\", \"5m\", \"1h\"");
    return false;
  }
  if (d->count() == 0) {
    diags_.error(pos_of(*n), where_ + ": '" + std::string(key) + "' must be longer than 0");
    return false;
  }
  out = *d;
  return true;
}

bool TableReader::size(std::string_view key, uint64_t& out) {
  const toml::node* n = lookup(key);
  if (!n) return false;
  if (!n->is_string()) {
    wrong_type(key, *n, "a size string with a unit (\"512B\", \"64KiB\", \"10MiB\", \"1GiB\")");
    return false;
  }
  const std::string& text = n->as_string()->get();
  auto s = base::parse_size(text);
  if (!s) {
    diags_.error(pos_of(*n), where_ + ": '" + std::string(key) + "' = \"" + text +
                                 "\" is not a size; write a whole number and a unit: "
                                 "\"512B\", \"64KiB\", \"10MiB\", \"1GiB\"");
    return false;
  }
  out = *s;
  return true;
}

bool TableReader::string_array(std::string_view key, std::vector<std::string>& out,
                               std::vector<SourcePos>* positions) {
  const toml::node* n = lookup(key);
  if (!n) return false;
  const toml::array* arr = n->as_array();
  if (!arr) {
    wrong_type(key, *n, "an array of strings");
    return false;
  }
  std::vector<std::string> values;
  std::vector<SourcePos> where;
  bool ok = true;
  for (const toml::node& item : *arr) {
    if (!item.is_string()) {
      diags_.error(pos_of(item), where_ + ": '" + std::string(key) +
                                     "' must hold only strings, not " +
                                     std::string(type_name(item)));
      ok = false;
      continue;
    }
    values.push_back(item.as_string()->get());
    where.push_back(pos_of(item));
  }
  if (!ok) return false;
  out = std::move(values);
  if (positions) *positions = std::move(where);
  return true;
}

const toml::table* TableReader::table(std::string_view key) {
  const toml::node* n = lookup(key);
  if (!n) return nullptr;
  if (!n->is_table()) {
    wrong_type(key, *n, "a table");
    return nullptr;
  }
  return n->as_table();
}

const toml::node* TableReader::node(std::string_view key) { return lookup(key); }

void TableReader::finish() {
  for (auto&& [key, value] : table_) {
    std::string_view name = key.str();
    if (std::find(known_.begin(), known_.end(), name) != known_.end()) continue;
    std::string message = where_ + ": unknown key '" + std::string(name) + "'";
    const std::string* best = nullptr;
    size_t best_distance = 3;  // suggest only close spellings
    for (const std::string& candidate : known_) {
      size_t d = edit_distance(name, candidate);
      if (d < best_distance) {
        best_distance = d;
        best = &candidate;
      }
    }
    if (best) message += " (did you mean '" + *best + "'?)";
    diags_.error(pos_of(key), std::move(message));
  }
}

}  // namespace sluice::config
