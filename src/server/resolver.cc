#include "resolver.h"

#include <netdb.h>

#include <algorithm>
#include <cstring>
#include <set>

namespace sluice::server {

struct Resolver::Lookup {
  uv_getaddrinfo_t req;
  Resolver* self;
  uint64_t generation;
  size_t upstream;
  size_t server;
};

namespace {

std::set<std::string> texts(const std::vector<std::vector<sockaddr_storage>>& servers) {
  std::set<std::string> out;
  for (const auto& addrs : servers) {
    for (const sockaddr_storage& a : addrs) out.insert(proxy::address_text(a));
  }
  return out;
}

}  // namespace

Resolver::Resolver(uv_loop_t* loop, OnChange on_change, void* arg)
    : loop_(loop), timer_(new uv_timer_t), on_change_(on_change), arg_(arg) {
  uv_timer_init(loop, timer_);
  timer_->data = this;
  uv_timer_start(timer_, on_tick, 250, 250);
}

Resolver::~Resolver() { stop(); }

void Resolver::stop() {
  if (stopped_) return;
  stopped_ = true;
  // Lookups still running call back later and are freed then.
  for (Lookup* l : lookups_) uv_cancel(reinterpret_cast<uv_req_t*>(&l->req));
  uv_close(reinterpret_cast<uv_handle_t*>(timer_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
}

void Resolver::set(std::shared_ptr<const config::Config> config, proxy::Resolved current) {
  ++generation_;
  config_ = std::move(config);
  current_ = std::move(current);
  pending_ = current_;
  next_due_.assign(config_->upstreams.size(), -1);
  in_flight_.assign(config_->upstreams.size(), 0);
  int64_t now = health::now_ms();
  for (size_t u = 0; u < config_->upstreams.size(); ++u) {
    const config::Upstream& up = config_->upstreams[u];
    bool any = std::any_of(up.servers.begin(), up.servers.end(), [](const auto& s) { return s.dns; });
    if (any) next_due_[u] = now + up.resolve_interval.count();
  }
}

void Resolver::on_tick(uv_timer_t* timer) noexcept {
  auto* self = static_cast<Resolver*>(timer->data);
  int64_t now = health::now_ms();
  for (size_t u = 0; u < self->next_due_.size(); ++u) {
    if (self->next_due_[u] >= 0 && now >= self->next_due_[u] && self->in_flight_[u] == 0) {
      self->start_round(u);
    }
  }
}

void Resolver::start_round(size_t u) {
  const config::Upstream& up = config_->upstreams[u];
  for (size_t i = 0; i < up.servers.size(); ++i) {
    const config::UpstreamServer& s = up.servers[i];
    if (!s.dns) continue;
    auto* l = new Lookup{{}, this, generation_, u, i};
    l->req.data = l;
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    std::string port = std::to_string(s.address.port);
    if (uv_getaddrinfo(loop_, &l->req, on_resolved, s.address.host.c_str(), port.c_str(), &hints) != 0) {
      delete l;
      continue;
    }
    lookups_.push_back(l);
    ++in_flight_[u];
  }
  if (in_flight_[u] == 0) finish_round(u);
}

void Resolver::on_resolved(uv_getaddrinfo_t* req, int status, addrinfo* res) noexcept {
  auto* l = static_cast<Lookup*>(req->data);
  Resolver* self = l->self;
  std::erase(self->lookups_, l);
  bool current = !self->stopped_ && l->generation == self->generation_;
  if (current) {
    std::vector<sockaddr_storage>& addrs = self->pending_[l->upstream][l->server];
    if (status == 0) {
      addrs.clear();
      for (addrinfo* ai = res; ai; ai = ai->ai_next) {
        sockaddr_storage ss{};
        std::memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
        addrs.push_back(ss);
      }
    } else if (status == UV_EAI_NONAME || status == UV_EAI_NODATA) {
      addrs.clear();  // the name is gone: so are its servers
    }
    // Any other failure (no answer from the resolver) keeps what was known.
    if (--self->in_flight_[l->upstream] == 0) self->finish_round(l->upstream);
  }
  uv_freeaddrinfo(res);
  delete l;
}

void Resolver::finish_round(size_t u) {
  const config::Upstream& up = config_->upstreams[u];
  next_due_[u] = health::now_ms() + up.resolve_interval.count();
  std::set<std::string> before = texts(current_[u]);
  std::set<std::string> after = texts(pending_[u]);
  if (before == after) return;
  std::string summary = "upstream '" + up.name + "':";
  for (const std::string& a : after) {
    if (!before.count(a)) summary += " +" + a;
  }
  for (const std::string& a : before) {
    if (!after.count(a)) summary += " -" + a;
  }
  current_[u] = pending_[u];
  on_change_(arg_, current_, summary);
}

}  // namespace sluice::server
