"""The train stage on a tiny corpus: outputs, determinism, recipes, imports; PGD and blur pieces."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import save_file

from lwise_build import UserError, load_model
from lwise_build.config.load import load_params
from lwise_build.config.model_params import BlurParams
from lwise_build.models.registry import create_net
from lwise_build.ops.attacks import accuracy, pgd, project
from lwise_build.ops.blur import (
    PRESETS,
    blur_batch,
    distribution,
    draw_sigmas,
    gaussian_kernel,
    kernel_size,
)
from lwise_build.stages.train.stage import Train

TINY = {"arch": "smallcnn-tiny", "corpus": "toy", "in_channels": 1, "mean": [0.2], "std": [0.3]}
RECIPE = {"epochs": 2, "batch_size": 16, "optimizer": "adam", "lr": 0.01, "eval_steps": 2}


def _params(tmp_path: Path, models: dict, seed: int = 0):
    path = tmp_path / "params.yaml"
    data = {"seed": seed, "device": "cpu", "models": models,
            "corpora": {"toy": {"ingest": {"source": "builtin:digits", "image_size": 16, "grayscale": True}}}}
    path.write_text(yaml.safe_dump(data))
    return load_params(path)


def test_train_outputs_and_determinism(tiny_images, tmp_path: Path) -> None:
    recipe = {**RECIPE, "augment": ["crop", "hflip"], "adversarial": {"eps": 0.5, "steps": 1},
              "blur": {"preset": "strong", "reference_size": 32}}
    params = _params(tmp_path, {"m": {**TINY, "train": recipe}})
    root = tiny_images["root"]
    folder = Train(params, "toy", "m").run()
    first = (folder / "model.safetensors").read_bytes()
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "metrics.json", "model.safetensors"]
    metrics = json.loads((root / "toy" / "metrics" / "details" / "train-m.json").read_text())
    assert metrics["epochs"] == 2 and 0 <= metrics["val_accuracy"] <= 1
    assert 0 <= metrics["val_robust_accuracy"] <= 1 and "seconds" not in metrics  # no timings: deterministic
    head = json.loads((root / "toy" / "metrics" / "train-m.json").read_text())
    assert head == {"accuracy": metrics["val_accuracy"], "robust_accuracy": metrics["val_robust_accuracy"]}
    metrics_bytes = (root / "toy" / "metrics" / "train-m.json").read_bytes()
    rows = list(csv.DictReader((root / "toy" / "plots" / "train-m.csv").open()))
    assert list(rows[0]) == ["epoch", "train_loss", "train_accuracy", "val_accuracy", "val_robust_accuracy"]
    assert [r["epoch"] for r in rows] == ["1", "2"] and rows[-1]["val_robust_accuracy"] != ""
    model = load_model(str(folder))
    assert model.classes == tiny_images["classes"] and model.mean.flatten().tolist() == pytest.approx([0.2])
    Train(params, "toy", "m").run()
    assert (folder / "model.safetensors").read_bytes() == first
    assert (root / "toy" / "metrics" / "train-m.json").read_bytes() == metrics_bytes
    other = Train(_params(tmp_path, {"m": {**TINY, "train": recipe}}, seed=1), "toy", "m").run()
    assert (other / "model.safetensors").read_bytes() != first


def test_model_name_resolves_through_params(tiny_images, tmp_path: Path, monkeypatch) -> None:
    params = _params(tmp_path, {"m": {**TINY, "train": {**RECIPE, "epochs": 1}}})
    Train(params, "toy", "m").run()
    monkeypatch.chdir(tmp_path)
    assert load_model("m").num_classes == 3


def test_wrong_corpus_size_or_class_count_is_an_error(tiny_images, tmp_path: Path) -> None:
    params = _params(tmp_path, {"m": {**TINY, "train": RECIPE}})
    with pytest.raises(UserError, match="models.m.corpus is 'toy', not 'other'"):
        Train(params, "other", "m").run()
    params = _params(tmp_path, {"m": {**TINY, "input_size": 32, "train": RECIPE}})
    with pytest.raises(UserError, match="models.m.input_size: 32 but the toy images are 16 px"):
        Train(params, "toy", "m").run()
    params = _params(tmp_path, {"m": {**TINY, "num_classes": 4, "train": RECIPE}})
    with pytest.raises(UserError, match="models.m.num_classes: 4, but it has 3 classes"):
        Train(params, "toy", "m").run()


def test_import_only_and_fine_tune_from_checkpoint(tiny_images, tmp_path: Path) -> None:
    net, _ = create_net("smallcnn-tiny", 5, 1)
    ckpt = tmp_path / "five.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(ckpt))
    models = {"imp": {**TINY, "checkpoint": str(ckpt)}}
    with pytest.raises(UserError, match="head has 5 classes but the model has 3"):
        Train(_params(tmp_path, models), "toy", "imp").run()
    models["ft"] = {**TINY, "checkpoint": str(ckpt), "train": {**RECIPE, "epochs": 1, "fine_tune": True}}
    folder = Train(_params(tmp_path, models), "toy", "ft").run()
    model = load_model(str(folder))
    assert model.num_classes == 3
    # the backbone came from the checkpoint, the head is fresh (3 classes)
    models["imp"] = {**TINY, "checkpoint": str(ckpt), "num_classes": 5}
    Train(_params(tmp_path, models), "toy", "imp").run()
    rows = list(csv.DictReader((tiny_images["root"] / "toy" / "plots" / "train-imp.csv").open()))
    assert [r["epoch"] for r in rows] == ["0"]


def test_pgd_lowers_accuracy_and_respects_eps() -> None:
    torch.manual_seed(0)
    x = torch.rand(64, 1, 8, 8)
    y = (x[:, 0, :4].mean((1, 2)) > x[:, 0, 4:].mean((1, 2))).long()
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2))
    opt = torch.optim.Adam(model.parameters(), 0.05)
    for _ in range(200):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    assert accuracy(model, x, y) > 0.9
    assert accuracy(model, x, y, eps=1.0, steps=10) < 0.5
    model.zero_grad(set_to_none=True)
    gen = torch.Generator().manual_seed(0)
    for norm, eps in (("l2", 0.5), ("linf", 0.05)):
        adv = pgd(model, x, y, eps, 5, norm=norm, generator=gen)
        delta = (adv - x).flatten(1)
        size = delta.norm(dim=1) if norm == "l2" else delta.abs().amax(1)
        assert size.max() <= eps + 1e-5 and adv.min() >= 0 and adv.max() <= 1
    assert all(p.grad is None for p in model.parameters())  # the attack never touches weights
    big = torch.randn(4, 3, 5, 5) * 10
    assert project(big, 2.0, "l2").flatten(1).norm(dim=1).max() <= 2.0 + 1e-5


@pytest.mark.parametrize("preset", ["weak", "strong"])
def test_blur_presets_draw_the_published_sigmas(preset: str) -> None:
    from scipy.stats import chisquare

    n = 20000
    sigmas, probs = PRESETS[preset]
    draws = draw_sigmas(*distribution(preset), n, 1.0, torch.Generator().manual_seed(0))
    counts = [int((draws == s).sum()) for s in sigmas]
    assert sum(counts) == n
    assert chisquare(counts, [p * n for p in probs]).pvalue > 1e-3
    scaled = draw_sigmas(*distribution(preset), 1000, 56 / 224, torch.Generator().manual_seed(0))
    assert set(scaled.unique().tolist()) <= {s * 56 / 224 for s in sigmas}


def test_custom_blur_and_kernels() -> None:
    blur = BlurParams(preset="custom", sigmas=[0.0, 3.0], probs=[0.25, 0.75])
    draws = draw_sigmas(*distribution(blur.preset, blur.sigmas, blur.probs), 4000, 1.0, torch.Generator().manual_seed(0))
    assert abs(float((draws == 3.0).float().mean()) - 0.75) < 0.03
    assert kernel_size(2.0) == 9 and kernel_size(0.5) == 3 and len(gaussian_kernel(2.0)) == 9
    x = torch.zeros(2, 1, 15, 15)
    x[:, :, 7, 7] = 1
    out = blur_batch(x, torch.tensor([0.0, 1.5]))
    assert torch.equal(out[0], x[0]) and float(out[1].sum()) == pytest.approx(1.0, abs=1e-5)
    assert out[1, 0, 7, 7] < 0.2 and float(out[1, 0, 7, 8]) == pytest.approx(float(out[1, 0, 8, 7]), abs=1e-6)


def _imported(tmp_path: Path, class_map: dict | None, seed: int = 0) -> tuple[Path, dict]:
    """A 5-class checkpoint imported as a numbered head ("0".."4"), the corpus mapped onto it."""
    torch.manual_seed(seed)
    net, _ = create_net("smallcnn-tiny", 5, 1)
    ckpt = tmp_path / "five.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(ckpt))
    data = {"seed": 0, "device": "cpu", "models": {"imp": {**TINY, "checkpoint": str(ckpt), "num_classes": 5}},
            "corpora": {"toy": {"ingest": {"source": "builtin:digits", "image_size": 16, "grayscale": True},
                                **({"score": {"class_map": class_map}} if class_map else {})}}}
    return ckpt, data


def _load(tmp_path: Path, data: dict):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_params(path)


def test_imported_model_is_validated_through_the_class_map_once_per_weights_and_split(
        tiny_images, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LWISE_CACHE", str(tmp_path / "cache"))
    _, data = _imported(tmp_path, None)
    Train(_load(tmp_path, data), "toy", "imp").run()  # no map: no validation image is of its classes
    metrics = json.loads((tiny_images["root"] / "toy" / "models" / "imp" / "metrics.json").read_text())
    assert metrics["val_accuracy"] is None and metrics["val_images"] == 0
    _, data = _imported(tmp_path, {"bar": "3", "dot": "0", "ring": "4"})
    stage = Train(_load(tmp_path, data), "toy", "imp")
    stage.run()
    metrics = json.loads((tiny_images["root"] / "toy" / "models" / "imp" / "metrics.json").read_text())
    assert metrics["val_images"] == 12 and metrics["val_accuracy"] is not None and not stage.reused
    calls = []
    monkeypatch.setattr("lwise_build.stages.train.stage.evaluate", lambda *a: calls.append(a) or (0.0, 0.0))
    again = Train(_load(tmp_path, data), "toy", "imp")
    again.run()  # same weights, same validation images: the attack is not run again
    assert again.reused and not calls
    assert json.loads((tiny_images["root"] / "toy" / "models" / "imp" / "metrics.json").read_text()) == metrics
    _, data = _imported(tmp_path, {"bar": "3", "dot": "0", "ring": "4"}, seed=1)  # other weights
    Train(_load(tmp_path, data), "toy", "imp").run()
    assert len(calls) == 1


def test_replacing_a_checkpoint_file_changes_what_train_depends_on(tiny_images, tmp_path: Path, monkeypatch) -> None:
    """The resolved train params (the train stage's DVC dep) carry the checkpoint's sha256, so
    overwriting the file with other weights rebuilds the model and everything built from it."""
    from lwise_build.io.digests import file_digest
    from lwise_build.stages.train.spec import resolved

    monkeypatch.setenv("LWISE_CACHE", str(tmp_path / "cache"))
    ckpt, data = _imported(tmp_path, None, seed=0)
    first = resolved(_load(tmp_path, data), "imp")
    assert first["checkpoint_sha256"] == file_digest(ckpt)
    assert resolved(_load(tmp_path, data), "imp") == first
    _imported(tmp_path, None, seed=1)  # the same path, other weights
    assert resolved(_load(tmp_path, data), "imp")["checkpoint_sha256"] == file_digest(ckpt) != \
        first["checkpoint_sha256"]
