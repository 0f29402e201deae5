"""Library versions equal the hand-written code they replaced (tests/support/former.py), on random
inputs: Parquet row lookup (pyarrow), the report's tiny-image test (PIL), the card header
(DatasetCardData), cached tags (scan_cache_dir); and why the LR schedule stays a LambdaLR."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import yaml
from datasets import ClassLabel, Features, Image, Value
from huggingface_hub import scan_cache_dir  # noqa: F401 - loaded before a test moves the cache, as in a long run
from support import former

from lwise_build.config.model_params import TrainParams
from lwise_build.hub import card
from lwise_build.hub.configs import ConfigInfo
from lwise_build.hub.pull import cached_tags
from lwise_build.io.images import encode_png
from lwise_build.io.tables import read_rows
from lwise_build.stages.report.stage import small
from lwise_build.stages.train.stage import optimiser


@pytest.mark.parametrize("seed", range(5))
def test_read_rows_equals_the_former_bisect_lookup(tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 900))
    path = tmp_path / "t.parquet"
    table = pa.table({"id": [f"{i:04d}" for i in range(n)], "v": rng.random(n)})
    pq.write_table(table, path, row_group_size=int(rng.integers(1, 300)))
    for k in (1, 5, 40):
        rows = rng.integers(0, n, size=k).tolist()  # any order, repeats allowed
        got = read_rows(path, rows, ["id", "v"])
        assert got.equals(former.read_rows(path, rows, ["id", "v"]))
        assert got["id"].to_pylist() == [f"{r:04d}" for r in rows]
    assert read_rows(path, [], ["id"]).num_rows == 0


def test_small_reads_the_png_width_as_the_header_bytes_did() -> None:
    rng = np.random.default_rng(0)
    for w, h, c in ((16, 16, 0), (95, 3, 3), (96, 200, 0), (300, 17, 3), (1, 1, 3)):
        arr = rng.integers(0, 256, (h, w, c) if c else (h, w), dtype=np.uint8)
        pngs = {"a": encode_png(arr)}
        assert small(pngs) == former.small(pngs) == (w < 96)
    assert small({}) is former.small({}) is False


def _ctx(names: list[str], rng: np.random.Generator, license: str | None) -> SimpleNamespace:
    """What card.header reads of a CardContext, with random configs in the given order."""
    configs = []
    for name in names:
        feats = {"id": Value("string"), "image": Image(), "label": ClassLabel(names=["b", "a", "猫"])}
        if rng.random() < 0.5:
            feats["score"] = Value("float32")
        rows = {s: int(rng.integers(1, 2000)) for s in ("test", "train", "validation") if rng.random() < 0.8} or {"train": 1}
        configs.append(ConfigInfo(name, "default", Features(feats), rows=rows, nbytes=int(rng.integers(0, 10**9))))
    export = SimpleNamespace(license=license, tags=["image-classification", "lwise"])
    return SimpleNamespace(params=SimpleNamespace(corpus=lambda _: SimpleNamespace(export=export)), corpus="toy",
                           meta=SimpleNamespace(title="A toy corpus: " + "x" * 120, version="0.1.0"), configs=configs)


@pytest.mark.parametrize("names", [["default"], ["pairs-0.5"], ["default", "pairs-0.5", "curriculum-lwise", "a"],
                                   ["zeta", "default"]])
def test_card_header_from_dataset_card_data_equals_the_former_one(names: list[str]) -> None:
    rng = np.random.default_rng(len(names))
    for license in ("cc-by-4.0", None):
        ctx = _ctx(names, rng, license)
        got, want = card.header(ctx), former.card_header(ctx)
        assert got == want
        dump = {"sort_keys": False, "allow_unicode": True, "width": 1000}
        assert yaml.safe_dump(got, **dump) == yaml.safe_dump(want, **dump)  # the README bytes


def _cache_repo(cache: Path, repo: str, refs: dict[str, str]) -> None:
    """A Hub cache entry as huggingface_hub writes it: refs files and one snapshot per commit."""
    root = cache / f"datasets--{repo.replace('/', '--')}"
    for ref, sha in refs.items():
        (root / "refs" / ref).parent.mkdir(parents=True, exist_ok=True)
        (root / "refs" / ref).write_text(sha)
        (root / "snapshots" / sha).mkdir(parents=True, exist_ok=True)


def test_cached_tags_from_scan_cache_dir_equal_the_former_layout_reader(tmp_path: Path, monkeypatch) -> None:
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    assert cached_tags("org/toy") == former.cached_tags(cache, "org/toy") == {}  # no cache at all
    _cache_repo(cache, "org/toy", {"main": "a" * 40, "v0.1.0": "a" * 40, "v0.2.0": "b" * 40, "refs/pr/1": "c" * 40})
    _cache_repo(cache, "org/other", {"v9.0.0": "d" * 40})
    (cache / "models--org--toy" / "snapshots").mkdir(parents=True)  # a model of the same name
    want = {"v0.1.0": "a" * 40, "v0.2.0": "b" * 40}
    assert cached_tags("org/toy") == former.cached_tags(cache, "org/toy") == want
    assert cached_tags("org/missing") == former.cached_tags(cache, "org/missing") == {}


def _rates(opt: torch.optim.Optimizer, sched, total: int) -> list[float]:
    """The learning rate of every step of a run of ``total`` steps."""
    out = []
    for _ in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def _lrs(scheduler_for, total: int, lr: float) -> list[float]:
    """Per-step rates of a torch scheduler built on a one-parameter SGD."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    return _rates(opt, scheduler_for(opt), total)


def _train_lrs(tp: TrainParams, total: int) -> list[float]:
    """Per-step rates under the train stage's own optimiser and schedule."""
    return _rates(*optimiser(torch.nn.Linear(1, 1), tp, total), total)


@pytest.mark.parametrize("schedule", ["cosine", "step", "constant"])
def test_lr_schedule_is_the_former_factor_bit_for_bit(schedule: str) -> None:
    """The train stage's schedule gives exactly the former per-step rates (so trained weights keep
    their bytes). torch's CosineAnnealingLR and MultiStepLR do not: they update the rate
    recursively (lr * 0.1 * 0.1 is not lr * 0.1**2; the cosine ratio differs in the last bits)."""
    for total in (1, 7, 100, 937):
        for lr in (0.1, 0.05, 1e-3, 0.3):
            tp = TrainParams(schedule=schedule, lr=lr, optimizer="sgd")
            want = _lrs(lambda opt, total=total: torch.optim.lr_scheduler.LambdaLR(opt, former.lr_factor(schedule, total)),
                        total, lr)
            assert _train_lrs(tp, total) == want


def test_builtin_schedulers_are_not_bit_identical_to_the_former_factor() -> None:
    """Why train keeps its LambdaLR: the built-in schedulers move some rates in the last bits."""
    total, lr = 937, 0.3
    cosine = _lrs(lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total), total, lr)
    milestones = [math.ceil(total * 0.5), math.ceil(total * 0.75)]
    step = _lrs(lambda opt: torch.optim.lr_scheduler.MultiStepLR(opt, milestones, gamma=0.1), total, lr)
    want = {s: _lrs(lambda opt, s=s: torch.optim.lr_scheduler.LambdaLR(opt, former.lr_factor(s, total)), total, lr)
            for s in ("cosine", "step")}
    assert cosine != want["cosine"] and np.allclose(cosine, want["cosine"], rtol=1e-12, atol=0)
    assert step != want["step"] and np.allclose(step, want["step"], rtol=1e-12, atol=0)
