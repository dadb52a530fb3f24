"""Checked GRPO prompts -> verl's RL parquet schema.

One row per prompt::

    data_source   "spatialtree/L1" ... (verl groups its validation metrics by it: per level for free)
    prompt        [{"role": "user", "content": "<image>Which ... <answer> </answer>."}]   (chat list; <image>
                  where the image parts were, in order; verl's RLHFDataset rebuilds the typed parts)
    images        [{"image": "/abs/path.png", "resized_height": h, "resized_width": w}]  (absolute paths: every
                  node of the Ray cluster must see them, e.g. on a shared filesystem). h x w is the size this
                  project's processor gives the image (after data.image_max_pixels), so qwen-vl-utils in verl
                  resizes it to that size and verl's prompt has exactly ``extra_info.prompt_tokens`` tokens, as
                  with TRL. Without them (a processor that does not say), min_pixels/max_pixels as in the recipe:
                  qwen-vl-utils then rounds down within max_pixels, which can give fewer image tokens than
                  the project counted.
    ability       "L1/Geometry"
    reward_model  {"style": "rule", "ground_truth": <the answer as the benchmark stores it (text); an answer
                  that is not text goes as JSON text>}
    extra_info    what rewards/verl_reward.py:compute_score needs to score exactly like the TRL path
                  (metricfunc, level, metric_extra, ...; see :func:`verl_reward_fields`)

Values whose type changes from row to row (answers, metric extras) are JSON text so the parquet
schema stays fixed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from train.grpo.dataset import PromptRow, task_type
from train.grpo.prompts import to_verl_prompt


def verl_reward_fields(row: PromptRow) -> tuple[str, dict[str, Any]]:
    """(ground_truth, extra_info) of one prompt, as the verl reward adapter reads them."""
    s = row.sample
    ground_truth = s.answer if isinstance(s.answer, str) else json.dumps(s.answer, ensure_ascii=False)
    extra_info = {
        "id": s.id,
        "source": s.source,
        "where": s.where,
        "level": s.level,
        "ability": s.ability,
        "leaf": s.leaf,
        "task": task_type(s),
        "metricfunc": s.metricfunc,
        "question_type": s.question_type,
        "metric_extra": json.dumps(s.metric_extra, ensure_ascii=False),
        "prompt_tokens": row.prompt_tokens,
    }
    return ground_truth, extra_info


def verl_row(row: PromptRow, index: int, data_cfg) -> dict[str, Any]:
    """One parquet row in verl's schema."""
    s = row.sample
    images = []
    for k, path in enumerate(s.images):
        entry = {"image": str(Path(path).resolve())}
        if k < len(row.image_sizes):
            entry["resized_height"], entry["resized_width"] = (int(v) for v in row.image_sizes[k])
        else:
            entry.update(min_pixels=int(data_cfg.image_min_pixels), max_pixels=int(data_cfg.image_max_pixels))
        images.append(entry)
    ground_truth, extra_info = verl_reward_fields(row)
    extra_info["index"] = index
    level = s.level or "other"
    return {
        "data_source": f"spatialtree/{level}",
        "prompt": to_verl_prompt(row.prompt),
        "images": images,
        "ability": f"{level}/{s.ability}" if s.ability else level,
        "reward_model": {"style": "rule", "ground_truth": ground_truth},
        "extra_info": extra_info,
    }


def write_parquet(rows: list[PromptRow], path: str | Path, data_cfg) -> Path:
    """Write ``rows`` to ``path`` in verl's schema (atomically); return the path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    records = [verl_row(r, i, data_cfg) for i, r in enumerate(rows)]
    table = pa.Table.from_pylist(records)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)
    return path


def read_parquet(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a parquet written by :func:`write_parquet` (for checks and tests)."""
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()
