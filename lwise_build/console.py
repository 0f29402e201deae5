"""The one output channel for messages and progress (library code never prints).

Messages go to the ``lwise_build`` logger; the CLI routes it to stderr through ``tqdm.write`` so
lines never tear a progress bar, while a notebook sees nothing unless it configures logging.
Progress bars show on a terminal; in a log (stderr not a terminal, e.g. ``dvc repro > build.log``)
a long task writes a line every ``LWISE_PROGRESS_SECONDS`` (default 60) with what is done of the
total, the time so far and an ETA, and a last line when it ends (short tasks stay silent).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator
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
    """A progress bar over ``iterable`` (or a manual one with ``total``, advanced by ``update``)
    on a terminal; :class:`LogProgress` lines when stderr is not one."""
    if not _interactive():
        return LogProgress(iterable, total=total, desc=desc, unit=unit)
    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, file=sys.stderr,
                disable=None, mininterval=0.5, dynamic_ncols=True)


def _interactive() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def duration(seconds: float) -> str:
    """``42s``, ``3m05s`` or ``2h07m``: a span of time for a progress line."""
    s = int(round(max(seconds, 0.0)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class LogProgress:
    """Progress for logs: the tqdm calls the stages use (iterate, ``update``, ``set_postfix``,
    ``with``), written as a line at most every ``every`` seconds and once at the end when any
    line was written. Thread-safe: parallel units advance one shared count."""

    def __init__(self, iterable: Iterable[Any] | None = None, *, total: int | None = None, desc: str = "",
                 unit: str = "it", every: float | None = None):
        self.iterable, self.desc, self.unit = iterable, desc, unit
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.total, self.n, self.postfix = total, 0, ""
        self.every = float(os.environ.get("LWISE_PROGRESS_SECONDS", 60)) if every is None else every
        self.start = self.last = time.monotonic()
        self.wrote, self._lock = False, threading.Lock()

    def __iter__(self) -> Iterator[Any]:
        for item in self.iterable or ():
            yield item
            self.update(1)
        self.close()

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        with self._lock:
            self.n += n
            now = time.monotonic()
            if now - self.last >= self.every and (self.total is None or self.n < self.total):
                self.last, self.wrote = now, True
                info(self.line(now))

    def set_postfix(self, refresh: bool = False, **values: Any) -> None:  # noqa: ARG002 - tqdm's signature
        self.postfix = ", ".join(f"{k} {v}" for k, v in values.items())

    def close(self) -> None:
        with self._lock:
            if self.wrote:
                self.wrote = False
                info(self.line(time.monotonic()))

    def line(self, now: float) -> str:
        """``desc: 12/160 batches (8%), 3m05s so far, ETA 34m10s``."""
        elapsed, head = now - self.start, f"{self.desc}: " if self.desc else ""
        if not self.total:
            return f"{head}{self.n} {self.unit}, {duration(elapsed)} so far"
        done = f"{head}{self.n}/{self.total} {self.unit} ({self.n / self.total:.0%}), {duration(elapsed)} so far"
        if 0 < self.n < self.total:
            done += f", ETA {duration(elapsed / self.n * (self.total - self.n))}"
        return done + (f"; {self.postfix}" if self.postfix else "")


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
