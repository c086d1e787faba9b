#include <array>

#include "sluice/base.h"

namespace sluice::base {
namespace {

// The one table of errors sluice answers itself (SPEC.md, "Errors sluice
// itself answers"). Order follows the enum; a static_assert keeps them in step.
constexpr std::array kErrors{
    ErrorInfo{"bad_request", 400, "malformed request"},
    ErrorInfo{"request_smuggling", 400, "ambiguous request framing (Content-Length and Transfer-Encoding, or conflicting Content-Length)"},
    ErrorInfo{"upgrade_not_allowed", 400, "WebSocket upgrade is not allowed on this route"},
    ErrorInfo{"bad_upgrade", 400, "malformed WebSocket handshake"},
    ErrorInfo{"origin_forbidden", 403, "Origin is not in allowed_origins"},
    ErrorInfo{"path_escape", 400, "path climbs above the matched prefix with '..'"},
    ErrorInfo{"no_route", 404, "no route matches"},
    ErrorInfo{"body_too_large", 413, "request body exceeds max_body"},
    ErrorInfo{"headers_too_large", 431, "request head exceeds server.max_header_size"},
    ErrorInfo{"header_timeout", 408, "request head not received within server.header_timeout"},
    ErrorInfo{"upstream_refused", 502, "upstream refused the connection"},
    ErrorInfo{"upstream_reset", 502, "upstream reset the connection"},
    ErrorInfo{"upstream_bad_response", 502, "upstream sent an invalid response"},
    ErrorInfo{"upstream_tls", 502, "TLS handshake with the upstream failed"},
    ErrorInfo{"upstream_unresolved", 502, "upstream name resolves to no address"},
    ErrorInfo{"connect_timeout", 504, "upstream connect timed out"},
    ErrorInfo{"read_timeout", 504, "upstream read timed out"},
    ErrorInfo{"no_healthy_upstream", 503, "no healthy upstream server"},
    ErrorInfo{"over_capacity", 503, "too many connections"},
};
static_assert(kErrors.size() == static_cast<size_t>(ErrorCode::over_capacity) + 1);

}  // namespace

const ErrorInfo& error_info(ErrorCode code) { return kErrors[static_cast<size_t>(code)]; }

}  // namespace sluice::base
