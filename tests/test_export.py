"""Export stage: the Hub folder's configs, card, citation files and provenance, from a tiny build."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from datasets import Image, load_dataset
from support.hub_tiny import CORPUS, make_tiny_build, tiny_params

from lwise_build.config.schema import to_plain
from lwise_build.errors import UserError
from lwise_build.hub import card, pull
from lwise_build.hub.citation import validate_cff
from lwise_build.hub.configs import write_default
from lwise_build.hub.provenance import data_digest, git_state
from lwise_build.io.digests import file_digest
from lwise_build.io.tables import read_table
from lwise_build.stages.export.stage import Export

CONFIGS = {"default", "enhanced-0.5", "pairs-0.5", "curriculum-lwise", "curriculum-control", "metamers"}


@pytest.fixture
def built(tiny_images, data_root: Path) -> Path:
    """The tiny build exported once; returns data/toy/hub."""
    make_tiny_build(data_root)
    return Export(tiny_params(), CORPUS).run()


def _header(folder: Path) -> dict:
    text = (folder / "README.md").read_text()
    return yaml.safe_load(text.split("---\n")[1])


def _load(folder: Path, config: str, tmp_path: Path):
    return load_dataset(str(folder), config, cache_dir=str(tmp_path / "hf-check"))


def test_folder_layout_card_header_and_no_script(built: Path) -> None:
    head = _header(built)
    assert {c["config_name"] for c in head["configs"]} == CONFIGS
    assert not list(built.rglob("*.py"))
    for cfg in head["configs"]:
        for entry in cfg["data_files"]:
            assert re.fullmatch(r"\w+(\.\w+)*", entry["split"])
            assert list(built.glob(entry["path"])), entry["path"]
    assert {s["split"] for s in head["configs"][0]["data_files"]} == {"train", "validation", "test"}
    assert head["configs"][0].get("default") is True
    assert head["pretty_name"] and head["license"] == "cc-by-4.0" and head["version"] == "0.1.0"
    assert head["task_categories"] == ["image-classification"] and head["size_categories"] == ["n<1K"]
    info = {i["config_name"]: i for i in head["dataset_info"]}
    label = next(f for f in info["curriculum-lwise"]["features"] if f["name"] == "label")
    assert label["dtype"]["class_label"]["names"] == {"0": "bar", "1": "dot", "2": "ring"}
    shards = [p for p in built.rglob("*.parquet")]
    assert shards and all(re.fullmatch(r"\w+-\d{5}-of-\d{5}\.parquet", p.name) for p in shards)


def test_card_body_explains_configs_models_and_citations(built: Path) -> None:
    text = (built / "README.md").read_text()
    for needle in ("### `curriculum-lwise`", "`robust_difficulty`", "1" * 64, "Budgets: 0.5",
                   "step size 0.5", "| 1 | train | 1 | easiest 50% | 0.5 | True |", "schedule `fast`",
                   'load_dataset("org/toy", "curriculum-lwise", revision="v0.1.0")',
                   "lwise-build pull org/toy --version 0.1.0", "@misc{toy_v0_1_0",
                   "talbot2025lwise", "madry2018towards", "10.1038/s41593-023-01442-0", "jang2024blur"):
        assert needle in text, needle
    assert "![score/difficulty hist](figures/score/difficulty_hist.png)" in text
    assert (built / "figures" / "enhance" / "grid.png").is_file()
    assert not (built / "figures" / "train-toy-robust.csv").exists()


def test_citation_cff_and_provenance(built: Path) -> None:
    cff = yaml.safe_load((built / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "dataset" and cff["version"] == "0.1.0"
    assert str(cff["date-released"]) == "2025-01-02"
    assert cff["url"] == "https://huggingface.co/datasets/org/toy"
    assert cff["authors"] == [{"family-names": "Doe", "given-names": "Jane"}, {"name": "ACME Lab"}]
    assert "doi" not in cff
    prov = json.loads((built / "provenance.json").read_text())
    files = {p.relative_to(built).as_posix() for p in built.rglob("*") if p.is_file()} - {"provenance.json"}
    assert set(prov["files"]) == files
    for rel, entry in prov["files"].items():
        assert file_digest(built / rel) == entry["sha256"]
    assert prov["models"]["toy-robust"]["sha256"] == "1" * 64
    assert prov["package"]["name"] == "lwise-build"
    assert set(prov["libraries"]) >= {"torch", "datasets", "numpy", "pillow", "pyarrow"}
    assert prov["params"]["corpus"]["export"]["repo_id"] == "org/toy"
    assert prov["configs"]["curriculum-lwise"]["rows"] == {"train": 12, "test": 6}
    assert prov["citation"]["methods"] == ["lwise", "madry2018", "feather2023", "jang2024"]


def test_citation_cff_is_valid_cff_1_2_with_the_content_hash(built: Path) -> None:
    text = (built / "CITATION.cff").read_text()
    validate_cff(text)
    cff = yaml.safe_load(text)
    prov = json.loads((built / "provenance.json").read_text())
    assert cff["identifiers"][0]["value"] == f"sha256:{prov['data_sha256']}"
    assert f"data sha256 {prov['data_sha256']}" in (built / "README.md").read_text()
    with pytest.raises(UserError, match=r"not valid CFF 1.2.0 at doi: 'not-a-doi' does not match"):
        validate_cff(text + "doi: not-a-doi\n")
    with pytest.raises(UserError, match=r"at authors/0: .* is not valid"):
        validate_cff(text.replace("family-names: Doe", "family: Doe"))


def test_the_content_hash_ignores_the_documents_and_follows_the_data(built: Path) -> None:
    prov = json.loads((built / "provenance.json").read_text())
    files = dict(prov["files"])
    files["README.md"] = {"sha256": "0" * 64}
    assert data_digest(files) == prov["data_sha256"]
    files["data/default/train-00000-of-00001.parquet"] = {"sha256": "0" * 64}
    assert data_digest(files) != prov["data_sha256"]


def test_doi_reaches_cff_and_bibtex(tiny_images, data_root: Path) -> None:
    make_tiny_build(data_root)
    folder = Export(tiny_params(doi="10.5281/zenodo.1"), CORPUS).run()
    assert yaml.safe_load((folder / "CITATION.cff").read_text())["doi"] == "10.5281/zenodo.1"
    assert "doi = {10.5281/zenodo.1}" in pull.cite(str(folder))
    validate_cff((folder / "CITATION.cff").read_text())
    with pytest.raises(UserError, match=r"export.doi: must be a bare DOI such as 10.5281/zenodo.1234567"):
        tiny_params(doi="https://doi.org/10.5281/zenodo.1")


def test_configs_load_with_features_and_rows(built: Path, tiny_images, tmp_path: Path) -> None:
    ds = _load(built, "default", tmp_path)
    assert {s: ds[s].num_rows for s in ds} == {"train": 36, "validation": 12, "test": 12}
    assert ds["train"].features["label"].names == ["bar", "dot", "ring"]
    assert isinstance(ds["train"].features["image"], Image)
    assert "robust_difficulty" in ds["train"].column_names and "blur_margin" in ds["train"].column_names
    mm = _load(built, "metamers", tmp_path)["train"]
    assert mm.num_rows == 6 and {"metamer", "reference", "judge_toy_blur_pred"} <= set(mm.column_names)
    first = mm.cast_column("reference", Image(decode=False))[0]
    natural = {r["id"]: r["image"]["bytes"] for r in read_table(tiny_images["root"] / CORPUS / "images").to_pylist()}
    assert first["reference"]["bytes"] == natural[first["reference_id"]]
    assert first["reference"]["path"] is None


def test_curriculum_rows_in_order_with_the_image_as_shown(built: Path, data_root: Path, tmp_path: Path) -> None:
    ds = _load(built, "curriculum-lwise", tmp_path)
    by_split = {s: ds[s].cast_column("image", Image(decode=False)).to_list() for s in ds}
    for split_rows in by_split.values():
        assert [(r["sequence"], r["trial"]) for r in split_rows] == sorted((r["sequence"], r["trial"]) for r in split_rows)
    rows = [r for split_rows in by_split.values() for r in split_rows]
    natural = {r["id"]: r["image"]["bytes"] for r in read_table(data_root / CORPUS / "images").to_pylist()}
    enhanced = {r["id"]: r["image"]["bytes"] for r in read_table(data_root / CORPUS / "enhanced" / "eps=0.5").to_pylist()}
    assert {r["budget"] for r in rows} == {0.0, 0.5}
    for r in rows:
        assert r["image"]["bytes"] == (enhanced if r["budget"] else natural)[r["id"]]
        assert r["image"]["path"] is None


def test_curriculum_test_phase_trials_are_the_test_split(built: Path, tmp_path: Path) -> None:
    ds = _load(built, "curriculum-lwise", tmp_path)
    assert set(ds) == {"train", "test"}
    assert set(ds["train"]["phase"]) == {"train"} and set(ds["test"]["phase"]) == {"test"}
    assert (ds["train"].num_rows, ds["test"].num_rows) == (12, 6)
    whole = sorted((r["sequence"], r["trial"]) for s in ds for r in ds[s].remove_columns("image").to_list())
    assert whole == [(seq, t) for seq in range(2) for t in range(9)]  # both splits are the whole sequence


def test_pairs_rows_hold_the_default_and_enhanced_images_of_their_id(built: Path, tmp_path: Path) -> None:
    pairs = _load(built, "pairs-0.5", tmp_path)
    enhanced = _load(built, "enhanced-0.5", tmp_path)
    assert {s: pairs[s].num_rows for s in pairs} == {s: enhanced[s].num_rows for s in enhanced} == {"train": 36, "test": 12}
    default = _load(built, "default", tmp_path)
    natural = {r["id"]: r["image"]["bytes"] for s in default for r in default[s].cast_column("image", Image(decode=False))}
    shown = {r["id"]: r for s in enhanced for r in enhanced[s].cast_column("image", Image(decode=False))}
    assert isinstance(pairs["train"].features["original"], Image) and isinstance(pairs["train"].features["enhanced"], Image)
    for split in pairs:
        rows = pairs[split].cast_column("original", Image(decode=False)).cast_column("enhanced", Image(decode=False))
        for r in rows:
            assert r["original"]["bytes"] == natural[r["id"]] and r["original"]["path"] is None
            assert r["enhanced"]["bytes"] == shown[r["id"]]["image"]["bytes"] != r["original"]["bytes"]
            same = ("label", "split", "budget", "gt_logit_before", "gt_logit_after", "l2", "linf")
            assert {k: r[k] for k in same} == {k: shown[r["id"]][k] for k in same} and r["split"] == split


def test_pairs_follow_export_pairs(tiny_images, data_root: Path) -> None:
    make_tiny_build(data_root, metamers=False)
    folder = Export(tiny_params(pairs=[]), CORPUS).run()
    assert "pairs-0.5" not in {c["config_name"] for c in _header(folder)["configs"]}
    with pytest.raises(UserError, match=r"export.pairs: budget 2 has no enhanced/eps=2 table \(built: 0.5\)"):
        Export(tiny_params(pairs=[2]), CORPUS).run()


def test_missing_optional_inputs_omit_their_configs(tiny_images, data_root: Path) -> None:
    make_tiny_build(data_root, metamers=False, enhanced=False)
    folder = Export(tiny_params(), CORPUS).run()
    assert {c["config_name"] for c in _header(folder)["configs"]} == {"default", "curriculum-lwise", "curriculum-control"}
    prov = json.loads((folder / "provenance.json").read_text())
    assert "feather2023" not in prov["citation"]["methods"]
    assert "### Metamers" not in (folder / "README.md").read_text()


def test_export_is_byte_identical_when_rerun(built: Path) -> None:
    first = {p.relative_to(built).as_posix(): p.read_bytes() for p in built.rglob("*") if p.is_file()}
    again = Export(tiny_params(), CORPUS).run()
    second = {p.relative_to(again).as_posix(): p.read_bytes() for p in again.rglob("*") if p.is_file()}
    assert first == second


def test_a_config_that_does_not_load_fails_and_keeps_the_old_folder(built: Path, monkeypatch) -> None:
    before = (built / "README.md").read_bytes()
    real = card.header

    def broken(ctx):
        head = real(ctx)
        head["configs"][1]["data_files"][0]["path"] = "data/nowhere/*.parquet"
        return head

    monkeypatch.setattr(card, "header", broken)
    with pytest.raises(UserError, match="config 'enhanced-0.5' does not load"):
        Export(tiny_params(), CORPUS).run()
    assert (built / "README.md").read_bytes() == before


def test_shards_respect_the_size_limit(tiny_images, data_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "sharded"
    info = write_default(data_root / CORPUS / "images", None, root, max_bytes=4_000)
    names = sorted(p.name for p in (root / "data" / "default").glob("train-*.parquet"))
    assert len(names) > 1 and names[-1].endswith(f"-of-{len(names):05d}.parquet")
    assert sum(pq.read_metadata(root / f).num_rows for f in info.files["train"]) == 36


def test_curriculum_budget_without_enhanced_table_is_one_line_error(tiny_images, data_root: Path) -> None:
    make_tiny_build(data_root, metamers=False)
    for shard in (data_root / CORPUS / "enhanced" / "eps=0.5").glob("*.parquet"):
        shard.unlink()
    with pytest.raises(UserError, match=r"budget 0.5, but enhanced/eps=0.5 was not built"):
        Export(tiny_params(), CORPUS).run()


def test_no_images_table_is_one_line_error(data_root: Path) -> None:
    with pytest.raises(UserError, match="no images table; run `lwise-build ingest toy`"):
        Export(tiny_params(), CORPUS).run()


def test_cite_folder_and_corpus(built: Path, tmp_path: Path, monkeypatch) -> None:
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(json.loads(json.dumps(to_plain(tiny_params()), default=str))))
    bib = pull.cite(CORPUS, params_path=str(params_file))
    assert bib == pull.cite(str(built))
    assert bib.startswith("@misc{toy_v0_1_0,") and "version = {0.1.0}" in bib and "content sha256" in bib
    assert "@article{feather2023metamers," in bib
    cff = yaml.safe_load(pull.cite(str(built), fmt="cff"))
    assert cff["title"] == "toy (lwise-build)" and "commit" not in cff
    with pytest.raises(UserError, match="corpus 'nope' is not in params"):
        pull.cite("nope", params_path=str(params_file))


def test_git_state_ignores_dvc_bookkeeping_but_not_code(tmp_path: Path, monkeypatch) -> None:
    import subprocess

    ident = ["-c", "user.name=t", "-c", "user.email=t@example.org"]
    monkeypatch.chdir(tmp_path)
    subprocess.run(["git", "init", "-q"], check=True)
    (tmp_path / "params.yaml").write_text("seed: 0\n")
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\n")
    subprocess.run(["git", *ident, "add", "-A"], check=True)
    subprocess.run(["git", *ident, "commit", "-q", "-m", "x"], check=True)
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")
    (tmp_path / "data" / "toy").mkdir(parents=True)
    (tmp_path / "data" / "toy" / ".gitignore").write_text("/images\n")
    state = git_state()
    assert len(state["commit"]) == 40 and state["dirty"] is False and re.fullmatch(r"\d{4}-\d{2}-\d{2}", state["date"])
    (tmp_path / "params.yaml").write_text("seed: 1\n")
    assert git_state()["dirty"] is True
