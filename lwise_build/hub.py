"""Publish ``data/<corpus>/hub/`` to the Hugging Face Hub (or any git remote) and pull it back.

``publish`` refuses a dirty project or a stale ``dvc.lock`` (unless ``allow_dirty``) and never
moves a tag; ``pull`` resolves ``v<version>`` to a commit SHA, downloads only what a config needs,
verifies every file against ``provenance.json`` and works offline from the Hub cache. The token
comes only from the environment or ``huggingface-cli login`` and never reaches a message.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from .citation import DatasetCitation, read_provenance
from .errors import UserError
from .git_publish import publish_folder, redact

META_FILES = ("README.md", "provenance.json", "CITATION.cff")


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


def version_tag(version: str) -> str:
    """``1.2.0`` or ``v1.2.0`` -> ``v1.2.0``."""
    v = version[1:] if re.fullmatch(r"v\d.*", version) else version
    if not re.fullmatch(r"[0-9A-Za-z][0-9A-Za-z.+_-]*", v):
        raise UserError(f"--version: not a version, got {version!r}")
    return f"v{v}"


def make_plan(params: Any, corpus: str, repo: str | None, version: str | None, to: str | None) -> Plan:
    """Check the exported folder against --repo/--version (the card already names both)."""
    from .tables import stage_dir

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
def project_problems(corpus: str, prov: dict[str, Any]) -> list[str]:
    """Why publishing now would not be reproducible: dirty git tree, stale dvc.lock, dirty export."""
    problems = []
    status = _run(["git", "status", "--porcelain"])
    if status is None:
        problems.append("the project is not a git repository, so the build cannot be traced to a commit")
    elif status.strip():
        problems.append("the git tree has uncommitted changes (git status); commit them first")
    if (prov.get("git") or {}).get("dirty"):
        problems.append(f"data/{corpus}/hub was exported from uncommitted code (provenance.json git.dirty); "
                        "commit and rerun export")
    stale = dvc_stale(corpus)
    if stale:
        problems.append(f"dvc.lock is out of date ({', '.join(stale)}); run dvc repro and commit dvc.lock")
    return problems


def _run(cmd: list[str]) -> str | None:
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError:
        return None
    return res.stdout if res.returncode == 0 else None


def dvc_stale(corpus: str) -> list[str]:
    """Stages ``dvc status`` reports as changed for this corpus's export (empty when clean or no DVC)."""
    if not Path("dvc.yaml").is_file():
        return []
    base = [sys.executable, "-m", "dvc", "status", "--json"]
    out = _run([*base, f"export@{corpus}", "--with-deps"])
    if out is None:
        out = _run(base)
    if out is None:
        return ["dvc status failed"]
    try:
        return sorted(json.loads(out or "{}"))
    except ValueError:
        return ["dvc status gave no JSON"]


# ---------------------------------------------------------------- publish ---------------------
def publish(params: Any, corpus: str, *, repo: str | None = None, version: str | None = None,
            private: bool = False, dry_run: bool = False, to: str | None = None,
            allow_dirty: bool = False) -> Plan:
    """Upload the folder and tag ``v<version>`` (to the Hub, or to the git remote ``to``)."""
    plan = make_plan(params, corpus, repo, version, to)
    problems = [] if allow_dirty else project_problems(corpus, plan.prov)
    if dry_run:
        for line in plan.lines():
            click.echo(line)
        click.echo(f"  then:    tag {plan.tag} on the resulting commit (never moved)")
        for p in problems:
            click.echo(f"  would refuse: {p}")
        return plan
    if problems:
        raise UserError(f"publish refused: {problems[0]} (or pass --allow-dirty)")
    message = f"{(plan.prov.get('citation') or {}).get('title', plan.repo)} v{plan.version}"
    if to:
        date = (plan.prov.get("citation") or {}).get("date")
        result = publish_folder(plan.folder, to, plan.tag, message=message, date=date)
        sha, created = result.commit, result.created
    else:
        sha, created = _publish_hub(plan, private, message)
    state = "published" if created else "already published with identical content; nothing to do:"
    click.echo(f"{state} {plan.repo} {plan.tag} = {sha} ({plan.destination})")
    return plan


@contextlib.contextmanager
def hub_errors(what: str) -> Iterator[None]:
    """Turn Hub/HTTP failures into one line with any token scrubbed out."""
    try:
        yield
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - network and Hub errors of every kind
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(f"{what}: {type(exc).__name__}: {scrub(first)}") from None


def scrub(text: str) -> str:
    """Remove the Hub token (and anything token-shaped) from a message."""
    from huggingface_hub import get_token

    token = get_token()
    if token:
        text = text.replace(token, "***")
    return redact(re.sub(r"hf_[A-Za-z0-9]{8,}", "hf_***", text))


def _publish_hub(plan: Plan, private: bool, message: str) -> tuple[str, bool]:
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
        info = api.upload_folder(repo_id=plan.repo, repo_type="dataset", folder_path=str(plan.folder),
                                 commit_message=message, delete_patterns=["*"])
        api.create_tag(plan.repo, tag=plan.tag, revision=info.oid, repo_type="dataset",
                       tag_message=f"lwise-build dataset {plan.tag}")
    return info.oid, True


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file (tables.file_digest without importing datasets: pull stays light)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def git_blob_sha(path: Path) -> str:
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _hub_same_content(api: Any, plan: Plan, revision: str) -> bool:
    """Whether the tagged revision holds exactly the local files (LFS sha256 or git blob id)."""
    remote = {f.path: f for f in api.list_repo_tree(plan.repo, repo_type="dataset", revision=revision,
                                                    recursive=True) if hasattr(f, "blob_id")}
    remote.pop(".gitattributes", None)
    if set(remote) != {p for p, _ in plan.files}:
        return False
    for path, entry in remote.items():
        local = plan.folder / path
        lfs = getattr(entry, "lfs", None)
        same = (lfs.sha256 == sha256_file(local)) if lfs else entry.blob_id == git_blob_sha(local)
        if not same:
            return False
    return True


# ---------------------------------------------------------------- pull ------------------------
def pull(repo: str, version: str, *, config: str | None = None, out: str | None = None) -> Path:
    """Fetch ``repo`` at ``v<version>`` (only ``config``'s files), verify, print where and how to cite."""
    from .hub_fetch import download, download_metadata, resolve

    tag = version_tag(version)
    sha = resolve(repo, tag)
    prov = read_provenance(download_metadata(repo, tag, sha))
    configs = prov.get("configs") or {}
    if config is not None and config not in configs:
        raise UserError(f"{repo} {tag}: no config {config!r} (configs: {', '.join(configs)})")
    data = [f for fs in configs[config]["files"].values() for f in fs] if config else list(prov.get("files") or ())
    wanted = sorted({*META_FILES, *data} - {"provenance.json"})
    folder = download(repo, tag, sha, None if config is None else [*wanted, "provenance.json"])
    checked = verify(folder, prov, wanted)
    target = _copy_out(folder, checked, Path(out)) if out else folder
    click.echo(f"{repo} {tag} = revision {sha}")
    click.echo(f"{len(checked)} files verified against provenance.json (sha256) in {target}")
    for rel in checked:
        if rel.startswith("data/"):
            click.echo(f"  {rel}")
    name = config or "default"
    click.echo(f'load it with: load_dataset("{repo}", "{name}", revision="{tag}")\n')
    click.echo(DatasetCitation.from_provenance(prov, revision=sha).bibtex_all())
    return target


def verify(folder: Path, prov: dict[str, Any], wanted: list[str]) -> list[str]:
    """Check the wanted files against provenance.json's sha256; every one must be there."""
    files = prov.get("files") or {}
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    missing = sorted(set(wanted) - present)
    if missing:
        raise UserError(f"{folder}: {missing[0]} is missing ({len(missing)} files); pull again online")
    for rel in wanted:
        if rel not in files:
            raise UserError(f"{folder}/{rel}: not listed in provenance.json; the revision is not an lwise-build export")
        if sha256_file(folder / rel) != files[rel]["sha256"]:
            raise UserError(f"{folder}/{rel}: sha256 does not match provenance.json; delete it from the cache and pull again")
    return wanted


def _copy_out(folder: Path, files: list[str], out: Path) -> Path:
    for rel in [*files, "provenance.json"]:
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folder / rel, target)
    return out
