"""lwise-build: declarative, data-versioned builder of model-guided image datasets.

Public API (heavy imports happen on first use)::

    from lwise_build import load_model, score, enhance, metamers, load_params
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_API = {
    "load_params": "lwise_build.api",
    "load_model": "lwise_build.api",
    "score": "lwise_build.api",
    "enhance": "lwise_build.api",
    "metamers": "lwise_build.api",
    "UserError": "lwise_build.errors",
}
__all__ = [*_API, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(import_module(_API[name]), name)
    raise AttributeError(f"module 'lwise_build' has no attribute {name!r}")
