"""Models: a string-keyed architecture registry and the :class:`Classifier` every stage uses.

A :class:`Classifier` takes (N, C, H, W) images in [0, 1], normalises them inside (mean/std
travel with the model) and returns logits. Its named stages (``layers()``) let metamer synthesis
stop the forward pass at any of them (``forward_to``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

import torch
from torch import nn

from .errors import UserError

ArchFactory = Callable[[int, int], "tuple[nn.Module, list[str]]"]
_ARCHS: dict[str, ArchFactory] = {}


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

        net = torchvision.models.get_model(name, weights=None, num_classes=num_classes)
        if in_channels != 3:
            raise UserError(f"arch {name!r}: torchvision models take 3 channels, got {in_channels}")
        names = [n for n, _ in net.named_children()]
        return net, names

    return factory


for _name in ("resnet18", "resnet34", "resnet50", "resnet101", "vgg16", "alexnet",
              "mobilenet_v3_small", "efficientnet_b0", "convnext_tiny", "vit_b_16"):
    register(_name)(_torchvision(_name))


def architectures() -> list[str]:
    """Registered architecture names (``timm:<name>`` also works when timm is installed)."""
    return sorted(_ARCHS)


def create_net(arch: str, num_classes: int, in_channels: int = 3) -> tuple[nn.Module, list[str]]:
    """Build an untrained network and the names of its sequential stages."""
    if arch.startswith("timm:"):
        try:
            import timm
        except ImportError:
            raise UserError(f"arch {arch!r}: install timm to use timm architectures") from None
        net = timm.create_model(arch[5:], pretrained=False, num_classes=num_classes, in_chans=in_channels)
        return net, [n for n, _ in net.named_children()]
    if arch not in _ARCHS:
        import difflib

        close = difflib.get_close_matches(arch, _ARCHS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UserError(f"arch: unknown architecture {arch!r}{hint}; known: {', '.join(architectures())}")
    return _ARCHS[arch](num_classes, in_channels)


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


# ---------------------------------------------------------------- built model folders ---------
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


def save_model(model: Classifier, folder, extra: dict | None = None) -> str:
    """Write ``model.safetensors`` + ``config.json`` (enough for :func:`load_model`); return the hash."""
    import json
    from pathlib import Path

    from safetensors.torch import save_file

    from .tables import file_digest

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.net.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_FILE), metadata={"format": "pt"})
    digest = file_digest(folder / WEIGHTS_FILE)
    config = {
        "arch": model.arch, "classes": model.classes, "in_channels": int(model.mean.shape[1]),
        "mean": model.mean.flatten().tolist(), "std": model.std.flatten().tolist(),
        "sha256": digest, **(extra or {}),
    }
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    model.model_hash = digest
    return digest


def load_model_dir(folder) -> Classifier:
    """Load a folder written by :func:`save_model` (safetensors only: no code is unpickled)."""
    import json
    from pathlib import Path

    from safetensors.torch import load_file

    folder = Path(folder)
    cfg_path = folder / CONFIG_FILE
    if not cfg_path.is_file() or not (folder / WEIGHTS_FILE).is_file():
        raise UserError(f"{folder}: not a built model folder (needs {CONFIG_FILE} and {WEIGHTS_FILE})")
    cfg = json.loads(cfg_path.read_text())
    net, stages = create_net(cfg["arch"], len(cfg["classes"]), cfg.get("in_channels", 3))
    net.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
    model = Classifier(net, stages, cfg["mean"], cfg["std"], cfg["classes"], arch=cfg["arch"])
    model.model_hash = cfg.get("sha256", "")
    return model


def model_dir(params, name: str):
    """``data/<corpus>/models/<name>``: where the train stage puts model ``name``."""
    from .tables import stage_dir

    return stage_dir(params.model(name).corpus, "models") / name


def load_named(params, name: str, device: torch.device | str = "cpu") -> Classifier:
    """The built model called ``name`` in params, on ``device``, in eval mode, grads off."""
    folder = model_dir(params, name)
    if not (folder / CONFIG_FILE).is_file():
        raise UserError(f"model {name!r} is not built yet ({folder}); run `dvc repro train@{name}`")
    model = load_model_dir(folder).to(device).eval()
    model.requires_grad_(False)
    return model


def load_model(
    source, arch: str | None = None, num_classes: int | None = None, *,
    params=None, device: torch.device | str = "cpu",
) -> Classifier:
    """Public API: a model from a name in params, a built model folder, or a checkpoint.

    ``source`` is a model name in ``params`` (a :class:`~lwise_build.params.Params` or a path;
    default ``./params.yaml``), a folder written by the train stage, or a checkpoint path,
    http(s) URL or ``hf://org/repo/path[@revision]``; then ``arch`` (and ``num_classes``, default
    the checkpoint's head) say what to build. Returns the model in eval mode, gradients off; it
    takes (N, C, H, W) images in [0, 1] and returns logits.
    """
    from pathlib import Path

    from .checkpoints import classifier_from_checkpoint

    src = str(source)
    named = _named_params(src, params)
    if named is not None:
        model = _load_from_params(named, src)
    elif Path(src).is_dir():
        model = load_model_dir(src)
    elif arch is None:
        raise UserError(f"model {src!r}: not a model in params nor a built model folder; "
                        "to load a checkpoint pass arch= (and num_classes=)")
    else:
        model = classifier_from_checkpoint(src, arch, num_classes=num_classes)
    model = model.to(device).eval()
    model.requires_grad_(False)
    return model


def _named_params(src: str, params):
    """The params that define model ``src``, or None when ``src`` is not a model name there."""
    from pathlib import Path

    from .params import Params, load_params

    if "://" in src or Path(src).exists():
        return None
    if params is None:
        if not Path("params.yaml").is_file():
            return None
        params = "params.yaml"
    p = params if isinstance(params, Params) else load_params(params)
    return p if src in p.models else None


def _load_from_params(params, name: str) -> Classifier:
    """A built model; an unbuilt checkpoint-only model straight from its checkpoint."""
    mp = params.model(name)
    if (model_dir(params, name) / CONFIG_FILE).is_file() or mp.train is not None or not mp.checkpoint:
        return load_named(params, name)
    from .checkpoints import classifier_from_checkpoint

    return classifier_from_checkpoint(
        mp.checkpoint, mp.arch, num_classes=mp.num_classes, classes=mp.classes,
        in_channels=mp.in_channels, mean=mp.mean, std=mp.std,
    )
