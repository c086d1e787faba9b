#pragma once
// Helpers shared by the TLS contexts and sessions.

#include <openssl/ssl.h>

#include <string>

#include "sluice/tls.h"

namespace sluice::tls {

// A context with the defaults every sluice TLS endpoint shares: TLS 1.2 and
// 1.3 only, forward-secret AEAD suites for 1.2, no renegotiation or
// compression, ALPN http/1.1, buffers released while idle.
CtxPtr new_context(bool server);

// The reason of the oldest error in this thread's OpenSSL queue, which is
// then cleared (a stale entry would confuse the next SSL_get_error).
std::string take_error();

}  // namespace sluice::tls
