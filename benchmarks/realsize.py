"""A real-size project and its bare-model references, for ``bench_realsize.py``.

The project: 224-px photo-like images in class folders, a ResNet-50 with random weights saved as
the MadryLab robustness library saves its checkpoints (state dict under ``model`` with keys
``module.model.``, ``module.attacker.model.``, ``module.normalizer.``), its 1000-class head mapped
onto the corpus's classes through ``score.class_map``, and a params file. The references: a bare
channels-last forward, one trajectory of the largest budget's steps, plenoptic's ``Metamer``.
Import it before torch (``workloads`` sets the process up as the CLI does).
"""

from __future__ import annotations

import functools
import sys
import warnings
from pathlib import Path

from workloads import make_images  # first: sets the process up as the CLI does

# isort: split
import numpy as np
import torch
from PIL import Image

from lwise_build.models.inference import channels_last, padded
from lwise_build.models.registry import create_net
from lwise_build.ops.enhance import default_steps, objective_loss
from lwise_build.ops.metamer import init_noise_images, normalised_distance, synthesis_model

#: Corpus class -> ImageNet head index (as a user maps "cat" onto class 285).
CLASS_MAP = {"cat": "285", "dog": "207", "fish": "1", "bird": "15"}
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


# ---------------------------------------------------------------- the project -----------------
def robustness_checkpoint(path: Path, arch: str = "resnet50", seed: int = 0) -> Path:
    """Random weights in the robustness library's format (what ``imagenet_l2_3_0.pt`` holds)."""
    torch.manual_seed(seed)
    net, _ = create_net(arch, 1000, 3)
    weights = net.state_dict()
    norm = {"new_mean": torch.tensor(IMAGENET_MEAN).view(3, 1, 1), "new_std": torch.tensor(IMAGENET_STD).view(3, 1, 1)}
    state = {**{f"module.model.{k}": v for k, v in weights.items()},
             **{f"module.attacker.model.{k}": v.clone() for k, v in weights.items()},
             **{f"module.normalizer.{k}": v for k, v in norm.items()},
             **{f"module.attacker.normalize.{k}": v.clone() for k, v in norm.items()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": state, "epoch": 90, "optimizer": {"lr": torch.tensor(0.1)}}, path)
    return path


def photo_folder(root: Path, per_class: int, size: int = 224) -> Path:
    """``per_class`` smooth random RGB JPEGs (a little larger than ``size``) per class folder."""
    every = make_images(per_class * len(CLASS_MAP), size + 32, 3)
    for k, name in enumerate(CLASS_MAP):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(every[k * per_class:(k + 1) * per_class]):
            arr = (img.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            Image.fromarray(arr).save(folder / f"{name}_{i:04d}.jpg", quality=90)
    return root


def params_yaml(raw: Path, checkpoint: Path, *, arch: str, size: int, batch: int, budgets: list[float],
                layers: list[str], steps: int, null_pairs: int) -> str:
    """The params of a photo corpus with an imported robustness-format model and a class map."""
    mapping = ", ".join(f"{k}: '{v}'" for k, v in CLASS_MAP.items())
    return f"""seed: 0
device: cpu
models:
  robust: {{arch: {arch}, corpus: photos, checkpoint: {checkpoint}, num_classes: 1000, in_channels: 3, input_size: {size}}}
corpora:
  photos:
    ingest:
      source: imagefolder:{raw}
      image_size: {size}
      splits: {{train: 0.5, validation: 0.25, test: 0.25}}
    score: {{models: {{robust: robust}}, class_map: {{{mapping}}}, batch_size: {batch}}}
    enhance: {{model: robust, budgets: {[float(b) for b in budgets]}, batch_size: {batch}, metrics_sample: 8, grid_images: 4}}
    metamers:
      generators: [robust]
      layers: {{robust: [{", ".join(layers)}]}}
      per_class: 1
      schedule: test
      steps: {steps}
      null_pairs: {null_pairs}
      batch_size: {batch}
"""


# ---------------------------------------------------------------- bare-model references -------
def bare_forward(model: torch.nn.Module, x: torch.Tensor, batch: int) -> None:
    """The model alone on channels-last batches of the stage's shape (inference mode, the last
    one padded): what scoring is measured against."""
    with torch.inference_mode():
        for lo in range(0, len(x), batch):
            model(padded(x[lo:lo + batch], batch))


def one_trajectory(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, batch: int,
                   step: float = 0.5) -> None:
    """The compute floor of enhancement: the largest budget's T steps (forward + input gradient,
    normalised step, projection, clamp) and a last forward, at the stage's batch and layout."""
    steps = default_steps(eps, step)
    for lo in range(0, len(x), batch):
        x0 = padded(x[lo:lo + batch], batch)
        yb = torch.cat([y[lo:lo + batch], y.new_zeros(batch - len(y[lo:lo + batch]))])
        xi = x0
        for _ in range(steps):
            xi = channels_last(xi.detach()).requires_grad_(True)
            (g,) = torch.autograd.grad(objective_loss(model(xi), yb, "logit").sum(), xi)
            with torch.no_grad():
                d = xi - step * g / (g.flatten(1).norm(dim=1).view(-1, 1, 1, 1) + 1e-10) - x0
                d = d * (eps / d.flatten(1).norm(dim=1).clamp_min(eps)).view(-1, 1, 1, 1)
                xi = (x0 + d).clamp(0, 1)
        with torch.no_grad():
            model(channels_last(xi))


def plenoptic_metamers(model: torch.nn.Module, layer: str, x: torch.Tensor, ids: list[str], steps: int):
    """plenoptic's ``Metamer``, one per target (its Adam, no range penalty), on the same synthesis
    copy truncated at ``layer``, the same loss and initial noise; None without plenoptic."""
    try:
        import plenoptic as po
    except ImportError:
        return None
    synth = sys.modules[po.Metamer.__module__]
    synth.tqdm = functools.partial(synth.tqdm, disable=True)
    fast = synthesis_model(model)

    class Truncated(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = fast

        def forward(self, img: torch.Tensor) -> torch.Tensor:
            return self.net.forward_to(img, layer)

    truncated = Truncated().eval()
    po.remove_grad(truncated)

    def run() -> torch.Tensor:
        out = []
        for i in range(len(x)):
            met = po.Metamer(x[i:i + 1], truncated, penalty_lambda=0.0,
                             loss_function=lambda a, b: normalised_distance(a, b).sum())
            met.setup(initial_image=init_noise_images(x.shape[1:], ids[i:i + 1], 0, 0.05))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                met.synthesize(max_iter=steps, stop_criterion=0.0, stop_iters_to_check=steps + 1)
            out.append(met.metamer.detach().clamp(0, 1))
        return torch.cat(out)

    return run
