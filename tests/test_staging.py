"""Staged output under concurrency, after kills and on a full disk (issue 23, items 6 and 7)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.hub_tiny import CORPUS, make_tiny_build

from lwise_build.errors import UserError
from lwise_build.hub.provenance import read_provenance
from lwise_build.io.digests import file_digest
from lwise_build.io.staging import staged_output, write_json

TESTS = Path(__file__).resolve().parent
EXPORT = "from support.hub_tiny import CORPUS, tiny_params; from lwise_build import console; console.setup(); " \
         "from lwise_build.stages.export.stage import Export; Export(tiny_params(), CORPUS).run()"


def litter(folder: Path) -> list[str]:
    """Temporary or old copies beside the outputs of ``folder`` (the lock files are not litter)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and not p.name.endswith(".lock"))


def assert_complete(hub: Path) -> None:
    """Every file provenance.json lists is there with its sha256, and nothing else."""
    files = read_provenance(hub)["files"]
    present = {p.relative_to(hub).as_posix() for p in hub.rglob("*") if p.is_file()} - {"provenance.json"}
    assert present == set(files)
    assert all(file_digest(hub / rel) == meta["sha256"] for rel, meta in files.items())


@pytest.mark.slow
def test_three_concurrent_exports_end_with_one_complete_output_and_no_litter(tiny_images, data_root: Path) -> None:
    make_tiny_build(data_root)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    procs = [subprocess.Popen([sys.executable, "-c", EXPORT], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], "\n".join(o[-2000:] for o in outs)
    assert_complete(data_root / CORPUS / "hub")
    assert litter(data_root / CORPUS) == []
    assert sum("another run is writing it" in o for o in outs) >= 1  # the others waited their turn


def test_leftovers_of_a_killed_run_are_removed_by_the_next(tmp_path: Path) -> None:
    final = tmp_path / "hub"
    for left in (tmp_path / ".hub.tmp-abc123", tmp_path / ".hub.old"):
        (left / "data").mkdir(parents=True)
        (left / "data" / "big.parquet").write_bytes(b"x" * 1000)
    (tmp_path / ".hubby.tmp-keep").mkdir()  # another output's: not ours to touch
    with staged_output(final) as tmp:
        (tmp / "README.md").write_text("new\n")
    assert (final / "README.md").read_text() == "new\n"
    assert litter(tmp_path) == [".hubby.tmp-keep"]


def test_a_full_disk_is_one_line_and_leaves_no_partial_output(tmp_path: Path, monkeypatch) -> None:
    final = tmp_path / "scores"

    def fill_up() -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(UserError) as exc, staged_output(final) as tmp:
        (tmp / "data-00000.parquet").write_bytes(b"x" * 2_000_000)
        fill_up()
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(f"{final}: no space left on the device of {tmp_path}")
    assert "2.0 MB written when the disk filled up" in msg and "free some space" in msg
    assert not final.exists() and litter(tmp_path) == []
    monkeypatch.setattr(Path, "write_text", lambda *a, **k: fill_up())
    with pytest.raises(UserError, match="no space left"):
        write_json(tmp_path / "metrics" / "m.json", {"a": 1})
    assert list((tmp_path / "metrics").iterdir()) == []  # no partial .tmp file


def test_a_full_cache_disk_names_the_cache_and_the_space_a_pack_needs(tmp_path: Path, monkeypatch) -> None:
    import pyarrow as pa

    from lwise_build.io.cache import ItemCache

    cache = ItemCache("score", tmp_path / "cache")

    def half_then_full(self: Path, data: bytes) -> None:
        with open(self, "wb") as f:
            f.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", half_then_full)
    with pytest.raises(UserError) as exc:
        cache.put(pa.table({"key": ["a"], "value": [b"y" * 5000]}))
    assert str(exc.value).startswith(f"{tmp_path / 'cache' / 'score'}: no space left") and " MB, " in str(exc.value)
    assert [p for p in (tmp_path / "cache").rglob("*") if p.is_file()] == []  # no partial pack


def test_a_full_disk_anywhere_else_is_still_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    from lwise_build.cli import main
    from lwise_build.stages.resolve import stage as resolve

    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("corpora: {c: {ingest: {source: 'builtin:digits'}}}\n")

    def full(self) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "data" / "x.png"))

    monkeypatch.setattr(resolve.Resolve, "run", full)
    with pytest.raises(SystemExit) as exc:
        main(["resolve", "c"])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and "\n" not in err
    assert err.startswith(f"error: {tmp_path / 'data' / 'x.png'}: no space left on the device of {tmp_path}")
