// Process start and stop: bind the listeners (one SO_REUSEPORT socket per
// worker), start the workers, and turn signals into a stop.

#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <random>

#include "sluice/admin.h"
#include "sluice/log.h"
#include "sluice/proxy.h"
#include "sluice/server.h"
#include "worker.h"

namespace sluice::server {
namespace {

// Opens one listening socket on `bind`. Returns the fd, or -1 with `error`.
int open_listener(const base::HostPort& bind, std::string& error) {
  sockaddr_storage ss{};
  if (uv_ip4_addr(bind.host.c_str(), bind.port, reinterpret_cast<sockaddr_in*>(&ss)) != 0 &&
      uv_ip6_addr(bind.host.c_str(), bind.port, reinterpret_cast<sockaddr_in6*>(&ss)) != 0) {
    error = "not an IP address";
    return -1;
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = std::strerror(errno);
    return -1;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (ss.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  socklen_t len = ss.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, 4096) != 0) {
    error = std::strerror(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

uint16_t bound_port(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
}

struct MainLoop {
  uv_loop_t* loop = nullptr;
  uv_signal_t sigterm, sigint, sighup;
  uv_async_t drained;      // a worker has no client left
  uv_timer_t drain_timer;  // drain_timeout
  std::vector<std::unique_ptr<Worker>> workers;
  admin::State* admin = nullptr;
  base::Duration drain_timeout{0};
  int signals = 0;
  bool stopping = false;
};

void stop_workers(MainLoop& m) {
  if (m.stopping) return;
  m.stopping = true;
  uv_timer_stop(&m.drain_timer);
  for (auto& w : m.workers) w->stop();
}

void on_drained(uv_async_t* handle) noexcept {
  auto* m = static_cast<MainLoop*>(handle->data);
  // Sends coalesce: look at every worker, not at how often this ran.
  for (auto& w : m->workers) {
    if (!w->drained()) return;
  }
  std::cerr << "sluice: drained, every connection finished\n";
  stop_workers(*m);
}

void on_drain_timeout(uv_timer_t* timer) noexcept {
  auto* m = static_cast<MainLoop*>(timer->data);
  std::cerr << "sluice: drain_timeout " << base::format_duration(m->drain_timeout)
            << " passed: closing the connections still open\n";
  stop_workers(*m);
}

void on_signal(uv_signal_t* handle, int signum) noexcept {
  auto* m = static_cast<MainLoop*>(handle->data);
  if (signum == SIGHUP) {
    std::cerr << "sluice: SIGHUP: config reload is not implemented yet; still serving the loaded config\n";
    return;
  }
  if (++m->signals > 1) {
    std::cerr << "sluice: second signal, exiting now\n";
    _exit(1);
  }
  // SPEC.md: stop accepting, /readyz 503, in-flight requests finish,
  // tunnels get 1001 over the first half of drain_timeout, exit when empty.
  std::cerr << "sluice: " << (signum == SIGTERM ? "SIGTERM" : "SIGINT") << ", draining (drain_timeout "
            << base::format_duration(m->drain_timeout) << ")\n";
  m->admin->draining = true;
  uv_timer_start(&m->drain_timer, on_drain_timeout, static_cast<uint64_t>(m->drain_timeout.count()), 0);
  for (auto& w : m->workers) w->drain(m->drain_timeout / 2, &m->drained);
}

// A proxy holds two descriptors per proxied connection: raise the soft
// limit to the hard one, as nginx's worker_rlimit_nofile would be set.
void raise_fd_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
}

}  // namespace

int run(std::shared_ptr<const config::Config> config) {
  signal(SIGPIPE, SIG_IGN);
  raise_fd_limit();
  const config::Config& cfg = *config;
  size_t workers = cfg.server.workers ? cfg.server.workers : std::max(1u, std::thread::hardware_concurrency());
  std::string error;
  int log_fd = log::open_access_log(cfg.server.access_log, error);
  if (log_fd < 0 && cfg.server.access_log != "off") {
    std::cerr << "sluice: " << error << "\n";
    return 1;
  }
  metrics::Registry registry(workers);
  std::vector<config::Diagnostic> problems;
  auto snapshot = proxy::make_snapshot(config, registry, problems);
  for (const config::Diagnostic& d : problems) {
    std::cerr << config::format_diagnostic(cfg.file, d) << "\n";
  }
  if (!snapshot) return 1;
  for (size_t i = 0; i < cfg.upstreams.size(); ++i) {
    if (snapshot->addresses[i].empty()) {
      std::cerr << "sluice: warning: upstream '" << cfg.upstreams[i].name
                << "' resolves to no address; its routes answer 502 upstream_unresolved\n";
    }
  }

  // One socket per listener per worker; a port 0 is fixed by the first bind.
  std::vector<std::vector<ListenFd>> per_worker(workers);
  for (size_t li = 0; li < cfg.listeners.size(); ++li) {
    const config::Listener& l = cfg.listeners[li];
    base::HostPort bind = l.bind;
    for (size_t w = 0; w < workers; ++w) {
      int fd = open_listener(bind, error);
      if (fd < 0) {
        std::cerr << "sluice: cannot listen on " << l.address << ": " << error << "\n";
        return 1;
      }
      if (w == 0) bind.port = bound_port(fd);
      per_worker[w].push_back({fd, li});
    }
    std::cerr << "sluice: listening on " << bind.to_string() << " (" << (l.tls ? "https" : "http") << ")\n";
  }

  int admin_fd = -1;
  if (cfg.admin) {
    admin_fd = open_listener(cfg.admin->bind, error);
    if (admin_fd < 0) {
      std::cerr << "sluice: cannot listen on " << cfg.admin->address << " (admin): " << error << "\n";
      return 1;
    }
    base::HostPort bound{cfg.admin->bind.host, bound_port(admin_fd)};
    std::cerr << "sluice: listening on " << bound.to_string() << " (admin)\n";
  }

  MainLoop m;
  m.loop = uv_default_loop();
  std::atomic<uint32_t> connections{0};
  admin::State admin_state{snapshot, &registry, &connections};
  admin::Server admin_server(m.loop, admin_state);
  if (admin_fd >= 0 && admin_server.start(admin_fd) != 0) {
    std::cerr << "sluice: cannot serve the admin endpoints on " << cfg.admin->address << "\n";
    return 1;
  }
  std::random_device rd;
  for (size_t w = 0; w < workers; ++w) {
    uint64_t seed = (uint64_t{rd()} << 32) ^ rd();
    m.workers.push_back(std::make_unique<Worker>(snapshot, std::move(per_worker[w]), w,
                                                 registry.worker(w), seed, connections, log_fd));
  }
  m.admin = &admin_state;
  m.drain_timeout = cfg.server.drain_timeout;
  uv_async_init(m.loop, &m.drained, on_drained);
  m.drained.data = &m;
  uv_timer_init(m.loop, &m.drain_timer);
  m.drain_timer.data = &m;
  for (uv_signal_t* s : {&m.sigterm, &m.sigint, &m.sighup}) {
    uv_signal_init(m.loop, s);
    s->data = &m;
  }
  uv_signal_start(&m.sigterm, on_signal, SIGTERM);
  uv_signal_start(&m.sigint, on_signal, SIGINT);
  uv_signal_start(&m.sighup, on_signal, SIGHUP);
  for (auto& w : m.workers) w->start();

  // Serve the admin endpoints and signals until the drain ends, then wait
  // for every worker thread.
  while (!m.stopping) uv_run(m.loop, UV_RUN_ONCE);
  for (auto& w : m.workers) w->join();
  m.workers.clear();
  admin_server.stop();
  for (uv_signal_t* s : {&m.sigterm, &m.sigint, &m.sighup}) uv_close(reinterpret_cast<uv_handle_t*>(s), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&m.drained), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&m.drain_timer), nullptr);
  uv_run(m.loop, UV_RUN_DEFAULT);
  uv_loop_close(m.loop);
  if (log_fd > 2) ::close(log_fd);
  std::cerr << "sluice: stopped\n";
  return 0;
}

}  // namespace sluice::server
