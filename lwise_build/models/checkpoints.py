"""Checkpoints: fetch from a path, an http(s) URL or ``hf://``, and read them without running code.

Formats: a plain state dict, a robustness-library checkpoint (a ``model`` / ``state_dict`` dict
whose network weights sit under ``module.model.``, with the attacker's copy under
``module.attacker.model.`` skipped and ``module.normalizer.new_mean/new_std`` becoming the model's
normalisation), or safetensors. Pickles load with ``weights_only=True``: one that needs code to
unpickle is refused, and nothing in it runs.
"""

from __future__ import annotations

import pickle
import shutil
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from ..errors import UserError, first_line
from ..io.digests import bytes_digest
from ..io.net import unreachable
from ..io.paths import cache_root
from .classifier import Classifier
from .registry import create_net

DEFAULT_MEAN, DEFAULT_STD = 0.5, 0.25


@dataclass
class Checkpoint:
    """Network weights plus the normalisation the checkpoint carries (if any)."""

    state: dict[str, torch.Tensor]
    mean: list[float] | None = None
    std: list[float] | None = None


# ---------------------------------------------------------------- sources ---------------------
def resolve(source: str) -> Path:
    """A local file for ``source``: a path, an http(s) URL (cached) or ``hf://org/repo/path[@rev]``."""
    if source.startswith(("http://", "https://")):
        return download(source)
    if source.startswith("hf://"):
        return hf_download(source)
    path = Path(source).expanduser()
    if not path.is_file():
        raise UserError(f"checkpoint {source}: file not found")
    return path


def download(url: str) -> Path:
    """Fetch ``url`` once into ``<cache>/downloads/`` (atomic rename); later calls reuse it."""
    name = Path(urlparse(url).path).name or "checkpoint"
    dest = cache_root() / "downloads" / f"{bytes_digest(url.encode())[:16]}-{name}"
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, open(tmp, "wb") as f:
            shutil.copyfileobj(resp, f, length=1 << 20)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        tmp.unlink(missing_ok=True)
        raise UserError(f"checkpoint {url}: download failed ({exc})") from None
    tmp.replace(dest)
    return dest


def hf_download(source: str) -> Path:
    """``hf://org/repo/path/in/repo[@revision]`` through ``huggingface_hub`` (its own cache)."""
    import huggingface_hub

    rest, _, revision = source[len("hf://"):].partition("@")
    parts = rest.split("/", 2)
    if len(parts) < 3 or not all(parts):
        raise UserError(f"checkpoint {source}: expected hf://org/repo/path/to/file[@revision]")
    from huggingface_hub import constants

    args = {"repo_id": f"{parts[0]}/{parts[1]}", "filename": parts[2], "revision": revision or None}
    down = None if constants.HF_HUB_OFFLINE else unreachable(constants.ENDPOINT)
    try:  # unreachable: the local cache or one line at once (not five retries with backoff)
        local = huggingface_hub.hf_hub_download(**args, local_files_only=bool(down))
    except Exception as exc:  # network, auth, missing file: all one line for the user
        if down:
            raise UserError(f"checkpoint {source}: cannot reach {constants.ENDPOINT} ({down}) and it is not "
                            "in the local Hub cache; connect, or set HF_ENDPOINT to a reachable mirror") from None
        raise UserError(f"checkpoint {source}: could not fetch ({type(exc).__name__}: {first_line(exc)})") from None
    return Path(local)


# ---------------------------------------------------------------- formats ---------------------
def is_safetensors(path: Path) -> bool:
    """Safetensors files start with an 8-byte little-endian header length and a JSON object."""
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < path.stat().st_size


def read(source: str) -> Checkpoint:
    """Resolve and read ``source`` into network weights (+ normalisation), running no code."""
    path = resolve(source)
    if is_safetensors(path):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return unwrap(load_file(str(path)), source)
        except SafetensorError as exc:  # truncated, a broken header: one line, no traceback
            raise UserError(f"checkpoint {source}: not a readable safetensors file ({first_line(exc)})") from None
    try:
        obj = torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError:
        raise UserError(
            f"checkpoint {source}: refused, it needs code to unpickle (not just tensors); "
            "convert it to safetensors or a plain state dict"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"checkpoint {source}: not a readable PyTorch checkpoint ({first})") from None
    return unwrap(obj, source)


def unwrap(obj: object, source: str) -> Checkpoint:
    """Find the state dict inside ``obj`` and undo robustness-library / DataParallel prefixes."""
    if isinstance(obj, dict):
        for key in ("model", "state_dict"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    state = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)} if isinstance(obj, dict) else {}
    if not state:
        raise UserError(f"checkpoint {source}: no tensors found (expected a state dict, a dict with "
                        "'model' or 'state_dict', or safetensors)")
    for pre in ("module.", ""):
        robust = any(k.startswith(pre + "model.") for k in state) and (
            pre == "module." or any(k.startswith(("normalizer.", "attacker.")) for k in state))
        if robust:
            mean, std = state.get(pre + "normalizer.new_mean"), state.get(pre + "normalizer.new_std")
            net = {k[len(pre) + 6:]: v for k, v in state.items() if k.startswith(pre + "model.")}
            return Checkpoint(net, _flat(mean), _flat(std))
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return Checkpoint(state)


def _flat(t: torch.Tensor | None) -> list[float] | None:
    return None if t is None else [float(v) for v in t.flatten()]


# ---------------------------------------------------------------- into a network --------------
def head_name(net: nn.Module) -> str | None:
    """The classification head: the last ``nn.Linear`` of the network (None if there is none)."""
    names = [n for n, m in net.named_modules() if isinstance(m, nn.Linear)]
    return names[-1] if names else None


def head_size(ckpt: Checkpoint, arch: str, in_channels: int, source: str) -> int:
    """Number of classes of the checkpoint's head for ``arch``."""
    with torch.device("meta"):
        net, _ = create_net(arch, 1, in_channels)
    head = head_name(net)
    weight = ckpt.state.get(f"{head}.weight") if head else None
    if weight is None:
        raise UserError(f"checkpoint {source}: no head {head}.weight for arch {arch!r}; give num_classes")
    return int(weight.shape[0])


def load_weights(net: nn.Module, ckpt: Checkpoint, source: str, arch: str, fine_tune: bool = False) -> None:
    """Copy ``ckpt`` into ``net``; a head of the wrong size is an error unless ``fine_tune``."""
    head = head_name(net)
    state, fresh = dict(ckpt.state), set()
    if head is not None:
        want = net.get_submodule(head).out_features
        have = state.get(f"{head}.weight")
        if have is not None and have.shape[0] != want and not fine_tune:
            raise UserError(
                f"checkpoint {source}: its head has {have.shape[0]} classes but the model has {want}; "
                "set train.fine_tune: true to replace the head, or fix classes / num_classes")
        if fine_tune:  # the L-WISE domain recipe: a fresh final layer
            fresh = {f"{head}.weight", f"{head}.bias"}
            state = {k: v for k, v in state.items() if k not in fresh}
    try:
        missing, unexpected = net.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        detail = next((ln.strip() for ln in str(exc).splitlines() if "size mismatch" in ln), str(exc))
        raise UserError(f"checkpoint {source}: does not fit arch {arch!r} ({detail})") from None
    missing = [k for k in missing if k not in fresh]
    if missing or unexpected:
        raise UserError(f"checkpoint {source}: does not fit arch {arch!r} (missing {_few(missing)}; "
                        f"unexpected {_few(unexpected)})")


def _few(keys: Sequence[str]) -> str:
    return ", ".join(list(keys)[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "") if keys else "none"


def normalisation(
    mean: Sequence[float] | None, std: Sequence[float] | None, in_channels: int, ckpt: Checkpoint | None = None
) -> tuple[list[float], list[float]]:
    """Per-channel mean/std: given, else the checkpoint's normaliser, else 0.5 / 0.25."""
    def pick(given, carried, default):
        vals = list(given) if given is not None else (carried if carried is not None else [default])
        return [float(v) for v in vals] * (in_channels if len(vals) == 1 else 1)

    return (pick(mean, ckpt and ckpt.mean, DEFAULT_MEAN), pick(std, ckpt and ckpt.std, DEFAULT_STD))


def classifier_from_checkpoint(
    source: str,
    arch: str,
    num_classes: int | None = None,
    classes: Sequence[str] | None = None,
    in_channels: int = 3,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    fine_tune: bool = False,
) -> Classifier:
    """A :class:`Classifier` of ``arch`` with the weights of ``source`` (head size from it if not given)."""
    ckpt = read(source)
    if classes is None:
        n = num_classes or head_size(ckpt, arch, in_channels, source)
        classes = [str(i) for i in range(n)]
    net, stages = create_net(arch, len(classes), in_channels)
    load_weights(net, ckpt, source, arch, fine_tune)
    m, s = normalisation(mean, std, in_channels, ckpt)
    return Classifier(net, stages, m, s, classes, arch=arch)
