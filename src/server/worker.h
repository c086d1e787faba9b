#pragma once
// One worker: a thread running its own libuv loop over its own
// SO_REUSEPORT listening sockets. Created and stopped from the main thread;
// everything else happens on the worker's thread.

#include <uv.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sluice/net.h"
#include "sluice/proxy.h"

namespace sluice::server {

// A bound, listening socket handed to a worker, which owns both
// descriptors from then on.
struct ListenFd {
  int fd = -1;
  // A second descriptor of the same socket (F_DUPFD_CLOEXEC), taken when
  // the socket is opened: the worker needs it to listen again after
  // running out of descriptors, when no new one can be had (net::Listener).
  int spare = -1;
  std::string key;  // the listener's address as configured (Snapshot::listener_tls_for)

  void close() const;  // both descriptors, for a socket no worker will take
};

class Worker {
 public:
  Worker(std::shared_ptr<const proxy::Snapshot> snapshot, std::vector<ListenFd> fds, size_t index,
         metrics::WorkerCells* cells, uint64_t seed,
         std::atomic<uint32_t>& connections, int log_fd);
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  ~Worker();

  void start();
  // Thread-safe: asks the loop to close everything and end.
  void stop();
  // Thread-safe: stop accepting and drain (WorkerContext::drain) with
  // tunnels ended over `spread`; `drained` is sent once no client is left.
  void drain(base::Duration spread, uv_async_t* drained);
  // Thread-safe: new connections use `snapshot`; listeners whose address
  // it no longer has close, and `added` (bound sockets) start listening.
  void reload(std::shared_ptr<const proxy::Snapshot> snapshot, std::vector<ListenFd> added);
  // True once the worker drained (thread-safe).
  bool drained() const { return drained_flag_.load(std::memory_order_acquire); }
  void join();

 private:
  void run();
  static void on_stop(uv_async_t* async) noexcept;
  static void on_drain(uv_async_t* async) noexcept;
  static void on_reload(uv_async_t* async) noexcept;
  void add_listener(const ListenFd& l);
  static void on_drained(void* self) noexcept;
  void close_listeners();
  // One line to stderr about a listener, at most one a second per worker
  // (the others are counted into the next). False when it was held back.
  bool log_listener_problem(const std::string& line);

  size_t index_;
  uv_loop_t loop_;
  uv_async_t stop_;
  uv_async_t drain_;
  uv_async_t reload_;
  std::mutex reload_mutex_;  // control plane only: guards the two below
  std::shared_ptr<const proxy::Snapshot> reload_snapshot_;
  std::vector<ListenFd> reload_added_;
  // Set by drain() before it wakes the loop (uv_async_send orders them).
  base::Duration drain_spread_{0};
  uv_async_t* drained_ = nullptr;
  std::atomic<bool> drained_flag_{false};
  std::vector<std::unique_ptr<net::Listener>> listeners_;
  std::unique_ptr<proxy::WorkerContext> ctx_;
  uint64_t listener_log_last_ms_ = 0;  // uv_now of the last line written
  uint64_t listener_log_held_ = 0;     // lines held back since then
  std::thread thread_;
};

}  // namespace sluice::server
