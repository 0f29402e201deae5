"""Built model folders: save, load, and the public ``load_model`` from any source.

A folder written by :func:`save_model` (:mod:`.cfg` format) loads without unpickling anything.
``load_model`` also takes a model name in params, or a checkpoint path, URL or ``hf://`` source
(:mod:`.checkpoints`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..config.load import load_params
from ..config.params import Params
from ..errors import UserError, first_line
from ..io.digests import bytes_digest, file_digest, json_digest
from ..io.paths import model_dir
from .cfg import WEIGHTS_FILE, is_built, read_config, write_config
from .checkpoints import classifier_from_checkpoint
from .classifier import Classifier
from .registry import create_net


def _weights(model: Classifier) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in model.net.state_dict().items()}


def weights_digest(model: Classifier) -> str:
    """The hash :func:`save_model` gives ``model`` (the sha256 of its safetensors bytes), unwritten."""
    from safetensors.torch import save

    return bytes_digest(save(_weights(model), metadata={"format": "pt"}))


def model_digest(model: Classifier) -> str:
    """What every forward of ``model`` depends on, hashed: its weights' sha256 plus what lives
    outside the weights (architecture, input normalisation, head classes); unit cache keys use it
    (docs/architecture.md, "Units and the cache"), so a changed ``mean`` or ``std`` recomputes."""
    return json_digest({"weights": model.model_hash or weights_digest(model), "arch": model.arch,
                        "mean": model.mean.flatten().tolist(), "std": model.std.flatten().tolist(),
                        "classes": list(model.classes)})


def save_model(model: Classifier, folder: Path, extra: dict[str, Any] | None = None) -> str:
    """Write ``model.safetensors`` + ``config.json`` (enough for :func:`load_model`); return the hash."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(_weights(model), str(folder / WEIGHTS_FILE), metadata={"format": "pt"})
    digest = file_digest(folder / WEIGHTS_FILE)
    write_config(folder, {
        "arch": model.arch, "classes": model.classes, "in_channels": int(model.mean.shape[1]),
        "mean": model.mean.flatten().tolist(), "std": model.std.flatten().tolist(),
        "sha256": digest, **(extra or {}),
    })
    model.model_hash = digest
    return digest


def load_model_dir(folder: Path | str) -> Classifier:
    """Load a folder written by :func:`save_model` (safetensors only: no code is unpickled)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not is_built(Path(folder)):
        raise UserError(f"{folder}: not a built model folder (needs config.json and {WEIGHTS_FILE})")
    cfg = read_config(Path(folder))
    missing = [k for k in ("arch", "classes", "mean", "std") if k not in cfg]
    if missing:
        raise UserError(f"{Path(folder) / 'config.json'}: missing {', '.join(missing)}; rebuild the model")
    net, stages = create_net(cfg["arch"], len(cfg["classes"]), cfg.get("in_channels", 3))
    try:
        weights = load_file(str(Path(folder) / WEIGHTS_FILE))
    except SafetensorError as exc:
        raise UserError(f"{Path(folder) / WEIGHTS_FILE}: not readable ({first_line(exc)}); rebuild the model "
                        "(dvc repro -f train@<model>)") from None
    net.load_state_dict(weights)
    model = Classifier(net, stages, cfg["mean"], cfg["std"], cfg["classes"], arch=cfg["arch"])
    model.model_hash = cfg.get("sha256", "")
    return model


def frozen(model: Classifier, device: torch.device | str) -> Classifier:
    """``model`` on ``device``, in eval mode, parameter gradients off (how every stage uses it)."""
    model = model.to(device).eval()
    model.requires_grad_(False)
    return model


def built_dir(params: Params, name: str) -> Path:
    """``data/<corpus>/models/<name>`` of model ``name`` in params."""
    return model_dir(params.model(name).corpus, name)


def load_named(params: Params, name: str, device: torch.device | str = "cpu") -> Classifier:
    """The built model called ``name`` in params, on ``device``, in eval mode, grads off."""
    folder = built_dir(params, name)
    if not is_built(folder):
        raise UserError(f"model {name!r} is not built yet ({folder}); run `dvc repro train@{name}`")
    return frozen(load_model_dir(folder), device)


def load_model(source: Any, arch: str | None = None, num_classes: int | None = None, *,
               params: Params | str | None = None, device: torch.device | str = "cpu") -> Classifier:
    """Public API: a model from a name in params, a built model folder, or a checkpoint.

    ``source`` is a model name in ``params`` (a :class:`~lwise_build.config.params.Params` or a
    path; default ``./params.yaml``), a folder written by the train stage, or a checkpoint path,
    http(s) URL or ``hf://org/repo/path[@revision]``; then ``arch`` (and ``num_classes``, default
    the checkpoint's head) say what to build. Returns the model in eval mode, gradients off; it
    takes (N, C, H, W) images in [0, 1] and returns logits.
    """
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
    return frozen(model, device)


def _named_params(src: str, params: Params | str | None) -> Params | None:
    """The params that define model ``src``, or None when ``src`` is not a model name there."""
    if "://" in src or Path(src).exists():
        return None
    if params is None:
        if not Path("params.yaml").is_file():
            return None
        params = "params.yaml"
    p = params if isinstance(params, Params) else load_params(params)
    return p if src in p.models else None


def _load_from_params(params: Params, name: str) -> Classifier:
    """A built model; an unbuilt checkpoint-only model straight from its checkpoint."""
    spec = params.model(name)
    if is_built(built_dir(params, name)) or spec.train is not None or not spec.checkpoint:
        return load_named(params, name)
    return classifier_from_checkpoint(
        spec.checkpoint, spec.arch, num_classes=spec.num_classes, classes=spec.classes,
        in_channels=spec.in_channels, mean=spec.mean, std=spec.std,
    )
