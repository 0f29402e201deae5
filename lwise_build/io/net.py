"""Whether a server can be reached at all, asked once and quickly before a library that retries.

``huggingface_hub`` retries a failed download five times with backoff (about 25 s of warnings)
before it says the network is down; a two-second TCP connect says it at once.
"""

from __future__ import annotations

import os
import socket
import threading
from urllib.parse import urlparse

PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def unreachable(url: str, timeout: float = 3.0) -> str | None:
    """Why ``url``'s host cannot be reached (a short reason), or None when it answers a TCP
    connect, or when a proxy is configured (then only the proxy knows: the library decides)."""
    if any(os.environ.get(v) for v in PROXY_VARS):
        return None
    parsed = urlparse(url)
    host, port = parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80)
    if not host:
        return f"not a URL: {url}"
    result: list[str | None] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(None)
        except OSError as exc:
            result.append(exc.strerror or type(exc).__name__)

    worker = threading.Thread(target=probe, daemon=True)  # name resolution has no timeout of its own
    worker.start()
    worker.join(timeout + 1)
    return result[0] if result else f"no answer within {timeout + 1:g} s"
