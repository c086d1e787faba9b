// Building the TLS contexts of listeners (certificates by SNI) and of
// upstreams (verification against a CA).

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "openssl_util.h"

namespace sluice::tls {
namespace {

// Mozilla's "intermediate" TLS 1.2 suites; TLS 1.3 keeps OpenSSL's defaults.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// Wire format: length-prefixed protocol names.
constexpr unsigned char kAlpnHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void*) noexcept {
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, kAlpnHttp11, sizeof kAlpnHttp11, in, inlen) ==
      OPENSSL_NPN_NEGOTIATED) {
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
  }
  // A client offering only h2 gets no ALPN answer rather than an alert: it
  // may still speak HTTP/1.1, and if not it says so itself.
  return SSL_TLSEXT_ERR_NOACK;
}

int on_servername(SSL* ssl, int*, void* arg) noexcept {
  const auto* self = static_cast<const ServerContext*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (!name) return SSL_TLSEXT_ERR_OK;
  if (SSL_CTX* ctx = self->for_host(base::to_lower(name))) SSL_set_SSL_CTX(ssl, ctx);
  return SSL_TLSEXT_ERR_OK;  // unknown names get the default certificate
}

// Loads one certificate chain and its key into a new server context.
CtxPtr load_cert(const config::CertKey& files, std::vector<config::Diagnostic>& diagnostics) {
  CtxPtr ctx = new_context(true);
  auto error = [&](const std::string& message) {
    diagnostics.push_back({config::Severity::error, files.pos, message});
    return nullptr;
  };
  if (!ctx) return error("cannot create a TLS context: " + take_error());
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), files.cert.c_str()) != 1) {
    return error("cannot load certificate chain " + files.cert + ": " + take_error());
  }
  const std::string mismatch = "private key " + files.key + " does not match certificate " + files.cert;
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), files.key.c_str(), SSL_FILETYPE_PEM) != 1) {
    if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
      take_error();
      return error(mismatch);
    }
    return error("cannot load private key " + files.key + ": " + take_error());
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1) {
    take_error();
    return error(mismatch);
  }
  X509* leaf = SSL_CTX_get0_certificate(ctx.get());
  if (leaf && X509_cmp_current_time(X509_get0_notAfter(leaf)) < 0) {
    diagnostics.push_back({config::Severity::warning, files.pos,
                           "certificate " + files.cert + " has expired: clients will refuse it"});
  }
  return ctx;
}

}  // namespace

void CtxFree::operator()(SSL_CTX* ctx) const noexcept { SSL_CTX_free(ctx); }

CtxPtr new_context(bool server) {
  CtxPtr ctx(SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()));
  if (!ctx) return nullptr;
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_cipher_list(ctx.get(), kTls12Ciphers);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  // Idle keep-alive connections and tunnels hold no record buffers.
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_RELEASE_BUFFERS);
  if (server) {
    SSL_CTX_set_alpn_select_cb(ctx.get(), select_alpn, nullptr);
    // Resumption by stateless tickets only: a server-side session cache
    // would be shared (and locked) across workers.
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx.get(), 1);
  } else {
    SSL_CTX_set_alpn_protos(ctx.get(), kAlpnHttp11, sizeof kAlpnHttp11);
  }
  return ctx;
}

std::string take_error() {
  unsigned long e = ERR_get_error();
  std::string reason;
  if (e != 0) {
    const char* r = ERR_reason_error_string(e);
    reason = r ? r : "error " + std::to_string(e);
  }
  ERR_clear_error();
  return reason.empty() ? "unknown error" : reason;
}

std::shared_ptr<const ServerContext> ServerContext::load(
    const config::ListenerTls& tls, std::vector<config::Diagnostic>& diagnostics) {
  auto ctx = std::shared_ptr<ServerContext>(new ServerContext);
  bool ok = true;
  ctx->default_ = load_cert(tls.default_cert, diagnostics);
  ok = ok && ctx->default_;
  for (const config::SniCert& sni : tls.sni) {
    CtxPtr c = load_cert(sni.files, diagnostics);
    if (!c) {
      ok = false;
      continue;
    }
    if (sni.host.starts_with("*.")) {
      ctx->wildcard_.emplace_back(sni.host.substr(1), std::move(c));
    } else {
      ctx->exact_.emplace_back(sni.host, std::move(c));
    }
  }
  if (!ok) return nullptr;
  // Only the context a handshake starts on runs the SNI callback.
  SSL_CTX_set_tlsext_servername_callback(ctx->default_.get(), on_servername);
  SSL_CTX_set_tlsext_servername_arg(ctx->default_.get(), ctx.get());
  return ctx;
}

SSL_CTX* ServerContext::for_host(std::string_view host) const {
  for (const auto& [name, ctx] : exact_) {
    if (name == host) return ctx.get();
  }
  size_t dot = host.find('.');
  if (dot == std::string_view::npos || dot == 0) return nullptr;
  std::string_view parent = host.substr(dot);  // ".example.com"
  for (const auto& [suffix, ctx] : wildcard_) {
    if (suffix == parent) return ctx.get();
  }
  return nullptr;
}

std::shared_ptr<const ClientContext> ClientContext::load(const config::UpstreamTls& tls,
                                                         std::string& error) {
  auto ctx = std::shared_ptr<ClientContext>(new ClientContext);
  ctx->ctx_ = new_context(false);
  if (!ctx->ctx_) {
    error = "cannot create a TLS context: " + take_error();
    return nullptr;
  }
  ctx->verify_ = tls.verify;
  ctx->sni_ = tls.sni;
  if (tls.verify) {
    SSL_CTX_set_verify(ctx->ctx_.get(), SSL_VERIFY_PEER, nullptr);
    int rc = tls.ca.empty() ? SSL_CTX_set_default_verify_paths(ctx->ctx_.get())
                            : SSL_CTX_load_verify_locations(ctx->ctx_.get(), tls.ca.c_str(), nullptr);
    if (rc != 1) {
      error = "cannot load CA certificates " + (tls.ca.empty() ? "(system store)" : tls.ca) + ": " +
              take_error();
      return nullptr;
    }
  } else {
    SSL_CTX_set_verify(ctx->ctx_.get(), SSL_VERIFY_NONE, nullptr);
  }
  return ctx;
}

}  // namespace sluice::tls
