"""``pull`` verifies the whole version against a git remote served as a Hub by olah (issue 23,
item 8): extra shards, data and provenance changed together, a wrong ``--sha256``, a moved tag,
``--revision`` pins, and a server whose copy differs from its own provenance."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest
from support.hub_server import _cli, _git, olah_server
from support.hub_tiny import CORPUS, REPO, tiny_params

from lwise_build.hub import publish as hub
from lwise_build.io.digests import json_digest

SHARD = "data/curriculum-lwise/train-00000-of-00001.parquet"


class Remote:
    """The bare repository olah serves, and a clone to commit tampered versions from."""

    def __init__(self, bare: Path, work: Path):
        self.bare, self.work = bare, work
        _git(bare.parent, "clone", "-q", str(bare), str(work))

    def sha(self, ref: str) -> str:
        return _git(self.bare, "rev-parse", f"{ref}^{{commit}}").strip()

    def tamper(self, tag: str, edit, move: bool = False) -> str:
        """Commit ``edit(work)`` on top of v0.1.0 and tag it (``move``: force the tag)."""
        _git(self.work, "checkout", "-q", "--detach", "v0.1.0")
        edit(self.work)
        _git(self.work, "add", "-A")
        _git(self.work, "commit", "-q", "-m", f"tampered {tag}")
        _git(self.work, "tag", *(["-f"] if move else []), tag)
        _git(self.work, "push", "-q", *(["--force"] if move else []), "origin", f"refs/tags/{tag}")
        return self.sha(tag)


def prov_of(work: Path) -> dict:
    return json.loads((work / "provenance.json").read_text())


def write_prov(work: Path, prov: dict, *, restate: bool) -> None:
    """Rewrite provenance.json with the files' real hashes (``restate``: the content hash too)."""
    for rel in prov["files"]:
        data = (work / rel).read_bytes()
        prov["files"][rel] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    if restate:
        prov["content_sha256"] = json_digest({k: v["sha256"] for k, v in prov["files"].items()})
    (work / "provenance.json").write_text(json.dumps(prov, indent=2, sort_keys=True) + "\n")


def extra_shard(work: Path) -> None:
    (work / "data/curriculum-lwise/train-00001-of-00001.parquet").write_bytes((work / SHARD).read_bytes())


def changed_shard(work: Path) -> None:
    (work / SHARD).write_bytes((work / SHARD).read_bytes() + b"\0")


@pytest.mark.slow
def test_pull_verifies_the_whole_version(built: Path, tmp_path: Path) -> None:  # noqa: F811 - the fixture
    bare = tmp_path / "mirrors" / "datasets" / "org" / "toy"
    bare.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    hub.publish(tiny_params(), CORPUS, to=str(bare))
    remote = Remote(bare, tmp_path / "work")
    content = prov_of(remote.work)["content_sha256"]
    v1 = remote.sha("v0.1.0")
    forged = {
        "v0.2.0": extra_shard,                                                       # an unlisted shard
        "v0.3.0": lambda w: (changed_shard(w), write_prov(w, prov_of(w), restate=False)),  # data + file hashes
        "v0.4.0": lambda w: (changed_shard(w), write_prov(w, prov_of(w), restate=True)),   # all consistent
        "v0.5.0": changed_shard,                                                     # server's copy differs
    }
    shas = {tag: remote.tamper(tag, edit) for tag, edit in forged.items()}
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_HOME=str(tmp_path / "hf-home"), HF_HUB_DISABLE_TELEMETRY="1")

    def pull(*args: str) -> subprocess.CompletedProcess:
        return _cli(env, "pull", REPO, "--config", "curriculum-lwise", *args)

    with olah_server(tmp_path / "mirrors", tmp_path / "olah") as url:
        env["HF_ENDPOINT"] = url
        ok = pull("--version", "0.1.0", "--sha256", content)
        assert ok.returncode == 0, ok.stderr
        assert f"content sha256 {content} (recomputed:" in ok.stdout and f"matches --sha256 {content}" in ok.stdout
        wrong = pull("--version", "0.1.0", "--sha256", "0" * 64)
        assert wrong.returncode == 2 and f"content sha256 is {content}, not the '{'0' * 64}'" in wrong.stderr
        pinned = pull("--revision", v1)
        assert pinned.returncode == 0 and f"= revision {v1}" in pinned.stdout, pinned.stderr
        assert "--revision" in pull("--version", "0.1.0", "--revision", shas["v0.2.0"]).stderr
        blob = next((tmp_path / "hf-home" / "hub").glob(f"datasets--org--toy/snapshots/{v1}/{SHARD}")).resolve()
        blob.write_bytes(b"damaged locally")  # our cache, not the server: fetched again and fine
        repaired = pull("--version", "0.1.0")
        assert repaired.returncode == 0 and blob.read_bytes() != b"damaged locally", repaired.stderr

        extra = pull("--version", "0.2.0")
        assert extra.returncode == 2 and "train-00001-of-00001.parquet is not listed in its provenance.json" \
            in extra.stderr and "the server's copy differs from its own provenance" in extra.stderr
        inconsistent = pull("--version", "0.3.0")
        assert inconsistent.returncode == 2 and "provenance.json states content sha256" in inconsistent.stderr
        consistent = pull("--version", "0.4.0")  # only the citation's hash can tell
        assert consistent.returncode == 0, consistent.stderr
        cited = pull("--version", "0.4.0", "--sha256", content)
        assert cited.returncode == 2 and "not the version your citation names" in cited.stderr
        differs = pull("--version", "0.5.0")
        assert differs.returncode == 2 and f"{SHARD} as served does not match the sha256" in differs.stderr
        assert "the server's copy differs from its own provenance" in differs.stderr

        remote.tamper("v0.1.0", extra_shard, move=True)  # the publisher moves a tag after our pull
        moved = pull("--version", "0.1.0")
        assert f"{REPO} v0.1.0 moved: it now points at " in moved.stderr and f"earlier pull got {v1}" in moved.stderr
        assert moved.returncode == 2 and "is not listed in its provenance.json" in moved.stderr
    for res in (wrong, extra, inconsistent, cited, differs, moved):  # one error line each, no traceback
        assert "Traceback" not in res.stderr and sum(ln.startswith("error:") for ln in res.stderr.splitlines()) == 1
