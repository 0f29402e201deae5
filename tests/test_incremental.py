"""Incremental builds: new images cost only the new images, and give what a clean build gives.

A corpus (an image folder) is ingested, scored, enhanced and turned into metamers by fixed
(imported) models; images are added; the rebuild computes only the new items, and every output
byte equals a clean build of the final folder. The unit cache also survives corruption and
concurrent writers (docs/architecture.md, "Units and the cache").
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pyarrow as pa
import pytest
from support.folders import COLORS, make_folder, save_img, snapshot
from support.params import folder_corpus_params as params
from support.toy_models import save_smallcnns

from lwise_build.io.cache import ItemCache
from lwise_build.stages.enhance.stage import Enhance
from lwise_build.stages.ingest.stage import Ingest
from lwise_build.stages.metamers.stage import Metamers
from lwise_build.stages.score.stage import Score

CLASSES = list(COLORS)  # the image folder's classes


def build(monkeypatch, root: Path, raw: Path, **kw) -> dict[str, int]:
    """Ingest, score, enhance and metamers into ``root``; items computed per stage."""
    monkeypatch.setenv("LWISE_DATA", str(root / "data"))
    monkeypatch.setenv("LWISE_CACHE", str(root / "cache"))
    if not (root / "data" / "toy" / "models").is_dir():
        save_smallcnns(root / "data" / "toy" / "models", ("guide", "observer", "extra"), CLASSES,
                       3 if kw.get("rgb") else 1)
    computed = {}
    for cls in (Ingest, Score, Enhance, Metamers):
        stage = cls(params(raw, **kw), "toy")
        stage.run()
        computed[cls.name] = sum(c for _, _, c in stage.counts)
    return computed


def references(root: Path) -> list[str]:
    from lwise_build.io.tables import read_table

    return read_table(root / "data" / "toy" / "metamers", ["reference_id"]).column("reference_id").to_pylist()


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    return make_folder(tmp_path / "raw", per_class=8)


@pytest.mark.parametrize("rgb", [False, True], ids=["gray", "rgb"])  # rgb: channels-last decoded batches
def test_adding_images_computes_only_them_and_equals_a_clean_build(tmp_path, monkeypatch, raw, rgb):
    first = build(monkeypatch, tmp_path / "inc", raw, rgb=rgb)
    refs_before = set(references(tmp_path / "inc"))  # up to 2 per class: as many as the train split allows
    assert first == {"ingest": 24, "score": 48, "enhance": 48, "metamers": len(refs_before)} and len(refs_before) >= 4
    for i, name in enumerate(CLASSES):
        save_img(raw / name / "new.png", (90 + 40 * i, 20, 200 - 40 * i))
    again = build(monkeypatch, tmp_path / "inc", raw, rgb=rgb)
    assert again["ingest"] == 3 and again["score"] == 3 * 2 and again["enhance"] == 3 * 2
    # the seeded draw of references may change with the pool (as in a clean build): only the new
    # ones are synthesised
    assert again["metamers"] == len(set(references(tmp_path / "inc")) - refs_before)
    clean = build(monkeypatch, tmp_path / "clean", raw, rgb=rgb)
    assert clean == {"ingest": 27, "score": 54, "enhance": 54, "metamers": len(set(references(tmp_path / "clean")))}
    inc, ref = snapshot(tmp_path / "inc"), snapshot(tmp_path / "clean")
    assert sorted(inc) == sorted(ref)
    assert [k for k in ref if inc[k] != ref[k]] == []  # every output byte-identical


def test_a_new_scoring_model_computes_only_its_column(tmp_path, monkeypatch, raw):
    build(monkeypatch, tmp_path, raw)
    monkeypatch.setenv("LWISE_DATA", str(tmp_path / "data"))
    stage = Score(params(raw, aliases={"robust": "guide", "standard": "observer", "new": "extra"}), "toy")
    stage.run()
    assert sum(c for _, _, c in stage.counts) == 24  # one model x 24 images


def test_a_corrupt_cache_entry_is_detected_and_recomputed(tmp_path, monkeypatch, raw):
    build(monkeypatch, tmp_path, raw)
    before = snapshot(tmp_path)
    packs = sorted((tmp_path / "cache" / "score").rglob("*.parquet"))
    packs[0].write_bytes(packs[0].read_bytes()[:-40])  # torn write
    computed = build(monkeypatch, tmp_path, raw)
    assert computed["score"] > 0 and computed["enhance"] == 0
    assert snapshot(tmp_path) == before


def test_concurrent_writers_of_the_same_unit_leave_one_valid_entry(tmp_path):
    table = pa.table({"key": ["a", "b"], "value": [1, 2]})
    caches = [ItemCache("s", tmp_path) for _ in range(8)]
    threads = [threading.Thread(target=c.put, args=(table,)) for c in caches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    files = [p for p in (tmp_path / "s").rglob("*") if p.is_file()]
    assert len(files) == 1 and files[0].suffix == ".parquet"  # no temporary file left behind
    fresh = ItemCache("s", tmp_path)
    assert fresh.missing(["a", "b", "c"]) == ["c"]
    assert fresh.get(["b", "a"]).column("value").to_pylist() == [2, 1]


def test_cache_clear_and_report(tmp_path, monkeypatch):
    from lwise_build.io.cache import cache_report, clear_cache

    ItemCache("score", tmp_path).put(pa.table({"key": ["k"], "v": [0]}))
    assert [(s, n) for s, n, _ in cache_report(tmp_path)] == [("score", 1)]
    assert clear_cache(older_than_s=3600, root=tmp_path)[0] == 0  # just used: kept
    assert clear_cache(root=tmp_path)[0] == 1
    shutil.rmtree(tmp_path / "score")
    assert cache_report(tmp_path) == []
