"""The newcomer's path on real photographs (scikit-image's lfw_subset: faces vs non-faces).

``check`` catches each mistake a newcomer makes, naming the key, before any work; the README's
"Your own data" steps, followed literally (its params added to the default params.yaml, its
commands run as written), build the corpus through DVC; the result is readable (plots name
existing fields, metrics are headline-sized with every null explained, every table is a plain
Parquet folder) and publishes after a git commit with no extra repro.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from support.lfw import write_folder
from support.newcomer import (
    assert_plain_parquet,
    lwise,
    project,
    readme_steps,
    with_readme_corpus,
)

# ---------------------------------------------------------------- check ------------------------
MISTAKES = [  # (change to the README's params, the one line check must print)
    (lambda p: p["corpora"]["faces"]["ingest"].pop("image_column"),
     "error: corpora.faces.ingest.image_column: manifest data-raw/faces/faces.csv has no column 'image' "
     "(columns: path, label, subject, human_accuracy); set image_column: path"),
    (lambda p: p["models"]["faces-robust"].update(arch="smallcnn-tinyy"),
     "error: models.faces-robust.arch: unknown architecture 'smallcnn-tinyy' (did you mean 'smallcnn-tiny'?)"),
    (lambda p: p["corpora"]["faces"]["ingest"].update(source="imagefolder:data-raw/no-such-folder"),
     "error: corpora.faces.ingest.source: folder 'data-raw/no-such-folder' not found"),
    (lambda p: p["corpora"]["faces"]["ingest"].update(image_size=64),
     "error: models.faces-robust.input_size: 32, but corpora.faces.ingest.image_size is 64"),
    (lambda p: p["corpora"]["faces"]["ingest"].update(source="imagefolder:data-raw/faces/images"),
     "error: corpora.faces.ingest.splits.group_by: 'subject', but an image folder has no metadata columns"),
    (lambda p: p["corpora"]["faces"]["ingest"]["splits"].update(group_by="person"),
     "error: corpora.faces.ingest.splits.group_by: manifest data-raw/faces/faces.csv has no column 'person'"),
    (lambda p: p["models"]["faces-standard"].update(in_channels=3),
     "error: models.faces-standard.in_channels: 3, but corpora.faces.ingest.grayscale: true (1-channel images); "
     "set in_channels: 1"),
    (lambda p: p["corpora"]["faces"]["enhance"].update(budgets=[1, 2, 4]),
     "error: corpora.faces.curricula.lwise: block 1 uses budget 8 (the preset's default budgets "
     "[8, 4, 2, 1, 0.5, 0.25]; give it 6 `budgets` to use others), which corpora.faces.enhance.budgets "
     "does not build (1, 2, 4)"),
    (lambda p: p["corpora"]["faces"]["score"]["models"].update(blur="digits-blur"),
     "error: corpora.faces.score.models.blur: model 'digits-blur' is built for corpus 'digits'"),
    (lambda p: p["models"]["faces-robust"].update(checkpoint="checkpoints/faces_robust.pt"),
     "error: models.faces-robust.checkpoint: file 'checkpoints/faces_robust.pt' not found"),
    (lambda p: p["models"]["faces-standard"].update(classes=["0", "1"]),
     "error: corpora.faces.score (model faces-standard): label 'face' is not a class of the model "
     "(map it with score.class_map or score.target_column)"),
    (lambda p: p["corpora"]["faces"]["curricula"]["lwise"].update(train_trials_per_class=20),
     "warning: corpora.faces.curricula.lwise: 2 of 2 classes have fewer than the 235 train images per class"),
]


@pytest.fixture(scope="module")
def shared_project(tmp_path_factory) -> Path:
    return project(tmp_path_factory.mktemp("newcomer"), with_readme_corpus())


@pytest.mark.parametrize("change,line", MISTAKES, ids=[m[1].split(":")[1].strip() + str(i) for i, m in enumerate(MISTAKES)])
def test_check_catches_each_mistake_with_its_key_before_any_work(shared_project, monkeypatch, change, line):
    from lwise_build.config.load import parse_params
    from lwise_build.stages.check import check_project

    params = with_readme_corpus()
    change(params)
    monkeypatch.chdir(shared_project)
    try:
        found = [f"{f.level}: {f.text}" for f in check_project(parse_params(params))]
    except Exception as exc:  # noqa: BLE001 - a schema error is a one-line UserError too
        found = [f"error: {exc}"]
    assert any(out.startswith(line) for out in found), found
    assert not (shared_project / "data").exists()  # nothing ran


def test_check_prints_one_line_per_problem_and_exits_2(shared_project, tmp_path):
    params = with_readme_corpus()
    MISTAKES[0][0](params)
    MISTAKES[1][0](params)
    proj = project(tmp_path, params)
    res = lwise("check", cwd=proj)
    assert res.returncode == 2 and res.stdout == ""
    lines = res.stderr.splitlines()
    sheet = [line for line in lines if "the datasheet leaves" in line]  # both corpora name a repo_id
    assert [line.split(":")[1].strip() for line in sheet] == ["corpora.digits.export", "corpora.faces.export"]
    lines = [line for line in lines if line not in sheet]
    assert lines == [MISTAKES[1][1] + lines[0][len(MISTAKES[1][1]):], MISTAKES[0][1],
                     "2 error(s): fix them before `dvc repro`"]


def test_readme_params_pass_check_and_an_image_folder_ingests(tmp_path):
    proj = project(tmp_path, with_readme_corpus())
    res = lwise("check", cwd=proj)
    assert res.returncode == 0 and res.stdout.startswith("params OK"), res.stderr
    assert "ingest@faces -> data/faces/images" in res.stdout
    # the image-folder variant (no group_by: folders carry no metadata) with a one-image class
    params = with_readme_corpus()
    write_folder(proj / "data-raw" / "folder")
    (proj / "data-raw" / "folder" / "rare").mkdir()
    from PIL import Image, ImageOps

    ImageOps.mirror(Image.open(proj / "data-raw" / "folder" / "face" / "000.png")).save(proj / "data-raw" / "folder" / "rare" / "x.png")
    params["corpora"] = {"folder": {"ingest": {"source": "imagefolder:data-raw/folder", "image_size": 32,
                                               "grayscale": True}}}
    params["models"] = {}
    (proj / "params.yaml").write_text(yaml.safe_dump(params))
    res = lwise("check", cwd=proj)
    missing = [s for s in ("train", "validation", "test")  # the one image is in one split: the other two miss it
               if f"warning: corpora.folder.ingest.splits: the {s} split gets no image of class 'rare' (1 images)" in res.stderr]
    assert res.returncode == 0 and len(missing) == 2, res.stderr
    assert lwise("ingest", "folder", cwd=proj).returncode == 0
    assert_plain_parquet(proj / "data" / "folder" / "images", 201)


# ---------------------------------------------------------------- the build ------------------------
def test_readme_commands_are_the_ones_tested():
    params, commands = readme_steps()
    assert commands == ["lwise-build check", "dvc repro export@faces report@faces"]
    assert copy.deepcopy(params)["corpora"]["faces"]["ingest"]["image_column"] == "path"
