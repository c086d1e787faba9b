// One client connection: parse requests with llhttp (strict), route each,
// answer locally or stream it to an upstream, and stream the response back.
// Requests on one connection are handled strictly in order: the parser
// pauses at the end of each request until its response is complete.

#include <arpa/inet.h>

#include <cstring>

#include "connections.h"
#include "sluice/upstream.h"

namespace sluice::proxy {
namespace {

DownstreamConn* from_parser(llhttp_t* p) { return static_cast<DownstreamConn*>(p->data); }

std::string peer_ip(const uv_tcp_t* tcp) {
  sockaddr_storage ss{};
  int len = sizeof ss;
  if (uv_tcp_getpeername(tcp, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "unknown";
  char buf[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET) {
    uv_ip4_name(reinterpret_cast<const sockaddr_in*>(&ss), buf, sizeof buf);
  } else {
    uv_ip6_name(reinterpret_cast<const sockaddr_in6*>(&ss), buf, sizeof buf);
  }
  return buf;
}

// Methods a client may safely see retried (RFC 9110 9.2.2).
bool idempotent(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "PUT" ||
         method == "DELETE" || method == "TRACE";
}

}  // namespace

const llhttp_settings_t DownstreamConn::kSettings = [] {
  llhttp_settings_t s;
  llhttp_settings_init(&s);
  s.on_message_begin = on_message_begin;
  s.on_method = on_method;
  s.on_url = on_url;
  s.on_header_field = on_header_field;
  s.on_header_value = on_header_value;
  s.on_headers_complete = on_headers_complete;
  s.on_body = on_body;
  s.on_message_complete = on_message_complete;
  return s;
}();

DownstreamConn::DownstreamConn(WorkerContext& ctx)
    : ctx_(ctx), gen_(ctx.generation()), snapshot_(gen_->snapshot) {
  uv_tcp_init(ctx.loop(), &tcp_);
  uv_timer_init(ctx.loop(), &timer_);
  tcp_.data = this;
  timer_.data = this;
  llhttp_init(&parser_, HTTP_REQUEST, &kSettings);
  parser_.data = this;
  ctx_.downstreams.insert(this);
  ctx_.connections().fetch_add(1, std::memory_order_relaxed);
}

DownstreamConn::~DownstreamConn() {
  ctx_.downstreams.erase(this);
  ctx_.connections().fetch_sub(1, std::memory_order_relaxed);
  ctx_.on_downstream_gone();
}

bool DownstreamConn::waiting_for_request() const {
  return phase_ == Phase::idle || (phase_ == Phase::head && head_bytes_ == 0 && pending_.empty());
}

bool DownstreamConn::begin_drain() {
  if (closing_ || lingering_) return false;
  keep_alive_ = false;  // the response in flight, if any, ends the connection
  // Tunnels and connections waiting for a request are ended on the drain's
  // schedule; until then a request that arrives is served, with
  // Connection: close (SPEC.md, "Drain").
  return phase_ == Phase::tunnel || waiting_for_request();
}

void DownstreamConn::drain_end() {
  if (closing_ || lingering_) return;
  if (phase_ == Phase::tunnel) {
    end_tunnel(uint16_t{1001}, uint16_t{1001});
  } else if (waiting_for_request()) {
    close_after_write_ = true;
    if (writes_in_flight_ == 0) linger();
  }
  // Mid-request: the response carries Connection: close and ends it.
}

void DownstreamConn::accept(WorkerContext& ctx, uv_stream_t* listener, std::string_view key) {
  auto* conn = new DownstreamConn(ctx);
  if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(&conn->tcp_)) != 0) {
    conn->close();
    return;
  }
  if (auto certs = conn->snapshot_->listener_tls_for(key)) {
    conn->tls_ = true;
    conn->tls_session_ = tls::Session::accept(certs);
    if (!conn->tls_session_) {
      conn->close();
      return;
    }
  }
  conn->start();
}

void DownstreamConn::start() {
  started_ = std::chrono::steady_clock::now();
  uv_tcp_nodelay(&tcp_, 1);
  client_ip_ = peer_ip(&tcp_);
  client_hash_ = upstream::stable_hash(client_ip_);
  const config::ServerSettings& server = snapshot_->config->server;
  uint32_t open = ctx_.connections().load(std::memory_order_relaxed);
  if (open > server.max_connections || open > ctx_.descriptor_capacity()) {
    if (tls_) {
      // The 503 would cost a whole handshake: refuse the cheap way.
      close();
      return;
    }
    request_id_ = http::make_request_id(ctx_.rng()(), ctx_.rng()());
    keep_alive_ = false;
    error_ = base::ErrorCode::over_capacity;
    std::string detail =
        open > server.max_connections
            ? "server.max_connections is " + std::to_string(server.max_connections)
            : "RLIMIT_NOFILE " + std::to_string(ctx_.descriptor_limit()) + " allows " +
                  std::to_string(ctx_.descriptor_capacity()) + " client connections";
    std::string reply = http::error_reply(base::ErrorCode::over_capacity, detail, request_id_, true);
    status_ = 503;
    close_after_write_ = true;
    send(std::move(reply));
    log_exchange();
    return;
  }
  phase_ = Phase::head;
  arm_timer(server.header_timeout);
  update_reading();
}

// ---- reading and parsing -------------------------------------------------

void DownstreamConn::update_reading() {
  if (closing_ || lingering_) return;
  bool want = pending_.size() < kMaxPendingInput && !close_after_write_ &&
              to_upstream_.size() < kHighWater &&
              !(upstream_ && upstream_->connected() && upstream_->write_queue() >= kHighWater);
  auto* stream = reinterpret_cast<uv_stream_t*>(&tcp_);
  if (want && !reading_) {
    reading_ = uv_read_start(stream, on_alloc, on_read) == 0;
  } else if (!want && reading_) {
    uv_read_stop(stream);
    reading_ = false;
  }
}

void DownstreamConn::on_alloc(uv_handle_t* handle, size_t, uv_buf_t* buf) noexcept {
  auto* self = static_cast<DownstreamConn*>(handle->data);
  *buf = uv_buf_init(self->ctx_.read_buffer(), kReadBufferSize);
}

void DownstreamConn::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept {
  auto* self = static_cast<DownstreamConn*>(stream->data);
  if (nread == 0 || self->closing_) return;
  if (self->lingering_) {
    if (nread < 0) self->close();  // the client has seen our FIN and closed too
    return;                        // what it still sends is dropped
  }
  if (self->tls_session_ && nread > 0) {
    self->receive_tls(buf->base, static_cast<size_t>(nread));
    return;
  }
  self->on_input(buf->base, nread);
}

void DownstreamConn::receive_tls(const char* data, size_t len) {
  tls::Session& tls = *tls_session_;
  if (!tls.started() && tls::looks_like_plain_http({data, len})) {
    ctx_.cells().tls_plain_http.add();
    ctx_.log_tls_problem("plain HTTP from " + client_ip_ + " on a TLS port");
    tls_session_.reset();  // the answer goes out in plain text
    keep_alive_ = false;
    reply_error(base::ErrorCode::bad_request,
                "plain HTTP request sent to a TLS port: use https://");
    return;
  }
  bool was_done = tls.handshake_done();
  std::string& plain = ctx_.tls_plain();
  plain.clear();
  std::string wire;
  tls::Session::Status status = tls.receive(data, len, plain, wire);
  send_wire(std::move(wire));  // handshake messages, tickets, alerts
  if (closing_) return;
  if (status == tls::Session::Status::failed) {
    if (!was_done) {
      ctx_.cells().tls_handshake_failures.add();
      ctx_.log_tls_problem("handshake with " + client_ip_ + " failed: " + tls.error());
    }
    // The alert (if any) is queued; after a failed handshake nothing else can be said.
    close_after_write_ = true;
    if (writes_in_flight_ == 0) close();
    return;
  }
  if (!was_done && tls.handshake_done()) {
    ctx_.cells().tls_handshakes.add();
    if (tls.resumed()) ctx_.cells().tls_resumed.add();
  }
  // `plain` is the worker's buffer: it holds until the next read is handled.
  if (!plain.empty()) on_input(plain.data(), static_cast<ssize_t>(plain.size()));
  if (status == tls::Session::Status::closed && !closing_) on_input(nullptr, UV_EOF);
}

void DownstreamConn::on_input(const char* data, ssize_t nread) {
  if (close_after_write_ && phase_ != Phase::tunnel) {
    // A final reply is queued: further input cannot matter, and an EOF (a
    // half-close) must not cancel the reply. Errors end it.
    if (nread < 0 && nread != UV_EOF) close();
    return;
  }
  if (phase_ == Phase::tunnel) {
    if (nread < 0) {
      // The client left: the upstream hears 1001 (going away), if it can.
      end_tunnel(std::nullopt, uint16_t{1001});
      return;
    }
    tunnel_from_client({data, static_cast<size_t>(nread)});
    return;
  }
  if (nread < 0) {
    // The client went away. A request in flight is abandoned: its upstream
    // connection cannot be reused, so it is closed too.
    if (phase_ == Phase::proxying && !response_done_) {
      if (!response_started_) status_ = 499;
      error_.reset();
      log_exchange();
    }
    close();
    return;
  }
  feed(data, static_cast<size_t>(nread));
}

void DownstreamConn::parse(const char* data, size_t len) {
  if (parser_paused_) {
    pending_.append(data, len);
    update_reading();
    return;
  }
  if (phase_ == Phase::idle) {
    if (len == 0) return;  // nothing pipelined: keep waiting under keepalive_timeout
    phase_ = Phase::head;
    arm_timer(snapshot_->config->server.header_timeout);
  }
  llhttp_errno_t err = llhttp_execute(&parser_, data, len);
  const char* stop = err == HPE_OK ? data + len : llhttp_get_error_pos(&parser_);
  size_t consumed = static_cast<size_t>(stop - data);
  if (!headers_done_ || phase_ == Phase::head) head_bytes_ += consumed;
  bytes_in_ += consumed;
  const uint64_t max_head = snapshot_->config->server.max_header_size;

  if (err == HPE_OK) {
    if (!headers_done_ && head_bytes_ > max_head) {
      reply_error(base::ErrorCode::headers_too_large,
                  "more than " + base::format_size(max_head) + " (server.max_header_size)");
      return;
    }
    if (!to_upstream_.empty() && upstream_ && upstream_->connected()) {
      upstream_->send(std::move(to_upstream_));
      to_upstream_.clear();
    }
    if (phase_ == Phase::proxying && !message_done_) arm_timer(route_->read_timeout);
    update_reading();
    return;
  }
  if (err == HPE_PAUSED) {
    // Keep what follows the pause point; `data` may point into pending_.
    std::string rest(stop, len - consumed);
    pending_ = std::move(rest);
    parser_paused_ = true;
    if (headers_done_ && phase_ == Phase::head) {
      handle_head();
    } else if (message_done_) {
      handle_message_complete();
    }
    update_reading();
    return;
  }
  if (err == HPE_PAUSED_UPGRADE) {
    // An upgrade other than an allowed WebSocket one (h2c): the token was
    // dropped, so the request goes on as plain HTTP/1.1.
    std::string rest(stop, len - consumed);
    llhttp_resume_after_upgrade(&parser_);
    if (!rest.empty()) parse(rest.data(), rest.size());
    return;
  }
  if (err == HPE_USER && !invalid_header_name_) return;  // a callback already answered (413)
  // A malformed or ambiguous request: answer and close, never guess.
  base::ErrorCode code = base::ErrorCode::bad_request;
  // A Content-Length listing several values ("5, 44") is framing two
  // parsers may read differently: treated like conflicting lengths.
  // An overflow is not a list: llhttp points one byte past the digit that
  // overflowed, which may or may not be a ',' depending on where the read
  // ended, and the code must not depend on TCP segmentation.
  bool length_list = err == HPE_INVALID_CONTENT_LENGTH && stop < data + len && *stop == ',' &&
                     std::strcmp(llhttp_get_error_reason(&parser_), "Content-Length overflow") != 0;
  if (err == HPE_UNEXPECTED_CONTENT_LENGTH || err == HPE_INVALID_TRANSFER_ENCODING || length_list) {
    code = base::ErrorCode::request_smuggling;
  }
  if (response_started_) {
    close();
    return;
  }
  if (upstream_) {
    upstream_->abort();
    upstream_ = nullptr;
  }
  reply_error(code, invalid_header_name_ ? "invalid character in a header name"
                                         : llhttp_get_error_reason(&parser_));
}

void DownstreamConn::feed(const char* data, size_t len) {
  parsing_ = true;
  parse(data, len);
  parsing_ = false;
  drain_resumes();
}

void DownstreamConn::resume_parser() {
  if (closing_ || !parser_paused_) return;
  resume_pending_ = true;
  // Called from inside parse() (a local reply finishing a pipelined request):
  // the loop in drain_resumes() takes it from here, so that a buffer of
  // pipelined requests is worked through iteratively, not by recursion.
  if (!parsing_) drain_resumes();
}

void DownstreamConn::drain_resumes() {
  while (resume_pending_ && parser_paused_ && !closing_) {
    resume_pending_ = false;
    llhttp_resume(&parser_);
    parser_paused_ = false;
    std::string input = std::move(pending_);
    pending_.clear();
    // An empty feed still lets llhttp finish a body-less message.
    parsing_ = true;
    parse(input.data(), input.size());
    parsing_ = false;
  }
  resume_pending_ = false;
}

int DownstreamConn::on_message_begin(llhttp_t* p) noexcept {
  DownstreamConn* self = from_parser(p);
  self->started_ = std::chrono::steady_clock::now();
  return 0;
}

int DownstreamConn::on_method(llhttp_t* p, const char* at, size_t len) noexcept {
  from_parser(p)->head_.append_method({at, len});
  return 0;
}

int DownstreamConn::on_url(llhttp_t* p, const char* at, size_t len) noexcept {
  from_parser(p)->head_.append_target({at, len});
  return 0;
}

int DownstreamConn::on_header_field(llhttp_t* p, const char* at, size_t len) noexcept {
  DownstreamConn* self = from_parser(p);
  // llhttp 8 accepts spaces inside header names; RFC 9110 5.1 does not, and
  // "Transfer-Encoding : chunked" is a classic smuggling shape.
  for (size_t i = 0; i < len; ++i) {
    if (!http::is_token_char(at[i])) {
      self->invalid_header_name_ = true;
      return HPE_USER;
    }
  }
  if (self->headers_done_) return self->skip_trailer(len);
  self->head_.append_field({at, len});
  return 0;
}

int DownstreamConn::on_header_value(llhttp_t* p, const char* at, size_t len) noexcept {
  DownstreamConn* self = from_parser(p);
  if (self->headers_done_) return self->skip_trailer(len);
  self->head_.append_value({at, len});
  return 0;
}

// llhttp reports the trailer fields of a chunked body through the header
// callbacks. sluice does not forward trailers (the body is re-chunked
// without them) nor store them; max_header_size bounds them as it bounds
// the head, so that a client cannot stream them for ever.
int DownstreamConn::skip_trailer(size_t len) {
  // The callbacks report names and values only: 2 more per callback stand
  // for the ':' and the CRLF, so that empty lines (":") count too.
  trailer_bytes_ += len + 2;
  const uint64_t max_head = snapshot_->config->server.max_header_size;
  if (trailer_bytes_ <= max_head) return 0;
  if (upstream_) {
    upstream_->abort();
    upstream_ = nullptr;
  }
  if (response_started_) {
    close();
  } else {
    reply_error(base::ErrorCode::headers_too_large,
                "trailer fields of more than " + base::format_size(max_head) +
                    " (server.max_header_size)");
  }
  return HPE_USER;
}

int DownstreamConn::on_headers_complete(llhttp_t* p) noexcept {
  DownstreamConn* self = from_parser(p);
  self->headers_done_ = true;
  self->head_.http_major = llhttp_get_http_major(p);
  self->head_.http_minor = llhttp_get_http_minor(p);
  if (p->flags & F_CHUNKED) {
    self->request_framing_ = http::Framing::chunked;
  } else if ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0) {
    self->request_framing_ = http::Framing::content_length;
    self->request_length_ = p->content_length;
  }
  // Draining: this request is served, and is the connection's last.
  self->keep_alive_ = llhttp_should_keep_alive(p) != 0 && !self->ctx_.shutting_down();
  // Routing happens outside the parser, once the exact head size is known.
  return HPE_PAUSED;
}

int DownstreamConn::on_body(llhttp_t* p, const char* at, size_t len) noexcept {
  DownstreamConn* self = from_parser(p);
  if (self->phase_ != Phase::proxying) return 0;  // a local reply discards the body
  self->body_received_ += len;
  if (self->route_ && self->route_->max_body && self->body_received_ > *self->route_->max_body) {
    // A chunked body grew past max_body: the upstream request is abandoned
    // (its connection is never pooled) and the client told, if it still can be.
    if (self->upstream_) {
      self->upstream_->abort();
      self->upstream_ = nullptr;
    }
    if (self->response_started_) {
      self->close();
    } else {
      self->reply_error(base::ErrorCode::body_too_large,
                        "more than " + base::format_size(*self->route_->max_body) +
                            " (max_body of route '" + self->route_->name + "')");
    }
    return HPE_USER;
  }
  if (self->request_framing_ == http::Framing::chunked) {
    http::append_chunk(self->to_upstream_, {at, len});
  } else {
    self->to_upstream_.append(at, len);
  }
  return 0;
}

int DownstreamConn::on_message_complete(llhttp_t* p) noexcept {
  DownstreamConn* self = from_parser(p);
  self->message_done_ = true;
  if (self->phase_ == Phase::proxying && self->request_framing_ == http::Framing::chunked) {
    self->to_upstream_.append(http::kLastChunk);
  }
  return HPE_PAUSED;
}

// ---- one exchange ---------------------------------------------------------

bool DownstreamConn::request_has_body() const { return request_framing_ != http::Framing::none; }

void DownstreamConn::handle_head() {
  if (gen_ != ctx_.generation()) {
    // Reloaded since this connection's last request (which finished on the
    // config it started with): the next request uses the new config.
    gen_ = ctx_.generation();
    snapshot_ = gen_->snapshot;
  }
  const config::ServerSettings& server = snapshot_->config->server;
  uv_timer_stop(&timer_);
  if (head_bytes_ > server.max_header_size) {
    reply_error(base::ErrorCode::headers_too_large,
                "more than " + base::format_size(server.max_header_size) +
                    " (server.max_header_size)");
    return;
  }
  std::optional<std::string_view> client_id = head_.find("x-request-id");
  request_id_ = client_id && http::valid_request_id(*client_id)
                    ? std::string(*client_id)
                    : http::make_request_id(ctx_.rng()(), ctx_.rng()());

  std::string_view method = head_.method();
  if (std::optional<http::HeadProblem> problem = http::check_request_head(head_, request_framing_)) {
    reply_error(problem->code, std::string(problem->detail));
    return;
  }
  std::string_view target = head_.target();
  std::string_view host_header = head_.find("host").value_or("");
  std::string_view authority, origin_target = target;
  if (http::split_absolute(target, authority, origin_target)) {
    host_header = authority;  // RFC 9112 3.2.2: the target's authority wins
  }
  host_ = router::normalize_host(host_header);
  router::Target split = router::split_target(origin_target);
  route_ = snapshot_->routes->select(host_, split.path, tls_);
  if (!route_) {
    std::string host_shown = host_header.empty() ? "(none)" : std::string(host_header);
    reply_error(base::ErrorCode::no_route,
                "path " + std::string(split.path) + ", host " + host_shown + "; run `sluice explain" +
                    (host_header.empty() ? "" : " --host " + std::string(host_header)) + " '" +
                    std::string(split.path) + "'` to see why");
    return;
  }
  // Admission looks at Upgrade, the handshake and Origin; most requests have
  // none of these, so skip copying headers for them.
  if (head_.count("upgrade") > 0 || route_->allowed_origins) {
    router::HeaderList headers;
    for (size_t i = 0; i < head_.header_count(); ++i) {
      http::Header h = head_.header(i);
      if (base::iequals(h.name, "upgrade") || base::iequals(h.name, "connection") ||
          base::iequals(h.name, "origin") || base::iequals(h.name, "sec-websocket-key") ||
          base::iequals(h.name, "sec-websocket-version")) {
        headers.emplace_back(std::string(h.name), std::string(h.value));
      }
    }
    if (auto refused = router::admission(*route_, method, headers)) {
      std::string detail = "route '" + route_->name + "'";
      if (*refused == base::ErrorCode::origin_forbidden) {
        detail += ", Origin " + std::string(head_.find("origin").value_or(""));
      }
      reply_error(*refused, detail);
      return;
    }
  }
  // Admission let it through, so an Upgrade: websocket here is a valid
  // handshake on a websocket/socketio route.
  websocket_ = head_.has_token("upgrade", "websocket");
  if (route_->respond) {
    const config::Respond& r = *route_->respond;
    std::string reply = http::simple_reply(r.status, r.content_type, r.body, request_id_,
                                           !keep_alive_ || request_has_body(), {}, method == "HEAD");
    reply_local(std::move(reply), r.status, std::nullopt, keep_alive_ && !request_has_body());
    return;
  }
  if (route_->redirect) {
    const config::Redirect& r = *route_->redirect;
    std::string location = r.location;
    if (location.empty()) {
      std::string host = router::normalize_host(host_header);
      if (host.empty()) {
        reply_error(base::ErrorCode::bad_request, "a scheme redirect needs a Host");
        return;
      }
      location = r.scheme + "://" + host;
      if (r.port) location += ":" + std::to_string(*r.port);
      location += std::string(origin_target);
    }
    std::string extra = "Location: " + location + "\r\n";
    std::string reply = http::simple_reply(r.status, "", "", request_id_,
                                           !keep_alive_ || request_has_body(), extra);
    reply_local(std::move(reply), r.status, std::nullopt, keep_alive_ && !request_has_body());
    return;
  }
  std::optional<std::string> upstream_target = router::upstream_target(*route_, origin_target);
  if (!upstream_target) {
    reply_error(base::ErrorCode::path_escape, "route '" + route_->name + "'");
    return;
  }
  upstream_target_ = std::move(*upstream_target);
  if (route_->max_body && request_framing_ == http::Framing::content_length &&
      request_length_ > *route_->max_body) {
    reply_error(base::ErrorCode::body_too_large,
                "Content-Length " + std::to_string(request_length_) + " is more than " +
                    base::format_size(*route_->max_body) + " (max_body of route '" +
                    route_->name + "')");
    return;
  }
  expect_continue_ = head_.find("expect").has_value() &&
                     base::iequals(*head_.find("expect"), "100-continue");
  phase_ = Phase::proxying;
  start_upstream(std::nullopt);
}

void DownstreamConn::start_upstream(std::optional<size_t> exclude) {
  UpstreamState& up = gen_->upstreams[route_->upstream_index];
  if (up.servers.empty()) {
    reply_error(base::ErrorCode::upstream_unresolved,
                "upstream '" + up.config->name + "': no server name resolves to an address");
    return;
  }
  // Health is shared with the other workers and the checker: refresh this
  // worker's view before choosing.
  int64_t now = health::now_ms();
  const auto& states = snapshot_->health[route_->upstream_index];
  bool any = false;
  for (size_t i = 0; i < up.loads.size(); ++i) any |= up.loads[i].healthy = states[i]->usable(now);
  if (!any) {
    // Passive ejection never empties an upstream (nginx ignores max_fails
    // for a lone server): with every server ejected, only failed active
    // checks keep a server out, and the error names the real cause.
    for (size_t i = 0; i < up.loads.size(); ++i) up.loads[i].healthy = states[i]->check_ok();
  }
  std::optional<size_t> slot = exclude ? std::nullopt : affinity_slot(up);
  if (!slot) slot = up.balancer.pick(up.loads, client_hash_, exclude);
  if (!slot && exclude) slot = exclude;  // the one retry has nowhere else to go
  if (!slot) {
    reply_error(base::ErrorCode::no_healthy_upstream, "upstream '" + up.config->name + "'");
    return;
  }
  server_ = *slot;
  server_address_ = up.servers[*slot].address->text;
  affinity_token_ = up.tokens[*slot];
  UpstreamConn* conn = nullptr;
  auto& idle = up.servers[*slot].idle;
  if (!idle.empty() && !retried_) conn = idle.back();
  if (!conn) conn = UpstreamConn::connect(ctx_, gen_, route_->upstream_index, *slot);
  upstream_ = conn;
  conn->attach(this, head_.method() == "HEAD", route_->read_timeout);
  if (conn->connected()) begin_forwarding();  // pooled: no callback will come
}

void DownstreamConn::on_upstream_connected() { begin_forwarding(); }

void DownstreamConn::on_upstream_spoke() { upstream_spoke_ = true; }

void DownstreamConn::begin_forwarding() {
  const config::Upstream& cfg = *gen_->upstreams[route_->upstream_index].config;
  http::ForwardInfo info;
  info.upstream_target = upstream_target_;
  info.client_ip = client_ip_;
  info.proto = tls_ ? "https" : "http";
  info.request_id = request_id_;
  if (cfg.host_header) info.host = *cfg.host_header;
  info.fallback_host = server_address_;
  info.framing = request_framing_;
  info.content_length = request_length_;
  info.websocket = websocket_;
  std::string head;
  head.reserve(512 + head_bytes_);
  http::append_upstream_request(head, head_, info);
  head.append(to_upstream_);
  to_upstream_.clear();
  UpstreamConn* conn = upstream_;
  conn->send(std::move(head));
  if (upstream_ != conn) return;  // the write failed and the exchange moved on
  if (expect_continue_ && request_has_body() && !message_done_) {
    send("HTTP/1.1 100 Continue\r\n\r\n");
  }
  if (message_done_) {
    upstream_->request_sent();
  } else {
    resume_parser();  // the body flows from here
  }
}

void DownstreamConn::on_upstream_drained() { update_reading(); }

void DownstreamConn::on_upstream_detached(UpstreamConn* conn) {
  if (upstream_ != conn) return;
  upstream_ = nullptr;
  if (closing_) return;
  if (phase_ == Phase::tunnel) {
    end_tunnel(uint16_t{1011}, std::nullopt);
  } else if (phase_ == Phase::proxying && !response_done_) {
    on_upstream_error(base::ErrorCode::upstream_reset, "connection closed");
  }
}

void DownstreamConn::handle_message_complete() {
  if (phase_ == Phase::proxying) {
    uv_timer_stop(&timer_);  // the body is in: no more waiting on the client's bytes
    if (upstream_ && upstream_->connected()) {
      UpstreamConn* conn = upstream_;
      if (!to_upstream_.empty()) {
        conn->send(std::move(to_upstream_));
        to_upstream_.clear();
      }
      if (upstream_ == conn) conn->request_sent();
    }
    if (response_done_) finish_exchange();
    return;
  }
  // A local reply is already queued; the next pipelined response queues behind it.
  if (phase_ == Phase::local && !close_after_write_) finish_exchange();
}

void DownstreamConn::on_upstream_error(base::ErrorCode code, std::string cause) {
  upstream_ = nullptr;
  // over_capacity is sluice's own shortage (no socket): not the server's.
  if (server_ && route_ && code != base::ErrorCode::over_capacity) {
    // Every failed attempt counts against its server, retried or not.
    snapshot_->server_cells[route_->upstream_index][*server_][ctx_.index()]
        ->errors[static_cast<size_t>(code)].add();
    // Passive ejection: a server that refuses, times out or resets again
    // and again is taken out for a while.
    if (code == base::ErrorCode::upstream_refused || code == base::ErrorCode::connect_timeout ||
        code == base::ErrorCode::upstream_reset) {
      const config::Upstream& up = *gen_->upstreams[route_->upstream_index].config;
      snapshot_->health[route_->upstream_index][*server_]->traffic_failed(
          up.health ? up.health->fails : health::kPassiveFailures, cause);
    }
  }
  if (closing_) return;
  if (response_started_) {
    error_ = code;  // logged: the client saw a cut response, not a success
    fail_after_response_started();
    return;
  }
  bool nothing_sent = code == base::ErrorCode::upstream_refused ||
                      code == base::ErrorCode::connect_timeout;
  // A connect failure is retried once on another server; so is a reset
  // (a pooled connection the server closed under us, or a server that died)
  // when the request can be repeated. The retry avoids the server that
  // failed when there is another, and never takes a pooled connection: its
  // siblings may be just as dead.
  if (!retried_ && phase_ == Phase::proxying &&
      (nothing_sent || (code == base::ErrorCode::upstream_reset && !upstream_spoke_ &&
                        idempotent(head_.method()) && !request_has_body()))) {
    retried_ = true;
    UpstreamState& up = gen_->upstreams[route_->upstream_index];
    std::optional<size_t> exclude;
    if (up.servers.size() > 1) exclude = server_;
    start_upstream(exclude);
    return;
  }
  reply_error(code, upstream_detail(cause));
}

std::string DownstreamConn::upstream_detail(std::string_view cause) const {
  const config::Upstream& cfg = *gen_->upstreams[route_->upstream_index].config;
  return "upstream '" + cfg.name + "' server " + server_address_ + ": " + std::string(cause);
}

int DownstreamConn::on_response_head(const http::MessageHead& response, uint64_t content_length,
                                     bool chunked, bool upstream_keep_alive) {
  (void)upstream_keep_alive;
  if (response.status == 101 && !websocket_) {
    // A switch nobody asked for cannot be relayed as HTTP: 502 bad response.
    return -1;
  }
  response_started_ = true;
  status_ = response.status;
  if (server_) snapshot_->health[route_->upstream_index][*server_]->traffic_succeeded();
  bool no_body = head_.method() == "HEAD" || response.status == 204 || response.status == 304 ||
                 response.status == 101;
  std::string cookie = affinity_cookie();
  http::ResponseInfo info;
  info.request_id = request_id_;
  info.extra_headers = cookie;
  if (response.status == 101) {
    info.websocket = true;
    response_framing_ = http::Framing::none;
    http::append_client_response(to_client_, response, info);
    return 0;
  }
  if (rewrite_handshake_ && response.status == 200 && !no_body) {
    // The Engine.IO handshake body is small: hold it, add the server token
    // to its sid, and write head and body at the end with the new length.
    response_framing_ = http::Framing::none;
    return 0;
  }
  rewrite_handshake_ = false;
  if (no_body) {
    response_framing_ = http::Framing::none;
    // HEAD keeps the length the body would have had (RFC 9110 9.3.2).
    if (content_length != UINT64_MAX && response.status != 204) {
      info.framing = http::Framing::content_length;
      info.content_length = content_length;
    }
  } else if (!chunked && content_length != UINT64_MAX) {
    response_framing_ = info.framing = http::Framing::content_length;
    info.content_length = content_length;
  } else if (head_.http_minor >= 1) {
    // Chunked or read-until-close upstream bodies reach an HTTP/1.1 client
    // chunked: the connection stays usable.
    response_framing_ = info.framing = http::Framing::chunked;
  } else {
    // An HTTP/1.0 client knows no chunked: the body ends with the connection.
    response_framing_ = info.framing = http::Framing::until_close;
    keep_alive_ = false;
  }
  if (ctx_.shutting_down()) keep_alive_ = false;
  // A client still sending a body when the answer comes cannot keep the
  // connection: the rest of its body would be read as a request.
  info.close = !keep_alive_ || !message_done_;
  http::append_client_response(to_client_, response, info);
  return 0;
}

void DownstreamConn::finish_handshake_rewrite() {
  rewrite_handshake_ = false;
  std::optional<std::string> body = upstream::rewrite_handshake(handshake_body_, affinity_token_);
  std::string cookie = affinity_cookie();
  http::ResponseInfo info;
  info.request_id = request_id_;
  info.extra_headers = cookie;
  info.framing = http::Framing::content_length;
  info.content_length = body ? body->size() : handshake_body_.size();
  info.close = !keep_alive_ || !message_done_;
  http::append_client_response(to_client_, upstream_->response(), info);
  to_client_.append(body ? *body : handshake_body_);
  handshake_body_.clear();
}

std::string DownstreamConn::affinity_cookie() const {
  if (!set_cookie_) return {};
  return "Set-Cookie: sluice_affinity=" + affinity_token_ + "; Path=/; HttpOnly\r\n";
}

std::optional<size_t> DownstreamConn::affinity_slot(UpstreamState& up) {
  config::Affinity affinity = up.config->affinity;
  set_cookie_ = false;
  rewrite_handshake_ = false;
  auto usable = [&](std::string_view token) -> std::optional<size_t> {
    for (size_t i = 0; i < up.tokens.size(); ++i) {
      if (up.tokens[i] == token && up.loads[i].healthy) return i;
    }
    return std::nullopt;  // gone: routed like a new session
  };
  if (affinity == config::Affinity::engine_io && route_->kind == config::RouteKind::socketio) {
    std::optional<std::string_view> sid = upstream::query_param(upstream_target_, "sid");
    if (!sid) {
      // A new session: its polling handshake gets the token.
      std::optional<std::string_view> transport = upstream::query_param(upstream_target_, "transport");
      rewrite_handshake_ = transport == "polling" && head_.method() == "GET";
      return std::nullopt;
    }
    std::optional<upstream::TokenSid> parts = upstream::split_token_sid(*sid);
    if (!parts) return std::nullopt;
    std::string token(parts->token);
    upstream_target_ = upstream::replace_query_param(upstream_target_, "sid", parts->sid);
    return usable(token);
  }
  if (affinity == config::Affinity::cookie) {
    for (size_t i = 0; i < head_.header_count(); ++i) {
      http::Header h = head_.header(i);
      if (!base::iequals(h.name, "cookie")) continue;
      if (auto token = upstream::cookie_value(h.value, "sluice_affinity")) {
        if (auto slot = usable(*token)) return slot;
      }
    }
    set_cookie_ = true;
  }
  return std::nullopt;
}

void DownstreamConn::on_response_body(std::string_view data) {
  if (rewrite_handshake_) {
    handshake_body_.append(data);
    if (handshake_body_.size() > kMaxPendingInput) {
      // Not a handshake after all: relay it unchanged, chunked.
      rewrite_handshake_ = false;
      http::ResponseInfo info;
      info.request_id = request_id_;
      info.framing = response_framing_ = http::Framing::chunked;
      info.close = !keep_alive_ || !message_done_;
      http::append_client_response(to_client_, upstream_->response(), info);
      http::append_chunk(to_client_, handshake_body_);
      handshake_body_.clear();
    }
    return;
  }
  if (response_framing_ == http::Framing::chunked) {
    http::append_chunk(to_client_, data);
  } else {
    to_client_.append(data);
  }
}

void DownstreamConn::flush_to_client() {
  if (to_client_.empty()) return;
  std::string out = std::move(to_client_);
  to_client_.clear();
  send(std::move(out));
}

void DownstreamConn::on_response_complete(bool upstream_reusable) {
  if (rewrite_handshake_ && upstream_) finish_handshake_rewrite();
  if (response_framing_ == http::Framing::chunked) to_client_.append(http::kLastChunk);
  flush_to_client();
  response_done_ = true;
  if (upstream_) {
    // Reuse only when the whole request went out as well.
    bool reusable = upstream_reusable && message_done_ && to_upstream_.empty();
    UpstreamConn* conn = upstream_;
    upstream_ = nullptr;
    conn->release(reusable);
  }
  if (!message_done_) {
    // The upstream answered before the request body ended (an early error):
    // this connection cannot carry another request.
    keep_alive_ = false;
  }
  if (message_done_ || !keep_alive_) finish_exchange();
}

void DownstreamConn::fail_after_response_started() {
  // Headers already went out: the only honest signal left is closing.
  flush_to_client();
  log_exchange();
  close_after_write_ = true;
  keep_alive_ = false;
  if (writes_in_flight_ == 0) close();
}

// ---- replies and the end of an exchange ----------------------------------

void DownstreamConn::reply_error(base::ErrorCode code, std::string detail) {
  if (upstream_) {
    upstream_->abort();
    upstream_ = nullptr;
  }
  if (response_started_) {
    fail_after_response_started();
    return;
  }
  if (request_id_.empty()) request_id_ = http::make_request_id(ctx_.rng()(), ctx_.rng()());
  // After a parse error, a limit or an unread body the connection's framing
  // cannot be trusted any more.
  bool keep = keep_alive_ && headers_done_ && !request_has_body() &&
              code != base::ErrorCode::bad_request && code != base::ErrorCode::request_smuggling &&
              code != base::ErrorCode::headers_too_large && code != base::ErrorCode::header_timeout;
  const base::ErrorInfo& info = base::error_info(code);
  reply_local(http::error_reply(code, detail, request_id_, !keep, head_.method() == "HEAD"),
              info.status, code, keep);
}

void DownstreamConn::reply_local(std::string bytes, int status,
                                 std::optional<base::ErrorCode> error, bool keep_alive) {
  phase_ = Phase::local;
  status_ = status;
  error_ = error;
  response_started_ = true;
  response_done_ = true;
  keep_alive_ = keep_alive && !ctx_.shutting_down();
  if (!keep_alive_) close_after_write_ = true;
  send(std::move(bytes));
  // Logged after send() counted the reply's bytes; the connection lives on
  // until its close callback even when the write ended it.
  if (!keep_alive_) log_exchange();
  if (!closing_ && !lingering_ && writes_in_flight_ > 0) {
    // A client that never reads its reply must not hold the connection.
    last_write_progress_ = std::chrono::steady_clock::now();
    arm_timer(snapshot_->config->server.keepalive_timeout);
  }
  if (closing_ || lingering_ || !keep_alive_) return;
  // Keep-alive: the body-less request ends once the parser reaches its end.
  if (message_done_) {
    finish_exchange();
  } else {
    resume_parser();
  }
}

void DownstreamConn::finish_exchange() {
  log_exchange();
  if (!keep_alive_) {
    close_after_write_ = true;
    if (writes_in_flight_ == 0) close();
    return;
  }
  reset_exchange();
  phase_ = Phase::idle;
  arm_timer(snapshot_->config->server.keepalive_timeout);
  // A pipelined request may already be waiting in pending_.
  resume_parser();
  update_reading();
}

void DownstreamConn::reset_exchange() {
  counted_ = false;
  upstream_spoke_ = false;
  websocket_ = false;
  affinity_token_.clear();
  rewrite_handshake_ = false;
  handshake_body_.clear();
  set_cookie_ = false;
  head_.clear();
  head_bytes_ = 0;
  headers_done_ = message_done_ = false;
  trailer_bytes_ = 0;
  expect_continue_ = false;
  request_framing_ = http::Framing::none;
  request_length_ = body_received_ = 0;
  route_ = nullptr;
  host_.clear();
  request_id_.clear();
  upstream_target_.clear();
  server_.reset();
  server_address_.clear();
  retried_ = false;
  to_upstream_.clear();
  to_client_.clear();
  response_started_ = response_done_ = false;
  response_framing_ = http::Framing::none;
  status_ = 0;
  error_.reset();
  bytes_in_ = bytes_out_ = 0;
}

metrics::RouteCells& DownstreamConn::route_cells() const {
  if (!route_) return *snapshot_->no_route_cells[ctx_.index()];
  size_t index = static_cast<size_t>(route_ - snapshot_->config->routes.data());
  return *snapshot_->route_cells[index][ctx_.index()];
}

void DownstreamConn::count_exchange() {
  if (counted_ || (head_.method().empty() && status_ == 0)) return;
  counted_ = true;
  metrics::RouteCells& cells = route_cells();
  cells.requests[metrics::status_class(status_)].add();
  if (phase_ == Phase::tunnel) {
    count_tunnel_end();
    return;
  }
  cells.duration.observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count());
}

void DownstreamConn::count_tunnel_end() {
  if (!tunnel_open_) return;
  tunnel_open_ = false;
  metrics::RouteCells& cells = route_cells();
  cells.tunnels_active.add(-1);
  cells.tunnel_duration.observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - tunnel_started_).count());
  cells.tunnel_closes.add(close_code_);
}

void DownstreamConn::note_close_code(const tunnel::FrameTracker& tracker) {
  if (close_code_ == 0 && tracker.close_code()) close_code_ = *tracker.close_code();
}

void DownstreamConn::log_exchange() {
  count_exchange();
  log::AccessLog& log = ctx_.access_log();
  if (!log.enabled() || (head_.method().empty() && status_ == 0)) return;
  log::AccessRecord r;
  r.request_id = request_id_;
  r.client = client_ip_;
  r.method = head_.method();
  r.target = head_.target();
  r.host = head_.find("host").value_or("");
  if (route_) {
    r.route = route_->name;
    if (route_->has_upstream()) {
      r.upstream = gen_->upstreams[route_->upstream_index].config->name;
      r.server = server_address_;
      r.upstream_target = upstream_target_;
    }
  }
  r.status = status_;
  r.bytes_in = bytes_in_;
  r.bytes_out = bytes_out_;
  r.duration_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() -
                                                            started_)
                      .count();
  if (error_) r.error = base::error_info(*error_).code;
  r.upgrade = phase_ == Phase::tunnel;
  log.write(r);
}

// ---- WebSocket tunnel -----------------------------------------------------

void DownstreamConn::start_tunnel(std::string_view rest) {
  phase_ = Phase::tunnel;
  status_ = 101;
  last_activity_ = std::chrono::steady_clock::now();
  tunnel_started_ = last_activity_;
  tunnel_open_ = true;
  route_cells().tunnels_active.add(1);
  if (ctx_.draining()) ctx_.drain_later(this);  // its upgrade was in flight at the signal
  // The parser is done with this connection: what the client sent after its
  // handshake already belongs to the tunnel.
  parser_paused_ = true;
  if (!rest.empty()) {
    from_upstream_.feed(rest);
    note_close_code(from_upstream_);
    send(std::string(rest));
  }
  if (!pending_.empty() && upstream_) {
    from_client_.feed(pending_);
    note_close_code(from_client_);
    upstream_->send(std::move(pending_));
    pending_.clear();
  }
  arm_timer(route_->tunnel_idle);
  update_reading();
}

void DownstreamConn::tunnel_from_client(std::string_view data) {
  last_activity_ = std::chrono::steady_clock::now();
  bytes_in_ += data.size();
  from_client_.feed(data);
  note_close_code(from_client_);
  if (upstream_) upstream_->send(std::string(data));
  update_reading();
}

void DownstreamConn::on_tunnel_upstream_data(std::string_view data) {
  last_activity_ = std::chrono::steady_clock::now();
  from_upstream_.feed(data);
  note_close_code(from_upstream_);
  send(std::string(data));
}

void DownstreamConn::on_tunnel_upstream_closed(const std::string& cause) {
  upstream_ = nullptr;
  (void)cause;
  // An upstream that ended without a close frame died mid-tunnel: the client
  // hears 1011 (RFC 6455 7.4.1) instead of a bare TCP close.
  end_tunnel(uint16_t{1011}, std::nullopt);
}

void DownstreamConn::end_tunnel(std::optional<uint16_t> client_code,
                                std::optional<uint16_t> upstream_code) {
  if (closing_) return;
  // A close frame of sluice's own only between frames and only if that side
  // has not closed already.
  if (client_code && from_upstream_.valid() && from_upstream_.at_boundary() &&
      !from_upstream_.close_code() && !from_client_.close_code()) {
    if (close_code_ == 0) close_code_ = *client_code;
    send(tunnel::close_frame(*client_code, *client_code == 1011 ? "upstream went away" : "going away"));
  }
  if (upstream_ && upstream_code && from_client_.valid() && from_client_.at_boundary() &&
      !from_client_.close_code() && !from_upstream_.close_code()) {
    // The send may fail and detach the upstream: read upstream_ again after.
    upstream_->send(tunnel::close_frame(*upstream_code, "going away", true,
                                        static_cast<uint32_t>(ctx_.rng()())));
  }
  if (closing_ || close_after_write_) return;  // the failed send ended the exchange
  if (UpstreamConn* conn = upstream_) {
    upstream_ = nullptr;
    conn->abort();
  }
  log_exchange();
  keep_alive_ = false;
  close_after_write_ = true;
  if (writes_in_flight_ == 0) close();
}

// ---- writing --------------------------------------------------------------

void DownstreamConn::send(std::string data) {
  if (closing_ || data.empty()) return;
  bytes_out_ += data.size();
  if (tls_session_) {
    std::string wire;
    wire.reserve(data.size() + data.size() / 256 + 64);  // record headers and tags
    if (tls_session_->send(data, wire) == tls::Session::Status::failed) {
      close();
      return;
    }
    data = std::move(wire);
  }
  send_wire(std::move(data));
}

void DownstreamConn::send_wire(std::string data) {
  if (closing_ || data.empty()) return;
  auto* stream = reinterpret_cast<uv_stream_t*>(&tcp_);
  if (write_or_queue(stream, std::move(data), this, on_write, writes_in_flight_) != 0) {
    close();
    return;
  }
  // Written at once: no write callback will come to finish a closing reply.
  if (close_after_write_ && writes_in_flight_ == 0) {
    linger();
    return;
  }
  // Backpressure: a slow client stops the upstream from filling memory, and
  // a client that stops reading altogether is given read_timeout to resume.
  if (upstream_ && uv_stream_get_write_queue_size(stream) > kHighWater) {
    upstream_->pause_reading();
    if (phase_ == Phase::proxying && route_ && message_done_) {
      last_write_progress_ = std::chrono::steady_clock::now();
      arm_timer(route_->read_timeout);
    }
  }
}

void DownstreamConn::on_write(uv_write_t* req, int status) noexcept {
  auto* w = reinterpret_cast<WriteReq*>(req);
  auto* self = static_cast<DownstreamConn*>(req->data);
  delete w;
  --self->writes_in_flight_;
  if (self->closing_) return;
  if (status != 0) {
    self->close();
    return;
  }
  auto* stream = reinterpret_cast<uv_stream_t*>(&self->tcp_);
  if (self->writes_in_flight_ == 0 && self->close_after_write_) {
    self->linger();
    return;
  }
  self->last_write_progress_ = std::chrono::steady_clock::now();
  if (self->upstream_ && uv_stream_get_write_queue_size(stream) < kLowWater) {
    self->upstream_->resume_reading();
    if (self->phase_ == Phase::proxying && self->message_done_) uv_timer_stop(&self->timer_);
  }
}

// ---- timers and teardown --------------------------------------------------

void DownstreamConn::arm_timer(base::Duration d) {
  if (closing_) return;
  uv_timer_start(&timer_, on_timer, static_cast<uint64_t>(d.count()), 0);
}

void DownstreamConn::on_timer(uv_timer_t* timer) noexcept {
  auto* self = static_cast<DownstreamConn*>(timer->data);
  if (self->closing_) return;
  if (self->lingering_) {
    self->close();
    return;
  }
  switch (self->phase_) {
    case Phase::head:
      if (self->tls_session_ && !self->tls_session_->handshake_done()) {
        // Nothing can be said to a client that never finished its handshake.
        self->ctx_.cells().tls_handshake_timeouts.add();
        self->ctx_.log_tls_problem("no complete handshake from " + self->client_ip_ + " within " +
                                   base::format_duration(
                                       self->snapshot_->config->server.header_timeout));
        self->close();
        return;
      }
      // SPEC.md: the head must be complete within header_timeout of the
      // connection's accept or of the request's first byte, else 408.
      self->keep_alive_ = false;
      self->reply_error(base::ErrorCode::header_timeout,
                        "no complete request head within " +
                            base::format_duration(self->snapshot_->config->server.header_timeout));
      return;
    case Phase::proxying:
      if (self->message_done_ && self->write_stalled_for(self->route_->read_timeout)) return;
      // The client stopped sending its body, or stopped reading the
      // response, for a whole read_timeout.
      if (!self->response_started_) self->status_ = 408;
      self->log_exchange();
      self->close();
      return;
    case Phase::tunnel: {
      // Traffic resets the idle time lazily: re-arm for what is left.
      auto idle = self->route_->tunnel_idle;
      auto quiet = std::chrono::duration_cast<base::Duration>(std::chrono::steady_clock::now() -
                                                              self->last_activity_);
      if (quiet < idle) {
        self->arm_timer(idle - quiet);
        return;
      }
      self->end_tunnel(uint16_t{1001}, uint16_t{1001});
      return;
    }
    case Phase::idle:
    case Phase::local:
      // keepalive_timeout: close silently, but not over a response the
      // client is still reading.
      if (self->write_stalled_for(self->snapshot_->config->server.keepalive_timeout)) return;
      self->close();
      return;
  }
}

void DownstreamConn::linger() {
  if (closing_ || lingering_) return;
  lingering_ = true;
  if (upstream_) {
    upstream_->abort();
    upstream_ = nullptr;
  }
  // Closing a socket with unread input makes the kernel send a reset, which
  // can destroy the reply before the client reads it: send FIN, drain what
  // the client still sends, and close on its EOF or after kLingerTime.
  if (tls_session_) {
    // close_notify first: the client can tell a complete reply from a cut one.
    std::string wire;
    tls_session_->shutdown(wire);
    if (!wire.empty()) {
      write_or_queue(reinterpret_cast<uv_stream_t*>(&tcp_), std::move(wire), this, on_write,
                     writes_in_flight_);
    }
  }
  auto* req = new uv_shutdown_t;
  req->data = this;
  if (uv_shutdown(req, reinterpret_cast<uv_stream_t*>(&tcp_), on_shutdown) != 0) {
    delete req;
    close();
    return;
  }
  auto* stream = reinterpret_cast<uv_stream_t*>(&tcp_);
  if (!reading_) reading_ = uv_read_start(stream, on_alloc, on_read) == 0;
  arm_timer(kLingerTime);
}

void DownstreamConn::on_shutdown(uv_shutdown_t* req, int status) noexcept {
  auto* self = static_cast<DownstreamConn*>(req->data);
  delete req;
  if (status != 0 && status != UV_ECANCELED && !self->closing_) self->close();
}

bool DownstreamConn::write_stalled_for(base::Duration limit) {
  if (writes_in_flight_ == 0) return false;
  auto quiet = std::chrono::duration_cast<base::Duration>(std::chrono::steady_clock::now() -
                                                          last_write_progress_);
  if (quiet >= limit) return false;
  arm_timer(limit - quiet);  // the client is reading: wait for it
  return true;
}

void DownstreamConn::close() {
  if (closing_) return;
  if (phase_ == Phase::tunnel && !counted_) log_exchange();  // a tunnel cut short
  closing_ = true;
  if (tls_session_ && writes_in_flight_ == 0) {
    // Best effort close_notify, so that a client reading to the end can tell
    // it from a cut (and keep its session resumable). Never queued: a client
    // that does not read gets no more than the socket takes now.
    std::string wire;
    tls_session_->shutdown(wire);
    uv_buf_t buf = uv_buf_init(wire.data(), static_cast<unsigned>(wire.size()));
    if (!wire.empty()) uv_try_write(reinterpret_cast<uv_stream_t*>(&tcp_), &buf, 1);
  }
  if (upstream_) {
    upstream_->abort();
    upstream_ = nullptr;
  }
  uv_timer_stop(&timer_);
  pending_closes_ = 2;
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_close);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), on_close);
}

void DownstreamConn::on_close(uv_handle_t* handle) noexcept {
  auto* self = static_cast<DownstreamConn*>(handle->data);
  if (--self->pending_closes_ == 0) delete self;
}

}  // namespace sluice::proxy
