#include <doctest/doctest.h>

#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "sluice/metrics.h"

using namespace sluice;
using metrics::Registry;
using metrics::ScrapeExtras;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The metric name of a sample line: up to '{' or ' '.
std::string sample_name(const std::string& line) { return line.substr(0, line.find_first_of("{ ")); }

// The family a sample belongs to (histogram samples carry a suffix).
std::string family_of(const std::string& name, const std::map<std::string, std::string>& types) {
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    std::string s = suffix;
    if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
      std::string base = name.substr(0, name.size() - s.size());
      auto it = types.find(base);
      if (it != types.end() && it->second == "histogram") return base;
    }
  }
  return name;
}

// Checks the exposition's shape (format 0.0.4): the text ends in a newline;
// every family has one HELP and one TYPE line, before its samples; every
// sample belongs to a declared family and has a value; counters end in
// _total; a family's samples are not split by another family's.
void check_exposition(const std::string& text) {
  REQUIRE(!text.empty());
  CHECK(text.back() == '\n');
  std::map<std::string, std::string> types;
  std::set<std::string> helps, finished;
  std::string current;
  for (const std::string& line : lines_of(text)) {
    REQUIRE_MESSAGE(!line.empty(), "empty line in the exposition");
    if (line.rfind("# HELP ", 0) == 0) {
      std::string name = line.substr(7, line.find(' ', 7) - 7);
      CHECK_MESSAGE(helps.insert(name).second, "second HELP for ", name);
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      std::string rest = line.substr(7);
      std::string name = rest.substr(0, rest.find(' '));
      std::string type = rest.substr(rest.find(' ') + 1);
      CHECK_MESSAGE(helps.count(name) == 1, "TYPE before HELP for ", name);
      CHECK_MESSAGE(types.emplace(name, type).second, "second TYPE for ", name);
      CHECK((type == "counter" || type == "gauge" || type == "histogram"));
      if (type == "counter") CHECK_MESSAGE(name.size() > 6, name);
      if (type == "counter") CHECK_MESSAGE(name.compare(name.size() - 6, 6, "_total") == 0, name);
      if (!current.empty()) finished.insert(current);
      current = name;
      CHECK_MESSAGE(finished.count(name) == 0, "family declared twice: ", name);
      continue;
    }
    REQUIRE_MESSAGE(line[0] != '#', "unexpected comment: ", line);
    std::string family = family_of(sample_name(line), types);
    CHECK_MESSAGE(types.count(family) == 1, "sample without TYPE: ", line);
    CHECK_MESSAGE(family == current, "sample outside its family's block: ", line);
    // name{labels} value: exactly one space after the label set.
    size_t value_at = line.rfind(' ');
    REQUIRE(value_at != std::string::npos);
    std::string value = line.substr(value_at + 1);
    CHECK_MESSAGE(!value.empty(), line);
    char* end = nullptr;
    std::strtod(value.c_str(), &end);
    CHECK_MESSAGE(*end == '\0', "value is not a number: ", line);
  }
}

// The value of the sample written exactly as `series` (name{labels}), or
// "" when the exposition has no such line.
std::string value_of(const std::string& text, const std::string& series) {
  for (const std::string& line : lines_of(text)) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ') {
      return line.substr(series.size() + 1);
    }
  }
  return "";
}

size_t count_lines_starting(const std::string& text, const std::string& prefix) {
  size_t n = 0;
  for (const std::string& line : lines_of(text)) n += line.rfind(prefix, 0) == 0;
  return n;
}

ScrapeExtras extras_with_kinds(std::map<std::string, std::string> kinds) {
  ScrapeExtras e;
  e.route_kinds = std::move(kinds);
  return e;
}

}  // namespace

TEST_CASE("an empty registry renders every fixed family, well formed") {
  Registry reg(2);
  ScrapeExtras extras;
  extras.downstream_connections = 7;
  extras.reloads_ok = 3;
  extras.reloads_failed = 1;
  extras.draining = true;
  extras.servers = {{"api", "127.0.0.1:9000", true}, {"api", "127.0.0.1:9001", false}};
  std::string text = reg.render(extras);
  check_exposition(text);
  for (const char* family : {"sluice_requests_total", "sluice_request_duration_seconds",
                             "sluice_downstream_connections", "sluice_tunnels_active",
                             "sluice_tunnel_duration_seconds", "sluice_tunnel_closes_total",
                             "sluice_upstream_healthy", "sluice_upstream_errors_total",
                             "sluice_config_reloads_total"}) {
    CHECK_MESSAGE(text.find(std::string("# TYPE ") + family + " ") != std::string::npos, family);
  }
  CHECK(value_of(text, "sluice_downstream_connections") == "7");
  CHECK(value_of(text, R"(sluice_config_reloads_total{result="ok"})") == "3");
  CHECK(value_of(text, R"(sluice_config_reloads_total{result="failed"})") == "1");
  CHECK(value_of(text, "sluice_draining") == "1");
  CHECK(value_of(text, R"(sluice_upstream_healthy{upstream="api",server="127.0.0.1:9000"})") == "1");
  CHECK(value_of(text, R"(sluice_upstream_healthy{upstream="api",server="127.0.0.1:9001"})") == "0");
  CHECK(text.find("# TYPE sluice_request_duration_seconds histogram\n") != std::string::npos);
  CHECK(text.find("# TYPE sluice_tunnel_duration_seconds histogram\n") != std::string::npos);
  CHECK(text.find("# TYPE sluice_tunnels_active gauge\n") != std::string::npos);
  CHECK(count_lines_starting(text, "sluice_requests_total{") == 0);
  CHECK(count_lines_starting(text, "sluice_upstream_errors_total{") == 0);
}

TEST_CASE("request counts are summed over workers, all five classes per route") {
  Registry reg(3);
  std::vector<metrics::RouteCells*> api = reg.route("api");
  REQUIRE(api.size() == 3);
  // The same cells on every call: pointers stay valid for the registry's life.
  CHECK(reg.route("api") == api);
  CHECK(reg.route("other") != api);
  api[0]->requests[metrics::status_class(200)].add(4);
  api[1]->requests[metrics::status_class(204)].add(2);
  api[2]->requests[metrics::status_class(299)].add();
  api[1]->requests[metrics::status_class(404)].add(5);
  api[2]->requests[metrics::status_class(503)].add();
  api[0]->requests[metrics::status_class(101)].add();
  api[0]->requests[metrics::status_class(308)].add();
  std::string text = reg.render({});
  check_exposition(text);
  CHECK(value_of(text, R"(sluice_requests_total{route="api",code="1xx"})") == "1");
  CHECK(value_of(text, R"(sluice_requests_total{route="api",code="2xx"})") == "7");
  CHECK(value_of(text, R"(sluice_requests_total{route="api",code="3xx"})") == "1");
  CHECK(value_of(text, R"(sluice_requests_total{route="api",code="4xx"})") == "5");
  CHECK(value_of(text, R"(sluice_requests_total{route="api",code="5xx"})") == "1");
  // A route nobody used still has its five lines, at zero.
  for (const char* c : {"1xx", "2xx", "3xx", "4xx", "5xx"}) {
    CHECK(value_of(text, std::string(R"(sluice_requests_total{route="other",code=")") + c + "\"}") == "0");
  }
  CHECK(count_lines_starting(text, "sluice_requests_total{") == 10);
}

TEST_CASE("status_class maps statuses to 1xx..5xx") {
  CHECK(metrics::status_class(100) == 0);
  CHECK(metrics::status_class(101) == 0);
  CHECK(metrics::status_class(200) == 1);
  CHECK(metrics::status_class(302) == 2);
  CHECK(metrics::status_class(499) == 3);
  CHECK(metrics::status_class(500) == 4);
  CHECK(metrics::status_class(599) == 4);
}

TEST_CASE("the request histogram is cumulative, summed over workers, +Inf equals _count") {
  Registry reg(2);
  auto cells = reg.route("api");
  // Bounds are inclusive (le): 0.005 lands in le="0.005".
  cells[0]->duration.observe(0.001);
  cells[1]->duration.observe(0.005);
  cells[0]->duration.observe(0.02);
  cells[1]->duration.observe(0.3);
  cells[0]->duration.observe(2.5);
  cells[1]->duration.observe(7);
  cells[0]->duration.observe(120);  // above every bound: +Inf only
  std::string text = reg.render({});
  check_exposition(text);
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"0.005", "2"}, {"0.01", "2"}, {"0.025", "3"}, {"0.05", "3"}, {"0.1", "3"}, {"0.25", "3"},
      {"0.5", "4"},   {"1", "4"},    {"2.5", "5"},   {"5", "5"},    {"10", "6"}, {"+Inf", "7"}};
  for (const auto& [le, n] : expected) {
    CHECK_MESSAGE(value_of(text, R"(sluice_request_duration_seconds_bucket{route="api",le=")" + le + "\"}") == n,
                  "le=", le);
  }
  CHECK(count_lines_starting(text, R"(sluice_request_duration_seconds_bucket{route="api",)") == 12);
  CHECK(value_of(text, R"(sluice_request_duration_seconds_count{route="api"})") == "7");
  double sum = std::strtod(value_of(text, R"(sluice_request_duration_seconds_sum{route="api"})").c_str(), nullptr);
  CHECK(sum == doctest::Approx(0.001 + 0.005 + 0.02 + 0.3 + 2.5 + 7 + 120).epsilon(1e-6));
}

TEST_CASE("the buckets of the exposition never decrease and end at _count") {
  Registry reg(4);
  auto cells = reg.route("r");
  for (int i = 0; i < 400; ++i) cells[i % 4]->duration.observe(0.0001 * i * i);
  std::string text = reg.render({});
  uint64_t last = 0;
  size_t buckets = 0;
  for (const std::string& line : lines_of(text)) {
    if (line.rfind(R"(sluice_request_duration_seconds_bucket{route="r",)", 0) != 0) continue;
    uint64_t n = std::stoull(line.substr(line.rfind(' ') + 1));
    CHECK(n >= last);
    last = n;
    ++buckets;
  }
  CHECK(buckets == 12);
  CHECK(last == 400);
  CHECK(value_of(text, R"(sluice_request_duration_seconds_count{route="r"})") == "400");
}

TEST_CASE("label values are escaped: backslash, double quote, newline") {
  Registry reg(1);
  reg.route("a\"b\\c\nd")[0]->requests[1].add(2);
  reg.server("up\"x", "h\\1:80")[0]->errors[static_cast<size_t>(base::ErrorCode::upstream_reset)].add();
  std::string text = reg.render({});
  check_exposition(text);
  CHECK(value_of(text, R"(sluice_requests_total{route="a\"b\\c\nd",code="2xx"})") == "2");
  CHECK(value_of(text, R"(sluice_upstream_errors_total{upstream="up\"x",server="h\\1:80",error="upstream_reset"})") ==
        "1");
  // The raw newline never reaches the output: every line is a whole sample.
  CHECK(text.find("\nd\"") == std::string::npos);
}

TEST_CASE("the cells of requests without a route are rendered") {
  // Registry::route("") is where WorkerContext counts unrouted requests;
  // SPEC.md ("Metrics") names that series route="(none)". Rendering must
  // not drop or mangle it, whatever the label.
  Registry reg(2);
  reg.route("")[1]->requests[3].add(3);
  std::string text = reg.render({});
  check_exposition(text);
  std::string none = value_of(text, R"x(sluice_requests_total{route="(none)",code="4xx"})x");
  std::string empty = value_of(text, R"(sluice_requests_total{route="",code="4xx"})");
  CHECK((none == "3" || empty == "3"));
}

TEST_CASE("tunnel families: only websocket/socketio routes, or routes that carried tunnels") {
  Registry reg(2);
  auto ws = reg.route("ws");
  auto sio = reg.route("sio");
  auto api = reg.route("api");
  auto old = reg.route("old-ws");  // removed from the config by a reload, still has counts
  ws[0]->tunnels_active.add(1);
  ws[1]->tunnels_active.add(2);
  // A tunnel counted open on one worker and closed on another: per-worker
  // gauges may go below zero, their sum is right.
  ws[0]->tunnels_active.add(-1);
  ws[1]->tunnels_active.add(1);
  old[0]->tunnel_duration.observe(12);
  old[0]->tunnel_closes.add(1000);
  std::string text = reg.render(extras_with_kinds({{"ws", "websocket"}, {"sio", "socketio"}, {"api", "http"}}));
  check_exposition(text);
  CHECK(value_of(text, R"(sluice_tunnels_active{route="ws",kind="websocket"})") == "3");
  CHECK(value_of(text, R"(sluice_tunnels_active{route="sio",kind="socketio"})") == "0");
  CHECK(count_lines_starting(text, R"(sluice_tunnels_active{route="api")") == 0);
  CHECK(count_lines_starting(text, R"(sluice_tunnel_duration_seconds_bucket{route="api")") == 0);
  CHECK(count_lines_starting(text, R"(sluice_tunnel_duration_seconds_count{route="ws"})") == 1);
  CHECK(count_lines_starting(text, R"(sluice_tunnel_duration_seconds_bucket{route="sio",)") == 12);
  // The route gone from the config keeps its series (no kind known any more).
  CHECK(value_of(text, R"(sluice_tunnel_duration_seconds_count{route="old-ws"})") == "1");
  CHECK(value_of(text, R"(sluice_tunnel_duration_seconds_bucket{route="old-ws",le="10"})") == "0");
  CHECK(value_of(text, R"(sluice_tunnel_duration_seconds_bucket{route="old-ws",le="30"})") == "1");
  CHECK(value_of(text, R"(sluice_tunnel_closes_total{route="old-ws",code="1000"})") == "1");
  (void)api;
  (void)sio;
}

TEST_CASE("tunnel durations use the tunnel bounds, up to a day") {
  Registry reg(1);
  auto ws = reg.route("ws");
  ws[0]->tunnel_duration.observe(0.5);
  ws[0]->tunnel_duration.observe(3600);    // exactly on a bound: counted in le="3600"
  ws[0]->tunnel_duration.observe(100000);  // more than a day
  std::string text = reg.render(extras_with_kinds({{"ws", "websocket"}}));
  check_exposition(text);
  CHECK(value_of(text, R"(sluice_tunnel_duration_seconds_bucket{route="ws",le="1"})") == "1");
  CHECK(value_of(text, R"(sluice_tunnel_duration_seconds_bucket{route="ws",le="1800"})") == "1");
  CHECK(value_of(text, R"(sluice_tunnel_duration_seconds_bucket{route="ws",le="3600"})") == "2");
  CHECK(value_of(text, R"(sluice_tunnel_duration_seconds_bucket{route="ws",le="86400"})") == "2");
  CHECK(value_of(text, R"(sluice_tunnel_duration_seconds_bucket{route="ws",le="+Inf"})") == "3");
  CHECK(value_of(text, R"(sluice_tunnel_duration_seconds_count{route="ws"})") == "3");
}

TEST_CASE("close codes: none for a TCP close, summed over workers whatever order they were claimed in") {
  Registry reg(2);
  auto ws = reg.route("ws");
  ws[0]->tunnel_closes.add(1000);
  ws[0]->tunnel_closes.add(0);
  ws[0]->tunnel_closes.add(1000);
  ws[1]->tunnel_closes.add(4001);
  ws[1]->tunnel_closes.add(1000);
  ws[1]->tunnel_closes.add(0);
  ws[1]->tunnel_closes.add(1001);
  std::string text = reg.render(extras_with_kinds({{"ws", "websocket"}}));
  check_exposition(text);
  CHECK(value_of(text, R"(sluice_tunnel_closes_total{route="ws",code="1000"})") == "3");
  CHECK(value_of(text, R"(sluice_tunnel_closes_total{route="ws",code="none"})") == "2");
  CHECK(value_of(text, R"(sluice_tunnel_closes_total{route="ws",code="4001"})") == "1");
  CHECK(value_of(text, R"(sluice_tunnel_closes_total{route="ws",code="1001"})") == "1");
  CHECK(count_lines_starting(text, R"(sluice_tunnel_closes_total{route="ws",code="0"})") == 0);
  CHECK(count_lines_starting(text, R"(sluice_tunnel_closes_total{route="ws",code="other"})") == 0);
  // One line per code, however many workers saw it.
  CHECK(count_lines_starting(text, R"(sluice_tunnel_closes_total{route="ws",)") == 4);
}

TEST_CASE("close codes beyond the cells of a worker count as other") {
  Registry reg(2);
  auto ws = reg.route("ws");
  const size_t cells = metrics::CloseCodes::kCells;
  // Worker 0 sees kCells distinct codes (all claimed), then 3 more distinct
  // codes and a repeat of a claimed one.
  for (size_t i = 0; i < cells; ++i) ws[0]->tunnel_closes.add(static_cast<uint16_t>(4000 + i));
  ws[0]->tunnel_closes.add(3000);
  ws[0]->tunnel_closes.add(3001);
  ws[0]->tunnel_closes.add(3001);
  ws[0]->tunnel_closes.add(4000);
  // Worker 1 has room: 3000 is a code of its own there.
  ws[1]->tunnel_closes.add(3000);
  std::string text = reg.render(extras_with_kinds({{"ws", "websocket"}}));
  check_exposition(text);
  CHECK(value_of(text, R"(sluice_tunnel_closes_total{route="ws",code="4000"})") == "2");
  CHECK(value_of(text, R"(sluice_tunnel_closes_total{route="ws",code="4015"})") == "1");
  CHECK(value_of(text, R"(sluice_tunnel_closes_total{route="ws",code="other"})") == "3");
  CHECK(value_of(text, R"(sluice_tunnel_closes_total{route="ws",code="3000"})") == "1");
  CHECK(count_lines_starting(text, R"(sluice_tunnel_closes_total{route="ws",code="3001"})") == 0);
  // Every close is counted exactly once.
  uint64_t total = 0;
  for (const std::string& line : lines_of(text)) {
    if (line.rfind(R"(sluice_tunnel_closes_total{route="ws",)", 0) == 0) {
      total += std::stoull(line.substr(line.rfind(' ') + 1));
    }
  }
  CHECK(total == cells + 5);
}

TEST_CASE("upstream errors: one line per non-zero code, summed over workers; active summed") {
  Registry reg(3);
  auto a = reg.server("api", "127.0.0.1:9000");
  auto b = reg.server("api", "127.0.0.1:9001");
  CHECK(reg.server("api", "127.0.0.1:9000") == a);
  auto refused = static_cast<size_t>(base::ErrorCode::upstream_refused);
  auto timeout = static_cast<size_t>(base::ErrorCode::read_timeout);
  a[0]->errors[refused].add(2);
  a[2]->errors[refused].add(3);
  a[1]->errors[timeout].add();
  a[0]->active.add(2);
  a[1]->active.add(1);
  a[2]->active.add(-1);
  std::string text = reg.render({});
  check_exposition(text);
  CHECK(value_of(text, R"(sluice_upstream_errors_total{upstream="api",server="127.0.0.1:9000",error="upstream_refused"})") ==
        "5");
  CHECK(value_of(text, R"(sluice_upstream_errors_total{upstream="api",server="127.0.0.1:9000",error="read_timeout"})") ==
        "1");
  CHECK(count_lines_starting(text, "sluice_upstream_errors_total{") == 2);
  CHECK(value_of(text, R"(sluice_upstream_active{upstream="api",server="127.0.0.1:9000"})") == "2");
  CHECK(value_of(text, R"(sluice_upstream_active{upstream="api",server="127.0.0.1:9001"})") == "0");
  // Every error code has a label (its Sluice-Error string).
  for (size_t e = 0; e < base::kErrorCodeCount; ++e) {
    CHECK(!base::error_info(static_cast<base::ErrorCode>(e)).code.empty());
  }
  (void)b;
}

TEST_CASE("TLS handshake counters are summed over workers") {
  Registry reg(2);
  reg.worker(0)->tls_handshakes.add(5);
  reg.worker(0)->tls_resumed.add(2);
  reg.worker(1)->tls_handshakes.add(4);
  reg.worker(1)->tls_resumed.add(1);
  reg.worker(1)->tls_handshake_failures.add();
  reg.worker(0)->tls_handshake_timeouts.add(2);
  reg.worker(1)->tls_plain_http.add(3);
  std::string text = reg.render({});
  check_exposition(text);
  CHECK(value_of(text, R"(sluice_tls_handshakes_total{resumed="false"})") == "6");
  CHECK(value_of(text, R"(sluice_tls_handshakes_total{resumed="true"})") == "3");
  CHECK(value_of(text, R"(sluice_tls_handshake_errors_total{reason="failed"})") == "1");
  CHECK(value_of(text, R"(sluice_tls_handshake_errors_total{reason="timeout"})") == "2");
  CHECK(value_of(text, R"(sluice_tls_handshake_errors_total{reason="plain_http"})") == "3");
}

TEST_CASE("a histogram _sum keeps its precision when it grows large") {
  // The sum is kept in whole microseconds; rendering it must not round it
  // to a few significant digits, or rate(_sum) / rate(_count) (the mean
  // latency) jumps in steps once a busy route has summed a day of time.
  Registry reg(1);
  auto cells = reg.route("api");
  for (int i = 0; i < 1000; ++i) cells[0]->duration.observe(1000.0);  // 1e6 s
  cells[0]->duration.observe(0.25);
  std::string text = reg.render({});
  std::string rendered = value_of(text, R"(sluice_request_duration_seconds_sum{route="api"})");
  double sum = std::strtod(rendered.c_str(), nullptr);
  CHECK_MESSAGE(sum == doctest::Approx(1000000.25).epsilon(1e-9), "rendered as ", rendered);
}
