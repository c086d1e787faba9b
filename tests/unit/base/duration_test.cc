// Durations and sizes as the config writes them (SPEC.md "Configuration":
// always with a unit) and as explain and the admin JSON print them
// (SPEC.md "Details": the largest whole unit).

#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <string>

#include "sluice/base.h"

using namespace sluice::base;
using namespace std::chrono_literals;

TEST_CASE("parse_duration: a whole number and one unit of ms, s, m, h") {
  CHECK(parse_duration("250ms") == Duration{250});
  CHECK(parse_duration("30s") == Duration{30'000});
  CHECK(parse_duration("5m") == Duration{300'000});
  CHECK(parse_duration("1h") == Duration{3'600'000});
  CHECK(parse_duration("90s") == 90s);
  CHECK(parse_duration("0s") == 0s);
  CHECK(parse_duration("1ms") == 1ms);
  CHECK(parse_duration("48h") == 48h);
}

TEST_CASE("parse_duration: a bare number is rejected, never guessed") {
  CHECK_FALSE(parse_duration("30").has_value());
  CHECK_FALSE(parse_duration("0").has_value());
  CHECK_FALSE(parse_duration("").has_value());
  CHECK_FALSE(parse_duration("s").has_value());
  CHECK_FALSE(parse_duration("ms").has_value());
}

TEST_CASE("parse_duration: negative, fractional and signed values are rejected") {
  CHECK_FALSE(parse_duration("-5s").has_value());
  CHECK_FALSE(parse_duration("+5s").has_value());
  CHECK_FALSE(parse_duration("1.5s").has_value());
  CHECK_FALSE(parse_duration(".5s").has_value());
  CHECK_FALSE(parse_duration("1e3ms").has_value());
}

TEST_CASE("parse_duration: unknown units, spaces and several units are rejected") {
  CHECK_FALSE(parse_duration("5d").has_value());
  CHECK_FALSE(parse_duration("5sec").has_value());
  CHECK_FALSE(parse_duration("5us").has_value());
  CHECK_FALSE(parse_duration("5 s").has_value());
  CHECK_FALSE(parse_duration(" 5s").has_value());
  CHECK_FALSE(parse_duration("5s ").has_value());
  CHECK_FALSE(parse_duration("1h30m").has_value());
  CHECK_FALSE(parse_duration("5sm").has_value());
  CHECK_FALSE(parse_duration("5KiB").has_value());
}

TEST_CASE("parse_duration: values that overflow are rejected") {
  CHECK_FALSE(parse_duration("99999999999999999999999ms").has_value());
  CHECK_FALSE(parse_duration("18446744073709551615h").has_value());
  // Milliseconds are a signed 64-bit count: just past it is out of range.
  CHECK_FALSE(parse_duration("9223372036854775808ms").has_value());
  CHECK(parse_duration("9223372036854775807ms") == Duration{std::numeric_limits<Duration::rep>::max()});
  CHECK_FALSE(parse_duration("9223372036854776s").has_value());
}

TEST_CASE("format_duration: the largest unit that divides the value exactly") {
  CHECK(format_duration(250ms) == "250ms");
  CHECK(format_duration(90s) == "90s");
  CHECK(format_duration(60s) == "1m");
  CHECK(format_duration(30min) == "30m");
  CHECK(format_duration(3600s) == "1h");
  CHECK(format_duration(1h) == "1h");
  CHECK(format_duration(5s) == "5s");
  CHECK(format_duration(1500ms) == "1500ms");
  CHECK(format_duration(90min) == "90m");
  CHECK(format_duration(25h) == "25h");
  CHECK(format_duration(3601s) == "3601s");
}

TEST_CASE("format_duration and parse_duration round-trip") {
  for (Duration d : {Duration{0}, Duration{1}, Duration{999}, Duration{1000}, Duration{45'000},
                     Duration{60'000}, Duration{61'000}, Duration{3'600'000}, Duration{7'200'500}}) {
    CAPTURE(d.count());
    std::string text = format_duration(d);
    CHECK(parse_duration(text) == d);
  }
}

TEST_CASE("parse_size: a whole number and one binary unit") {
  CHECK(parse_size("512B") == 512u);
  CHECK(parse_size("0B") == 0u);
  CHECK(parse_size("64KiB") == 64u * 1024);
  CHECK(parse_size("32KiB") == 32768u);
  CHECK(parse_size("10MiB") == 10u * 1024 * 1024);
  CHECK(parse_size("1GiB") == uint64_t{1} << 30);
}

TEST_CASE("parse_size: bare numbers, decimal or unknown units, negatives and fractions are rejected") {
  CHECK_FALSE(parse_size("1024").has_value());
  CHECK_FALSE(parse_size("").has_value());
  CHECK_FALSE(parse_size("KiB").has_value());
  CHECK_FALSE(parse_size("64KB").has_value());
  CHECK_FALSE(parse_size("64K").has_value());
  CHECK_FALSE(parse_size("10MB").has_value());
  CHECK_FALSE(parse_size("1TiB").has_value());
  CHECK_FALSE(parse_size("-1KiB").has_value());
  CHECK_FALSE(parse_size("1.5MiB").has_value());
  CHECK_FALSE(parse_size("64 KiB").has_value());
  CHECK_FALSE(parse_size("5s").has_value());
}

TEST_CASE("parse_size: values that overflow 64 bits are rejected") {
  CHECK(parse_size("18446744073709551615B") == std::numeric_limits<uint64_t>::max());
  CHECK_FALSE(parse_size("18446744073709551616B").has_value());
  CHECK_FALSE(parse_size("17179869184GiB").has_value());  // 2^34 GiB = 2^64 bytes
  CHECK(parse_size("17179869183GiB") == (uint64_t{17179869183} << 30));
  CHECK_FALSE(parse_size("99999999999999999999999KiB").has_value());
}

TEST_CASE("format_size: the largest binary unit that divides the value exactly") {
  CHECK(format_size(32768) == "32KiB");
  CHECK(format_size(10u * 1024 * 1024) == "10MiB");
  CHECK(format_size(uint64_t{1} << 30) == "1GiB");
  CHECK(format_size(512) == "512B");
  CHECK(format_size(1536) == "1536B");
  CHECK(format_size(1024 + 1024 * 1024) == "1025KiB");
  CHECK(format_size(uint64_t{3} << 30) == "3GiB");
  for (uint64_t v : {uint64_t{0}, uint64_t{1}, uint64_t{1024}, uint64_t{5} << 20, uint64_t{7} << 30}) {
    CAPTURE(v);
    CHECK(parse_size(format_size(v)) == v);
  }
}
