"""Shared fixtures: the sluice binary under test and helpers to run it.

Every process a test starts is started through `run_sluice` or the `procs`
fixture, gets a timeout, and is killed with its process group when the test
ends, so a failing test never leaves anything behind.

  sluice_proc(body, server=..., listeners=N)  a running sluice (port, ports, url,
                                              stderr, access_log, wait_log, rss_kib)
  backend()                                   a backends.py server in its own process
                                              (port, addr, stats, release, wait_stats)
  start_sluice / start_backend / start_node   the older names (start_backend -> port)
"""

import json
import os
import pathlib
import re
import signal
import socket
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
        self.stopped = False   # set once a test or the teardown stopped it
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
        self.stopped = True
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
    """A running sluice. `ports` are the bound ports of its HTTP listeners, in
    the order printed; `access_log` is the path of its access log file."""

    def __init__(self, config_path, access_log, listeners=1, timeout=15):
        super().__init__([SLUICE, "--config", str(config_path)], "sluice")
        self.config_path = pathlib.Path(config_path)
        self.access_log = access_log
        try:
            self.ports = self._listening(listeners, timeout)
        except BaseException:
            self.stop()
            raise
        self.port = self.ports[0]
        self.url = f"http://127.0.0.1:{self.port}"

    def _listening(self, count, timeout):
        """Waits (with a deadline) for `count` "listening on ... (http|https)"
        lines on stderr; sluice prints them before it serves."""
        pattern = re.compile(r"sluice: listening on \S+:(\d+) \((?:http|https)\)")
        deadline = time.monotonic() + timeout
        while True:
            ports = [int(m.group(1)) for m in map(pattern.search, list(self.err)) if m]
            if len(ports) >= count:
                return ports
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"sluice did not print {count} listening line(s): exit={self.proc.returncode}\n"
                                     f"config:\n{self.config_path.read_text()}\nstderr:\n" + "\n".join(self.err))
            time.sleep(0.01)

    @property
    def stderr(self):
        return "\n".join(self.err)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def read_log(self):
        """The access log's complete JSON lines so far (a line still being
        written is left for the next call)."""
        try:
            text = pathlib.Path(self.access_log).read_text()
        except FileNotFoundError:
            return []
        return [json.loads(l) for l in text.split("\n")[:-1] if l]

    def log_lines(self, wait_for=1, timeout=5):
        """The access log's JSON objects, waiting until at least `wait_for` exist."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.read_log()
            if len(lines) >= wait_for or time.monotonic() > deadline:
                return lines
            time.sleep(0.05)

    def wait_log(self, predicate, timeout=10, what="an access log line"):
        """The first access log line for which predicate(line) is true, waiting
        for it with a deadline (the log is written in batches)."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.read_log():
                if predicate(line):
                    return line
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} in the access log within {timeout}s:\n"
                                     + "\n".join(map(json.dumps, self.read_log()[-20:])))
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
    """Tracks every process a test starts and stops them all at teardown
    (SIGTERM, then SIGKILL of the process group after a timeout); prints
    their output, and sluice's access log, when the test failed. A sluice that
    exited by itself during the test (a crash) fails the test at teardown."""
    started = []
    yield started
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    died = [p for p in started if isinstance(p, Sluice) and not p.stopped and p.proc.poll() is not None]
    for p in reversed(started):
        p.stop()
    if failed or died:
        for p in started:
            print(f"--- {p.name} (pid {p.proc.pid}, exit {p.proc.returncode}) stdout\n" + "\n".join(p.out[-50:]))
            print(f"--- {p.name} stderr\n" + "\n".join(p.err[-50:]))
            if isinstance(p, Sluice):
                try:
                    lines = pathlib.Path(p.access_log).read_text().splitlines()
                except FileNotFoundError:
                    lines = ["(no access log)"]
                print(f"--- sluice access log {p.access_log} (last 50 lines)\n" + "\n".join(lines[-50:]))
    if died:
        pytest.fail("sluice exited during the test: " +
                    ", ".join(f"pid {p.proc.pid} exit {p.proc.returncode}" for p in died), pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


class Backend(Proc):
    """A backends.py server on 127.0.0.1 (its own process). Control requests
    (stats, release) go to it directly and are not counted as traffic."""

    def __init__(self):
        super().__init__(["/usr/bin/python3", str(BACKENDS), "0"], "backend")
        try:
            self.port = int(self.wait_for(r"listening (\d+)").group(1))
        except BaseException:
            self.stop()
            raise
        self.addr = f"127.0.0.1:{self.port}"

    def control(self, target, timeout=10):
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as c:
            c.settimeout(timeout)
            c.sendall(f"GET {target} HTTP/1.1\r\nHost: backend\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while True:
                chunk = c.recv(65536)
                if not chunk:
                    break
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), data[:200]
        return body

    def stats(self):
        """{"connections", "open", "max_open", "requests", "completed", "targets", "progress"}:
        TCP connections accepted (control connections excluded), those still
        open, request heads received, responses finished."""
        return json.loads(self.control("/_ctl/stats"))

    def release(self, key):
        self.control(f"/_ctl/release?id={key}")

    def wait_stats(self, predicate, timeout=10, what="backend state"):
        """Polls stats() until predicate(stats) holds; returns those stats."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.stats()
            if predicate(st):
                return st
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} not reached within {timeout}s: "
                                     + json.dumps({k: v for k, v in st.items() if k != "targets"}))
            time.sleep(0.05)


@pytest.fixture
def backend(procs):
    """backend() -> a new Backend (see backends.py for what it answers)."""
    def start():
        b = Backend()
        procs.append(b)
        return b
    return start


@pytest.fixture
def start_backend(backend):
    """start_backend() -> port of a new backends.py server."""
    return lambda: backend().port


@pytest.fixture
def start_node(procs):
    """start_node(mode, *args) -> port of a Node peer (ws-echo, sio-server)."""
    def start(mode, *args):
        p = Proc(["node", str(NODE_PEERS), mode, "0", *map(str, args)], f"node {mode}")
        procs.append(p)  # tracked before waiting, so a peer that never starts is still stopped
        return int(p.wait_for(r"listening (\d+)").group(1))
    return start


@pytest.fixture
def sluice_proc(procs, tmp_path):
    """sluice_proc(body, server="", listeners=1) -> a running Sluice.

    `body` is TOML without [server]/[[listener]]/[admin]; those are added for
    test isolation: workers = 2, the access log in the test's temp dir,
    `listeners` HTTP listeners and the admin listener on 127.0.0.1:0. `server`
    adds lines to [server]. sluice_proc(config=TEXT) runs TEXT as it is
    (it must then name its own listeners). Waits for the listening lines;
    stops sluice at teardown and shows its stderr and access log if the test
    failed."""
    count = [0]

    def start(body="", server="", listeners=1, config=None):
        count[0] += 1
        log = tmp_path / f"access-{count[0]}.log"
        if config is None:
            text = f'[server]\nworkers = 2\naccess_log = "{log}"\n{server}\n'
            text += '[[listener]]\naddress = "127.0.0.1:0"\n' * listeners
            text += '[admin]\naddress = "127.0.0.1:0"\n' + body
        else:
            text = config
            m = re.search(r'access_log\s*=\s*"([^"]*)"', config)
            log = pathlib.Path(m.group(1)) if m else log
            listeners = max(1, config.count("[[listener]]"))
        path = tmp_path / f"sluice-{count[0]}.toml"
        path.write_text(text)
        s = Sluice(path, log, listeners=listeners)
        procs.append(s)
        return s
    return start


@pytest.fixture
def start_sluice(sluice_proc):
    """The older name of sluice_proc."""
    return sluice_proc
