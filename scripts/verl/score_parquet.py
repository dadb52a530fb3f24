#!/usr/bin/env python
"""Score completions of a verl parquet with verl's own reward manager and the configured reward function.

Run it with verl's environment:

    .venv-verl/bin/python scripts/verl/score_parquet.py CONFIG.yaml TRAIN.parquet COMPLETIONS.json OUT.json

COMPLETIONS.json: a list of {"index": row index in the parquet, "completion": text}. For each, the script
tokenizes the completion with the model's tokenizer (as verl's rollout would produce it), builds the
DataProto verl's reward loop receives, and runs the reward manager that the config names (``naive``),
which calls ``reward.custom_reward_function`` (rewards/verl_reward.py:compute_score) with the config's
``reward_kwargs``. OUT.json: one {"index", "score", ...reward_extra_info} per completion.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    config_path, parquet_path, completions_path, out_path = (Path(a).resolve() for a in argv)
    import numpy as np
    import pyarrow.parquet as pq
    import torch
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(config_path.parent), version_base=None):
        cfg = compose(config_name=config_path.stem)

    from verl import DataProto
    from verl.trainer.ppo.reward import load_reward_manager
    from verl.utils import hf_tokenizer

    tokenizer = hf_tokenizer(cfg.actor_rollout_ref.model.path, trust_remote_code=cfg.data.trust_remote_code)
    manager = load_reward_manager(cfg, tokenizer)
    rows = pq.read_table(parquet_path).to_pylist()
    items = json.loads(completions_path.read_text())

    async def score_all():
        results = []
        for item in items:
            row = rows[int(item["index"])]
            response = tokenizer(item["completion"], add_special_tokens=False)["input_ids"]
            response = response + [tokenizer.eos_token_id]  # a rollout that stopped: EOS ends the response
            prompt = [tokenizer.pad_token_id or 0] * 4
            attention = [1] * (len(prompt) + len(response))
            data = DataProto.from_dict(
                tensors={"prompts": torch.tensor([prompt]), "responses": torch.tensor([response]),
                         "attention_mask": torch.tensor([attention])},
                non_tensors={key: np.array([row[key]], dtype=object)
                             for key in ("data_source", "reward_model", "extra_info")},
            )
            out = await manager.run_single(data)
            record = {"index": item["index"], "score": float(out["reward_score"])}
            for key, value in out["reward_extra_info"].items():
                if isinstance(value, (int, float, str, bool)) or value is None:
                    record[key] = value
            results.append(record)
        return results

    results = manager.loop.run_until_complete(score_all())  # the loop the manager runs its executor calls on
    Path(out_path).write_text(json.dumps(results, indent=2))
    print(f"scored {len(results)} completions with {type(manager).__name__} -> {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
