#include <netdb.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <cstring>

#include "connections.h"

namespace sluice::proxy {

std::string address_text(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = {0};
  uint16_t port = 0;
  if (ss.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    uv_ip4_name(in, host, sizeof host);
    port = ntohs(in->sin_port);
  } else {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    uv_ip6_name(in6, host, sizeof host);
    port = ntohs(in6->sin6_port);
  }
  return base::HostPort{host, port}.to_string();
}

Resolved resolve_blocking(const config::Config& config) {
  Resolved out;
  for (const config::Upstream& u : config.upstreams) {
    std::vector<std::vector<sockaddr_storage>> servers;
    for (const config::UpstreamServer& s : u.servers) {
      std::vector<sockaddr_storage> addrs;
      addrinfo hints{};
      hints.ai_socktype = SOCK_STREAM;
      hints.ai_flags = s.dns ? 0 : AI_NUMERICHOST;
      addrinfo* list = nullptr;
      std::string port = std::to_string(s.address.port);
      if (getaddrinfo(s.address.host.c_str(), port.c_str(), &hints, &list) == 0) {
        for (addrinfo* ai = list; ai; ai = ai->ai_next) {
          sockaddr_storage ss{};
          std::memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
          addrs.push_back(ss);
        }
        freeaddrinfo(list);
      }
      servers.push_back(std::move(addrs));
    }
    out.push_back(std::move(servers));
  }
  return out;
}

std::shared_ptr<const Snapshot> make_snapshot(std::shared_ptr<const config::Config> config,
                                              metrics::Registry& registry,
                                              health::HealthTable& health,
                                              std::vector<config::Diagnostic>& problems,
                                              const Resolved& resolved, const Snapshot* same_config) {
  auto snap = std::make_shared<Snapshot>();
  bool ok = true;
  // A DNS change keeps the config: its certificates are not read again.
  bool reuse = same_config && same_config->config == config;
  std::map<std::string, int> seen;
  for (const config::Listener& l : config->listeners) {
    std::string key = l.bind.to_string() + (l.tls ? " tls" : "");
    snap->listener_keys.push_back(key + " #" + std::to_string(seen[key]++));
    std::shared_ptr<const tls::ServerContext> ctx;
    if (reuse) {
      ctx = same_config->listener_tls[snap->listener_tls.size()];
    } else if (l.tls) {
      ctx = tls::ServerContext::load(*l.tls, problems);
      ok = ok && ctx;
    }
    snap->listener_tls.push_back(std::move(ctx));
  }
  for (const config::Upstream& u : config->upstreams) {
    std::shared_ptr<const tls::ClientContext> ctx;
    if (reuse) {
      ctx = same_config->upstream_tls[snap->upstream_tls.size()];
    } else if (u.tls) {
      std::string error;
      ctx = tls::ClientContext::load(*u.tls, error);
      if (!ctx) {
        problems.push_back({config::Severity::error, u.pos, "upstream '" + u.name + "': " + error});
        ok = false;
      }
    }
    snap->upstream_tls.push_back(std::move(ctx));
  }
  if (!ok) return nullptr;
  snap->config = config;
  snap->routes = std::make_unique<router::RouteTable>(config);
  for (size_t ui = 0; ui < config->upstreams.size(); ++ui) {
    const config::Upstream& u = config->upstreams[ui];
    std::vector<Snapshot::Address> addrs;
    for (size_t i = 0; i < u.servers.size(); ++i) {
      for (const sockaddr_storage& ss : resolved[ui][i]) {
        Snapshot::Address a;
        a.addr = ss;
        a.text = address_text(a.addr);
        a.server = i;
        bool dup = false;
        for (const auto& existing : addrs) dup = dup || existing.text == a.text;
        if (!dup) addrs.push_back(std::move(a));
      }
    }
    std::vector<std::vector<metrics::ServerCells*>> cells;
    std::vector<health::ServerHealth*> states;
    for (const Snapshot::Address& a : addrs) {
      cells.push_back(registry.server(u.name, a.text));
      states.push_back(health.get(u.name, a.text));
    }
    snap->health.push_back(std::move(states));
    snap->server_cells.push_back(std::move(cells));
    snap->addresses.push_back(std::move(addrs));
  }
  for (const config::Route& r : config->routes) snap->route_cells.push_back(registry.route(r.name, config::to_string(r.kind)));
  snap->no_route_cells = registry.route("(none)");
  return snap;
}

std::vector<health::Checker::Target> health_targets(const Snapshot& snapshot) {
  std::vector<health::Checker::Target> targets;
  const config::Config& cfg = *snapshot.config;
  for (size_t u = 0; u < cfg.upstreams.size(); ++u) {
    if (!cfg.upstreams[u].health) continue;
    for (size_t a = 0; a < snapshot.addresses[u].size(); ++a) {
      const Snapshot::Address& addr = snapshot.addresses[u][a];
      targets.push_back({cfg.upstreams[u].name, *cfg.upstreams[u].health, addr.addr, addr.text,
                         cfg.upstreams[u].servers[addr.server].address.host, snapshot.upstream_tls[u],
                         snapshot.health[u][a]});
    }
  }
  return targets;
}

WorkerContext::WorkerContext(uv_loop_t* loop, std::shared_ptr<const Snapshot> snapshot,
                             size_t index, metrics::WorkerCells* cells, uint64_t seed,
                             std::atomic<uint32_t>& connections, int log_fd)
    : loop_(loop),
      seed_(seed),
      access_log_(loop, log_fd),
      read_buffer_(new char[kReadBufferSize]),
      rng_(seed),
      connections_(connections),
      index_(index),
      cells_(cells) {
  uv_prepare_init(loop, &trim_);
  trim_.data = this;
  uv_timer_init(loop, &drain_timer_);
  drain_timer_.data = this;
  current_ = make_generation(std::move(snapshot));
}

std::shared_ptr<Generation> WorkerContext::make_generation(std::shared_ptr<const Snapshot> snapshot) const {
  auto gen = std::make_shared<Generation>();
  gen->snapshot = std::move(snapshot);
  const config::Config& cfg = *gen->snapshot->config;
  for (size_t i = 0; i < cfg.upstreams.size(); ++i) {
    UpstreamState state{&cfg.upstreams[i], {}, {}, {}, upstream::Balancer(cfg.upstreams[i].balance, seed_ + i)};
    for (const Snapshot::Address& a : gen->snapshot->addresses[i]) {
      state.servers.push_back(ServerSlot{&a, {}});
      state.loads.push_back({});
      state.tokens.push_back(upstream::server_token(a.text));
    }
    gen->upstreams.push_back(std::move(state));
  }
  return gen;
}

void WorkerContext::swap_snapshot(std::shared_ptr<const Snapshot> snapshot) {
  if (shutting_down_) return;
  std::shared_ptr<Generation> old = std::move(current_);
  current_ = make_generation(std::move(snapshot));
  old->retired = true;
  over_cap_.clear();  // indices of the old generation's pools
  for (UpstreamState& up : old->upstreams) {
    for (ServerSlot& slot : up.servers) {
      for (UpstreamConn* u : std::vector<UpstreamConn*>(slot.idle)) u->close();
    }
  }
}

WorkerContext::~WorkerContext() = default;

void WorkerContext::accept(uv_stream_t* listener, std::string_view key) {
  DownstreamConn::accept(*this, listener, key);
}

std::shared_ptr<const tls::ServerContext> Snapshot::listener_tls_for(std::string_view key) const {
  for (size_t i = 0; i < listener_keys.size(); ++i) {
    if (listener_keys[i] == key) return listener_tls[i];
  }
  return nullptr;
}

bool Snapshot::has_listener(std::string_view key) const {
  return std::find(listener_keys.begin(), listener_keys.end(), key) != listener_keys.end();
}

uint32_t WorkerContext::descriptor_capacity() {
  uint64_t now = uv_now(loop_);
  if (!fd_limit_read_ || now - fd_limit_read_ms_ >= 1000) {
    rlimit lim{};
    fd_limit_ = getrlimit(RLIMIT_NOFILE, &lim) == 0 ? lim.rlim_cur : RLIM_INFINITY;
    fd_limit_read_ms_ = now;
    fd_limit_read_ = true;
  }
  if (fd_limit_ == RLIM_INFINITY || fd_limit_ >= 2ull * UINT32_MAX) return UINT32_MAX;
  // Each worker's loop holds an epoll and an eventfd descriptor and libuv's
  // spare, and two per listener (the socket and net::Listener's spare).
  const config::Config& cfg = *current_->snapshot->config;
  uint64_t reserved = kReservedDescriptors + cfg.server.worker_count() * (3 + 2 * cfg.listeners.size());
  if (fd_limit_ <= reserved) return 0;
  return static_cast<uint32_t>((fd_limit_ - reserved) / 2);
}

void WorkerContext::log_tls_problem(const std::string& line) {
  uint64_t now = uv_now(loop_);
  if (tls_log_last_ms_ != 0 && now - tls_log_last_ms_ < 1000) {
    ++tls_log_held_;
    return;
  }
  tls_log_last_ms_ = now;
  std::string out = "sluice: tls: " + line;
  if (tls_log_held_ > 0) out += " (" + std::to_string(tls_log_held_) + " more since the last line)";
  tls_log_held_ = 0;
  out += "\n";
  // One write(2) per line, so lines of several workers never interleave.
  ssize_t ignored = ::write(2, out.data(), out.size());
  (void)ignored;
}

void WorkerContext::schedule_pool_trim(size_t upstream, size_t slot) {
  if (over_cap_.empty()) uv_prepare_start(&trim_, on_prepare);
  over_cap_.emplace_back(upstream, slot);
}

void WorkerContext::on_prepare(uv_prepare_t* handle) noexcept {
  static_cast<WorkerContext*>(handle->data)->trim_pools();
}

void WorkerContext::trim_pools() {
  uv_prepare_stop(&trim_);
  std::vector<std::pair<size_t, size_t>> work;
  work.swap(over_cap_);
  for (auto [u, s] : work) {
    UpstreamState& up = current_->upstreams[u];
    // Oldest first: they have waited longest and are likeliest to be stale.
    while (up.servers[s].idle.size() > up.config->keepalive) up.servers[s].idle.front()->close();
  }
}

void WorkerContext::drain(base::Duration spread, void (*on_empty)(void*), void* arg) {
  if (draining_ || shutting_down_) return;
  draining_ = true;
  on_empty_ = on_empty;
  on_empty_arg_ = arg;
  drain_started_ = std::chrono::steady_clock::now();
  drain_spread_ = spread;
  for (DownstreamConn* d : std::vector<DownstreamConn*>(downstreams.begin(), downstreams.end())) {
    if (d->begin_drain()) drain_tunnels_.push_back(d);
  }
  // Idle pooled upstream connections will not be asked for again.
  for (UpstreamState& up : current_->upstreams) {
    for (ServerSlot& slot : up.servers) {
      for (UpstreamConn* u : std::vector<UpstreamConn*>(slot.idle)) u->close();
    }
  }
  if (!drain_tunnels_.empty()) uv_timer_start(&drain_timer_, on_drain_tick, 0, 20);
  check_drained();
}

void WorkerContext::on_drain_tick(uv_timer_t* timer) noexcept {
  auto* self = static_cast<WorkerContext*>(timer->data);
  // Tunnels end at evenly spaced times: by now, this share of them.
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                                 self->drain_started_).count();
  double spread = std::chrono::duration<double>(self->drain_spread_).count();
  size_t n = self->drain_tunnels_.size();
  size_t due = spread <= 0 ? n
                           : std::min(n, static_cast<size_t>(std::ceil(n * elapsed / spread)));
  while (self->drain_ended_ < due) {
    DownstreamConn* d = self->drain_tunnels_[self->drain_ended_++];
    // No connection is created while draining, so one still registered is
    // the same one (not a new one at a reused address).
    if (self->downstreams.count(d)) d->drain_end();
  }
  if (self->drain_ended_ == n) uv_timer_stop(&self->drain_timer_);
}

void WorkerContext::drain_later(DownstreamConn* conn) {
  drain_tunnels_.push_back(conn);
  if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&drain_timer_))) {
    uv_timer_start(&drain_timer_, on_drain_tick, 0, 20);
  }
}

void WorkerContext::on_downstream_gone() {
  if (draining_) check_drained();
}

void WorkerContext::check_drained() {
  if (!draining_ || !downstreams.empty() || !on_empty_) return;
  auto notify = on_empty_;
  on_empty_ = nullptr;  // once
  notify(on_empty_arg_);
}

void WorkerContext::shutdown() {
  shutting_down_ = true;
  uv_prepare_stop(&trim_);
  uv_close(reinterpret_cast<uv_handle_t*>(&trim_), nullptr);
  uv_timer_stop(&drain_timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(&drain_timer_), nullptr);
  // close() erases from the registries only in close callbacks, so iterate copies.
  for (DownstreamConn* d : std::vector<DownstreamConn*>(downstreams.begin(), downstreams.end())) d->close();
  for (UpstreamConn* u : std::vector<UpstreamConn*>(upstream_conns.begin(), upstream_conns.end())) u->close();
  access_log_.close();
}

}  // namespace sluice::proxy
