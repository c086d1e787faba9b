#pragma once
// Certificates made in memory for TLS unit tests: a CA and leaf
// certificates it signs, written as PEM files into a temporary directory.

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace sluice::tls::testing {

struct KeyFree {
  void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
struct CertFree {
  void operator()(X509* c) const noexcept { X509_free(c); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyFree>;
using CertPtr = std::unique_ptr<X509, CertFree>;

inline void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// A certificate for `cn` with `san` ("DNS:a,IP:127.0.0.1"), signed by
// `issuer` (self-signed when null).
inline CertPtr make_cert(EVP_PKEY* key, const std::string& cn, const std::string& san,
                         X509* issuer, EVP_PKEY* issuer_key, long serial) {
  CertPtr cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509* signer = issuer ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  if (issuer) {
    add_ext(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(cert.get(), signer, NID_subject_alt_name, san);
  } else {
    add_ext(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  }
  X509_sign(cert.get(), issuer_key ? issuer_key : key, EVP_sha256());
  return cert;
}

inline void write_pem(const std::filesystem::path& path, X509* cert, EVP_PKEY* key) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (cert) PEM_write_X509(f, cert);
  if (key) PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
}

// A directory holding ca.pem and, per make_leaf call, NAME.pem/NAME.key.
class CertDir {
 public:
  explicit CertDir(const std::string& tag)
      : dir_(std::filesystem::temp_directory_path() /
             ("sluice-tls-test-" + tag + "-" + std::to_string(::getpid()))),
        ca_key_(EVP_EC_gen("P-256")),
        ca_(make_cert(ca_key_.get(), "test CA " + tag, "", nullptr, nullptr, 1)) {
    std::filesystem::create_directories(dir_);
    write_pem(dir_ / "ca.pem", ca_.get(), nullptr);
  }
  ~CertDir() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  CertDir(const CertDir&) = delete;
  CertDir& operator=(const CertDir&) = delete;

  // Writes NAME.pem and NAME.key for `san`; returns {cert, key} paths.
  std::pair<std::string, std::string> make_leaf(const std::string& name, const std::string& san) {
    KeyPtr key(EVP_EC_gen("P-256"));
    CertPtr cert = make_cert(key.get(), name, san, ca_.get(), ca_key_.get(), ++serial_);
    write_pem(dir_ / (name + ".pem"), cert.get(), nullptr);
    write_pem(dir_ / (name + ".key"), nullptr, key.get());
    return {(dir_ / (name + ".pem")).string(), (dir_ / (name + ".key")).string()};
  }

  std::string ca() const { return (dir_ / "ca.pem").string(); }
  std::string path(const std::string& file) const { return (dir_ / file).string(); }

 private:
  std::filesystem::path dir_;
  KeyPtr ca_key_;
  CertPtr ca_;
  long serial_ = 1;
};

}  // namespace sluice::tls::testing
