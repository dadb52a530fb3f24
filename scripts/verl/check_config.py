#!/usr/bin/env python
"""Load a config written by `launch/grpo.py ... grpo.backend=verl --dry-run` with verl's own config code.

Run it with verl's environment (it imports verl, not this project):

    .venv-verl/bin/python scripts/verl/check_config.py runs/NAME/verl/grpo_verl.yaml

What it does: Hydra composition exactly as `python -m verl.trainer.main_ppo --config-path ... --config-name ...`
does it, verl's `validate_config`, the dataclass configs verl builds from the algorithm / actor / rollout /
model sections, the reward-manager class and the custom reward function (loaded from its file). Prints a
JSON summary; exit code 0 when everything loaded.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    path = Path(argv[0]).resolve()
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(path.parent), version_base=None):
        cfg = compose(config_name=path.stem)

    from verl.trainer.ppo.reward import get_custom_reward_fn, resolve_reward_manager_cls
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import omega_conf_to_dataclass, validate_config

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        validate_config(cfg, use_reference_policy=need_reference_policy(cfg), use_critic=need_critic(cfg))
        built = {}
        for key in ("algorithm", "actor_rollout_ref.actor", "actor_rollout_ref.rollout", "actor_rollout_ref.model"):
            built[key] = type(omega_conf_to_dataclass(OmegaConf.select(cfg, key))).__name__
    manager = resolve_reward_manager_cls(cfg)
    reward_fn = get_custom_reward_fn(cfg)
    summary = {
        "config": str(path),
        "dataclasses": built,
        "reward_manager": f"{manager.__module__}.{manager.__name__}",
        "custom_reward_function": cfg.reward.custom_reward_function.path if reward_fn is not None else None,
        "adv_estimator": cfg.algorithm.adv_estimator,
        "freeze_vision_tower": cfg.actor_rollout_ref.actor.freeze_vision_tower,
        "rollout_n": cfg.actor_rollout_ref.rollout.n,
        "use_kl_loss": cfg.actor_rollout_ref.actor.use_kl_loss,
        "loss_agg_mode": cfg.actor_rollout_ref.actor.loss_agg_mode,
        "train_files": list(cfg.data.train_files),
        "train_batch_size": cfg.data.train_batch_size,
        "use_reference_policy": need_reference_policy(cfg),
    }
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
