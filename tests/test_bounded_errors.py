"""Every error is one bounded line, whatever the user's values (issue 23, item 7)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from lwise_build.cli import main
from lwise_build.errors import UserError, quote

BOMB = "&g [&f [&e [&d [&c [&b [&a [1, 1, 1, 1, 1, 1, 1, 1, 1], *a, *a, *a, *a, *a, *a, *a, *a], *b, *b, *b, *b, " \
       "*b, *b, *b, *b], *c, *c, *c, *c, *c, *c, *c, *c], *d, *d, *d, *d, *d, *d, *d, *d], *e, *e, *e, *e, *e, *e, " \
       "*e, *e], *f, *f, *f, *f, *f, *f, *f, *f]"


def check(tmp_path: Path, monkeypatch, capsys, yaml_text: str) -> str:
    """``lwise-build check`` on a params file; its stderr (it must fail with exit code 2)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml_text)
    start = time.perf_counter()
    with pytest.raises(SystemExit) as exc:
        main(["check"])
    assert exc.value.code == 2 and time.perf_counter() - start < 20
    return capsys.readouterr().err


@pytest.mark.parametrize("section,key", [("enhance", "budgets"), ("score", "class_map")])
def test_a_yaml_alias_bomb_is_refused_in_one_short_line(tmp_path, monkeypatch, capsys, section, key) -> None:
    """9**7 values behind 70 aliases: refused before anything is built (it was a 1.7 MB "line")."""
    err = check(tmp_path, monkeypatch, capsys,
                f"corpora:\n  c:\n    ingest: {{source: 'builtin:digits'}}\n    {section}:\n      {key}: {BOMB}\n")
    assert err == "error: params.yaml: its aliases expand to more than 200,000 values; params need far fewer " \
                  "(an alias expanded over and over?)\n"


def test_a_small_alias_still_works_and_a_wrong_one_is_quoted_short(tmp_path, monkeypatch, capsys) -> None:
    err = check(tmp_path, monkeypatch, capsys, "corpora:\n  c:\n    ingest: {source: 'builtin:digits', "
                "image_size: &big [" + ", ".join(["123456789"] * 2000) + "]}\n    enhance: {budgets: *big}\n")
    assert err.startswith("error: corpora.c.ingest.image_size: must be an integer, got [123456789, ")
    assert err.count("\n") == 1 and len(err) < 200


def test_yaml_nested_too_deeply_is_one_line(tmp_path, monkeypatch, capsys) -> None:
    err = check(tmp_path, monkeypatch, capsys, "seed: " + "[" * 5000 + "]" * 5000 + "\n")
    assert err == "error: params.yaml: YAML nested too deeply to be params\n"


def test_messages_stay_one_bounded_line_and_quotes_are_cut() -> None:
    msg = str(UserError("labels/" + "x" * 50_000 + "\nsecond line: fix the labels"))
    assert "\n" not in msg and len(msg) < 1100
    assert msg.startswith("labels/xxx") and msg.endswith("\\nsecond line: fix the labels")
    assert quote("y" * 5000) == repr("y" * 72) + "... (5000 characters)"
    assert len(quote(list(range(100_000)))) <= 80


def test_check_knows_the_image_size_bound(tmp_path, monkeypatch, capsys) -> None:
    err = check(tmp_path, monkeypatch, capsys, "corpora:\n  c:\n    ingest: {source: 'builtin:digits', image_size: 100000}\n")
    assert err == "error: corpora.c.ingest.image_size: must be at most 4096 (larger canonical images do not fit " \
                  "a batch in memory), got 100000\n"


def test_running_out_of_memory_is_one_line(tmp_path, monkeypatch, capsys) -> None:
    from lwise_build.stages.ingest import stage as ingest

    def exhausted(self) -> None:
        raise MemoryError

    monkeypatch.setattr(ingest.Ingest, "run", exhausted)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("corpora: {c: {ingest: {source: 'builtin:digits'}}}\n")
    with pytest.raises(SystemExit) as exc:
        main(["ingest", "c"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith("error: out of memory; lower the batch_size") and err.count("\n") == 1
