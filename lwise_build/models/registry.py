"""A string-keyed architecture registry with one factory (timm style).

``create_net(arch, num_classes, in_channels)`` returns an untrained network and the names of its
sequential stages (the layers metamers can stop at). Names: the small CNNs below, torchvision
classifiers, and ``timm:<name>`` when timm is installed.
"""

from __future__ import annotations

import difflib
from collections import OrderedDict
from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..errors import UserError

ArchFactory = Callable[[int, int], "tuple[nn.Module, list[str]]"]
_ARCHS: dict[str, ArchFactory] = {}
TORCHVISION = ("resnet18", "resnet34", "resnet50", "resnet101", "vgg16", "alexnet",
               "mobilenet_v3_small", "efficientnet_b0", "convnext_tiny", "vit_b_16")
#: Smallest input (px) each torchvision net runs on in eval mode (measured); vit_b_16 takes only 224.
MIN_SIZE = {"vgg16": 32, "alexnet": 64, "convnext_tiny": 32}


def register(name: str) -> Callable[[ArchFactory], ArchFactory]:
    """Register ``factory(num_classes, in_channels) -> (net, stage names)`` under ``name``."""

    def deco(factory: ArchFactory) -> ArchFactory:
        _ARCHS[name] = factory
        return factory

    return deco


def _conv_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=False),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=False),
        nn.MaxPool2d(2),
    )


def _small_cnn(widths: Sequence[int]) -> ArchFactory:
    def factory(num_classes: int, in_channels: int) -> tuple[nn.Module, list[str]]:
        stages: OrderedDict[str, nn.Module] = OrderedDict()
        cin = in_channels
        for i, w in enumerate(widths, start=1):
            stages[f"block{i}"] = _conv_block(cin, w)
            cin = w
        stages["avgpool"] = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        stages["fc"] = nn.Linear(cin, num_classes)
        return nn.Sequential(stages), list(stages)

    return factory


register("smallcnn")(_small_cnn((32, 64, 128)))
register("smallcnn-tiny")(_small_cnn((16, 32)))
register("smallcnn-wide")(_small_cnn((64, 128, 256)))


def _torchvision(name: str) -> ArchFactory:
    def factory(num_classes: int, in_channels: int) -> tuple[nn.Module, list[str]]:
        import torchvision

        if in_channels != 3:
            raise UserError(f"arch {name!r}: torchvision models take 3 channels, got {in_channels}")
        net = torchvision.models.get_model(name, weights=None, num_classes=num_classes)
        return net, [n for n, _ in net.named_children()]

    return factory


for _name in TORCHVISION:
    register(_name)(_torchvision(_name))


def architectures() -> list[str]:
    """Registered architecture names (``timm:<name>`` also works when timm is installed)."""
    return sorted(_ARCHS)


def describe(arch: str) -> dict[str, str]:
    """An architecture's named stages (the layers metamers can stop at) and input conventions,
    for ``lwise-build models``. Torchvision nets are built on the meta device (no memory)."""
    with torch.device("meta"):
        _, stages = _ARCHS[arch](10, 3)
    least, exact = input_rule(arch)
    if arch.startswith("smallcnn"):
        return {"layers": ", ".join(stages), "channels": "any (in_channels)",
                "input": f"any size >= {least} px (adaptive pooling)"}
    size = f"exactly {least} px" if exact else f"any size >= {least} px; 224 for ImageNet weights"
    return {"layers": ", ".join(stages), "channels": "3 (RGB)", "input": size}


def input_rule(arch: str) -> tuple[int, bool]:
    """(smallest input size in px, whether it is the only size) of a registered architecture."""
    if arch.startswith("smallcnn"):
        return 2 ** sum(s.startswith("block") for s in _small_stages(arch)), False
    if arch.startswith("vit"):
        return 224, True
    return MIN_SIZE.get(arch, 16), False


def fixed_channels(arch: str) -> int | None:
    """The channels an architecture requires (3 for torchvision nets), None when any work."""
    return 3 if arch in TORCHVISION else None


def _small_stages(arch: str) -> list[str]:
    with torch.device("meta"):
        return _ARCHS[arch](2, 1)[1]


def check_arch(arch: str) -> str | None:
    """Why ``arch`` cannot be built (with a did-you-mean), or None when it can."""
    if arch.startswith("timm:") or arch in _ARCHS:
        return None
    close = difflib.get_close_matches(arch, _ARCHS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown architecture {arch!r}{hint}; known: {', '.join(architectures())}"


def create_net(arch: str, num_classes: int, in_channels: int = 3) -> tuple[nn.Module, list[str]]:
    """Build an untrained network and the names of its sequential stages."""
    problem = check_arch(arch)
    if problem:
        raise UserError(f"arch: {problem}")
    if arch.startswith("timm:"):
        try:
            import timm
        except ImportError:
            raise UserError(f"arch {arch!r}: install timm to use timm architectures") from None
        net = timm.create_model(arch[5:], pretrained=False, num_classes=num_classes, in_chans=in_channels)
        return net, [n for n, _ in net.named_children()]
    return _ARCHS[arch](num_classes, in_channels)
