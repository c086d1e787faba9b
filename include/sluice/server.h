#pragma once
// The process: listening sockets, one worker thread per event loop, signals.

#include <memory>

#include "sluice/config.h"

namespace sluice::server {

// Serves `config` until SIGTERM or SIGINT. Prints one line per listener to
// stderr before serving. Returns the process exit status.
int run(std::shared_ptr<const config::Config> config);

}  // namespace sluice::server
