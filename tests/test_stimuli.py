"""Stimuli as the reference made them: logit_diverge over the corpus's classes, and opt-in JPEG-75
curriculum and enhanced images (lossy, measured in metrics/details/enhance.json)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import torch
from datasets import Image, load_dataset
from PIL import Image as PILImage
from support.hub_tiny import CORPUS, make_tiny_build, tiny_params
from support.params import DIGITS_16, toy_models, toy_params
from support.tables import TINY_CLASSES as CLASSES

from lwise_build.io.images import png_to_jpeg, to_tensor
from lwise_build.io.paths import stage_dir
from lwise_build.io.tables import read_table
from lwise_build.models.classifier import Classifier
from lwise_build.models.registry import create_net
from lwise_build.models.store import load_named, save_model
from lwise_build.ops.enhance import enhance
from lwise_build.ops.quantize import surviving_fraction
from lwise_build.stages.enhance.stage import Enhance
from lwise_build.stages.export.stage import Export

WIDE = [*CLASSES, "extra1", "extra2"]


def _params(export: dict | None = None, **enhance_kw):
    section = {"model": "guide", "budgets": [0.5, 2.0], "splits": ["test"], "batch_size": 16, "metrics_sample": 6,
               "grid_images": 2, **enhance_kw}
    return toy_params({"enhance": section, **({"export": export} if export else {})}, ingest=DIGITS_16,
                      models=toy_models("guide"), seed=0, device="cpu")


def _wide_guide(root: Path) -> None:
    torch.manual_seed(3)
    net, stages = create_net("smallcnn-tiny", len(WIDE), 1)
    save_model(Classifier(net, stages, [0.3], [0.3], WIDE, "smallcnn-tiny"), root / "toy" / "models" / "guide")


def _inputs(root: Path) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    t = read_table(stage_dir("toy", "images")).to_pydict()
    rows = [i for i, s in enumerate(t["split"]) if s == "test"]
    x0 = to_tensor([t["image"][i]["bytes"] for i in rows])
    return x0, torch.tensor([t["label"][i] for i in rows]), [t["id"][i] for i in rows]


def test_logit_diverge_defaults_to_the_corpus_classes_not_the_whole_head(tiny_images):
    _wide_guide(tiny_images["root"])
    params = _params(objective="logit_diverge")
    Enhance(params, "toy").run()
    x0, y, ids = _inputs(tiny_images["root"])
    guide = load_named(params, "guide")
    stored = read_table(stage_dir("toy", "enhanced") / "eps=2").to_pydict()
    assert stored["id"] == ids
    got = to_tensor([img["bytes"] for img in stored["image"]])
    corpus = enhance(guide, x0, y, budgets=[2.0], objective="logit_diverge", diverge_from=CLASSES)[2.0]
    whole = enhance(guide, x0, y, budgets=[2.0], objective="logit_diverge")[2.0]
    assert (got - corpus).abs().max() <= 1 / 255 + 1e-6  # the stored (rounded) corpus-class result
    assert (whole - corpus).abs().max() > 1e-3  # averaging over the extra head classes differs
    metrics = json.loads((stage_dir("toy", "metrics") / "details" / "enhance.json").read_text())
    assert metrics["diverge_from"] == CLASSES and "jpeg" not in metrics
    Enhance(_params(objective="logit_diverge", diverge_from=["dot"]), "toy").run()
    one = to_tensor([img["bytes"] for img in read_table(stage_dir("toy", "enhanced") / "eps=2").to_pydict()["image"]])
    assert (one - got).abs().max() > 0  # diverge_from chooses the others


def test_jpeg_stimuli_measure_the_surviving_fraction(tiny_images):
    _wide_guide(tiny_images["root"])
    Enhance(_params(export={"stimulus_format": "jpeg"}), "toy").run()
    jpeg = json.loads((stage_dir("toy", "metrics") / "details" / "enhance.json").read_text())["jpeg"]
    assert jpeg["quality"] == 75 and jpeg["images"] == 6 and set(jpeg["budgets"]) == {"eps=0.5", "eps=2"}
    for stats in jpeg["budgets"].values():
        assert -1.0 <= stats["surviving_fraction"] < 1.0  # JPEG erases part of the change
        assert np.isfinite(stats["mean_gain_jpeg"]) and stats["mean_gain_png"] > 0


def test_surviving_fraction_is_the_projection_on_the_change():
    x0 = torch.zeros(3, 1, 4, 4)
    x = x0 + torch.tensor([0.1, 0.2, 0.0]).view(3, 1, 1, 1)
    assert surviving_fraction(x0, x, x0, x).tolist() == [1.0, 1.0, 0.0]
    assert surviving_fraction(x0, x, x0, x0).tolist() == [0.0, 0.0, 0.0]
    half = surviving_fraction(x0, x, x0, x0 + (x - x0) / 2)
    assert torch.allclose(half, torch.tensor([0.5, 0.5, 0.0], dtype=half.dtype))


def test_export_serves_curriculum_and_enhanced_images_as_jpeg_75(tiny_images, data_root: Path, tmp_path: Path):
    make_tiny_build(data_root)
    hub = Export(tiny_params(stimulus_format="jpeg"), CORPUS).run()
    natural = {r["id"]: r["image"]["bytes"] for r in read_table(data_root / CORPUS / "images").to_pylist()}
    enhanced = {r["id"]: r["image"]["bytes"] for r in read_table(data_root / CORPUS / "enhanced" / "eps=0.5").to_pylist()}

    def rows(config: str) -> list[dict]:
        ds = load_dataset(str(hub), config, cache_dir=str(tmp_path / "hf"))
        return [r for s in ds for r in ds[s].cast_column(_image(config), Image(decode=False)).to_list()]

    for r in rows("curriculum-lwise"):
        source = (enhanced if r["budget"] else natural)[r["id"]]
        assert r["image"]["bytes"] == png_to_jpeg(source, 75)
        assert PILImage.open(io.BytesIO(r["image"]["bytes"])).format == "JPEG"
    assert all(r["image"]["bytes"] == png_to_jpeg(enhanced[r["id"]]) for r in rows("enhanced-0.5"))
    assert all(r["image"]["bytes"] == natural[r["id"]] for r in rows("default"))  # lossless canonical images
    assert all(r["metamer"]["bytes"].startswith(b"\x89PNG") for r in rows("metamers"))
    pairs = load_dataset(str(hub), "pairs-0.5", cache_dir=str(tmp_path / "hf"))
    for split in pairs:
        for r in pairs[split].cast_column("original", Image(decode=False)).cast_column("enhanced", Image(decode=False)):
            assert r["enhanced"]["bytes"] == png_to_jpeg(enhanced[r["id"]]) and r["original"]["bytes"] == natural[r["id"]]
    card = (hub / "README.md").read_text()
    assert "**Lossy:** `image` is JPEG at quality 75" in card


def _image(config: str) -> str:
    return "metamer" if config == "metamers" else "image"
