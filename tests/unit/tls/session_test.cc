// TLS sessions over memory: a client and a server Session talk through
// strings, so handshakes, SNI, verification and record handling are tested
// without sockets.

#include <doctest/doctest.h>

#include <random>

#include "sluice/tls.h"
#include "test_certs.h"

namespace sluice::tls {
namespace {

using Status = Session::Status;
using testing::CertDir;

config::CertKey files(const std::pair<std::string, std::string>& leaf) {
  return config::CertKey{leaf.first, leaf.second, {3, 1}};
}

// Two sessions wired back to back.
struct Pair {
  std::unique_ptr<Session> client;
  std::unique_ptr<Session> server;
  std::string client_plain, server_plain;
  Status client_status = Status::ok, server_status = Status::ok;

  // Moves bytes both ways until neither side has anything to say.
  void pump(std::string to_server) {
    for (int round = 0; round < 20 && !to_server.empty(); ++round) {
      std::string to_client;
      server_status = server->receive(to_server.data(), to_server.size(), server_plain, to_client);
      to_server.clear();
      if (to_client.empty()) break;
      client_status = client->receive(to_client.data(), to_client.size(), client_plain, to_server);
    }
  }
  void handshake() {
    std::string hello;
    client_status = client->start(hello);
    pump(std::move(hello));
  }
};

struct Fixture {
  CertDir certs{"session"};
  std::shared_ptr<const ServerContext> server_ctx;

  Fixture() {
    config::ListenerTls tls;
    tls.default_cert = files(certs.make_leaf("localhost", "DNS:localhost,IP:127.0.0.1"));
    tls.sni.push_back({"api.example.test", files(certs.make_leaf("api", "DNS:api.example.test"))});
    tls.sni.push_back({"*.apps.test", files(certs.make_leaf("apps", "DNS:*.apps.test"))});
    std::vector<config::Diagnostic> diags;
    server_ctx = ServerContext::load(tls, diags);
    REQUIRE(server_ctx);
    REQUIRE(diags.empty());
  }

  Pair connect(const std::string& host, config::UpstreamTls client_tls = {}) {
    if (client_tls.ca.empty() && client_tls.verify) client_tls.ca = certs.ca();
    std::string error;
    auto client_ctx = ClientContext::load(client_tls, error);
    REQUIRE_MESSAGE(client_ctx, error);
    Pair p;
    p.client = Session::connect(client_ctx, host);
    p.server = Session::accept(server_ctx);
    REQUIRE(p.client);
    REQUIRE(p.server);
    return p;
  }
};

TEST_CASE_FIXTURE(Fixture, "a handshake in memory negotiates TLS 1.3 and ALPN http/1.1") {
  Pair p = connect("localhost");
  p.handshake();
  CHECK(p.client_status == Status::ok);
  CHECK(p.server_status == Status::ok);
  REQUIRE(p.client->handshake_done());
  REQUIRE(p.server->handshake_done());
  CHECK(p.server->version() == "TLSv1.3");
  CHECK(p.server->alpn() == "http/1.1");
  CHECK(p.client->alpn() == "http/1.1");
  CHECK(p.server->server_name() == "localhost");
  CHECK_FALSE(p.server->resumed());
}

TEST_CASE_FIXTURE(Fixture, "application data crosses both ways, whatever the read sizes") {
  Pair p = connect("127.0.0.1");
  p.handshake();
  REQUIRE(p.server->handshake_done());
  std::string request(200000, '\0');
  std::mt19937 rng(7);
  for (char& c : request) c = static_cast<char>(rng());
  std::string wire;
  REQUIRE(p.client->send(request, wire) == Status::ok);
  CHECK(wire.size() > request.size());  // records add headers and tags
  // Deliver in uneven slices, as TCP would.
  size_t at = 0;
  std::string unused;
  while (at < wire.size()) {
    size_t n = std::min<size_t>(1 + rng() % 5000, wire.size() - at);
    REQUIRE(p.server->receive(wire.data() + at, n, p.server_plain, unused) == Status::ok);
    at += n;
  }
  CHECK(p.server_plain == request);

  std::string reply_wire;
  REQUIRE(p.server->send("HTTP/1.1 200 OK\r\n\r\n", reply_wire) == Status::ok);
  std::string out;
  REQUIRE(p.client->receive(reply_wire.data(), reply_wire.size(), p.client_plain, out) == Status::ok);
  CHECK(p.client_plain == "HTTP/1.1 200 OK\r\n\r\n");
}

TEST_CASE_FIXTURE(Fixture, "bytes sent before the handshake ends go out when it does") {
  Pair p = connect("localhost");
  std::string early_wire;
  REQUIRE(p.client->send("early", early_wire) == Status::ok);
  CHECK(early_wire.empty());
  std::string hello;
  p.client->start(hello);
  // Client hello -> server flight -> client finished (+ held data).
  std::string to_client, to_server;
  REQUIRE(p.server->receive(hello.data(), hello.size(), p.server_plain, to_client) == Status::ok);
  REQUIRE(p.client->receive(to_client.data(), to_client.size(), p.client_plain, to_server) ==
          Status::ok);
  REQUIRE(p.client->handshake_done());
  std::string more;
  REQUIRE(p.server->receive(to_server.data(), to_server.size(), p.server_plain, more) == Status::ok);
  CHECK(p.server_plain == "early");
}

TEST_CASE_FIXTURE(Fixture, "SNI chooses the certificate: exact, wildcard (one label), default") {
  SUBCASE("exact name") {
    Pair p = connect("api.example.test");
    p.handshake();
    CHECK(p.client->handshake_done());
    CHECK(p.server->server_name() == "api.example.test");
  }
  SUBCASE("wildcard") {
    Pair p = connect("one.apps.test");
    p.handshake();
    CHECK(p.client->handshake_done());
  }
  SUBCASE("a wildcard covers one label only: two labels get the default certificate") {
    Pair p = connect("a.b.apps.test");
    p.handshake();
    CHECK(p.client_status == Status::failed);
    CHECK(p.client->error().find("certificate verify failed") != std::string::npos);
  }
  SUBCASE("unknown name gets the default certificate, which does not name it") {
    Pair p = connect("other.example.test");
    p.handshake();
    CHECK(p.client_status == Status::failed);
    INFO(p.client->error());
    CHECK(p.client->error().find("ostname mismatch") != std::string::npos);
  }
  CHECK(server_ctx->for_host("API.example.test") == nullptr);  // callers lower-case first
  CHECK(server_ctx->for_host("api.example.test") != nullptr);
  CHECK(server_ctx->for_host("x.apps.test") != nullptr);
  CHECK(server_ctx->for_host("apps.test") == nullptr);
}

TEST_CASE_FIXTURE(Fixture, "verification: a wrong CA fails the handshake and says why") {
  CertDir other{"other"};
  config::UpstreamTls wrong;
  wrong.ca = other.ca();
  Pair p = connect("localhost", wrong);
  p.handshake();
  CHECK(p.client_status == Status::failed);
  CHECK_FALSE(p.client->handshake_done());
  CHECK(p.client->error() ==
        "certificate verify failed (unable to get local issuer certificate)");
  CHECK(p.server_status == Status::failed);  // the client's alert

  SUBCASE("verify = false accepts it") {
    config::UpstreamTls off;
    off.verify = false;
    Pair q = connect("localhost", off);
    q.handshake();
    CHECK(q.client->handshake_done());
  }
  SUBCASE("sni overrides the name that must match") {
    config::UpstreamTls sni;
    sni.sni = "api.example.test";
    Pair q = connect("127.0.0.1", sni);
    q.handshake();
    CHECK(q.client->handshake_done());
    CHECK(q.server->server_name() == "api.example.test");
  }
}

TEST_CASE_FIXTURE(Fixture, "close_notify ends the stream; garbage fails the handshake") {
  Pair p = connect("localhost");
  p.handshake();
  std::string wire;
  p.client->shutdown(wire);
  REQUIRE_FALSE(wire.empty());
  std::string out;
  CHECK(p.server->receive(wire.data(), wire.size(), p.server_plain, out) == Status::closed);

  auto server = Session::accept(server_ctx);
  std::string garbage = "\xff\xff\xff\xff\xff this is not TLS";
  std::string plain;
  CHECK(server->receive(garbage.data(), garbage.size(), plain, out) == Status::failed);
  CHECK_FALSE(server->error().empty());
}

TEST_CASE("plain HTTP is told apart from a TLS record") {
  CHECK(looks_like_plain_http("GET / HTTP/1.1\r\n"));
  CHECK(looks_like_plain_http("P"));
  CHECK_FALSE(looks_like_plain_http("\x16\x03\x01"));
  CHECK_FALSE(looks_like_plain_http(""));
  CHECK_FALSE(looks_like_plain_http("get /"));
}

TEST_CASE("certificate problems are diagnostics at the entry's position") {
  CertDir certs{"load"};
  auto leaf = certs.make_leaf("localhost", "DNS:localhost");
  auto other = certs.make_leaf("other", "DNS:other");
  std::vector<config::Diagnostic> diags;

  config::ListenerTls missing;
  missing.default_cert = {certs.path("nope.pem"), leaf.second, {4, 2}};
  CHECK(ServerContext::load(missing, diags) == nullptr);
  REQUIRE(diags.size() == 1);
  CHECK(diags[0].pos.line == 4);
  CHECK(diags[0].message.find("cannot load certificate chain") != std::string::npos);

  diags.clear();
  config::ListenerTls mismatched;
  mismatched.default_cert = {leaf.first, other.second, {5, 1}};
  CHECK(ServerContext::load(mismatched, diags) == nullptr);
  REQUIRE(diags.size() == 1);
  CHECK(diags[0].message == "private key " + other.second + " does not match certificate " +
                                leaf.first);

  std::string error;
  config::UpstreamTls bad_ca;
  bad_ca.ca = certs.path("missing-ca.pem");
  CHECK(ClientContext::load(bad_ca, error) == nullptr);
  CHECK(error.find("cannot load CA certificates") != std::string::npos);
}

}  // namespace
}  // namespace sluice::tls
