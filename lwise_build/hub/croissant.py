"""``croissant.json``: the Hub folder as Croissant 1.1 metadata with its responsible-AI fields.

One record set per config (whatever configs export wrote), each field typed from the config's
``datasets`` features and read from the config's Parquet files (images from the embedded bytes),
plus a ``labels`` record set of the class names that every ``label`` field references; every
Parquet file is listed with its sha256. The responsible-AI fields (Croissant RAI 1.0) come from
the datasheet (:func:`~lwise_build.hub.datasheet.rai`). Export validates the file with mlcroissant
and reads a record of every record set before the folder replaces the old one.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from datasets import ClassLabel, Image, Value

from ..errors import UserError
from .card import CardContext, column_doc, summary
from .card_text import KIND_TEXT
from .citation import SPDX
from .configs import ConfigInfo
from .datasheet import rai

FILE = "croissant.json"
LABELS = "labels"
CONFORMS_TO = ["http://mlcommons.org/croissant/1.1", "http://mlcommons.org/croissant/RAI/1.0"]
#: The JSON-LD context of Croissant 1.1 (as mlcroissant writes it), with the RAI namespace.
CONTEXT = {
    "@language": "en", "@vocab": "https://schema.org/", "citeAs": "cr:citeAs", "column": "cr:column",
    "conformsTo": "dct:conformsTo", "containedIn": "cr:containedIn", "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/", "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"}, "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty", "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract", "field": "cr:field", "fileProperty": "cr:fileProperty", "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet", "format": "cr:format", "includes": "cr:includes", "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath", "key": "cr:key", "md5": "cr:md5", "parentField": "cr:parentField", "path": "cr:path",
    "recordSet": "cr:recordSet", "references": "cr:references", "regex": "cr:regex", "repeated": "cr:repeated",
    "replace": "cr:replace", "samplingRate": "cr:samplingRate", "sc": "https://schema.org/",
    "separator": "cr:separator", "source": "cr:source", "subField": "cr:subField", "transform": "cr:transform",
}
_NUMBERS = {"bool": "sc:Boolean", "string": "sc:Text", "large_string": "sc:Text"}


def document(ctx: CardContext, hashes: dict[str, dict[str, Any]], data_sha256: str) -> dict[str, Any]:
    """The whole croissant.json for the configs in ``ctx`` (``hashes``: path -> sha256 and size)."""
    meta, e = ctx.meta, ctx.params.corpus(ctx.corpus).export
    names = next(cfg.features["label"].names for cfg in ctx.configs if cfg.name == "default")
    doc: dict[str, Any] = {
        "@context": CONTEXT, "@type": "sc:Dataset", "conformsTo": CONFORMS_TO,
        "name": meta.title, "description": _plain(summary(ctx)), "version": meta.version,
        "license": _license_url(e.license), "citeAs": meta.bibtex(), "keywords": list(e.tags),
        "creator": [_person(a) for a in meta.authors], "identifier": f"sha256:{data_sha256}",
        "isAccessibleForFree": True,
    }
    optional = {"url": meta.url, "datePublished": meta.date, "sameAs": f"https://doi.org/{meta.doi}" if meta.doi else None}
    doc.update({k: v for k, v in optional.items() if v})
    doc |= rai(ctx)
    doc["distribution"] = [entry for cfg in ctx.configs for entry in _files(cfg, hashes)]
    doc["recordSet"] = [_labels(names)] + [_record_set(cfg, lambda col: _plain(column_doc(ctx, col)))
                                           for cfg in ctx.configs]
    return doc


def write(root: Path, doc: dict[str, Any]) -> Path:
    path = root / FILE
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def _plain(text: str) -> str:
    """Markdown as plain text: links as ``text (url)``, no bold or code marks."""
    return re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r"\1 (\2)", text).replace("**", "").replace("`", "")


def _license_url(license_id: str) -> str:
    spdx = SPDX.get(license_id.lower())
    return f"https://spdx.org/licenses/{spdx}.html" if spdx else license_id


def _person(name: str) -> dict[str, str]:
    """"Family, Given" -> a schema.org Person; any other text is an Organization."""
    if "," in name:
        family, given = (s.strip() for s in name.split(",", 1))
        return {"@type": "sc:Person", "name": f"{given} {family}"}
    return {"@type": "sc:Organization", "name": name}


def _fileset(cfg: ConfigInfo) -> str:
    return f"parquet-{cfg.name}"


def _files(cfg: ConfigInfo, hashes: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each Parquet file of ``cfg`` with its sha256, and the file set its record set reads."""
    out = [{"@type": "cr:FileObject", "@id": path, "name": path, "contentUrl": path,
            "encodingFormat": "application/x-parquet", "contentSize": f"{hashes[path]['size']} B",
            "sha256": hashes[path]["sha256"]} for split in cfg.splits() for path in cfg.files[split]]
    out.append({"@type": "cr:FileSet", "@id": _fileset(cfg), "name": _fileset(cfg),
                "description": f"The Parquet files of config {cfg.name} (one or more per split).",
                "encodingFormat": "application/x-parquet", "includes": f"data/{cfg.name}/*.parquet"})
    return out


def _labels(names: list[str]) -> dict[str, Any]:
    """The class names, inline: ``label`` fields hold indices into them."""
    return {"@type": "cr:RecordSet", "@id": LABELS, "name": LABELS, "dataType": "sc:Enumeration",
            "description": "The classes: label in every config is an index into this list.",
            "key": {"@id": f"{LABELS}/index"},
            "field": [{"@type": "cr:Field", "@id": f"{LABELS}/index", "name": "index", "dataType": "sc:Integer"},
                      {"@type": "cr:Field", "@id": f"{LABELS}/name", "name": "name", "dataType": "sc:Text"}],
            "data": [{f"{LABELS}/index": i, f"{LABELS}/name": n} for i, n in enumerate(names)]}


def _record_set(cfg: ConfigInfo, doc: Any) -> dict[str, Any]:
    """One config: a field per column; ``split`` from the file name when the rows have no such column."""
    fields = [_field(cfg, col, feat, doc(col)) for col, feat in cfg.features.items()]
    if "split" not in cfg.features:
        fields.append({"@type": "cr:Field", "@id": f"{cfg.name}/split", "name": "split", "dataType": "sc:Text",
                       "description": "the split (the Parquet file's name)",
                       "source": {"fileSet": {"@id": _fileset(cfg)}, "extract": {"fileProperty": "fullpath"},
                                  "transform": {"regex": rf"^.*data/{re.escape(cfg.name)}/(\w+)-\d{{5}}-of-\d{{5}}\.parquet$"}}})
    rows = ", ".join(f"{s} {cfg.rows[s]}" for s in cfg.splits())
    return {"@type": "cr:RecordSet", "@id": cfg.name, "name": cfg.name,
            "description": f"{_plain(KIND_TEXT[cfg.kind])} Rows per split: {rows}.", "field": fields}


def _field(cfg: ConfigInfo, col: str, feat: Any, description: str) -> dict[str, Any]:
    source: dict[str, Any] = {"fileSet": {"@id": _fileset(cfg)}, "extract": {"column": col}}
    out = {"@type": "cr:Field", "@id": f"{cfg.name}/{col}", "name": col, "description": description}
    if isinstance(feat, Image):
        out["dataType"] = "sc:ImageObject"
        source["transform"] = {"jsonPath": "bytes"}  # Hub Parquet images: a struct of bytes and path
    elif isinstance(feat, ClassLabel):
        out["dataType"] = "sc:Integer"
        out["references"] = {"field": {"@id": f"{LABELS}/index"}}
    elif isinstance(feat, Value) and (feat.dtype in _NUMBERS or re.fullmatch(r"u?int\d+|float\d+", feat.dtype)):
        out["dataType"] = _NUMBERS.get(feat.dtype) or ("sc:Integer" if "int" in feat.dtype else "sc:Float")
    else:
        raise UserError(f"export: croissant.json has no type for column {col!r} of config {cfg.name!r} "
                        f"({feat!r}); report this to lwise-build")
    out["source"] = source
    return out


# ---------------------------------------------------------------- validation -------------------
def validate(path: Path) -> int:
    """Load ``path`` with mlcroissant and read the first record of every record set; returns the
    number of record sets. Any problem is a one-line error naming the record set."""
    import logging
    import warnings

    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # mlcroissant logs its progress; failures raise
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its dependencies' deprecation notices are not the user's
            return _read_each(path)
    finally:
        logging.disable(previous)


def _read_each(path: Path) -> int:
    import mlcroissant as mlc

    try:
        ds = mlc.Dataset(jsonld=str(path))
    except Exception as exc:  # noqa: BLE001 - mlcroissant raises ValidationError and others
        raise UserError(f"export: {path.name} does not validate with mlcroissant: {_first(exc)}") from None
    for rs in ds.metadata.record_sets:
        try:
            next(iter(ds.records(record_set=rs.uuid)), None)
        except Exception as exc:  # noqa: BLE001 - a field that cannot be read
            raise UserError(f"export: {path.name}: record set {rs.name!r} cannot be read with mlcroissant: "
                            f"{_first(exc)}") from None
    return len(ds.metadata.record_sets)


def _first(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
