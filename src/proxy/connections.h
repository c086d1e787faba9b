#pragma once
// The two connection types of the proxy and the link between them.
//
// Ownership: each connection owns its libuv handles and frees itself after
// their close callbacks (never earlier). A DownstreamConn and the
// UpstreamConn serving its current request point at each other without
// owning; whichever goes first calls the other's detach, after which neither
// touches the other. An idle UpstreamConn is listed in its ServerSlot's pool.

#include <llhttp.h>
#include <uv.h>

#include <chrono>
#include <optional>
#include <string>

#include "sluice/base.h"
#include "sluice/http.h"
#include "sluice/proxy.h"
#include "sluice/tls.h"
#include "sluice/tunnel.h"

namespace sluice::proxy {

// A uv_write_t with the bytes it writes; freed in the write callback.
struct WriteReq {
  uv_write_t req;
  std::string data;
  uv_buf_t buf;
};

// Writes `data` to `stream`: at once when nothing is queued, and what does
// not fit through a WriteReq whose callback `cb` gets `owner` in req.data and
// must delete it. Returns 0, or a libuv error (nothing queued then).
// `in_flight` counts the WriteReqs not yet called back.
int write_or_queue(uv_stream_t* stream, std::string data, void* owner, uv_write_cb cb,
                   size_t& in_flight);

class UpstreamConn {
 public:
  // Starts connecting to `slot` of `upstream`. The owner hears back through
  // DownstreamConn::on_upstream_connected or on_upstream_error, never inline.
  static UpstreamConn* connect(WorkerContext& ctx, std::shared_ptr<Generation> gen,
                               size_t upstream, size_t slot);
  UpstreamConn(const UpstreamConn&) = delete;
  UpstreamConn& operator=(const UpstreamConn&) = delete;

  // Takes the connection out of the pool (or from connect) for `owner`'s
  // request. `head_request` says the response has no body (RFC 9110 9.3.2).
  void attach(DownstreamConn* owner, bool head_request, base::Duration read_timeout);
  // Called by the owner when it goes away mid-exchange: the connection cannot
  // be reused, so it closes.
  void abort();
  // Queues bytes towards the upstream.
  void send(std::string data);
  // Starts the read timeout: the whole request has been handed over.
  void request_sent();
  void pause_reading();
  void resume_reading();
  // The owner releases a connection whose response completed cleanly:
  // pooled when `reusable`, closed otherwise.
  void release(bool reusable);

  bool connected() const { return connected_; }
  bool reused() const { return reused_; }
  size_t write_queue() const;
  const std::string& address() const;
  const http::MessageHead& response() const { return response_; }
  size_t upstream_index() const { return upstream_; }
  size_t slot_index() const { return slot_; }

  void close();

 private:
  UpstreamConn(WorkerContext& ctx, std::shared_ptr<Generation> gen, size_t upstream, size_t slot);
  ~UpstreamConn();

  void fail(base::ErrorCode code, std::string cause);
  // Forgets the owner (without telling it) and stops counting it as load.
  void detach_owner();
  void start_idle();
  void arm_read_timer();
  void maybe_free();

  static void on_connect(uv_connect_t* req, int status) noexcept;
  static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf) noexcept;
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept;
  static void on_write(uv_write_t* req, int status) noexcept;
  static void on_timer(uv_timer_t* timer) noexcept;
  static void on_close(uv_handle_t* handle) noexcept;

  static int on_status(llhttp_t* p, const char* at, size_t len) noexcept;
  static int on_header_field(llhttp_t* p, const char* at, size_t len) noexcept;
  static int on_header_value(llhttp_t* p, const char* at, size_t len) noexcept;
  static int on_headers_complete(llhttp_t* p) noexcept;
  static int on_body(llhttp_t* p, const char* at, size_t len) noexcept;
  static int on_message_complete(llhttp_t* p) noexcept;
  static const llhttp_settings_t kSettings;

  void handle_input(const char* data, size_t len);
  bool head_fits(size_t len);
  // Bytes from the server (decrypted for TLS upstreams), or an end.
  void on_input(const char* data, ssize_t nread);
  void start_tls(std::shared_ptr<const tls::ClientContext> tls);
  void receive_tls(const char* data, size_t len);
  void send_wire(std::string data);

  WorkerContext& ctx_;
  std::shared_ptr<Generation> gen_;  // the generation whose pool it belongs to
  size_t upstream_;
  size_t slot_;
  metrics::ServerCells* cells_;  // this worker's cells for the server
  uv_tcp_t tcp_;
  uv_timer_t timer_;
  uv_connect_t connect_req_;
  llhttp_t parser_;
  http::MessageHead response_;
  DownstreamConn* owner_ = nullptr;
  base::Duration read_timeout_{0};
  enum class TimerRole { none, connect, read, idle } timer_role_ = TimerRole::none;
  int pending_closes_ = 0;
  size_t writes_in_flight_ = 0;
  bool connected_ = false;
  bool reused_ = false;
  bool closing_ = false;
  bool head_request_ = false;
  bool reading_ = false;
  bool paused_ = false;
  bool response_started_ = false;  // a non-1xx head was seen
  bool response_done_ = false;
  bool in_pool_ = false;
  bool request_sent_ = false;
  bool tunnel_ = false;  // after a 101: raw bytes, never pooled
  bool handshaking_ = false;  // TCP is up, the TLS handshake is not done
  size_t head_bytes_ = 0;     // of the response head being parsed
  std::string_view bad_head_;  // why check_response_head refused the head (a constant)
  int connect_error_ = 0;      // uv_tcp_connect's own failure, reported from the timer
  std::unique_ptr<tls::Session> tls_;
};

class DownstreamConn {
 public:
  static void accept(WorkerContext& ctx, uv_stream_t* listener, std::string_view key);
  DownstreamConn(const DownstreamConn&) = delete;
  DownstreamConn& operator=(const DownstreamConn&) = delete;

  // From the UpstreamConn serving the current request.
  void on_upstream_connected();
  // The first response byte arrived: the request may have been acted on, so
  // a reset after this is never retried.
  void on_upstream_spoke();
  void on_upstream_error(base::ErrorCode code, std::string cause);
  // Returns what llhttp's on_headers_complete should return.
  int on_response_head(const http::MessageHead& response, uint64_t content_length, bool chunked,
                       bool keep_alive);
  void on_response_body(std::string_view data);
  void on_response_complete(bool upstream_reusable);
  void on_upstream_drained();  // its write queue fell below the low-water mark
  // `conn` closed while still attached (no planned end reached): forget it,
  // and end the exchange as a reset if it was still waiting on it.
  void on_upstream_detached(UpstreamConn* conn);
  void flush_to_client();      // after each upstream read
  // WebSocket tunnel (after a 101): `rest` is what followed the 101 head.
  void start_tunnel(std::string_view rest);
  void on_tunnel_upstream_data(std::string_view data);
  void on_tunnel_upstream_closed(const std::string& cause);

  // Drain: true for a tunnel or a connection waiting for a request, which
  // the worker ends later with drain_end(); a request in flight ends its
  // connection after the response.
  bool begin_drain();
  void drain_end();

  void close();

 private:
  // Ends the connection gracefully after the last reply: FIN, then drain.
  void linger();
  // True (and the timer re-armed) when queued response bytes moved within
  // `limit`: the client is slow, not gone.
  bool write_stalled_for(base::Duration limit);
  static void on_shutdown(uv_shutdown_t* req, int status) noexcept;

  DownstreamConn(WorkerContext& ctx);
  ~DownstreamConn();

  enum class Phase : uint8_t {
    idle,        // between requests (keepalive_timeout)
    head,        // receiving a request head (header_timeout)
    proxying,    // request routed to an upstream
    local,       // answered by sluice; waiting for the reply to be written
    tunnel,      // a WebSocket tunnel: raw bytes both ways (tunnel_idle)
  };

  void start();
  bool waiting_for_request() const;
  // Client bytes (decrypted on TLS listeners), or an end (nread < 0).
  void on_input(const char* data, ssize_t nread);
  // Ciphertext from a TLS client: decrypt, answer handshakes, pass on.
  void receive_tls(const char* data, size_t len);
  void feed(const char* data, size_t len);  // client bytes, from on_input
  void parse(const char* data, size_t len);
  void drain_resumes();
  void handle_head();
  int skip_trailer(size_t len);  // a parser callback's return value
  void handle_message_complete();
  void resume_parser();
  void update_reading();
  void arm_timer(base::Duration d);
  void start_upstream(std::optional<size_t> exclude);
  void begin_forwarding();
  void send(std::string data);
  void send_wire(std::string data);  // bytes as they go on the socket
  void reply_local(std::string bytes, int status, std::optional<base::ErrorCode> error,
                   bool keep_alive);
  void reply_error(base::ErrorCode code, std::string detail);
  void finish_exchange();
  // Counts the exchange in the metrics (once) and writes its access log line.
  void log_exchange();
  void count_exchange();
  void count_tunnel_end();
  void note_close_code(const tunnel::FrameTracker& tracker);
  metrics::RouteCells& route_cells() const;
  void reset_exchange();
  void fail_after_response_started();
  void tunnel_from_client(std::string_view data);
  void end_tunnel(std::optional<uint16_t> client_code, std::optional<uint16_t> upstream_code);
  std::optional<size_t> affinity_slot(UpstreamState& up);
  // The Set-Cookie line of cookie affinity for this response, or "".
  std::string affinity_cookie() const;
  void finish_handshake_rewrite();
  bool request_has_body() const;
  std::string upstream_detail(std::string_view cause) const;

  static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf) noexcept;
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept;
  static void on_write(uv_write_t* req, int status) noexcept;
  static void on_timer(uv_timer_t* timer) noexcept;
  static void on_close(uv_handle_t* handle) noexcept;

  static int on_message_begin(llhttp_t* p) noexcept;
  static int on_method(llhttp_t* p, const char* at, size_t len) noexcept;
  static int on_url(llhttp_t* p, const char* at, size_t len) noexcept;
  static int on_header_field(llhttp_t* p, const char* at, size_t len) noexcept;
  static int on_header_value(llhttp_t* p, const char* at, size_t len) noexcept;
  static int on_headers_complete(llhttp_t* p) noexcept;
  static int on_body(llhttp_t* p, const char* at, size_t len) noexcept;
  static int on_message_complete(llhttp_t* p) noexcept;
  static const llhttp_settings_t kSettings;

  WorkerContext& ctx_;
  std::shared_ptr<Generation> gen_;           // pinned for the connection's life
  std::shared_ptr<const Snapshot> snapshot_;  // gen_->snapshot
  uv_tcp_t tcp_;
  uv_timer_t timer_;
  llhttp_t parser_;
  std::string client_ip_;
  uint64_t client_hash_ = 0;
  bool tls_ = false;  // accepted on a TLS listener
  std::unique_ptr<tls::Session> tls_session_;
  int pending_closes_ = 0;
  size_t writes_in_flight_ = 0;
  bool closing_ = false;
  bool reading_ = false;
  bool close_after_write_ = false;
  bool lingering_ = false;
  bool parser_paused_ = false;
  bool parsing_ = false;         // inside parse(): resumes are deferred to drain_resumes()
  bool resume_pending_ = false;
  bool invalid_header_name_ = false;  // set by the parser callback; the connection closes
  std::string pending_;  // client bytes received while the parser is paused

  // The current exchange (one request and its response).
  Phase phase_ = Phase::idle;
  http::MessageHead head_;
  size_t head_bytes_ = 0;
  size_t trailer_bytes_ = 0;  // of the chunked request body's trailer section
  bool headers_done_ = false;
  bool message_done_ = false;  // whole request parsed
  bool keep_alive_ = true;     // the client allows another request
  bool expect_continue_ = false;
  http::Framing request_framing_ = http::Framing::none;
  uint64_t request_length_ = 0;
  uint64_t body_received_ = 0;
  const config::Route* route_ = nullptr;
  std::string host_;            // normalized, for routing
  std::string request_id_;
  std::string upstream_target_;
  UpstreamConn* upstream_ = nullptr;
  std::optional<size_t> server_;  // slot index in the route's upstream
  std::string server_address_;
  bool retried_ = false;
  std::string to_upstream_;     // request bytes not yet handed to the upstream
  std::string to_client_;       // response bytes gathered during one upstream read
  bool response_started_ = false;
  bool response_done_ = false;
  http::Framing response_framing_ = http::Framing::none;
  int status_ = 0;
  std::optional<base::ErrorCode> error_;
  uint64_t bytes_in_ = 0;
  uint64_t bytes_out_ = 0;
  std::chrono::steady_clock::time_point started_;
  std::chrono::steady_clock::time_point last_write_progress_;

  // Realtime: WebSocket upgrade, tunnel and affinity.
  bool websocket_ = false;  // an allowed upgrade was forwarded
  tunnel::FrameTracker from_client_;
  tunnel::FrameTracker from_upstream_;
  std::chrono::steady_clock::time_point last_activity_;
  std::chrono::steady_clock::time_point tunnel_started_;
  bool tunnel_open_ = false;        // counted in tunnels_active
  uint16_t close_code_ = 0;         // first close frame seen or sent; 0 = none
  bool counted_ = false;            // the exchange is in the metrics
  bool upstream_spoke_ = false;     // a response byte arrived for this request
  std::string affinity_token_;      // the chosen server's token, when affinity applies
  bool rewrite_handshake_ = false;  // buffer an Engine.IO handshake body to add the token
  std::string handshake_body_;
  bool set_cookie_ = false;         // cookie affinity: tell the client its server
};

}  // namespace sluice::proxy
