"""The pipeline's commands: one per DVC stage (``lwise-build <stage> <corpus>``), plus analyze."""

from __future__ import annotations

from typing import Any

import click

from .group import (
    EXECUTOR_OPTION,
    cli,
    stage_params,
    with_params,
)


@cli.command()
@click.argument("corpus")
@stage_params
def resolve(params: Any, corpus: str) -> None:
    """Fingerprint the source and resolve every stage's params into data/<corpus>/resolved/."""
    from ..stages.resolve.stage import Resolve

    Resolve(params, corpus).run()


@cli.command()
@click.argument("corpus")
@stage_params
def ingest(params: Any, corpus: str) -> None:
    """Canonicalise a corpus's images into data/<corpus>/images/."""
    from ..stages.ingest.stage import Ingest

    Ingest(params, corpus).run()


@cli.command()
@click.argument("corpus")
@click.argument("model")
@stage_params
def train(params: Any, corpus: str, model: str) -> None:
    """Train (or import) MODEL on CORPUS into data/<corpus>/models/<model>/."""
    from ..stages.train.stage import Train

    Train(params, corpus, model).run()


@cli.command()
@click.argument("corpus")
@EXECUTOR_OPTION
@stage_params
def score(params: Any, corpus: str, executor: str | None) -> None:
    """Difficulty columns from each scoring model into data/<corpus>/scores/."""
    from ..stages.score.stage import Score

    Score(params, corpus, executor=executor).run()


@cli.command()
@click.argument("corpus")
@EXECUTOR_OPTION
@stage_params
def enhance(params: Any, corpus: str, executor: str | None) -> None:
    """Enhanced images at every budget into data/<corpus>/enhanced/."""
    from ..stages.enhance.stage import Enhance

    Enhance(params, corpus, executor=executor).run()


@cli.command()
@click.argument("corpus")
@stage_params
def curriculum(params: Any, corpus: str) -> None:
    """Trial sequences for every curriculum into data/<corpus>/curricula/."""
    from ..stages.curriculum.stage import Curriculum

    Curriculum(params, corpus).run()


@cli.command()
@click.argument("corpus")
@EXECUTOR_OPTION
@stage_params
def metamers(params: Any, corpus: str, executor: str | None) -> None:
    """Model metamers and their recognisability into data/<corpus>/metamers/."""
    from ..stages.metamers.stage import Metamers

    Metamers(params, corpus, executor=executor).run()


@cli.command()
@click.argument("corpus")
@stage_params
def export(params: Any, corpus: str) -> None:
    """The Hugging Face dataset folder into data/<corpus>/hub/."""
    from ..stages.export.stage import Export

    Export(params, corpus).run()


@cli.command()
@click.argument("corpus")
@stage_params
def report(params: Any, corpus: str) -> None:
    """The self-contained HTML explorer into data/<corpus>/report/."""
    from ..stages.report.stage import Report

    Report(params, corpus).run()


@cli.command()
@click.argument("corpus")
@stage_params
def experiment(params: Any, corpus: str) -> None:
    """Run-ready jsPsych experiments for every curriculum into data/<corpus>/experiment/."""
    from ..stages.experiment.stage import Experiment

    Experiment(params, corpus).run()


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
