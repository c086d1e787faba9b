#pragma once
// The admin endpoints (SPEC.md, "Admin endpoints"), served on the control
// thread's loop, never on a worker: a scrape or a slow admin client cannot
// delay traffic. `handle` is the whole behaviour, as a function of the state
// it reads; `Server` only moves bytes.

#include <uv.h>

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>

#include "sluice/metrics.h"
#include "sluice/net.h"
#include "sluice/proxy.h"

namespace sluice::admin {

// What the endpoints read. Owned by the control thread.
struct State {
  std::shared_ptr<const proxy::Snapshot> snapshot;  // the config serving new requests
  metrics::Registry* registry = nullptr;
  const std::atomic<uint32_t>* connections = nullptr;
  bool draining = false;
  uint64_t reloads_ok = 0;
  uint64_t reloads_failed = 0;
};

struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

Response handle(const State& state, std::string_view method, std::string_view target);

// "%2Fsocket.io%2F?x" -> "/socket.io/?x"; '+' is a space (form encoding).
std::string url_decode(std::string_view s);

class Conn;

// A minimal HTTP/1.1 server for `handle`: one request per connection,
// answered with Connection: close; a request head must arrive within 10 s
// and fit in 16 KiB.
class Server {
 public:
  Server(uv_loop_t* loop, const State& state);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Serves on an already bound socket; `spare` is a second descriptor of it
  // (net::Listener::take_spare). Takes both. Returns 0 or a libuv error.
  int start(int fd, int spare);
  // Stops accepting and closes open admin connections.
  void stop();

 private:
  friend class Conn;

  uv_loop_t* loop_;
  const State& state_;
  net::Listener* listener_ = nullptr;  // frees itself after close(true)
  std::unordered_set<Conn*> conns_;
};

}  // namespace sluice::admin
