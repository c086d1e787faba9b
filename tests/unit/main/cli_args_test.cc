// The command line of SPEC.md "Command line":
//   sluice [--config FILE]
//   sluice check [--config FILE] [--probe]
//   sluice explain [--config FILE] [--host H] [--method M] [--header 'K: V']... TARGET
//   sluice version
//   sluice import-ingress [--tls-dir DIR] FILE.json   (docs/migrating-from-ingress-nginx.md)

#include <doctest/doctest.h>

#include <initializer_list>
#include <string>
#include <vector>

#include "cli_args.h"

using namespace sluice;
using cli::Command;

namespace {

struct Parsed {
  std::optional<cli::CliArgs> args;
  std::string error;
};

// Parses `sluice <words...>`.
Parsed parse(std::initializer_list<const char*> words) {
  std::vector<const char*> argv{"sluice"};
  argv.insert(argv.end(), words.begin(), words.end());
  Parsed p;
  p.args = cli::parse_args(static_cast<int>(argv.size()), argv.data(), p.error);
  return p;
}

}  // namespace

TEST_CASE("cli: no command runs with the default config") {
  Parsed p = parse({});
  REQUIRE(p.args.has_value());
  CHECK(p.args->command == Command::run);
  CHECK(p.args->config == "conf/sluice.toml");
  CHECK_FALSE(p.args->probe);
}

TEST_CASE("cli: run takes --config FILE and --config=FILE") {
  Parsed a = parse({"--config", "/etc/sluice/sluice.toml"});
  REQUIRE(a.args.has_value());
  CHECK(a.args->command == Command::run);
  CHECK(a.args->config == "/etc/sluice/sluice.toml");

  Parsed b = parse({"--config=/etc/sluice/other.toml"});
  REQUIRE(b.args.has_value());
  CHECK(b.args->command == Command::run);
  CHECK(b.args->config == "/etc/sluice/other.toml");

  Parsed c = parse({"run", "--config", "x.toml"});
  REQUIRE(c.args.has_value());
  CHECK(c.args->command == Command::run);
  CHECK(c.args->config == "x.toml");
}

TEST_CASE("cli: --config without a value is an error") {
  Parsed p = parse({"--config"});
  CHECK_FALSE(p.args.has_value());
  CHECK(p.error.find("--config") != std::string::npos);
  CHECK_FALSE(parse({"check", "--config"}).args.has_value());
}

TEST_CASE("cli: check with --config and --probe, in either order") {
  Parsed a = parse({"check"});
  REQUIRE(a.args.has_value());
  CHECK(a.args->command == Command::check);
  CHECK(a.args->config == "conf/sluice.toml");
  CHECK_FALSE(a.args->probe);

  Parsed b = parse({"check", "--config", "c.toml", "--probe"});
  REQUIRE(b.args.has_value());
  CHECK(b.args->command == Command::check);
  CHECK(b.args->config == "c.toml");
  CHECK(b.args->probe);

  Parsed c = parse({"check", "--probe", "--config=d.toml"});
  REQUIRE(c.args.has_value());
  CHECK(c.args->probe);
  CHECK(c.args->config == "d.toml");
}

TEST_CASE("cli: --probe belongs to check only") {
  CHECK_FALSE(parse({"--probe"}).args.has_value());
  CHECK_FALSE(parse({"explain", "--probe", "/x"}).args.has_value());
}

TEST_CASE("cli: explain takes a TARGET and defaults to GET without a Host") {
  Parsed p = parse({"explain", "/socket.io/?EIO=4&transport=polling"});
  REQUIRE(p.args.has_value());
  CHECK(p.args->command == Command::explain);
  CHECK(p.args->explain.target == "/socket.io/?EIO=4&transport=polling");
  CHECK(p.args->explain.host == "");
  CHECK(p.args->explain.method == "GET");
  CHECK(p.args->explain.headers.empty());
  CHECK(p.args->config == "conf/sluice.toml");
}

TEST_CASE("cli: explain takes --config, --host, --method in both spellings") {
  Parsed a = parse({"explain", "--config", "c.toml", "--host", "App.Example.com:8443", "--method", "POST",
                    "/api/x"});
  REQUIRE(a.args.has_value());
  CHECK(a.args->config == "c.toml");
  CHECK(a.args->explain.host == "App.Example.com:8443");  // as the client would send it
  CHECK(a.args->explain.method == "POST");
  CHECK(a.args->explain.target == "/api/x");

  Parsed b = parse({"explain", "--config=c.toml", "--host=h.example.com", "--method=PUT", "/y"});
  REQUIRE(b.args.has_value());
  CHECK(b.args->config == "c.toml");
  CHECK(b.args->explain.host == "h.example.com");
  CHECK(b.args->explain.method == "PUT");
  CHECK(b.args->explain.target == "/y");

  Parsed c = parse({"explain", "/z", "--host", "h.example.com"});  // options after TARGET
  REQUIRE(c.args.has_value());
  CHECK(c.args->explain.target == "/z");
  CHECK(c.args->explain.host == "h.example.com");
}

TEST_CASE("cli: explain --header is repeatable and split at the first colon") {
  Parsed p = parse({"explain", "--header", "Upgrade: websocket", "--header", "Connection: Upgrade",
                    "--header=Origin: https://app.example.com:8443", "/ws"});
  REQUIRE(p.args.has_value());
  const router::HeaderList& h = p.args->explain.headers;
  REQUIRE(h.size() == 3);
  CHECK(h[0] == std::pair<std::string, std::string>{"Upgrade", "websocket"});
  CHECK(h[1] == std::pair<std::string, std::string>{"Connection", "Upgrade"});
  CHECK(h[2] == std::pair<std::string, std::string>{"Origin", "https://app.example.com:8443"});
  CHECK(p.args->explain.target == "/ws");
}

TEST_CASE("cli: explain --header without 'Name: value' is an error") {
  CHECK_FALSE(parse({"explain", "--header", "Upgrade", "/ws"}).args.has_value());
  CHECK_FALSE(parse({"explain", "--header", ": value", "/ws"}).args.has_value());
  CHECK_FALSE(parse({"explain", "/ws", "--header"}).args.has_value());
}

TEST_CASE("cli: explain without a TARGET is an error") {
  Parsed p = parse({"explain"});
  CHECK_FALSE(p.args.has_value());
  CHECK(p.error.find("TARGET") != std::string::npos);
  CHECK_FALSE(parse({"explain", "--host", "h.example.com"}).args.has_value());
  CHECK_FALSE(parse({"explain", "--config", "c.toml"}).args.has_value());
}

TEST_CASE("cli: explain takes exactly one TARGET") {
  CHECK_FALSE(parse({"explain", "/a", "/b"}).args.has_value());
}

TEST_CASE("cli: version") {
  Parsed p = parse({"version"});
  REQUIRE(p.args.has_value());
  CHECK(p.args->command == Command::version);
  CHECK_FALSE(parse({"version", "extra"}).args.has_value());
}

TEST_CASE("cli: unknown commands and options are errors") {
  Parsed a = parse({"bogus"});
  CHECK_FALSE(a.args.has_value());
  CHECK(a.error.find("bogus") != std::string::npos);
  Parsed b = parse({"check", "--verbose"});
  CHECK_FALSE(b.args.has_value());
  CHECK(b.error.find("--verbose") != std::string::npos);
  CHECK_FALSE(parse({"check", "extra.toml"}).args.has_value());
  CHECK_FALSE(parse({"--host", "h.example.com"}).args.has_value());   // explain's options only
  CHECK_FALSE(parse({"check", "--method", "GET"}).args.has_value());
  CHECK_FALSE(parse({"explain", "--bogus", "/x"}).args.has_value());
  CHECK_FALSE(parse({"--configx=a.toml"}).args.has_value());
}

TEST_CASE("cli: import-ingress takes one FILE, - for stdin") {
  Parsed p = parse({"import-ingress", "ingress.json"});
  REQUIRE(p.args.has_value());
  CHECK(p.args->command == Command::import_ingress);
  CHECK(p.args->ingress_file == "ingress.json");
  CHECK(p.args->tls_dir == "/etc/sluice/tls");

  Parsed in = parse({"import-ingress", "-"});
  REQUIRE(in.args.has_value());
  CHECK(in.args->ingress_file == "-");
}

TEST_CASE("cli: import-ingress --tls-dir in both spellings, before or after FILE") {
  Parsed a = parse({"import-ingress", "--tls-dir", "/run/certs", "ingress.json"});
  REQUIRE(a.args.has_value());
  CHECK(a.args->tls_dir == "/run/certs");
  CHECK(a.args->ingress_file == "ingress.json");

  Parsed b = parse({"import-ingress", "ingress.json", "--tls-dir=/tmp/t"});
  REQUIRE(b.args.has_value());
  CHECK(b.args->tls_dir == "/tmp/t");
  CHECK(b.args->ingress_file == "ingress.json");
}

TEST_CASE("cli: import-ingress usage errors") {
  Parsed none = parse({"import-ingress"});
  CHECK_FALSE(none.args.has_value());
  CHECK(none.error.find("FILE") != std::string::npos);
  CHECK_FALSE(parse({"import-ingress", "a.json", "b.json"}).args.has_value());
  CHECK_FALSE(parse({"import-ingress", "--tls-dir"}).args.has_value());
  CHECK_FALSE(parse({"import-ingress", "--tls-dir=", "a.json"}).args.has_value());
  Parsed config = parse({"import-ingress", "--config", "c.toml", "a.json"});  // it reads no config
  CHECK_FALSE(config.args.has_value());
  CHECK(config.error.find("--config") != std::string::npos);
  CHECK_FALSE(parse({"import-ingress", "--probe", "a.json"}).args.has_value());
  CHECK_FALSE(parse({"check", "--tls-dir", "/x"}).args.has_value());  // import-ingress's option only
  CHECK_FALSE(parse({"--tls-dir", "/x"}).args.has_value());
}
