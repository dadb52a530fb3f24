"""The GRPO backend dispatch behind ``launch/grpo.py``: the checks both backends share, then TRL or verl.

Before anything heavy: a prompt that is an evaluation record stops the run (both backends), and every recipe
key the chosen backend cannot carry is logged as a warning (read from the key table, train/keys.py).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from train.config import Recipe

log = logging.getLogger("train.grpo")


def warn_uncarried(recipe: Recipe, backend: str) -> list[str]:
    """Log each key ``backend`` cannot carry (once, at start); return the lines."""
    from train.key_backends import uncarried

    lines = uncarried(recipe, backend)
    for line in lines:
        log.warning("grpo.backend=%s cannot carry %s", backend, line)
    return lines


def run(recipe: Recipe, flags: list[str]) -> int:
    """Train with the recipe's GRPO backend. A user error (train.run.user_errors: a sample named by file and row,
    a full disk, verl under several processes ...) exits 1 with one clear line."""
    from data_mix.decontam import check as decontamination_check
    from data_mix.decontam import run_record
    from train.run import dist_env, report_user_errors

    def by_backend(recipe: Recipe, flags: list[str]) -> int:
        if recipe.grpo.backend == "verl":
            from train.grpo import verl_backend

            verl_backend.refuse_several_processes()
            checked = run_record(recipe.data, decontamination_check(recipe.data, recipe.mix, progress=True))
            return verl_backend.run(recipe, flags, decontamination=checked)
        from train.grpo.trl_backend import run_trl

        checked = run_record(recipe.data, decontamination_check(recipe.data, recipe.mix,
                                                                 progress=dist_env()[0] == 0))
        if dist_env()[0] == 0:
            warn_uncarried(recipe, "trl")
        return run_trl(recipe, flags, decontamination=checked)

    return report_user_errors("launch/grpo.py", by_backend, recipe, flags)
