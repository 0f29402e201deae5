"""Metamer validity as the reference judges it: the generator's own choice, forced choices over the
corpus's classes, a null of distinct natural training pairs computed once per image; fake ReLU."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from support.toy_models import toy_images, toy_model

from lwise_build.config.load import load_params
from lwise_build.io.paths import stage_dir
from lwise_build.io.scratch import ScratchRows
from lwise_build.io.tables import read_table
from lwise_build.models.store import save_model
from lwise_build.ops import metamer as M
from lwise_build.ops import metamer_stats as MS
from lwise_build.ops.classmap import choice_groups, forced_choice, model_targets
from lwise_build.ops.fake_relu import FakeReLUBlock, fake_relu, with_fake_relu
from lwise_build.stages.metamers.stage import Metamers

PARAMS = """
seed: 0
device: cpu
models:
  gen: {{arch: smallcnn-tiny, corpus: toy, in_channels: 1, checkpoint: x.pt}}
  wide: {{arch: smallcnn-tiny, corpus: toy, in_channels: 1, checkpoint: x.pt, classes: [bar, dot, ring, zz, yy]}}
corpora:
  toy:
    ingest: {{source: "builtin:digits", image_size: 16, grayscale: true}}
    metamers:
      generators: [gen]
      layers: {{gen: [block1]}}
      judges: [gen, wide]
      per_class: 2
      split: test
      schedule: fast
      steps: 60
{extra}
"""


def _params(tmp_path: Path, root: Path, extra: str = "", gen_bias: float = 0.0):
    gen = toy_model(0)
    gen.net.fc.bias.data[0] += gen_bias  # gen_bias > 0: the generator always chooses class 0 ("bar")
    wide = toy_model(1, classes=("bar", "dot", "ring", "zz", "yy"))
    wide.net.fc.bias.data[3] += 1000.0  # argmax over the head would always be "zz", not a corpus class
    save_model(gen, root / "toy" / "models" / "gen")
    save_model(wide, root / "toy" / "models" / "wide")
    path = tmp_path / "params.yaml"
    path.write_text(PARAMS.format(extra=extra))
    return load_params(path)


def _run(params) -> tuple[list[dict], dict]:
    Metamers(params, "toy").run()
    folder = stage_dir("toy", "metamers")
    return read_table(folder).to_pylist(), json.loads((folder.parent / "metrics" / "details" / "metamers.json").read_text())


def test_a_misclassified_reference_is_judged_against_the_generators_choice(tiny_images, tmp_path):
    rows, metrics = _run(_params(tmp_path, tiny_images["root"], gen_bias=1000.0))
    assert {r["reference_pred"] for r in rows} == {0} and {r["generator_pred"] for r in rows} == {0}
    wrong = [r for r in rows if r["label"] != 0]  # the generator misclassifies these references
    assert wrong and any(r["passes"] for r in wrong)  # valid: it chooses for them what it chose before
    for r in rows:
        assert r["passes"] == all(r[s] >= r[f"null_{s}"] - MS.TIE for s in MS.STATS)
    assert metrics["counts"]["passing"] == sum(r["passes"] for r in rows)


def test_judges_with_a_larger_head_choose_among_the_corpus_classes(tiny_images, tmp_path):
    rows, _ = _run(_params(tmp_path, tiny_images["root"]))
    wide = toy_model(1, classes=("bar", "dot", "ring", "zz", "yy"))
    wide.net.fc.bias.data[3] += 1000.0
    from lwise_build.io.images import to_tensor

    x = to_tensor([r["metamer"]["bytes"] for r in rows])
    with torch.no_grad():
        expect = wide(x)[:, :3].argmax(1).tolist()
    assert [r["judge_wide_pred"] for r in rows] == expect  # not "zz" (index 3), never -1


def test_null_is_drawn_from_the_training_split_with_the_configured_size(tiny_images, tmp_path):
    params = _params(tmp_path, tiny_images["root"], extra="      null_pairs: 50")
    stage = Metamers(params, "toy")
    stage.prepare()
    split_of = dict(zip(tiny_images["ids"], tiny_images["splits"], strict=True))
    assert {split_of[i] for i in stage.null_ids} == {"train"} and len(stage.pairs) == 50
    assert len({tuple(p) for p in stage.pairs.tolist()}) == 50  # distinct pairs
    _, metrics = _run(params)
    assert metrics["counts"]["null_pairs"] == 50 and metrics["null_split"] == "train"
    few = _params(tmp_path, tiny_images["root"], extra="      null_split: validation")  # 12 images
    _, metrics = _run(few)
    assert metrics["counts"]["null_pairs"] == 12 * 11 // 2  # every distinct pair when fewer than asked


def test_null_augmentation_is_seeded_per_image(tiny_images, tmp_path):
    params = _params(tmp_path, tiny_images["root"], extra="      null_augment: [hflip, crop]")
    a, b = Metamers(params, "toy"), Metamers(params, "toy")
    a.prepare()
    b.prepare()
    plain = Metamers(_params(tmp_path, tiny_images["root"]), "toy")
    plain.prepare()
    assert torch.equal(a.null_images, b.null_images)
    assert not torch.equal(a.null_images, plain.null_images)
    part = a._decode_null(np.arange(3, 7))  # decoding a subset gives those images' own views
    assert torch.equal(part, a.null_images[3:7])


def test_null_statistics_match_brute_force_and_compute_each_image_once():
    rng = np.random.default_rng(0)
    acts = rng.normal(size=(30, 40))
    acts[4] = 0  # an all-zero activation: the reference scores its pairs as 0
    pairs = MS.null_pairs(30, 200, seed=3)
    given = []

    def batches():
        for lo in range(0, 30, 7):
            given.append(len(acts[lo:lo + 7]))
            yield acts[lo:lo + 7]

    got = MS.null_stats(batches(), pairs, 30)
    brute = MS.match_stats(acts[pairs[:, 0]], acts[pairs[:, 1]])
    dead = (pairs == 4).any(1)
    for s in MS.STATS:
        np.testing.assert_allclose(got[s][~dead], brute[s][~dead], rtol=1e-12, atol=1e-12)
        assert (got[s][dead] == 0).all()
    assert sum(given) == 30  # every image once


def test_null_rows_past_memory_go_to_scratch_and_read_back_in_bounded_blocks(monkeypatch, tmp_path):
    """Rows spill to a scratch file and the statistics read at most two blocks of rows at a time,
    whatever the null's size, with the same values bit for bit as all rows in memory."""
    monkeypatch.setenv("LWISE_CACHE", str(tmp_path))
    rng = np.random.default_rng(1)
    acts = np.maximum(rng.normal(size=(60, 50)), 0).astype(np.float32).astype(np.float64)  # ReLU ties
    pairs = MS.null_pairs(60, 500, seed=2)
    in_memory = MS.null_stats([acts], pairs, 60)
    stores, largest = [], []

    def spill(width, dtype):
        store = ScratchRows(width, dtype)
        take = store.take
        store.take = lambda idx: largest.append(len(idx)) or take(idx)
        stores.append(store)
        return store

    monkeypatch.setattr(MS, "BLOCK_BYTES", 48 * 50 * 10)  # blocks of 10 images of 50 values
    streamed = MS.null_stats((acts[lo:lo + 16] for lo in range(0, 60, 16)), pairs, 60, spill=spill, max_bytes=1000)
    assert len(stores) == 1 and stores[0].count == 60 and stores[0].file.closed
    assert max(largest) <= 2 * 10 and len(largest) > 1
    for s in MS.STATS:
        assert np.array_equal(streamed[s], in_memory[s]), s


def test_null_pairs_are_distinct_unordered_and_cover_small_pools():
    p = MS.null_pairs(1000, 10_000, seed=0)
    assert len(p) == 10_000 and (p[:, 0] < p[:, 1]).all() and p.max() < 1000
    assert len({tuple(r) for r in p.tolist()}) == 10_000
    assert np.array_equal(p, MS.null_pairs(1000, 10_000, seed=0))
    assert not np.array_equal(p, MS.null_pairs(1000, 10_000, seed=1))
    assert MS.null_pairs(4, 10_000, 0).tolist() == [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]


def test_forced_choice_over_superclasses_takes_the_best_member():
    fine = ["f0", "f1", "f2", "f3", "other"]
    targets = model_targets(fine, ["A", "B"], [0, 0, 1, 1], "score", target_values=["f0", "f1", "f2", "f3"])
    groups = choice_groups(targets, np.array([0, 0, 1, 1]), 2)
    assert [g.tolist() for g in groups] == [[0, 1], [2, 3]]
    logits = np.array([[1.0, 5.0, 3.0, 2.0, 99.0], [0.0, 1.0, 4.0, 0.5, 99.0]])
    assert forced_choice(logits, groups).tolist() == [0, 1]  # "other" (99) is no alternative
    plain = choice_groups(model_targets(fine, ["f3", "f1"], [0, 1], "score"), np.array([0, 1]), 2)
    assert forced_choice(logits[:, ::-1], plain).tolist() == [0, 0]  # corpus order: f3, f1
    assert forced_choice(logits, plain).tolist() == [1, 1]


def test_fake_relu_has_relu_forward_and_identity_gradient():
    x = torch.tensor([-2.0, -0.5, 0.0, 1.5], requires_grad=True)
    y = fake_relu(x)
    assert torch.equal(y, x.clamp(min=0))
    (g,) = torch.autograd.grad(y.sum(), x)
    assert torch.equal(g, torch.ones(4))


def test_fake_relu_changes_only_gradients_at_relu_layers():
    model = toy_model(0)
    fast = M.synthesis_model(model)
    x = toy_images(4)
    for layer, has_relu in (("block1", True), ("block2", True), ("avgpool", False), ("fc", False)):
        fake = M.fake_relu_model(fast, layer)
        assert torch.equal(fake.forward_to(x, layer), fast.forward_to(x, layer))
        grads = []
        for m in (fast, fake):
            xi = x.clone().requires_grad_(True)
            (g,) = torch.autograd.grad(m.forward_to(xi, layer).sum(), xi)
            grads.append(g)
        assert torch.equal(grads[0], grads[1]) != has_relu, layer
    ids = [f"r{i}" for i in range(4)]
    kw = {"schedule": "test", "seed": 0}
    assert not torch.equal(M.metamers(model, "block1", x, ids, fake_relu=True, **kw),
                           M.metamers(model, "block1", x, ids, **kw))
    assert torch.equal(M.metamers(model, "fc", x, ids, fake_relu=True, **kw), M.metamers(model, "fc", x, ids, **kw))


def test_fake_relu_block_computes_the_torchvision_block():
    import torchvision

    torch.manual_seed(0)
    for net in (torchvision.models.resnet18(num_classes=4), torchvision.models.resnet50(num_classes=4)):
        net.eval()
        stage, found = with_fake_relu(torch.nn.Sequential(*list(net.layer1.children())))
        assert found and isinstance(list(stage.children())[-1], FakeReLUBlock)
        x = torch.randn(2, 64, 8, 8)
        with torch.no_grad():
            assert torch.allclose(stage(x), net.layer1(x), atol=1e-6)


def test_synthesis_progress_in_a_log_says_steps_done_of_total_with_an_eta(tiny_images, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("LWISE_PROGRESS_SECONDS", "0")  # a line per step; pytest's stderr is not a terminal
    params = _params(tmp_path, tiny_images["root"])
    with caplog.at_level("INFO", logger="lwise_build"):
        _run(params)
    lines = [r.getMessage() for r in caplog.records if " steps (" in r.getMessage()]
    refs = len(Metamers(params, "toy").p.generators) * 2 * 10  # per_class 2, digits: 10 classes
    total = -(-refs // 64) * 60  # batches of up to 64 references x 60 steps
    assert lines and all(f"/{total} steps (" in line for line in lines), lines[:3]
    assert any("ETA" in line for line in lines) and lines[-1].startswith("metamers ")


def test_every_forward_pass_of_the_stage_runs_at_its_batch_size(tiny_images, tmp_path, monkeypatch):
    """The null, the statistics and the judges run at ``batch_size`` rows, never more (a 224-px
    ResNet-50 padded to 256 rows took gigabytes for four references)."""
    from lwise_build.models.classifier import Classifier

    params = _params(tmp_path, tiny_images["root"], extra="      batch_size: 16\n      null_pairs: 300")
    sizes, normalize = [], Classifier.normalize
    monkeypatch.setattr(Classifier, "normalize", lambda self, x: (sizes.append(len(x)), normalize(self, x))[1])
    _run(params)
    assert sizes and set(sizes) == {16}
