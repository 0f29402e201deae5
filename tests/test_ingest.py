"""Ingest: every source kind, bad inputs, canonical pixels, splits, determinism."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image
from support.folders import COLORS, make_folder, save_img
from support.ingest import run_ingest, write_params

from lwise_build.config.load import load_params
from lwise_build.errors import UserError


def png16(arr: np.ndarray) -> bytes:
    """A 16-bit PNG (gray (H, W) or RGB (H, W, 3) uint16), written by hand: Pillow writes no 16-bit RGB."""
    import struct
    import zlib

    h, w = arr.shape[:2]
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    head = struct.pack(">IIBBBBB", w, h, 16, 0 if arr.ndim == 2 else 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def test_builtin_digits(data_root, tmp_path):
    rows, feats, report = run_ingest(tmp_path, source="builtin:digits", grayscale=True, image_size=32)
    assert len(rows) == report["images"] > 1700
    assert feats["label"].names == [str(i) for i in range(10)]
    img = Image.open(io.BytesIO(rows[0]["image"]["bytes"]))
    assert img.size == (32, 32) and img.mode == "L"
    assert {r["split"] for r in rows} == {"train", "validation", "test"}


def test_imagefolder_unicode_classes_and_ignored_files(data_root, tmp_path):
    root = make_folder(tmp_path / "imgs")
    (root / "cat" / ".DS_Store").write_bytes(b"\x00junk")
    rows, feats, report = run_ingest(tmp_path, source=f"imagefolder:{root}")
    assert feats["label"].names == sorted(COLORS)
    assert len(rows) == 18 and report["skipped"] == 0
    assert all(Image.open(io.BytesIO(r["image"]["bytes"])).size == (16, 16) for r in rows)


def test_imagefolder_split_folders_are_kept(data_root, tmp_path):
    root = make_folder(tmp_path / "imgs", splits=True)
    rows, _, _ = run_ingest(tmp_path, source=f"imagefolder:{root}")
    assert {r["split"] for r in rows} == {"train", "validation", "test"}
    assert all(r["source"].split("/")[0] in ("train", "val", "test") for r in rows)
    assert all((r["split"] == "validation") == r["source"].startswith("val/") for r in rows)


def test_manifest_csv_with_metadata_and_group_split(data_root, tmp_path):
    root = tmp_path / "m"
    lines = ["path,label,lesion_id,human_accuracy"]
    for i in range(30):
        c = ["nv", "mel"][i % 2]
        save_img(root / f"{i}.jpg", (i * 8, 100, 50 + 100 * (i % 2)), fmt="JPEG")
        lines.append(f"{i}.jpg,{c},L{i // 3},{i / 30:.3f}")
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    rows, feats, _ = run_ingest(tmp_path, source=f"manifest:{root / 'manifest.csv'}", image_column="path",
                                splits={"train": 0.6, "validation": 0.2, "test": 0.2, "group_by": "lesion_id"})
    assert feats["human_accuracy"].dtype == "float64" and feats["lesion_id"].dtype == "string"
    split_of = {}
    for r in rows:
        assert split_of.setdefault(r["lesion_id"], r["split"]) == r["split"]
    assert len(set(split_of.values())) == 3


def test_manifest_parquet_with_splits(data_root, tmp_path):
    import pyarrow as pa

    root = tmp_path / "m"
    paths = [save_img(root / f"{i}.png", (i * 20, 0, 0)).name for i in range(6)]
    pq.write_table(pa.table({"image": paths, "label": ["a", "b"] * 3,
                             "split": ["train", "val", "test", "train", "valid", "test"]}), root / "m.parquet")
    rows, _, _ = run_ingest(tmp_path, source=f"manifest:{root / 'm.parquet'}")
    assert [r["split"] for r in rows] == ["train", "validation", "test", "train", "validation", "test"]


def test_hf_local_dataset(data_root, tmp_path):
    import datasets

    imgs = [Image.new("RGB", (20, 24), (i * 30, 0, 0)) for i in range(6)]
    ds = datasets.Dataset.from_dict(
        {"img": imgs, "y": [0, 1, 0, 1, 0, 1]},
        features=datasets.Features({"img": datasets.Image(), "y": datasets.ClassLabel(names=["no", "yes"])}),
    )
    datasets.DatasetDict({"train": ds.select(range(4)), "test": ds.select(range(4, 6))}).save_to_disk(tmp_path / "hf")
    rows, feats, _ = run_ingest(tmp_path, source=f"hf:{tmp_path / 'hf'}", image_column="img", label_column="y")
    assert feats["label"].names == ["no", "yes"] and len(rows) == 6
    assert [r["split"] for r in rows].count("test") == 2


def test_bad_inputs_are_skipped_and_listed(data_root, tmp_path):
    root = make_folder(tmp_path / "imgs", per_class=40)
    bad = root / "cat"
    (bad / "empty.png").write_bytes(b"")
    (bad / "text.jpg").write_text("not an image")
    full = save_img(bad / "trunc_src.jpg", (1, 2, 3), size=(64, 64), fmt="JPEG")
    (bad / "trunc.jpg").write_bytes(full.read_bytes()[: len(full.read_bytes()) // 2])
    full.unlink()
    Image.new("L", (20000, 20000)).save(bad / "bomb.png")  # > MAX_PIXELS / 2 triggers the bomb check
    rows, _, report = run_ingest(tmp_path, source=f"imagefolder:{root}", max_bad_fraction=0.1)
    reasons = {Path(s["source"]).name: s["reason"] for s in report["skipped_files"]}
    assert set(reasons) == {"empty.png", "text.jpg", "trunc.jpg", "bomb.png"}
    assert reasons["empty.png"] == "empty file" and reasons["text.jpg"] == "not an image"
    assert "decompression bomb" in reasons["bomb.png"] and "unreadable" in reasons["trunc.jpg"]
    assert len(rows) == 120


def test_too_many_bad_files_fail_in_one_line(data_root, tmp_path):
    root = make_folder(tmp_path / "imgs")
    for i in range(3):
        (root / "cat" / f"bad{i}.png").write_bytes(b"garbage")
    with pytest.raises(UserError) as exc:
        run_ingest(tmp_path, source=f"imagefolder:{root}")
    msg = str(exc.value)
    assert "3 of 21 images unreadable" in msg and "max_bad_fraction" in msg and "\n" not in msg
    assert not (tmp_path / "data" / "c" / "images").exists()
    assert (tmp_path / "data" / "c" / "ingest-errors.json").exists()


def test_same_image_two_labels_fails_and_exact_duplicates_are_dropped(data_root, tmp_path):
    root = make_folder(tmp_path / "imgs")
    (root / "cat" / "copy.png").write_bytes((root / "cat" / "0.png").read_bytes())
    _, _, report = run_ingest(tmp_path, source=f"imagefolder:{root}")
    assert report["duplicates_removed"] == 1 and report["images"] == 18
    (root / "dög" / "stolen.png").write_bytes((root / "cat" / "0.png").read_bytes())
    with pytest.raises(UserError, match="labelled"):
        run_ingest(tmp_path, source=f"imagefolder:{root}")


def test_min_per_class(data_root, tmp_path):
    root = make_folder(tmp_path / "imgs", per_class=2)
    with pytest.raises(UserError, match="class 'cat' has 2 usable images, fewer than .*min_per_class"):
        run_ingest(tmp_path, source=f"imagefolder:{root}", min_per_class=3)


def test_exif_rotation_and_odd_modes(data_root, tmp_path):
    root = tmp_path / "imgs"
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = 255  # left half white: wide image
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    (root / "a").mkdir(parents=True)
    img.save(root / "a" / "rot.jpg", exif=exif, quality=95)
    modes = {"rgba.png": "RGBA", "p.png": "P", "la.png": "LA", "cmyk.jpg": "CMYK", "i16.png": "I;16", "one.png": "1"}
    for name, mode in modes.items():
        save_img(root / "b" / name, (120, 60, 30), mode=mode if mode != "I;16" else "L")
    Image.fromarray((np.arange(400).reshape(20, 20) * 100).astype(np.uint16)).save(root / "b" / "i16.png")
    rows, _, report = run_ingest(tmp_path, source=f"imagefolder:{root}", image_size=20)
    assert report["skipped"] == 0 and len(rows) == 1 + len(modes)
    rot = next(r for r in rows if r["source"].endswith("rot.jpg"))
    px = np.asarray(Image.open(io.BytesIO(rot["image"]["bytes"])))
    assert px.shape == (20, 20, 3)
    assert px[:5].mean() > 200 and px[-5:].mean() < 50  # white half now on top


def test_two_ingests_are_byte_identical_and_independent_of_listing(data_root, tmp_path):
    root = make_folder(tmp_path / "imgs")
    run_ingest(tmp_path, source=f"imagefolder:{root}", workers=2)
    shards = sorted((tmp_path / "data" / "c" / "images").glob("*"))
    first = {p.name: p.read_bytes() for p in shards}
    run_ingest(tmp_path, source=f"imagefolder:{root}", workers=1)
    assert {p.name: p.read_bytes() for p in sorted((tmp_path / "data" / "c" / "images").glob("*"))} == first


def test_sharding_bounds_shard_size(data_root, tmp_path):
    rows, _, _ = run_ingest(tmp_path, source="builtin:digits", grayscale=True, image_size=64, shard_mb=1)
    shards = sorted((tmp_path / "data" / "c" / "images").glob("data-*.parquet"))
    assert len(shards) > 1 and shards[0].name.endswith(f"-of-{len(shards):05d}.parquet")
    assert len(rows) > 1700


def test_missing_source_and_unknown_scheme(data_root, tmp_path):
    with pytest.raises(UserError, match="folder .* not found"):
        run_ingest(tmp_path, source=f"imagefolder:{tmp_path / 'nope'}")
    with pytest.raises(UserError, match="unknown builtin corpus 'mnist'"):
        run_ingest(tmp_path, source="builtin:mnist")
    with pytest.raises(UserError, match="manifest .* not found"):
        run_ingest(tmp_path, source=f"manifest:{tmp_path / 'm.csv'}")


def test_manifest_missing_column_and_missing_file(data_root, tmp_path):
    (tmp_path / "m.csv").write_text("file,label\na.png,x\n")
    with pytest.raises(UserError, match=r"^corpora\.c\.ingest\.image_column: manifest .* has no column 'image' \(columns: file, label\); set image_column: file$"):
        run_ingest(tmp_path, source=f"manifest:{tmp_path / 'm.csv'}")
    (tmp_path / "m.csv").write_text("image,label\na.png,x\n")
    with pytest.raises(UserError, match="1 of 1 images unreadable .* a.png: file not found"):
        run_ingest(tmp_path, source=f"manifest:{tmp_path / 'm.csv'}")


def test_dangling_links_loops_folders_and_pipes_are_reported_bad_inputs(data_root, tmp_path):
    """Entries that are not readable files are listed with their reason and counted; a link to a
    readable image (a DVC or git-annex layout) is followed, a linked folder is entered."""
    import os

    root = make_folder(tmp_path / "imgs", per_class=20)
    cat = root / "cat"
    (cat / "dangling.png").symlink_to(tmp_path / "annex" / "not-fetched.png")
    (cat / "self.png").symlink_to(cat / "self.png")
    (cat / "up").symlink_to(cat)  # a folder loop
    os.mkfifo(cat / "pipe.png")
    store = save_img(tmp_path / "store" / "kept.png", (9, 99, 9))
    (cat / "linked.png").symlink_to(store)
    (cat / "linked-folder").symlink_to(store.parent)
    rows, _, report = run_ingest(tmp_path, source=f"imagefolder:{root}", max_bad_fraction=0.1)
    reasons = {s["source"]: s["reason"] for s in report["skipped_files"]}
    assert reasons == {"cat/dangling.png": "dangling symlink (its target is missing)", "cat/self.png": "symlink loop",
                       "cat/up": "symlink loop (a folder that contains itself)",
                       "cat/pipe.png": "not a regular file (a pipe, socket or device)"}
    assert report["inputs"] == 60 + 4 + 2 and report["skipped"] == 4
    assert "cat/linked-folder/kept.png" in {r["source"] for r in rows}  # a linked folder is entered
    assert [(d["source"], d["duplicate_of"]) for d in report["duplicates"]] == [
        ("cat/linked.png", "cat/linked-folder/kept.png")]  # a linked file is read: the same image
    with pytest.raises(UserError, match="4 of 66 images unreadable .*max_bad_fraction"):
        run_ingest(tmp_path, source=f"imagefolder:{root}", max_bad_fraction=0.05)


def test_manifest_rows_naming_a_folder_or_dangling_link_are_bad_inputs(data_root, tmp_path):
    root = make_folder(tmp_path / "imgs", per_class=10)
    (root / "cat" / "gone.png").symlink_to(tmp_path / "missing.png")
    lines = [f"{c}/{i}.png,{c}" for c in COLORS for i in range(10)] + ["cat,cat", "cat/gone.png,cat"]
    (root / "m.csv").write_text("image,label\n" + "\n".join(lines) + "\n")
    _, _, report = run_ingest(tmp_path, source=f"manifest:{root / 'm.csv'}", max_bad_fraction=0.1)
    assert {s["source"]: s["reason"] for s in report["skipped_files"]} == {
        "cat": "a folder, not a file", "cat/gone.png": "dangling symlink (its target is missing)"}


def test_sixteen_bit_images_scale_by_bit_depth_not_by_their_own_maximum(data_root, tmp_path):
    """Two 16-bit images with maxima 1000 and 200 keep their relative brightness: v >> 8 each."""
    root = tmp_path / "imgs"
    ramp = np.linspace(0, 1, 16 * 16).reshape(16, 16)
    for name, top in (("a/bright.png", 1000), ("a/dim.png", 200), ("a/full.png", 65535)):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(png16(np.round(ramp * top).astype(np.uint16)))
    (root / "a" / "rgb.png").write_bytes(png16(np.stack([np.round(ramp * 65535).astype(np.uint16)] * 3, -1)))
    rows, _, report = run_ingest(tmp_path, source=f"imagefolder:{root}", image_size=16, grayscale=True,
                                 min_per_class=1)
    px = {Path(r["source"]).stem: np.asarray(Image.open(io.BytesIO(r["image"]["bytes"]))) for r in rows}
    assert report["skipped"] == 0
    assert px["bright"].max() == 1000 >> 8 and px["dim"].max() == 0 and px["full"].max() == 255
    assert [(d["source"], d["duplicate_of"]) for d in report["duplicates"]] == [("a/rgb.png", "a/full.png")]
    # 16-bit RGB maps exactly as 16-bit gray does (the same canonical image)


def test_a_corrupt_file_added_to_a_built_corpus_reruns_cleanly(data_root, tmp_path):
    """The new file is decoded alone (an all-bad batch); its cached row has typed columns."""
    root = make_folder(tmp_path / "imgs", per_class=10)
    run_ingest(tmp_path, source=f"imagefolder:{root}", max_bad_fraction=0.1)
    (root / "cat" / "corrupt.png").write_bytes(b"garbage")
    for _ in range(2):
        rows, _, report = run_ingest(tmp_path, source=f"imagefolder:{root}", max_bad_fraction=0.1)
        assert len(rows) == 30 and report["skipped_files"] == [
            {"label": "cat", "reason": "not an image", "source": "cat/corrupt.png"}]


def test_an_in_place_edit_keeping_size_and_mtime_is_rebuilt(data_root, tmp_path):
    """An edit of the same size with its mtime put back (`touch -r`): the stat key (ctime,
    inode) sees it, so the fingerprint changes and ingest decodes the new pixels."""
    import os

    from lwise_build.config.params import IngestParams
    from lwise_build.io.sources import fingerprint

    root = make_folder(tmp_path / "imgs", per_class=4)
    png = root / "cat" / "0.png"
    Image.new("RGB", (40, 30), (10, 10, 10)).save(png, compress_level=0)  # size depends on dimensions only
    rows, _, _ = run_ingest(tmp_path, source=f"imagefolder:{root}")
    src = IngestParams(source=f"imagefolder:{root}")
    before, st = fingerprint(src, "c")["digest"], png.stat()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(png, compress_level=0)
    os.utime(png, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert png.stat().st_size == st.st_size and png.stat().st_mtime_ns == st.st_mtime_ns
    assert fingerprint(src, "c")["digest"] != before
    edited, _, _ = run_ingest(tmp_path, source=f"imagefolder:{root}")
    ids = {r["source"]: r["id"] for r in edited}
    assert ids["cat/0.png"] != {r["source"]: r["id"] for r in rows}["cat/0.png"]


def test_a_forced_ingest_hashes_the_bytes_not_the_stat_cache(data_root, tmp_path):
    """Even a stat cache that lies (an entry matching the file's stat with another file's hash)
    cannot put stale pixels in the table: ingest reads every file's bytes when it runs."""
    from lwise_build.io.fingerprint import StatCache

    root = make_folder(tmp_path / "imgs", per_class=4)
    run_ingest(tmp_path, source=f"imagefolder:{root}")
    cache = StatCache(root)
    zero, one = str(root / "cat" / "0.png"), str(root / "cat" / "1.png")
    cache.entries[zero][-1] = cache.entries[one][-1]  # 0.png "has" 1.png's content
    cache.save(cache.entries)
    rows, _, report = run_ingest(tmp_path, source=f"imagefolder:{root}")
    assert report["duplicates_removed"] == 0 and len(rows) == 12


def test_check_flags_entries_that_are_not_readable_files(data_root, tmp_path):
    from lwise_build.stages.check import check_project

    root = make_folder(tmp_path / "imgs", per_class=10)
    (root / "cat" / "gone.png").symlink_to(tmp_path / "not-fetched.png")

    def findings(frac: float) -> list[str]:
        params = load_params(write_params(tmp_path, {"source": f"imagefolder:{root}", "max_bad_fraction": frac}))
        return [f"{f.level}: {f.text}" for f in check_project(params) if "readable" in f.text]

    text = ("corpora.c.ingest.source: 1 of 31 entries of the source are not readable files "
            "(e.g. 'cat/gone.png': dangling symlink (its target is missing))")
    assert findings(0.1) == [f"warning: {text}; ingest skips and lists them"]
    assert findings(0.01) == [f"error: {text}; more than max_bad_fraction 0.01"]


def test_splits_stay_put_when_the_corpus_grows(data_root, tmp_path, caplog):
    """Version 2 adds a third more images: every old image keeps its split (no test image
    becomes a training image); the draw still follows the fractions, per class on average."""
    root = make_folder(tmp_path / "imgs", per_class=60)
    first, _, _ = run_ingest(tmp_path, source=f"imagefolder:{root}")
    for c, color in COLORS.items():
        for i in range(20):
            save_img(root / c / f"new{i}.png", (color[0], color[1] + i * 3, color[2]))
    with caplog.at_level("WARNING", logger="lwise_build"):
        grown, _, _ = run_ingest(tmp_path, source=f"imagefolder:{root}")
    now = {r["id"]: r["split"] for r in grown}
    assert len(grown) == 240 and {r["id"]: r["split"] for r in first}.items() <= now.items()
    assert "another split" not in caplog.text
    share = {s: sum(1 for v in now.values() if v == s) / len(now) for s in ("train", "validation", "test")}
    assert 0.6 < share["train"] < 0.8 and 0.07 < share["test"] < 0.23


def test_groups_stay_together_and_put_as_the_corpus_grows(data_root, tmp_path):
    root = tmp_path / "m"
    lines = ["path,label,subject"]
    for i in range(60):
        save_img(root / f"{i}.png", (i * 4, 100, 50 + 100 * (i % 2)))
        lines.append(f"{i}.png,{['a', 'b'][i % 2]},S{i // 4}")
    (root / "m.csv").write_text("\n".join(lines) + "\n")
    splits = {"train": 0.5, "validation": 0.25, "test": 0.25, "group_by": "subject"}
    first, _, _ = run_ingest(tmp_path, source=f"manifest:{root / 'm.csv'}", image_column="path", splits=splits)
    for i in range(60, 80):  # new images of old subjects and of new ones
        save_img(root / f"{i}.png", (i * 3, 20, 50 + 100 * (i % 2)))
        lines.append(f"{i}.png,{['a', 'b'][i % 2]},S{i // 4 - 10}")
    (root / "m.csv").write_text("\n".join(lines) + "\n")
    grown, _, _ = run_ingest(tmp_path, source=f"manifest:{root / 'm.csv'}", image_column="path", splits=splits)
    by_subject: dict[str, set] = {}
    for r in grown:
        by_subject.setdefault(r["subject"], set()).add(r["split"])
    assert all(len(s) == 1 for s in by_subject.values())
    assert {r["id"]: r["split"] for r in first}.items() <= {r["id"]: r["split"] for r in grown}.items()


def test_changed_fractions_say_how_many_images_move(data_root, tmp_path, caplog):
    root = make_folder(tmp_path / "imgs", per_class=30)
    first, _, _ = run_ingest(tmp_path, source=f"imagefolder:{root}")
    with caplog.at_level("WARNING", logger="lwise_build"):
        moved, _, _ = run_ingest(tmp_path, source=f"imagefolder:{root}",
                                 splits={"train": 0.5, "validation": 0.25, "test": 0.25})
    n = sum(a["split"] != b["split"] for a, b in zip(first, moved, strict=True))
    assert n > 0 and f"{n} images of the last build are now in another split (corpora.c.ingest.splits or seed changed)" in caplog.text


def test_a_successful_ingest_removes_a_failed_runs_error_list(data_root, tmp_path):
    root = make_folder(tmp_path / "imgs")
    for i in range(3):
        (root / "cat" / f"bad{i}.png").write_bytes(b"garbage")
    with pytest.raises(UserError):
        run_ingest(tmp_path, source=f"imagefolder:{root}")
    errors = tmp_path / "data" / "c" / "ingest-errors.json"
    assert errors.is_file()
    run_ingest(tmp_path, source=f"imagefolder:{root}", max_bad_fraction=0.2)
    assert not errors.exists()
