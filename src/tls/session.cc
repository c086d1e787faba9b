// One TLS connection. OpenSSL reads and writes through a BIO that points at
// the caller's buffers for the duration of one call, so no ciphertext is
// buffered here: what arrives is consumed at once (a partial record stays in
// OpenSSL's own read buffer), what is produced goes straight to `wire`.

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstring>

#include "openssl_util.h"

namespace sluice::tls {
namespace {

using Io = Session::Io;

int bio_write(BIO* bio, const char* data, int len) noexcept {
  auto* io = static_cast<Io*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  if (!io->out) {
    BIO_set_retry_write(bio);
    return -1;
  }
  io->out->append(data, static_cast<size_t>(len));
  return len;
}

int bio_read(BIO* bio, char* buf, int len) noexcept {
  auto* io = static_cast<Io*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  if (io->in_len == 0) {
    BIO_set_retry_read(bio);
    return -1;
  }
  size_t n = std::min(io->in_len, static_cast<size_t>(len));
  std::memcpy(buf, io->in, n);
  io->in += n;
  io->in_len -= n;
  return static_cast<int>(n);
}

long bio_ctrl(BIO*, int cmd, long, void*) noexcept { return cmd == BIO_CTRL_FLUSH ? 1 : 0; }

int bio_create(BIO* bio) noexcept {
  BIO_set_init(bio, 1);
  return 1;
}

BIO_METHOD* bio_method() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "sluice");
    BIO_meth_set_write(m, bio_write);
    BIO_meth_set_read(m, bio_read);
    BIO_meth_set_ctrl(m, bio_ctrl);
    BIO_meth_set_create(m, bio_create);
    return m;
  }();
  return method;
}

bool is_ip_literal(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// Plaintext is read from OpenSSL in slices of one maximal record.
constexpr size_t kReadSlice = 16 * 1024;

}  // namespace

// Points the BIO at the caller's buffers for one call and detaches it after,
// so a stale pointer is never left behind.
class IoScope {
 public:
  IoScope(Io& io, const char* in, size_t in_len, std::string* out) : io_(io) {
    io_ = Io{in, in_len, out};
  }
  ~IoScope() { io_ = Io{}; }
  IoScope(const IoScope&) = delete;
  IoScope& operator=(const IoScope&) = delete;

 private:
  Io& io_;
};

std::unique_ptr<Session> Session::accept(std::shared_ptr<const ServerContext> ctx) {
  std::unique_ptr<Session> s(new Session);
  s->ssl_ = SSL_new(ctx->default_ctx());
  if (!s->ssl_) return nullptr;
  s->ctx_ = std::move(ctx);
  BIO* bio = BIO_new(bio_method());
  BIO_set_data(bio, &s->io_);
  SSL_set_bio(s->ssl_, bio, bio);  // one reference for both directions
  SSL_set_accept_state(s->ssl_);
  return s;
}

std::unique_ptr<Session> Session::connect(std::shared_ptr<const ClientContext> ctx,
                                          const std::string& host) {
  std::unique_ptr<Session> s(new Session);
  s->ssl_ = SSL_new(ctx->ctx());
  if (!s->ssl_) return nullptr;
  s->client_ = true;
  BIO* bio = BIO_new(bio_method());
  BIO_set_data(bio, &s->io_);
  SSL_set_bio(s->ssl_, bio, bio);
  const std::string& name = ctx->sni().empty() ? host : ctx->sni();
  bool ip = is_ip_literal(name);
  if (!ip) SSL_set_tlsext_host_name(s->ssl_, name.c_str());
  if (ctx->verify()) {
    if (ip) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s->ssl_), name.c_str());
    } else {
      SSL_set1_host(s->ssl_, name.c_str());
    }
  }
  SSL_set_connect_state(s->ssl_);
  s->ctx_ = std::move(ctx);
  return s;
}

Session::~Session() { SSL_free(ssl_); }

Session::Status Session::start(std::string& wire) {
  IoScope scope(io_, nullptr, 0, &wire);
  return advance(nullptr);
}

Session::Status Session::receive(const char* data, size_t len, std::string& plain,
                                 std::string& wire) {
  started_ = true;
  IoScope scope(io_, data, len, &wire);
  return advance(&plain);
}

Session::Status Session::advance(std::string* plain) {
  if (!handshake_done_) {
    int rc = SSL_do_handshake(ssl_);
    if (rc != 1) {
      int err = SSL_get_error(ssl_, rc);
      if (err == SSL_ERROR_WANT_READ) return Status::ok;
      return fail(err);
    }
    handshake_done_ = true;
    if (!held_.empty()) {
      std::string held = std::move(held_);
      held_.clear();
      size_t written = 0;
      if (SSL_write_ex(ssl_, held.data(), held.size(), &written) != 1) {
        return fail(SSL_get_error(ssl_, 0));
      }
    }
  }
  if (!plain) return Status::ok;
  for (;;) {
    size_t old = plain->size();
    plain->resize(old + kReadSlice);
    size_t got = 0;
    int rc = SSL_read_ex(ssl_, plain->data() + old, kReadSlice, &got);
    plain->resize(old + (rc == 1 ? got : 0));
    if (rc == 1) continue;
    int err = SSL_get_error(ssl_, rc);
    if (err == SSL_ERROR_WANT_READ) return Status::ok;
    if (err == SSL_ERROR_ZERO_RETURN) return Status::closed;
    return fail(err);
  }
}

Session::Status Session::send(std::string_view plain, std::string& wire) {
  if (plain.empty()) return Status::ok;
  if (!handshake_done_) {
    held_.append(plain);
    return Status::ok;
  }
  IoScope scope(io_, nullptr, 0, &wire);
  size_t written = 0;
  if (SSL_write_ex(ssl_, plain.data(), plain.size(), &written) != 1) {
    return fail(SSL_get_error(ssl_, 0));
  }
  return Status::ok;
}

void Session::shutdown(std::string& wire) {
  if (!handshake_done_ || !error_.empty()) return;
  if ((SSL_get_shutdown(ssl_) & SSL_SENT_SHUTDOWN) != 0) return;  // said once
  IoScope scope(io_, nullptr, 0, &wire);
  SSL_shutdown(ssl_);
  ERR_clear_error();
}

Session::Status Session::fail(int ssl_error) {
  if (ssl_error == SSL_ERROR_SSL) {
    error_ = take_error();
    long verify = SSL_get_verify_result(ssl_);
    if (client_ && verify != X509_V_OK) {
      error_ += std::string(" (") + X509_verify_cert_error_string(verify) + ")";
    }
  } else if (ssl_error == SSL_ERROR_SYSCALL) {
    ERR_clear_error();
    error_ = "unexpected end of the TLS stream";
  } else {
    ERR_clear_error();
    error_ = "TLS error " + std::to_string(ssl_error);
  }
  return Status::failed;
}

std::string_view Session::version() const { return SSL_get_version(ssl_); }

std::string_view Session::alpn() const {
  const unsigned char* data = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl_, &data, &len);
  return {reinterpret_cast<const char*>(data), len};
}

std::string_view Session::server_name() const {
  const char* name = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name);
  return name ? name : "";
}

bool Session::resumed() const { return SSL_session_reused(ssl_) == 1; }

bool looks_like_plain_http(std::string_view first_bytes) {
  // Every TLS connection starts with a handshake record (0x16); HTTP starts
  // with a method token.
  return !first_bytes.empty() && first_bytes[0] >= 'A' && first_bytes[0] <= 'Z';
}

}  // namespace sluice::tls
