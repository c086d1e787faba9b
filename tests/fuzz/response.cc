// fuzz_response: upstream response bytes through sluice's response path, as
// far as it is pure. proxy::UpstreamConn and DownstreamConn own libuv
// handles, so this target mirrors UpstreamConn::handle_input and its llhttp
// callbacks (HTTP_RESPONSE, no lenient flags, interim 1xx skipped, HEAD
// skipping the body, 101 only for an allowed upgrade) and
// DownstreamConn::on_response_head / on_response_body /
// on_response_complete / finish_handshake_rewrite (framing choice,
// re-chunking, read-until-close for HTTP/1.0 clients, the Engine.IO
// handshake rewrite, the affinity cookie) with http::append_client_response.
// Keep it in step with src/proxy/upstream_conn.cc and downstream.cc.
//
// Every input runs for four requests: GET from an HTTP/1.1 client, HEAD,
// an allowed WebSocket upgrade, and an Engine.IO polling handshake with
// cookie affinity from an HTTP/1.0 client. The upstream closes after the
// input.
//
// Oracles (abort on violation):
//  - one read, one byte at a time and random cuts give the same client
//    head, the same body bytes and the same end;
//  - what the client receives for a completed response parses, by a strict
//    llhttp, as exactly one response with the upstream's status and body
//    (and the rewritten handshake body), one framing header, no hop-by-hop
//    header the upstream sent, nothing left over, and a clean head.

#include <llhttp.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.h"
#include "reparse.h"
#include "sluice/base.h"
#include "sluice/http.h"
#include "sluice/tunnel.h"
#include "sluice/upstream.h"

namespace {

using namespace sluice;
using fuzz::fail;
using fuzz::show;

constexpr const char* kName = "response";
constexpr size_t kMaxPendingInput = 64 * 1024;  // proxy.h
constexpr std::string_view kToken = "abcdef";
constexpr std::string_view kRequestId = "0123456789abcdef0123456789abcdef";

struct Request {
  const char* name;
  bool head = false;         // HEAD request
  bool websocket = false;    // an allowed upgrade was forwarded
  bool rewrite = false;      // Engine.IO polling handshake with affinity
  bool set_cookie = false;   // cookie affinity: tell the client its server
  int http_minor = 1;        // the client's HTTP version
};

constexpr Request kRequests[] = {
    {"GET/1.1"},
    {"HEAD/1.1", true},
    {"upgrade", false, true},
    {"handshake/1.0", false, false, true, true, 0},
};

// One upstream connection and the client side of the exchange it serves.
class Exchange {
 public:
  explicit Exchange(const Request& req) : req_(req) {
    websocket_ = req.websocket;
    rewrite_handshake_ = req.rewrite;
    llhttp_init(&parser_, HTTP_RESPONSE, &settings());
    parser_.data = this;
  }
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  // UpstreamConn::on_input with nread > 0.
  void read(std::string_view bytes) {
    if (ended_) return;
    if (tunnel_) {
      from_upstream_.feed(bytes);
      return;
    }
    if (response_done_) {
      trailing_ = true;  // bytes after a complete response: never pooled
      return;
    }
    llhttp_errno_t err = llhttp_execute(&parser_, bytes.data(), bytes.size());
    if (err == HPE_PAUSED_UPGRADE && response_.status == 101) {
      const char* stop = llhttp_get_error_pos(&parser_);
      tunnel_ = true;
      from_upstream_.feed({stop, static_cast<size_t>(bytes.data() + bytes.size() - stop)});
      return;
    }
    if (err == HPE_PAUSED) {
      const char* stop = llhttp_get_error_pos(&parser_);
      bool trailing = stop != bytes.data() + bytes.size();
      complete(!trailing && llhttp_should_keep_alive(&parser_) != 0);
      return;
    }
    if (err != HPE_OK) {
      fail_exchange("bad_response", llhttp_get_error_reason(&parser_));
      return;
    }
  }

  // UpstreamConn::on_input with UV_EOF: the upstream closed.
  std::string finish() {
    if (!ended_ && !tunnel_) {
      if (response_started_ && !response_done_) {
        llhttp_finish(&parser_);
        if (response_done_) complete(false);
      }
      if (!response_done_) fail_exchange("reset", "closed before the response was complete");
      if (!response_done_ && (status_ == 204 || status_ == 304) && !fuzz::known("no-body-status")) {
        fail(kName, "[no-body-status] a " + std::to_string(status_) +
                        " response is still waiting for a body when the upstream closes (a kept-alive upstream "
                        "would hold the exchange until read_timeout)");
      }
    }
    // Bytes after a complete response keep the connection out of the pool,
    // whether they came in the same read or later.
    std::string end = end_;
    if (trailing_ && end == "complete reusable=1") end = "complete reusable=0";
    std::string out = "head " + head_ + "\nbody " + body_ + "\nend " + end;
    if (tunnel_) {
      out += " tunnel frames=" + std::to_string(from_upstream_.frames()) +
             " valid=" + std::to_string(from_upstream_.valid());
    }
    return out;
  }

  const std::string& to_client() const { return to_client_; }
  bool upgrade_mismatch() const { return upgrade_mismatch_; }
  bool trailers_merged() const { return trailers_merged_; }
  bool body_without_body() const { return body_without_body_; }
  bool completed() const { return end_.starts_with("complete"); }
  bool tunnel() const { return tunnel_; }
  http::Framing framing() const { return response_framing_; }
  const std::string& body() const { return body_; }
  const http::MessageHead& upstream_head() const { return response_; }
  int status() const { return status_; }
  std::optional<uint64_t> upstream_length() const { return upstream_length_; }

 private:
  static Exchange& self(llhttp_t* p) { return *static_cast<Exchange*>(p->data); }

  static const llhttp_settings_t& settings() {
    static const llhttp_settings_t s = [] {
      llhttp_settings_t s;
      llhttp_settings_init(&s);
      s.on_status = [](llhttp_t* p, const char* at, size_t len) {
        self(p).response_.append_reason({at, len});
        return 0;
      };
      // After the head these are trailer fields: never stored (UpstreamConn).
      s.on_header_field = [](llhttp_t* p, const char* at, size_t len) {
        if (!self(p).response_started_) self(p).response_.append_field({at, len});
        return 0;
      };
      s.on_header_value = [](llhttp_t* p, const char* at, size_t len) {
        if (!self(p).response_started_) self(p).response_.append_value({at, len});
        return 0;
      };
      s.on_headers_complete = [](llhttp_t* p) { return self(p).on_headers_complete(p); };
      s.on_body = [](llhttp_t* p, const char* at, size_t len) {
        self(p).on_response_body({at, len});
        return 0;
      };
      s.on_message_complete = [](llhttp_t* p) {
        Exchange& e = self(p);
        if (!e.response_started_) return 0;
        if (e.response_.status == 101) return 0;
        e.response_done_ = true;
        return static_cast<int>(HPE_PAUSED);
      };
      return s;
    }();
    return s;
  }

  // UpstreamConn::on_headers_complete.
  int on_headers_complete(llhttp_t* p) {
    response_.status = llhttp_get_status_code(p);
    response_.http_major = llhttp_get_http_major(p);
    response_.http_minor = llhttp_get_http_minor(p);
    if (response_.status >= 100 && response_.status < 200 && response_.status != 101) {
      response_.clear();
      return 1;  // an interim response has no body, whatever it declares
    }
    if (http::check_response_head(response_, llhttp_get_upgrade(p) != 0)) return -1;
    response_started_ = true;
    // A 101 without "Upgrade" and "Connection: upgrade" is an ordinary 1xx
    // to llhttp: it goes on parsing HTTP after it while the client, told
    // "Upgrade: websocket", has switched protocols.
    if (response_.status == 101 && websocket_ && !llhttp_get_upgrade(p)) {
      if (!fuzz::known("101-without-upgrade")) {
        fail(kName, "[101-without-upgrade] a 101 llhttp does not take for an upgrade is relayed as a WebSocket "
                    "switch");
      }
      upgrade_mismatch_ = true;
    }
    bool chunked = (p->flags & F_CHUNKED) != 0;
    bool has_length = (p->flags & F_CONTENT_LENGTH) != 0;
    uint64_t length = has_length ? p->content_length : UINT64_MAX;
    if (has_length) upstream_length_ = p->content_length;
    head_fields_ = response_.header_count();
    int rc = on_response_head(length, chunked);
    if (rc != 0) return rc;
    return req_.head || response_.status == 204 || response_.status == 304 ? 1 : 0;
  }

  std::string affinity_cookie() const {
    if (!req_.set_cookie) return {};
    return "Set-Cookie: sluice_affinity=" + std::string(kToken) + "; Path=/; HttpOnly\r\n";
  }

  // DownstreamConn::on_response_head.
  int on_response_head(uint64_t content_length, bool chunked) {
    if (response_.status == 101 && !websocket_) return -1;
    status_ = response_.status;
    bool no_body = req_.head || response_.status == 204 || response_.status == 304 || response_.status == 101;
    std::string cookie = affinity_cookie();
    http::ResponseInfo info;
    info.request_id = kRequestId;
    info.extra_headers = cookie;
    if (response_.status == 101) {
      info.websocket = true;
      response_framing_ = http::Framing::none;
      http::append_client_response(to_client_, response_, info);
      head_ = to_client_;
      return 0;
    }
    if (rewrite_handshake_ && response_.status == 200 && !no_body) {
      response_framing_ = http::Framing::none;
      return 0;
    }
    rewrite_handshake_ = false;
    if (no_body) {
      response_framing_ = http::Framing::none;
      if (content_length != UINT64_MAX && response_.status != 204) {
        info.framing = http::Framing::content_length;
        info.content_length = content_length;
      }
    } else if (!chunked && content_length != UINT64_MAX) {
      response_framing_ = info.framing = http::Framing::content_length;
      info.content_length = content_length;
    } else if (req_.http_minor >= 1) {
      response_framing_ = info.framing = http::Framing::chunked;
    } else {
      response_framing_ = info.framing = http::Framing::until_close;
      keep_alive_ = false;
    }
    info.close = !keep_alive_;
    http::append_client_response(to_client_, response_, info);
    head_ = to_client_;
    return 0;
  }

  // DownstreamConn::on_response_body.
  void on_response_body(std::string_view data) {
    // RFC 9110 6.4.1: a response to HEAD, a 1xx, 204 or 304 has no body,
    // whatever its Content-Length says; llhttp leaves that to the caller
    // (on_headers_complete returning 1).
    if (req_.head || !response_started_ || status_ == 204 || status_ == 304) {
      if (!fuzz::known("no-body-status")) {
        fail(kName, "[no-body-status] body bytes read for a " +
                        (response_started_ ? std::to_string(status_) : std::string("1xx (interim)")) +
                        " response (llhttp was not told it has no body): " + show(data, 200));
      }
      body_without_body_ = true;  // what the client gets is known to be wrong
    }
    if (rewrite_handshake_) {
      handshake_body_.append(data);
      if (handshake_body_.size() > kMaxPendingInput) {
        rewrite_handshake_ = false;
        http::ResponseInfo info;
        info.request_id = kRequestId;
        info.framing = response_framing_ = http::Framing::chunked;
        info.close = !keep_alive_;
        http::append_client_response(to_client_, response_, info);
        head_ = to_client_;
        http::append_chunk(to_client_, handshake_body_);
        body_ += handshake_body_;
        handshake_body_.clear();
      }
      return;
    }
    body_.append(data);
    if (response_framing_ == http::Framing::chunked) {
      http::append_chunk(to_client_, data);
    } else {
      to_client_.append(data);
    }
  }

  // DownstreamConn::on_response_complete (+ finish_handshake_rewrite).
  void complete(bool reusable) {
    // llhttp reports trailer fields through on_header_field/value too: they
    // land in the MessageHead after the head was complete.
    if (response_.header_count() != head_fields_) {
      if (rewrite_handshake_ && !fuzz::known("trailers-in-head")) {
        fail(kName, "[trailers-in-head] trailer fields of the upstream response are merged into the head sent "
                    "to the client (RFC 9110 6.5.1)");
      }
      trailers_merged_ = rewrite_handshake_;
    }
    if (rewrite_handshake_) {
      rewrite_handshake_ = false;
      std::optional<std::string> body = upstream::rewrite_handshake(handshake_body_, kToken);
      std::string cookie = affinity_cookie();
      http::ResponseInfo info;
      info.request_id = kRequestId;
      info.extra_headers = cookie;
      info.framing = http::Framing::content_length;
      info.content_length = body ? body->size() : handshake_body_.size();
      info.close = !keep_alive_;
      http::append_client_response(to_client_, response_, info);
      head_ = to_client_;
      to_client_.append(body ? *body : handshake_body_);
      body_ = body ? *body : handshake_body_;
      handshake_body_.clear();
    }
    if (response_framing_ == http::Framing::chunked) to_client_.append(http::kLastChunk);
    response_done_ = true;
    ended_ = !reusable;  // a reusable connection still sees what follows
    end_ = std::string("complete reusable=") + (reusable ? "1" : "0");
  }

  void fail_exchange(const char* code, const std::string& why) {
    (void)why;
    ended_ = true;
    // Before anything reached the client: a local 502. After: a close.
    end_ = std::string("error ") + code + (head_.empty() ? " reply" : " close");
  }

  const Request& req_;
  llhttp_t parser_;
  http::MessageHead response_;
  bool response_started_ = false;
  bool response_done_ = false;
  bool tunnel_ = false;
  bool ended_ = false;
  bool upgrade_mismatch_ = false;
  bool trailers_merged_ = false;
  bool body_without_body_ = false;
  size_t head_fields_ = 0;
  bool trailing_ = false;
  bool websocket_ = false;
  bool rewrite_handshake_ = false;
  bool keep_alive_ = true;
  int status_ = 0;
  std::optional<uint64_t> upstream_length_;
  http::Framing response_framing_ = http::Framing::none;
  std::string handshake_body_;
  std::string to_client_;
  std::string head_;
  std::string body_;
  std::string end_ = "open";
  tunnel::FrameTracker from_upstream_;
};

// What the client makes of the bytes of a completed exchange.
void check_client_view(const Request& req, const Exchange& e) {
  const std::string& wire = e.to_client();
  std::string where = std::string("\nrequest: ") + req.name + "\nclient bytes: " + show(wire, 3000);
  fuzz::check_head_shape(kName, wire, "\nin the head sent to the client" + where, "reason-ctl");
  if (e.tunnel()) return;
  // Read-until-close bodies end with the connection: the client sees the
  // end as llhttp_finish.
  fuzz::Reparse r = fuzz::reparse(wire, HTTP_RESPONSE, req.head);
  if (r.error == HPE_OK && e.framing() == http::Framing::until_close) {
    r.message.complete = true;
    r.error = HPE_PAUSED;
  }
  const fuzz::ParsedMessage& m = r.message;
  if (r.error != HPE_PAUSED || !m.complete) fail(kName, "the client cannot parse the response (" + r.reason + ")" + where);
  if (r.consumed != wire.size()) fail(kName, "bytes after the response the client reads (desync)" + where);
  if (m.status != e.status()) fail(kName, "status changed" + where);
  if (!req.head && m.body != e.body()) fail(kName, "body changed" + where);
  size_t cl = m.count("content-length"), te = m.count("transfer-encoding");
  if (cl > 1 || te > 1 || (cl && te)) fail(kName, "ambiguous framing headers" + where);
  if (te && *m.find("transfer-encoding") != "chunked") fail(kName, "Transfer-Encoding other than chunked" + where);
  for (const auto& [name, value] : m.headers) {
    bool ours = base::iequals(name, "connection") && base::iequals(value, "close");
    if (base::iequals(name, "transfer-encoding")) continue;
    if (http::is_hop_by_hop(name) && !ours) fail(kName, "hop-by-hop header " + show(name) + " relayed" + where);
  }
  if (req.head && e.upstream_length() && e.status() != 204 &&
      (cl != 1 || *m.find("content-length") != std::to_string(*e.upstream_length()))) {
    fail(kName, "HEAD response lost its Content-Length" + where);
  }
}

std::string run(const Request& req, const std::vector<std::string_view>& reads, bool check) {
  Exchange e(req);
  for (std::string_view r : reads) e.read(r);
  std::string outcome = e.finish();
  if (check && (e.completed() || e.tunnel()) && !e.upgrade_mismatch() && !e.trailers_merged() &&
      !e.body_without_body()) {
    check_client_view(req, e);
  }
  return outcome;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < input.size(); ++i) bytes.push_back(input.substr(i, 1));
  for (const Request& req : kRequests) {
    std::string whole = run(req, {input}, true);
    if (std::getenv("SLUICE_FUZZ_TRACE")) std::fprintf(stderr, "[%s] %s\n", req.name, show(whole, 3000).c_str());
    for (auto [how, reads] : {std::pair{"one byte at a time", bytes},
                              std::pair{"cut at random points", fuzz::pieces(input, 2, 64)}}) {
      std::string split = run(req, reads, false);
      if (split != whole) {
        fail(kName, std::string("reads ") + how + " change what the client gets\nrequest: " + req.name +
                        "\n  one read: " + show(whole, 2000) + "\n  " + how + ": " + show(split, 2000));
      }
    }
  }
  return 0;
}
