"""The enhance stage: tables per budget, stored images within budget, determinism, resumability."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from support.params import DIGITS_16, toy_models, toy_params
from support.tables import TINY_CLASSES as CLASSES
from support.toy_models import save_smallcnns

from lwise_build.config.load import parse_params
from lwise_build.config.params import Params
from lwise_build.errors import UserError
from lwise_build.io.images import to_tensor
from lwise_build.io.paths import budget_dir, stage_dir
from lwise_build.io.tables import read_features, read_table, write_table
from lwise_build.models.classifier import Classifier
from lwise_build.models.registry import create_net
from lwise_build.models.store import load_named, save_model
from lwise_build.ops.quantize import best_within, change_sizes, quantize_within
from lwise_build.stages.enhance import stage as enhance_stage
from lwise_build.stages.enhance.stage import Enhance

BUDGETS = [0.25, 1.0, 3.0]



def make_params(**enhance) -> Params:
    section = {"model": "guide", "budgets": BUDGETS, "splits": ["train", "test"], "batch_size": 16,
               "observers": ["observer"], "compare_guides": ["other"], "metrics_sample": 8, "grid_images": 3,
               **enhance}
    return toy_params({"enhance": section}, ingest=DIGITS_16, models=toy_models("guide", "other", "observer"),
                      seed=0, device="cpu")


def save_models(root: Path, names=("guide", "other", "observer")) -> None:
    save_smallcnns(root / "toy" / "models", names, CLASSES)


def two_shard_images(root: Path, n: int = 24) -> None:
    """A toy images table in two shards (so a crash can happen between them)."""
    from datasets import ClassLabel, Features, Image, Value

    from lwise_build.io.images import encode_png, image_id

    rng = np.random.default_rng(1)
    pngs = [encode_png((rng.random((16, 16)) * 255).astype(np.uint8)) for _ in range(n)]
    rows = [{"id": image_id(p), "image": {"bytes": p, "path": None}, "label": i % 3,
             "split": ["train", "test", "validation"][i % 3], "source": f"r{i}"} for i, p in enumerate(pngs)]
    feats = Features({"id": Value("string"), "image": Image(), "label": ClassLabel(names=CLASSES),
                      "split": Value("string"), "source": Value("string")})
    shards = [{k: [r[k] for r in part] for k in rows[0]} for part in (rows[: n // 2], rows[n // 2:])]
    write_table(shards, feats, root / "toy" / "images")


def budget_table(b: float):
    return read_table(stage_dir("toy", "enhanced") / budget_dir(b))


def test_stage_writes_one_table_per_budget_within_budget(tiny_images):
    save_models(tiny_images["root"])
    Enhance(make_params(), "toy").run()
    images = read_table(stage_dir("toy", "images")).to_pydict()
    originals = {i: img["bytes"] for i, img in zip(images["id"], images["image"], strict=True)}
    wanted = [i for i, s in zip(images["id"], images["split"], strict=True) if s in ("train", "test")]
    folder = stage_dir("toy", "enhanced")
    assert sorted(p.name for p in folder.iterdir()) == ["eps=0.25", "eps=1", "eps=3"]
    guide = load_named(make_params(), "guide")
    for b in BUDGETS:
        t = budget_table(b).to_pydict()
        assert read_features(folder / budget_dir(b))["label"].names == CLASSES
        assert t["id"] == wanted and set(t["budget"]) == {b}
        x0 = to_tensor([originals[i] for i in t["id"]])
        x = to_tensor([img["bytes"] for img in t["image"]])
        l2, linf = change_sizes(x0, x)
        assert bool((l2 <= b).all()) and max(t["l2"]) <= b
        assert np.allclose(l2.numpy(), t["l2"]) and np.allclose(linf.numpy(), t["linf"])
        y = torch.tensor(t["label"])
        with torch.no_grad():
            after = guide(x).gather(1, y[:, None])[:, 0].numpy()
        assert np.allclose(after, t["gt_logit_after"], atol=1e-4)
    gain = np.subtract(budget_table(3.0)["gt_logit_after"], budget_table(3.0)["gt_logit_before"])
    assert gain.mean() > 0
    metrics = json.loads((stage_dir("toy", "metrics") / "details" / "enhance.json").read_text())
    assert metrics["budgets"]["eps=3"]["within_budget"] and metrics["images"] == len(wanted)
    assert set(metrics["transfer"]["guides"]) == {"guide", "other"}
    assert "observer" in metrics["transfer"]["guides"]["other"]["eps=1"]["observers"]
    plots = stage_dir("toy", "plots") / "enhance"
    assert {"grid.png", "grid_other.png", "gain_vs_budget.png", "gain-guide.csv", "gain-other.csv"} <= \
        {p.name for p in plots.iterdir()}
    assert (plots / "gain-guide.csv").read_text().splitlines()[0] == "budget,guide,mean_gain,guide_accuracy,acc_observer"
    rows = {p.stem: json.loads(p.read_text()) for p in (stage_dir("toy", "metrics") / "enhance").iterdir()}
    assert set(rows) == {"eps=0", "eps=0.25", "eps=1", "eps=3"} and rows["eps=0"]["gain"] == 0.0
    assert rows["eps=3"]["gain"] == metrics["budgets"]["eps=3"]["mean_gain"] and metrics["budgets"]["eps=3"]["within_budget"]


def test_best_within_never_stores_a_worse_image_than_the_original():
    """Rounding a small gain can cost more than the gain: the best rounded candidate is stored,
    and the original where none beats it."""
    x0 = torch.zeros((2, 1, 2, 2))
    x = x0 + 1.6 / 255  # nearest rounding: 2 levels; the 0.9 shrink and truncation: 1 level
    target = torch.tensor([0.9, -5.0])  # image 0 is best 1 level up; image 1 is best unchanged

    def score(imgs, rows):  # higher is better: closeness of the mean level to the row's target
        return -((imgs * 255).mean((1, 2, 3)) - target[rows]) ** 2

    base = score(x0, torch.arange(2))
    assert bool((score(quantize_within(x0, x, 1.0, "l2"), torch.arange(2)) < base).all())  # plain rounding loses
    got = best_within(x0, x, 1.0, "l2", score, base)
    assert torch.equal(got[0], x0[0] + 1 / 255) and torch.equal(got[1], x0[1])
    assert bool((score(got, torch.arange(2)) >= base).all())


def test_stored_images_never_have_a_lower_gt_logit_than_the_original(tiny_images):
    save_models(tiny_images["root"])
    # budgets below one grey level (1/255 = 0.0039): rounding decides; before the fix 8 stored images
    # at eps 0.004 and 0.008 scored below their original
    Enhance(make_params(budgets=[0.004, 0.008, 0.016], step_size=0.004), "toy").run()
    for b in (0.004, 0.008, 0.016):
        t = budget_table(b)
        gain = np.subtract(t["gt_logit_after"], t["gt_logit_before"])
        assert (gain >= 0).all(), (b, gain.min())


def test_quantize_within_keeps_rounded_images_inside_the_budget():
    x0 = torch.full((2, 1, 4, 4), 128 / 255)
    x = x0 + 0.6 / 255  # every pixel 0.6 levels away: nearest rounding moves each a full level
    eps_l2 = float(change_sizes(x0, x0)[0][0]) + 0.6 * 4 / 255  # ||0.6 level * 16 pixels|| = 2.4 levels
    for norm, eps in (("l2", eps_l2), ("linf", 0.6 / 255)):
        q = quantize_within(x0, x, eps, norm)
        l2, linf = change_sizes(x0, q)
        assert bool(((linf if norm == "linf" else l2) <= eps).all()), norm
        assert torch.equal(q, quantize_within(x0, x, eps, norm))
        assert torch.equal((q * 255).round() / 255, q)
    q = quantize_within(x0, x0 + 0.4 / 255, 1.0, "l2")  # plenty of budget: plain rounding
    assert torch.equal(q, x0)


def test_byte_identical_outputs_twice(tiny_images, tmp_path, monkeypatch):
    save_models(tiny_images["root"])
    params = make_params(budgets=[0.5, 2.0], compare_guides=[], grid_images=2)
    snapshots = []
    for run in range(2):
        monkeypatch.setenv("LWISE_CACHE", str(tmp_path / f"cache{run}"))  # compute from scratch each time
        Enhance(params, "toy").run()
        root = tiny_images["root"] / "toy"
        files = sorted(p for d in ("enhanced", "metrics", "plots") for p in (root / d).rglob("*") if p.is_file())
        snapshots.append({str(p.relative_to(root)): p.read_bytes() for p in files})
    assert snapshots[0] == snapshots[1]


def test_resumes_after_a_crash_and_after_adding_a_budget(data_root, monkeypatch):
    two_shard_images(data_root)
    save_models(data_root, ["guide"])
    params = make_params(budgets=[0.5, 2.0], observers=[], compare_guides=[], splits=["train", "test"])
    calls, real = [], enhance_stage.enhance_images

    def crashing(ep, guide, pngs, targets, budgets, **kw):
        calls.append((pngs[0], list(budgets)))
        if len(calls) == 2:
            raise RuntimeError("simulated crash")
        return real(ep, guide, pngs, targets, budgets, **kw)

    monkeypatch.setattr(enhance_stage, "enhance_images", crashing)
    with pytest.raises(RuntimeError, match="simulated"):
        Enhance(params, "toy").run()
    assert not stage_dir("toy", "enhanced").exists()  # nothing half-written
    first_shard = calls[0][0]
    calls.clear()
    monkeypatch.setattr(enhance_stage, "enhance_images",
                        lambda *a, **kw: (calls.append((a[2][0], list(a[4]))), real(*a, **kw))[1])
    Enhance(params, "toy").run()
    assert len(calls) == 1 and calls[0][0] != first_shard  # only the second shard was computed
    assert len(list((stage_dir("toy", "enhanced") / "eps=2").glob("*.parquet"))) == 2
    before = budget_table(2.0)
    calls.clear()
    Enhance(make_params(budgets=[0.5, 1.0, 2.0], observers=[], compare_guides=[]), "toy").run()
    assert [c[1] for c in calls] == [[1.0], [1.0]]  # only the new budget, once per shard
    assert budget_table(2.0).equals(before)


def test_missing_guide_model_is_a_one_line_user_error(tiny_images):
    with pytest.raises(UserError) as err:
        Enhance(make_params(), "toy").run()
    assert "guide" in str(err.value) and "\n" not in str(err.value)
    assert not stage_dir("toy", "enhanced").exists()


def test_unknown_split_or_diverge_class_is_a_user_error(tiny_images):
    save_models(tiny_images["root"])
    with pytest.raises(UserError, match="enhance.splits.*'dev'"):
        Enhance(make_params(splits=["train", "dev"]), "toy").run()
    with pytest.raises(UserError, match="enhance.diverge_from.*'star'"):
        Enhance(make_params(objective="logit_diverge", diverge_from=["dot", "star"]), "toy").run()


def test_no_guide_writes_an_empty_enhanced_folder(tiny_images):
    Enhance(make_params(model=None, observers=[], compare_guides=[]), "toy").run()
    assert stage_dir("toy", "enhanced").is_dir() and not list(stage_dir("toy", "enhanced").iterdir())
    details = json.loads((stage_dir("toy", "metrics") / "details" / "enhance.json").read_text())
    assert details["guide"] is None and details["guide_reason"].startswith("enhancement is disabled")
    assert list((stage_dir("toy", "metrics") / "enhance").iterdir()) == []


def test_enhance_maps_labels_onto_a_larger_head_through_score_class_map(tiny_images):
    """An imported head with numbered classes: with only ``score.class_map`` (no 1000-name
    ``classes`` list), enhance steps towards the mapped output, as score and metamers do."""
    torch.manual_seed(0)
    net, stages = create_net("smallcnn-tiny", 6, 1)
    head = [str(i) for i in range(6)]
    save_model(Classifier(net, stages, [0.3], [0.3], head, "smallcnn-tiny"), tiny_images["root"] / "toy" / "models" / "guide")
    mapping = {"bar": "4", "dot": "1", "ring": "5"}
    plain = _plain(make_params(observers=[], compare_guides=[], budgets=[1.0], objective="logit_diverge"))
    plain["corpora"]["toy"]["score"] = {"class_map": mapping}
    params = parse_params(plain)
    stage = Enhance(params, "toy")
    stage.run()
    assert stage.diverge_heads("guide") == [1, 4, 5]  # the corpus's classes on this head, not all 6
    t = budget_table(1.0).to_pydict()
    images = read_table(stage_dir("toy", "images"), ["id", "image"]).to_pydict()
    by_id = dict(zip(images["id"], (i["bytes"] for i in images["image"]), strict=True))
    heads = torch.tensor([int(mapping[CLASSES[k]]) for k in t["label"]])
    with torch.no_grad():
        before = load_named(params, "guide")(to_tensor([by_id[i] for i in t["id"]]))
    assert np.allclose(before.gather(1, heads[:, None])[:, 0].numpy(), t["gt_logit_before"], atol=1e-5)
    assert np.mean(np.subtract(t["gt_logit_after"], t["gt_logit_before"])) > 0


def _plain(params: Params) -> dict:
    from lwise_build.config.schema import to_plain

    return json.loads(json.dumps(to_plain(params), default=str))
