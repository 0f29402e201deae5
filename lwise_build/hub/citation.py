"""Citations: BibTeX and CFF for one dataset version plus the method papers its build used.

The export stage writes ``CITATION.cff`` and the card's BibTeX from :class:`DatasetCitation`;
``lwise-build cite`` (:func:`~lwise_build.hub.pull.cite`) rebuilds the same text from a folder's
``provenance.json`` and adds the revision SHA when the version came from the Hub.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import Any

import yaml

from ..errors import UserError

HUB_URL = "https://huggingface.co/datasets"
#: The CFF 1.2.0 JSON Schema, vendored (see its NOTICE beside it).
CFF_SCHEMA = "cff-schema-1.2.0.json"


@dataclass(frozen=True)
class Reference:
    """A method paper: enough fields for BibTeX and CFF ``references``."""

    key: str
    kind: str  # inproceedings | article
    title: str
    authors: tuple[str, ...]  # "Family, Given"
    venue: str
    year: int
    doi: str | None = None
    volume: str | None = None
    pages: str | None = None


METHODS: dict[str, Reference] = {
    "lwise": Reference(
        "talbot2025lwise", "inproceedings",
        "L-WISE: Boosting Human Visual Category Learning Through Model-Based Image Selection And Enhancement",
        ("Talbot, Morgan B", "Kreiman, Gabriel", "DiCarlo, James J", "Gaziv, Guy"),
        "International Conference on Learning Representations", 2025,
    ),
    "madry2018": Reference(
        "madry2018towards", "inproceedings", "Towards Deep Learning Models Resistant to Adversarial Attacks",
        ("Madry, Aleksander", "Makelov, Aleksandar", "Schmidt, Ludwig", "Tsipras, Dimitris", "Vladu, Adrian"),
        "International Conference on Learning Representations", 2018,
    ),
    "feather2023": Reference(
        "feather2023metamers", "article",
        "Model metamers reveal divergent invariances between biological and artificial neural networks",
        ("Feather, Jenelle", "Leclerc, Guillaume", "Madry, Aleksander", "McDermott, Josh H"),
        "Nature Neuroscience", 2023, doi="10.1038/s41593-023-01442-0", volume="26", pages="2017--2034",
    ),
    "jang2024": Reference(
        "jang2024blur", "article",
        "Improved modeling of human vision by incorporating robustness to blur in convolutional neural networks",
        ("Jang, Hojin", "Tong, Frank"), "Nature Communications", 2024,
        doi="10.1038/s41467-024-45679-0", volume="15", pages="1989",
    ),
}

#: SPDX identifiers for the Hub's license ids (CFF wants SPDX).
SPDX = {"cc-by-4.0": "CC-BY-4.0", "cc-by-sa-4.0": "CC-BY-SA-4.0", "cc-by-nc-4.0": "CC-BY-NC-4.0",
        "cc0-1.0": "CC0-1.0", "mit": "MIT", "apache-2.0": "Apache-2.0", "odc-by": "ODC-By-1.0",
        "cc-by-nc-sa-4.0": "CC-BY-NC-SA-4.0", "bsd-3-clause": "BSD-3-Clause"}


#: What the version's content hash covers (CITATION.cff's identifier, the card, docs).
DATA_HASH_TEXT = ("content hash of this version: the SHA-256 of json.dumps({path: sha256 of the file}, "
                  "sort_keys=True) over every file except README.md, CITATION.cff, croissant.json and "
                  "provenance.json (provenance.json: data_sha256)")


@dataclass(frozen=True)
class DatasetCitation:
    """What identifies one published dataset version."""

    title: str
    version: str
    repo_id: str | None
    authors: tuple[str, ...] = ()
    license: str | None = None
    date: str | None = None
    doi: str | None = None
    methods: tuple[str, ...] = ("lwise",)
    keywords: tuple[str, ...] = ()
    data_sha256: str | None = None  # the version's content: see provenance.data_digest
    content_sha256: str | None = field(default=None, compare=False)
    revision: str | None = field(default=None, compare=False)

    @property
    def url(self) -> str | None:
        return f"{HUB_URL}/{self.repo_id}" if self.repo_id else None

    def plain(self) -> dict[str, Any]:
        """The fields stored in provenance.json (no revision: it is only known after publishing)."""
        out = asdict(self)
        out.pop("revision")
        out.pop("content_sha256")
        return out

    @classmethod
    def from_provenance(cls, prov: dict[str, Any], revision: str | None = None) -> DatasetCitation:
        data = dict(prov.get("citation") or {})
        if "title" not in data or "version" not in data:
            raise UserError("provenance.json: no citation block; re-export the folder with lwise-build export")
        tuples = {k: tuple(data.get(k) or ()) for k in ("authors", "methods", "keywords")}
        known = {k: data.get(k) for k in ("title", "version", "repo_id", "license", "date", "doi", "data_sha256")}
        return cls(**known, **tuples, content_sha256=prov.get("content_sha256"), revision=revision)

    # ------------------------------------------------------------------ BibTeX
    def bibtex_key(self) -> str:
        name = (self.repo_id or self.title).split("/")[-1]
        return re.sub(r"\W+", "_", f"{name}_v{self.version}").strip("_").lower()

    def bibtex(self) -> str:
        """A ``@misc`` entry for exactly this version (revision and content hash in the note)."""
        note = [f"Version {self.version}"]
        if self.revision:
            note.append(f"revision {self.revision}")
        if self.data_sha256:
            note.append(f"data sha256 {self.data_sha256}")
        if self.content_sha256:
            note.append(f"content sha256 {self.content_sha256}")
        fields = {
            "title": "{" + _tex(f"{self.title} (version {self.version})") + "}",
            "author": " and ".join(_bib_author(a) for a in self.authors) or None,
            "year": self.date[:4] if self.date else None,
            "version": self.version,
            "publisher": "Hugging Face",
            "howpublished": "\\url{" + self.url + "}" if self.url else None,
            "url": self._pinned_url(),
            "doi": self.doi,
            "note": _tex(", ".join(note)),
        }
        return _entry("misc", self.bibtex_key(), fields)

    def _pinned_url(self) -> str | None:
        if not self.url:
            return None
        return f"{self.url}/tree/{self.revision or 'v' + self.version}"

    def bibtex_all(self) -> str:
        """This version's entry followed by every method paper the build used."""
        return "\n\n".join([self.bibtex(), *(reference_bibtex(METHODS[m]) for m in self.methods if m in METHODS)])

    # ------------------------------------------------------------------ CFF
    def cff(self) -> str:
        """``CITATION.cff`` (CFF 1.2.0, type dataset); ``commit`` only when the revision is known."""
        doc: dict[str, Any] = {
            "cff-version": "1.2.0",
            "message": "If you use this dataset, please cite this version and the method papers below.",
            "type": "dataset",
            "title": self.title,
            "version": self.version,
            "authors": [_cff_person(a) for a in self.authors] or [{"name": (self.repo_id or "lwise-build").split("/")[0]}],
        }
        optional = {"date-released": self.date, "doi": self.doi, "url": self.url, "repository": self.url,
                    "commit": self.revision, "license": SPDX.get((self.license or "").lower()),
                    "keywords": list(self.keywords) or None}
        doc.update({k: v for k, v in optional.items() if v})
        if self.data_sha256:
            doc["identifiers"] = [{"type": "other", "value": f"sha256:{self.data_sha256}",
                                   "description": DATA_HASH_TEXT}]
        doc["references"] = [reference_cff(METHODS[m]) for m in self.methods if m in METHODS]
        return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)


def validate_cff(text: str, where: str = "CITATION.cff") -> None:
    """Check CFF text against the CFF 1.2.0 JSON Schema as ``cffconvert --validate`` does (YAML
    timestamps read as strings, formats checked); the schema is vendored: assets/cff-schema-1.2.0.NOTICE.md."""
    import jsonschema

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("tag:yaml.org,2002:timestamp", Loader.construct_yaml_str)
    schema = json.loads(resources.files("lwise_build").joinpath("assets", CFF_SCHEMA).read_text(encoding="utf-8"))
    try:
        jsonschema.validate(yaml.load(text, Loader=Loader), schema, format_checker=jsonschema.FormatChecker())
    except jsonschema.ValidationError as exc:
        at = "/".join(str(p) for p in exc.absolute_path) or "top level"
        raise UserError(f"{where}: not valid CFF 1.2.0 at {at}: {exc.message}") from None


def reference_bibtex(ref: Reference) -> str:
    venue = "booktitle" if ref.kind == "inproceedings" else "journal"
    fields = {"title": "{" + _tex(ref.title) + "}", "author": " and ".join(ref.authors), venue: ref.venue,
              "volume": ref.volume, "pages": ref.pages, "year": str(ref.year), "doi": ref.doi}
    return _entry(ref.kind, ref.key, fields)


def reference_cff(ref: Reference) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "conference-paper" if ref.kind == "inproceedings" else "article",
        "title": ref.title, "authors": [_cff_person(a) for a in ref.authors], "year": ref.year,
    }
    out["conference" if ref.kind == "inproceedings" else "journal"] = (
        {"name": ref.venue} if ref.kind == "inproceedings" else ref.venue
    )
    if ref.volume:
        out["volume"] = ref.volume
    if ref.doi:
        out["doi"] = ref.doi
    return out


def _entry(kind: str, key: str, fields: dict[str, str | None]) -> str:
    body = ",\n".join(f"  {k} = {{{v}}}" if not v.startswith("{") else f"  {k} = {v}"
                      for k, v in fields.items() if v)
    return f"@{kind}{{{key},\n{body}\n}}"


def _tex(text: str) -> str:
    return re.sub(r"([&%$#_])", r"\\\1", text)


def _cff_person(name: str) -> dict[str, str]:
    """"Family, Given" -> a CFF person; anything else is an entity (a lab, a consortium)."""
    if "," in name:
        family, given = (s.strip() for s in name.split(",", 1))
        return {"family-names": family, "given-names": given}
    return {"name": name}


def _bib_author(name: str) -> str:
    """BibTeX author: "Family, Given" as is; an entity in braces so BibTeX keeps it whole."""
    return _tex(name) if "," in name else "{" + _tex(name) + "}"
