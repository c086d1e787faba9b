#include "probe.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>

namespace sluice::cli {
namespace {

struct Attempt {
  size_t result;  // index into the results
  int fd = -1;
  std::chrono::steady_clock::time_point deadline;
  base::Duration timeout;
};

std::string describe(const sockaddr* sa) {
  char host[NI_MAXHOST] = {0}, port[NI_MAXSERV] = {0};
  socklen_t len = sa->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  if (getnameinfo(sa, len, host, sizeof host, port, sizeof port, NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    return "?";
  }
  base::HostPort hp{host, static_cast<uint16_t>(std::atoi(port))};
  return hp.to_string();
}

}  // namespace

std::vector<ProbeResult> probe_upstreams(const config::Config& config) {
  std::vector<ProbeResult> results;
  std::vector<Attempt> attempts;
  auto now = std::chrono::steady_clock::now();
  for (const config::Upstream& u : config.upstreams) {
    for (const config::UpstreamServer& s : u.servers) {
      addrinfo hints{};
      hints.ai_socktype = SOCK_STREAM;
      hints.ai_flags = s.dns ? 0 : AI_NUMERICHOST;
      addrinfo* list = nullptr;
      std::string port = std::to_string(s.address.port);
      int rc = getaddrinfo(s.address.host.c_str(), port.c_str(), &hints, &list);
      if (rc != 0 || !list) {
        results.push_back({&u, &s, s.address.to_string(),
                           std::string("does not resolve (") + gai_strerror(rc) + ")"});
        continue;
      }
      for (addrinfo* ai = list; ai; ai = ai->ai_next) {
        ProbeResult result{&u, &s, describe(ai->ai_addr), ""};
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
          result.failure = std::strerror(errno);
          results.push_back(std::move(result));
          continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
          result.failure = std::strerror(errno);
          close(fd);
          results.push_back(std::move(result));
          continue;
        }
        results.push_back(std::move(result));
        attempts.push_back({results.size() - 1, fd, now + u.connect_timeout, u.connect_timeout});
      }
      freeaddrinfo(list);
    }
  }
  // Wait for every pending connect together, so the whole probe takes at most
  // the longest connect_timeout rather than their sum.
  while (!attempts.empty()) {
    std::vector<pollfd> fds;
    auto next_deadline = attempts.front().deadline;
    for (const Attempt& a : attempts) {
      fds.push_back({a.fd, POLLOUT, 0});
      next_deadline = std::min(next_deadline, a.deadline);
    }
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(
        next_deadline - std::chrono::steady_clock::now());
    int n = poll(fds.data(), fds.size(), static_cast<int>(std::max<long>(0, wait.count())));
    if (n < 0 && errno != EINTR) break;
    auto t = std::chrono::steady_clock::now();
    std::vector<Attempt> pending;
    for (size_t i = 0; i < attempts.size(); ++i) {
      Attempt& a = attempts[i];
      if (fds[i].revents != 0) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(a.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err == ECONNREFUSED) results[a.result].failure = "connection refused";
        else if (err != 0) results[a.result].failure = std::strerror(err);
        close(a.fd);
      } else if (t >= a.deadline) {
        results[a.result].failure = "timed out after " + base::format_duration(a.timeout);
        close(a.fd);
      } else {
        pending.push_back(a);
      }
    }
    attempts = std::move(pending);
  }
  for (const Attempt& a : attempts) close(a.fd);
  return results;
}

}  // namespace sluice::cli
