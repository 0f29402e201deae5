"""What the benchmarks share: a process set up as the CLI sets it, random-init models, synthetic
images and device-synchronised timing. Import it before torch (``configure_process``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from lwise_build.device import configure_process

configure_process()  # as `lwise-build` does for every command, before torch loads

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from lwise_build.models.classifier import Classifier  # noqa: E402
from lwise_build.models.registry import create_net  # noqa: E402

T = TypeVar("T")


def make_model(arch: str, device: torch.device, channels: int = 1) -> Classifier:
    """A randomly initialised 10-class model (timings do not depend on training)."""
    torch.manual_seed(0)
    net, stages = create_net(arch, 10, channels)
    return Classifier(net, stages, [0.45] * channels, [0.25] * channels, [str(i) for i in range(10)], arch).to(device)


def make_images(n: int, size: int, channels: int = 1) -> torch.Tensor:
    """Smooth random images (blurred noise) on the uint8 grid, like stored images."""
    g = torch.Generator().manual_seed(1)
    x = F.avg_pool2d(torch.rand(n, channels, size + 6, size + 6, generator=g), 7, stride=1)
    lo, hi = x.amin((1, 2, 3), keepdim=True), x.amax((1, 2, 3), keepdim=True)
    return ((x - lo) / (hi - lo) * 255).round() / 255


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so wall time measures it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], T], device: torch.device) -> tuple[float, T]:
    """Seconds ``fn`` takes on ``device``, and its result."""
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - start, out
