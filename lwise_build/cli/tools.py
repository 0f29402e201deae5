"""Commands around the pipeline: check, params, models, status and the unit cache."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ..errors import UserError
from .group import (
    PARAMS_OPTION,
    cli,
    with_params,
)


@cli.command()
@with_params
def check(params: Any) -> None:
    """Validate params and sources without running a stage; list the stages that would run."""
    from ..stages.check import check_project
    from ..stages.registry import plan

    findings = check_project(params)
    for f in findings:
        click.echo(f"{f.level}: {f.text}", err=True)
    errors = sum(f.level == "error" for f in findings)
    if errors:
        click.echo(f"{errors} error(s): fix them before `dvc repro`", err=True)
        sys.exit(2)
    warned = len(findings)
    click.echo("params OK" + (f" ({warned} warning{'s' * (warned != 1)})" if warned else ""))
    for line in plan(params):
        click.echo(f"  {line}")


@cli.command("params")
@click.option("--reference", is_flag=True, help="Print the reference of every key (docs/params.md).")
@PARAMS_OPTION
def params_cmd(reference: bool, params_path: str) -> None:
    """The params file with every default filled in, or (--reference) every key documented."""
    if reference:
        from ..config.reference import params_reference

        click.echo(params_reference(), nl=False)
        return
    import yaml

    from ..config.load import load_params
    from ..config.schema import to_plain

    plain = json.loads(json.dumps(to_plain(load_params(params_path)), default=str))
    click.echo(yaml.safe_dump(plain, sort_keys=False), nl=False)


@cli.command()
def models() -> None:
    """The architectures `arch:` accepts, their layers (metamer stages) and input conventions."""
    from ..models.registry import architectures, describe

    for name in architectures():
        info = describe(name)
        click.echo(f"{name}\n  layers:   {info['layers']}\n  channels: {info['channels']}\n"
                   f"  input:    {info['input']}")
    click.echo("timm:<name>\n  any timm model (pip install timm); layers: its top-level children")


@cli.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True,
              type=click.Path(dir_okay=False), help="The params file to read.")
def status(params_path: str) -> None:
    """Refresh every corpus's source fingerprint, then show `dvc status` (what a repro would run)."""
    from ..stages.status import pipeline_status

    click.echo(pipeline_status(params_path))


@cli.group(invoke_without_command=True)
@click.pass_context
def cache(ctx: click.Context) -> None:
    """The unit cache ($LWISE_CACHE): finished work reused across builds. Alone: its size."""
    if ctx.invoked_subcommand is None:
        from ..io.cache import cache_report
        from ..io.paths import cache_root

        rows = cache_report()
        click.echo(f"{cache_root()}: {_size(sum(r[2] for r in rows))} in {sum(r[1] for r in rows)} files")
        for stage, files, size in rows:
            click.echo(f"  {stage:<14} {files:>8} files  {_size(size):>10}")


@cache.command("clear")
@click.option("--older-than", "older_than", help="Only files unused for this long: 30d, 12h, 45m.")
@click.option("--stage", help="Only this stage's part of the cache (e.g. enhance).")
def cache_clear(older_than: str | None, stage: str | None) -> None:
    """Delete cached work (it is recomputed when next needed)."""
    from ..io.cache import clear_cache

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
