"""Every curriculum preset against the reference generator's rules, over 50 seeds; condition weights.

The rules (docs/methods.md, "Curricula"): conditions without difficulty selection never show an
image twice to a participant; conditions with selection set blocks 7-8 and the test aside first,
never repeat an image within a block, and may show an easy image again across curriculum blocks;
shuffled conditions redistribute the curriculum blocks' trials (no repeat within a block here).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from support.reference import participants_covered

from lwise_build.config.curricula import (
    LWISE_BUDGETS,
    PRESETS,
    condition_slots,
    expand_blocks,
    is_shuffled,
    participant_condition,
)
from lwise_build.config.load import load_params
from lwise_build.config.params import CurriculumParams
from lwise_build.errors import UserError
from lwise_build.ops.curriculum_draw import ClassPools, build_sequence, rank_pool, selects

SEEDS = range(50)
CLASSES = ("a", "b", "c", "d")
RECIPES = Path(__file__).resolve().parent.parent / "recipes"


def pools(n_train: int, n_test: int, same_split: bool = False) -> ClassPools:
    """Per class ``n_train`` training and ``n_test`` test images with distinct, known difficulties."""
    def pool(split: str, c: int, n: int):
        ids = [f"{split}-{c}-{i:03d}" for i in range(n)]
        return rank_pool(ids, [((i * 37) % n) / n for i in range(n)])
    train = tuple(pool("train", c, n_train) for c in range(len(CLASSES)))
    if same_split:
        return ClassPools(CLASSES, train, train, ("train", "train"))
    return ClassPools(CLASSES, train, tuple(pool("test", c, n_test) for c in range(len(CLASSES))))


SHAPES = {  # name: (pools, train trials, test trials), like the moth task and a one-split task
    "two_splits": (pools(60, 12), 4, 5),
    "one_split": (pools(90, 0, same_split=True), 4, 5),
}


def blocks_of(preset: str, train: int, test: int):
    budgets = list(LWISE_BUDGETS) if PRESETS[preset][1] else []
    cur = CurriculumParams(preset=preset, budgets=budgets, train_trials_per_class=train, test_trials_per_class=test)
    return expand_blocks(cur), is_shuffled(cur)


def check_sequence(preset: str, blocks, pool: ClassPools, trials) -> bool:
    """Assert the rules on one sequence; return whether an image recurred across curriculum blocks."""
    curric = [t for t in trials if t.phase == "train" and not blocks[t.block - 1].set_aside]
    aside = [t for t in trials if t.phase == "test" or blocks[t.block - 1].set_aside]
    for b in range(1, len(blocks) + 1):
        shown = [t for t in trials if t.block == b]
        assert Counter(t.label for t in shown) == {c: blocks[b - 1].trials_per_class for c in range(len(CLASSES))}
        assert len({t.id for t in shown}) == len(shown), (preset, b)  # never twice within a block
    assert all(t.budget == 0 for t in aside)
    assert len({t.id for t in aside}) == len(aside)
    assert not {t.id for t in aside} & {t.id for t in curric}
    if not selects(blocks):
        assert len({t.id for t in trials}) == len(trials), preset  # nothing shown twice
        return False
    for t in curric:  # each image is among the easiest fraction of the pool left after setting aside
        f = float(t.selection.split(":")[1])
        left = [i for i in pool.train[t.label].ids if i not in {a.id for a in aside}]
        assert t.id in left[:round(len(left) * f)], (preset, t)
        if PRESETS[preset][1]:  # the budget travels with the image's selection step
            assert t.budget == LWISE_BUDGETS[[0.10, 0.25, 0.40, 0.55, 0.70, 0.85].index(f)]
    return len({t.id for t in curric}) < len(curric)


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_follows_the_reference_rules_over_50_seeds(preset, shape):
    pool, train, test = SHAPES[shape]
    blocks, shuffled = blocks_of(preset, train, test)
    recurred = 0
    for seed in SEEDS:
        trials = build_sequence(preset, blocks, pool, seed, 0, shuffled)
        recurred += check_sequence(preset, blocks, pool, trials)
    if selects(blocks):  # the reference lets easy images come back across curriculum blocks
        assert recurred > 0, preset


def test_conditions_without_selection_exhaust_the_pool_instead_of_repeating():
    pool = pools(8 + 6 * 4, 10)  # exactly enough: 8 set aside + 6 blocks x 4, nothing to spare
    blocks, _ = blocks_of("control", 4, 5)
    for seed in SEEDS:
        trials = build_sequence("control", blocks, pool, seed, 0)
        assert len({t.id for t in trials if t.phase == "train"}) == 8 * 4 * len(CLASSES)
    with pytest.raises(UserError, match=r"block 6 needs 4 images of class 'a' but the pool has 3 "
                                        r"\(pool of 3 after setting aside and removing earlier blocks\)"):
        build_sequence("control", blocks, pools(8 + 6 * 4 - 1, 10), 0, 0)


def test_moth_and_ham_recipes_assign_two_of_seven_participants_to_control():
    for recipe in ("inat_moths", "ham10000"):
        params = load_params(RECIPES / f"{recipe}.yaml")
        curricula = next(iter(params.corpora.values())).curricula
        assert condition_slots(curricula) == ["control", "control", "selection_only", "selection_only_shuffled",
                                              "enhancement_only", "enhancement_only_shuffled", "lwise"]
        assert participants_covered(curricula) == 280  # the published 280 trial sets
        assigned = [participant_condition(curricula, p) for p in range(280)]
        assert len(set(assigned)) == 280  # every participant has a sequence of their own
        assert all(s < curricula[name].sequences for name, s in assigned)
        counts = Counter(name for name, _ in assigned)
        assert counts["control"] == 80 and all(counts[n] == 40 for n in curricula if n != "control")


def test_mhist_recipe_alternates_two_conditions():
    curricula = next(iter(load_params(RECIPES / "mhist.yaml").corpora.values())).curricula
    assert condition_slots(curricula) == ["control", "lwise"]
    assert [participant_condition(curricula, p) for p in range(4)] == [
        ("control", 0), ("lwise", 0), ("control", 1), ("lwise", 1)]
    assert participants_covered(curricula) == 120


def test_participant_condition_counts_sequences_per_curriculum():
    cur = {"control": CurriculumParams(preset="control", weight=2, sequences=5),
           "lwise": CurriculumParams(preset="lwise", sequences=2)}
    assert condition_slots(cur) == ["control", "control", "lwise"]
    assert [participant_condition(cur, p) for p in range(7)] == [
        ("control", 0), ("control", 1), ("lwise", 0), ("control", 2), ("control", 3), ("lwise", 1), ("control", 4)]
    assert participants_covered(cur) == 7  # participant 7 would need a sixth control sequence
    with pytest.raises(UserError, match="participant: must be >= 0"):
        participant_condition(cur, -1)
