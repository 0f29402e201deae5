"""Training-time augmentation: random horizontal flips and padded random crops.

The train stage augments every batch with it; the metamer null distribution can draw its natural
pairs through it too (``metamers.null_augment``), as the reference drew its null from the training
loader with augmentation (docs/methods.md, "Metamers").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def augment(x: torch.Tensor, kinds: tuple[str, ...], gen: torch.Generator) -> torch.Tensor:
    """Random horizontal flips and padded random crops (pad 1/8 of the size, reflect)."""
    if "hflip" in kinds:
        flip = torch.rand(len(x), generator=gen) < 0.5
        x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
    if "crop" in kinds:
        h, w = x.shape[-2:]
        pad = max(1, h // 8)
        padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
        offs = torch.randint(0, 2 * pad + 1, (len(x), 2), generator=gen).tolist()
        x = torch.stack([padded[i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(offs)])
    return x
