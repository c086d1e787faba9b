#pragma once
// Shared by the libFuzzer targets of tests/fuzz/: the route table they run
// against, deterministic split points, and the one way a target reports a
// broken invariant (print, then abort, so libFuzzer keeps the input).

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/config.h"

namespace sluice::fuzz {

// A broken invariant: libFuzzer records the input as a crash.
[[noreturn]] inline void fail(const char* target, const std::string& what) {
  std::fprintf(stderr, "\n[fuzz_%s] invariant broken: %s\n", target, what.c_str());
  std::fflush(stderr);
  std::abort();
}

// Checks can be named; SLUICE_FUZZ_KNOWN="name,name" turns the named ones
// off, so that a long run can go on past a finding already reported (and
// saved under regressions/) until it is fixed. tools/fuzz never sets it.
inline bool known(std::string_view check) {
  static const std::string list = [] {
    const char* env = std::getenv("SLUICE_FUZZ_KNOWN");
    return "," + std::string(env ? env : "") + ",";
  }();
  return list.find("," + std::string(check) + ",") != std::string::npos;
}

// Printable form of arbitrary bytes for failure messages.
inline std::string show(std::string_view bytes, size_t max = 400) {
  std::string out;
  for (size_t i = 0; i < bytes.size() && i < max; ++i) {
    unsigned char c = static_cast<unsigned char>(bytes[i]);
    if (c == '\\') {
      out += "\\\\";
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (bytes.size() > max) out += "...";
  return out;
}

// Split points that change with the input (FNV-1a of the bytes seeds a
// splitmix64 stream): each piece is 1..`max_piece` bytes long.
inline std::vector<std::string_view> pieces(std::string_view data, uint64_t salt, size_t max_piece) {
  uint64_t h = 1469598103934665603ull ^ salt;
  for (unsigned char c : data) h = (h ^ c) * 1099511628211ull;
  auto next = [&h] {
    uint64_t z = (h += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  };
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < data.size()) {
    size_t n = 1 + static_cast<size_t>(next() % max_piece);
    if (n > data.size() - pos) n = data.size() - pos;
    out.push_back(data.substr(pos, n));
    pos += n;
  }
  return out;
}

// The route table of the request and router targets: every shape of route
// the config allows (exact and prefix, exact/wildcard/no host, strip and
// rewrite, respond and redirect, scheme redirects skipped on TLS, websocket,
// socketio with Engine.IO affinity and allowed_origins, sse, cookie
// affinity, max_body, a fixed host_header), merged from conf/ and
// conf/examples/. No certificate files: it loads anywhere.
inline constexpr std::string_view kFixtureToml = R"toml(
[server]
max_header_size = "2KiB"

[[listener]]
address = "0.0.0.0:8080"

[upstream.app]
servers = ["127.0.0.1:3000"]

[upstream.realtime]
servers = ["127.0.0.1:9000", "127.0.0.1:9001"]
affinity = "engine.io"

[upstream.web]
servers = ["dns:web.default.svc.cluster.local:80"]

[upstream.api]
servers = ["10.0.0.1:8000", "10.0.0.2:8000"]
balance = "least_conn"
host_header = "api.internal"

[upstream.sticky]
servers = ["127.0.0.1:7000", "127.0.0.1:7001", "[::1]:7002"]
affinity = "cookie"

[[route]]
name = "catchall"
prefix = "/"
upstream = "app"

[[route]]
name = "socketio"
prefix = "/socket.io"
upstream = "realtime"
kind = "socketio"
allowed_origins = ["https://app.example.com"]

[[route]]
name = "ws"
prefix = "/ws"
upstream = "app"
kind = "websocket"

[[route]]
name = "events"
prefix = "/events"
upstream = "app"
kind = "sse"

[[route]]
name = "api"
prefix = "/api"
upstream = "api"
strip_prefix = true
max_body = "1KiB"

[[route]]
name = "api-v1"
prefix = "/api/v1"
upstream = "api"
rewrite_prefix = "/v1/"

[[route]]
name = "api-v1-status"
exact = "/api/v1/status"
respond = { status = 200, body = "ok\n", content_type = "text/plain" }

[[route]]
name = "healthz"
exact = "/healthz"
respond = { body = "ok\n" }

[[route]]
name = "sticky"
prefix = "/sticky/a/b"
upstream = "sticky"

[[route]]
name = "www"
host = "www.example.com"
prefix = "/"
upstream = "web"

[[route]]
name = "www-exact-root"
host = "www.example.com"
exact = "/"
upstream = "web"
rewrite_prefix = "/index.html"

[[route]]
name = "api-host"
host = "api.example.com"
prefix = "/"
upstream = "api"

[[route]]
name = "api-host-v2"
host = "api.example.com"
prefix = "/v2"
upstream = "api"
rewrite_prefix = "/"

[[route]]
name = "tenant-chat"
host = "*.example.com"
prefix = "/socket.io"
upstream = "realtime"
kind = "socketio"

[[route]]
name = "tenant-web"
host = "*.example.com"
prefix = "/"
upstream = "web"

[[route]]
name = "tenant-ws-exact"
host = "*.example.com"
exact = "/ws"
upstream = "app"
kind = "websocket"

[[route]]
name = "to-https"
host = "localhost"
prefix = "/"
redirect = { scheme = "https", port = 8443, status = 308 }

[[route]]
name = "local-app"
host = "localhost"
prefix = "/app"
upstream = "app"

[[route]]
name = "moved"
host = "old.example.org"
prefix = "/"
redirect = { location = "https://www.example.com/", status = 301 }

)toml";

// The fixture, loaded once; aborts when it does not load (a config change
// that invalidates it must be noticed, not fuzzed around).
inline std::shared_ptr<const config::Config> fixture_config(const char* target) {
  static std::shared_ptr<const config::Config> config = [target] {
    config::LoadResult r = config::load_string(kFixtureToml, "/nonexistent-sluice-fuzz/sluice.toml");
    if (!r.ok()) {
      std::string why;
      for (const auto& d : r.diagnostics) why += config::format_diagnostic("fixture.toml", d) + "\n";
      fail(target, "the fixture config does not load:\n" + why);
    }
    return r.config;
  }();
  return config;
}

}  // namespace sluice::fuzz
