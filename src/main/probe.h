#pragma once
// `sluice check --probe`: connects once to every upstream server. Runs in the
// control plane with blocking name resolution; never on a worker loop.

#include <vector>

#include "sluice/config.h"

namespace sluice::cli {

struct ProbeResult {
  const config::Upstream* upstream;
  const config::UpstreamServer* server;
  std::string address;  // what was connected to ("10.0.0.7:8000"), or the name
  std::string failure;  // "" = connected; else "connection refused", "timed out after 5s"...
};

// All servers are probed concurrently; each gets its upstream's connect_timeout.
std::vector<ProbeResult> probe_upstreams(const config::Config& config);

}  // namespace sluice::cli
