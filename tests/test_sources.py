"""Source fingerprints: every change ingest would see changes the fingerprint, nothing else does,
and unchanged files are not read again (sizes and mtimes first)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.folders import make_folder, save_img

from lwise_build.config.params import IngestParams
from lwise_build.io.fingerprint import files_fingerprint
from lwise_build.io.sources import fingerprint


def fp(source: str, **kw) -> dict:
    return fingerprint(IngestParams(source=source, **kw), "corpora.c.ingest")


@pytest.fixture
def folder(tmp_path: Path, data_root: Path) -> Path:  # data_root: a private LWISE_CACHE
    return make_folder(tmp_path / "raw", per_class=3)


def test_image_folder_changes_are_seen(folder: Path) -> None:
    src = f"imagefolder:{folder}"
    first = fp(src)
    assert first == fp(src) and first["items"] == 9
    save_img(folder / "cat" / "new.png", (1, 2, 3))
    added = fp(src)
    assert added["digest"] != first["digest"] and added["items"] == 10
    png = folder / "cat" / "0.png"
    stat = png.stat()
    save_img(png, (9, 9, 9))
    os.utime(png, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))  # same size is possible: mtime moves
    assert fp(src)["digest"] not in (first["digest"], added["digest"])
    (folder / "cat" / "new.png").unlink()
    png.unlink()
    assert fp(src)["items"] == 8
    (folder / ".DS_Store").write_bytes(b"x")  # not an input: ignored as ingest ignores it
    assert fp(src)["items"] == 8


def test_moving_an_image_to_another_class_is_a_change(folder: Path) -> None:
    before = fp(f"imagefolder:{folder}")
    (folder / "cat" / "0.png").rename(folder / "dög" / "moved.png")
    assert fp(f"imagefolder:{folder}")["digest"] != before["digest"]


def test_manifest_edits_and_its_images_are_seen(folder: Path) -> None:
    manifest = folder / "m.csv"
    rows = [f"cat/{i}.png,cat,{0.5 + i / 10}" for i in range(3)]
    manifest.write_text("image,label,human_accuracy\n" + "\n".join(rows) + "\n")
    first = fp(f"manifest:{manifest}")
    manifest.write_text("image,label,human_accuracy\n" + "\n".join(rows[:2] + ["cat/2.png,cat,0.99"]) + "\n")
    edited = fp(f"manifest:{manifest}")
    assert edited["digest"] != first["digest"]  # a metadata value is part of the table
    save_img(folder / "cat" / "1.png", (7, 7, 7), size=(41, 30))
    assert fp(f"manifest:{manifest}")["digest"] != edited["digest"]  # so is an image it names


def test_unchanged_files_are_not_read_again(folder: Path) -> None:
    files = [(p.name, p) for p in sorted(folder.rglob("*.png"))]
    first, read = files_fingerprint(folder, files)
    assert read == len(files)
    again, read = files_fingerprint(folder, files)
    assert again == first and read == 0
    save_img(files[0][1], (1, 1, 1), size=(50, 30))
    _, read = files_fingerprint(folder, files)
    assert read == 1


def test_builtin_and_missing_sources(data_root: Path) -> None:
    assert fp("builtin:digits")["items"] == 1797
    from lwise_build.errors import UserError

    with pytest.raises(UserError, match="folder .* not found"):
        fp("imagefolder:/no/such/folder")


def test_a_dangling_link_is_in_the_fingerprint_and_fetching_it_is_a_change(folder: Path, tmp_path: Path) -> None:
    """A git-annex/DVC link whose content is not fetched is an item (ingest reports it), and
    fetching the content, or the link turning into a folder, changes the fingerprint."""
    target = tmp_path / "annex" / "x.png"
    (folder / "cat" / "x.png").symlink_to(target)
    dangling = fp(f"imagefolder:{folder}")
    assert dangling["items"] == 10
    save_img(target, (5, 5, 5))
    fetched = fp(f"imagefolder:{folder}")
    target.unlink()
    target.mkdir()
    assert len({dangling["digest"], fetched["digest"], fp(f"imagefolder:{folder}")["digest"]}) == 3
