"""The pipeline's commands: one per DVC stage (``lwise-build <stage> <corpus>``), generated from
the stage registry, plus analyze and serve (not DVC stages)."""

from __future__ import annotations

from typing import Any

import click

from ..stages.registry import SPECS
from ..stages.spec import StageSpec
from .group import (
    EXECUTOR_OPTION,
    cli,
    stage_params,
    with_params,
)


def stage_command(spec: StageSpec) -> click.Command:
    """``lwise-build <name> CORPUS [MODEL]`` (``--executor`` when the spec takes it): runs the spec's
    stage class, imported only then (stage modules load torch)."""

    def run(params: Any, corpus: str, model: str | None = None, executor: str | None = None) -> None:
        args = (params, corpus) if model is None else (params, corpus, model)
        spec.load()(*args, **({"executor": executor} if spec.executor else {})).run()

    fn = stage_params(run)
    fn = EXECUTOR_OPTION(fn) if spec.executor else fn
    fn = click.argument("model")(fn) if spec.per == "model" else fn
    return cli.command(spec.name, help=spec.help)(click.argument("corpus")(fn))


for _spec in SPECS:
    stage_command(_spec)


@cli.command()
@click.argument("corpus")
@click.option("--responses", required=True, type=click.Path(exists=True, file_okay=False),
              help="Folder of saved sessions (CSV, JSON or JSON lines; a `serve` store).")
@click.option("--allow-build-mismatch", is_flag=True,
              help="Count sessions recorded by another build of the experiment (their trials must still "
                   "match its sequences).")
@with_params
def analyze(params: Any, corpus: str, responses: str, allow_build_mismatch: bool) -> None:
    """Accuracy per participant and condition, L-WISE gains and the difficulty calibration."""
    from ..stages.analyze.stage import Analyze

    Analyze(params, corpus, responses, allow_build_mismatch).run()


@cli.command()
@click.argument("corpus")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--store", type=click.Path(file_okay=False), default=None,
              help="Folder for assignments and sessions [default: data/<corpus>/responses].")
@click.option("--node-modules", type=click.Path(exists=True, file_okay=False), default=None,
              help="Serve this node_modules at /node_modules/ (library_url: node_modules/{package}).")
@click.option("--allow-origin", multiple=True, help="Origin allowed to POST from another host (CORS); repeatable.")
@with_params
def serve(params: Any, corpus: str, host: str, port: int, store: str | None, node_modules: str | None,
          allow_origin: tuple[str, ...]) -> None:
    """Serve the experiment, assign sequences in order and store every trial (the collector)."""
    from pathlib import Path

    from .. import console
    from ..collector import bind, open_collector, server
    from ..io.paths import stage_dir

    params.corpus(corpus)
    folder = Path(store) if store else stage_dir(corpus, "responses")
    app, st = open_collector(stage_dir(corpus, "experiment"), folder, Path(node_modules) if node_modules else None,
                             allow_origin)
    try:
        sock = bind(host, port)
        console.info(f"serving {stage_dir(corpus, 'experiment')} at http://{host}:{sock.getsockname()[1]}/ ; sessions "
                     f"go to {folder} (then: lwise-build analyze {corpus} --responses {folder})")
        server(app, host, port).run(sockets=[sock])
    finally:
        st.close()
