"""Pick the torch device from the ``device`` param (``auto`` prefers CUDA, then MPS, then CPU)."""

from __future__ import annotations

import torch

from .errors import UserError


def pick_device(name: str = "auto") -> torch.device:
    """Resolve ``auto``/``cpu``/``cuda[:N]``/``mps``; asking for an absent accelerator is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device: {name!r} requested but CUDA is not available (use auto or cpu)")
    return torch.device(name)
