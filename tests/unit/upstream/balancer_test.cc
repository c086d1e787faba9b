#include <doctest/doctest.h>

#include <map>
#include <vector>

#include "sluice/upstream.h"

using namespace sluice;
using upstream::Balancer;
using upstream::ServerLoad;

TEST_CASE("round_robin cycles through healthy servers") {
  Balancer b(config::Balance::round_robin, 1);
  std::vector<ServerLoad> s(3);
  std::vector<size_t> picks;
  for (int i = 0; i < 6; ++i) picks.push_back(*b.pick(s, 0));
  CHECK(picks == std::vector<size_t>{0, 1, 2, 0, 1, 2});
  s[1].healthy = false;
  std::map<size_t, int> seen;
  for (int i = 0; i < 6; ++i) seen[*b.pick(s, 0)]++;
  CHECK(seen.count(1) == 0);
  CHECK(seen[0] + seen[2] == 6);
}

TEST_CASE("no eligible server gives nullopt") {
  Balancer b(config::Balance::round_robin, 1);
  std::vector<ServerLoad> s(2);
  s[0].healthy = s[1].healthy = false;
  CHECK_FALSE(b.pick(s, 0).has_value());
  CHECK_FALSE(b.pick(std::vector<ServerLoad>{}, 0).has_value());
}

TEST_CASE("the retry never picks the server that just failed") {
  for (auto policy : {config::Balance::round_robin, config::Balance::least_conn,
                      config::Balance::random, config::Balance::ip_hash}) {
    Balancer b(policy, 7);
    std::vector<ServerLoad> s(3);
    for (int i = 0; i < 50; ++i) {
      auto pick = b.pick(s, static_cast<uint64_t>(i), size_t{1});
      REQUIRE(pick.has_value());
      CHECK(*pick != 1);
    }
    std::vector<ServerLoad> one(1);
    CHECK_FALSE(b.pick(one, 0, size_t{0}).has_value());
  }
}

TEST_CASE("least_conn picks the server with the fewest active requests") {
  Balancer b(config::Balance::least_conn, 1);
  std::vector<ServerLoad> s(3);
  s[0].active = 5;
  s[1].active = 2;
  s[2].active = 9;
  for (int i = 0; i < 5; ++i) CHECK(*b.pick(s, 0) == 1);
  s[1].healthy = false;
  CHECK(*b.pick(s, 0) == 0);
}

TEST_CASE("ip_hash is stable per client and moves on when the server is down") {
  Balancer a(config::Balance::ip_hash, 1), b(config::Balance::ip_hash, 99);
  std::vector<ServerLoad> s(4);
  uint64_t client = upstream::stable_hash("203.0.113.7");
  size_t first = *a.pick(s, client);
  for (int i = 0; i < 10; ++i) CHECK(*a.pick(s, client) == first);
  CHECK(*b.pick(s, client) == first);  // another worker or replica agrees
  s[first].healthy = false;
  size_t moved = *a.pick(s, client);
  CHECK(moved != first);
  s[first].healthy = true;
  CHECK(*a.pick(s, client) == first);
}

TEST_CASE("random spreads over every healthy server with a fixed seed") {
  Balancer b(config::Balance::random, 12345);
  std::vector<ServerLoad> s(4);
  std::map<size_t, int> seen;
  for (int i = 0; i < 400; ++i) seen[*b.pick(s, 0)]++;
  CHECK(seen.size() == 4);
  for (auto [server, n] : seen) CHECK(n > 50);
}

TEST_CASE("stable_hash is FNV-1a") {
  CHECK(upstream::stable_hash("") == 14695981039346656037ull);
  CHECK(upstream::stable_hash("a") == 0xaf63dc4c8601ec8cull);
}
