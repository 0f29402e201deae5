"""The ``export.datasheet`` params: what only a dataset's authors know, for its datasheet.

The card's datasheet ("Datasheets for Datasets", Gebru et al.) and ``croissant.json``'s
responsible-AI fields are filled from the build; these are the parts the build cannot know (why
the data was made, who paid, the ethics review, who answers questions). For the builtin sources
the source's origin, licence and personal-data statement are known (:data:`KNOWN_SOURCES`).
"""

from __future__ import annotations

from dataclasses import dataclass

from .schema import param


@dataclass(frozen=True)
class SourceFacts:
    """What is known about a source corpus: where it comes from, its licence, personal data."""

    description: str | None
    license: str | None
    personal_data: str | None
    url: str | None = None


#: Builtin sources whose origin the package knows (``ingest.source`` -> facts).
KNOWN_SOURCES = {
    "builtin:digits": SourceFacts(
        description="scikit-learn's bundled copy of the test set of the UCI Machine Learning Repository's "
                    "\"Optical Recognition of Handwritten Digits\" (E. Alpaydin and C. Kaynak, 1998): 1,797 "
                    "handwritten digits 0-9 written on a preprinted form by 13 people, normalised to 32x32 "
                    "bitmaps with NIST's preprocessing programs and reduced to 8x8 blocks of 17 grey levels "
                    "(0-16), which ingest scales to 0-255 and resizes to the corpus's image size",
        license="CC BY 4.0 (UCI Machine Learning Repository, doi:10.24432/C50P49); scikit-learn ships the copy "
                "under its BSD-3-Clause licence",
        personal_data="none: 8x8 images of single handwritten digits; the writers are not identified and "
                      "no other information about them is included",
        url="https://doi.org/10.24432/C50P49",
    ),
}


@dataclass(frozen=True)
class DatasheetParams:
    """The datasheet's parts only the authors can write (the card marks each one left unset)."""

    motivation: str | None = param(
        None, doc="why the dataset was made: the study or question this version serves (datasheet: Motivation)")
    funding: str | None = param(None, doc="who funded the work, with grant numbers (datasheet: Motivation)")
    ethics_review: str | None = param(
        None, doc="the ethics review behind the work (board and protocol number), or why none was needed "
                  "(datasheet: Collection process)")
    source_description: str | None = param(
        None, doc="where the source images come from: who made or collected them, when and how (known for "
                  "builtin sources)")
    source_license: str | None = param(
        None, doc="the source images' licence or terms of use (known for builtin sources)")
    personal_data: str | None = param(
        None, doc="whether the images show or identify people and how that was handled (known for builtin "
                  "sources)")
    contact: str | None = param(
        None, doc="who maintains the dataset and how to reach them (datasheet: Maintenance)")


#: The datasheet keys always left to the authors; the source keys only when the source is not known.
AUTHOR_KEYS = ("motivation", "funding", "ethics_review", "contact")
SOURCE_KEYS = ("source_description", "source_license", "personal_data")


def source_facts(source: str, sheet: DatasheetParams) -> SourceFacts:
    """The source's facts: the authors' words where given, else the package's for a builtin source
    (None where neither knows)."""
    known = KNOWN_SOURCES.get(source) or SourceFacts(None, None, None)
    return SourceFacts(description=sheet.source_description or known.description,
                       license=sheet.source_license or known.license,
                       personal_data=sheet.personal_data or known.personal_data, url=known.url)


def unwritten(source: str, sheet: DatasheetParams, authors: tuple[str, ...] | list[str]) -> list[str]:
    """The ``export`` keys (``authors``, ``datasheet.<key>``) the authors have not filled in yet."""
    keys = [] if authors else ["authors"]
    keys += [f"datasheet.{k}" for k in AUTHOR_KEYS if not getattr(sheet, k)]
    if source not in KNOWN_SOURCES:
        keys += [f"datasheet.{k}" for k in SOURCE_KEYS if not getattr(sheet, k)]
    return keys
