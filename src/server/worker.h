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
  Worker(std::shared_ptr<const proxy::Snapshot> snapshot, std::vector<ListenFd> fds, uint64_t seed,
         std::atomic<uint32_t>& connections, int log_fd);
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  ~Worker();

  void start();
  // Thread-safe: asks the loop to close everything and end.
  void stop();
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

  uv_loop_t loop_;
  uv_async_t stop_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::unique_ptr<proxy::WorkerContext> ctx_;
  std::thread thread_;
};

}  // namespace sluice::server
