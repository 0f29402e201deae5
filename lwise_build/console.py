"""The one output channel for messages and progress (library code never prints).

Messages go to the ``lwise_build`` logger; the CLI routes it to stderr through ``tqdm.write`` so
lines never tear a progress bar, while a notebook sees nothing unless it configures logging.
Progress bars show on a terminal and stay quiet in logs (``disable=None``).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")
log = logging.getLogger("lwise_build")


def info(message: str) -> None:
    """One line for the user (what a stage did, where its output is)."""
    log.info(message)


def warn(message: str) -> None:
    """Something unusual the user should know about; the work goes on."""
    log.warning(message)


def progress(iterable: Iterable[T] | None = None, *, total: int | None = None, desc: str = "",
             unit: str = "it", leave: bool = True) -> Any:
    """A progress bar over ``iterable`` (or a manual one with ``total``) on stderr."""
    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, file=sys.stderr,
                disable=None, mininterval=0.5, dynamic_ncols=True)


class _TqdmHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        prefix = "warning: " if record.levelno >= logging.WARNING else ""
        tqdm.write(prefix + self.format(record), file=sys.stderr)


def setup() -> None:
    """Show info and warnings on stderr (called once by the CLI entry point)."""
    if not any(isinstance(h, _TqdmHandler) for h in log.handlers):
        log.addHandler(_TqdmHandler())
    log.setLevel(logging.INFO)
    log.propagate = False
