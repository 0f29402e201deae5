"""docs/params.md is generated from the schema and committed: it fails here when they differ."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from click.testing import CliRunner

from lwise_build.cli import cli
from lwise_build.config import params as P
from lwise_build.config.reference import params_reference

ROOT = Path(__file__).resolve().parents[1]


def test_docs_params_md_is_the_generated_reference():
    committed = (ROOT / "docs" / "params.md").read_text(encoding="utf-8")
    assert committed == params_reference(), \
        "docs/params.md is out of date: run `lwise-build params --reference > docs/params.md`"


def test_every_key_has_a_meaning():
    classes = [c for c in vars(P).values() if isinstance(c, type) and dataclasses.is_dataclass(c)]
    missing = [f"{c.__name__}.{f.name}" for c in classes for f in dataclasses.fields(c) if not f.metadata.get("doc")]
    assert missing == [], "give these fields a doc= in config/params.py"


def test_reference_lists_nested_sections_with_types_and_defaults():
    text = params_reference()
    for heading in ("## `models.<model>.train.adversarial`", "## `corpora.<corpus>.ingest.splits`",
                    "## `corpora.<corpus>.curricula.<name>.blocks[]`"):
        assert heading in text
    assert "| `image_size` | integer | `224` |" in text
    assert "| `source` | string | required |" in text
    assert "| `norm` | l2 \\| linf | `\"l2\"` |" in text


def test_params_command_prints_reference_and_resolved_params(tmp_path, monkeypatch):
    runner = CliRunner()
    assert runner.invoke(cli, ["params", "--reference"]).output == params_reference()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("corpora:\n  c:\n    ingest: {source: builtin:digits}\n")
    out = runner.invoke(cli, ["params"]).output
    assert "image_size: 224" in out and "max_bad_fraction: 0.01" in out


def test_models_command_lists_layers_and_inputs():
    out = CliRunner().invoke(cli, ["models"]).output
    assert "smallcnn-tiny\n  layers:   block1, block2, avgpool, fc" in out
    assert "vit_b_16" in out and "exactly 224 px" in out and "timm:<name>" in out
