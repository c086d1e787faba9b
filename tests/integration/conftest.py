"""Shared fixtures: the sluice binary under test and helpers to run it.

Every process a test starts is started through `run_sluice` or the `procs`
fixture, gets a timeout, and is killed with its process group when the test
ends, so a failing test never leaves anything behind."""

import os
import pathlib
import subprocess

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
