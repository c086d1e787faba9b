"""The command line as SPEC.md defines it: check, explain, version, exit codes.

Golden files under golden/ hold the exact output of `check` and `explain` on
the shipped configs. After a deliberate change, regenerate them with
SLUICE_UPDATE_GOLDEN=1 and review the diff like code."""

import json
import os
import pathlib
import shutil
import socket
import subprocess

import pytest

from conftest import REPO, run_sluice

GOLDEN = pathlib.Path(__file__).parent / "golden"
UPDATE = os.environ.get("SLUICE_UPDATE_GOLDEN") == "1"
CONFIGS = ["conf/sluice.toml"] + sorted(
    str(p.relative_to(REPO)) for p in (REPO / "conf" / "examples").glob("*.toml"))


def golden_compare(name, actual):
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
    assert path.exists(), f"missing golden file {path}; run with SLUICE_UPDATE_GOLDEN=1"
    assert actual == path.read_text()


def with_dev_certs(config, tmp_path):
    """Examples that name conf/tls/ need tools/dev-cert's files, which are never
    committed: check such a config in a copy of conf/ with fresh certificates,
    under the same relative path so that the output stays the same."""
    if "../tls/" not in (REPO / config).read_text():
        return REPO
    copy = tmp_path / config
    copy.parent.mkdir(parents=True)
    shutil.copy(REPO / config, copy)
    subprocess.run([str(REPO / "tools" / "dev-cert"), "-o", str(tmp_path / "conf" / "tls")],
                   check=True, capture_output=True, timeout=60)
    return tmp_path


@pytest.mark.parametrize("config", CONFIGS)
def test_check_golden(config, tmp_path):
    code, out, err = run_sluice("check", "--config", config, cwd=with_dev_certs(config, tmp_path))
    assert code == 0, err
    golden_compare("check/" + pathlib.Path(config).stem + ".txt",
                   f"exit {code}\n--- stdout\n{out}--- stderr\n{err}")


def explain_cases():
    return json.loads((GOLDEN / "explain_cases.json").read_text())


@pytest.mark.parametrize("case", explain_cases(), ids=lambda c: c["id"])
def test_explain_golden(case):
    code, out, err = run_sluice("explain", *case["args"])
    assert code == case["exit"], err
    assert json.loads(out) == case["json"], out
    # One JSON object on one line, nothing else on stdout.
    assert out.count("\n") == 1


def test_check_reports_every_error_with_position(write_config):
    path = write_config(
        '[server]\n'
        'drain_timout = "30s"\n'
        'header_timeout = "10"\n'
        '[upstream.api]\n'
        'servers = ["127.0.0.1"]\n'
        '[[route]]\n'
        'name = "a"\n'
        'prefix = "/api"\n'
        'upstream = "missing"\n')
    code, out, err = run_sluice("check", "--config", str(path))
    assert code == 1
    lines = err.splitlines()
    assert f"{path}:2:1: error: [server]: unknown key 'drain_timout' (did you mean 'drain_timeout'?)" in lines
    assert any(line.startswith(f"{path}:3:18: error: ") and "not a duration" in line for line in lines)
    assert any(line.startswith(f"{path}:5:12: error: ") and "missing port" in line for line in lines)
    assert any(line.startswith(f"{path}:9:12: error: ") and "unknown upstream 'missing'" in line for line in lines)


def test_check_warnings_do_not_fail(write_config):
    path = write_config(
        '[upstream.io]\n'
        'servers = ["127.0.0.1:3000"]\n'
        '[[route]]\n'
        'name = "sio"\n'
        'prefix = "/socket.io"\n'
        'upstream = "io"\n'
        'kind = "socketio"\n'
        'read_timeout = "30s"\n')
    code, out, err = run_sluice("check", "--config", str(path))
    assert code == 0
    assert f"{path}:8:16: warning: " in err
    assert "shorter than the Engine.IO heartbeat" in err


def test_check_toml_syntax_error_has_position(write_config):
    path = write_config('[server]\nworkers = \n')
    code, _, err = run_sluice("check", "--config", str(path))
    assert code == 1
    assert err.startswith(f"{path}:2:")
    assert ": error: " in err


def test_check_missing_file():
    code, _, err = run_sluice("check", "--config", "/nonexistent/sluice.toml")
    assert code == 1
    assert "/nonexistent/sluice.toml: error: cannot read config file" in err


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_check_probe_reports_refused_port_at_its_position(write_config):
    # The ConfigMap-said-9003 case: one server listens, the other does not.
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        good = listening.getsockname()[1]
        bad = free_port()
        path = write_config(
            '[upstream.api]\n'
            f'servers = ["127.0.0.1:{good}", "127.0.0.1:{bad}"]\n'
            '[[route]]\n'
            'name = "api"\n'
            'prefix = "/"\n'
            'upstream = "api"\n')
        code, out, err = run_sluice("check", "--probe", "--config", str(path))
    assert code == 1
    col = 12 + len(f'"127.0.0.1:{good}", ')
    assert f"{path}:2:{col}: error: upstream 'api': server \"127.0.0.1:{bad}\"" in err
    assert "connection refused" in err
    assert f"127.0.0.1:{good} accepts connections" in out


def test_check_probe_all_up_exits_zero(write_config):
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        path = write_config(
            f'[upstream.api]\nservers = ["127.0.0.1:{port}"]\n'
            '[[route]]\nname = "api"\nprefix = "/"\nupstream = "api"\n')
        code, _, err = run_sluice("check", "--probe", "--config", str(path))
    assert code == 0, err


def test_check_probe_unresolvable_dns_name(write_config):
    path = write_config(
        '[upstream.api]\nservers = ["dns:no-such-host.invalid:8000"]\n'
        '[[route]]\nname = "api"\nprefix = "/"\nupstream = "api"\n')
    code, _, err = run_sluice("check", "--probe", "--config", str(path))
    assert code == 1
    assert f"{path}:2:12: error: upstream 'api': server \"dns:no-such-host.invalid:8000\"" in err
    assert "does not resolve" in err


def test_explain_no_route_exits_3(write_config):
    path = write_config(
        '[upstream.api]\nservers = ["127.0.0.1:9000"]\n'
        '[[route]]\nname = "api"\nprefix = "/api"\nupstream = "api"\n')
    code, out, _ = run_sluice("explain", "--config", str(path), "/other")
    assert code == 3
    assert json.loads(out)["route"] is None


def test_explain_invalid_config_exits_1(write_config):
    path = write_config('[[route]]\nname = "x"\nprefix = "/"\n')
    code, out, err = run_sluice("explain", "--config", str(path), "/")
    assert code == 1
    assert out == ""
    assert "needs 'upstream', 'respond' or 'redirect'" in err


def test_usage_errors_exit_2():
    assert run_sluice("explain")[0] == 2
    assert run_sluice("check", "--bogus")[0] == 2
    assert run_sluice("--config")[0] == 2


def test_version():
    code, out, _ = run_sluice("version")
    assert code == 0
    assert out.startswith("sluice ")
