"""The published L-WISE conditions as block lists (REFERENCE.md section 1, Curriculum)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from .errors import UserError

if TYPE_CHECKING:
    from .params import BlockParams, CurriculumParams

#: Easiest rank fraction per curriculum block 1-6 (the published schedule).
LWISE_FRACTIONS = (0.10, 0.25, 0.40, 0.55, 0.70, 0.85)
#: Published budget taper for fine-grained and medical tasks (blocks 1-6).
LWISE_BUDGETS = (8.0, 4.0, 2.0, 1.0, 0.5, 0.25)
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
    from .params import BlockParams

    if cur.preset == "custom":
        if not cur.blocks:
            raise UserError(f"{where}.blocks: a custom curriculum needs at least one block")
        return [_with_feedback(b) for b in cur.blocks]
    if cur.blocks:
        raise UserError(f"{where}.blocks: give either a preset or blocks, not both")
    select, enhance, _ = PRESETS[cur.preset]
    budgets = cur.budgets or (LWISE_BUDGETS if enhance else ())
    if enhance and len(budgets) != len(LWISE_FRACTIONS):
        raise UserError(f"{where}.budgets: the {cur.preset} preset needs 6 budgets, got {len(budgets)}")
    train = cur.train_trials_per_class
    blocks = [
        BlockParams(
            phase="train", trials_per_class=train, feedback=True,
            easiest=frac if select else None, budget=float(budgets[i]) if enhance else 0.0,
        )
        for i, frac in enumerate(LWISE_FRACTIONS)
    ]
    blocks += [BlockParams("train", train, None, 0.0, True, set_aside=True) for _ in range(2)]
    test = cur.test_trials_per_class
    blocks += [BlockParams("test", test, None, 0.0, False, set_aside=True) for _ in range(2)]
    return blocks


def is_shuffled(cur: CurriculumParams) -> bool:
    """Whether the curriculum blocks' trials are pooled and redistributed."""
    return cur.shuffle or (cur.preset != "custom" and PRESETS[cur.preset][2])


def _with_feedback(block: BlockParams) -> BlockParams:
    if block.feedback is None:
        return replace(block, feedback=block.phase == "train")
    return block
