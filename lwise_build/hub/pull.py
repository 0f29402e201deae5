"""``lwise-build pull`` and ``cite``: a published version, resolved, downloaded and verified.

A version is the tag ``v<version>``. Online, the tag is resolved with ``HfApi.list_repo_refs``;
offline (``HF_HUB_OFFLINE=1``, or the endpoint unreachable) it is read from the cache's
``refs/<tag>``, which ``snapshot_download`` wrote the first time. ``pull`` downloads only what a
config needs and checks every file's sha256 against ``provenance.json``.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..io.digests import file_digest
from ..io.paths import stage_dir
from .citation import DatasetCitation
from .provenance import FILE as PROVENANCE
from .provenance import read_provenance
from .remote import REPO_TYPE, endpoint, hub_errors, offline, version_tag

#: What every version's metadata download brings.
META_FILES = ("README.md", "provenance.json", "CITATION.cff")


def _cache_dir(repo: str) -> Path:
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    return Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo, repo_type=REPO_TYPE)


def cached_tags(repo: str) -> dict[str, str]:
    """tag -> commit SHA for the versions of ``repo`` already in the local Hub cache."""
    refs = _cache_dir(repo) / "refs"
    if not refs.is_dir():
        return {}
    return {p.name: p.read_text().strip() for p in refs.iterdir() if p.is_file() and p.name.startswith("v")}


def remote_tags(repo: str) -> dict[str, str] | None:
    """tag -> commit SHA from the Hub; None when offline or the endpoint cannot be reached."""
    if offline():
        return None
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError

    try:
        refs = HfApi().list_repo_refs(repo, repo_type=REPO_TYPE)
    except RepositoryNotFoundError:
        raise UserError(f"{repo}: no such dataset repository (or no access) on {endpoint()}") from None
    except OSError:  # connection refused, DNS, timeouts: fall back to the cache
        return None
    except Exception as exc:  # noqa: BLE001 - HTTP errors other than not-found
        if "connect" in type(exc).__name__.lower() or "timeout" in type(exc).__name__.lower():
            return None
        with hub_errors(f"pull {repo}"):
            raise
    return {t.name: t.target_commit for t in refs.tags}


def _sort_key(tag: str) -> tuple:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"[.+-]", tag[1:]))


def resolve(repo: str, tag: str) -> str:
    """The commit SHA of ``tag``; an unknown version fails listing the available ones."""
    tags = remote_tags(repo)
    where = f"on {endpoint()}"
    if tags is None:
        tags, where = cached_tags(repo), "in the local cache (offline)"
    if tag not in tags:
        known = ", ".join(t[1:] for t in sorted(tags, key=_sort_key)) or "none"
        raise UserError(f"{repo}: no version {tag[1:]} {where} (available: {known})")
    return tags[tag]


def latest(repo: str) -> str:
    """The highest published version tag."""
    tags = remote_tags(repo)
    if tags is None:
        tags = cached_tags(repo)
    versions = sorted((t for t in tags if re.fullmatch(r"v\d.*", t)), key=_sort_key)
    if not versions:
        raise UserError(f"{repo}: no published versions (tags v<version>) found")
    return versions[-1]


def download(repo: str, tag: str, sha: str, patterns: list[str] | None) -> Path:
    """The snapshot folder of ``tag`` holding at least ``patterns`` (all files when None)."""
    from huggingface_hub import snapshot_download

    with hub_errors(f"pull {repo} {tag}"):  # offline or unreachable: snapshot_download reads the cache
        folder = Path(snapshot_download(repo, repo_type=REPO_TYPE, revision=tag, allow_patterns=patterns))
    if folder.name != sha:
        raise UserError(f"{repo} {tag}: the Hub served revision {folder.name}, expected {sha}; the tag moved")
    return folder


def download_metadata(repo: str, tag: str, sha: str) -> Path:
    """The snapshot with README, provenance.json and CITATION.cff of a resolved version."""
    folder = download(repo, tag, sha, list(META_FILES))
    if not (folder / "provenance.json").is_file():
        raise UserError(f"{repo} {tag}: no provenance.json at that revision; not an lwise-build export")
    return folder


def fetch_metadata(repo: str, version: str | None) -> tuple[Path, str]:
    """(folder with README/provenance/CITATION, commit SHA) of a version (default: the latest)."""
    tag = version_tag(version) if version else latest(repo)
    sha = resolve(repo, tag)
    return download_metadata(repo, tag, sha), sha


# ---------------------------------------------------------------- pull -----------------------
@dataclass
class Pulled:
    """What ``pull`` fetched: where, which revision, which files, and how to load and cite it."""

    repo: str
    tag: str
    sha: str
    folder: Path
    files: list[str]
    config: str | None
    prov: dict[str, Any]

    def lines(self) -> list[str]:
        out = [f"{self.repo} {self.tag} = revision {self.sha}",
               f"{len(self.files)} files verified against provenance.json (sha256) in {self.folder}"]
        out += [f"  {rel}" for rel in self.files if rel.startswith("data/")]
        if self.config in (self.prov.get("artefacts") or {}):
            out.append(f"open {self.folder / self.config}/index.html to run it\n" if self.config == "experiment" else "")
        else:
            out.append(f'load it with: load_dataset("{self.repo}", "{self.config or "default"}", revision="{self.tag}")\n')
        out.append(DatasetCitation.from_provenance(self.prov, revision=self.sha).bibtex_all())
        return out


def pull(repo: str, version: str, *, config: str | None = None, out: str | None = None) -> Pulled:
    """Fetch ``repo`` at ``v<version>`` (only ``config``'s files) and verify every file."""
    tag = version_tag(version)
    sha = resolve(repo, tag)
    prov = read_provenance(download_metadata(repo, tag, sha))
    configs = {n: [f for fs in c["files"].values() for f in fs] for n, c in (prov.get("configs") or {}).items()}
    configs |= prov.get("artefacts") or {}  # downloadable folders (the experiment), not dataset configs
    if config is not None and config not in configs:
        raise UserError(f"{repo} {tag}: no config {config!r} (configs: {', '.join(configs)})")
    data = configs[config] if config else list(prov.get("files") or ())
    wanted = sorted({*META_FILES, *data} - {PROVENANCE})
    folder = download(repo, tag, sha, None if config is None else [*wanted, PROVENANCE])
    checked = verify(folder, prov, wanted)
    target = _copy_out(folder, checked, Path(out)) if out else folder
    return Pulled(repo, tag, sha, target, checked, config, prov)


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
        if file_digest(folder / rel) != files[rel]["sha256"]:
            raise UserError(f"{folder}/{rel}: sha256 does not match provenance.json; delete it from the cache and pull again")
    return wanted


def _copy_out(folder: Path, files: list[str], out: Path) -> Path:
    for rel in [*files, PROVENANCE]:
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folder / rel, target)
    return out


# ---------------------------------------------------------------- cite -----------------------
def cite(target: str, fmt: str = "bibtex", params_path: str = "params.yaml") -> str:
    """Citation text for a corpus build, an exported folder, or ``org/name[@version]`` on the Hub."""
    prov, revision = _locate(target, params_path)
    meta = DatasetCitation.from_provenance(prov, revision=revision)
    if fmt == "cff":
        return meta.cff().rstrip("\n")
    if fmt != "bibtex":
        raise UserError(f"--format: must be bibtex or cff, got {fmt!r}")
    return meta.bibtex_all()


def _locate(target: str, params_path: str) -> tuple[dict[str, Any], str | None]:
    """(provenance, revision SHA or None) for a folder, a corpus name or a Hub repo."""
    if Path(target).is_dir():
        return read_provenance(Path(target)), None
    repo, _, version = target.partition("@")
    if "/" not in repo:
        from ..config.load import load_params

        load_params(params_path).corpus(target)
        return read_provenance(stage_dir(target, "hub")), None
    folder, sha = fetch_metadata(repo, version or None)
    prov = read_provenance(folder)
    return prov, sha
