#include "worker.h"

#include <unistd.h>

namespace sluice::server {
namespace {

constexpr int kListenBacklog = 4096;

}  // namespace

void ListenFd::close() const {
  if (fd >= 0) ::close(fd);
  if (spare >= 0) ::close(spare);
}

Worker::Worker(std::shared_ptr<const proxy::Snapshot> snapshot, std::vector<ListenFd> fds,
               size_t index, metrics::WorkerCells* cells, uint64_t seed, std::atomic<uint32_t>& connections, int log_fd)
    : index_(index) {
  uv_loop_init(&loop_);
  // Set up here, before the thread exists, so stop() is safe at any time.
  uv_async_init(&loop_, &stop_, on_stop);
  stop_.data = this;
  uv_async_init(&loop_, &drain_, on_drain);
  drain_.data = this;
  ctx_ = std::make_unique<proxy::WorkerContext>(&loop_, std::move(snapshot), index, cells, seed,
                                                connections, log_fd);
  uv_async_init(&loop_, &reload_, on_reload);
  reload_.data = this;
  for (const ListenFd& l : fds) add_listener(l);
}

void Worker::add_listener(const ListenFd& l) {
  listeners_.push_back(std::make_unique<net::Listener>(
      &loop_, l.fd, l.spare, l.key, kListenBacklog,
      [this, key = l.key](uv_stream_t* server) { ctx_->accept(server, key); },
      [this](const std::string& line) { return log_listener_problem(line); }));
}

void Worker::reload(std::shared_ptr<const proxy::Snapshot> snapshot, std::vector<ListenFd> added) {
  {
    std::lock_guard lock(reload_mutex_);
    reload_snapshot_ = std::move(snapshot);
    // Sockets of an earlier reload the loop has not taken yet stay queued.
    for (ListenFd& l : added) reload_added_.push_back(std::move(l));
  }
  uv_async_send(&reload_);
}

void Worker::on_reload(uv_async_t* async) noexcept {
  auto* self = static_cast<Worker*>(async->data);
  std::shared_ptr<const proxy::Snapshot> snapshot;
  std::vector<ListenFd> added;
  {
    std::lock_guard lock(self->reload_mutex_);
    snapshot = std::move(self->reload_snapshot_);
    added.swap(self->reload_added_);
  }
  if (!snapshot) return;
  if (self->ctx_->draining() || self->ctx_->shutting_down()) {
    // A reload that lost the race with a drain: nothing new may open.
    for (const ListenFd& l : added) l.close();
    return;
  }
  self->ctx_->swap_snapshot(snapshot);
  // Listeners the new config no longer names close (a paused one too);
  // open connections stay.
  std::vector<std::unique_ptr<net::Listener>> kept;
  for (auto& l : self->listeners_) {
    if (snapshot->has_listener(l->key())) {
      kept.push_back(std::move(l));
      continue;
    }
    l.release()->close(true);  // frees itself once its handles closed
  }
  self->listeners_ = std::move(kept);
  for (const ListenFd& l : added) {
    if (!snapshot->has_listener(l.key)) {
      l.close();  // added by a reload that a later one already undid
      continue;
    }
    self->add_listener(l);
    self->listeners_.back()->listen();
  }
}

Worker::~Worker() {
  join();
  ctx_.reset();
  uv_loop_close(&loop_);
}

void Worker::start() {
  thread_ = std::thread([this] { run(); });
}

void Worker::run() {
  for (auto& l : listeners_) l->listen();
  uv_run(&loop_, UV_RUN_DEFAULT);
}

void Worker::stop() { uv_async_send(&stop_); }

void Worker::drain(base::Duration spread, uv_async_t* drained) {
  drain_spread_ = spread;
  drained_ = drained;
  uv_async_send(&drain_);
}

// Listening, paused or closed already: each ends with no handle open and
// its spare closed. They are freed with the worker, after the loop ended.
void Worker::close_listeners() {
  for (auto& l : listeners_) l->close(false);
}

bool Worker::log_listener_problem(const std::string& line) {
  uint64_t now = uv_now(&loop_);
  if (listener_log_last_ms_ != 0 && now - listener_log_last_ms_ < 1000) {
    ++listener_log_held_;
    return false;
  }
  listener_log_last_ms_ = now;
  std::string out = "sluice: worker " + std::to_string(index_) + ": " + line;
  if (listener_log_held_ > 0) out += " (" + std::to_string(listener_log_held_) + " more since the last line)";
  listener_log_held_ = 0;
  out += "\n";
  // One write(2) per line, so lines of several workers never interleave.
  ssize_t ignored = ::write(2, out.data(), out.size());
  (void)ignored;
  return true;
}

void Worker::on_drain(uv_async_t* async) noexcept {
  auto* self = static_cast<Worker*>(async->data);
  // New connections are refused from here on (SO_REUSEPORT: every worker
  // closes its own socket).
  self->close_listeners();
  self->ctx_->drain(self->drain_spread_, on_drained, self);
}

void Worker::on_drained(void* arg) noexcept {
  auto* self = static_cast<Worker*>(arg);
  self->drained_flag_.store(true, std::memory_order_release);
  uv_async_send(self->drained_);
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::on_stop(uv_async_t* async) noexcept {
  auto* self = static_cast<Worker*>(async->data);
  self->close_listeners();
  self->ctx_->shutdown();
  uv_close(reinterpret_cast<uv_handle_t*>(&self->stop_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&self->drain_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&self->reload_), nullptr);
}

}  // namespace sluice::server
