// The admin listener: accept, read one request head with llhttp, answer it
// with `handle`, close. Runs on the control thread's loop.

#include <llhttp.h>
#include <unistd.h>

#include "sluice/admin.h"
#include "sluice/http.h"

namespace sluice::admin {
namespace {

constexpr size_t kMaxRequest = 16 * 1024;
constexpr uint64_t kRequestTimeoutMs = 10'000;

}  // namespace

// One admin client. Frees itself once both handles are closed.
class Conn {
 public:
  Conn(uv_loop_t* loop, Server& server) : server_(server), state_(server.state_) {
    server_.conns_.insert(this);
    uv_tcp_init(loop, &tcp_);
    uv_timer_init(loop, &timer_);
    tcp_.data = this;
    timer_.data = this;
    llhttp_init(&parser_, HTTP_REQUEST, &kSettings);
    parser_.data = this;
  }

  ~Conn() { server_.conns_.erase(this); }

  void start(uv_stream_t* listener) {
    if (uv_accept(listener, stream()) != 0) {
      close();
      return;
    }
    uv_timer_start(&timer_, on_timeout, kRequestTimeoutMs, 0);
    uv_read_start(stream(), on_alloc, on_read);
  }

 private:
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&tcp_); }

  static void on_alloc(uv_handle_t* handle, size_t, uv_buf_t* buf) noexcept {
    auto* self = static_cast<Conn*>(handle->data);
    *buf = uv_buf_init(self->buf_, sizeof self->buf_);
  }

  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept {
    auto* self = static_cast<Conn*>(stream->data);
    if (nread == 0 || self->answered_) return;
    if (nread < 0) {
      self->close();
      return;
    }
    self->received_ += static_cast<size_t>(nread);
    if (self->received_ > kMaxRequest) {
      self->reply({431, "text/plain; charset=utf-8", "request too large\n"}, false);
      return;
    }
    llhttp_errno_t err = llhttp_execute(&self->parser_, buf->base, static_cast<size_t>(nread));
    if (self->complete_) {
      Response r{500, "text/plain; charset=utf-8", "internal error\n"};
      // No exception may cross the libuv callback (a throw here once aborted
      // the process: tests/fuzz/regressions, explain-utf8).
      try {
        r = handle(self->state_, self->method_, self->url_);
      } catch (const std::exception& e) {
        r.body = std::string("internal error: ") + e.what() + "\n";
      }
      self->reply(r, self->method_ == "HEAD");
    } else if (err != HPE_OK) {
      self->reply({400, "text/plain; charset=utf-8", "malformed request\n"}, false);
    }
  }

  void reply(const Response& r, bool head) {
    answered_ = true;
    uv_read_stop(stream());
    std::string bytes = http::simple_reply(r.status, r.content_type, r.body, {}, true, {}, head);
    out_ = std::move(bytes);
    uv_buf_t buf = uv_buf_init(out_.data(), static_cast<unsigned>(out_.size()));
    write_.data = this;
    if (uv_write(&write_, stream(), &buf, 1, on_written) != 0) close();
  }

  static void on_written(uv_write_t* req, int) noexcept { static_cast<Conn*>(req->data)->close(); }

  static void on_timeout(uv_timer_t* timer) noexcept { static_cast<Conn*>(timer->data)->close(); }

  void close() {
    if (closing_) return;
    server_.conns_.erase(this);  // the server no longer needs to close it
    closing_ = true;
    uv_timer_stop(&timer_);
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_close);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), on_close);
  }

  static void on_close(uv_handle_t* handle) noexcept {
    auto* self = static_cast<Conn*>(handle->data);
    if (++self->closed_ == 2) delete self;
  }

  static int on_method(llhttp_t* p, const char* at, size_t len) noexcept {
    static_cast<Conn*>(p->data)->method_.append(at, len);
    return 0;
  }
  static int on_url(llhttp_t* p, const char* at, size_t len) noexcept {
    static_cast<Conn*>(p->data)->url_.append(at, len);
    return 0;
  }
  static int on_headers_complete(llhttp_t* p) noexcept {
    // Admin requests have no body worth reading: answer at the head's end.
    static_cast<Conn*>(p->data)->complete_ = true;
    return HPE_PAUSED;
  }
  static const llhttp_settings_t kSettings;

 public:
  // Public for Server::stop.
  void close_now() { close(); }

 private:
  Server& server_;
  const State& state_;
  uv_tcp_t tcp_;
  uv_timer_t timer_;
  uv_write_t write_;
  llhttp_t parser_;
  char buf_[4096];
  std::string method_, url_, out_;
  size_t received_ = 0;
  int closed_ = 0;
  bool complete_ = false;
  bool answered_ = false;
  bool closing_ = false;
};

const llhttp_settings_t Conn::kSettings = [] {
  llhttp_settings_t s;
  llhttp_settings_init(&s);
  s.on_method = on_method;
  s.on_url = on_url;
  s.on_headers_complete = on_headers_complete;
  return s;
}();

Server::Server(uv_loop_t* loop, const State& state) : loop_(loop), state_(state) {}

Server::~Server() { stop(); }

int Server::start(int fd, int spare) {
  // The admin loop is the main thread's: an accept loop spinning at EMFILE
  // here would also stop signals and reloads, so it pauses like a worker's.
  listener_ = new net::Listener(
      loop_, fd, spare, "admin", 128,
      [this](uv_stream_t* listener) { (new Conn(loop_, *this))->start(listener); },
      [](const std::string& line) {
        std::string out = "sluice: admin: " + line + "\n";
        ssize_t ignored = ::write(2, out.data(), out.size());
        (void)ignored;
        return true;
      });
  int rc = listener_->listen();
  if (rc != 0) stop();
  return rc;
}

void Server::stop() {
  auto conns = conns_;
  for (Conn* c : conns) c->close_now();
  if (!listener_) return;
  listener_->close(true);  // frees itself once its handles closed
  listener_ = nullptr;
}

}  // namespace sluice::admin
