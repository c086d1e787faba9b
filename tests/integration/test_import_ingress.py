"""`sluice import-ingress` (docs/migrating-from-ingress-nginx.md): the JSON of
`kubectl get ingress -A -o json` in, a sluice.toml out.

fixtures/ingress/*.json are real-world-shaped Ingress lists; golden/import-ingress/
holds each one's exact stdout (NAME.toml) and stderr (NAME.stderr). Regenerate
them with SLUICE_UPDATE_GOLDEN=1 and review the diff like code. Every output
must pass `sluice check` (the certificates it names are made by tools/dev-cert
under --tls-dir) and route sample requests where ingress-nginx sent them, as
`sluice explain` shows."""

import json
import os
import pathlib
import re
import shutil
import subprocess

import pytest

from conftest import REPO, SLUICE, run_sluice

HERE = pathlib.Path(__file__).parent
FIXTURES = HERE / "fixtures" / "ingress"
GOLDEN = HERE / "golden" / "import-ingress"
UPDATE = os.environ.get("SLUICE_UPDATE_GOLDEN") == "1"
NAMES = sorted(p.stem for p in FIXTURES.glob("*.json"))
WARNING_LINE = re.compile(r"^(?P<file>[^:]+): (?P<object>[a-z0-9.-]+/[A-Za-z0-9.\[\]-]+): (?P<field>[^:]+): (?P<message>.+)$")


def fixture_arg(name):
    """The fixture's path as the golden files name it (relative to the repo)."""
    return str((FIXTURES / f"{name}.json").relative_to(REPO))


def golden_compare(name, actual):
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
    assert path.exists(), f"missing golden file {path}; run with SLUICE_UPDATE_GOLDEN=1"
    assert actual == path.read_text()


@pytest.fixture(scope="module")
def dev_cert(tmp_path_factory):
    """One certificate and key from tools/dev-cert, copied wherever an output wants one."""
    out = tmp_path_factory.mktemp("dev-cert")
    subprocess.run([str(REPO / "tools" / "dev-cert"), "-o", str(out)], check=True,
                   capture_output=True, timeout=60)
    return out / "cert.pem", out / "key.pem"


@pytest.fixture(scope="module")
def imported(tmp_path_factory, dev_cert):
    """imported(name) -> path of the sluice.toml made from fixture `name`, with
    --tls-dir pointing at a directory where every certificate it names exists."""
    made = {}

    def make(name):
        if name in made:
            return made[name]
        tmp = tmp_path_factory.mktemp(f"import-{name}")
        tls = tmp / "tls"
        code, out, err = run_sluice("import-ingress", "--tls-dir", str(tls), fixture_arg(name))
        assert code == 0, err
        for path in re.findall(r'^(?:cert|key) = "([^"]+)"$', out, re.M):
            path = pathlib.Path(path)
            assert path.is_relative_to(tls), path
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(dev_cert[0] if path.name == "tls.crt" else dev_cert[1], path)
        config = tmp / "sluice.toml"
        config.write_text(out)
        made[name] = config
        return config
    return make


# ---------------------------------------------------------------- golden output

@pytest.mark.parametrize("name", NAMES)
def test_import_golden(name):
    code, out, err = run_sluice("import-ingress", fixture_arg(name))
    assert code == 0, err
    golden_compare(f"{name}.toml", out)
    golden_compare(f"{name}.stderr", err)


@pytest.mark.parametrize("name", NAMES)
def test_import_warnings_name_file_object_and_field(name):
    code, out, err = run_sluice("import-ingress", fixture_arg(name))
    assert code == 0
    for line in err.splitlines():
        m = WARNING_LINE.match(line)
        assert m, line
        assert m["file"] == fixture_arg(name)
        assert m["field"].startswith(("spec.", "metadata.", "kind", "apiVersion")), line
    count = len(err.splitlines())
    if count:
        assert f"# {count} input{'s were' if count > 1 else ' was'} not translated exactly" in out
    else:
        assert "# Every input was translated" in out


@pytest.mark.parametrize("name", NAMES)
def test_import_output_passes_check(name, imported):
    config = imported(name)
    code, out, err = run_sluice("check", "--config", str(config))
    assert code == 0, f"{err}\n{config.read_text()}"
    assert ": error:" not in err
    assert out.startswith(f"{config}: ok (")


def test_import_is_deterministic():
    first = run_sluice("import-ingress", fixture_arg("shop"))
    second = run_sluice("import-ingress", fixture_arg("shop"))
    assert first == second


# ---------------------------------------------------------------- routing

# (fixture, host, target, expected explain fields); route None = no route (exit 3).
ROUTES = [
    # rewrite-target "/$2" on /api(/|$)(.*): prefix /api with strip_prefix.
    ("shop", "shop.example.com", "/api/users?page=2",
     {"route": "shop-storefront-api-1", "upstream": "shop-api-8080", "upstream_target": "/users?page=2"}),
    ("shop", "shop.example.com", "/api",
     {"route": "shop-storefront-api-1", "upstream_target": "/"}),
    ("shop", "shop.example.com", "/apix",  # ^/api(/|$) does not match /apix in nginx either
     {"route": "shop-storefront-1", "upstream": "shop-storefront-80", "upstream_target": "/apix"}),
    ("shop", "shop.example.com", "/socket.io/?EIO=4&transport=polling",
     {"route": "shop-storefront-2", "upstream": "shop-realtime-3000", "kind": "socketio", "websocket": True}),
    ("shop", "shop.example.com", "/",  # TLS host: plain HTTP is redirected (on "/" only, see stderr)
     {"route": "https-redirect-shop.example.com", "upstream": None}),
    ("shop", "www.shop.example.com", "/products/42",
     {"route": "shop-storefront-3", "upstream": "shop-storefront-80"}),
    ("shop", "chat.example.com", "/ws",  # websocket-services
     {"route": "chat-chat-1", "kind": "websocket", "websocket": True,
      "timeouts": {"connect": "5s", "read": "1h", "tunnel_idle": "1h"}}),
    ("shop", "chat.example.com", "/",  # ssl-redirect: "false"
     {"route": "chat-chat-2", "upstream": "chat-chat-web-80", "kind": "http"}),
    ("shop", "grafana.example.com", "/d/abc",  # force-ssl-redirect; the named-port path is skipped
     {"route": "https-redirect-grafana.example.com", "upstream": None}),
    ("shop", "grafana.example.com", "/api/health",
     {"route": "ops-grafana-2", "upstream": "ops-grafana-3000"}),
    ("shop", "acme.tenants.example.com", "/login",
     {"route": "tenants-portal-1", "upstream": "tenants-portal-8080"}),
    ("shop", "unknown.example.com", "/anything",  # spec.defaultBackend
     {"route": "default-fallback-default", "upstream": "default-default-http-backend-80"}),
    ("shop", "tools.example.com", "/static/app.js",  # the resource backend is skipped
     {"route": "ops-legacy-tools-1"}),
    ("rewrites", "api.example.com", "/users/42",
     {"route": "api-v1-strip-1", "upstream": "api-users-8080", "upstream_target": "/42"}),
    ("rewrites", "api.example.com", "/orders?status=open",
     {"route": "api-v1-strip-2", "upstream_target": "/?status=open"}),
    ("rewrites", "api.example.com", "/legacy/orders/7?x=1",  # rewrite-target "/v2/$2"
     {"route": "api-v2-prefix-1", "upstream": "api-legacy-8080", "upstream_target": "/v2/orders/7?x=1"}),
    ("rewrites", "api.example.com", "/assets/app.js",
     {"route": "api-regex-1", "upstream": "api-cdn-80", "upstream_target": "/assets/app.js"}),
    ("rewrites", "api.example.com", "/reports", {"route": "api-regex-4"}),
    ("rewrites", "api.example.com", "/reports/2024", {"route": None}),  # "/reports$"
    ("rewrites", "api.example.com", "/user/7/profile", {"route": None}),  # untranslatable regex
    ("rewrites", "api.example.com", "/metrics/cpu",  # constant rewrite-target: path kept
     {"route": "api-constant-rewrite-1", "upstream_target": "/metrics/cpu"}),
    ("rewrites", "old.example.com", "/anything", {"route": "api-redirect-away-1", "upstream": None}),
    ("rewrites", "static.example.com", "/static/site.css", {"route": "api-plain-2"}),
    ("single", "app.example.com", "/healthz", {"route": "web-app-2", "upstream": "web-app-80"}),
    ("single", "app.example.com", "/events/stream", {"route": "web-app-3", "upstream": "web-events-8080"}),
    ("single", "app.example.com", "/", {"route": "web-app-1"}),
    ("single", "other.example.com", "/", {"route": None}),
]


@pytest.mark.parametrize("name,host,target,expected", ROUTES,
                         ids=[f"{r[0]}-{r[1]}{r[2]}" for r in ROUTES])
def test_import_routes_like_ingress_nginx(name, host, target, expected, imported):
    code, out, err = run_sluice("explain", "--config", str(imported(name)), "--host", host, target)
    assert code == (3 if expected["route"] is None else 0), err
    got = json.loads(out)
    assert {k: got.get(k) for k in expected} == expected, out


# ---------------------------------------------------------------- input and usage errors

def test_import_from_stdin():
    text = (FIXTURES / "single.json").read_text()
    proc = subprocess.run([SLUICE, "import-ingress", "-"], input=text, capture_output=True,
                          text=True, timeout=30, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("# Generated by `sluice import-ingress` from <stdin> (1 Ingress object).\n")
    assert 'name = "web-app-1"' in proc.stdout


def test_import_invalid_json_exits_1(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"kind": "List", "items": [\n  {"kind": "Ingress",}\n]}\n')
    code, out, err = run_sluice("import-ingress", str(path))
    assert code == 1
    assert out == ""
    assert err.startswith(f"{path}: error: invalid JSON: parse error at line 2, column ")


def test_import_without_ingress_exits_1(tmp_path):
    path = tmp_path / "empty.json"
    path.write_text('{"apiVersion": "v1", "items": [], "kind": "List", "metadata": {"resourceVersion": ""}}\n')
    code, out, err = run_sluice("import-ingress", str(path))
    assert code == 1
    assert out == ""
    assert err == f"{path}: error: no Ingress objects in the input\n"

    other = tmp_path / "service.json"
    other.write_text('{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}}\n')
    code, out, err = run_sluice("import-ingress", str(other))
    assert code == 1
    assert "not a List or an Ingress" in err


def test_import_missing_file_exits_1():
    code, out, err = run_sluice("import-ingress", "/nonexistent/ingress.json")
    assert code == 1
    assert err == "/nonexistent/ingress.json: error: cannot read: No such file or directory\n"


def test_import_usage_errors_exit_2():
    assert run_sluice("import-ingress")[0] == 2
    assert run_sluice("import-ingress", "a.json", "b.json")[0] == 2
    assert run_sluice("import-ingress", "--config", "c.toml", "a.json")[0] == 2


def test_import_tls_dir_replaces_etc_sluice_tls():
    code, out, _ = run_sluice("import-ingress", "--tls-dir", "/run/secrets/tls", fixture_arg("shop"))
    assert code == 0
    assert 'cert = "/run/secrets/tls/shop/shop-tls/tls.crt"' in out
    assert "/etc/sluice/tls" not in out
    code, out, _ = run_sluice("import-ingress", fixture_arg("shop"))
    assert 'cert = "/etc/sluice/tls/shop/shop-tls/tls.crt"' in out
