#pragma once
// Rules that span tables: routes against upstreams, conflicts between routes
// and listeners, and the warnings that catch realtime misconfigurations.

#include <vector>

#include "sluice/config.h"
#include "table_reader.h"

namespace sluice::config {

// Where a route's keys stood in the file, parallel to Config::routes, so that
// cross-table diagnostics point at the key they are about.
struct RoutePositions {
  SourcePos host, path, upstream, kind, strip_prefix, rewrite_prefix, read_timeout;
  SourcePos tunnel_idle, ping, allowed_origins, respond, redirect;
  bool has_tunnel_idle = false;
  bool has_ping = false;
  bool has_read_timeout = false;
  bool has_kind = false;
  bool bad_host = false;  // its host was rejected: it takes part in no conflict check
};

void validate(Config& config, const std::vector<RoutePositions>& positions, Diagnostics& diags);

}  // namespace sluice::config
