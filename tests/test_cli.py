"""The CLI: every command's --help, one-line errors without tracebacks, --debug shows them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from lwise_build.cli import cli

COMMANDS = sorted(cli.commands)


def test_every_pipeline_command_is_listed():
    assert set(COMMANDS) >= {"check", "ingest", "train", "score", "enhance", "curriculum", "metamers",
                             "export", "report", "publish", "pull", "cite"}


@pytest.mark.parametrize("name", COMMANDS)
def test_help(name):
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output and cli.commands[name].get_short_help_str()[:20] in " ".join(result.output.split())


def test_group_help_lists_every_command():
    out = CliRunner().invoke(cli, ["--help"]).output
    assert all(name in out for name in COMMANDS)


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "lwise_build", *args], capture_output=True, text=True, cwd=cwd)


def test_user_error_is_one_line_without_traceback(tmp_path):
    (tmp_path / "params.yaml").write_text("corpora:\n  c:\n    ingest: {source: builtin:digits, image_size: -3}\n")
    res = run("check", cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.strip() == "error: corpora.c.ingest.image_size: must be positive, got -3"
    res = run("--debug", "check", cwd=tmp_path)
    assert "Traceback" in res.stderr


def test_unknown_corpus(tmp_path):
    (tmp_path / "params.yaml").write_text("corpora:\n  c:\n    ingest: {source: builtin:digits}\n")
    res = run("ingest", "nope", cwd=tmp_path)
    assert res.returncode == 2 and "corpus 'nope' is not in params (known: c)" in res.stderr


def test_check_lists_stages(tmp_path):
    (tmp_path / "params.yaml").write_text("corpora:\n  c:\n    ingest: {source: builtin:digits}\n")
    res = run("check", cwd=tmp_path)
    assert res.returncode == 0 and "ingest@c -> data/c/images" in res.stdout


def test_other_params_need_out_and_never_touch_data(tmp_path):
    """Inside a DVC project a stage command with another params file refuses without --out (one
    line), and with --out reads and writes DIR/<corpus>/, leaving data/ alone."""
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    text = "corpora:\n  c:\n    ingest: {source: builtin:digits, image_size: 8, grayscale: true}\n"
    (tmp_path / "params.yaml").write_text(text)
    (tmp_path / "other.yaml").write_text(text.replace("image_size: 8", "image_size: 9"))
    res = run("ingest", "c", "--params", "other.yaml", cwd=tmp_path)
    assert res.returncode == 2 and res.stderr.strip().splitlines() == [
        "error: --params other.yaml: not the pipeline's params.yaml, so this run would overwrite the "
        "DVC-tracked outputs under data/; pass --out DIR to use DIR/<corpus>/ instead"]
    res = run("ingest", "c", "--params", "other.yaml", "--out", "scratch", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert list((tmp_path / "scratch" / "c" / "images").glob("data-*.parquet")) and not (tmp_path / "data").exists()
    assert "-> scratch/c/images" in res.stderr
    assert run("ingest", "c", cwd=tmp_path).returncode == 0  # the pipeline's own params: data/ as usual
    assert (tmp_path / "data" / "c" / "images").is_dir()


def test_cache_subcommand_help_and_bad_duration(tmp_path):
    assert CliRunner().invoke(cli, ["cache", "clear", "--help"]).exit_code == 0
    env = {"LWISE_CACHE": str(tmp_path / "cache")}
    res = subprocess.run([sys.executable, "-m", "lwise_build", "cache", "clear", "--older-than", "soon"],
                         capture_output=True, text=True, env={**os.environ, **env})
    assert res.returncode == 2 and res.stderr.strip().startswith("error: --older-than: expected a number")
    res = subprocess.run([sys.executable, "-m", "lwise_build", "cache"], capture_output=True, text=True,
                         env={**os.environ, **env})
    assert res.returncode == 0 and "0 files" in res.stdout
