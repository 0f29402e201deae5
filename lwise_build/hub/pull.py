"""``lwise-build pull`` and ``cite``: a published version, resolved, downloaded and verified.

A version is the tag ``v<version>``. Online, the tag is resolved with ``HfApi.list_repo_refs``;
offline (``HF_HUB_OFFLINE=1``, or the endpoint unreachable) it is read from the cache's
``refs/<tag>``, which ``snapshot_download`` wrote the first time. ``pull`` downloads only what a
config needs and verifies the whole version: the revision holds exactly the files its
``provenance.json`` lists, every fetched file has its listed sha256 (a mismatch is fetched once
more, so a damaged local cache is told apart from a server whose copy differs), and the content
hash is recomputed and, with ``--sha256``, checked against the one a citation gives. A tag that
moved since the last pull is reported; ``--revision`` pins a commit.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import console
from ..errors import UserError, quote
from ..io.paths import stage_dir
from ..io.staging import disk_errors
from .citation import DatasetCitation
from .provenance import FILE as PROVENANCE
from .provenance import read_provenance
from .remote import REPO_TYPE, endpoint, hub_errors, offline, version_tag
from .verify import check_content, check_listing, present, refetch, verify

#: What every version's metadata download brings.
META_FILES = ("README.md", "provenance.json", "CITATION.cff")


def cached_tags(repo: str) -> dict[str, str]:
    """tag -> commit SHA for the versions of ``repo`` already in the local Hub cache
    (``huggingface_hub.scan_cache_dir``; a cached repository it calls corrupted has none)."""
    from huggingface_hub import CacheNotFound, constants, scan_cache_dir

    try:  # the cache folder as configured now (scan_cache_dir's default is fixed at its import)
        cache = scan_cache_dir(constants.HF_HUB_CACHE)
    except CacheNotFound:
        return {}
    return {ref: rev.commit_hash for cached in cache.repos if (cached.repo_id, cached.repo_type) == (repo, REPO_TYPE)
            for rev in cached.revisions for ref in rev.refs if ref.startswith("v")}


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
    """The snapshot folder of ``tag`` (a version tag, or the commit itself) holding at least
    ``patterns`` (all files when None)."""
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


def pin(repo: str, tag: str | None, revision: str | None) -> tuple[str, str, str | None]:
    """(what to download by, commit SHA, a warning when the tag moved since the cached pull)."""
    if revision is not None and not re.fullmatch(r"[0-9a-f]{40}", revision):
        raise UserError(f"--revision: a full 40-digit commit SHA, got {quote(revision)}")
    if tag is None:
        return revision, revision, None  # type: ignore[return-value]
    before = cached_tags(repo).get(tag)
    sha = resolve(repo, tag)
    if revision is not None and revision != sha:
        raise UserError(f"{repo} {tag}: the tag points at {sha}, not the --revision {revision} you gave; "
                        "drop --version to pull that commit, or drop --revision to pull what the tag holds now")
    moved = None
    if before and before != sha:
        moved = (f"{repo} {tag} moved: it now points at {sha}, but your earlier pull got {before}; "
                 f"a citation of {tag} may mean either (pull --revision {before} for the earlier one)")
    return tag, sha, moved


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
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        listed = len(self.prov.get("files") or {})
        how = "every file verified by its bytes" if len(self.files) >= listed else \
            f"{len(self.files)} files verified by their bytes, the other {listed - len(self.files)} by their listed hashes"
        out = [*self.notes, f"{self.repo} {self.tag} = revision {self.sha}",
               f"content sha256 {self.prov['content_sha256']} (recomputed: {how}) in {self.folder}"]
        out += [f"  {rel}" for rel in self.files if rel.startswith("data/")]
        if self.config in (self.prov.get("artefacts") or {}):
            out.append(f"open {self.folder / self.config}/index.html to run it\n" if self.config == "experiment" else "")
        else:
            out.append(f'load it with: load_dataset("{self.repo}", "{self.config or "default"}", revision="{self.sha}")\n')
        out.append(DatasetCitation.from_provenance(self.prov, revision=self.sha).bibtex_all())
        return out


def pull(repo: str, version: str | None = None, *, config: str | None = None, out: str | None = None,
         sha256: str | None = None, revision: str | None = None) -> Pulled:
    """Fetch ``repo`` at ``v<version>`` and/or commit ``revision`` (only ``config``'s files) and
    verify the whole version: the served file list, every fetched file, the content hash."""
    if version is None and revision is None:
        raise UserError("pull: give --version (a published version) or --revision (a commit SHA)")
    ref, sha, moved = pin(repo, version_tag(version) if version else None, revision)
    if moved:  # said at once: it matters even when the pull then fails
        console.warn(moved)
    prov = read_provenance(meta := download_metadata(repo, ref, sha))
    label = ref if version else f"v{(prov.get('citation') or {}).get('version', '?')} at {sha[:12]}"
    served = served_files(repo, sha)
    check_listing(repo, label, prov, served if served is not None else present(meta))
    content = check_content(repo, label, prov, sha256)
    configs = {n: [f for fs in c["files"].values() for f in fs] for n, c in (prov.get("configs") or {}).items()}
    configs |= prov.get("artefacts") or {}  # downloadable folders (the experiment), not dataset configs
    if config is not None and config not in configs:
        raise UserError(f"{repo} {label}: no config {config!r} (configs: {', '.join(configs)})")
    data = configs[config] if config else list(prov.get("files") or ())
    wanted = sorted({*META_FILES, *data} - {PROVENANCE})
    folder = download(repo, ref, sha, None if config is None else [*wanted, PROVENANCE])
    if served is None:  # offline: the cached snapshot is all there is to check
        check_listing(repo, label, prov, present(folder))
    checked = verify(folder, prov, wanted, repair=lambda rel: refetch(repo, sha, rel), label=f"{repo} {label}")
    target = _copy_out(folder, checked, Path(out)) if out else folder
    notes = [f"content sha256 matches --sha256 {sha256}"] if sha256 else []
    return Pulled(repo, label, sha, target, checked, config, {**prov, "content_sha256": content}, notes)


def served_files(repo: str, sha: str) -> set[str] | None:
    """Every file of the revision as the server lists it; None when offline or unreachable."""
    if offline():
        return None
    from huggingface_hub import HfApi

    try:
        return set(HfApi().list_repo_files(repo, repo_type=REPO_TYPE, revision=sha))
    except Exception:  # noqa: BLE001 - network down: the cached snapshot is checked instead
        return None


def _copy_out(folder: Path, files: list[str], out: Path) -> Path:
    for rel in [*files, PROVENANCE]:
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        with disk_errors(out):
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
    check_content(repo, sha, prov, None)  # the hash it quotes is the one its file list gives
    return prov, sha
