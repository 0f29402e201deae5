"""Commands for the Hub: publish a version, pull a pinned one, cite it."""

from __future__ import annotations

from typing import Any

import click

from .group import (
    PARAMS_OPTION,
    cli,
    with_params,
)


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
    from ..hub.publish import publish as do_publish

    for line in do_publish(params, corpus, **options):
        click.echo(line)


@cli.command()
@click.argument("repo")
@click.option("--version", "version", help="Dataset version (the tag v<version>).")
@click.option("--revision", "revision", help="Pin this commit (40 hex digits); with --version the tag must point at it.")
@click.option("--sha256", "sha256", help="The content sha256 a citation gives: the pulled version must have it.")
@click.option("--config", "config", help="Only the files of this config (e.g. curriculum-lwise).")
@click.option("--out", "out", type=click.Path(file_okay=False), help="Copy the files here.")
def pull(repo: str, version: str | None, revision: str | None, sha256: str | None, config: str | None,
         out: str | None) -> None:
    """Fetch a published dataset at a pinned version or commit, verified end to end (offline from cache once fetched)."""
    from ..hub.pull import pull as do_pull

    for line in do_pull(repo, version, config=config, out=out, sha256=sha256, revision=revision).lines():
        click.echo(line)


@cli.command()
@click.argument("target")
@click.option("--format", "fmt", type=click.Choice(["bibtex", "cff"]), default="bibtex", show_default=True)
@PARAMS_OPTION
def cite(target: str, fmt: str, params_path: str) -> None:
    """Citation for a corpus build, an org/name[@version] on the Hub, or an exported folder."""
    from ..hub.pull import cite as do_cite

    click.echo(do_cite(target, fmt=fmt, params_path=params_path))
