"""The newcomer's real-size route, tiny: 224-px photos, a ResNet-50 imported from a MadryLab
robustness-library checkpoint (random weights), its 1000-class head mapped onto the corpus's
classes by score.class_map only; check, then every model stage, with a handful of steps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lwise_build.config.load import load_params
from lwise_build.io.images import to_tensor
from lwise_build.io.paths import budget_dir, stage_dir
from lwise_build.io.tables import read_table
from lwise_build.models.registry import create_net
from lwise_build.models.store import load_named
from lwise_build.stages.check import check_project
from lwise_build.stages.enhance.stage import Enhance
from lwise_build.stages.ingest.stage import Ingest
from lwise_build.stages.metamers.stage import Metamers
from lwise_build.stages.score.stage import Score
from lwise_build.stages.train.stage import Train

CLASS_MAP = {"astronaut": "812", "cat": "285", "fish": "1", "bird": "15"}


def robustness_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """A ResNet-50 saved as the robustness library saves ``imagenet_l2_3_0.pt``."""
    torch.manual_seed(0)
    net, _ = create_net("resnet50", 1000, 3)
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    state = {**{f"module.model.{k}": v for k, v in net.state_dict().items()},
             **{f"module.attacker.model.{k}": v.clone() for k, v in net.state_dict().items()},
             "module.normalizer.new_mean": mean, "module.normalizer.new_std": std,
             "module.attacker.normalize.new_mean": mean, "module.attacker.normalize.new_std": std}
    torch.save({"model": state, "epoch": 90}, path)
    return net.state_dict()


def photos(root: Path, per_class: int = 4) -> None:
    """Smooth random 240 x 260 RGB JPEGs (ingest resizes and crops them to 224)."""
    rng = np.random.default_rng(0)
    for name in CLASS_MAP:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            low = rng.random((15, 17, 3))
            img = np.kron(low, np.ones((16, 16, 1)))[:240, :260] * 255
            Image.fromarray(img.astype(np.uint8)).save(root / name / f"{i}.jpg", quality=90)


PARAMS = """
seed: 0
device: cpu
models:
  imagenet-robust: {{arch: resnet50, corpus: photos, checkpoint: {ckpt}, num_classes: 1000, in_channels: 3, input_size: 224}}
corpora:
  photos:
    ingest: {{source: "imagefolder:{raw}", image_size: 224, splits: {{train: 0.5, validation: 0.25, test: 0.25}}}}
    score: {{models: {{robust: imagenet-robust}}, class_map: {class_map}, batch_size: 16}}
    enhance: {{model: imagenet-robust, budgets: [0.5], batch_size: 16, metrics_sample: 2, grid_images: 2}}
    metamers: {{generators: [imagenet-robust], layers: {{imagenet-robust: [layer1]}}, per_class: 1,
               schedule: test, steps: 2, null_pairs: 6, batch_size: 16}}
"""


@pytest.mark.slow
def test_224px_resnet50_from_a_robustness_checkpoint_through_a_class_map(data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("LWISE_CACHE", str(tmp_path / "cache"))
    photos(tmp_path / "raw")
    weights = robustness_checkpoint(tmp_path / "imagenet_l2_3_0.pt")
    (tmp_path / "params.yaml").write_text(PARAMS.format(ckpt=tmp_path / "imagenet_l2_3_0.pt", raw=tmp_path / "raw",
                                                        class_map=json.dumps(CLASS_MAP)))
    params = load_params(tmp_path / "params.yaml")
    findings = check_project(params)  # the map is all the head mapping a newcomer writes; with 4 images
    assert [f for f in findings if f.level == "error"] == []  # a class, the per-image split draw may
    assert all("split gets no image" in f.text for f in findings)  # leave a split without it (a warning)
    Ingest(params, "photos").run()
    Train(params, "photos", "imagenet-robust").run()
    model = load_named(params, "imagenet-robust")
    assert model.num_classes == 1000 and torch.equal(model.net.fc.weight, weights["fc.weight"])
    assert torch.allclose(model.mean.flatten(), torch.tensor([0.485, 0.456, 0.406]))  # the normaliser's
    metrics = json.loads((stage_dir("photos", "models") / "imagenet-robust" / "metrics.json").read_text())
    assert metrics["val_images"] == 4 and metrics["val_accuracy"] is not None  # validated through the map
    Score(params, "photos").run()
    Enhance(params, "photos").run()
    Metamers(params, "photos").run()

    images = read_table(stage_dir("photos", "images"), ["id", "image", "label"]).to_pydict()
    head = {i: int(CLASS_MAP[name]) for i, name in enumerate(sorted(CLASS_MAP))}
    x = to_tensor([d["bytes"] for d in images["image"]])
    assert x.shape[1:] == (3, 224, 224)
    with torch.no_grad():
        z = model(x)
    want = z[torch.arange(len(x)), torch.tensor([head[k] for k in images["label"]])].numpy()
    scores = read_table(stage_dir("photos", "scores"), ["id", "robust_gt_logit"]).to_pydict()
    assert scores["id"] == images["id"] and np.allclose(scores["robust_gt_logit"], want, atol=1e-3)
    enhanced = read_table(stage_dir("photos", "enhanced") / budget_dir(0.5)).to_pydict()
    before = dict(zip(images["id"], want, strict=True))
    assert np.allclose(enhanced["gt_logit_before"], [before[i] for i in enhanced["id"]], atol=1e-3)
    assert max(enhanced["l2"]) <= 0.5
    met = read_table(stage_dir("photos", "metamers")).to_pydict()
    assert len(met["reference_id"]) == 4 and set(met["generator_pred"]) <= set(range(4))  # forced choice of 4


def test_the_readme_224px_params_load_and_agree():
    """The README's 224-px walk-through params pass the schema and every params-only check
    (its curriculum taper uses exactly the budgets enhance builds)."""
    import re

    import yaml

    from lwise_build.config.checks import params_findings
    from lwise_build.config.load import parse_params

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", text, flags=re.S) if "imagenet-robust:" in b)
    params = parse_params(yaml.safe_load(block))
    assert [f.text for f in params_findings(params) if f.level == "error"] == []
    pets = params.corpus("pets")
    assert set(pets.curricula["lwise"].budgets) == set(pets.enhance.budgets)
