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
#include "sluice/health.h"
#include "sluice/log.h"
#include "sluice/metrics.h"
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
  // The certificates of the listener whose address (as configured, port 0
  // included) is `key`; null for a plain or unknown listener. Listeners are
  // known by address, so a reload that adds or removes others keeps them.
  std::shared_ptr<const tls::ServerContext> listener_tls_for(std::string_view key) const;
  // Parallel to config->listeners: "127.0.0.1:8443 tls #0" — address as
  // configured, TLS or not, and which of the listeners with both equal
  // (several port-0 listeners may share an address).
  std::vector<std::string> listener_keys;
  bool has_listener(std::string_view key) const;
  // Parallel to config->upstreams: how to connect to TLS upstreams.
  std::vector<std::shared_ptr<const tls::ClientContext>> upstream_tls;

  // Metric cells, [..][worker]: per route (parallel to config->routes), for
  // requests without a route, and per upstream address (parallel to
  // `addresses`).
  std::vector<std::vector<metrics::RouteCells*>> route_cells;
  std::vector<metrics::RouteCells*> no_route_cells;
  std::vector<std::vector<std::vector<metrics::ServerCells*>>> server_cells;
  // Parallel to `addresses`: shared health of each server.
  std::vector<std::vector<health::ServerHealth*>> health;
};

// Builds a snapshot from a config and the addresses of its servers. A name
// that resolves to nothing leaves its upstream without addresses (requests
// get 502 upstream_unresolved).
// Certificates that cannot be loaded are reported in `problems` (with the
// position of their entry) and make the result null. Metric cells come from
// `registry`.
// The addresses each configured server stands for, [upstream][server]: an
// IP server is itself, a dns: server every address its name resolves to.
using Resolved = std::vector<std::vector<std::vector<sockaddr_storage>>>;
// "10.0.0.7:8000", "[::1]:8000".
std::string address_text(const sockaddr_storage& addr);

// Resolves every server now, with blocking getaddrinfo: control plane only.
Resolved resolve_blocking(const config::Config& config);

// `same_config`, when it holds the same config (a DNS change), lends its
// TLS contexts instead of reading the certificates again.
std::shared_ptr<const Snapshot> make_snapshot(std::shared_ptr<const config::Config> config,
                                              metrics::Registry& registry,
                                              health::HealthTable& health,
                                              std::vector<config::Diagnostic>& problems,
                                              const Resolved& resolved,
                                              const Snapshot* same_config = nullptr);

// The active health check targets of a snapshot (upstreams with `health`).
std::vector<health::Checker::Target> health_targets(const Snapshot& snapshot);

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

// One snapshot as one worker uses it: upstream states, balancers and idle
// pools. A reload makes a new generation for new connections; connections
// keep the generation they started on until they end, so a reload never
// changes a request or tunnel in flight.
struct Generation {
  std::shared_ptr<const Snapshot> snapshot;
  std::vector<UpstreamState> upstreams;  // parallel to snapshot->config->upstreams
  bool retired = false;                  // replaced: its connections are never pooled
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
// A larger upstream response head is 502 upstream_bad_response.
inline constexpr size_t kMaxResponseHead = 64 * 1024;
// An idle pooled upstream connection is closed after this long.
inline constexpr auto kUpstreamIdleTimeout = std::chrono::seconds(60);
// Descriptors kept out of the client budget besides each worker's own (its
// loop and listeners): idle upstream pools, health checks, DNS, logs, the
// main loop and admin connections.
inline constexpr uint32_t kReservedDescriptors = 64;

// State shared by every connection of one worker.
class WorkerContext {
 public:
  // `index` is the worker's number: its column in the snapshot's metric cells.
  WorkerContext(uv_loop_t* loop, std::shared_ptr<const Snapshot> snapshot, size_t index,
                metrics::WorkerCells* cells, uint64_t seed, std::atomic<uint32_t>& connections,
                int log_fd);
  WorkerContext(const WorkerContext&) = delete;
  WorkerContext& operator=(const WorkerContext&) = delete;
  ~WorkerContext();

  // Accepts one client from `listener` (on its connection callback).
  // `key` is the listener's address as configured (Snapshot::listener_tls_for).
  void accept(uv_stream_t* listener, std::string_view key);

  // Closes every connection; the loop ends once their close callbacks ran.
  void shutdown();

  // Graceful drain (SPEC.md, "Signals"): requests in flight finish and
  // their connections close after the response; WebSocket tunnels (1001)
  // and connections waiting for a request are ended at times spread evenly
  // over `spread`. `on_empty(arg)` runs once no client connection
  // is left (at once if none is). The listeners are the caller's to close.
  void drain(base::Duration spread, void (*on_empty)(void*), void* arg);
  // From DownstreamConn's destructor.
  void on_downstream_gone();
  bool draining() const { return draining_; }
  // A tunnel that opened during the drain joins the end of the schedule.
  void drain_later(DownstreamConn* conn);

  // Asks for the idle pool of (upstream, slot) to be cut back to its
  // `keepalive` size before the loop next waits for I/O.
  void schedule_pool_trim(size_t upstream, size_t slot);

  uv_loop_t* loop() const { return loop_; }
  // The generation (and snapshot) new connections start on.
  const std::shared_ptr<Generation>& generation() const { return current_; }
  const std::shared_ptr<const Snapshot>& snapshot() const { return current_->snapshot; }
  // A reload: new connections use `snapshot`; the previous generation's
  // idle pooled connections close, its busy ones finish.
  void swap_snapshot(std::shared_ptr<const Snapshot> snapshot);
  log::AccessLog& access_log() { return access_log_; }
  char* read_buffer() { return read_buffer_.get(); }
  std::mt19937_64& rng() { return rng_; }
  std::atomic<uint32_t>& connections() { return connections_; }
  // How many client connections the process's descriptors allow: each may
  // hold an upstream socket too, so (RLIMIT_NOFILE - reserved) / 2, where
  // reserved = kReservedDescriptors + workers x (3 + 2 x listeners), as
  // HAProxy derives maxconn from ulimit -n. Past it a client gets
  // 503 over_capacity instead of an accept that fails with EMFILE. The
  // limit is read at most once a second (it can change at run time: prlimit).
  uint32_t descriptor_capacity();
  // The soft RLIMIT_NOFILE that descriptor_capacity() last read.
  uint64_t descriptor_limit() const { return fd_limit_; }
  // No new keep-alive or pooled reuse: the worker is draining or stopping.
  bool shutting_down() const { return shutting_down_ || draining_; }
  size_t index() const { return index_; }
  metrics::WorkerCells& cells() { return *cells_; }
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
  uint64_t seed_;
  std::shared_ptr<Generation> make_generation(std::shared_ptr<const Snapshot> snapshot) const;
  std::shared_ptr<Generation> current_;
  static void on_prepare(uv_prepare_t* handle) noexcept;
  void trim_pools();
  static void on_drain_tick(uv_timer_t* timer) noexcept;
  void check_drained();

  log::AccessLog access_log_;
  uv_prepare_t trim_;
  // (upstream, slot) pools of the current generation above keepalive.
  std::vector<std::pair<size_t, size_t>> over_cap_;
  std::unique_ptr<char[]> read_buffer_;
  std::mt19937_64 rng_;
  std::atomic<uint32_t>& connections_;
  bool shutting_down_ = false;
  bool draining_ = false;
  uv_timer_t drain_timer_;
  std::chrono::steady_clock::time_point drain_started_;
  base::Duration drain_spread_{0};
  std::vector<DownstreamConn*> drain_tunnels_;  // in the order they are ended
  size_t drain_ended_ = 0;
  void (*on_empty_)(void*) = nullptr;
  void* on_empty_arg_ = nullptr;
  size_t index_;
  metrics::WorkerCells* cells_;
  std::string tls_plain_;
  uint64_t fd_limit_ = 0;
  uint64_t fd_limit_read_ms_ = 0;
  bool fd_limit_read_ = false;
  uint64_t tls_log_last_ms_ = 0;
  uint64_t tls_log_held_ = 0;
};

}  // namespace sluice::proxy
