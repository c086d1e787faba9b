// Route selection micro-benchmark: lookups per second for tables of 10 and
// 2,000 routes (a big ingress), against a linear scan over the same routes
// as the reference for "cost grows with the number of routes".
//   build-release/tools/bench/bench_router [lookups]

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "sluice/config.h"
#include "sluice/router.h"

using namespace sluice;

namespace {

struct Table {
  std::shared_ptr<const config::Config> config;
  std::vector<std::pair<std::string, std::string>> requests;  // host, path
};

// `n` routes over n/20 hosts (plus wildcard and host-less ones), paths two
// or three segments deep; requests hit routes, their sub-paths, and misses.
Table make_table(size_t n, size_t requests, std::mt19937& rng) {
  std::string toml = "[upstream.u]\nservers = [\"127.0.0.1:9000\"]\n";
  std::vector<std::pair<std::string, std::string>> routes;
  size_t hosts = std::max<size_t>(1, n / 20);
  for (size_t i = 0; i < n; ++i) {
    std::string host;
    switch (i % 10) {
      case 0: host = ""; break;
      case 1: host = "*.tenant" + std::to_string(i % hosts) + ".example.com"; break;
      default: host = "svc" + std::to_string(i % hosts) + ".example.com"; break;
    }
    std::string path = "/api/v" + std::to_string(i % 7) + "/resource" + std::to_string(i);
    toml += "[[route]]\nname = \"r" + std::to_string(i) + "\"\n";
    if (!host.empty()) toml += "host = \"" + host + "\"\n";
    toml += (i % 4 == 0 ? "exact" : "prefix") + std::string(" = \"") + path + "\"\nupstream = \"u\"\n";
    routes.emplace_back(host, path);
  }
  auto loaded = config::load_string(toml, "/bench/sluice.toml");
  if (!loaded.ok()) {
    for (auto& d : loaded.diagnostics) std::fprintf(stderr, "%s\n", config::format_diagnostic("bench", d).c_str());
    std::exit(1);
  }
  Table t{loaded.config, {}};
  std::uniform_int_distribution<size_t> pick(0, n - 1);
  for (size_t i = 0; i < requests; ++i) {
    auto [host, path] = routes[pick(rng)];
    if (host.starts_with("*.")) host = "acme" + host.substr(1);
    if (i % 3 == 1) path += "/items/42";
    if (i % 3 == 2) path = "/miss/" + std::to_string(i);
    t.requests.emplace_back(host, path);
  }
  return t;
}

template <typename Fn>
double per_second(const Table& t, size_t lookups, Fn&& select) {
  size_t found = 0;
  auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < lookups; ++i) {
    const auto& [host, path] = t.requests[i % t.requests.size()];
    found += select(host, path) != nullptr;
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (found == 0) std::fprintf(stderr, "no lookup matched: the benchmark is broken\n");
  return lookups / secs;
}

}  // namespace

int main(int argc, char** argv) {
  size_t lookups = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 2'000'000;
  std::mt19937 rng(42);
  std::printf("| routes | RouteTable::select (lookups/s) | linear scan (lookups/s) |\n");
  std::printf("| ---: | ---: | ---: |\n");
  for (size_t n : {10, 2000}) {
    Table t = make_table(n, 4096, rng);
    router::RouteTable table(t.config);
    double fast = per_second(t, lookups, [&](const std::string& h, const std::string& p) {
      return table.select(h, p);
    });
    // The brute-force definition: every route checked, the best kept.
    size_t scan_lookups = std::max<size_t>(lookups / (n / 10 + 1), 1000);
    double slow = per_second(t, scan_lookups, [&](const std::string& h, const std::string& p) {
      const config::Route* best = nullptr;
      for (const config::Route* r : table.ordered())
        if (router::route_matches(*r, h, p)) return r;  // ordered(): most specific first
      return best;
    });
    std::printf("| %zu | %.0f | %.0f |\n", n, fast, slow);
  }
  return 0;
}
