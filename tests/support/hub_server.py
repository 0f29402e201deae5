"""A git project, the tiny build exported from it, and olah serving git repositories as a Hub:
the fixtures and helpers of the publish and pull tests (``built`` needs conftest's fixtures)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from lwise_build.stages.export.stage import Export

from .hub_tiny import CORPUS, REPO, make_tiny_build, tiny_params

GIT_ID = ["-c", "user.name=t", "-c", "user.email=t@example.org"]


def _git(cwd: Path, *args: str) -> str:
    """``git args`` in ``cwd`` with a test identity; its stdout."""
    return subprocess.run(["git", *GIT_ID, *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean git project as the working directory (data lives outside it, in LWISE_DATA)."""
    proj = tmp_path / "proj"
    proj.mkdir()
    _git(proj, "init", "-q", "-b", "main")
    (proj / "README.md").write_text("project\n")
    _git(proj, "add", "README.md")
    _git(proj, "commit", "-q", "-m", "init")
    monkeypatch.chdir(proj)
    return proj


@pytest.fixture
def built(tiny_images, data_root: Path, project: Path) -> Path:
    """The tiny build exported (the folder ``publish`` sends)."""
    make_tiny_build(data_root)
    return Export(tiny_params(), CORPUS).run()


# ---------------------------------------------------------------- olah end to end -------------
def _free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def olah_server(mirrors: Path, work: Path) -> Iterator[str]:
    """olah serving the git repositories under ``mirrors/<type>/<org>/<name>`` (offline, no upstream)."""
    port = _free_port()
    work.mkdir(parents=True, exist_ok=True)
    (work / "olah.toml").write_text(
        f'[basic]\nhost = "127.0.0.1"\nport = {port}\nrepos-path = "{work / "cache"}"\n'
        f'mirrors-path = ["{mirrors}"]\n[accessibility]\noffline = true\n')
    with open(work / "olah.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-c", "from olah.server import cli; cli()", "-c", "olah.toml"],
                                cwd=work, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield _wait_ready(proc, f"http://127.0.0.1:{port}", work / "olah.log")
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_ready(proc: subprocess.Popen, url: str, log: Path) -> str:
    """Poll the refs endpoint until olah answers (its log in the failure message otherwise)."""
    deadline = time.time() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/datasets/{REPO}/refs", timeout=2) as r:
                if r.status == 200:
                    return url
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(log.read_text()[-2000:]) from None
            time.sleep(0.3)


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """``python -m lwise_build args`` with ``env``, output captured."""
    return subprocess.run([sys.executable, "-m", "lwise_build", *args], env=env, capture_output=True, text=True)
