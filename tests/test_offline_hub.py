"""No network for an ``hf://`` checkpoint: one line at once, or the cached copy (issue 23, item 7)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

FETCH = """
from lwise_build.errors import UserError
from lwise_build.models.checkpoints import hf_download
try:
    print(hf_download("hf://org/repo/model.safetensors"))
except UserError as exc:
    print(f"error: {exc}")
"""


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed when the block ends: nothing listens there


def fetch(tmp_path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_") and "proxy" not in k.lower()}
    env.update(HF_HOME=str(tmp_path / "hf"), HF_ENDPOINT=f"http://127.0.0.1:{closed_port()}")
    return subprocess.run([sys.executable, "-c", FETCH], env=env, capture_output=True, text=True, timeout=120)


def test_an_unreachable_hub_is_one_line_at_once_without_retries(tmp_path: Path) -> None:
    res = fetch(tmp_path)
    assert res.stdout.startswith("error: checkpoint hf://org/repo/model.safetensors: cannot reach http://127.0.0.1:")
    assert "(Connection refused) and it is not in the local Hub cache" in res.stdout
    assert res.stdout.count("\n") == 1 and "Retry" not in res.stderr and res.stderr == ""


def test_an_unreachable_hub_still_serves_the_cached_copy(tmp_path: Path) -> None:
    repo = tmp_path / "hf" / "hub" / "models--org--repo"
    commit = "a" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "snapshots" / commit / "model.safetensors").write_bytes(b"weights")
    res = fetch(tmp_path)
    assert res.stdout.strip() == str(repo / "snapshots" / commit / "model.safetensors"), res.stdout + res.stderr
