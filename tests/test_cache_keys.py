"""Unit cache keys cover every resolved param that changes a cached result (stages/keys.py).

For score, enhance and metamers, every leaf of the stage's resolved params (what ``resolve``
writes for it) is perturbed: a build on a warm cache must equal a cold build with the perturbed
params, so a param that changes results but is missing from the key (stale results shipped
silently) fails here. Leaves a key declares ``excluded`` must indeed leave the output unchanged.
A key with one field forgotten must be caught by the same check.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from lwise_build.config.load import parse_params
from lwise_build.config.params import Params
from lwise_build.models.classifier import Classifier
from lwise_build.models.registry import create_net
from lwise_build.models.store import save_model
from lwise_build.stages.enhance.stage import Enhance
from lwise_build.stages.ingest.key import KEY as INGEST_KEY
from lwise_build.stages.ingest.stage import Ingest
from lwise_build.stages.keys import CacheKey
from lwise_build.stages.metamers.stage import Metamers
from lwise_build.stages.registry import BY_NAME
from lwise_build.stages.score.stage import Score
from lwise_build.stages.units import UnitStage

CLASSES = ["a", "b", "c"]
SPLITS = ["train", "validation", "test"]
MODEL = {"arch": "smallcnn-tiny", "corpus": "toy", "in_channels": 1, "checkpoint": "unused.pt"}
CORPUS = {
    "score": {"models": {"robust": "guide", "standard": "observer"}, "class_map": {"a": "a"}, "batch_size": 16},
    "enhance": {"model": "guide", "objective": "logit_diverge", "budgets": [0.5, 1.0], "batch_size": 16,
                "observers": ["observer"], "metrics_sample": 2, "grid_images": 2},
    "metamers": {"generators": ["guide"], "layers": {"guide": ["block1"]}, "judges": ["observer"], "per_class": 1,
                 "split": "train", "schedule": "test", "steps": 3, "null_pairs": 6, "batch_size": 16},
    "export": {"stimulus_format": "jpeg"},
}
#: Per stage, each leaf of its resolved params -> (the param to change, its new value): every leaf
#: needs one (a new param without one fails test_every_resolved_param_is_perturbed_and_declared).
MAPPING = {"score_mapping.class_map.a": ("score.class_map.a", "b"),
           "score_mapping.target_column": ("score.target_column", "fine")}
PERTURB: dict[str, dict[str, tuple[str, Any]]] = {
    "score": {"seed": ("seed", 1), "device": ("device", "auto"),
              "score.models.robust": ("score.models.robust", "extra"),
              "score.models.standard": ("score.models.standard", "extra"),
              "score.observers": ("score.observers", ["extra"]),
              "score.target_column": ("score.target_column", "fine"),
              "score.class_map.a": ("score.class_map.a", "b"),
              "score.batch_size": ("score.batch_size", 32),
              "score.heldout_splits": ("score.heldout_splits", ["test"]),
              "score.precision": ("score.precision", "fp32"),
              "score.decode_workers": ("score.decode_workers", 1)},
    "enhance": {"seed": ("seed", 1), "device": ("device", "auto"),
                **{f"enhance.{k}": (f"enhance.{k}", v) for k, v in {
                    "model": "extra", "objective": "logit", "diverge_from": ["a", "b"], "norm": "linf",
                    "step_size": 0.25, "steps": 1, "budgets": [0.5, 2.0], "splits": ["test"], "batch_size": 32,
                    "compare_guides": ["extra"], "observers": ["extra"], "metrics_sample": 1, "grid_images": 1,
                }.items()},
                **MAPPING, "stimuli.format": ("export.stimulus_format", "png"),
                "stimuli.jpeg_quality": ("export.jpeg_quality", 40)},
    "metamers": {"seed": ("seed", 1), "device": ("device", "auto"),
                 **{f"metamers.{k}": (f"metamers.{k}", v) for k, v in {
                     "generators": ["guide", "observer"], "layers.guide": ["block2"], "judges": ["extra"], "per_class": 2,
                     "split": "validation", "schedule": "fast", "steps": 2, "step_size": 0.5, "init_noise": 0.2,
                     "null_split": "validation", "null_pairs": 3, "null_augment": ["hflip"], "fake_relu": True,
                     "batch_size": 32,
                 }.items()},
                 **MAPPING},
}
STAGES: dict[str, type[UnitStage]] = {"score": Score, "enhance": Enhance, "metamers": Metamers}
CASES = [(stage, leaf) for stage, leaves in PERTURB.items() for leaf in leaves]


def plain_params(changes: dict[str, Any] | None = None) -> dict[str, Any]:
    """The test project's params as plain data, with ``changes`` (dotted path -> value) applied."""
    corpus = json.loads(json.dumps(CORPUS))
    corpus["ingest"] = {"source": "manifest:MANIFEST", "image_column": "path", "image_size": 16, "grayscale": True}
    raw = {"seed": 0, "device": "cpu", "corpora": {"toy": corpus}, "models": {n: dict(MODEL) for n in MODELS}}
    for path, value in (changes or {}).items():
        where, *parts = path.split(".")
        node = raw if where in ("seed", "device") else corpus[where]
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        if parts:
            node[parts[-1]] = value
        else:
            raw[where] = value
    return raw


MODELS = ("guide", "observer", "extra")


def params(root: Path, changes: dict[str, Any] | None = None) -> Params:
    raw = plain_params(changes)
    ingest = raw["corpora"]["toy"]["ingest"]
    ingest["source"] = ingest["source"].replace("MANIFEST", str(root / "raw" / "manifest.csv"))
    return parse_params(raw)


def leaves(d: dict[str, Any], prefix: str = "") -> Iterator[str]:
    """Dotted paths of a resolved dict's leaves (a list or an empty mapping is one leaf)."""
    for k, v in d.items():
        if isinstance(v, dict) and v:
            yield from leaves(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}"


def role(key: CacheKey, leaf: str) -> list[str]:
    """Where a key declares a leaf (itself or a path above it): "key", "derived", "excluded"."""
    def covers(path: str) -> bool:
        return leaf == path or leaf.startswith(path + ".")
    return ([r for r, paths in (("key", key.params), ("derived", key.derived), ("excluded", key.excluded))
             for p in paths if covers(p)])


def make_project(root: Path) -> None:
    """A manifest corpus (3 classes x 6 gray images, given splits, a ``fine`` target column) and
    three tiny models, ingested."""
    rng = np.random.default_rng(0)
    lines = ["path,label,split,fine"]
    (root / "raw").mkdir(parents=True)
    for i in range(18):
        label = CLASSES[i % 3]
        Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8) // 2 + 40 * (i % 3)).save(root / "raw" / f"{i}.png")
        lines.append(f"{i}.png,{label},{SPLITS[(i // 3) % 3]},{CLASSES[(i // 3 + i) % 3]}")
    (root / "raw" / "manifest.csv").write_text("\n".join(lines) + "\n")
    for seed, name in enumerate(MODELS):
        torch.manual_seed(seed)
        net, stages = create_net("smallcnn-tiny", len(CLASSES), 1)
        save_model(Classifier(net, stages, [0.3], [0.3], CLASSES, "smallcnn-tiny"), root / "data" / "toy" / "models" / name)
    Ingest(params(root), "toy").run()


def build(cls: type[UnitStage], p: Params, cache: Path, out: Path) -> dict[str, bytes]:
    """The stage's output tables and metrics with the unit cache at ``cache``."""
    import os

    os.environ["LWISE_CACHE"] = str(cache)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    stage = cls(p, "toy")
    stage.prepare()
    stage.write(out)
    files = {str(f.relative_to(out)): f.read_bytes() for f in sorted(out.rglob("*")) if f.is_file()}
    return {**files, "metrics": json.dumps(stage.metrics(), sort_keys=True, default=str).encode()}


@dataclass
class Project:
    root: Path
    base: dict[str, dict[str, bytes]]  # stage -> its output with the base params (warm cache)

    def warm(self, stage: str) -> Path:
        return self.root / "warm" / stage

    def stale(self, stage: str, changes: dict[str, Any], warm: Path | None = None) -> tuple[bool, dict, dict]:
        """Whether a build with ``changes`` on the warm cache differs from a cold one: (differs, warm, cold)."""
        cls, p = STAGES[stage], params(self.root, changes)
        hot = build(cls, p, warm or self.warm(stage), self.root / "out")
        cold_dir = self.root / "cold"
        shutil.rmtree(cold_dir, ignore_errors=True)
        cold = build(cls, p, cold_dir, self.root / "out")
        return hot != cold, hot, cold


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    root = tmp_path_factory.mktemp("keys")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LWISE_DATA", str(root / "data"))
        mp.setenv("LWISE_CACHE", str(root / "cache"))
        make_project(root)
        base = {s: build(cls, params(root), root / "warm" / s, root / "out") for s, cls in STAGES.items()}
        yield Project(root, base)


@pytest.mark.parametrize("stage", [*STAGES, "ingest"])
def test_every_resolved_param_is_perturbed_and_declared(tmp_path: Path, stage: str) -> None:
    key = INGEST_KEY if stage == "ingest" else STAGES[stage].cache_key
    resolved = BY_NAME[stage].resolved(params(tmp_path), "toy")
    found = sorted(leaves(resolved))
    assert {leaf: role(key, leaf) for leaf in found if len(role(key, leaf)) != 1} == {}
    if stage != "ingest":
        assert found == sorted(PERTURB[stage])


@pytest.mark.parametrize(("stage", "leaf"), CASES, ids=[f"{s}:{leaf}" for s, leaf in CASES])
def test_a_perturbed_param_on_a_warm_cache_gives_a_cold_build(project: Project, stage: str, leaf: str) -> None:
    path, value = PERTURB[stage][leaf]
    base = BY_NAME[stage].resolved(params(project.root), "toy")
    moved = BY_NAME[stage].resolved(params(project.root, {path: value}), "toy")
    assert base != moved  # the perturbation reaches the resolved params
    differs, _, cold = project.stale(stage, {path: value})
    assert not differs, f"{stage}: {leaf} changes results but not the cache key"
    if role(STAGES[stage].cache_key, leaf) == ["excluded"]:
        assert cold == project.base[stage], f"{stage}: {leaf} is excluded from the key but changes the output"


@dataclass(frozen=True)
class Forgetful(CacheKey):
    """A key declaration that forgets one param or content field (as a stage author might)."""

    forget: str = ""

    def prefix(self, resolved: Any, **run: Any) -> str:
        run.pop(self.forget, None)
        return super().prefix(resolved, **run)

    def key(self, prefix: str, **unit: Any) -> str:
        unit.pop(self.forget, None)
        return super().key(prefix, **unit)


def forgetting(key: CacheKey, name: str) -> Forgetful:
    return Forgetful(key.version, tuple(p for p in key.params if p != name),
                     tuple(f for f in key.run_fields if f != name), tuple(f for f in key.unit_fields if f != name),
                     key.derived, key.excluded, forget=name)


@pytest.mark.parametrize(("stage", "name", "leaf"), [
    ("score", "target", "score.class_map.a"),
    ("enhance", "enhance.step_size", "enhance.step_size"),
    ("enhance", "diverge", "enhance.diverge_from"),
    ("metamers", "metamers.init_noise", "metamers.init_noise"),
])
def test_a_field_missing_from_a_key_is_caught(project: Project, monkeypatch: pytest.MonkeyPatch, stage: str,
                                              name: str, leaf: str) -> None:
    cls = STAGES[stage]
    assert name in (*cls.cache_key.params, *cls.cache_key.run_fields, *cls.cache_key.unit_fields)
    monkeypatch.setattr(cls, "cache_key", forgetting(cls.cache_key, name))
    warm = project.root / "forgetful" / stage / name
    build(cls, params(project.root), warm, project.root / "out")
    differs, _, _ = project.stale(stage, dict([PERTURB[stage][leaf]]), warm)
    assert differs, f"{stage}: a key without {name} was not caught by perturbing {leaf}"


def test_a_key_declares_each_param_once_and_hashes_exactly_its_fields() -> None:
    with pytest.raises(ValueError, match="seed declared twice"):
        CacheKey(1, params=("seed",), excluded={"seed": "no"})
    key = CacheKey(1, params=("s.x",), run_fields=("model_hash",), unit_fields=("image_id",))
    prefix = key.prefix({"s": {"x": 1, "y": 2}}, model_hash="m")
    assert prefix != key.prefix({"s": {"x": 2, "y": 2}}, model_hash="m")
    assert prefix == key.prefix({"s": {"x": 1, "y": 3}}, model_hash="m")  # y is not declared
    assert key.key(prefix, image_id="i") != key.key(prefix, image_id="j")
    with pytest.raises(TypeError, match="not the declared"):
        key.key(prefix, image_id="i", budget=1.0)
    with pytest.raises(KeyError, match="s.z"):
        replace(key, params=("s.z",)).prefix({"s": {"x": 1}}, model_hash="m")


@pytest.mark.parametrize("stage", list(STAGES))
def test_a_model_s_normalisation_is_part_of_its_key(project: Project, stage: str) -> None:
    """A built model's mean and std live in config.json, outside the weights, yet change every
    forward: with them changed (a re-imported checkpoint, say), a warm cache gives a cold build."""
    cfg = project.root / "data" / "toy" / "models" / "guide" / "config.json"
    before = cfg.read_text()
    try:
        cfg.write_text(json.dumps({**json.loads(before), "mean": [0.6], "std": [0.1]}))
        differs, _, cold = project.stale(stage, {})
        assert not differs, f"{stage}: the guide's normalisation changed results but not the cache key"
        assert cold != project.base[stage]  # the change does reach the output
    finally:
        cfg.write_text(before)
