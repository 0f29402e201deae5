"""The ``lwise-build`` command line: each command is a few lines that call into the library.

User mistakes print one line (``error: ...``) and exit 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any

import click

from . import console
from .device import configure_process
from .errors import UserError

PARAMS_OPTION = click.option(
    "--params", "params_path", default="params.yaml", show_default=True,
    type=click.Path(dir_okay=False), help="The params file to read.",
)


EXECUTOR_OPTION = click.option(
    "--executor", type=click.Choice(["local", "ray"]), default=None,
    help="Where the heavy work runs (default: the params' executor); the outputs are the same.")


def with_params(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--params`` to a command and pass the validated :class:`Params` as ``params``."""

    @PARAMS_OPTION
    @click.pass_context
    @functools.wraps(fn)
    def wrapper(ctx: click.Context, params_path: str, **kwargs: Any) -> Any:
        from .config.load import load_params

        if "out" in kwargs:
            guard_outputs(params_path, kwargs["out"])
        ctx.obj["params"] = load_params(params_path)
        ctx.obj["params_path"] = params_path
        return fn(params=ctx.obj["params"], **kwargs)

    return wrapper


OUT_OPTION = click.option(
    "--out", "out", type=click.Path(file_okay=False),
    help="Read and write this run's stage outputs under DIR/<corpus>/ instead of data/ "
         "(required with --params other than the pipeline's params.yaml).",
)


def stage_params(fn: Callable[..., Any]) -> Callable[..., Any]:
    """:func:`with_params` plus ``--out`` for the commands that write stage outputs: a params
    file other than the pipeline's must not overwrite the DVC-tracked outputs under data/."""

    @OUT_OPTION
    @with_params
    @functools.wraps(fn)
    def wrapper(out: str | None, **kwargs: Any) -> Any:
        return fn(**kwargs)

    return wrapper


def guard_outputs(params_path: str, out: str | None) -> None:
    """``--out DIR`` becomes the data root; otherwise refuse other params inside a DVC pipeline."""
    import os
    from pathlib import Path

    from .io.paths import DATA_ROOT_ENV

    if out:
        os.environ[DATA_ROOT_ENV] = str(Path(out))
    elif (Path("dvc.yaml").is_file() and DATA_ROOT_ENV not in os.environ
          and Path(params_path).resolve() != Path("params.yaml").resolve()):
        raise UserError(f"--params {params_path}: not the pipeline's params.yaml, so this run would overwrite "
                        "the DVC-tracked outputs under data/; pass --out DIR to use DIR/<corpus>/ instead")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors.")
@click.version_option(package_name="lwise-build")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Build model-guided image datasets: difficulty, enhancement, curricula, metamers."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


@cli.command()
@with_params
def check(params: Any) -> None:
    """Validate params and sources without running a stage; list the stages that would run."""
    from .stages.check import check_project
    from .stages.plan import planned_stages

    findings = check_project(params)
    for f in findings:
        click.echo(f"{f.level}: {f.text}", err=True)
    errors = sum(f.level == "error" for f in findings)
    if errors:
        click.echo(f"{errors} error(s): fix them before `dvc repro`", err=True)
        sys.exit(2)
    warned = len(findings)
    click.echo("params OK" + (f" ({warned} warning{'s' * (warned != 1)})" if warned else ""))
    for line in planned_stages(params):
        click.echo(f"  {line}")


@cli.command("params")
@click.option("--reference", is_flag=True, help="Print the reference of every key (docs/params.md).")
@PARAMS_OPTION
def params_cmd(reference: bool, params_path: str) -> None:
    """The params file with every default filled in, or (--reference) every key documented."""
    if reference:
        from .config.reference import params_reference

        click.echo(params_reference(), nl=False)
        return
    import yaml

    from .config.load import load_params
    from .config.schema import to_plain

    plain = json.loads(json.dumps(to_plain(load_params(params_path)), default=str))
    click.echo(yaml.safe_dump(plain, sort_keys=False), nl=False)


@cli.command()
def models() -> None:
    """The architectures `arch:` accepts, their layers (metamer stages) and input conventions."""
    from .models.registry import architectures, describe

    for name in architectures():
        info = describe(name)
        click.echo(f"{name}\n  layers:   {info['layers']}\n  channels: {info['channels']}\n"
                   f"  input:    {info['input']}")
    click.echo("timm:<name>\n  any timm model (pip install timm); layers: its top-level children")


@cli.command()
@click.argument("corpus")
@stage_params
def resolve(params: Any, corpus: str) -> None:
    """Fingerprint the source and resolve every stage's params into data/<corpus>/resolved/."""
    from .stages.resolve import Resolve

    Resolve(params, corpus).run()


@cli.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True,
              type=click.Path(dir_okay=False), help="The params file to read.")
def status(params_path: str) -> None:
    """Refresh every corpus's source fingerprint, then show `dvc status` (what a repro would run)."""
    from .stages.plan import pipeline_status

    click.echo(pipeline_status(params_path))


@cli.command()
@click.argument("corpus")
@stage_params
def ingest(params: Any, corpus: str) -> None:
    """Canonicalise a corpus's images into data/<corpus>/images/."""
    from .stages.ingest import Ingest

    Ingest(params, corpus).run()


@cli.command()
@click.argument("corpus")
@click.argument("model")
@stage_params
def train(params: Any, corpus: str, model: str) -> None:
    """Train (or import) MODEL on CORPUS into data/<corpus>/models/<model>/."""
    from .stages.train import Train

    Train(params, corpus, model).run()


@cli.command()
@click.argument("corpus")
@EXECUTOR_OPTION
@stage_params
def score(params: Any, corpus: str, executor: str | None) -> None:
    """Difficulty columns from each scoring model into data/<corpus>/scores/."""
    from .stages.score import Score

    Score(params, corpus, executor=executor).run()


@cli.command()
@click.argument("corpus")
@EXECUTOR_OPTION
@stage_params
def enhance(params: Any, corpus: str, executor: str | None) -> None:
    """Enhanced images at every budget into data/<corpus>/enhanced/."""
    from .stages.enhance import Enhance

    Enhance(params, corpus, executor=executor).run()


@cli.command()
@click.argument("corpus")
@stage_params
def curriculum(params: Any, corpus: str) -> None:
    """Trial sequences for every curriculum into data/<corpus>/curricula/."""
    from .stages.curriculum import Curriculum

    Curriculum(params, corpus).run()


@cli.command()
@click.argument("corpus")
@EXECUTOR_OPTION
@stage_params
def metamers(params: Any, corpus: str, executor: str | None) -> None:
    """Model metamers and their recognisability into data/<corpus>/metamers/."""
    from .stages.metamers import Metamers

    Metamers(params, corpus, executor=executor).run()


@cli.command()
@click.argument("corpus")
@stage_params
def export(params: Any, corpus: str) -> None:
    """The Hugging Face dataset folder into data/<corpus>/hub/."""
    from .stages.export import Export

    Export(params, corpus).run()


@cli.command()
@click.argument("corpus")
@stage_params
def report(params: Any, corpus: str) -> None:
    """The self-contained HTML explorer into data/<corpus>/report/."""
    from .stages.report import Report

    Report(params, corpus).run()


@cli.group(invoke_without_command=True)
@click.pass_context
def cache(ctx: click.Context) -> None:
    """The unit cache ($LWISE_CACHE): finished work reused across builds. Alone: its size."""
    if ctx.invoked_subcommand is None:
        from .io.cache import cache_report
        from .io.paths import cache_root

        rows = cache_report()
        click.echo(f"{cache_root()}: {_size(sum(r[2] for r in rows))} in {sum(r[1] for r in rows)} files")
        for stage, files, size in rows:
            click.echo(f"  {stage:<14} {files:>8} files  {_size(size):>10}")


@cache.command("clear")
@click.option("--older-than", "older_than", help="Only files unused for this long: 30d, 12h, 45m.")
@click.option("--stage", help="Only this stage's part of the cache (e.g. enhance).")
def cache_clear(older_than: str | None, stage: str | None) -> None:
    """Delete cached work (it is recomputed when next needed)."""
    from .io.cache import clear_cache

    files, size = clear_cache(_duration(older_than) if older_than else None, stage)
    click.echo(f"removed {files} files ({_size(size)})")


def _size(n: int) -> str:
    return next(f"{n / f:.1f} {u}" for f, u in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB"), (1, "B")) if n >= f or f == 1)


def _duration(text: str) -> float:
    """``30d``, ``12h``, ``45m`` or ``90s`` in seconds (a one-line error otherwise)."""
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    if len(text) < 2 or text[-1] not in units or not text[:-1].replace(".", "", 1).isdigit():
        raise UserError(f"--older-than: expected a number and d, h, m or s (e.g. 30d), got {text!r}")
    return float(text[:-1]) * units[text[-1]]


@cli.command()
@click.argument("corpus")
@stage_params
def experiment(params: Any, corpus: str) -> None:
    """Run-ready jsPsych experiments for every curriculum into data/<corpus>/experiment/."""
    from .stages.experiment import Experiment

    Experiment(params, corpus).run()


@cli.command()
@click.argument("corpus")
@click.option("--responses", required=True, type=click.Path(exists=True, file_okay=False),
              help="Folder of saved jsPsych data files (CSV or JSON).")
@with_params
def analyze(params: Any, corpus: str, responses: str) -> None:
    """Accuracy per participant and condition, L-WISE gains and the difficulty calibration."""
    from .stages.analyze import Analyze

    Analyze(params, corpus, responses).run()


@cli.command()
@click.argument("corpus")
@click.option("--repo", help="Hub repository org/name (default: export.repo_id).")
@click.option("--version", "version", help="Version to tag (default: export.version).")
@click.option("--private", is_flag=True, help="Create the Hub repository as private.")
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@click.option("--to", "to", help="Publish to this git remote URL or path instead of the Hub.")
@click.option("--allow-dirty", is_flag=True, help="Publish even with a dirty tree or stale dvc.lock.")
@with_params
def publish(params: Any, corpus: str, **options: Any) -> None:
    """Upload data/<corpus>/hub/ and tag v<version>; never moves an existing tag."""
    from .hub.publish import publish as do_publish

    for line in do_publish(params, corpus, **options):
        click.echo(line)


@cli.command()
@click.argument("repo")
@click.option("--version", "version", required=True, help="Dataset version (the tag v<version>).")
@click.option("--config", "config", help="Only the files of this config (e.g. curriculum-lwise).")
@click.option("--out", "out", type=click.Path(file_okay=False), help="Copy the files here.")
def pull(repo: str, version: str, config: str | None, out: str | None) -> None:
    """Fetch a published dataset at a pinned version (offline from cache once fetched)."""
    from .hub.pull import pull as do_pull

    for line in do_pull(repo, version, config=config, out=out).lines():
        click.echo(line)


@cli.command()
@click.argument("target")
@click.option("--format", "fmt", type=click.Choice(["bibtex", "cff"]), default="bibtex", show_default=True)
@PARAMS_OPTION
def cite(target: str, fmt: str, params_path: str) -> None:
    """Citation for a corpus build, an org/name[@version] on the Hub, or an exported folder."""
    from .hub.pull import cite as do_cite

    click.echo(do_cite(target, fmt=fmt, params_path=params_path))


def main(argv: list[str] | None = None) -> None:
    """Entry point: one-line errors for user mistakes, tracebacks only with ``--debug``."""
    args = sys.argv[1:] if argv is None else argv
    configure_process()  # before torch loads: every command imports it lazily
    console.setup()
    try:
        cli.main(args=args, prog_name="lwise-build", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except UserError as exc:
        if "--debug" in args:
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted: finished shards are kept in the cache; rerun to continue", err=True)
        sys.exit(130)
