"""The "fake ReLU" of model_metamers_pytorch: a ReLU forward whose gradient is the identity.

Feather et al. (2023) synthesise metamers of ReLU layers through ``*_fake_relu`` outputs: the
layer's final ReLU computes ``max(x, 0)`` but passes the gradient back as if it were the identity,
so units below zero still pull the image towards the target (docs/methods.md, "Metamers"). Only
that one ReLU changes; every other ReLU before it is the ordinary one.
"""

from __future__ import annotations

import torch
from torch import nn


class _FakeReLUFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: ARG004
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: ARG004
        return grad


def fake_relu(x: torch.Tensor) -> torch.Tensor:
    """``max(x, 0)`` forward, identity backward."""
    return _FakeReLUFn.apply(x)


class FakeReLU(nn.Module):
    """:func:`fake_relu` as a module (replaces a layer's final ``nn.ReLU``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fake_relu(x)


class FakeReLUBlock(nn.Module):
    """A torchvision residual block (BasicBlock or Bottleneck) whose final ReLU is fake."""

    def __init__(self, block: nn.Module):
        super().__init__()
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.block
        identity = x if b.downsample is None else b.downsample(x)
        out = b.relu(b.bn1(b.conv1(x)))
        out = b.bn2(b.conv2(out))
        if hasattr(b, "conv3"):
            out = b.bn3(b.conv3(b.relu(out)))
        return fake_relu(out + identity)


def _is_residual_block(m: nn.Module) -> bool:
    return all(hasattr(m, n) for n in ("conv1", "bn1", "conv2", "bn2", "relu", "downsample"))


def with_fake_relu(stage: nn.Module) -> tuple[nn.Module, bool]:
    """``stage`` with its output ReLU made fake (in place for containers), and whether it had one.

    A stage that is a ReLU, a sequence ending in one (after the synthesis rewrite, the small CNNs'
    blocks end ``MaxPool2d, ReLU``) or a sequence of residual blocks (torchvision ResNet ``layerN``)
    has one; any other stage (pooling, linear) is returned unchanged.
    """
    if isinstance(stage, nn.ReLU):
        return FakeReLU(), True
    if isinstance(stage, nn.Sequential) and len(stage):
        name, last = list(stage.named_children())[-1]
        if isinstance(last, nn.ReLU):
            stage._modules[name] = FakeReLU()
            return stage, True
        if _is_residual_block(last):
            stage._modules[name] = FakeReLUBlock(last)
            return stage, True
        inner, found = with_fake_relu(last)
        if found:
            stage._modules[name] = inner
        return stage, found
    return stage, False
