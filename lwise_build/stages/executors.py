"""Executors: what runs a heavy stage's batches of missing items (docs/architecture.md, "Executors").

``local`` runs them in this process (side by side in threads where the stage asks for it);
``ray`` hands them to an actor pool on Ray Data, where each actor rebuilds the stage from its
params once (models loaded once, on the actor's GPU when it has one) and computes batch after
batch. Either way the results come back to the stage, which puts them in the unit cache and
assembles its output in a fixed order, so the bytes do not depend on the executor.
"""

from __future__ import annotations

import json
import os
import pickle
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import pyarrow as pa

from .. import console
from ..config.executor import EXECUTOR_KINDS
from ..config.schema import to_plain
from ..errors import UserError
from ..io.paths import data_root

if TYPE_CHECKING:
    from ..config.executor import RayParams
    from .base import StageContext

RAY_EXTRA = "pip install 'lwise-build[ray]'"
T = TypeVar("T")
Batch = Sequence[Any]  # the items of one unit of work (stages/units.Item)


class Units(Protocol):
    """What an executor needs of a heavy stage (:class:`~.units.UnitStage` is one): where it
    runs, how to compute one batch, and where progress and Ray's timings go."""

    name: str
    ctx: StageContext
    executor: str | None
    remote: bool
    work_unit: str
    tick: Callable[[int], Any]

    @property
    def ray_units(self) -> list[UnitRun]: ...

    def work_size(self, batch: Batch) -> int: ...

    def work(self, batch: Batch) -> pa.Table: ...

    def imap_units(self, fn: Callable[[Any], T], items: list[Any], desc: str, show: bool = True) -> Iterator[T]: ...


def executor_settings(stage: Units) -> tuple[str, RayParams]:
    """The stage's executor kind (its CLI choice, else the corpus's setting, else the global one)
    and the Ray settings that go with it."""
    spec = stage.ctx.spec.executor or stage.ctx.params.executor
    kind = (stage.executor or spec.kind) if stage.remote else "local"
    if kind not in EXECUTOR_KINDS:  # the CLI and the schema check it too; this guards the Python API
        raise UserError(f"executor: must be one of {', '.join(EXECUTOR_KINDS)}, got {kind!r}")
    return kind, spec.ray


def compute_device_type(stage: Units) -> str:
    """The device type the stage's units compute on, which their cache keys record: this
    process's, except on Ray with GPUs per actor and ``device`` auto or cuda, where the actors
    compute on CUDA even when the driver (a CPU head node) has none."""
    kind, rp = executor_settings(stage)
    if kind == "ray" and rp.gpus_per_actor > 0 and stage.ctx.params.device in ("auto", "cuda"):
        return "cuda"
    return stage.ctx.device.type


def executor_for(stage: Units) -> LocalExecutor | RayExecutor:
    """The stage's executor (:func:`executor_settings`)."""
    kind, rp = executor_settings(stage)
    return RayExecutor(stage, rp) if kind == "ray" else LocalExecutor(stage)


class LocalExecutor:
    """Batches in this process, each result handed back as soon as it is done."""

    def __init__(self, stage: Units):
        self.stage = stage

    def run(self, batches: list[Batch], desc: str) -> Iterator[pa.Table]:
        """One progress over the batches' work (steps for long syntheses: done, total and an ETA)."""
        st = self.stage
        total = sum(st.work_size(b) for b in batches)
        before = st.tick
        with console.progress(total=total, desc=desc, unit=f"{st.work_unit}s") as bar:
            st.tick = bar.update
            try:
                yield from st.imap_units(st.work, batches, desc, show=False)
            finally:
                st.tick = before


@dataclass(frozen=True)
class UnitRun:
    """Where and when one batch ran on Ray (``time.time()`` of its actor's machine)."""

    node: str
    actor: str
    began: float
    ended: float


class RayExecutor:
    """Batches on a Ray Data actor pool (``map_batches`` with a callable class)."""

    def __init__(self, stage: Units, rp: RayParams):
        self.stage, self.rp = stage, rp

    def run(self, batches: list[Batch], desc: str) -> Iterator[pa.Table]:
        ray = _import_ray(self.rp.address)
        connect(ray, self.rp.address)
        rp, st = self.rp, self.stage
        spec = {"module": type(st).__module__, "cls": type(st).__name__, "corpus": st.ctx.corpus,
                "params": json.loads(json.dumps(to_plain(st.ctx.params), default=str)),
                "data": rp.data_root or str(data_root().resolve()), "threads": rp.threads_per_actor,
                "device": compute_device_type(st)}
        rows = [{"index": i, "items": pickle.dumps(b)} for i, b in enumerate(batches)]
        submitted, runs = time.time(), []
        ds = ray.data.from_items(rows, override_num_blocks=max(1, len(rows)))
        pool = ray.data.ActorPoolStrategy(size=min(rp.actors, max(1, len(rows))), max_tasks_in_flight_per_actor=1)
        out = ds.map_batches(StageWorker, fn_constructor_args=(spec,), batch_size=1, batch_format="pyarrow",
                             compute=pool, num_cpus=rp.cpus_per_actor, num_gpus=rp.gpus_per_actor or None)
        # each result as soon as its batch is done (iter_rows holds one back to prefetch the next)
        done = (row for b in out.iter_batches(batch_size=None, prefetch_batches=0, batch_format="pyarrow")
                for row in b.to_pylist())
        for row in console.progress(done, total=len(rows), desc=f"{desc} (ray)", unit="batch"):
            if row["error"]:
                raise UserError(f"{st.name}: {describe(batches[row['index']])} failed on Ray: {row['error']}")
            runs.append(UnitRun(row["node"], row["actor"], row["began"], row["ended"]))
            yield pa.ipc.open_stream(row["table"]).read_all()
        st.ray_units.extend(runs)
        console.info(f"{st.name} {st.ctx.corpus}: {utilisation(runs, submitted)}")


def utilisation(runs: list[UnitRun], submitted: float) -> str:
    """How the pool spent a stage's time, in one line: start-up until the first batch began, then
    the share of the actors' time spent computing (low means the actors waited for work)."""
    if not runs:
        return "ray: nothing computed"
    actors, nodes = {r.actor for r in runs}, {r.node for r in runs}
    first, last = min(r.began for r in runs), max(r.ended for r in runs)
    busy = sum(r.ended - r.began for r in runs) / (len(actors) * max(last - first, 1e-9))
    return (f"ray: {len(runs)} batches on {len(actors)} actor(s), {len(nodes)} node(s); "
            f"start-up {max(first - submitted, 0.0):.1f} s, then actors busy {min(busy, 1.0):.0%}")


def describe(batch: Batch) -> str:
    """A batch in a few words, for error messages (its size and first item)."""
    return f"the unit of {len(batch)} items starting with {batch[0].payload!r:.80}"


class StageWorker:
    """A Ray actor's stage: rebuilt from plain params once, then one batch per call."""

    def __init__(self, spec: dict[str, Any]):
        import importlib

        import torch

        from ..config.load import parse_params
        from ..device import configure_process

        configure_process()
        torch.set_num_threads(spec["threads"])
        os.environ["LWISE_DATA"] = _local_data(spec["data"], spec["corpus"])
        cls = getattr(importlib.import_module(spec["module"]), spec["cls"])
        self.stage = cls(parse_params(spec["params"]), spec["corpus"], executor="local")
        self.stage.prepare()
        self.mismatch = device_mismatch(self.stage.ctx.device.type, spec["device"])

    def __call__(self, batch: pa.Table) -> pa.Table:
        import ray

        items = pickle.loads(batch.column("items")[0].as_py())
        context, began = ray.get_runtime_context(), time.time()
        try:
            if self.mismatch:
                raise UserError(self.mismatch)
            table, error = self.stage.work(items), ""
        except Exception as exc:  # noqa: BLE001 - reported by the driver as one line naming the unit
            table, error = None, f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        blob = b""
        if table is not None:
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
            blob = sink.getvalue().to_pybytes()
        return pa.table({"index": batch.column("index"), "table": pa.array([blob], pa.binary()),
                         "error": [error], "node": [context.get_node_id()], "actor": [context.get_actor_id()],
                         "began": [began], "ended": [time.time()]})


def device_mismatch(actor: str, keyed: str) -> str:
    """Why an actor must not compute units keyed for another device type ("" when it may): its
    results would enter the cache under the wrong device (docs/architecture.md, "Executors")."""
    if actor == keyed:
        return ""
    return (f"this actor computes on {actor} but the run's cache keys say {keyed} "
            "(set device: and executor.ray.gpus_per_actor to agree)")


def _local_data(root: str, corpus: str) -> str:
    """``data/`` as a local folder: the given one, or a copy of an object-store prefix."""
    if "://" not in root:
        return root
    import tempfile

    from pyarrow import fs

    source, prefix = fs.FileSystem.from_uri(f"{root.rstrip('/')}/{corpus}")
    local = tempfile.mkdtemp(prefix="lwise-ray-data-")
    fs.copy_files(prefix, f"{local}/{corpus}", source_filesystem=source, destination_filesystem=fs.LocalFileSystem())
    return local


def _import_ray(address: str) -> Any:
    """Ray, set up to stay on loopback when it runs here (no node-IP lookup, no usage report)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if not address or address.split(":")[0] in ("127.0.0.1", "localhost"):
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # localhost stays 127.0.0.1
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise UserError(f"executor: ray is not installed; {RAY_EXTRA}") from None
    return ray


def connect(ray: Any, address: str) -> None:
    """Join the cluster at ``address`` (or start Ray here, on 127.0.0.1 only), once per process."""
    if ray.is_initialized():
        return
    if address and address != "auto" and "://" not in address:
        host, _, port = address.rpartition(":")
        try:  # fail in seconds, not after Ray's minutes of retries
            socket.create_connection((host, int(port)), timeout=5).close()
        except (OSError, ValueError) as exc:
            raise UserError(f"executor.ray.address: cannot reach a Ray cluster at {address!r} ({exc})") from None
    try:
        if address:
            ray.init(address=address, log_to_driver=False, logging_level="ERROR")
        else:
            ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False,
                     logging_level="ERROR")
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(f"executor.ray.address: cannot reach a Ray cluster at {address!r} ({first[:200]})") from None
