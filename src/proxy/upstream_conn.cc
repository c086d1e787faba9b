// One TCP connection to an upstream server: connect, send the request, parse
// the response with llhttp and hand it to the owning DownstreamConn as it
// arrives. Keep-alive is earned: only a response that was read to its end,
// with nothing after it, on a connection that allows it, goes back to the pool.

#include <cstring>

#include "connections.h"

namespace sluice::proxy {
namespace {

UpstreamConn* from_parser(llhttp_t* p) { return static_cast<UpstreamConn*>(p->data); }


}  // namespace

const llhttp_settings_t UpstreamConn::kSettings = [] {
  llhttp_settings_t s;
  llhttp_settings_init(&s);
  s.on_status = on_status;
  s.on_header_field = on_header_field;
  s.on_header_value = on_header_value;
  s.on_headers_complete = on_headers_complete;
  s.on_body = on_body;
  s.on_message_complete = on_message_complete;
  return s;
}();

UpstreamConn::UpstreamConn(WorkerContext& ctx, std::shared_ptr<Generation> gen, size_t upstream,
                           size_t slot)
    : ctx_(ctx),
      gen_(std::move(gen)),
      upstream_(upstream),
      slot_(slot),
      cells_(gen_->snapshot->server_cells[upstream][slot][ctx.index()]) {
  uv_tcp_init(ctx.loop(), &tcp_);
  uv_timer_init(ctx.loop(), &timer_);
  tcp_.data = this;
  timer_.data = this;
  connect_req_.data = this;
  llhttp_init(&parser_, HTTP_RESPONSE, &kSettings);
  parser_.data = this;
  ctx_.upstream_conns.insert(this);
}

UpstreamConn::~UpstreamConn() { ctx_.upstream_conns.erase(this); }

UpstreamConn* UpstreamConn::connect(WorkerContext& ctx, std::shared_ptr<Generation> gen,
                                    size_t upstream, size_t slot) {
  auto* conn = new UpstreamConn(ctx, std::move(gen), upstream, slot);
  const Snapshot::Address& addr = *conn->gen_->upstreams[upstream].servers[slot].address;
  const config::Upstream& cfg = *conn->gen_->upstreams[upstream].config;
  conn->timer_role_ = TimerRole::connect;
  uv_timer_start(&conn->timer_, on_timer, static_cast<uint64_t>(cfg.connect_timeout.count()), 0);
  int rc = uv_tcp_connect(&conn->connect_req_, &conn->tcp_,
                          reinterpret_cast<const sockaddr*>(&addr.addr), on_connect);
  if (rc != 0) {
    // Reported from the loop, not inline: the caller is still setting up.
    conn->timer_role_ = TimerRole::connect;
    uv_timer_start(&conn->timer_, on_timer, 0, 0);
    conn->connect_req_.data = nullptr;
    conn->connect_error_ = rc;
  }
  return conn;
}

const std::string& UpstreamConn::address() const {
  return gen_->upstreams[upstream_].servers[slot_].address->text;
}

size_t UpstreamConn::write_queue() const {
  return uv_stream_get_write_queue_size(reinterpret_cast<const uv_stream_t*>(&tcp_));
}

void UpstreamConn::attach(DownstreamConn* owner, bool head_request, base::Duration read_timeout) {
  owner_ = owner;
  head_request_ = head_request;
  read_timeout_ = read_timeout;
  response_.clear();
  head_bytes_ = 0;
  bad_head_ = {};
  response_started_ = response_done_ = request_sent_ = false;
  llhttp_init(&parser_, HTTP_RESPONSE, &kSettings);
  parser_.data = this;
  if (in_pool_) {
    auto& idle = gen_->upstreams[upstream_].servers[slot_].idle;
    std::erase(idle, this);
    in_pool_ = false;
    reused_ = true;
    uv_timer_stop(&timer_);
    timer_role_ = TimerRole::none;
  }
  gen_->upstreams[upstream_].loads[slot_].active++;
  cells_->active.add(1);
}

void UpstreamConn::on_connect(uv_connect_t* req, int status) noexcept {
  auto* self = static_cast<UpstreamConn*>(req->data);
  if (!self || self->closing_) return;
  uv_timer_stop(&self->timer_);
  self->timer_role_ = TimerRole::none;
  if (status != 0) {
    base::ErrorCode code = base::ErrorCode::upstream_refused;
    self->fail(code, status == UV_ECONNREFUSED ? "connection refused" : uv_strerror(status));
    return;
  }
  uv_tcp_nodelay(&self->tcp_, 1);
  if (const auto& tls = self->gen_->snapshot->upstream_tls[self->upstream_]) {
    self->start_tls(tls);
    return;
  }
  self->connected_ = true;
  self->resume_reading();
  if (self->owner_) self->owner_->on_upstream_connected();
}

void UpstreamConn::start_tls(std::shared_ptr<const tls::ClientContext> tls) {
  const UpstreamState& up = gen_->upstreams[upstream_];
  const Snapshot::Address& addr = *up.servers[slot_].address;
  // The name as written (a dns: name, or an IP) is what the certificate must show.
  tls_ = tls::Session::connect(std::move(tls), up.config->servers[addr.server].address.host);
  if (!tls_) {
    fail(base::ErrorCode::upstream_tls, "cannot start TLS");
    return;
  }
  handshaking_ = true;
  // The handshake counts against connect_timeout: the connection is not
  // usable before it ends.
  timer_role_ = TimerRole::connect;
  uv_timer_start(&timer_, on_timer, static_cast<uint64_t>(up.config->connect_timeout.count()), 0);
  std::string wire;
  if (tls_->start(wire) == tls::Session::Status::failed) {
    fail(base::ErrorCode::upstream_tls, tls_->error());
    return;
  }
  send_wire(std::move(wire));
  resume_reading();
}

void UpstreamConn::receive_tls(const char* data, size_t len) {
  std::string& plain = ctx_.tls_plain();
  plain.clear();
  std::string wire;
  tls::Session::Status status = tls_->receive(data, len, plain, wire);
  send_wire(std::move(wire));
  if (closing_) return;
  if (status == tls::Session::Status::failed) {
    // The reason phrase already says the handshake failed.
    fail(base::ErrorCode::upstream_tls, (handshaking_ ? "" : "TLS error: ") + tls_->error());
    return;
  }
  if (handshaking_ && tls_->handshake_done()) {
    handshaking_ = false;
    connected_ = true;
    uv_timer_stop(&timer_);
    timer_role_ = TimerRole::none;
    if (owner_) owner_->on_upstream_connected();
    if (closing_) return;
  }
  // Session tickets and other records without data leave a pooled
  // connection pooled; only bytes or an end make it unusable.
  if (!plain.empty()) on_input(plain.data(), static_cast<ssize_t>(plain.size()));
  if (status == tls::Session::Status::closed && !closing_) on_input(nullptr, UV_EOF);
}

void UpstreamConn::send(std::string data) {
  if (closing_ || data.empty()) return;
  if (tls_) {
    std::string wire;
    wire.reserve(data.size() + data.size() / 256 + 64);
    if (tls_->send(data, wire) == tls::Session::Status::failed) {
      fail(base::ErrorCode::upstream_tls, "TLS error: " + tls_->error());
      return;
    }
    data = std::move(wire);
  }
  send_wire(std::move(data));
}

void UpstreamConn::send_wire(std::string data) {
  if (closing_ || data.empty()) return;
  int rc = write_or_queue(reinterpret_cast<uv_stream_t*>(&tcp_), std::move(data), this, on_write,
                          writes_in_flight_);
  if (rc != 0) fail(base::ErrorCode::upstream_reset, uv_strerror(rc));
}

int write_or_queue(uv_stream_t* stream, std::string data, void* owner, uv_write_cb cb,
                   size_t& in_flight) {
  if (in_flight == 0) {
    uv_buf_t buf = uv_buf_init(data.data(), static_cast<unsigned>(data.size()));
    int n = uv_try_write(stream, &buf, 1);
    if (n == static_cast<int>(data.size())) return 0;
    if (n > 0) {
      data.erase(0, static_cast<size_t>(n));
    } else if (n != UV_EAGAIN) {
      return n;
    }
  }
  auto* w = new WriteReq;
  w->data = std::move(data);
  w->buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  w->req.data = owner;
  int rc = uv_write(&w->req, stream, &w->buf, 1, cb);
  if (rc != 0) {
    delete w;
    return rc;
  }
  ++in_flight;
  return 0;
}

void UpstreamConn::on_write(uv_write_t* req, int status) noexcept {
  auto* w = reinterpret_cast<WriteReq*>(req);
  auto* self = static_cast<UpstreamConn*>(req->data);
  delete w;
  --self->writes_in_flight_;
  if (self->closing_) return;
  if (status != 0) {
    self->fail(base::ErrorCode::upstream_reset, uv_strerror(status));
    return;
  }
  if (self->owner_ && self->write_queue() < kLowWater) self->owner_->on_upstream_drained();
}

void UpstreamConn::request_sent() {
  request_sent_ = true;
  if (!response_done_) arm_read_timer();
}

void UpstreamConn::arm_read_timer() {
  if (closing_ || paused_) return;
  timer_role_ = TimerRole::read;
  uv_timer_start(&timer_, on_timer, static_cast<uint64_t>(read_timeout_.count()), 0);
}

void UpstreamConn::pause_reading() {
  if (paused_ || closing_) return;
  paused_ = true;
  if (reading_) uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
  reading_ = false;
  // Waiting on the client is not the upstream's delay.
  if (timer_role_ == TimerRole::read) uv_timer_stop(&timer_);
}

void UpstreamConn::resume_reading() {
  paused_ = false;
  if (closing_ || reading_ || !(connected_ || handshaking_)) return;
  if (uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), on_alloc, on_read) == 0) reading_ = true;
  if (timer_role_ == TimerRole::read && request_sent_ && !response_done_) arm_read_timer();
}

void UpstreamConn::on_alloc(uv_handle_t* handle, size_t, uv_buf_t* buf) noexcept {
  auto* self = static_cast<UpstreamConn*>(handle->data);
  // One buffer per worker: every read is consumed before the next alloc.
  *buf = uv_buf_init(self->ctx_.read_buffer(), kReadBufferSize);
}

void UpstreamConn::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept {
  auto* self = static_cast<UpstreamConn*>(stream->data);
  if (nread == 0 || self->closing_) return;  // EAGAIN, not EOF
  if (self->tls_ && nread > 0) {
    self->receive_tls(buf->base, static_cast<size_t>(nread));
    return;
  }
  if (self->handshaking_) {
    self->fail(base::ErrorCode::upstream_tls, "the server closed the connection mid-handshake");
    return;
  }
  self->on_input(buf->base, nread);
}

void UpstreamConn::on_input(const char* data, ssize_t nread) {
  if (in_pool_) {
    // An idle connection that speaks or ends is no longer reusable.
    close();
    return;
  }
  if (tunnel_) {
    // Raw bytes both ways; the owner decides what an end means.
    DownstreamConn* owner = owner_;
    if (nread < 0) {
      std::string cause = nread == UV_EOF ? "closed" : uv_strerror(static_cast<int>(nread));
      abort();
      if (owner) owner->on_tunnel_upstream_closed(cause);
      return;
    }
    if (owner) owner->on_tunnel_upstream_data({data, static_cast<size_t>(nread)});
    return;
  }
  if (nread < 0) {
    if (nread == UV_EOF && response_started_ && !response_done_) {
      // Read-until-close bodies end here; anything else is a truncated body.
      llhttp_finish(&parser_);
      if (response_done_ && owner_) {
        DownstreamConn* owner = owner_;
        owner->flush_to_client();
        owner->on_response_complete(false);  // releases (closes) this connection
        return;
      }
    }
    if (response_done_) {
      close();
      return;
    }
    fail(base::ErrorCode::upstream_reset,
               nread == UV_EOF ? "closed the connection before the response was complete"
                               : uv_strerror(static_cast<int>(nread)));
    return;
  }
  if (timer_role_ == TimerRole::read && !response_done_) arm_read_timer();
  handle_input(data, static_cast<size_t>(nread));
}

void UpstreamConn::handle_input(const char* data, size_t len) {
  if (owner_ && len > 0) owner_->on_upstream_spoke();
  if (response_done_) {
    // Bytes after a complete response: the connection's framing is in doubt.
    close();
    return;
  }
  llhttp_errno_t err = llhttp_execute(&parser_, data, len);
  DownstreamConn* owner = owner_;
  if (err == HPE_PAUSED_UPGRADE && response_.status == 101 && owner) {
    // 101 Switching Protocols: from here on, bytes, not HTTP.
    const char* stop = llhttp_get_error_pos(&parser_);
    tunnel_ = true;
    uv_timer_stop(&timer_);
    timer_role_ = TimerRole::none;
    owner->flush_to_client();
    owner->start_tunnel({stop, static_cast<size_t>(data + len - stop)});
    return;
  }
  if (err == HPE_PAUSED) {
    // on_message_complete paused: the response is whole. Trailing bytes
    // make the connection unfit for reuse.
    const char* stop = llhttp_get_error_pos(&parser_);
    bool trailing = stop != data + len;
    if (owner) {
      owner->flush_to_client();
      owner->on_response_complete(!trailing && llhttp_should_keep_alive(&parser_) != 0);
    } else {
      close();
    }
    return;
  }
  if (err != HPE_OK) {
    if (response_started_ && owner) owner->flush_to_client();
    std::string cause = head_bytes_ > kMaxResponseHead ? "response head larger than 64 KiB"
                        : !bad_head_.empty()            ? std::string(bad_head_)
                                                        : llhttp_get_error_reason(&parser_);
    fail(base::ErrorCode::upstream_bad_response, std::move(cause));
    return;
  }
  if (owner) owner->flush_to_client();
}

// A response head is held whole before it is relayed: cap it, as the
// request head is capped, so an endless head cannot grow memory.
bool UpstreamConn::head_fits(size_t len) {
  head_bytes_ += len;
  return head_bytes_ <= kMaxResponseHead;
}

int UpstreamConn::on_status(llhttp_t* p, const char* at, size_t len) noexcept {
  UpstreamConn* self = from_parser(p);
  if (!self->head_fits(len)) return -1;
  self->response_.append_reason({at, len});
  return 0;
}

// After the head, the header callbacks carry the trailer fields of a
// chunked body: counted against the head's cap, never stored, so they can
// neither grow memory nor reach the client as header fields (RFC 9110
// 6.5.1: trailers are not merged into the head).
int UpstreamConn::on_header_field(llhttp_t* p, const char* at, size_t len) noexcept {
  UpstreamConn* self = from_parser(p);
  // A trailer line ":" has an empty name and value: its ':' and CRLF count.
  if (!self->head_fits(self->response_started_ ? len + 2 : len)) return -1;
  if (!self->response_started_) self->response_.append_field({at, len});
  return 0;
}

int UpstreamConn::on_header_value(llhttp_t* p, const char* at, size_t len) noexcept {
  UpstreamConn* self = from_parser(p);
  if (!self->head_fits(self->response_started_ ? len + 2 : len)) return -1;
  if (!self->response_started_) self->response_.append_value({at, len});
  return 0;
}

int UpstreamConn::on_headers_complete(llhttp_t* p) noexcept {
  UpstreamConn* self = from_parser(p);
  self->response_.status = llhttp_get_status_code(p);
  self->response_.http_major = llhttp_get_http_major(p);
  self->response_.http_minor = llhttp_get_http_minor(p);
  if (self->response_.status >= 100 && self->response_.status < 200 &&
      self->response_.status != 101) {
    // Interim responses (100 Continue, 103 Early Hints) are not relayed:
    // sluice answers Expect itself. The final response follows.
    self->response_.clear();
    self->head_bytes_ = 0;
    return 1;  // an interim response has no body, whatever it declares
  }
  if (std::optional<std::string_view> bad = http::check_response_head(self->response_, llhttp_get_upgrade(p) != 0)) {
    self->bad_head_ = *bad;
    return -1;
  }
  self->response_started_ = true;
  if (!self->owner_) return -1;
  bool chunked = (p->flags & F_CHUNKED) != 0;
  bool has_length = (p->flags & F_CONTENT_LENGTH) != 0;
  uint64_t length = has_length ? p->content_length : UINT64_MAX;
  int rc = self->owner_->on_response_head(self->response_, length, chunked,
                                          llhttp_should_keep_alive(p) != 0);
  if (rc != 0) return rc;  // refused (an unsolicited 101): never skip into a tunnel
  // RFC 9110 6.4.1: no body after HEAD, 204 or 304, whatever the headers
  // declare (llhttp would read one): the bytes after the head are the next
  // response, or garbage.
  int status = self->response_.status;
  return self->head_request_ || status == 204 || status == 304 ? 1 : 0;
}

int UpstreamConn::on_body(llhttp_t* p, const char* at, size_t len) noexcept {
  UpstreamConn* self = from_parser(p);
  if (self->owner_) self->owner_->on_response_body({at, len});
  return 0;
}

int UpstreamConn::on_message_complete(llhttp_t* p) noexcept {
  UpstreamConn* self = from_parser(p);
  if (!self->response_started_) return 0;  // end of an interim response
  // After a 101 llhttp stops by itself with HPE_PAUSED_UPGRADE.
  if (self->response_.status == 101) return 0;
  self->response_done_ = true;
  if (self->timer_role_ == TimerRole::read) {
    uv_timer_stop(&self->timer_);
    self->timer_role_ = TimerRole::none;
  }
  return HPE_PAUSED;
}

void UpstreamConn::on_timer(uv_timer_t* timer) noexcept {
  auto* self = static_cast<UpstreamConn*>(timer->data);
  if (self->closing_) return;
  TimerRole role = self->timer_role_;
  self->timer_role_ = TimerRole::none;
  switch (role) {
    case TimerRole::connect: {
      const config::Upstream& cfg = *self->gen_->upstreams[self->upstream_].config;
      if (self->handshaking_) {
        self->fail(base::ErrorCode::connect_timeout,
                   "TLS handshake not complete within connect_timeout " +
                       base::format_duration(cfg.connect_timeout));
      } else if (self->connect_req_.data == nullptr) {
        int rc = self->connect_error_;
        if (rc == UV_EMFILE || rc == UV_ENFILE || rc == UV_ENOBUFS || rc == UV_ENOMEM ||
            rc == UV_EADDRNOTAVAIL) {
          // sluice's own shortage (no socket, or no local port left): not
          // the server's fault, so neither its errors nor its health.
          self->fail(base::ErrorCode::over_capacity,
                     std::string(rc == UV_EADDRNOTAVAIL ? "no local port" : "no socket") +
                         " for the upstream connection: " + uv_strerror(rc));
        } else {
          self->fail(base::ErrorCode::upstream_refused, std::string("cannot connect: ") + uv_strerror(rc));
        }
      } else {
        self->fail(base::ErrorCode::connect_timeout,
                   "connect_timeout " + base::format_duration(cfg.connect_timeout) + " expired");
      }
      break;
    }
    case TimerRole::read:
      self->fail(base::ErrorCode::read_timeout,
                 "read_timeout " + base::format_duration(self->read_timeout_) + " expired");
      break;
    case TimerRole::idle: self->close(); break;
    case TimerRole::none: break;
  }
}

void UpstreamConn::fail(base::ErrorCode code, std::string cause) {
  DownstreamConn* owner = owner_;
  detach_owner();
  close();
  if (owner) owner->on_upstream_error(code, std::move(cause));
}

void UpstreamConn::release(bool reusable) {
  UpstreamState& up = gen_->upstreams[upstream_];
  detach_owner();
  if (!reusable || tunnel_ || closing_ || ctx_.shutting_down() || gen_->retired ||
      up.config->keepalive == 0) {
    close();
    return;
  }
  start_idle();
  // The idle cap is enforced once per loop iteration, not per release: a
  // connection freed and wanted again within the same batch of events is
  // reused instead of closed and reconnected.
  if (up.servers[slot_].idle.size() > up.config->keepalive) ctx_.schedule_pool_trim(upstream_, slot_);
}

void UpstreamConn::start_idle() {
  in_pool_ = true;
  gen_->upstreams[upstream_].servers[slot_].idle.push_back(this);
  paused_ = false;
  resume_reading();  // to notice the server closing it
  timer_role_ = TimerRole::idle;
  uv_timer_start(&timer_, on_timer,
                 std::chrono::duration_cast<std::chrono::milliseconds>(kUpstreamIdleTimeout).count(), 0);
}

void UpstreamConn::detach_owner() {
  if (!owner_) return;
  gen_->upstreams[upstream_].loads[slot_].active--;
  cells_->active.add(-1);
  owner_ = nullptr;
}

void UpstreamConn::abort() {
  detach_owner();
  close();
}

void UpstreamConn::close() {
  if (closing_) return;
  closing_ = true;
  // Every planned end detaches the owner first; one still attached here is
  // told, so that it never holds a pointer to a freed connection.
  DownstreamConn* owner = owner_;
  detach_owner();
  if (in_pool_) {
    std::erase(gen_->upstreams[upstream_].servers[slot_].idle, this);
    in_pool_ = false;
  }
  uv_timer_stop(&timer_);
  pending_closes_ = 2;
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_close);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), on_close);
  if (owner) owner->on_upstream_detached(this);
}

void UpstreamConn::on_close(uv_handle_t* handle) noexcept {
  auto* self = static_cast<UpstreamConn*>(handle->data);
  if (--self->pending_closes_ == 0) self->maybe_free();
}

void UpstreamConn::maybe_free() {
  // Write callbacks (cancelled) run before the close callback, so nothing
  // refers to this object any more.
  delete this;
}

}  // namespace sluice::proxy
