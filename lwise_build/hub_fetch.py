"""Resolve a published version to its commit and download files, online or from the Hub cache.

A version is the tag ``v<version>``. Online, the tag is resolved with ``HfApi.list_repo_refs``;
offline (``HF_HUB_OFFLINE=1``, or the endpoint unreachable) it is read from the cache's
``refs/<tag>``, which ``snapshot_download`` wrote the first time. ``HF_ENDPOINT`` picks the server.
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import UserError
from .hub import META_FILES, hub_errors, version_tag

REPO_TYPE = "dataset"


def _cache_dir(repo: str) -> Path:
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    return Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo, repo_type=REPO_TYPE)


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def cached_tags(repo: str) -> dict[str, str]:
    """tag -> commit SHA for the versions of ``repo`` already in the local Hub cache."""
    refs = _cache_dir(repo) / "refs"
    if not refs.is_dir():
        return {}
    return {p.name: p.read_text().strip() for p in refs.iterdir() if p.is_file() and p.name.startswith("v")}


def remote_tags(repo: str) -> dict[str, str] | None:
    """tag -> commit SHA from the Hub; None when offline or the endpoint cannot be reached."""
    if _offline():
        return None
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError

    try:
        refs = HfApi().list_repo_refs(repo, repo_type=REPO_TYPE)
    except RepositoryNotFoundError:
        raise UserError(f"{repo}: no such dataset repository (or no access) on {_endpoint()}") from None
    except OSError:  # connection refused, DNS, timeouts: fall back to the cache
        return None
    except Exception as exc:  # noqa: BLE001 - HTTP errors other than not-found
        if "connect" in type(exc).__name__.lower() or "timeout" in type(exc).__name__.lower():
            return None
        with hub_errors(f"pull {repo}"):
            raise
    return {t.name: t.target_commit for t in refs.tags}


def _endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def _sort_key(tag: str) -> tuple:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"[.+-]", tag[1:]))


def resolve(repo: str, tag: str) -> str:
    """The commit SHA of ``tag``; an unknown version fails listing the available ones."""
    tags = remote_tags(repo)
    where = f"on {_endpoint()}"
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
