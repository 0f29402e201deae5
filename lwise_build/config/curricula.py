"""The published L-WISE conditions as block lists (docs/methods.md, "Curricula").

Every preset has the published session shape: 6 curriculum blocks (training, feedback), 2 natural
set-aside training blocks (7-8, feedback) and 2 natural set-aside test blocks (no feedback).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from ..errors import UserError
from .params import BlockParams, CurriculumParams

#: Easiest rank fraction per curriculum block 1-6 (the published schedule).
LWISE_FRACTIONS = (0.10, 0.25, 0.40, 0.55, 0.70, 0.85)
#: Published budget taper for fine-grained and medical tasks (blocks 1-6).
LWISE_BUDGETS = (8.0, 4.0, 2.0, 1.0, 0.5, 0.25)
#: Natural set-aside training blocks (7-8) and test blocks after the curriculum blocks.
SET_ASIDE_TRAIN_BLOCKS = 2
TEST_BLOCKS = 2
#: preset -> (uses easiest-first selection, uses the budget taper, shuffled)
PRESETS = {
    "lwise": (True, True, False),
    "control": (False, False, False),
    "selection_only": (True, False, False),
    "enhancement_only": (False, True, False),
    "lwise_shuffled": (True, True, True),
    "selection_only_shuffled": (True, False, True),
    "enhancement_only_shuffled": (False, True, True),
}


def expand_blocks(cur: CurriculumParams, where: str = "curriculum") -> list[BlockParams]:
    """The explicit blocks of a curriculum: its own for ``custom``, else the preset's 10 blocks."""
    if cur.preset == "custom":
        if not cur.blocks:
            raise UserError(f"{where}.blocks: a custom curriculum needs at least one block")
        if cur.budgets:
            raise UserError(f"{where}.budgets: a custom curriculum gives each block its own budget")
        return [_with_feedback(b) for b in cur.blocks]
    if cur.blocks:
        raise UserError(f"{where}.blocks: give either a preset or blocks, not both")
    select, enhance, _ = PRESETS[cur.preset]
    return preset_blocks(select, _taper(cur, enhance, where), cur.train_trials_per_class,
                         cur.test_trials_per_class)


def preset_blocks(select: bool, budgets: tuple[float, ...] | None, train: int, test: int) -> list[BlockParams]:
    """The published session: 6 curriculum blocks, 2 natural training blocks, 2 test blocks."""
    blocks = [
        BlockParams(
            phase="train", trials_per_class=train, feedback=True,
            easiest=frac if select else None, budget=float(budgets[i]) if budgets else 0.0,
        )
        for i, frac in enumerate(LWISE_FRACTIONS)
    ]
    blocks += [BlockParams("train", train, None, 0.0, True, set_aside=True)] * SET_ASIDE_TRAIN_BLOCKS
    blocks += [BlockParams("test", test, None, 0.0, False, set_aside=True)] * TEST_BLOCKS
    return blocks


def _taper(cur: CurriculumParams, enhance: bool, where: str) -> tuple[float, ...] | None:
    """The 6 curriculum-block budgets of an enhancing preset (default: the published taper)."""
    if not enhance:
        if cur.budgets:
            raise UserError(f"{where}.budgets: the {cur.preset} preset shows natural images; remove budgets")
        return None
    budgets = tuple(float(b) for b in cur.budgets) or LWISE_BUDGETS
    if len(budgets) != len(LWISE_FRACTIONS):
        raise UserError(f"{where}.budgets: the {cur.preset} preset needs 6 budgets, got {len(budgets)}")
    return budgets


def is_shuffled(cur: CurriculumParams) -> bool:
    """Whether the curriculum blocks' trials are pooled and redistributed."""
    return cur.shuffle or (cur.preset != "custom" and PRESETS[cur.preset][2])


def _with_feedback(block: BlockParams) -> BlockParams:
    if block.feedback is None:
        return replace(block, feedback=block.phase == "train")
    return block


# ---------------------------------------------------------------- participant assignment -------
def condition_slots(curricula: Mapping[str, CurriculumParams]) -> list[str]:
    """The ordered condition slots: each curriculum ``weight`` times, consecutively, in params order.

    The reference deployment (``deploy_experiment.py --alternate_within_blocks``) gives trial set p
    condition ``p % n_conditions`` over a condition list in which a condition may appear more than
    once (moths, HAM10000: 7 conditions, control twice). docs/methods.md, "Curricula".
    """
    return [name for name, cur in curricula.items() for _ in range(cur.weight)]


def participant_condition(curricula: Mapping[str, CurriculumParams], participant: int) -> tuple[str, int]:
    """(curriculum, sequence index) of participant ``participant`` (0-based).

    The participant takes slot ``participant % len(slots)``; its sequence index counts the earlier
    participants that curriculum served, so every participant of a curriculum gets its own sequence.
    """
    if participant < 0:
        raise UserError(f"participant: must be >= 0, got {participant}")
    slots = condition_slots(curricula)
    if not slots:
        raise UserError("curricula: no curricula to assign participants to")
    rounds, k = divmod(participant, len(slots))
    name = slots[k]
    return name, rounds * curricula[name].weight + slots[:k].count(name)
