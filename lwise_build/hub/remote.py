"""Talking to the Hub: version tags, the endpoint, and errors as one line with no token in it.

``HF_ENDPOINT`` picks the server (the tests use olah on loopback); ``HF_HUB_OFFLINE=1`` reads
only the local cache. The token comes from the environment or ``hf auth login`` and never reaches
a message or a file.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

from ..errors import UserError

REPO_TYPE = "dataset"


def version_tag(version: str) -> str:
    """``1.2.0`` or ``v1.2.0`` -> ``v1.2.0``."""
    v = version[1:] if re.fullmatch(r"v\d.*", version) else version
    if not re.fullmatch(r"[0-9A-Za-z][0-9A-Za-z.+_-]*", v):
        raise UserError(f"--version: not a version, got {version!r}")
    return f"v{v}"


def redact(text: str) -> str:
    """Remove credentials from URLs (``https://user:token@host`` -> ``https://***@host``)."""
    return re.sub(r"(?<=://)[^/@\s]+@", "***@", text)


def scrub(text: str) -> str:
    """Remove the Hub token (and anything token-shaped) from a message."""
    from huggingface_hub import get_token

    token = get_token()
    if token:
        text = text.replace(token, "***")
    return redact(re.sub(r"hf_[A-Za-z0-9]{8,}", "hf_***", text))


@contextlib.contextmanager
def hub_errors(what: str) -> Iterator[None]:
    """Turn Hub/HTTP failures into one line with any token scrubbed out."""
    try:
        yield
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - network and Hub errors of every kind
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(f"{what}: {type(exc).__name__}: {scrub(first)}") from None


def endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)
