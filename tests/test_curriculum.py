"""Curricula: selection semantics on a tiny scored corpus with known difficulties, and the stage."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from datasets import ClassLabel, Features, Image, Value
from support.params import toy_params
from support.tables import write_images_table

from lwise_build.config.curricula import (
    LWISE_BUDGETS,
    LWISE_FRACTIONS,
    expand_blocks,
    is_shuffled,
)
from lwise_build.config.params import BlockParams, CurriculumParams, Params
from lwise_build.config.schema import build
from lwise_build.errors import UserError
from lwise_build.io.digests import file_digest
from lwise_build.io.images import encode_png
from lwise_build.io.tables import read_features, read_table, write_table
from lwise_build.ops.curriculum_draw import build_sequence
from lwise_build.stages.curriculum.stage import Curriculum, load_pools

CLASSES = ["a", "b", "c"]
N_TRAIN, N_TEST, N_VAL = 30, 8, 2
BUDGETS = [0.5, 1.0, 2.0]


@pytest.fixture
def corpus(data_root: Path) -> dict:
    """data/toy: images, scores (known difficulties, with ties) and enhanced tables for BUDGETS."""
    rng = np.random.default_rng(1)
    n_per = N_TRAIN + N_TEST + N_VAL
    arrays = rng.integers(0, 256, (len(CLASSES) * n_per, 8, 8), dtype=np.uint8)
    labels = [c for c in range(len(CLASSES)) for _ in range(n_per)]
    splits = (["train"] * N_TRAIN + ["test"] * N_TEST + ["validation"] * N_VAL) * len(CLASSES)
    ids = write_images_table(data_root / "toy" / "images", arrays, labels, splits, CLASSES)
    # difficulty in tenths: several images share a value, so the id tie-break matters
    difficulty = [float(rng.integers(0, 11)) / 10 for _ in ids]
    feats = Features({"id": Value("string"), "label": ClassLabel(names=CLASSES), "split": Value("string"),
                      "robust_difficulty": Value("float64")})
    write_table([{"id": ids, "label": labels, "split": splits, "robust_difficulty": difficulty}], feats,
                data_root / "toy" / "scores")
    for b in BUDGETS:
        write_enhanced(data_root, b, ids, labels, splits, 255 - arrays)
    return {"ids": ids, "labels": labels, "splits": splits, "difficulty": dict(zip(ids, difficulty, strict=True))}


def write_enhanced(root: Path, budget: float, ids, labels, splits, arrays) -> None:
    feats = Features({"id": Value("string"), "label": ClassLabel(names=CLASSES), "split": Value("string"),
                      "budget": Value("float64"), "image": Image()})
    rows = {"id": list(ids), "label": list(labels), "split": list(splits), "budget": [budget] * len(ids),
            "image": [{"bytes": encode_png(a), "path": None} for a in arrays]}
    write_table([rows], feats, root / "toy" / "enhanced" / f"eps={budget:g}")


def make_params(curricula: dict, budgets: list[float] = BUDGETS) -> Params:
    return toy_params({"score": {"models": {"robust": "guide"}}, "enhance": {"model": "guide", "budgets": budgets},
                       "curricula": curricula},
                      models={"guide": {"arch": "smallcnn", "corpus": "toy", "checkpoint": "guide.safetensors"}})


LWISE = {"preset": "lwise", "budgets": [2, 2, 1, 1, 0.5, 0.5], "train_trials_per_class": 2,
         "test_trials_per_class": 3, "sequences": 3}


def pools_of(root: Path, train: str = "train", test: str = "test"):
    return load_pools(root / "toy" / "scores", CLASSES, "robust", train, test)[0]


def lwise_blocks(**kw) -> list[BlockParams]:
    return expand_blocks(build(CurriculumParams, {**LWISE, **kw}, "cur"))


def by_block(trials) -> dict[int, list]:
    out: dict[int, list] = {}
    for t in trials:
        out.setdefault(t.block, []).append(t)
    return out


def test_preset_blocks_match_published_table():
    expect = {  # preset: (easiest fractions?, budget taper?)
        "lwise": (True, True), "control": (False, False), "selection_only": (True, False),
        "enhancement_only": (False, True), "lwise_shuffled": (True, True),
        "selection_only_shuffled": (True, False), "enhancement_only_shuffled": (False, True),
    }
    assert LWISE_FRACTIONS == (0.10, 0.25, 0.40, 0.55, 0.70, 0.85)
    assert LWISE_BUDGETS == (8, 4, 2, 1, 0.5, 0.25)
    for preset, (select, enhance) in expect.items():
        cur = CurriculumParams(preset=preset, train_trials_per_class=4, test_trials_per_class=5)
        blocks = expand_blocks(cur)
        assert [b.phase for b in blocks] == ["train"] * 8 + ["test"] * 2
        assert [b.trials_per_class for b in blocks] == [4] * 8 + [5] * 2
        assert [b.feedback for b in blocks] == [True] * 8 + [False] * 2
        assert [b.set_aside for b in blocks] == [False] * 6 + [True] * 4
        assert [b.easiest for b in blocks] == (list(LWISE_FRACTIONS) if select else [None] * 6) + [None] * 4
        assert [b.budget for b in blocks] == (list(LWISE_BUDGETS) if enhance else [0] * 6) + [0] * 4
        assert is_shuffled(cur) == preset.endswith("_shuffled")
    custom = CurriculumParams(blocks=(BlockParams(), BlockParams(phase="test")), shuffle=True)
    assert [b.feedback for b in expand_blocks(custom)] == [True, False] and is_shuffled(custom)


def test_easiest_fraction_takes_only_the_easiest_of_the_remaining_pool(corpus, data_root):
    blocks = lwise_blocks()
    pools = pools_of(data_root)
    seen: dict[int, set] = {}
    for seq in range(12):
        trials = build_sequence("lwise", blocks, pools, 0, seq)
        aside = {t.id for t in trials if t.selection == "set_aside"}
        for t in trials:
            if t.phase != "train" or t.selection == "set_aside":
                continue
            f = blocks[t.block - 1].easiest
            assert t.selection == f"easiest:{f:.2f}" and t.budget == blocks[t.block - 1].budget
            pool = sorted((corpus["difficulty"][i], i) for i, lab, s in
                          zip(corpus["ids"], corpus["labels"], corpus["splits"], strict=True)
                          if lab == t.label and s == "train" and i not in aside)
            assert len(pool) == N_TRAIN - 4
            easiest = {i for _, i in pool[:round(len(pool) * f)]}
            assert t.id in easiest, (t.block, f)
            assert t.difficulty == corpus["difficulty"][t.id]
            seen.setdefault(t.block, set()).add(t.id)
    assert len(seen[1]) > 2 * len(CLASSES)  # sampled, not always the same easiest images


def test_random_blocks_draw_from_the_whole_pool(corpus, data_root):
    blocks = expand_blocks(build(CurriculumParams, {**LWISE, "preset": "control", "budgets": []}, "c"))
    drawn = set()
    for seq in range(20):
        for t in build_sequence("control", blocks, pools_of(data_root), 0, seq):
            if t.phase == "train" and not blocks[t.block - 1].set_aside:
                assert t.selection == "random" and t.budget == 0
                drawn.add(corpus["difficulty"][t.id])
    assert max(drawn) >= 0.9  # hard images are reachable, unlike easiest:0.10


def test_set_aside_and_test_images_are_natural_and_disjoint(corpus, data_root):
    blocks = lwise_blocks()
    split_of = dict(zip(corpus["ids"], corpus["splits"], strict=True))
    for seq in range(5):
        trials = build_sequence("lwise", blocks, pools_of(data_root), 7, seq)
        aside = [t for t in trials if t.selection == "set_aside"]
        test = [t for t in trials if t.phase == "test"]
        curric = [t for t in trials if t.phase == "train" and t.selection != "set_aside"]
        assert {t.block for t in aside} == {7, 8} and {t.block for t in test} == {9, 10}
        assert all(t.budget == 0 and split_of[t.id] == "train" for t in aside)
        assert all(t.budget == 0 and split_of[t.id] == "test" and not t.feedback for t in test)
        assert len({t.id for t in aside}) == len(aside)  # distinct across blocks 7-8
        assert len({t.id for t in test}) == len(test)
        assert not {t.id for t in aside} & {t.id for t in curric}
        assert not {t.id for t in test} & {t.id for t in aside + curric}


def test_test_images_leave_the_pool_when_splits_coincide(corpus, data_root):
    blocks = lwise_blocks(test_split="train")
    pools = pools_of(data_root, "train", "train")
    for seq in range(5):
        trials = build_sequence("lwise", blocks, pools, 0, seq)
        test = {t.id for t in trials if t.phase == "test"}
        assert len(test) == 2 * 3 * len(CLASSES)
        assert not test & {t.id for t in trials if t.phase == "train"}


def test_blocks_are_class_balanced_without_repeats(corpus, data_root):
    blocks = lwise_blocks()
    for shuffle in (False, True):
        for seq in range(5):
            trials = build_sequence("x", blocks, pools_of(data_root), 0, seq, shuffle)
            assert [t.block for t in trials] == sorted(t.block for t in trials)
            for b, shown in by_block(trials).items():
                per = blocks[b - 1].trials_per_class
                assert Counter(t.label for t in shown) == {c: per for c in range(len(CLASSES))}
                assert len({t.id for t in shown}) == len(shown), (shuffle, seq, b)


def test_sequences_are_deterministic_and_independent(corpus, data_root):
    blocks, pools = lwise_blocks(), pools_of(data_root)
    first = build_sequence("lwise", blocks, pools, 0, 1)
    assert build_sequence("lwise", blocks, pools, 0, 1) == first
    assert build_sequence("lwise", blocks, pools, 0, 2) != first
    assert build_sequence("other", blocks, pools, 0, 1) != first
    assert build_sequence("lwise", blocks, pools, 1, 1) != first


def test_shuffled_keeps_the_trials_in_a_different_order(corpus, data_root):
    blocks, pools = lwise_blocks(), pools_of(data_root)
    for seq in range(4):
        plain = build_sequence("lwise_shuffled", blocks, pools, 0, seq)
        mixed = build_sequence("lwise_shuffled", blocks, pools, 0, seq, shuffle=True)
        cur = [i + 1 for i, b in enumerate(blocks) if not b.set_aside]
        keys = [sorted(t.key() for t in trials if t.block in cur) for trials in (plain, mixed)]
        assert keys[0] == keys[1]  # the same multiset of curriculum trials
        assignment = [[(t.block, t.key()) for t in trials if t.block in cur] for trials in (plain, mixed)]
        assert sorted(assignment[0]) != sorted(assignment[1])  # redistributed over the blocks
        assert any(len({t.budget for t in by_block(mixed)[b]}) > 1 for b in cur)  # taper destroyed
        for b in range(7, 11):  # set-aside and test blocks untouched
            assert sorted(t.key() for t in by_block(plain)[b]) == sorted(t.key() for t in by_block(mixed)[b])


def test_too_small_pool_is_a_one_line_error(corpus, data_root):
    blocks = [BlockParams("train", 3, 0.05, 1.0, True)]  # easiest round(30 * 0.05) = 2 images < 3
    with pytest.raises(UserError, match=r"curriculum 'tiny': block 1 needs 3 images of class 'a'") as exc:
        build_sequence("tiny", blocks, pools_of(data_root), 0, 0)
    assert "\n" not in str(exc.value)
    test_blocks = lwise_blocks(test_trials_per_class=5)  # 2 x 5 > 8 test images
    with pytest.raises(UserError, match=r"curriculum 'big': block 10 needs 5 images of class 'a'"):
        build_sequence("big", test_blocks, pools_of(data_root), 0, 0)


def test_missing_budget_fails_before_any_work(corpus, data_root):
    params = make_params({"lwise": {**LWISE, "budgets": [4, 2, 1, 1, 0.5, 0.5]}}, budgets=[*BUDGETS, 4.0])
    for table in ("scores", "images"):  # no input is read before the budget check
        for p in (data_root / "toy" / table).glob("*"):
            p.unlink()
    with pytest.raises(UserError, match=r"curricula\.lwise: budget 4 has no enhanced table"):
        Curriculum(params, "toy").run()
    assert not (data_root / "toy" / "curricula").exists()
    with pytest.raises(UserError, match=r"curricula\.lwise: block 1 uses budget 3"):
        make_params({"lwise": {**LWISE, "budgets": [3, 2, 1, 1, 0.5, 0.5]}})


def test_enhanced_images_must_exist_for_every_enhanced_trial(corpus, data_root):
    test_only = [i for i, s in enumerate(corpus["splits"]) if s == "test"]  # enhance.splits: [test]
    pick = lambda xs: [xs[i] for i in test_only]  # noqa: E731
    write_enhanced(data_root, 2.0, pick(corpus["ids"]), pick(corpus["labels"]), pick(corpus["splits"]),
                   np.zeros((len(test_only), 8, 8), np.uint8))
    with pytest.raises(UserError, match=r"curriculum 'lwise': image \w+ is not in .*eps=2 \(\d+ missing\)"):
        Curriculum(make_params({"lwise": LWISE}), "toy").run()


def test_bad_blocks_are_rejected_by_params():
    with pytest.raises(UserError, match=r"blocks\[0\]\.budget: set-aside blocks show natural images"):
        make_params({"x": {"blocks": [{"set_aside": True, "budget": 1}]}})
    with pytest.raises(UserError, match=r"blocks\[0\]\.easiest: test blocks are drawn uniformly"):
        make_params({"x": {"blocks": [{"phase": "test", "easiest": 0.5}]}})
    with pytest.raises(UserError, match=r"curricula\.c\.budgets: the control preset shows natural"):
        make_params({"c": {"preset": "control", "budgets": [1, 1, 1, 1, 1, 1]}})


def test_stage_writes_a_deterministic_table_and_plots(corpus, data_root):
    curricula = {"lwise": LWISE, "control": {**LWISE, "preset": "control", "budgets": [], "sequences": 2},
                 "lwise_shuffled": {**LWISE, "preset": "lwise_shuffled"}}
    Curriculum(make_params(curricula), "toy").run()
    out = data_root / "toy" / "curricula"
    tab = read_table(out).to_pandas()
    assert read_features(out)["label"].names == CLASSES
    assert list(tab.columns) == ["curriculum", "sequence", "trial", "block", "phase", "feedback", "id",
                                 "label", "budget", "difficulty", "selection"]
    per_seq = (8 * 2 + 2 * 3) * len(CLASSES)
    assert tab.groupby("curriculum").size().to_dict() == {"lwise": 3 * per_seq, "control": 2 * per_seq,
                                                         "lwise_shuffled": 3 * per_seq}
    one = tab[(tab.curriculum == "lwise") & (tab.sequence == 0)]
    assert one.trial.tolist() == list(range(per_seq)) and one.block.tolist() == sorted(one.block)
    assert sorted(set(one.budget)) == [0, 0.5, 1, 2] and set(one.phase) == {"train", "test"}
    assert set(tab[tab.curriculum == "control"].budget) == {0}
    plots = data_root / "toy" / "plots" / "curriculum"
    digests = {p.name: file_digest(p) for p in [*out.glob("*.parquet"), *plots.glob("*")]}
    assert {"schedule.png", "strip.png", "schedule-lwise.csv", "schedule-control.csv"} <= set(digests)
    csv = (plots / "schedule-lwise.csv").read_text().splitlines()
    assert csv[0] == "curriculum,block,phase,trials,budget,difficulty_quantile" and len(csv) == 1 + 10
    assert {line.split(",")[0] for line in csv[1:]} == {"lwise"}  # one series per curriculum
    Curriculum(make_params(curricula), "toy").run()
    assert {p.name: file_digest(p) for p in [*out.glob("*.parquet"), *plots.glob("*")]} == digests
    more = {**curricula, "control": {**curricula["control"], "sequences": 3}}  # independent of the rest
    Curriculum(make_params(more), "toy").run()
    again = read_table(out).to_pandas()
    assert again[again.curriculum != "control"].reset_index(drop=True).equals(
        tab[tab.curriculum != "control"].reset_index(drop=True))
    old = tab[tab.curriculum == "control"].reset_index(drop=True)
    assert again[again.curriculum == "control"].head(len(old)).reset_index(drop=True).equals(old)
