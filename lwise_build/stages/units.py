"""Units of work: the items of a heavy stage, computed in fixed-shape batches and cached by key.

A :class:`UnitStage` lists its items (each keyed by everything its result depends on), and
:meth:`UnitStage.ensure` computes only those the unit cache lacks, on the configured executor
(docs/architecture.md, "Units and the cache" and "Executors").
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pyarrow as pa

from .. import console
from ..config.params import Params
from ..errors import UserError
from ..io.cache import ItemCache
from ..io.tables import pngs_at
from .base import Stage
from .executors import UnitRun, compute_device_type, executor_for
from .keys import CacheKey

T = TypeVar("T")


@dataclass(frozen=True)
class Item:
    """One item of a heavy stage's work; its result depends only on what ``key`` hashes.
    ``payload``: what computing it needs, a small frozen dataclass of the stage (``ScoreWork``)."""

    key: str
    payload: Any = None


class UnitStage(Stage):
    """A stage whose heavy work is items computed in batches, each result cached by its key.

    Results are exact per item: every batch runs at the same fixed shape (the stage's batch
    size, padded), where a sample's numbers do not depend on its companions, so any grouping of
    the missing items (a clean build, an incremental one, another executor) gives the same bytes.
    """

    parallel_units: ClassVar[bool] = False  # CPU: run batches side by side, one thread each
    remote: ClassVar[bool] = True  # may run on Ray (ingest reads local source files: it may not)
    work_unit: ClassVar[str] = "batch"  # what local progress counts; "step": compute calls tick per step
    cache_key: ClassVar[CacheKey]  # what a unit's result depends on (the stage's key.py)

    def __init__(self, params: Params, corpus: str, executor: str | None = None):
        super().__init__(params, corpus)
        self.executor = executor  # "local" or "ray"; None: the corpus's, else the global setting
        self.tick: Callable[[int], Any] = _ignore  # advances the running local progress (LocalExecutor)

    def work_size(self, batch: list[Item]) -> int:  # noqa: ARG002 - a hook: subclasses use it
        """How much progress one batch is, in :attr:`work_unit` (steps for long syntheses)."""
        return 1

    @cached_property
    def cache(self) -> ItemCache:
        return ItemCache(self.name)

    @cached_property
    def resolved(self) -> dict[str, Any]:
        """The stage's resolved params (what ``resolve`` writes for it): what keys hash."""
        return self.stage_spec.resolved(self.ctx.params, self.ctx.corpus)

    @cached_property
    def compute_device(self) -> str:
        """The device type this run's units compute on, which their keys record (on Ray with GPU
        actors not the driver's: :func:`~.executors.compute_device_type`)."""
        return compute_device_type(self)

    def key_prefix(self, **run: Any) -> str:
        """The part of this run's unit keys that its units share (:class:`~.keys.CacheKey`)."""
        return self.cache_key.prefix(self.resolved, **run)

    def batches(self, items: list[Item]) -> list[list[Item]]:
        """How missing items are grouped for computing (any grouping gives the same results)."""
        raise NotImplementedError

    def compute(self, batch: list[Item]) -> pa.Table:
        """One row per item of ``batch`` with its ``key`` (the only place real work happens)."""
        raise NotImplementedError

    def attach(self, batch: list[Item]) -> list[Item]:
        """The batch with what compute needs that its keys do not carry (e.g. image bytes, read
        from the stage's input tables); runs where compute runs (in a Ray actor, say)."""
        return batch

    def ensure(self, items: list[Item], desc: str) -> None:
        """Compute the items the cache lacks, on the configured executor, and say how many were
        reused; results land in the cache, never straight in the output."""
        if not items:
            return
        missing = set(self.cache.missing(it.key for it in items))
        todo = list({it.key: it for it in items if it.key in missing}.values())
        total = len({it.key for it in items})
        if todo:
            for table in executor_for(self).run(self.batches(todo), f"{self.name} {desc}"):
                self.cache.put(table)
        self.counts.append((desc, total - len(todo), len(todo)))
        console.info(f"{self.name} {self.ctx.corpus}: {desc}: {total - len(todo)} reused, {len(todo)} computed")

    def work(self, batch: list[Item]) -> pa.Table:
        """What an executor runs per batch: attach, then compute (then one tick of progress,
        unless compute ticks its own steps)."""
        table = self.compute(self.attach(batch))
        if self.work_unit == "batch":
            self.tick(1)
        return table

    @cached_property
    def counts(self) -> list[tuple[str, int, int]]:
        """(what, reused, computed) per :meth:`ensure` call of this run."""
        return []

    @cached_property
    def ray_units(self) -> list[UnitRun]:
        """Where and when each batch of this run ran, when the executor was Ray."""
        return []

    def lookup(self, keys: list[str], columns: list[str] | None = None) -> pa.Table:
        """The cached rows of ``keys`` in that order (after :meth:`ensure`)."""
        try:
            return self.cache.get(keys, columns)
        except (KeyError, OSError) as exc:
            raise UserError(f"{self.name}: a cache entry vanished during the run ({exc}); rerun") from None

    def map_units(self, fn: Callable[[Any], T], items: list[Any], desc: str) -> list[T]:
        """``fn`` over ``items``, results in order (see :meth:`imap_units`)."""
        results = dict(self.imap_units(lambda pair: (pair[0], fn(pair[1])), list(enumerate(items)), desc))
        return [results[i] for i in range(len(items))]

    def imap_units(self, fn: Callable[[Any], T], items: list[Any], desc: str, show: bool = True) -> Iterator[T]:
        """``fn`` over ``items``, each result as soon as it is done; with ``parallel_units`` on a
        CPU side by side in threads with one torch thread each (always, so bytes do not depend on
        the cache state). ``show``: a progress bar over the items (off when the caller has one)."""
        if self.parallel_units and self.ctx.device.type == "cpu":
            yield from _threads(fn, items, desc, show)
            return
        for item in console.progress(items, desc=desc, unit="batch") if show else items:
            yield fn(item)


def attach_pngs(images: Path, batch: list[Item], where: Callable[[Item], tuple[str, int]]) -> list[Item]:
    """``batch`` with each item's PNG bytes set as its payload's ``png``; ``where`` gives the
    item's (shard file name, row) in the ``images`` table. Reads only the row groups holding them."""
    pngs = pngs_at(images, [where(it) for it in batch])
    return [Item(it.key, replace(it.payload, png=png)) for it, png in zip(batch, pngs, strict=True)]


def chunks(items: list[Any], size: int) -> list[list[Any]]:
    """``items`` cut into lists of at most ``size``."""
    return [items[i:i + size] for i in range(0, len(items), size)]


def group_by(items: list[Item], by: Callable[[Item], Hashable], size: int) -> list[list[Item]]:
    """Items with the same ``by`` value together (first-seen order), cut into batches of ``size``."""
    groups: dict[Hashable, list[Item]] = {}
    for it in items:
        groups.setdefault(by(it), []).append(it)
    return [batch for group in groups.values() for batch in chunks(group, size)]


def _ignore(n: int = 1) -> None:
    """Progress nobody shows (no local run in progress)."""


def _threads(fn: Callable[[Any], T], items: list[Any], desc: str, show: bool = True) -> Iterator[T]:
    """``fn`` over ``items`` in threads with one torch thread each, results as they finish.

    Small models on few cores run faster as parallel single-threaded units than as one
    multi-threaded unit at a time, and single-threaded results do not depend on the core count.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(max(1, min(threads, len(items)))) as pool:
            futures = [pool.submit(fn, item) for item in items]
            done = as_completed(futures)
            for future in console.progress(done, total=len(items), desc=desc, unit="unit") if show else done:
                yield future.result()
    finally:
        torch.set_num_threads(threads)
