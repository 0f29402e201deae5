"""``lwise-build publish``: ``data/<corpus>/hub/`` to the Hugging Face Hub (or any git remote).

Refuses a dirty project or a stale ``dvc.lock`` (unless ``allow_dirty``) and never moves a tag:
re-publishing identical content is a no-op, different content under an existing version an
error. The git state goes into the published ``provenance.json`` now, at publish time (the
exported folder never depends on it), so ``dvc repro``, ``git commit``, ``publish`` is the whole
loop. The token comes only from the environment or ``hf auth login`` and never reaches a message.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config.datasheet import unwritten
from ..errors import UserError
from ..io.digests import file_digest, git_blob_sha
from ..io.paths import stage_dir
from ..io.staging import write_json
from .git_remote import git_output, publish_folder
from .provenance import FILE, git_state, published, read_provenance
from .remote import hub_errors, redact, version_tag


@dataclass
class Plan:
    """What a publish would do."""

    corpus: str
    folder: Path
    repo: str
    version: str
    files: list[tuple[str, int]]
    prov: dict[str, Any]
    to: str | None

    @property
    def tag(self) -> str:
        return f"v{self.version}"

    @property
    def destination(self) -> str:
        return redact(self.to) if self.to else f"https://huggingface.co/datasets/{self.repo}"

    def lines(self) -> list[str]:
        total = sum(size for _, size in self.files)
        out = [f"publish {self.folder} -> {self.destination}", f"  repo:    {self.repo} (dataset)",
               f"  version: {self.version} (tag {self.tag})", f"  files:   {len(self.files)} ({_mb(total)})"]
        out += [f"    {path}  {_mb(size)}" for path, size in self.files]
        return out


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 10_000 else f"{n} B"


def make_plan(params: Any, corpus: str, repo: str | None, version: str | None, to: str | None) -> Plan:
    """Check the exported folder against --repo/--version (the card already names both)."""
    params.corpus(corpus)
    folder = stage_dir(corpus, "hub")
    prov = read_provenance(folder)
    cited = prov.get("citation") or {}
    baked_repo, baked_version = cited.get("repo_id"), cited.get("version")
    repo = repo or baked_repo
    if not repo:
        raise UserError(f"corpora.{corpus}.export.repo_id: not set; set it (org/name) and rerun export")
    if repo != baked_repo:
        raise UserError(f"--repo {repo}: {folder} was exported for {baked_repo!r}; set corpora.{corpus}."
                        "export.repo_id and rerun export so the card names the right repository")
    version = version_tag(version or baked_version)[1:]
    if version != baked_version:
        raise UserError(f"--version {version}: {folder} was exported as version {baked_version}; set "
                        f"corpora.{corpus}.export.version and rerun export")
    files = sorted((p.relative_to(folder).as_posix(), p.stat().st_size) for p in folder.rglob("*") if p.is_file())
    return Plan(corpus, folder, repo, version, files, prov, to)


# ---------------------------------------------------------------- refusals --------------------
def project_problems(corpus: str) -> list[str]:
    """Why publishing now would not be reproducible: a stale dvc.lock (sources refreshed first),
    or a dirty git tree (the published provenance names the current commit)."""
    problems = []
    stale = dvc_stale(corpus)
    if stale:
        problems.append(f"dvc.lock is out of date ({', '.join(stale)}); run dvc repro and commit dvc.lock")
    status = git_output("status", "--porcelain")
    if status is None:
        problems.append("the project is not a git repository, so the build cannot be traced to a commit")
    elif status.strip():
        problems.append("the git tree has uncommitted changes (git status); commit them first")
    return problems


def _run(cmd: list[str]) -> str | None:
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError:
        return None
    return res.stdout if res.returncode == 0 else None


def dvc_stale(corpus: str) -> list[str]:
    """Stages ``dvc status`` reports as changed for this corpus's export (empty when clean or no
    DVC), after refreshing ``resolve@<corpus>`` (the source fingerprint: a changed source shows
    as a changed ``dvc.lock``); ``resolve`` itself, always changed by design, does not count."""
    if not Path("dvc.yaml").is_file():
        return []
    _run([sys.executable, "-m", "dvc", "repro", "--single-item", f"resolve@{corpus}"])
    base = [sys.executable, "-m", "dvc", "status", "--json"]
    out = _run([*base, f"export@{corpus}", "--with-deps"])
    if out is None:
        out = _run(base)
    if out is None:
        return ["dvc status failed"]
    try:
        changed = json.loads(out or "{}")
    except ValueError:
        return ["dvc status gave no JSON"]
    return sorted(k for k, v in changed.items() if v != ["always changed"])


# ---------------------------------------------------------------- publish ---------------------
def publish(params: Any, corpus: str, *, repo: str | None = None, version: str | None = None,
            private: bool = False, dry_run: bool = False, to: str | None = None,
            allow_dirty: bool = False) -> list[str]:
    """Upload the folder and tag ``v<version>`` (to the Hub, or to the git remote ``to``);
    returns the lines to show (the plan for ``dry_run``)."""
    plan = make_plan(params, corpus, repo, version, to)
    problems = [] if allow_dirty else project_problems(corpus)
    if dry_run:
        c = params.corpus(corpus)
        gaps = unwritten(c.ingest.source, c.export.datasheet, c.export.authors)
        sheet = [f"  datasheet: left to the authors: {', '.join(gaps)} (corpora.{corpus}.export; "
                 "the card marks them)"] if gaps else []
        return [*plan.lines(), f"  then:    tag {plan.tag} on the resulting commit (never moved)", *sheet,
                *(f"  would refuse: {p}" for p in problems)]
    if problems:
        raise UserError(f"publish refused: {problems[0]} (or pass --allow-dirty)")
    with staged_copy(plan) as staged:
        message = f"{(plan.prov.get('citation') or {}).get('title', plan.repo)} v{plan.version}"
        if to:
            date = (plan.prov.get("citation") or {}).get("date")
            result = publish_folder(staged, to, plan.tag, message=message, date=date)
            sha, created = result.commit, result.created
        else:
            sha, created = _publish_hub(plan, staged, private, message)
    state = "published" if created else "already published with identical content; nothing to do:"
    return [f"{state} {plan.repo} {plan.tag} = {sha} ({plan.destination})"]


@contextlib.contextmanager
def staged_copy(plan: Plan) -> Iterator[Path]:
    """The exported folder as published: every file hard-linked (copied across file systems),
    ``provenance.json`` rewritten with the git state (:func:`~.provenance.published`)."""
    tmp = Path(tempfile.mkdtemp(prefix=".hub-publish-", dir=plan.folder.parent))
    try:
        for rel, _ in plan.files:
            if rel == FILE:
                continue
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(plan.folder / rel, tmp / rel)
            except OSError:
                shutil.copyfile(plan.folder / rel, tmp / rel)
        plan.prov = published(plan.prov, git_state())
        write_json(tmp / FILE, plan.prov)
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _publish_hub(plan: Plan, folder: Path, private: bool, message: str) -> tuple[str, bool]:
    from huggingface_hub import HfApi

    api = HfApi()
    with hub_errors(f"publish {plan.repo}"):
        api.create_repo(plan.repo, repo_type="dataset", exist_ok=True, private=private)
        tags = {t.name: t.target_commit for t in api.list_repo_refs(plan.repo, repo_type="dataset").tags}
        if plan.tag in tags:
            if _hub_same_content(api, plan, tags[plan.tag]):
                return tags[plan.tag], False
            raise UserError(f"publish {plan.repo}: tag {plan.tag} already exists on different content "
                            f"({tags[plan.tag][:12]}); tags are never moved, publish a new version")
        info = api.upload_folder(repo_id=plan.repo, repo_type="dataset", folder_path=str(folder),
                                 commit_message=message, delete_patterns=["*"])
        api.create_tag(plan.repo, tag=plan.tag, revision=info.oid, repo_type="dataset",
                       tag_message=f"lwise-build dataset {plan.tag}")
    return info.oid, True


def _hub_same_content(api: Any, plan: Plan, revision: str) -> bool:
    """Whether the tagged revision holds exactly the local files (LFS sha256 or git blob id);
    ``provenance.json`` differs only in the git state, which is not content."""
    remote = {f.path: f for f in api.list_repo_tree(plan.repo, repo_type="dataset", revision=revision,
                                                    recursive=True) if hasattr(f, "blob_id")}
    remote.pop(".gitattributes", None)
    if set(remote) != {p for p, _ in plan.files}:
        return False
    for path, entry in remote.items():
        if path == FILE:
            continue
        local = plan.folder / path
        lfs = getattr(entry, "lfs", None)
        same = (lfs.sha256 == file_digest(local)) if lfs else entry.blob_id == git_blob_sha(local)
        if not same:
            return False
    return True
