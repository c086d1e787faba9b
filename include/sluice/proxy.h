#pragma once
// The data plane of one worker thread: downstream (client) connections,
// upstream connections with their idle pools, and the per-worker state they
// share. Everything here runs on one libuv loop; nothing is locked. Only the
// Snapshot (immutable) and the connection counter (atomic) cross threads.

#include <uv.h>

#include <atomic>
#include <memory>
#include <random>
#include <string>
#include <unordered_set>
#include <vector>

#include <sys/socket.h>

#include "sluice/config.h"
#include "sluice/log.h"
#include "sluice/router.h"
#include "sluice/tls.h"
#include "sluice/upstream.h"

namespace sluice::proxy {

// A config with everything derived from it. Immutable and shared by every
// worker; each downstream connection pins the snapshot it was accepted under,
// so a reload never changes a request in flight.
struct Snapshot {
  struct Address {
    sockaddr_storage addr{};
    std::string text;  // "10.0.0.7:8000"
    size_t server = 0; // index into config Upstream::servers
  };

  std::shared_ptr<const config::Config> config;
  std::unique_ptr<router::RouteTable> routes;
  // Per upstream (parallel to config->upstreams), every address to balance
  // over: IP servers as written, dns: servers as resolved when the snapshot
  // was made.
  std::vector<std::vector<Address>> addresses;
  // Parallel to config->listeners: the certificates of TLS listeners (null
  // for plain ones). Built with the snapshot, so a reload renews them.
  std::vector<std::shared_ptr<const tls::ServerContext>> listener_tls;
  // Parallel to config->upstreams: how to connect to TLS upstreams.
  std::vector<std::shared_ptr<const tls::ClientContext>> upstream_tls;
};

// Builds a snapshot; resolves dns: servers with blocking getaddrinfo, so call
// it from the control plane only. A name that resolves to nothing leaves its
// upstream without addresses (requests get 502 upstream_unresolved).
// Certificates that cannot be loaded are reported in `problems` (with the
// position of their entry) and make the result null.
std::shared_ptr<const Snapshot> make_snapshot(std::shared_ptr<const config::Config> config,
                                              std::vector<config::Diagnostic>& problems);

class UpstreamConn;
class DownstreamConn;

// One upstream address as one worker sees it.
struct ServerSlot {
  const Snapshot::Address* address = nullptr;
  std::vector<UpstreamConn*> idle;  // pooled, most recently used last
};

struct UpstreamState {
  const config::Upstream* config = nullptr;
  std::vector<ServerSlot> servers;
  std::vector<upstream::ServerLoad> loads;  // parallel to servers, for the balancer
  std::vector<std::string> tokens;          // parallel to servers: affinity tokens
  upstream::Balancer balancer;
};

// Limits of the data plane, named once.
inline constexpr size_t kReadBufferSize = 64 * 1024;
// Above this many queued bytes towards one side, stop reading the other.
inline constexpr size_t kHighWater = 256 * 1024;
inline constexpr size_t kLowWater = 64 * 1024;
// Client bytes held while a request is in flight (pipelined requests).
inline constexpr size_t kMaxPendingInput = 64 * 1024;
// How long a closing connection drains what the client still sends.
inline constexpr base::Duration kLingerTime{2000};
// An idle pooled upstream connection is closed after this long.
inline constexpr auto kUpstreamIdleTimeout = std::chrono::seconds(60);

// TLS events of one worker's listeners, for the operator (and metrics).
struct TlsCounters {
  uint64_t handshakes = 0;          // completed
  uint64_t resumed = 0;             // of which by session ticket
  uint64_t handshake_failures = 0;  // protocol errors, unknown CA alerts, ...
  uint64_t handshake_timeouts = 0;  // no complete handshake within header_timeout
  uint64_t plain_http = 0;          // plain HTTP sent to a TLS port
};

// State shared by every connection of one worker.
class WorkerContext {
 public:
  WorkerContext(uv_loop_t* loop, std::shared_ptr<const Snapshot> snapshot, uint64_t seed,
                std::atomic<uint32_t>& connections, int log_fd);
  WorkerContext(const WorkerContext&) = delete;
  WorkerContext& operator=(const WorkerContext&) = delete;
  ~WorkerContext();

  // Accepts one client from `listener` (on its connection callback).
  void accept(uv_stream_t* listener, size_t listener_index);

  // Closes every connection; the loop ends once their close callbacks ran.
  void shutdown();

  // Asks for the idle pool of (upstream, slot) to be cut back to its
  // `keepalive` size before the loop next waits for I/O.
  void schedule_pool_trim(size_t upstream, size_t slot);

  uv_loop_t* loop() const { return loop_; }
  const std::shared_ptr<const Snapshot>& snapshot() const { return snapshot_; }
  UpstreamState& upstream(size_t index) { return upstreams_[index]; }
  log::AccessLog& access_log() { return access_log_; }
  char* read_buffer() { return read_buffer_.get(); }
  std::mt19937_64& rng() { return rng_; }
  std::atomic<uint32_t>& connections() { return connections_; }
  bool shutting_down() const { return shutting_down_; }
  TlsCounters& tls_counters() { return tls_counters_; }
  // Decrypted bytes of the read being handled (one read at a time per loop).
  std::string& tls_plain() { return tls_plain_; }
  // Logs a TLS problem of one client to stderr, at most one line a second
  // per worker (a scan of the port must not flood the log); the lines held
  // back are counted in the next one.
  void log_tls_problem(const std::string& line);

  // Connection registries, for shutdown only.
  std::unordered_set<DownstreamConn*> downstreams;
  std::unordered_set<UpstreamConn*> upstream_conns;

 private:
  uv_loop_t* loop_;
  std::shared_ptr<const Snapshot> snapshot_;
  std::vector<UpstreamState> upstreams_;
  static void on_prepare(uv_prepare_t* handle) noexcept;
  void trim_pools();

  log::AccessLog access_log_;
  uv_prepare_t trim_;
  std::vector<std::pair<size_t, size_t>> over_cap_;  // (upstream, slot) pools above keepalive
  std::unique_ptr<char[]> read_buffer_;
  std::mt19937_64 rng_;
  std::atomic<uint32_t>& connections_;
  bool shutting_down_ = false;
  TlsCounters tls_counters_;
  std::string tls_plain_;
  uint64_t tls_log_last_ms_ = 0;
  uint64_t tls_log_held_ = 0;
};

}  // namespace sluice::proxy
