"""The :class:`Classifier` every stage uses: images in [0, 1] in, logits out.

Normalisation (mean/std, channel matching) travels with the model and happens inside it. Its
named stages (``layers()``) let metamer synthesis stop the forward pass at any of them
(``forward_to``); ``classes`` names the head's outputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..errors import UserError

_LUMA = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)


class Classifier(nn.Module):
    """Normalisation + network: images in [0, 1] in, logits out; always built in eval mode."""

    def __init__(
        self,
        net: nn.Module,
        stages: Sequence[str],
        mean: Sequence[float],
        std: Sequence[float],
        classes: Sequence[str],
        arch: str = "custom",
    ):
        super().__init__()
        self.net = net
        self.stages = list(stages)
        self.classes = list(classes)
        self.arch = arch
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))
        self.model_hash = ""
        self.eval()

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Match channels (grayscale replicated, RGB to luminance) and apply mean/std."""
        want = self.mean.shape[1]
        if x.shape[1] != want and 1 in (x.shape[1], want):
            x = x.expand(-1, want, -1, -1) if x.shape[1] == 1 else (x * _LUMA.to(x)).sum(1, keepdim=True)
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(x))

    def layers(self) -> list[str]:
        """Named stages, nearest the input first (metamer layers); the last gives the logits."""
        return list(self.stages) if self._is_sequential() else []

    def forward_to(self, x: torch.Tensor, layer: str) -> torch.Tensor:
        """Activations at ``layer``, running only the stages up to it."""
        if layer not in self.layers():
            raise UserError(f"layer {layer!r} is not a stage of this model (stages: {', '.join(self.layers())})")
        h = self.normalize(x)
        for name in self.stages:
            h = self._run_stage(name, h)
            if name == layer:
                return h
        raise AssertionError("unreachable")

    def _is_sequential(self) -> bool:
        return isinstance(self.net, nn.Sequential) or self._torchvision_resnet()

    def _torchvision_resnet(self) -> bool:
        return all(hasattr(self.net, n) for n in ("conv1", "layer1", "avgpool", "fc"))

    def _run_stage(self, name: str, h: torch.Tensor) -> torch.Tensor:
        module = getattr(self.net, name)
        if name == "fc" and h.dim() > 2:
            h = torch.flatten(h, 1)
        return module(h)

    @property
    def num_classes(self) -> int:
        return len(self.classes)
