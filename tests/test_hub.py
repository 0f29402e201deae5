"""Publish, pull and cite: a git remote served as a Hub by olah, and the Hub API up to the network."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest
from support.hub_server import _cli, _git, olah_server
from support.hub_tiny import CORPUS, REPO, tiny_params

from lwise_build.errors import UserError
from lwise_build.hub import publish as hub
from lwise_build.hub.git_remote import publish_folder
from lwise_build.io.digests import file_digest, git_blob_sha

LOAD_SCRIPT = """
import hashlib, json
from datasets import Image, load_dataset
from huggingface_hub import hf_hub_download
ds = load_dataset("org/toy", "curriculum-lwise", revision="v0.1.0")["train"]
rows = ds.cast_column("image", Image(decode=False)).to_list()
for r in rows:
    r["image"] = hashlib.sha256(r["image"]["bytes"]).hexdigest()
pairs = load_dataset("org/toy", "pairs-0.5", revision="v0.1.0")["test"]
pairs = pairs.cast_column("original", Image(decode=False)).cast_column("enhanced", Image(decode=False))
pairs = {r["id"]: [hashlib.sha256(r[k]["bytes"]).hexdigest() for k in ("original", "enhanced")] for r in pairs}
docs = {f: hashlib.sha256(open(hf_hub_download("org/toy", f, repo_type="dataset", revision="v0.1.0"), "rb").read())
        .hexdigest() for f in ("croissant.json", "CITATION.cff")}
print(json.dumps({"names": ds.features["label"].names, "rows": rows, "pairs": pairs, "docs": docs}))
"""


@pytest.mark.slow
def test_publish_to_git_serve_with_olah_pull_load_and_pull_offline(built: Path, tmp_path: Path) -> None:
    mirrors = tmp_path / "mirrors"
    bare = mirrors / "datasets" / "org" / "toy"
    bare.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    hub.publish(tiny_params(), CORPUS, to=str(bare))  # clean project: no --allow-dirty needed
    sha = subprocess.run(["git", "--git-dir", str(bare), "rev-parse", "v0.1.0^{commit}"],
                         capture_output=True, text=True, check=True).stdout.strip()
    local_rows = pq.read_table(built / "data/curriculum-lwise/train-00000-of-00001.parquet").to_pylist()

    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_HOME=str(tmp_path / "hf-home"), HF_HUB_DISABLE_TELEMETRY="1")
    with olah_server(mirrors, tmp_path / "olah") as url:
        env["HF_ENDPOINT"] = url
        res = _cli(env, "pull", REPO, "--version", "0.1.0", "--config", "curriculum-lwise", "--out", str(tmp_path / "out"))
        assert res.returncode == 0, res.stderr
        assert f"revision {sha}" in res.stdout and "@misc{toy_v0_1_0," in res.stdout
        pulled = tmp_path / "out" / "data/curriculum-lwise/train-00000-of-00001.parquet"
        assert pq.read_table(pulled).to_pylist() == local_rows
        assert pulled.read_bytes() == (built / "data/curriculum-lwise/train-00000-of-00001.parquet").read_bytes()
        assert not (tmp_path / "out" / "data" / "default").exists()  # only the config's files
        loaded = subprocess.run([sys.executable, "-c", LOAD_SCRIPT], env=env, capture_output=True, text=True)
        assert loaded.returncode == 0, loaded.stderr[-3000:]
        unknown = _cli(env, "pull", REPO, "--version", "9.9.9")
        assert unknown.returncode == 2 and "no version 9.9.9" in unknown.stderr and "available: 0.1.0" in unknown.stderr

    got = json.loads(loaded.stdout.strip().splitlines()[-1])
    assert got["names"] == ["bar", "dot", "ring"]
    assert got["docs"] == {f: file_digest(built / f) for f in ("croissant.json", "CITATION.cff")}  # the new files
    local_pairs = pq.read_table(built / "data/pairs-0.5/test-00000-of-00001.parquet").to_pylist()
    assert got["pairs"] == {r["id"]: [file_digest_bytes(r[k]["bytes"]) for k in ("original", "enhanced")]
                            for r in local_pairs}
    expected = [{**r, "image": file_digest_bytes(r["image"]["bytes"])} for r in local_rows]
    assert got["rows"] == json.loads(json.dumps(expected))

    env["HF_HUB_OFFLINE"] = "1"  # the server is gone: the cache answers
    again = _cli(env, "pull", REPO, "--version", "0.1.0", "--config", "curriculum-lwise", "--out", str(tmp_path / "out2"))
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "out2" / pulled.relative_to(tmp_path / "out")).read_bytes() == pulled.read_bytes()
    cite = _cli(env, "cite", f"{REPO}@0.1.0")
    assert cite.returncode == 0 and f"revision {sha}" in cite.stdout
    blob = next((tmp_path / "hf-home" / "hub").glob("datasets--org--toy/snapshots/*/data/curriculum-lwise/*.parquet"))
    blob.resolve().write_bytes(b"tampered")
    bad = _cli(env, "pull", REPO, "--version", "0.1.0", "--config", "curriculum-lwise")
    assert bad.returncode == 2 and "sha256 does not match provenance.json" in bad.stderr


def file_digest_bytes(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- git remote ------------------
def test_git_publish_is_deterministic_and_never_moves_a_tag(built: Path, tmp_path: Path, capsys) -> None:
    remotes = []
    for name in ("a.git", "b.git"):
        remotes.append(tmp_path / name)
        subprocess.run(["git", "init", "-q", "--bare", str(remotes[-1])], check=True)
    first = publish_folder(built, str(remotes[0]), "v0.1.0", message="m", date="2025-01-02")
    assert publish_folder(built, str(remotes[1]), "v0.1.0", message="m", date="2025-01-02").commit == first.commit
    lines = hub.publish(tiny_params(), CORPUS, to=str(remotes[0]))
    assert "identical content; nothing to do" in "\n".join(lines)
    (built / "extra.txt").write_text("changed")
    with pytest.raises(UserError, match="tag v0.1.0 already exists on different content"):
        publish_folder(built, str(remotes[0]), "v0.1.0", message="m", date="2025-01-02")


# ---------------------------------------------------------------- plan and refusals -----------
def test_dry_run_prints_the_plan_and_changes_nothing(built: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # not a git repository: the plan says it would refuse
    out = "\n".join(hub.publish(tiny_params(), CORPUS, dry_run=True))
    assert "https://huggingface.co/datasets/org/toy" in out and "version: 0.1.0 (tag v0.1.0)" in out
    assert "data/curriculum-lwise/train-00000-of-00001.parquet" in out and " B" in out
    assert "would refuse: the project is not a git repository" in out


def test_refuses_dirty_tree_stale_dvc_and_mismatched_names(built: Path, project: Path, monkeypatch) -> None:
    monkeypatch.setattr(hub, "_publish_hub", lambda *a: pytest.fail("must not upload"))
    (project / "untracked.py").write_text("x = 1\n")
    with pytest.raises(UserError, match="publish refused: the git tree has uncommitted changes"):
        hub.publish(tiny_params(), CORPUS)
    (project / "untracked.py").unlink()
    monkeypatch.setattr(hub, "dvc_stale", lambda corpus: ["export@toy"])
    with pytest.raises(UserError, match=r"dvc.lock is out of date \(export@toy\)"):
        hub.publish(tiny_params(), CORPUS)
    with pytest.raises(UserError, match="--repo other/name: .* was exported for 'org/toy'"):
        hub.publish(tiny_params(), CORPUS, repo="other/name")
    with pytest.raises(UserError, match="--version 0.2.0: .* exported as version 0.1.0"):
        hub.publish(tiny_params(), CORPUS, version="0.2.0")


# ---------------------------------------------------------------- Hub API, monkeypatched ------
@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """HfApi replaced at the network boundary; records calls, serves tags and a tree."""
    state = SimpleNamespace(calls=[], tags={}, tree=[], fail=None)

    class FakeApi:
        def __init__(self, *args, **kwargs) -> None:
            assert not args and not kwargs  # the token is never passed around

        def create_repo(self, repo_id, **kw):
            state.calls.append(("create_repo", repo_id, kw))

        def list_repo_refs(self, repo_id, repo_type):
            tags = [SimpleNamespace(name=n, target_commit=c) for n, c in state.tags.items()]
            return SimpleNamespace(tags=tags, branches=[])

        def list_repo_tree(self, repo_id, **kw):
            state.calls.append(("list_repo_tree", repo_id, kw))
            return state.tree

        def upload_folder(self, **kw):
            if state.fail:
                raise RuntimeError(state.fail)
            state.calls.append(("upload_folder", kw))
            state.uploaded_provenance = json.loads((Path(kw["folder_path"]) / "provenance.json").read_text())
            folder = Path(kw["folder_path"])
            state.uploaded_files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
            return SimpleNamespace(oid="c" * 40)

        def create_tag(self, repo_id, **kw):
            state.calls.append(("create_tag", repo_id, kw))

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    return state


def _tree(folder: Path) -> list[SimpleNamespace]:
    out = [SimpleNamespace(path="data"), SimpleNamespace(path=".gitattributes", blob_id="0" * 40, lfs=None)]
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            lfs = SimpleNamespace(sha256=file_digest(p)) if p.suffix in (".parquet", ".png") else None
            out.append(SimpleNamespace(path=p.relative_to(folder).as_posix(), blob_id=git_blob_sha(p), lfs=lfs))
    return out


def test_hub_publish_uploads_then_tags_the_commit(built: Path, fake_hub, capsys) -> None:
    out = "\n".join(hub.publish(tiny_params(), CORPUS, private=True))
    names = [c[0] for c in fake_hub.calls]
    assert names == ["create_repo", "upload_folder", "create_tag"]
    assert fake_hub.calls[0][2] == {"repo_type": "dataset", "exist_ok": True, "private": True}
    upload = fake_hub.calls[1][1]
    assert upload["repo_id"] == REPO and upload["repo_type"] == "dataset" and upload["delete_patterns"] == ["*"]
    staged = Path(upload["folder_path"])  # a hard-linked copy with the git state in provenance.json
    assert staged.parent == built.parent and staged.name.startswith(".hub-publish-") and not staged.exists()
    head = _git(Path.cwd(), "rev-parse", "HEAD").strip()
    assert fake_hub.uploaded_provenance["git"]["commit"] == head and not fake_hub.uploaded_provenance["git"]["dirty"]
    local = json.loads((built / "provenance.json").read_text())
    assert local["git"] is None and "publish" in local["git_reason"]  # the export never depends on git
    assert {k: v for k, v in fake_hub.uploaded_provenance.items() if k not in ("git", "git_reason", "citation")} == \
        {k: v for k, v in local.items() if k not in ("git", "git_reason", "citation")}
    assert fake_hub.calls[2][2]["tag"] == "v0.1.0" and fake_hub.calls[2][2]["revision"] == "c" * 40
    assert fake_hub.uploaded_files == sorted(p.relative_to(built).as_posix() for p in built.rglob("*") if p.is_file())
    assert {"croissant.json", "CITATION.cff", "data/pairs-0.5/train-00000-of-00001.parquet"} <= set(fake_hub.uploaded_files)
    assert f"published {REPO} v0.1.0 = {'c' * 40}" in out


def test_hub_existing_tag_same_content_is_a_no_op(built: Path, fake_hub, capsys) -> None:
    fake_hub.tags = {"v0.1.0": "a" * 40}
    fake_hub.tree = _tree(built)
    lines = hub.publish(tiny_params(), CORPUS)
    assert [c[0] for c in fake_hub.calls] == ["create_repo", "list_repo_tree"]
    assert "identical content; nothing to do" in "\n".join(lines)


def test_hub_existing_tag_other_content_is_refused(built: Path, fake_hub) -> None:
    fake_hub.tags = {"v0.1.0": "a" * 40}
    fake_hub.tree = _tree(built)
    other = next(e for e in fake_hub.tree if e.path != "provenance.json")
    other.blob_id, other.lfs = "f" * 40, None
    with pytest.raises(UserError, match="tag v0.1.0 already exists on different content"):
        hub.publish(tiny_params(), CORPUS)
    assert "upload_folder" not in [c[0] for c in fake_hub.calls]


def test_hub_errors_never_show_the_token(built: Path, fake_hub, monkeypatch, capsys) -> None:
    token = "hf_" + "S3cretToken" * 3
    monkeypatch.setenv("HF_TOKEN", token)
    fake_hub.fail = f"401 Client Error for url https://huggingface.co/api (Authorization: Bearer {token})"
    with pytest.raises(UserError) as err:
        hub.publish(tiny_params(), CORPUS)
    assert token not in str(err.value) and "401 Client Error" in str(err.value)
    assert token not in capsys.readouterr().out
    assert "\n" not in str(err.value)


def test_dry_run_lists_the_datasheet_parts_left_to_the_authors(built: Path) -> None:
    out = "\n".join(hub.publish(tiny_params(), CORPUS, dry_run=True, allow_dirty=True))
    assert ("datasheet: left to the authors: datasheet.motivation, datasheet.funding, datasheet.ethics_review, "
            "datasheet.contact (corpora.toy.export; the card marks them)") in out
    assert "croissant.json" in out and "data/pairs-0.5/train-00000-of-00001.parquet" in out
