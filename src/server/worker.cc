#include "worker.h"

#include <unistd.h>

namespace sluice::server {

Worker::Worker(std::shared_ptr<const proxy::Snapshot> snapshot, std::vector<ListenFd> fds,
               size_t index, metrics::WorkerCells* cells, uint64_t seed, std::atomic<uint32_t>& connections, int log_fd) {
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
  auto listener = std::make_unique<Listener>();
  listener->key = l.key;
  listener->worker = this;
  uv_tcp_init(&loop_, &listener->tcp);
  listener->tcp.data = listener.get();
  uv_tcp_open(&listener->tcp, l.fd);
  listeners_.push_back(std::move(listener));
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
    for (const ListenFd& l : added) ::close(l.fd);
    return;
  }
  self->ctx_->swap_snapshot(snapshot);
  // Listeners the new config no longer names close; open connections stay.
  std::vector<std::unique_ptr<Listener>> kept;
  for (auto& l : self->listeners_) {
    if (snapshot->has_listener(l->key)) {
      kept.push_back(std::move(l));
      continue;
    }
    Listener* closing = l.release();  // freed by its close callback
    uv_close(reinterpret_cast<uv_handle_t*>(&closing->tcp),
             [](uv_handle_t* h) { delete static_cast<Listener*>(h->data); });
  }
  self->listeners_ = std::move(kept);
  for (const ListenFd& l : added) {
    if (!snapshot->has_listener(l.key)) {
      ::close(l.fd);  // added by a reload that a later one already undid
      continue;
    }
    self->add_listener(l);
    uv_listen(reinterpret_cast<uv_stream_t*>(&self->listeners_.back()->tcp), 4096, on_connection);
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
  for (auto& l : listeners_) {
    uv_listen(reinterpret_cast<uv_stream_t*>(&l->tcp), 4096, on_connection);
  }
  uv_run(&loop_, UV_RUN_DEFAULT);
}

void Worker::stop() { uv_async_send(&stop_); }

void Worker::drain(base::Duration spread, uv_async_t* drained) {
  drain_spread_ = spread;
  drained_ = drained;
  uv_async_send(&drain_);
}

void Worker::close_listeners() {
  for (auto& l : listeners_) {
    auto* h = reinterpret_cast<uv_handle_t*>(&l->tcp);
    if (!uv_is_closing(h)) uv_close(h, nullptr);
  }
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

void Worker::on_connection(uv_stream_t* server, int status) noexcept {
  auto* listener = static_cast<Listener*>(server->data);
  if (status < 0) return;  // EMFILE and friends: the next accept may succeed
  listener->worker->ctx_->accept(server, listener->key);
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
