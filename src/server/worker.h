#pragma once
// One worker: a thread running its own libuv loop over its own
// SO_REUSEPORT listening sockets. Created and stopped from the main thread;
// everything else happens on the worker's thread.

#include <uv.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "sluice/proxy.h"

namespace sluice::server {

struct ListenFd {
  int fd = -1;
  size_t listener = 0;  // index in the config's listeners
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
  // True once the worker drained (thread-safe).
  bool drained() const { return drained_flag_.load(std::memory_order_acquire); }
  void join();

 private:
  struct Listener {
    uv_tcp_t tcp;
    size_t index = 0;
    Worker* worker = nullptr;
  };

  void run();
  static void on_connection(uv_stream_t* server, int status) noexcept;
  static void on_stop(uv_async_t* async) noexcept;
  static void on_drain(uv_async_t* async) noexcept;
  static void on_drained(void* self) noexcept;
  void close_listeners();

  uv_loop_t loop_;
  uv_async_t stop_;
  uv_async_t drain_;
  // Set by drain() before it wakes the loop (uv_async_send orders them).
  base::Duration drain_spread_{0};
  uv_async_t* drained_ = nullptr;
  std::atomic<bool> drained_flag_{false};
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::unique_ptr<proxy::WorkerContext> ctx_;
  std::thread thread_;
};

}  // namespace sluice::server
