"""The ``executor:`` section (global, or per corpus): what runs the heavy stages' units."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from .schema import non_negative, param, positive

ExecutorKind = Literal["local", "ray"]
#: What may run the heavy stages' units: checked here (params) and by the CLI's ``--executor``.
EXECUTOR_KINDS: tuple[str, ...] = get_args(ExecutorKind)


@dataclass(frozen=True)
class RayParams:
    """Where and how ``executor: ray`` runs the heavy stages (docs/architecture.md, "Executors")."""

    address: str = param("", doc='"" starts Ray on this machine; "auto" or "host:port" joins a running cluster')
    actors: int = param(2, check=positive, doc="actors per stage; each loads the stage's models once")
    cpus_per_actor: float = param(1.0, check=positive, doc="CPUs Ray reserves for each actor")
    gpus_per_actor: float = param(0.0, check=non_negative, doc="1 = one model copy per GPU")
    threads_per_actor: int = param(1, check=positive, doc="torch threads inside each actor")
    data_root: str | None = param(None, doc="data/ as the actors see it: a shared folder, or "
                                  "s3://bucket/prefix they copy their inputs from; default this machine's")


@dataclass(frozen=True)
class ExecutorParams:
    """What runs the heavy stages' units: this process, or a Ray cluster. Outputs are the same."""

    kind: ExecutorKind = param("local", doc="local: this process; ray: a Ray Data actor pool")
    ray: RayParams = param(RayParams(), doc="the Ray cluster and actors (kind: ray)")
