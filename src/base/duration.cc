#include <array>
#include <charconv>
#include <limits>

#include "sluice/base.h"

namespace sluice::base {
namespace {

struct Unit {
  std::string_view suffix;
  uint64_t factor;
};

// Longest suffix first so that "ms" is not read as "m" followed by junk.
constexpr std::array<Unit, 4> kDurationUnits{{
    {"ms", 1}, {"h", 3'600'000}, {"m", 60'000}, {"s", 1'000}}};

constexpr std::array<Unit, 4> kSizeUnits{{
    {"GiB", uint64_t{1} << 30}, {"MiB", uint64_t{1} << 20}, {"KiB", uint64_t{1} << 10}, {"B", 1}}};

// Splits "123unit" into the number and a unit from `units`; nullopt on
// anything else, including overflow of the product.
template <size_t N>
std::optional<uint64_t> parse_scaled(std::string_view text, const std::array<Unit, N>& units) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0) return std::nullopt;
  std::string_view suffix = text.substr(digits);
  for (const Unit& unit : units) {
    if (suffix != unit.suffix) continue;
    uint64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + digits, value);
    if (ec != std::errc{} || end != text.data() + digits) return std::nullopt;
    if (value > std::numeric_limits<uint64_t>::max() / unit.factor) return std::nullopt;
    return value * unit.factor;
  }
  return std::nullopt;
}

template <size_t N>
std::string format_scaled(uint64_t value, const std::array<Unit, N>& units) {
  // Units are listed largest first apart from "ms"; pick the largest exact one.
  const Unit* best = nullptr;
  for (const Unit& unit : units) {
    if (value % unit.factor != 0) continue;
    if (best == nullptr || unit.factor > best->factor) best = &unit;
  }
  if (value == 0 || best == nullptr) {
    // Zero has no natural unit; use the smallest so it reads "0ms" / "0B".
    for (const Unit& unit : units)
      if (unit.factor == 1) best = &unit;
  }
  return std::to_string(value / best->factor) + std::string(best->suffix);
}

}  // namespace

std::optional<Duration> parse_duration(std::string_view text) {
  auto ms = parse_scaled(text, kDurationUnits);
  if (!ms || *ms > static_cast<uint64_t>(std::numeric_limits<Duration::rep>::max())) {
    return std::nullopt;
  }
  return Duration{static_cast<Duration::rep>(*ms)};
}

std::string format_duration(Duration d) {
  return format_scaled(static_cast<uint64_t>(d.count() < 0 ? 0 : d.count()), kDurationUnits);
}

std::optional<uint64_t> parse_size(std::string_view text) { return parse_scaled(text, kSizeUnits); }

std::string format_size(uint64_t bytes) { return format_scaled(bytes, kSizeUnits); }

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool list_has_token(std::string_view value, std::string_view token) {
  size_t start = 0;
  while (start <= value.size()) {
    size_t comma = value.find(',', start);
    if (comma == std::string_view::npos) comma = value.size();
    if (iequals(trim_ows(value.substr(start, comma - start)), token)) return true;
    start = comma + 1;
  }
  return false;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

}  // namespace sluice::base
