"""Shared fixtures: the sluice binary under test and helpers to run it.

Every process a test starts is started through `run_sluice` or the `procs`
fixture, gets a timeout, and is killed with its process group when the test
ends, so a failing test never leaves anything behind."""

import json
import os
import pathlib
import re
import signal
import subprocess
import threading
import time

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
SLUICE = os.environ.get("SLUICE_BIN", str(REPO / "build-ci" / "sluice"))


def run_sluice(*args, timeout=30, cwd=REPO):
    """Runs `sluice ARGS...` to completion; returns (exit code, stdout, stderr)."""
    proc = subprocess.run([SLUICE, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, start_new_session=True)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def sluice():
    return run_sluice


@pytest.fixture
def write_config(tmp_path):
    """Writes a TOML config into the test's temp dir and returns its path."""
    def write(text, name="sluice.toml"):
        path = tmp_path / name
        path.write_text(text)
        return path
    return write


# ---- processes: sluice, Python backends, Node peers --------------------------

NODE_PEERS = REPO / "tests" / "integration" / "node" / "peers.js"
BACKENDS = REPO / "tests" / "integration" / "backends.py"


class Proc:
    """A child process in its own process group whose output is collected
    by a thread (so a chatty child never blocks on a full pipe)."""

    def __init__(self, argv, name, cwd=REPO):
        self.name = name
        self.proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     start_new_session=True)
        self.out, self.err = [], []
        self._threads = [threading.Thread(target=self._pump, args=(self.proc.stdout, self.out), daemon=True),
                         threading.Thread(target=self._pump, args=(self.proc.stderr, self.err), daemon=True)]
        for t in self._threads:
            t.start()

    @staticmethod
    def _pump(stream, lines):
        for line in iter(stream.readline, b""):
            lines.append(line.decode(errors="replace").rstrip("\n"))

    def wait_for(self, pattern, stream="out", timeout=15):
        """Waits until a line of stdout/stderr matches `pattern`; returns the match."""
        lines = self.out if stream == "out" else self.err
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(lines):
                m = re.search(pattern, line)
                if m:
                    return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"{self.name}: no line matching {pattern!r}; "
                             f"exit={self.proc.poll()} out={self.out[-20:]} err={self.err[-20:]}")

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Signals the process group and returns the exit code (killing on timeout)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        for t in self._threads:
            t.join(timeout=2)
        return self.proc.returncode


class Sluice(Proc):
    def __init__(self, config_path, access_log):
        super().__init__([SLUICE, "--config", str(config_path)], "sluice")
        self.access_log = access_log
        self.ports = [int(m) for m in self._listening()]
        self.port = self.ports[0]
        self.url = f"http://127.0.0.1:{self.port}"

    def _listening(self):
        self.wait_for(r"sluice: listening on", stream="err")
        time.sleep(0.05)  # every listener line is printed before serving
        return [re.search(r":(\d+) \(", l).group(1) for l in self.err if "listening on" in l]

    def log_lines(self, wait_for=1, timeout=5):
        """The access log's JSON objects, waiting until at least `wait_for` exist."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                lines = [json.loads(l) for l in pathlib.Path(self.access_log).read_text().splitlines() if l]
            except FileNotFoundError:
                lines = []
            if len(lines) >= wait_for or time.monotonic() > deadline:
                return lines
            time.sleep(0.05)

    def rss_kib(self):
        for line in pathlib.Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def fd_count(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))


@pytest.fixture
def procs(request):
    """Tracks every process a test starts and stops them all at teardown;
    prints their output when the test failed."""
    started = []
    yield started
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for p in reversed(started):
        p.stop()
        if failed:
            print(f"--- {p.name} stdout\n" + "\n".join(p.out[-50:]))
            print(f"--- {p.name} stderr\n" + "\n".join(p.err[-50:]))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def start_backend(procs):
    """start_backend() -> port of a new backends.py server."""
    def start():
        p = Proc(["/usr/bin/python3", str(BACKENDS), "0"], "backend")
        procs.append(p)
        return int(p.wait_for(r"listening (\d+)").group(1))
    return start


@pytest.fixture
def start_node(procs):
    """start_node(mode, *args) -> port of a Node peer (ws-echo, sio-server)."""
    def start(mode, *args):
        p = Proc(["node", str(NODE_PEERS), mode, "0", *map(str, args)], f"node {mode}")
        procs.append(p)
        return int(p.wait_for(r"listening (\d+)").group(1))
    return start


@pytest.fixture
def start_sluice(procs, tmp_path):
    """start_sluice(body) -> a running Sluice. `body` is TOML without
    [server]/[[listener]]/[admin], which are added for test isolation; pass
    server="key = value" lines to extend [server]."""
    count = [0]

    def start(body, server="", listeners=1):
        count[0] += 1
        log = tmp_path / f"access-{count[0]}.log"
        text = f'[server]\nworkers = 2\naccess_log = "{log}"\n{server}\n'
        text += '[[listener]]\naddress = "127.0.0.1:0"\n' * listeners
        text += '[admin]\naddress = "127.0.0.1:0"\n' + body
        path = tmp_path / f"sluice-{count[0]}.toml"
        path.write_text(text)
        s = Sluice(path, log)
        procs.append(s)
        return s
    return start
