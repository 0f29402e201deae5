"""Toy models and images: random tiny CNNs saved where a stage loads models, calibrated toy nets."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from lwise_build.models.classifier import Classifier
from lwise_build.models.registry import create_net
from lwise_build.models.store import save_model


def save_smallcnns(models: Path, names: Sequence[str], classes: Sequence[str], channels: int = 1) -> None:
    """Save a random ``smallcnn-tiny`` per name (seeded by its position) under ``models/<name>``."""
    for seed, name in enumerate(names):
        torch.manual_seed(seed)
        net, stages = create_net("smallcnn-tiny", len(classes), channels)
        save_model(Classifier(net, stages, [0.3] * channels, [0.3] * channels, list(classes), "smallcnn-tiny"),
                   models / name)


def toy_model(seed: int = 0, arch: str = "smallcnn-tiny", classes=("bar", "dot", "ring")) -> Classifier:
    """Random conv weights, batch-norm statistics calibrated on toy images (like a trained net's)."""
    torch.manual_seed(seed)
    net, stages = create_net(arch, len(classes), 1)
    model = Classifier(net, stages, [0.3], [0.3], list(classes), arch=arch)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative average over the calibration batch
    model.train()
    with torch.no_grad():
        model(toy_images(64, seed=100 + seed))
    model.eval().requires_grad_(False)
    return model


def toy_images(n: int = 6, size: int = 16, seed: int = 0) -> torch.Tensor:
    """Bars, blobs and rings with noise: structured natural-ish images in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    out = []
    for i in range(n):
        cy, cx = torch.randint(4, size - 4, (2,), generator=g).tolist()
        r = torch.hypot((yy - cy).float(), (xx - cx).float())
        base = [(xx == cx).float(), (r < 3).float(), ((r - 4).abs() < 1.2).float()][i % 3]
        out.append((0.1 + 0.8 * base + 0.1 * torch.rand(size, size, generator=g)).clamp(0, 1))
    return torch.stack(out)[:, None]
