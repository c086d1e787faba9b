#pragma once
// Sockets on a libuv loop that the proxy and the admin endpoints share.

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>

namespace sluice::net {

// A listening socket on one loop that stops accepting while the process is
// out of descriptors (or socket memory) instead of spinning in libuv's
// accept loop, and listens again by itself once a descriptor is free
// (listener.cc says why and how). Owned by one object on the loop's thread.
class Listener {
 public:
  // Accepts one connection from `server` (uv_accept).
  using AcceptFn = std::function<void(uv_stream_t* server)>;
  // Writes one line about this listener; false when a rate limit held it back.
  using LogFn = std::function<bool(const std::string& line)>;

  // Takes `fd` (bound) and `spare` (a second descriptor of the same socket,
  // from take_spare) for good; the handle is open, not yet listening. `key`
  // is the owner's name for it (the configured address).
  Listener(uv_loop_t* loop, int fd, int spare, std::string key, int backlog, AcceptFn accept,
           LogFn log);
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  // Only once closed and its close callbacks ran, or with a loop that
  // never ran; the spare is closed either way.
  ~Listener();

  // A second descriptor of `fd` (close-on-exec), or -1 with errno set.
  // Taken when the socket is opened: it is needed exactly when no
  // descriptor is left.
  static int take_spare(int fd);

  const std::string& key() const { return key_; }
  // Returns 0 or a libuv error.
  int listen();
  // Stops for good: the handles close and the spare goes. With `free`, the
  // listener deletes itself once its close callbacks ran (the caller gave
  // up ownership); otherwise its owner frees it after they ran. Idempotent.
  void close(bool free);

 private:
  enum class HandleState { none, open, closing };

  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&tcp_); }
  int open_tcp(int fd);
  void close_tcp();
  void pause(int status);
  void resumed();
  void free_if_done();
  static void on_connection(uv_stream_t* server, int status) noexcept;
  static void on_retry(uv_timer_t* timer) noexcept;
  static void on_closed(uv_handle_t* handle) noexcept;

  uv_loop_t* loop_;
  std::string key_;
  std::string address_;  // as bound, for log lines
  int backlog_;
  AcceptFn accept_;
  LogFn log_;
  uv_tcp_t tcp_;  // after a pause, initialised again once its close callback ran
  HandleState tcp_state_ = HandleState::none;
  uv_timer_t retry_;
  HandleState timer_state_ = HandleState::open;
  int spare_ = -1;
  uint64_t pause_ms_ = 0;  // 0: accepting since the last pause ended
  uint64_t paused_at_ms_ = 0;
  bool pause_logged_ = false;
  bool closed_ = false;
  bool free_when_closed_ = false;
};

}  // namespace sluice::net
