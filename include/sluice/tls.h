#pragma once
// TLS over memory BIOs (OpenSSL 3). Sockets stay with libuv: a Session takes
// the bytes read from the socket and gives back plaintext and the bytes to
// write, so the same code serves listeners and upstream connections, and a
// handshake never blocks a loop.
//
// Contexts are immutable once built and shared by every worker (an SSL_CTX is
// safe to use from several threads); a reload builds new ones, and each
// connection keeps the context it started with.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/config.h"

using SSL = struct ssl_st;
using SSL_CTX = struct ssl_ctx_st;

namespace sluice::tls {

struct CtxFree {
  void operator()(SSL_CTX* ctx) const noexcept;
};
using CtxPtr = std::unique_ptr<SSL_CTX, CtxFree>;

// The certificates of one TLS listener: a default one and one per SNI host
// (exact names and "*.example.com" wildcards, which cover one label).
class ServerContext {
 public:
  // Loads every certificate chain and key. Problems (unreadable file, key
  // not matching its certificate, expired leaf as a warning) come back as
  // diagnostics at the position of the entry; null when any is an error.
  static std::shared_ptr<const ServerContext> load(const config::ListenerTls& tls,
                                                   std::vector<config::Diagnostic>& diagnostics);

  SSL_CTX* default_ctx() const { return default_.get(); }
  // The context for a client's SNI name: exact, then wildcard, else null.
  SSL_CTX* for_host(std::string_view host) const;

 private:
  CtxPtr default_;
  std::vector<std::pair<std::string, CtxPtr>> exact_;
  std::vector<std::pair<std::string, CtxPtr>> wildcard_;  // key: ".example.com"
};

// How sluice connects to one TLS upstream.
class ClientContext {
 public:
  static std::shared_ptr<const ClientContext> load(const config::UpstreamTls& tls,
                                                   std::string& error);

  SSL_CTX* ctx() const { return ctx_.get(); }
  bool verify() const { return verify_; }
  const std::string& sni() const { return sni_; }

 private:
  CtxPtr ctx_;
  bool verify_ = true;
  std::string sni_;
};

class Session {
 public:
  enum class Status {
    ok,      // keep going (the handshake may still be running)
    closed,  // the peer sent close_notify: treat as end of stream
    failed,  // handshake or record error; error() says why
  };

  // A server session: SNI picks the certificate from `ctx`.
  static std::unique_ptr<Session> accept(std::shared_ptr<const ServerContext> ctx);
  // A client session to a server named `host` (an IP address or a name):
  // SNI is sent for names, and with verification on the certificate must
  // name `host` (or the context's sni, when set).
  static std::unique_ptr<Session> connect(std::shared_ptr<const ClientContext> ctx,
                                          const std::string& host);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Client side: the first flight (ClientHello) into `wire`.
  Status start(std::string& wire);
  // Bytes read from the socket. Decrypted bytes are appended to `plain`,
  // bytes to write (handshake messages, alerts) to `wire`.
  Status receive(const char* data, size_t len, std::string& plain, std::string& wire);
  // Encrypts `plain` into `wire`. Before the handshake ends the bytes are
  // held and sent when it does.
  Status send(std::string_view plain, std::string& wire);
  // A close_notify alert into `wire` (after the handshake, once; else nothing).
  void shutdown(std::string& wire);

  bool handshake_done() const { return handshake_done_; }
  // True once any byte arrived from the peer.
  bool started() const { return started_; }
  const std::string& error() const { return error_; }
  // The negotiated protocol version ("TLSv1.3") and ALPN ("http/1.1" or "").
  std::string_view version() const;
  std::string_view alpn() const;
  // The SNI name a client asked for ("" when none).
  std::string_view server_name() const;
  bool resumed() const;

  // What the session's BIO reads from and writes to during one call.
  struct Io {
    const char* in = nullptr;
    size_t in_len = 0;
    std::string* out = nullptr;
  };

 private:
  Session() = default;
  Status advance(std::string* plain);
  Status fail(int ssl_error);

  std::shared_ptr<const void> ctx_;  // keeps the SSL_CTX alive
  SSL* ssl_ = nullptr;
  Io io_;
  bool handshake_done_ = false;
  bool started_ = false;
  bool client_ = false;
  std::string held_;  // plaintext sent before the handshake ended
  std::string error_;
};

// True when the first bytes of a connection to a TLS port look like a plain
// HTTP request ("GET / HTTP/1.1") rather than a TLS record.
bool looks_like_plain_http(std::string_view first_bytes);

}  // namespace sluice::tls
