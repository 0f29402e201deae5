"""Untargeted PGD attacks (MadryLab conventions; docs/methods.md, "PGD") for training and evaluation.

L2: step ``x + a * g / ||g||``, project by renormalising the perturbation to ``<= eps``;
Linf: step ``x + a * sign(g)``, project by clamping the perturbation to ``[-eps, eps]``;
both clamp to [0, 1]. Random start: L2 a uniform direction on the eps sphere, Linf a uniform box.
Gradients are taken with respect to the input only (``autograd.grad``), so model parameters never
accumulate gradients from the attack.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Norm = Literal["l2", "linf"]


def default_step_size(eps: float, steps: int) -> float:
    """The rule of thumb ``2.5 * eps / steps`` (robustness library)."""
    return 2.5 * eps / steps


def _flat_norm(t: torch.Tensor) -> torch.Tensor:
    """Per-sample L2 norm, shaped to broadcast against ``t``."""
    return t.flatten(1).norm(dim=1).view(-1, *([1] * (t.dim() - 1)))


def project(delta: torch.Tensor, eps: float, norm: Norm) -> torch.Tensor:
    """Project perturbations onto the eps ball of ``norm`` (per sample)."""
    if norm == "linf":
        return delta.clamp(-eps, eps)
    return delta * (eps / _flat_norm(delta).clamp_min(eps))


def random_start(x: torch.Tensor, eps: float, norm: Norm, generator: torch.Generator | None) -> torch.Tensor:
    """A random point of the ball around ``x`` (L2: on the sphere; Linf: uniform box), in [0, 1]."""
    if norm == "linf":
        noise = torch.rand(x.shape, generator=generator).to(x.device) * 2 - 1
        return (x + eps * noise).clamp(0, 1)
    noise = torch.randn(x.shape, generator=generator).to(x.device)
    return (x + eps * noise / (_flat_norm(noise) + 1e-10)).clamp(0, 1)


def _step(x: torch.Tensor, grad: torch.Tensor, step_size: float, norm: Norm) -> torch.Tensor:
    if norm == "linf":
        return x + step_size * grad.sign()
    return x + step_size * grad / (_flat_norm(grad) + 1e-10)


def pgd(
    model: nn.Module | Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    steps: int,
    step_size: float | None = None,
    norm: Norm = "l2",
    rand_init: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Maximise the cross-entropy of ``model`` on ``(x, y)`` within the eps ball; return the last iterate."""
    step_size = default_step_size(eps, steps) if step_size is None else step_size
    x0 = x.detach()
    adv = random_start(x0, eps, norm, generator) if rand_init else x0.clone()
    for _ in range(steps):
        adv.requires_grad_(True)
        loss = F.cross_entropy(model(adv), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, adv)
        with torch.no_grad():
            adv = _step(adv, grad, step_size, norm)
            adv = (x0 + project(adv - x0, eps, norm)).clamp(0, 1)
    return adv.detach()


def accuracy(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int = 256,
    eps: float = 0.0,
    steps: int = 10,
    norm: Norm = "l2",
    step_size: float | None = None,
    generator: torch.Generator | None = None,
) -> float:
    """Accuracy of ``model`` on ``(x, y)``, under a PGD attack of budget ``eps`` when ``eps > 0``."""
    if len(x) == 0:
        return float("nan")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    correct = 0
    try:
        for i in range(0, len(x), batch_size):
            xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
            if eps > 0:
                xb = pgd(model, xb, yb, eps, steps, step_size, norm, rand_init=False, generator=generator)
            with torch.no_grad():
                correct += int((model(xb).argmax(1) == yb).sum())
    finally:
        model.train(was_training)
    return correct / len(x)
