"""Built data travels through DVC remotes: a local directory and S3 (moto's server on 127.0.0.1)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from lwise_build.hub.publish import dvc_stale

GEN = """
import sys
from pathlib import Path
import pyarrow as pa, pyarrow.parquet as pq
out = Path("data/toy/images"); out.mkdir(parents=True, exist_ok=True)
for i in range(2):
    table = pa.table({"id": [f"{i}{j:015x}" for j in range(50)], "image": [bytes([j]) * 300 for j in range(50)]})
    pq.write_table(table, out / f"data-{i:05d}-of-00002.parquet")
"""
OUT = "data/toy/images"
DVC_YAML = """stages:
  ingest:
    cmd: python gen.py
    deps: [gen.py]
    outs: [data/toy/images]
"""


def _run(cwd: Path, *cmd: str, env: dict | None = None) -> str:
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    assert res.returncode == 0, f"{' '.join(cmd)}\n{res.stdout}\n{res.stderr}"
    return res.stdout


def _dvc(cwd: Path, *args: str, env: dict | None = None) -> str:
    return _run(cwd, sys.executable, "-m", "dvc", *args, env=env)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def built_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git + DVC project whose one stage built data/toy/images (two Parquet shards); built once."""
    proj = tmp_path_factory.mktemp("dvc") / "proj"
    proj.mkdir()
    _run(proj, "git", "init", "-q")
    _dvc(proj, "init", "-q")
    _dvc(proj, "config", "core.analytics", "false")
    (proj / "gen.py").write_text(GEN)
    (proj / "dvc.yaml").write_text(DVC_YAML)
    _dvc(proj, "repro", "-q")
    return proj


@pytest.fixture
def dvc_project(built_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the built project as the working directory."""
    proj = tmp_path / "proj"
    shutil.copytree(built_project, proj, symlinks=True)
    monkeypatch.chdir(proj)
    return proj


def _forget_and_pull(proj: Path, remote: str, env: dict | None = None) -> None:
    """Delete the outputs and the local cache, then restore both from ``remote``."""
    shutil.rmtree(proj / OUT)
    shutil.rmtree(proj / ".dvc" / "cache")
    _dvc(proj, "pull", "-q", "-r", remote, env=env)


@pytest.mark.slow
def test_push_and_pull_through_a_local_directory_remote(dvc_project: Path, tmp_path: Path) -> None:
    built = _snapshot(dvc_project / OUT)
    store = tmp_path / "dvc-store"
    _dvc(dvc_project, "remote", "add", "-d", "local", str(store))
    _dvc(dvc_project, "push", "-q", "-r", "local")
    assert any(p.is_file() for p in store.rglob("*"))
    _forget_and_pull(dvc_project, "local")
    assert _snapshot(dvc_project / OUT) == built
    assert dvc_stale("toy") == []  # no export stage here: the whole project's status, and it is clean
    (dvc_project / "gen.py").write_text(GEN.replace("300", "301"))
    assert dvc_stale("toy") == ["ingest"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_push_and_pull_through_an_s3_remote_served_by_moto(dvc_project: Path) -> None:
    import boto3
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "us-east-1"}
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, **creds}
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        s3.create_bucket(Bucket="lwise-data")
        built = _snapshot(dvc_project / OUT)
        _dvc(dvc_project, "remote", "add", "s3", "s3://lwise-data/dvc", env=env)
        _dvc(dvc_project, "remote", "modify", "s3", "endpointurl", endpoint, env=env)
        _dvc(dvc_project, "push", "-q", "-r", "s3", env=env)
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="lwise-data").get("Contents", [])]
        assert keys and all(k.startswith("dvc/") for k in keys)
        _forget_and_pull(dvc_project, "s3", env=env)
        assert _snapshot(dvc_project / OUT) == built
    finally:
        server.stop()
