#include <doctest/doctest.h>

#include <set>

#include "sluice/upstream.h"

using namespace sluice::upstream;

TEST_CASE("server tokens are short, stable and differ between servers") {
  std::string a = server_token("10.0.0.7:8000");
  CHECK(a.size() == 6);
  CHECK(a == server_token("10.0.0.7:8000"));  // every replica computes the same
  std::set<std::string> tokens;
  for (int i = 0; i < 200; ++i) tokens.insert(server_token("10.0.0." + std::to_string(i) + ":3000"));
  CHECK(tokens.size() == 200);
  for (char c : a) CHECK(((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7')));
}

TEST_CASE("query parameters are found and replaced without touching other bytes") {
  std::string_view t = "/socket.io/?EIO=4&transport=polling&t=abc&sid=tok123.Xy_z-9";
  CHECK(query_param(t, "sid") == "tok123.Xy_z-9");
  CHECK(query_param(t, "EIO") == "4");
  CHECK_FALSE(query_param(t, "si").has_value());
  CHECK_FALSE(query_param("/socket.io/", "sid").has_value());
  CHECK(replace_query_param(t, "sid", "Xy_z-9") == "/socket.io/?EIO=4&transport=polling&t=abc&sid=Xy_z-9");
  CHECK(replace_query_param("/p?sid=a.b&x=1", "sid", "b") == "/p?sid=b&x=1");
  CHECK(replace_query_param("/p?x=1", "sid", "b") == "/p?x=1");
}

TEST_CASE("token.sid splits only when both parts exist") {
  auto p = split_token_sid("abc123.Tz7aQ-uhDVBPrbw5AAAA");
  REQUIRE(p.has_value());
  CHECK(p->token == "abc123");
  CHECK(p->sid == "Tz7aQ-uhDVBPrbw5AAAA");
  CHECK_FALSE(split_token_sid("Tz7aQ-uhDVBPrbw5AAAA").has_value());
  CHECK_FALSE(split_token_sid(".x").has_value());
  CHECK_FALSE(split_token_sid("x.").has_value());
}

TEST_CASE("Engine.IO v4 handshake: the sid gets the token") {
  std::string body = R"(0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000})";
  auto out = rewrite_handshake(body, "k3x9ab");
  REQUIRE(out.has_value());
  CHECK(*out == R"(0{"sid":"k3x9ab.lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000})");
}

TEST_CASE("Engine.IO v3 handshake: the length prefix grows with the sid") {
  std::string packet = R"(0{"sid":"abc","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":5000})";
  std::string body = std::to_string(packet.size()) + ":" + packet + "2:40";  // Socket.IO 2.x appends its connect
  auto out = rewrite_handshake(body, "tok000");
  REQUIRE(out.has_value());
  std::string expected_packet = R"(0{"sid":"tok000.abc","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":5000})";
  CHECK(*out == std::to_string(expected_packet.size()) + ":" + expected_packet + "2:40");
}

TEST_CASE("bodies that are not handshakes are left alone") {
  CHECK_FALSE(rewrite_handshake("40", "t").has_value());
  CHECK_FALSE(rewrite_handshake("2", "t").has_value());
  CHECK_FALSE(rewrite_handshake("0{\"nosid\":1}", "t").has_value());
  CHECK_FALSE(rewrite_handshake("5:hello", "t").has_value());
  CHECK_FALSE(rewrite_handshake("", "t").has_value());
}

TEST_CASE("cookie values") {
  CHECK(cookie_value("a=1; sluice_affinity=k3x9ab; b=2", "sluice_affinity") == "k3x9ab");
  CHECK(cookie_value("sluice_affinity=x", "sluice_affinity") == "x");
  CHECK_FALSE(cookie_value("xsluice_affinity=1", "sluice_affinity").has_value());
  CHECK_FALSE(cookie_value("", "sluice_affinity").has_value());
}
