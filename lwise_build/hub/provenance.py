"""``provenance.json``: everything needed to reproduce, verify and cite an exported folder.

Package and library versions, the dvc.lock hash of every input, the params, model hashes, and the
sha256 of every file in the folder (which ``pull`` checks). Its ``content_sha256`` is the hash the
citation quotes. The git commit is added when the folder is published (:func:`published`), so the
exported folder depends only on the build's inputs, not on the git state.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from .. import __version__
from ..config.schema import to_plain
from ..errors import UserError
from ..io.digests import file_digest, json_digest
from ..io.paths import public_path, public_source
from ..io.staging import write_json
from .citation import DatasetCitation
from .configs import ConfigInfo
from .git_remote import git_output

FILE = "provenance.json"
#: The documents that describe a version; every other file is its content (:func:`data_hashes`).
DOCUMENTS = ("README.md", "CITATION.cff", "croissant.json", FILE)


def git_state() -> dict[str, Any]:
    """The project's commit, whether code or params differ from it, and its date (empty outside git).

    ``dvc.lock`` and the ``.gitignore`` files DVC writes are left out of the dirty check: ``dvc repro``
    itself updates them before export runs; ``publish`` insists they are committed.
    """
    commit = git_output("rev-parse", "HEAD")
    if commit is None:
        return {}
    changes = git_output("status", "--porcelain", "-uall", "--", ":/", ":(exclude,top)dvc.lock",
                         ":(exclude,top,glob)**/.gitignore")
    return {"commit": commit, "dirty": bool(changes), "date": git_output("log", "-1", "--format=%cs")}


def dvc_lock_hashes(corpus: str, lock: Path = Path("dvc.lock")) -> dict[str, str]:
    """md5 (from dvc.lock) of every output of this corpus's stages that export reads."""
    if not lock.is_file():
        return {}
    data = yaml.safe_load(lock.read_text(encoding="utf-8")) or {}
    prefix, skip = f"data/{corpus}/", (f"data/{corpus}/hub", f"data/{corpus}/report")
    out = {}
    for stage in (data.get("stages") or {}).values():
        for entry in stage.get("outs") or ():
            path = str(entry.get("path", ""))
            if path.startswith(prefix) and not path.startswith(skip) and entry.get("md5"):
                out[path] = entry["md5"]
    return dict(sorted(out.items()))


def library_versions() -> dict[str, str]:
    """Versions of the libraries whose behaviour the bytes depend on."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("torch", "datasets", "numpy", "pillow", "pyarrow", "huggingface-hub"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def file_hashes(root: Path, known: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """relative path -> sha256 and size of every file except provenance.json itself (``known``:
    entries already hashed, reused as they are)."""
    known = known or {}
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name != FILE)
    return {rel: known.get(rel) or {"sha256": file_digest(p), "size": p.stat().st_size}
            for p in files for rel in [p.relative_to(root).as_posix()]}


def data_hashes(root: Path) -> dict[str, dict[str, Any]]:
    """sha256 and size of the version's content: every file but the :data:`DOCUMENTS`."""
    return {k: v for k, v in file_hashes(root).items() if k not in DOCUMENTS}


def data_digest(hashes: dict[str, dict[str, Any]]) -> str:
    """The version's content hash (CITATION.cff, croissant.json, the card): see citation.DATA_HASH_TEXT."""
    return json_digest({k: v["sha256"] for k, v in hashes.items() if k not in DOCUMENTS})


def write_provenance(root: Path, params: Any, corpus: str, configs: list[ConfigInfo],
                     models: dict[str, Any], meta: DatasetCitation, build: dict[str, Any],
                     artefacts: dict[str, list[str]] | None = None,
                     known: dict[str, dict[str, Any]] | None = None) -> None:
    """Write ``provenance.json`` for the folder ``root`` (after every other file is in place);
    ``artefacts`` (name -> files, e.g. the experiment) are listed only when there are any;
    ``known``: files already hashed (:func:`data_hashes`)."""
    files = file_hashes(root, known)
    # the experiment and analysis params travel with their artefacts (manifest.json, calibration.json)
    sections = {k: v for k, v in to_plain(params.corpus(corpus)).items()
                if k not in ("report", "executor", "experiment", "analysis")}
    plain_params = public_params(json.loads(json.dumps({
        "seed": params.seed, "corpus": sections,
        "models": {n: to_plain(params.model(n)) for n in models}}, default=str)))
    write_json(root / FILE, {
        "format": 1,
        "package": {"name": "lwise-build", "version": __version__},
        "corpus": corpus,
        "git": build or None,
        **({} if build else {"git_reason": "recorded by `lwise-build publish` (the commit of the published build)"}),
        "dvc_lock": dvc_lock_hashes(corpus),
        "params": plain_params,
        "models": {n: {"arch": m["arch"], "sha256": m["sha256"],  # built_with: what a rebuild must match
                       **({"built_with": m["built_with"]} if m.get("built_with") else {})} for n, m in models.items()},
        "libraries": library_versions(),
        "configs": {c.name: {"kind": c.kind, "rows": c.rows, "files": c.files} for c in configs},
        **({"artefacts": artefacts} if artefacts else {}),
        "citation": meta.plain(),
        "files": files,
        "content_sha256": json_digest({k: v["sha256"] for k, v in files.items()}),
        "data_sha256": data_digest(files),
    })


def public_params(plain: dict[str, Any]) -> dict[str, Any]:
    """The params as published: the source and checkpoints without the building machine's
    folders (``imagefolder:/home/me/moths`` -> ``imagefolder:moths``)."""
    ingest = plain["corpus"].get("ingest") or {}
    if "source" in ingest:
        ingest["source"] = public_source(ingest["source"])
    for model in plain["models"].values():
        if model.get("checkpoint"):
            model["checkpoint"] = public_path(model["checkpoint"])
    return plain


def published(prov: dict[str, Any], git: dict[str, Any]) -> dict[str, Any]:
    """The provenance as published: the git state of the project now and, when the export set no
    release date, the commit's date as the citation date. Every other file is unchanged."""
    out = {k: v for k, v in prov.items() if k != "git_reason"}
    out["git"] = git or None
    if not git:
        out["git_reason"] = "the project is not a git repository"
    citation = dict(out.get("citation") or {})
    if not citation.get("date") and git.get("date"):
        citation["date"] = git["date"]
    out["citation"] = citation
    return out


def read_provenance(folder: Path) -> dict[str, Any]:
    """The provenance of an exported (or pulled) folder; missing or broken is a one-line error."""
    path = Path(folder) / FILE
    if not path.is_file():
        raise UserError(f"{folder}: no provenance.json here; export it first (lwise-build export <corpus>)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None
