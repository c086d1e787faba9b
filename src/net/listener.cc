// Why a pause, and why the spare: when accept(2) fails for want of
// descriptors, libuv's accept loop (uv__server_io) calls on_connection with
// the error and calls accept again at once, for as long as a connection
// waits in the queue. Its only remedy, one spare descriptor per loop that
// it closes to accept and drop what is queued, races between threads: once
// another thread takes the freed slot the loop never returns to epoll, and
// the thread spins without closing the connections whose clients left
// (docs/RELIABILITY.md, bug 1). Closing the handle is what ends that loop
// (it checks the descriptor on every pass), but reopening the socket would
// need a descriptor, which is just what is missing. So the handle closes,
// `spare_` keeps the socket and its SO_REUSEPORT accept queue alive, and
// `retry_` listens on the spare again once a dup of it (the next spare)
// succeeds: proof that a descriptor is free again.

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "sluice/net.h"

namespace sluice::net {
namespace {

// How long a listener stops accepting after the process ran out of
// descriptors (or socket memory): doubled while it keeps failing, back to
// the first value once a connection is accepted again.
constexpr uint64_t kAcceptPauseFirstMs = 100;
constexpr uint64_t kAcceptPauseMaxMs = 1000;

// The errors of accept(2) that say "no resources", not "this connection
// failed": accepting again at once fails the same way.
bool out_of_resources(int status) {
  return status == UV_EMFILE || status == UV_ENFILE || status == UV_ENOBUFS || status == UV_ENOMEM;
}

// "127.0.0.1:8080": the bound address, port 0 resolved, for log lines.
std::string bound_address(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  char host[64] = "";
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
  if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    uv_ip6_name(a, host, sizeof host);
    return "[" + std::string(host) + "]:" + std::to_string(ntohs(a->sin6_port));
  }
  auto* a = reinterpret_cast<sockaddr_in*>(&ss);
  uv_ip4_name(a, host, sizeof host);
  return std::string(host) + ":" + std::to_string(ntohs(a->sin_port));
}

}  // namespace

int Listener::take_spare(int fd) { return fcntl(fd, F_DUPFD_CLOEXEC, 0); }

Listener::Listener(uv_loop_t* loop, int fd, int spare, std::string key, int backlog,
                   AcceptFn accept, LogFn log)
    : loop_(loop),
      key_(std::move(key)),
      address_(bound_address(fd)),
      backlog_(backlog),
      accept_(std::move(accept)),
      log_(std::move(log)),
      spare_(spare) {
  uv_timer_init(loop_, &retry_);
  retry_.data = this;
  open_tcp(fd);
}

Listener::~Listener() {
  if (spare_ >= 0) ::close(spare_);
}

int Listener::listen() { return uv_listen(stream(), backlog_, on_connection); }

void Listener::close(bool free) {
  free_when_closed_ = free_when_closed_ || free;
  if (!closed_) {
    closed_ = true;
    if (tcp_state_ == HandleState::open) close_tcp();
    timer_state_ = HandleState::closing;
    uv_close(reinterpret_cast<uv_handle_t*>(&retry_), on_closed);
    if (spare_ >= 0) ::close(spare_);
    spare_ = -1;
  }
  free_if_done();
}

// The handle takes `fd` unless this fails.
int Listener::open_tcp(int fd) {
  uv_tcp_init(loop_, &tcp_);
  tcp_.data = this;
  tcp_state_ = HandleState::open;
  return uv_tcp_open(&tcp_, fd);
}

// uv_close closes the descriptor at once, so a uv__server_io loop that
// called us sees -1 and returns.
void Listener::close_tcp() {
  tcp_state_ = HandleState::closing;
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_closed);
}

void Listener::on_connection(uv_stream_t* server, int status) noexcept {
  auto* self = static_cast<Listener*>(server->data);
  if (status == 0) {
    if (self->pause_ms_ != 0) self->resumed();
    self->accept_(server);
    return;
  }
  // Other errors belong to one connection (accept(2) reports its pending
  // network errors): the next accept may succeed.
  if (out_of_resources(status)) self->pause(status);
}

void Listener::pause(int status) {
  close_tcp();
  bool first = pause_ms_ == 0;
  pause_ms_ = first ? kAcceptPauseFirstMs : std::min(pause_ms_ * 2, kAcceptPauseMaxMs);
  uv_timer_start(&retry_, on_retry, pause_ms_, 0);
  if (!first) return;  // one line per pause, however often it is renewed
  paused_at_ms_ = uv_now(loop_);
  std::string why;
  if (status == UV_EMFILE) {
    rlimit lim{};
    getrlimit(RLIMIT_NOFILE, &lim);
    why = "out of file descriptors (RLIMIT_NOFILE " + std::to_string(lim.rlim_cur) + ")";
  } else if (status == UV_ENFILE) {
    why = "the system is out of file descriptors (ENFILE)";
  } else {
    why = uv_strerror(status);
  }
  pause_logged_ = log_(why + ": not accepting on " + address_ + ", retrying every " +
                       std::to_string(kAcceptPauseFirstMs) + "-" + std::to_string(kAcceptPauseMaxMs) +
                       "ms");
}

// The first connection accepted after a pause.
void Listener::resumed() {
  if (pause_logged_) {
    uint64_t ms = uv_now(loop_) - paused_at_ms_;
    log_("accepting on " + address_ + " again after " + std::to_string(ms) + "ms");
  }
  pause_ms_ = 0;
  pause_logged_ = false;
}

void Listener::on_retry(uv_timer_t* timer) noexcept {
  auto* self = static_cast<Listener*>(timer->data);
  // A timer runs after the close callbacks of the pass that armed it, so
  // the handle is free to be opened again; the check is for safety.
  int next = self->tcp_state_ == HandleState::none ? take_spare(self->spare_) : -1;
  if (next < 0) {  // still no descriptor to spare: stay paused, longer
    self->pause_ms_ = std::min(self->pause_ms_ * 2, kAcceptPauseMaxMs);
    uv_timer_start(&self->retry_, on_retry, self->pause_ms_, 0);
    return;
  }
  int rc = self->open_tcp(self->spare_);
  if (rc == 0) {
    self->spare_ = next;
    // listen(2) on a listening socket only sets its backlog again.
    rc = self->listen();
  } else {
    ::close(next);  // the spare is still ours
  }
  if (rc != 0) self->pause(rc);
}

void Listener::on_closed(uv_handle_t* handle) noexcept {
  auto* self = static_cast<Listener*>(handle->data);
  if (handle == reinterpret_cast<uv_handle_t*>(&self->tcp_)) {
    self->tcp_state_ = HandleState::none;
  } else {
    self->timer_state_ = HandleState::none;
  }
  self->free_if_done();
}

void Listener::free_if_done() {
  if (free_when_closed_ && tcp_state_ == HandleState::none && timer_state_ == HandleState::none) {
    delete this;
  }
}

}  // namespace sluice::net
