"""What ``pull`` checks of a version: the file list, the content hash, every fetched file.

A version is what its ``provenance.json`` lists: the revision may hold no other file (a config's
shard pattern would load it), the listed hashes must give the stated content hash (and the one a
citation gives), and every fetched file must have its listed sha256; a file that does not is
fetched once more, so a damaged local cache is told apart from a server whose copy differs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import UserError, quote
from ..io.digests import file_digest, json_digest
from .provenance import FILE as PROVENANCE
from .remote import REPO_TYPE, offline


def present(folder: Path) -> set[str]:
    """Every file under ``folder``, as paths relative to it."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


#: Files a Hub repository may hold beside what provenance.json lists (the Hub creates .gitattributes).
UNLISTED_OK = {PROVENANCE, ".gitattributes"}


def check_listing(repo: str, label: str, prov: dict[str, Any], files: set[str]) -> None:
    """The revision holds no file its provenance does not list: `load_dataset` reads every
    shard a config's pattern matches, so an extra one would be loaded unverified."""
    extra = sorted(files - set(prov.get("files") or {}) - UNLISTED_OK)
    if extra:
        more = f" and {len(extra) - 1} more" if len(extra) > 1 else ""
        raise UserError(f"{repo} {label}: {extra[0]}{more} is not listed in its provenance.json (load_dataset would "
                        f"read it): {DIFFERS}")


DIFFERS = ("the server's copy differs from its own provenance; do not use it: tell the dataset's maintainers, "
           "or pull a revision you trust (--revision <commit>, --sha256 <the hash your citation gives>)")


def check_content(repo: str, label: str, prov: dict[str, Any], want: str | None) -> str:
    """The content hash recomputed from the listed files' hashes: it must be the one provenance.json
    states and, when given, the one a citation gives (``--sha256``)."""
    files = prov.get("files") or {}
    content = json_digest({k: v["sha256"] for k, v in files.items()})
    if content != prov.get("content_sha256"):
        raise UserError(f"{repo} {label}: provenance.json states content sha256 {prov.get('content_sha256')}, but the "
                        f"files it lists hash to {content}: {DIFFERS}")
    if want is not None and want.lower() != content:
        raise UserError(f"{repo} {label}: content sha256 is {content}, not the {quote(want)} you asked for (--sha256); "
                        "this is not the version your citation names: check the version or revision, or pull the "
                        "revision the citation gives")
    return content


def verify(folder: Path, prov: dict[str, Any], wanted: list[str],
           repair: Callable[[str], Path | None] | None = None, label: str | None = None) -> list[str]:
    """Check the wanted files against provenance.json's sha256; every one must be there. A file
    that differs is fetched once more (``repair``): the local cache may be what went wrong."""
    files = prov.get("files") or {}
    missing = sorted(set(wanted) - present(folder))
    if missing:
        raise UserError(f"{folder}: {missing[0]} is missing ({len(missing)} files); pull again online")
    for rel in wanted:
        if rel not in files:
            raise UserError(f"{folder}/{rel}: not listed in provenance.json; the revision is not an lwise-build export")
        if file_digest(folder / rel) == files[rel]["sha256"]:
            continue
        again = repair(rel) if repair is not None else None
        if again is None:
            raise UserError(f"{folder}/{rel}: sha256 does not match provenance.json, and the server cannot be reached "
                            f"to fetch it again; delete {folder} and pull again online")
        if file_digest(again) != files[rel]["sha256"]:
            raise UserError(f"{label or folder}: {rel} as served does not match the sha256 its provenance.json lists: "
                            f"{DIFFERS}")
    return wanted


def refetch(repo: str, sha: str, rel: str) -> Path | None:
    """``rel`` downloaded again from the server (replacing the cached copy); None when offline."""
    if offline():
        return None
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo, rel, repo_type=REPO_TYPE, revision=sha, force_download=True))
    except Exception:  # noqa: BLE001 - unreachable now: say so as the offline case does
        return None
