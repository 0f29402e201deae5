"""The ``lwise-build`` group, its shared options and the entry point.

User mistakes print one line (``error: ...``) and exit 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import errno
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .. import console
from ..config.executor import EXECUTOR_KINDS
from ..device import configure_process
from ..errors import UserError

PARAMS_OPTION = click.option(
    "--params", "params_path", default="params.yaml", show_default=True,
    type=click.Path(dir_okay=False), help="The params file to read.",
)


EXECUTOR_OPTION = click.option(
    "--executor", type=click.Choice(EXECUTOR_KINDS), default=None,
    help="Where the heavy work runs (default: the params' executor); the outputs are the same.")


def with_params(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--params`` to a command and pass the validated :class:`Params` as ``params``."""

    @PARAMS_OPTION
    @click.pass_context
    @functools.wraps(fn)
    def wrapper(ctx: click.Context, params_path: str, **kwargs: Any) -> Any:
        from ..config.load import load_params

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
    def wrapper(out: str | None, **kwargs: Any) -> Any:  # noqa: ARG001 - with_params applied it
        return fn(**kwargs)

    return wrapper


def guard_outputs(params_path: str, out: str | None) -> None:
    """``--out DIR`` becomes the data root; otherwise refuse other params inside a DVC pipeline."""
    import os

    from ..io.paths import DATA_ROOT_ENV

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
    except OSError as exc:  # a full disk anywhere a specific check did not catch it: still one line
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT) or "--debug" in args:
            raise
        from ..io.staging import no_space

        click.echo(f"error: {no_space(Path(exc.filename or '.'))}", err=True)
        sys.exit(2)
    except MemoryError:
        if "--debug" in args:
            raise
        click.echo("error: out of memory; lower the batch_size of the stage that ran, or the corpus's "
                   "ingest.image_size, or run it on a machine with more memory", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted: finished shards are kept in the cache; rerun to continue", err=True)
        sys.exit(130)
