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
#include "sluice/net.h"
#include "sluice/proxy.h"
#include "sluice/server.h"
#include "resolver.h"
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

uint16_t bound_port(int fd);

// One socket per worker for `l` (a port 0 is fixed by the first bind),
// appended to `per_worker`; `line` is its "listening on" line, for the
// caller to print once everything it opens succeeded. On failure nothing
// is left open.
bool open_listener_set(const config::Listener& l, const std::string& key,
                       std::vector<std::vector<ListenFd>>& per_worker, std::string& line) {
  base::HostPort bind = l.bind;
  std::string error;
  for (size_t w = 0; w < per_worker.size(); ++w) {
    int fd = open_listener(bind, error);
    int spare = -1;
    if (fd >= 0) {
      // Taken now: the worker needs it exactly when no descriptor is left.
      spare = net::Listener::take_spare(fd);
      if (spare < 0) {
        error = std::strerror(errno);
        ::close(fd);
        fd = -1;
      }
    }
    if (fd < 0) {
      std::cerr << "sluice: cannot listen on " << l.address << ": " << error << "\n";
      for (size_t k = 0; k < w; ++k) {
        per_worker[k].back().close();
        per_worker[k].pop_back();
      }
      return false;
    }
    if (w == 0) bind.port = bound_port(fd);
    per_worker[w].push_back({fd, spare, key});
  }
  line = "sluice: listening on " + bind.to_string() + " (" + (l.tls ? "https" : "http") + ")\n";
  return true;
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

  // Reload (control plane only).
  std::shared_ptr<const proxy::Snapshot> snapshot;  // what new connections get
  metrics::Registry* registry = nullptr;
  health::HealthTable* health_table = nullptr;
  health::Checker* checker = nullptr;
  Resolver* resolver = nullptr;
  std::string config_path;
  uv_timer_t watch_timer;
  bool watching = false;
  uv_stat_t loaded_stat{};  // of the config file when it was last read
};

void update_watch(MainLoop& m);

// The config file's stat (following symlinks); false when it is missing.
bool stat_config(const MainLoop& m, uv_stat_t& out) {
  uv_fs_t req;
  bool ok = uv_fs_stat(nullptr, &req, m.config_path.c_str(), nullptr) == 0;
  if (ok) out = req.statbuf;
  uv_fs_req_cleanup(&req);
  return ok;
}

bool same_file_state(const uv_stat_t& a, const uv_stat_t& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_size == b.st_size &&
         a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec &&
         a.st_ctim.tv_sec == b.st_ctim.tv_sec && a.st_ctim.tv_nsec == b.st_ctim.tv_nsec;
}

// Hands a new snapshot to every worker, the admin endpoints and the checker.
void install(MainLoop& m, std::shared_ptr<const proxy::Snapshot> snapshot,
             std::vector<std::vector<ListenFd>> added) {
  for (size_t w = 0; w < m.workers.size(); ++w) m.workers[w]->reload(snapshot, std::move(added[w]));
  m.snapshot = snapshot;
  m.admin->snapshot = snapshot;
  m.checker->set_targets(proxy::health_targets(*snapshot));
}

// The addresses of a dns: server changed: same config, new servers.
// Connections to addresses that left finish on their generation.
void on_dns_change(void* arg, const proxy::Resolved& resolved, const std::string& summary) {
  auto& m = *static_cast<MainLoop*>(arg);
  if (m.signals > 0) return;
  std::vector<config::Diagnostic> problems;
  auto snapshot = proxy::make_snapshot(m.snapshot->config, *m.registry, *m.health_table, problems,
                                       resolved, m.snapshot.get());
  if (!snapshot) return;  // cannot happen with the same config: nothing is read again
  std::cerr << "sluice: dns: " << summary << "\n";
  install(m, std::move(snapshot), std::vector<std::vector<ListenFd>>(m.workers.size()));
}

// SPEC.md: a bad config is refused and logged, the old one keeps serving;
// connections and tunnels stay on the config they started with.
void reload(MainLoop& m, std::string_view why) {
  if (m.signals > 0) return;  // draining: nothing new will be served
  std::cerr << "sluice: reloading " << m.config_path << " (" << why << ")\n";
  auto refuse = [&](const std::string& reason) {
    m.admin->reloads_failed++;
    std::cerr << "sluice: reload refused: " << reason << "; still serving the previous config\n";
  };
  // Stat before reading: a change after this point is seen by the next poll.
  bool exists = stat_config(m, m.loaded_stat);
  if (exists && m.loaded_stat.st_size == 0) {
    // Valid TOML, but never meant: a writer that truncates before it
    // writes, caught in between. The finished file triggers a reload.
    return refuse("the config file is empty");
  }
  config::LoadResult loaded = config::load_file(m.config_path);
  for (const config::Diagnostic& d : loaded.diagnostics) {
    std::cerr << config::format_diagnostic(m.config_path, d) << "\n";
  }
  if (!loaded.ok()) return refuse(std::to_string(loaded.error_count()) + " error(s) in the config");
  std::vector<config::Diagnostic> problems;
  proxy::Resolved resolved = proxy::resolve_blocking(*loaded.config);
  auto snapshot = proxy::make_snapshot(loaded.config, *m.registry, *m.health_table, problems, resolved);
  for (const config::Diagnostic& d : problems) {
    std::cerr << config::format_diagnostic(m.config_path, d) << "\n";
  }
  if (!snapshot) return refuse("certificates cannot be loaded");
  const config::Config& old = *m.snapshot->config;
  const config::Config& cfg = *snapshot->config;
  // New listeners are bound before anything changes: a port in use refuses
  // the whole reload instead of half applying it.
  std::vector<std::vector<ListenFd>> added(m.workers.size());
  std::string lines;
  for (size_t i = 0; i < cfg.listeners.size(); ++i) {
    const config::Listener& l = cfg.listeners[i];
    if (m.snapshot->has_listener(snapshot->listener_keys[i])) continue;
    std::string line;
    if (open_listener_set(l, snapshot->listener_keys[i], added, line)) {
      lines += line;
    } else {
      for (auto& fds : added) {
        for (ListenFd& f : fds) f.close();
      }
      return refuse("cannot listen on " + l.address);
    }
  }
  std::cerr << lines;
  for (size_t i = 0; i < old.listeners.size(); ++i) {
    if (!snapshot->has_listener(m.snapshot->listener_keys[i])) {
      std::cerr << "sluice: stopped listening on " << old.listeners[i].address << "\n";
    }
  }
  if (cfg.server.workers != old.server.workers || cfg.server.access_log != old.server.access_log ||
      (cfg.admin ? cfg.admin->address : "") != (old.admin ? old.admin->address : "")) {
    std::cerr << "sluice: warning: server.workers, server.access_log and [admin] take effect at the next start\n";
  }
  install(m, snapshot, std::move(added));
  m.resolver->set(snapshot->config, std::move(resolved));
  m.admin->reloads_ok++;
  std::cerr << "sluice: config reloaded (" << cfg.routes.size() << " routes, " << cfg.upstreams.size()
            << " upstreams, " << cfg.listeners.size() << " listeners)\n";
  update_watch(m);
}

// watch_config: stat the path every second and compare with the file as it
// was when last read (not with the previous poll: a change between reading
// the config and the first poll must not be missed). stat follows symlinks,
// so the Kubernetes ConfigMap swap (..data relinked to a new directory)
// shows as a new inode even though the path never changes.
void on_watch_tick(uv_timer_t* timer) noexcept {
  auto& m = *static_cast<MainLoop*>(timer->data);
  uv_stat_t now;
  // A missing file (mid-swap) is waited out: the next tick sees it back.
  if (!stat_config(m, now) || same_file_state(now, m.loaded_stat)) return;
  reload(m, "config file changed");
  m.loaded_stat = now;  // also when refused: wait for the next change
}

void update_watch(MainLoop& m) {
  bool want = m.snapshot->config->server.watch_config;
  if (want && !m.watching) {
    m.watching = uv_timer_start(&m.watch_timer, on_watch_tick, 1000, 1000) == 0;
  } else if (!want && m.watching) {
    uv_timer_stop(&m.watch_timer);
    m.watching = false;
  }
}

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
    reload(*m, "SIGHUP");
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
  if (m->watching) uv_timer_stop(&m->watch_timer);
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
  // Signals are caught from the start: a SIGHUP sent as soon as the
  // listening lines appear must reload, not kill (its default action).
  // libuv records them; they are handled once the loop runs.
  MainLoop m;
  m.loop = uv_default_loop();
  // The file as loaded (main read it a moment ago), before anything is
  // served: watch_config compares against it.
  m.config_path = config->file;
  stat_config(m, m.loaded_stat);
  for (uv_signal_t* s : {&m.sigterm, &m.sigint, &m.sighup}) {
    uv_signal_init(m.loop, s);
    s->data = &m;
  }
  uv_signal_start(&m.sigterm, on_signal, SIGTERM);
  uv_signal_start(&m.sigint, on_signal, SIGINT);
  uv_signal_start(&m.sighup, on_signal, SIGHUP);
  const config::Config& cfg = *config;
  size_t workers = cfg.server.worker_count();
  std::string error;
  int log_fd = log::open_access_log(cfg.server.access_log, error);
  if (log_fd < 0 && cfg.server.access_log != "off") {
    std::cerr << "sluice: " << error << "\n";
    return 1;
  }
  metrics::Registry registry(workers);
  health::HealthTable health_table;
  std::vector<config::Diagnostic> problems;
  proxy::Resolved resolved = proxy::resolve_blocking(*config);
  auto snapshot = proxy::make_snapshot(config, registry, health_table, problems, resolved);
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

  // The listening lines are printed once everything the workers open at
  // start exists: tests (and operators) take them as "ready".
  std::string listening;
  std::vector<std::vector<ListenFd>> per_worker(workers);
  for (size_t i = 0; i < cfg.listeners.size(); ++i) {
    std::string line;
    if (!open_listener_set(cfg.listeners[i], snapshot->listener_keys[i], per_worker, line)) return 1;
    listening += line;
  }

  int admin_fd = -1, admin_spare = -1;
  if (cfg.admin) {
    admin_fd = open_listener(cfg.admin->bind, error);
    if (admin_fd >= 0 && (admin_spare = net::Listener::take_spare(admin_fd)) < 0) {
      error = std::strerror(errno);
      ::close(admin_fd);
      admin_fd = -1;
    }
    if (admin_fd < 0) {
      std::cerr << "sluice: cannot listen on " << cfg.admin->address << " (admin): " << error << "\n";
      return 1;
    }
    base::HostPort bound{cfg.admin->bind.host, bound_port(admin_fd)};
    listening += "sluice: listening on " + bound.to_string() + " (admin)\n";
  }

  std::atomic<uint32_t> connections{0};
  admin::State admin_state{snapshot, &registry, &connections};
  admin::Server admin_server(m.loop, admin_state);
  if (admin_fd >= 0 && admin_server.start(admin_fd, admin_spare) != 0) {
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
  m.snapshot = snapshot;
  m.registry = &registry;
  m.health_table = &health_table;
  health::Checker checker(m.loop);
  checker.set_targets(proxy::health_targets(*snapshot));
  m.checker = &checker;
  Resolver resolver(m.loop, on_dns_change, &m);
  resolver.set(config, std::move(resolved));
  m.resolver = &resolver;
  uv_timer_init(m.loop, &m.watch_timer);
  m.watch_timer.data = &m;
  update_watch(m);
  m.drain_timeout = cfg.server.drain_timeout;
  uv_async_init(m.loop, &m.drained, on_drained);
  m.drained.data = &m;
  uv_timer_init(m.loop, &m.drain_timer);
  m.drain_timer.data = &m;
  std::cerr << listening << std::flush;
  for (auto& w : m.workers) w->start();

  // Serve the admin endpoints and signals until the drain ends, then wait
  // for every worker thread.
  while (!m.stopping) uv_run(m.loop, UV_RUN_ONCE);
  for (auto& w : m.workers) w->join();
  m.workers.clear();
  admin_server.stop();
  checker.stop();
  resolver.stop();
  for (uv_signal_t* s : {&m.sigterm, &m.sigint, &m.sighup}) uv_close(reinterpret_cast<uv_handle_t*>(s), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&m.drained), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&m.drain_timer), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&m.watch_timer), nullptr);
  uv_run(m.loop, UV_RUN_DEFAULT);
  uv_loop_close(m.loop);
  if (log_fd > 2) ::close(log_fd);
  std::cerr << "sluice: stopped\n";
  return 0;
}

}  // namespace sluice::server
