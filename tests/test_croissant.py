"""croissant.json, the datasheet and CITATION.cff of an exported folder (the tiny build)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.croissant_rows import croissant_records, parquet_records
from support.hub_tiny import CORPUS, make_tiny_build, tiny_params

from lwise_build.config.datasheet import unwritten
from lwise_build.errors import UserError
from lwise_build.hub import croissant
from lwise_build.hub.datasheet import MARK, TITLES
from lwise_build.hub.provenance import data_digest
from lwise_build.io.digests import file_digest
from lwise_build.stages.export.stage import Export

SHEET = {"motivation": "Teach novices digit classes", "funding": "Grant ABC-1", "ethics_review": "IRB 2024-17",
         "contact": "lab@example.org", "source_description": "Scanned by the lab",
         "source_license": "CC0", "personal_data": "none"}


@pytest.fixture
def built(tiny_images, data_root: Path) -> Path:
    make_tiny_build(data_root)
    return Export(tiny_params(), CORPUS).run()


def _doc(folder: Path) -> dict:
    return json.loads((folder / "croissant.json").read_text())


def test_every_record_set_loads_with_mlcroissant_and_equals_the_parquet_rows(built: Path) -> None:
    records = croissant_records(built)
    rows = parquet_records(built)
    assert set(records) == {"labels", *rows}
    for name, expected in rows.items():
        assert records[name] == expected, name
    assert sorted(records["labels"]) == sorted(json.dumps({"index": i, "name": n}, sort_keys=True)
                                               for i, n in enumerate(["bar", "dot", "ring"]))


def test_fields_are_typed_and_files_carry_their_sha256(built: Path) -> None:
    doc = _doc(built)
    prov = json.loads((built / "provenance.json").read_text())
    objects = {d["contentUrl"]: d for d in doc["distribution"] if d["@type"] == "cr:FileObject"}
    parquet = {rel for rel in prov["files"] if rel.endswith(".parquet")}
    assert set(objects) == parquet
    for rel, entry in objects.items():
        assert entry["sha256"] == file_digest(built / rel) and entry["encodingFormat"] == "application/x-parquet"
    fields = {f["@id"]: f for rs in doc["recordSet"] for f in rs["field"]}
    assert fields["pairs-0.5/original"]["dataType"] == fields["pairs-0.5/enhanced"]["dataType"] == "sc:ImageObject"
    assert fields["default/label"]["references"] == {"field": {"@id": "labels/index"}}
    assert fields["default/robust_difficulty"]["dataType"] == "sc:Float"
    assert fields["metamers/passes"]["dataType"] == "sc:Boolean" and fields["metamers/split"]["dataType"] == "sc:Text"
    assert doc["conformsTo"] == croissant.CONFORMS_TO and doc["version"] == "0.1.0"
    assert doc["license"] == "https://spdx.org/licenses/CC-BY-4.0.html" and doc["citeAs"].startswith("@misc{toy_v0_1_0,")
    assert doc["identifier"] == f"sha256:{prov['data_sha256']}" == f"sha256:{data_digest(prov['files'])}"
    assert doc["creator"] == [{"@type": "sc:Person", "name": "Jane Doe"}, {"@type": "sc:Organization", "name": "ACME Lab"}]


def test_responsible_ai_fields_come_from_the_build(built: Path) -> None:
    doc = _doc(built)
    assert "toy-robust" in doc["rai:dataManipulationProtocol"] and "0.5" in doc["rai:dataManipulationProtocol"]
    assert "metamers" in doc["rai:dataManipulationProtocol"]
    assert "builtin:digits" in doc["rai:dataCollection"] and "CC BY 4.0" in doc["rai:dataCollectionRawData"]
    assert any("robust model's difficulty" in t for t in doc["rai:dataLimitations"])
    assert any("not measured in this build" in t for t in doc["rai:dataLimitations"])
    assert doc["rai:personalSensitiveInformation"][0].startswith("images: none")
    assert any("curricula" in u for u in doc["rai:dataUseCases"])
    assert [t.split(":")[0] for t in doc["rai:machineAnnotationTools"]] == ["toy-robust", "toy-blur"]
    assert "to be written by the authors" in doc["rai:dataReleaseMaintenancePlan"]  # no contact given
    assert "**" not in json.dumps(doc) and "`" not in json.dumps(doc)


def test_card_holds_the_seven_datasheet_sections_with_unwritten_parts_marked(built: Path) -> None:
    text = (built / "README.md").read_text()
    sheet = text[text.index("## Datasheet"):text.index("## Figures")]
    assert [line[4:] for line in sheet.splitlines() if line.startswith("### ")] == list(TITLES) == [
        "Motivation", "Composition", "Collection process", "Preprocessing, cleaning and labelling", "Uses",
        "Distribution", "Maintenance"]
    for key in ("motivation", "funding", "ethics_review", "contact"):
        assert f"{MARK} `export.datasheet.{key}`" in sheet
    assert "Created by: Doe, Jane; ACME Lab." in sheet and "60 images of 3 classes" in sheet
    assert "`pairs-<budget>` shows each next to its original" in sheet


def test_datasheet_params_fill_the_card_and_croissant(tiny_images, data_root: Path) -> None:
    make_tiny_build(data_root, metamers=False)
    folder = Export(tiny_params(datasheet=SHEET, date=None), CORPUS).run()
    text = (folder / "README.md").read_text()
    assert MARK not in text and "Teach novices digit classes" in text and "IRB 2024-17" in text
    doc = _doc(folder)
    assert "Scanned by the lab" in doc["rai:dataCollection"] and "lab@example.org" in doc["rai:dataReleaseMaintenancePlan"]
    assert "datePublished" not in doc and "metamers" not in json.dumps(doc["recordSet"])
    assert croissant.validate(folder / "croissant.json") == 1 + 5  # labels + five configs


def test_unwritten_lists_what_only_the_authors_know() -> None:
    params = tiny_params()
    sheet = params.corpus(CORPUS).export.datasheet
    assert unwritten("builtin:digits", sheet, ("Doe, Jane",)) == [
        "datasheet.motivation", "datasheet.funding", "datasheet.ethics_review", "datasheet.contact"]
    assert unwritten("imagefolder:x", sheet, ())[0] == "authors"
    assert "datasheet.source_license" in unwritten("imagefolder:x", sheet, ())
    full = tiny_params(datasheet=SHEET).corpus(CORPUS).export.datasheet
    assert unwritten("imagefolder:x", full, ("Doe, Jane",)) == []


def test_a_record_set_mlcroissant_cannot_read_fails_export_keeping_the_old_folder(built: Path, monkeypatch) -> None:
    before = (built / "croissant.json").read_bytes()
    real = croissant.document

    def broken(*args, **kwargs):
        doc = real(*args, **kwargs)
        field = next(f for rs in doc["recordSet"] if rs["name"] == "metamers" for f in rs["field"])
        field["source"]["extract"]["column"] = "no_such_column"
        return doc

    monkeypatch.setattr(croissant, "document", broken)
    with pytest.raises(UserError, match=r"croissant.json: record set 'metamers' cannot be read with mlcroissant"):
        Export(tiny_params(), CORPUS).run()
    assert (built / "croissant.json").read_bytes() == before


def test_check_warns_about_unwritten_datasheet_parts_and_unbuilt_pairs() -> None:
    from lwise_build.config.checks import params_findings

    found = [f"{f.level}: {f.text}" for f in params_findings(tiny_params())]
    assert ("warning: corpora.toy.export: the datasheet leaves datasheet.motivation, datasheet.funding, "
            "datasheet.ethics_review, datasheet.contact to the authors (the card marks them); set them before "
            "`lwise-build publish`") in found
    assert not [f for f in params_findings(tiny_params(datasheet=SHEET)) if "datasheet" in f.text]
    assert not [f for f in params_findings(tiny_params(repo_id=None)) if "datasheet" in f.text]  # not to publish
    found = [f"{f.level}: {f.text}" for f in params_findings(tiny_params(pairs=[0.5, 3]))]
    assert "error: corpora.toy.export.pairs: budget 3 is not in corpora.toy.enhance.budgets; add it there or " \
           "drop it" in found and not any("budget 0.5" in f for f in found)


def test_released_responses_change_the_personal_data_and_collection_statements() -> None:
    from datasets import ClassLabel, Features, Value

    from lwise_build.hub.card import CardContext
    from lwise_build.hub.citation import DatasetCitation
    from lwise_build.hub.configs import ConfigInfo
    from lwise_build.hub.datasheet import rai, sections

    default = ConfigInfo("default", "default", Features({"label": ClassLabel(names=["a", "b"])}), rows={"train": 4})
    responses = ConfigInfo("responses", "responses", Features({"trial": Value("int32")}), rows={"train": 7})
    ctx = CardContext(params=tiny_params(), corpus=CORPUS, configs=[default, responses], figures=[], models={},
                      meta=DatasetCitation(title="t", version="1.0.0", repo_id=None), build={})
    text = "\n".join(line for _, lines in sections(ctx) for line in lines)
    assert "participants' responses are de-identified" in text and "`responses` holds 7 de-identified trials" in text
    assert "Experiments" in rai(ctx)["rai:dataCollectionType"]
