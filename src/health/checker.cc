// Active health checks: one short-lived probe connection per check.

#include <charconv>
#include <optional>

#include "sluice/health.h"

namespace sluice::health {

class Checker::Probe {
 public:
  Probe(Checker& owner, Target target) : owner_(&owner), target_(std::move(target)) {
    uv_tcp_init(owner.loop_, &tcp_);
    uv_timer_init(owner.loop_, &timer_);
    tcp_.data = timer_.data = connect_.data = this;
  }

  void start() {
    uv_timer_start(&timer_, on_timeout, static_cast<uint64_t>(target_.check.timeout.count()), 0);
    int rc = uv_tcp_connect(&connect_, &tcp_, reinterpret_cast<const sockaddr*>(&target_.addr),
                            on_connect);
    if (rc == UV_EMFILE || rc == UV_ENFILE || rc == UV_ENOBUFS || rc == UV_ENOMEM ||
        rc == UV_EADDRNOTAVAIL) {
      // sluice's own shortage (no socket, no local port): no verdict on the
      // server, which a failed check would mark down for every worker.
      done(std::nullopt, uv_strerror(rc));
    } else if (rc != 0) {
      done(false, std::string("cannot connect: ") + uv_strerror(rc));
    }
  }

  // The checker is going away: close without reporting.
  void cancel() {
    owner_ = nullptr;
    close();
  }

 private:
  static void on_connect(uv_connect_t* req, int status) noexcept {
    auto* self = static_cast<Probe*>(req->data);
    if (self->closing_) return;
    if (status != 0) {
      self->done(false, status == UV_ECONNREFUSED ? "connection refused" : uv_strerror(status));
      return;
    }
    std::string request = "GET " + self->target_.check.path + " HTTP/1.1\r\nHost: " +
                          self->target_.address +
                          "\r\nUser-Agent: sluice-health-check\r\nConnection: close\r\n\r\n";
    if (self->target_.tls) {
      self->tls_ = tls::Session::connect(self->target_.tls, self->target_.host);
      std::string wire;
      if (!self->tls_ || self->tls_->start(wire) == tls::Session::Status::failed) {
        self->done(false, "TLS: cannot start");
        return;
      }
      self->tls_->send(request, wire);  // held until the handshake ends
      request = std::move(wire);
    }
    self->write(std::move(request));
    uv_read_start(reinterpret_cast<uv_stream_t*>(&self->tcp_), on_alloc, on_read);
  }

  void write(std::string data) {
    if (data.empty()) return;
    struct Req {
      uv_write_t req;
      std::string data;
    };
    auto* w = new Req{{}, std::move(data)};
    uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
    if (uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&tcp_), &buf, 1,
                 [](uv_write_t* r, int) { delete reinterpret_cast<Req*>(r); }) != 0) {
      delete w;
    }
  }

  static void on_alloc(uv_handle_t* handle, size_t, uv_buf_t* buf) noexcept {
    auto* self = static_cast<Probe*>(handle->data);
    *buf = uv_buf_init(self->buf_, sizeof self->buf_);
  }

  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept {
    auto* self = static_cast<Probe*>(stream->data);
    if (nread == 0 || self->closing_) return;
    if (nread < 0) {
      self->done(false, "closed before a status line");
      return;
    }
    if (self->tls_) {
      std::string wire;
      auto status = self->tls_->receive(buf->base, static_cast<size_t>(nread), self->received_, wire);
      self->write(std::move(wire));
      if (status == tls::Session::Status::failed) {
        self->done(false, "TLS: " + self->tls_->error());
        return;
      }
    } else {
      self->received_.append(buf->base, static_cast<size_t>(nread));
    }
    self->parse_status();
  }

  void parse_status() {
    size_t eol = received_.find("\r\n");
    if (eol == std::string::npos) {
      if (received_.size() > 1024) done(false, "no status line");
      return;
    }
    // "HTTP/1.1 200 OK"
    int status = 0;
    if (received_.starts_with("HTTP/1.") && eol >= 12) {
      std::from_chars(received_.data() + 9, received_.data() + 12, status);
    }
    if (status >= 200 && status < 400) {
      done(true, "");
    } else {
      done(false, status ? "status " + std::to_string(status) : "not an HTTP response");
    }
  }

  static void on_timeout(uv_timer_t* timer) noexcept {
    auto* self = static_cast<Probe*>(timer->data);
    self->done(false, "no answer within " + base::format_duration(self->target_.check.timeout));
  }

  // `ok` nullopt: the check could not be made, which says nothing of the server.
  void done(std::optional<bool> ok, const std::string& cause) {
    if (closing_) return;
    if (owner_) owner_->finished(this, target_, ok, cause);
    close();
  }

  void close() {
    if (closing_) return;
    closing_ = true;
    uv_timer_stop(&timer_);
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_close);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), on_close);
  }

  static void on_close(uv_handle_t* handle) noexcept {
    auto* self = static_cast<Probe*>(handle->data);
    if (++self->closed_ == 2) delete self;
  }

  Checker* owner_;
  Target target_;
  uv_tcp_t tcp_;
  uv_timer_t timer_;
  uv_connect_t connect_;
  std::unique_ptr<tls::Session> tls_;
  std::string received_;
  char buf_[4096];
  int closed_ = 0;
  bool closing_ = false;
};

Checker::Checker(uv_loop_t* loop) : loop_(loop), timer_(new uv_timer_t) {
  uv_timer_init(loop, timer_);
  timer_->data = this;
  uv_timer_start(timer_, on_tick, 100, 100);
}

Checker::~Checker() { stop(); }

void Checker::stop() {
  if (stopped_) return;
  stopped_ = true;
  for (Probe* p : std::vector<Probe*>(probes_)) p->cancel();
  probes_.clear();
  uv_close(reinterpret_cast<uv_handle_t*>(timer_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
}

void Checker::set_targets(std::vector<Target> targets) {
  std::vector<Scheduled> next;
  int64_t now = now_ms();
  for (Target& t : targets) {
    Scheduled s{std::move(t), now, false};
    for (const Scheduled& old : targets_) {
      if (old.target.health == s.target.health) {
        s.next_ms = old.next_ms;
        s.in_flight = old.in_flight;
      }
    }
    next.push_back(std::move(s));
  }
  targets_ = std::move(next);
}

void Checker::on_tick(uv_timer_t* timer) noexcept {
  auto* self = static_cast<Checker*>(timer->data);
  int64_t now = now_ms();
  for (Scheduled& s : self->targets_) {
    if (s.in_flight || now < s.next_ms) continue;
    s.in_flight = true;
    auto* probe = new Probe(*self, s.target);
    self->probes_.push_back(probe);
    probe->start();
  }
}

void Checker::finished(Probe* probe, const Target& target, std::optional<bool> ok,
                       const std::string& cause) {
  std::erase(probes_, probe);
  const config::HealthCheck& c = target.check;
  if (ok) {
    target.health->check_result(*ok, c.fails, c.passes,
                                "GET " + c.path + " on " + target.address + ": " + cause);
  }
  for (Scheduled& s : targets_) {
    if (s.target.health != target.health) continue;
    s.in_flight = false;
    s.next_ms = now_ms() + c.interval.count();
  }
}

}  // namespace sluice::health
