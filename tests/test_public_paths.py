"""No local paths in published files (issue 23, item 10): the images table names files relative to
the source, and the card, citation and provenance name the source and checkpoints without the
building machine's folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from support.folders import save_img
from support.hub_tiny import CORPUS, make_tiny_build, tiny_params
from support.ingest import run_ingest

from lwise_build.config.load import parse_params
from lwise_build.config.schema import to_plain
from lwise_build.errors import UserError
from lwise_build.io.paths import public_path, public_source
from lwise_build.stages.export.stage import Export


def test_public_paths_keep_relative_paths_and_drop_machine_folders() -> None:
    assert public_source("imagefolder:/home/alice/data/moths") == "imagefolder:moths"
    assert public_source("manifest:~/studies/m.csv") == "manifest:m.csv"
    assert public_source("imagefolder:data-raw/moths") == "imagefolder:data-raw/moths"
    assert public_source("hf:org/name") == "hf:org/name" and public_source("builtin:digits") == "builtin:digits"
    assert public_path("hf://org/repo/w.safetensors") == "hf://org/repo/w.safetensors"
    assert public_path("/srv/ckpt/robust.pt") == "robust.pt"


def test_absolute_manifest_paths_are_named_relative_to_their_common_folder(data_root, tmp_path: Path) -> None:
    images = tmp_path / "lab" / "images"
    lines = ["image,label"]
    for i in range(12):
        save_img(images / ["a", "b"][i % 2] / f"{i}.png", (20 * i, 100, 60))
        lines.append(f"{images / ['a', 'b'][i % 2] / f'{i}.png'},{['x', 'y'][i % 2]}")
    manifest = tmp_path / "elsewhere" / "m.csv"
    manifest.parent.mkdir()
    manifest.write_text("\n".join(lines) + "\n")
    rows, _, _ = run_ingest(tmp_path, source=f"manifest:{manifest}")
    assert sorted(r["source"] for r in rows) == sorted(f"{['a', 'b'][i % 2]}/{i}.png" for i in range(12))
    manifest.write_text(f"image,label\n{images / 'a' / '0.png'},x\n{images / 'b' / '1.png'},y\na/0.png,x\n")
    (manifest.parent / "a").mkdir()
    save_img(manifest.parent / "a" / "0.png", (1, 2, 3))
    with pytest.raises(UserError, match="would both be named 'a/0.png'"):
        run_ingest(tmp_path, source=f"manifest:{manifest}")


def test_the_exported_folder_names_no_local_folder(tiny_images, data_root: Path, tmp_path: Path) -> None:
    plain = to_plain(tiny_params())
    plain["corpora"][CORPUS]["ingest"]["source"] = f"imagefolder:{tmp_path / 'raw' / 'toys'}"
    plain["models"]["toy-robust"]["checkpoint"] = str(tmp_path / "weights" / "robust.pt")
    params = parse_params(json.loads(json.dumps(plain)))
    make_tiny_build(data_root)
    hub = Export(params, CORPUS).run()
    texts = {p.relative_to(hub).as_posix(): p.read_text(encoding="utf-8") for p in hub.rglob("*")
             if p.suffix in (".md", ".json", ".cff")}
    assert texts and [name for name, text in texts.items() if str(tmp_path) in text] == []
    prov = json.loads(texts["provenance.json"])
    assert prov["params"]["corpus"]["ingest"]["source"] == "imagefolder:toys"
    assert prov["params"]["models"]["toy-robust"]["checkpoint"] == "robust.pt"
    assert "from `imagefolder:toys`" in texts["README.md"] and "checkpoint `robust.pt`" in texts["README.md"]
    sources = pq.read_table(hub / "data" / "default", columns=["source"]).column("source").to_pylist()
    assert sources and not any(str(tmp_path) in s for s in sources) and np.all([not s.startswith("/") for s in sources])
