// fuzz_request: client bytes through sluice's request path, as far as it is
// pure. proxy::DownstreamConn owns a libuv handle and cannot run without a
// loop, so this target mirrors its parse -> head -> rules sequence with the
// same public pieces (llhttp with DownstreamConn's callbacks and no lenient
// flags, http::MessageHead, the smuggling and size checks of
// DownstreamConn::parse/handle_head, router::select / admission /
// upstream_target, the Engine.IO and cookie affinity helpers,
// http::append_upstream_request, chunk re-encoding). Keep it in step with
// src/proxy/downstream.cc; README.md says what it does not cover.
//
// Oracles (abort on violation):
//  - every read split gives the same exchanges as one read (sluice must not
//    depend on TCP segmentation): one piece, one byte at a time, random cuts;
//  - every request sluice forwards parses again, by a strict llhttp, as
//    exactly that one request: the target sluice chose, one Host, framing
//    that matches the body, no hop-by-hop header, the client's body, no
//    byte left over, and a clean head (no control byte, no bare CR/LF, no
//    obs-fold, token header names, a request line of exactly three words);
//  - every reply sluice answers itself parses as one response, read as the
//    client reads it (no body after HEAD);
//  - explain names the route select chose.

#include <llhttp.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.h"
#include "reparse.h"
#include "sluice/base.h"
#include "sluice/http.h"
#include "sluice/router.h"
#include "sluice/tunnel.h"
#include "sluice/upstream.h"

namespace {

using namespace sluice;
using fuzz::fail;
using fuzz::show;

constexpr const char* kName = "request";
constexpr std::string_view kClientIp = "203.0.113.7";

const char* framing_name(http::Framing f) {
  switch (f) {
    case http::Framing::none: return "none";
    case http::Framing::content_length: return "length";
    case http::Framing::chunked: return "chunked";
    case http::Framing::until_close: return "close";
  }
  return "?";
}

// One client connection, DownstreamConn without the loop. The upstream is
// simulated: it connects at once and answers each request as soon as the
// request is whole (101 for a WebSocket upgrade, else a Content-Length reply).
class Conn {
 public:
  Conn(const router::RouteTable& routes, bool tls) : routes_(routes), tls_(tls) {
    llhttp_init(&parser_, HTTP_REQUEST, &settings());
    parser_.data = this;
  }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // One read from the socket.
  void read(std::string_view bytes) {
    if (closed_) return;
    if (phase_ == Phase::tunnel) {
      tunnel_.feed(bytes);
      return;
    }
    parsing_ = true;
    parse(bytes.data(), bytes.size());
    parsing_ = false;
    drain_resumes();
  }

  // The client closed its side.
  std::vector<std::string> finish() {
    if (phase_ == Phase::tunnel) {
      event("tunnel frames=" + std::to_string(tunnel_.frames()) + " valid=" + std::to_string(tunnel_.valid()) +
            " close=" + std::to_string(tunnel_.close_code().value_or(0)));
    } else if (!closed_) {
      event(std::string("eof phase=") + phase_name() + " headers_done=" + std::to_string(headers_done_));
    }
    return std::move(events_);
  }

 private:
  enum class Phase { idle, head, proxying, local, tunnel };

  const char* phase_name() const {
    switch (phase_) {
      case Phase::idle: return "idle";
      case Phase::head: return "head";
      case Phase::proxying: return "proxying";
      case Phase::local: return "local";
      case Phase::tunnel: return "tunnel";
    }
    return "?";
  }

  void event(std::string e) { events_.push_back(std::move(e)); }

  static Conn& self(llhttp_t* p) { return *static_cast<Conn*>(p->data); }

  static const llhttp_settings_t& settings() {
    static const llhttp_settings_t s = [] {
      llhttp_settings_t s;
      llhttp_settings_init(&s);
      s.on_message_begin = [](llhttp_t*) { return 0; };
      s.on_method = [](llhttp_t* p, const char* at, size_t len) {
        self(p).head_.append_method({at, len});
        return 0;
      };
      s.on_url = [](llhttp_t* p, const char* at, size_t len) {
        self(p).head_.append_target({at, len});
        return 0;
      };
      s.on_header_field = [](llhttp_t* p, const char* at, size_t len) {
        for (size_t i = 0; i < len; ++i) {
          if (!http::is_token_char(at[i])) {
            self(p).invalid_header_name_ = true;
            return static_cast<int>(HPE_USER);
          }
        }
        if (self(p).headers_done_) return self(p).skip_trailer(len);
        self(p).head_.append_field({at, len});
        return 0;
      };
      s.on_header_value = [](llhttp_t* p, const char* at, size_t len) {
        if (self(p).headers_done_) return self(p).skip_trailer(len);
        self(p).head_.append_value({at, len});
        return 0;
      };
      s.on_headers_complete = [](llhttp_t* p) { return self(p).on_headers_complete(p); };
      s.on_body = [](llhttp_t* p, const char* at, size_t len) { return self(p).on_body(at, len); };
      s.on_message_complete = [](llhttp_t* p) { return self(p).on_message_complete(); };
      return s;
    }();
    return s;
  }

  int on_headers_complete(llhttp_t* p) {
    headers_done_ = true;
    head_fields_ = head_.header_count();
    head_.http_major = llhttp_get_http_major(p);
    head_.http_minor = llhttp_get_http_minor(p);
    if (p->flags & F_CHUNKED) {
      framing_ = http::Framing::chunked;
    } else if ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0) {
      framing_ = http::Framing::content_length;
      length_ = p->content_length;
    }
    keep_alive_ = llhttp_should_keep_alive(p) != 0;
    return HPE_PAUSED;
  }

  // DownstreamConn::skip_trailer: trailers are dropped, bounded by max_header_size.
  int skip_trailer(size_t len) {
    trailer_bytes_ += len + 2;
    if (trailer_bytes_ <= routes_.config().server.max_header_size) return 0;
    reply_error(base::ErrorCode::headers_too_large, "trailer fields");
    return HPE_USER;
  }

  int on_body(const char* at, size_t len) {
    if (phase_ != Phase::proxying) return 0;
    body_received_ += len;
    if (route_ && route_->max_body && body_received_ > *route_->max_body) {
      reply_error(base::ErrorCode::body_too_large, "max_body of route '" + route_->name + "'");
      return HPE_USER;
    }
    body_.append(at, len);
    if (framing_ == http::Framing::chunked) {
      http::append_chunk(to_upstream_, {at, len});
    } else {
      to_upstream_.append(at, len);
    }
    return 0;
  }

  int on_message_complete() {
    message_done_ = true;
    // llhttp reports the trailer fields of a chunked body through
    // on_header_field/value too: DownstreamConn appends them to its head,
    // after max_header_size stopped counting (memory without a bound).
    if (headers_done_ && head_.header_count() != head_fields_ && !fuzz::known("trailers-in-head")) {
      fail(kName, "[trailers-in-head] trailer fields were appended to the request head after it was complete "
                  "(no limit applies to them)");
    }
    if (phase_ == Phase::proxying && framing_ == http::Framing::chunked) to_upstream_.append(http::kLastChunk);
    return HPE_PAUSED;
  }

  // DownstreamConn::parse.
  void parse(const char* data, size_t len) {
    if (closed_) return;
    if (paused_) {
      pending_.append(data, len);
      return;
    }
    if (phase_ == Phase::idle) {
      if (len == 0) return;
      phase_ = Phase::head;
    }
    llhttp_errno_t err = llhttp_execute(&parser_, data, len);
    const char* stop = err == HPE_OK ? data + len : llhttp_get_error_pos(&parser_);
    size_t consumed = static_cast<size_t>(stop - data);
    if (!headers_done_ || phase_ == Phase::head) head_bytes_ += consumed;
    const uint64_t max_head = routes_.config().server.max_header_size;

    if (err == HPE_OK) {
      if (!headers_done_ && head_bytes_ > max_head) reply_error(base::ErrorCode::headers_too_large, "");
      return;
    }
    if (err == HPE_PAUSED) {
      std::string rest(stop, len - consumed);
      pending_ = std::move(rest);
      paused_ = true;
      if (headers_done_ && phase_ == Phase::head) {
        handle_head();
      } else if (message_done_) {
        handle_message_complete();
      }
      return;
    }
    if (err == HPE_PAUSED_UPGRADE) {
      std::string rest(stop, len - consumed);
      llhttp_resume_after_upgrade(&parser_);
      if (!rest.empty()) parse(rest.data(), rest.size());
      return;
    }
    if (err == HPE_USER && !invalid_header_name_) return;
    base::ErrorCode code = base::ErrorCode::bad_request;
    bool length_list = err == HPE_INVALID_CONTENT_LENGTH && stop < data + len && *stop == ',' &&
                       std::string_view(llhttp_get_error_reason(&parser_)) != "Content-Length overflow";
    if (err == HPE_UNEXPECTED_CONTENT_LENGTH || err == HPE_INVALID_TRANSFER_ENCODING || length_list) {
      code = base::ErrorCode::request_smuggling;
    }
    if (response_started_) {
      close("parse error after the response started");
      return;
    }
    reply_error(code, invalid_header_name_ ? "invalid character in a header name"
                                           : llhttp_get_error_reason(&parser_));
  }

  void resume_parser() {
    if (closed_ || !paused_) return;
    resume_pending_ = true;
    if (!parsing_) drain_resumes();
  }

  void drain_resumes() {
    while (resume_pending_ && paused_ && !closed_) {
      resume_pending_ = false;
      llhttp_resume(&parser_);
      paused_ = false;
      std::string input = std::move(pending_);
      pending_.clear();
      parsing_ = true;
      parse(input.data(), input.size());
      parsing_ = false;
    }
    resume_pending_ = false;
  }

  // DownstreamConn::handle_head, without the loop and the upstream pool.
  void handle_head() {
    const config::ServerSettings& server = routes_.config().server;
    if (head_bytes_ > server.max_header_size) {
      reply_error(base::ErrorCode::headers_too_large, "");
      return;
    }
    std::optional<std::string_view> client_id = head_.find("x-request-id");
    request_id_ = client_id && http::valid_request_id(*client_id) ? std::string(*client_id)
                                                                  : http::make_request_id(++ids_, 0);
    std::string_view method = head_.method();
    if (std::optional<http::HeadProblem> problem = http::check_request_head(head_, framing_)) {
      reply_error(problem->code, std::string(problem->detail));
      return;
    }
    std::string_view target = head_.target();
    std::string_view host_header = head_.find("host").value_or("");
    std::string_view authority, origin_target = target;
    if (http::split_absolute(target, authority, origin_target)) host_header = authority;
    std::string host = router::normalize_host(host_header);
    router::Target split = router::split_target(origin_target);
    route_ = routes_.select(host, split.path, tls_);
    // Oracle: the live matcher agrees with explain (same table, same request).
    {
      router::ExplainRequest req;
      req.target = std::string(origin_target);
      req.host = std::string(host_header);
      bool matched = false;
      nlohmann::ordered_json j = router::explain(routes_, req, &matched);
      if (!tls_ && matched != (route_ != nullptr)) fail(kName, "explain and select disagree on " + show(target));
      if (!tls_ && route_ && j["route"] != route_->name) fail(kName, "explain names another route for " + show(target));
    }
    if (!route_) {
      reply_error(base::ErrorCode::no_route, "");
      return;
    }
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
        reply_error(*refused, "route '" + route_->name + "'");
        return;
      }
    }
    websocket_ = head_.has_token("upgrade", "websocket");
    if (websocket_ && !route_->forwards_websocket()) fail(kName, "a WebSocket upgrade passed admission on an http route");
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
        std::string rhost = router::normalize_host(host_header);
        if (rhost.empty()) {
          reply_error(base::ErrorCode::bad_request, "a scheme redirect needs a Host");
          return;
        }
        location = r.scheme + "://" + rhost;
        if (r.port) location += ":" + std::to_string(*r.port);
        location += std::string(origin_target);
      }
      std::string extra = "Location: " + location + "\r\n";
      std::string reply = http::simple_reply(r.status, "", "", request_id_, !keep_alive_ || request_has_body(), extra);
      reply_local(std::move(reply), r.status, std::nullopt, keep_alive_ && !request_has_body());
      return;
    }
    std::optional<std::string> upstream_target = router::upstream_target(*route_, origin_target);
    if (!upstream_target) {
      reply_error(base::ErrorCode::path_escape, "route '" + route_->name + "'");
      return;
    }
    upstream_target_ = std::move(*upstream_target);
    if (upstream_target_.empty() || upstream_target_.front() != '/') {
      fail(kName, "upstream target '" + show(upstream_target_) + "' is not origin-form");
    }
    if (route_->max_body && framing_ == http::Framing::content_length && length_ > *route_->max_body) {
      reply_error(base::ErrorCode::body_too_large, "");
      return;
    }
    phase_ = Phase::proxying;
    start_upstream();
  }

  // DownstreamConn::affinity_slot + begin_forwarding, with the upstream
  // connected at once. The server chosen by affinity only names the
  // fallback Host.
  void start_upstream() {
    const config::Config& config = routes_.config();
    const config::Upstream& up = config.upstreams.at(route_->upstream_index);
    size_t slot = 0;
    if (up.affinity == config::Affinity::engine_io && route_->kind == config::RouteKind::socketio) {
      if (std::optional<std::string_view> sid = upstream::query_param(upstream_target_, "sid")) {
        if (std::optional<upstream::TokenSid> parts = upstream::split_token_sid(*sid)) {
          std::string token(parts->token);
          std::string original(parts->sid);
          upstream_target_ = upstream::replace_query_param(upstream_target_, "sid", parts->sid);
          if (upstream::query_param(upstream_target_, "sid") != original) {
            fail(kName, "replace_query_param lost the sid in " + show(upstream_target_));
          }
          for (size_t i = 0; i < up.servers.size(); ++i)
            if (upstream::server_token(up.servers[i].text) == token) slot = i;
        }
      }
    } else if (up.affinity == config::Affinity::cookie) {
      for (size_t i = 0; i < head_.header_count(); ++i) {
        http::Header h = head_.header(i);
        if (!base::iequals(h.name, "cookie")) continue;
        if (auto token = upstream::cookie_value(h.value, "sluice_affinity")) {
          for (size_t s = 0; s < up.servers.size(); ++s)
            if (upstream::server_token(up.servers[s].text) == *token) slot = s;
        }
      }
    }
    http::ForwardInfo info;
    info.upstream_target = upstream_target_;
    info.client_ip = kClientIp;
    info.proto = tls_ ? "https" : "http";
    info.request_id = request_id_;
    if (up.host_header) info.host = *up.host_header;
    info.fallback_host = up.servers[slot].text;
    info.framing = framing_;
    info.content_length = length_;
    info.websocket = websocket_;
    upstream_head_.clear();
    http::append_upstream_request(upstream_head_, head_, info);
    expected_host_ = info.host ? std::string(*info.host)
                               : std::string(head_.find("host").value_or(info.fallback_host));
    event("forward route=" + route_->name + " framing=" + framing_name(framing_) + " ws=" +
          std::to_string(websocket_) + "\n" + upstream_head_);
    if (!message_done_) resume_parser();
  }

  void handle_message_complete() {
    if (phase_ == Phase::proxying) {
      check_forwarded();
      event("body " + show(body_, 100000));
      if (websocket_) {
        // The upstream switches protocols: from here on, frames both ways.
        response_started_ = true;
        phase_ = Phase::tunnel;
        tunnel_.feed(pending_);
        pending_.clear();
        return;
      }
      // The upstream's answer (Content-Length) is complete at once.
      response_started_ = true;
      finish_exchange();
      return;
    }
    if (phase_ == Phase::local && !close_after_write_) finish_exchange();
  }

  bool request_has_body() const { return framing_ != http::Framing::none; }

  void reply_error(base::ErrorCode code, std::string detail) {
    if (response_started_) {
      close("error after the response started");
      return;
    }
    if (request_id_.empty()) request_id_ = http::make_request_id(++ids_, 0);
    bool keep = keep_alive_ && headers_done_ && !request_has_body() && code != base::ErrorCode::bad_request &&
                code != base::ErrorCode::request_smuggling && code != base::ErrorCode::headers_too_large &&
                code != base::ErrorCode::header_timeout;
    const base::ErrorInfo& info = base::error_info(code);
    reply_local(http::error_reply(code, detail, request_id_, !keep, head_.method() == "HEAD"), info.status,
                code, keep);
  }

  void reply_local(std::string bytes, int status, std::optional<base::ErrorCode> error, bool keep_alive) {
    // Oracle: a reply sluice writes itself is one well-formed response.
    // A client that sent HEAD reads no body (RFC 9110 9.3.2): bytes after
    // the head would be taken for the next response on a kept connection.
    bool client_head = head_.method() == "HEAD";
    fuzz::check_head_shape(kName, bytes, "\nin a local reply: " + show(bytes), "target-ctl");
    fuzz::Reparse r = fuzz::reparse(bytes, HTTP_RESPONSE, client_head);
    // (A Location that echoes a control byte of the target fails to parse:
    // the shape check above has named it already.)
    bool ctl_known = fuzz::known("target-ctl") && !fuzz::head_shape_problem(bytes).empty();
    if ((r.error != HPE_PAUSED || r.message.status != status) && !ctl_known) {
      fail(kName, "local reply does not parse as one response (" + r.reason + "): " + show(bytes));
    }
    bool parsed = r.error == HPE_PAUSED;
    if (parsed && r.consumed != bytes.size() && keep_alive && !fuzz::known("head-reply-body")) {
      fail(kName, "[head-reply-body] a kept-alive reply to HEAD carries a body the client reads as the next "
                  "response: " + show(bytes));
    }
    phase_ = Phase::local;
    response_started_ = true;
    keep_alive_ = keep_alive;
    if (!keep_alive_) close_after_write_ = true;
    // The detail (llhttp's reason) may differ with the reads; the code may not.
    event("reply " + std::to_string(status) + " " +
          std::string(error ? base::error_info(*error).code : "local") + " keep=" + std::to_string(keep_alive_));
    if (std::getenv("SLUICE_FUZZ_TRACE") && error) std::fprintf(stderr, "  reply: %s\n", show(bytes).c_str());
    if (!keep_alive_) {
      closed_ = true;  // the write goes out, then the connection lingers and closes
      return;
    }
    if (message_done_) {
      finish_exchange();
    } else {
      resume_parser();
    }
  }

  void finish_exchange() {
    if (!keep_alive_) {
      close("not keep-alive");
      return;
    }
    head_.clear();
    head_bytes_ = 0;
    headers_done_ = message_done_ = false;
    trailer_bytes_ = 0;
    framing_ = http::Framing::none;
    length_ = body_received_ = 0;
    route_ = nullptr;
    request_id_.clear();
    upstream_target_.clear();
    upstream_head_.clear();
    to_upstream_.clear();
    body_.clear();
    websocket_ = false;
    response_started_ = false;
    close_after_write_ = false;
    phase_ = Phase::idle;
    resume_parser();
  }

  void close(std::string why) {
    event("close " + why);
    closed_ = true;
  }

  // The forwarded request, as the upstream parses it.
  void check_forwarded() {
    std::string wire = upstream_head_ + to_upstream_;
    fuzz::check_head_shape(kName, upstream_head_, "\nin the head sent upstream: " + show(upstream_head_, 4000),
                           "target-ctl");
    fuzz::Reparse r = fuzz::reparse(wire, HTTP_REQUEST);
    const fuzz::ParsedMessage& m = r.message;
    std::string where = "\nupstream bytes: " + show(wire, 4000);
    bool ok_end = r.error == HPE_PAUSED || (websocket_ && r.error == HPE_PAUSED_UPGRADE);
    if (!ok_end || !m.complete) fail(kName, "the forwarded request does not parse (" + r.reason + ")" + where);
    if (r.consumed != wire.size()) fail(kName, "bytes after the forwarded request (smuggled)" + where);
    if (m.method != head_.method()) fail(kName, "method changed" + where);
    if (m.url != upstream_target_) fail(kName, "target changed" + where);
    if (m.body != body_) fail(kName, "body changed" + where);
    if (m.count("host") != 1) fail(kName, "not exactly one Host upstream" + where);
    if (*m.find("host") != expected_host_) fail(kName, "Host is not " + show(expected_host_) + where);
    size_t cl = m.count("content-length"), te = m.count("transfer-encoding");
    switch (framing_) {
      case http::Framing::none:
        if (cl || te) fail(kName, "framing headers on a body-less request" + where);
        break;
      case http::Framing::content_length:
        if (cl != 1 || te || *m.find("content-length") != std::to_string(length_)) fail(kName, "bad Content-Length" + where);
        break;
      case http::Framing::chunked:
        if (cl || te != 1 || *m.find("transfer-encoding") != "chunked") fail(kName, "bad Transfer-Encoding" + where);
        break;
      case http::Framing::until_close: fail(kName, "until_close framing on a request");
    }
    for (const auto& [name, value] : m.headers) {
      bool ws_header = websocket_ && (base::iequals(name, "connection") || base::iequals(name, "upgrade"));
      if (http::is_hop_by_hop(name) && !ws_header && !base::iequals(name, "transfer-encoding")) {
        fail(kName, "hop-by-hop header " + show(name) + " forwarded" + where);
      }
      if (head_.has_token("connection", name) && !ws_header && !base::iequals(name, "host") &&
          !base::iequals(name, "x-forwarded-for") && !base::iequals(name, "x-forwarded-proto") &&
          !base::iequals(name, "x-forwarded-host") && !base::iequals(name, "x-request-id") &&
          !base::iequals(name, "content-length") && !base::iequals(name, "transfer-encoding")) {
        fail(kName, "header " + show(name) + " named in Connection forwarded" + where);
      }
    }
    if (m.count("x-request-id") != 1 || *m.find("x-request-id") != request_id_) fail(kName, "X-Request-Id" + where);
    if (m.count("x-forwarded-for") != 1) fail(kName, "X-Forwarded-For not folded into one" + where);
    if (m.count("expect")) fail(kName, "Expect forwarded" + where);
  }

  const router::RouteTable& routes_;
  bool tls_;
  llhttp_t parser_;
  std::vector<std::string> events_;
  uint64_t ids_ = 0;

  bool closed_ = false;
  bool paused_ = false;
  bool parsing_ = false;
  bool resume_pending_ = false;
  bool invalid_header_name_ = false;
  bool close_after_write_ = false;
  std::string pending_;

  Phase phase_ = Phase::idle;
  http::MessageHead head_;
  size_t head_bytes_ = 0;
  size_t head_fields_ = 0;
  size_t trailer_bytes_ = 0;
  bool headers_done_ = false;
  bool message_done_ = false;
  bool keep_alive_ = true;
  bool response_started_ = false;
  http::Framing framing_ = http::Framing::none;
  uint64_t length_ = 0;
  uint64_t body_received_ = 0;
  const config::Route* route_ = nullptr;
  std::string request_id_;
  std::string upstream_target_;
  std::string upstream_head_;
  std::string expected_host_;
  std::string to_upstream_;
  std::string body_;
  bool websocket_ = false;
  tunnel::FrameTracker tunnel_;
};

std::vector<std::string> run(const router::RouteTable& routes, bool tls,
                             const std::vector<std::string_view>& reads) {
  Conn conn(routes, tls);
  for (std::string_view r : reads) conn.read(r);
  return conn.finish();
}

// A 431 is decided as soon as the head grows past the limit, so a parse
// error further on may be seen in one read and not in small ones: compare
// what came before the first 431 of either run.
void compare(std::vector<std::string> whole, std::vector<std::string> split, const char* how) {
  if (whole == split) return;
  size_t cut = std::max(whole.size(), split.size());
  for (const auto* e : {&whole, &split}) {
    for (size_t i = 0; i < e->size() && i < cut; ++i)
      if ((*e)[i].starts_with("reply 431 ")) cut = i;
  }
  if (cut < whole.size()) whole.resize(cut);
  if (cut < split.size()) split.resize(cut);
  if (whole == split) return;
  // DownstreamConn::parse tells a Content-Length list from other invalid
  // lengths by the byte at llhttp's error position, which for some errors
  // (overflow) is the byte after the bad one: past the end of a short read.
  auto as_bad_request = [](std::vector<std::string> e) {
    for (std::string& x : e)
      if (x.starts_with("reply 400 request_smuggling")) x.replace(10, 17, "bad_request");
    return e;
  };
  bool only_class = as_bad_request(whole) == as_bad_request(split);
  if (only_class && fuzz::known("cl-error-class")) return;
  std::string why = std::string(only_class ? "[cl-error-class] " : "") + "reads " + how + " change the outcome\n";
  for (size_t i = 0; i < std::max(whole.size(), split.size()); ++i) {
    why += "  one read: " + (i < whole.size() ? show(whole[i], 300) : "-") + "\n";
    why += "  " + std::string(how) + ": " + (i < split.size() ? show(split[i], 300) : "-") + "\n";
  }
  fail(kName, why);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const router::RouteTable routes(fuzz::fixture_config(kName));
  std::string_view input(reinterpret_cast<const char*>(data), size);
  for (bool tls : {false, true}) {
    std::vector<std::string> whole = run(routes, tls, {input});
    if (std::getenv("SLUICE_FUZZ_TRACE")) {
      for (const std::string& e : whole) std::fprintf(stderr, "[%s] %s\n", tls ? "tls" : "plain", show(e, 2000).c_str());
    }
    if (tls) continue;  // splits are checked on plain HTTP; TLS only changes routing
    std::vector<std::string_view> bytes;
    for (size_t i = 0; i < input.size(); ++i) bytes.push_back(input.substr(i, 1));
    compare(whole, run(routes, tls, bytes), "one byte at a time");
    compare(whole, run(routes, tls, fuzz::pieces(input, 1, 64)), "cut at random points");
  }
  return 0;
}
