"""Blur training (docs/methods.md, "Blur training"): each image draws its own Gaussian sigma from a preset.

Sigmas are given in pixels at ``reference_size`` (224 in the papers) and scaled by
``image_size / reference_size``; the kernel is ``2 * ceil(2 * sigma) + 1`` wide; sigma 0 leaves
the image untouched. For grayscale blur training, ingest the corpus as grayscale: a 3-channel
model replicates the single channel itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

#: preset -> (sigmas at the reference size, probabilities)
PRESETS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "weak": ((0.0, 1.0, 2.0, 3.0, 4.0, 5.0), (0.6937, 0.2129, 0.0653, 0.0200, 0.0062, 0.0019)),
    "strong": ((0.0, 1.0, 2.0, 4.0, 8.0), (0.2, 0.2, 0.2, 0.2, 0.2)),
}


def distribution(preset: str, sigmas: Sequence[float] = (), probs: Sequence[float] = ()
                 ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The (sigmas, probabilities) of a preset at the reference size; ``custom`` uses the given ones."""
    if preset == "custom":
        return tuple(sigmas), tuple(probs)
    return PRESETS[preset]


def draw_sigmas(sigmas: Sequence[float], probs: Sequence[float], n: int, scale: float,
                generator: torch.Generator) -> torch.Tensor:
    """``n`` sigmas, one per image, drawn with ``probs`` and multiplied by ``scale``
    (``image_size / reference_size``: the presets are given in pixels at 224)."""
    idx = torch.multinomial(torch.tensor(probs, dtype=torch.float64), n, replacement=True, generator=generator)
    return torch.tensor(sigmas, dtype=torch.float64)[idx] * scale


def kernel_size(sigma: float) -> int:
    """``2 * ceil(2 * sigma) + 1`` (odd, centred)."""
    return 2 * math.ceil(2 * sigma) + 1


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """A normalised 1-D Gaussian of width :func:`kernel_size`."""
    half = kernel_size(sigma) // 2
    t = torch.arange(-half, half + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return (k / k.sum()).float()


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of a batch (N, C, H, W) with one sigma; reflect padding."""
    if sigma <= 0:
        return x
    k = gaussian_kernel(sigma).to(x.device, x.dtype)
    c, pad = x.shape[1], len(k) // 2
    mode = "reflect" if pad < min(x.shape[-2:]) else "replicate"
    h = F.pad(x, (pad, pad, 0, 0), mode=mode)
    h = F.conv2d(h, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    h = F.pad(h, (0, 0, pad, pad), mode=mode)
    return F.conv2d(h, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def blur_batch(x: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """Blur each image of ``x`` with its own sigma (images sharing a sigma go together)."""
    out = x.clone()
    for sigma in torch.unique(sigmas).tolist():
        if sigma > 0:
            mask = (sigmas == sigma).to(x.device)
            out[mask] = gaussian_blur(x[mask], sigma)
    return out
