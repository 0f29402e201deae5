"""Typed params: every mistake is one line naming the key path; the default file validates."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lwise_build.config.load import load_params, parse_params
from lwise_build.config.schema import to_plain
from lwise_build.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


def minimal(**corpus_extra) -> dict:
    return {
        "models": {"m": {"arch": "smallcnn", "corpus": "c", "checkpoint": "w.pt"}},
        "corpora": {"c": {"ingest": {"source": "builtin:digits", **corpus_extra}}},
    }


def error_of(data: dict) -> str:
    with pytest.raises(UserError) as exc:
        parse_params(data)
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_default_params_validate_and_are_frozen():
    p = load_params(ROOT / "params.yaml")
    assert "digits" in p.corpora and "digits-robust" in p.models
    with pytest.raises(AttributeError):
        p.seed = 3  # type: ignore[misc]
    assert to_plain(parse_params(to_plain(p))) == to_plain(p)


@pytest.mark.parametrize("recipe", sorted((ROOT / "recipes").glob("*.yaml")), ids=lambda p: p.stem)
def test_recipes_validate(recipe):
    """Each recipe loads (load_params raises a UserError on any problem) and names a corpus."""
    assert load_params(recipe).corpora


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ({"image_size": -3}, "corpora.c.ingest.image_size: must be positive, got -3"),
        ({"image_size": "big"}, "corpora.c.ingest.image_size: must be an integer, got 'big'"),
        ({"image_size": True}, "corpora.c.ingest.image_size: must be an integer, got True"),
        ({"imag_size": 3}, "corpora.c.ingest.imag_size: unknown key (did you mean 'image_size'?)"),
        ({"source": "ftp:x"}, "corpora.c.ingest.source: must be one of builtin:..."),
        ({"max_bad_fraction": 2}, "corpora.c.ingest.max_bad_fraction: must be between 0 and 1, got 2"),
        ({"splits": {"train": 0.5, "validation": 0.1, "test": 0.1}}, "must sum to 1"),
        ({"grayscale": "yes"}, "corpora.c.ingest.grayscale: must be true or false, got 'yes'"),
    ],
)
def test_ingest_errors_name_the_key(patch, expected):
    assert expected.rstrip(".") in error_of(minimal(**patch))


def test_unknown_top_level_key_and_missing_required():
    assert "devcie: unknown key (did you mean 'device'?)" in error_of({**minimal(), "devcie": "cpu"})
    data = minimal()
    del data["corpora"]["c"]["ingest"]["source"]
    assert error_of(data) == "corpora.c.ingest.source: required key is missing"


def test_references_are_checked():
    data = minimal()
    data["corpora"]["c"]["score"] = {"models": {"robust": "nope"}}
    assert "corpora.c.score.models.robust: unknown model 'nope'" in error_of(data)
    data = minimal()
    data["corpora"]["c"]["enhance"] = {"model": "m", "budgets": [-1]}
    assert "corpora.c.enhance.budgets: must be positive (each value), got [-1]" in error_of(data)
    data = minimal()
    data["models"]["m"]["corpus"] = "other"
    assert "models.m.corpus: unknown corpus 'other'" in error_of(data)


def test_curriculum_budget_must_be_built():
    data = minimal()
    data["corpora"]["c"]["score"] = {"models": {"robust": "m"}}
    data["corpora"]["c"]["enhance"] = {"model": "m", "budgets": [1, 2]}
    data["corpora"]["c"]["curricula"] = {"x": {"preset": "lwise", "budgets": [8, 4, 2, 1, 2, 1]}}
    msg = error_of(data)
    assert "corpora.c.curricula.x: block 1 uses budget 8" in msg and "enhance.budgets" in msg


def test_bad_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("corpora: [unclosed\n")
    with pytest.raises(UserError, match=r"p.yaml: line \d+: not valid YAML"):
        load_params(bad)
    with pytest.raises(UserError, match="params file not found"):
        load_params(tmp_path / "missing.yaml")


def test_model_needs_weights_source(tmp_path):
    data = minimal()
    del data["models"]["m"]["checkpoint"]
    assert "models.m: needs a `checkpoint`, a `train` recipe, or both" in error_of(data)


def test_params_round_trip_through_yaml(tmp_path):
    p = load_params(ROOT / "params.yaml")
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump(to_plain(p)))
    assert to_plain(load_params(f)) == to_plain(p)
