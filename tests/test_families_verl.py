"""The verl export of the families other than the paper's, read by verl 0.9.1's own RLHFDataset (in .venv-verl,
transformers 5.10): every prompt of the every-metric stand-in (tests/fixtures_verl.py) is kept and counts exactly the
tokens the project counted with transformers 5.23, images at the project's sizes (16 px patches for Qwen3-VL and
Qwen3.5, 14 px for Qwen2-VL; grid = size / patch), the prompts rendered with the family's template arguments
(Qwen3.5: ``enable_thinking=True``: the auto_think template asks for ``<think>``, so the prompts open the native
think block, as TRL and the token counts render them, and the reward adapter is told the open block,
``reward_kwargs.opened``; none for the others). verl 0.9.1
patches these model types (verl/models/transformers/monkey_patch.py: qwen2_vl, qwen3_vl / qwen3_vl_moe,
qwen3_5 / qwen3_5_moe; Qwen3-VL's rope index in verl/models/transformers/qwen3_vl.py). verl training itself (Ray,
vLLM/SGLang rollouts, flash-attention / flash-linear-attention) is GPU-only and not run here."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from fixtures_grpo import grpo_recipe
from fixtures_verl import verl_env, write_metric_source

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow
# tiny model -> (verl's processor class, patch size in pixels, data.apply_chat_template_kwargs in verl's config)
ROWS = {"tiny-qwen3.5": ("Qwen3VLProcessor", 16, {"enable_thinking": True}),
        "tiny-qwen3-vl": ("Qwen3VLProcessor", 16, {}),
        "tiny-qwen2-vl": ("Qwen2VLProcessor", 14, {})}


@pytest.mark.parametrize("model", list(ROWS))
def test_verls_rlhfdataset_reads_the_export_with_the_projects_token_counts(model, tmp_path):
    from train.grpo import verl_backend
    from train.grpo.verl_export import read_parquet

    processor, patch, template_kwargs = ROWS[model]
    src = write_metric_source(tmp_path / "data")
    recipe = grpo_recipe(tmp_path, src, name="auto_think_all_metrics", overrides=[
        f"train.output_dir={tmp_path / 'run'}", "grpo.backend=verl", "mix.groups.rl.sources=[every_metric]",
        f"model.name_or_path={model}", "reward.length_unit=words", "data.image_max_pixels=20000",
        "reward.judge.base_url=http://127.0.0.1:9/v1", "reward.judge.model=stub-judge"])
    assert verl_backend.run(recipe, ["--dry-run"]) == 0
    out = tmp_path / "run" / "verl"
    config = yaml.safe_load((out / "grpo_verl.yaml").read_text())
    assert (config["data"].get("apply_chat_template_kwargs") or {}) == template_kwargs
    assert config["reward"]["custom_reward_function"]["reward_kwargs"].get("opened", "") == (
        "<think>\n" if template_kwargs else "")
    rows = read_parquet(out / "train.parquet")

    proc = subprocess.run([str(verl_env()), str(REPO / "scripts" / "verl" / "check_dataset.py"),
                           str(out / "grpo_verl.yaml"), str(tmp_path / "dataset.json")],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    report = json.loads((tmp_path / "dataset.json").read_text())
    assert report["processor"] == processor and report["transformers"].startswith("5.10.")
    assert report["rows"] == report["dataset_len"] == len(rows)
    by_index = {r["extra_info"]["index"]: r for r in rows}
    for sample in report["samples"]:
        row = by_index[sample["index"]]
        assert sample["prompt_tokens"] == row["extra_info"]["prompt_tokens"], (row["extra_info"]["id"], sample)
        assert sample["image_grid_thw"] == [[1, im["resized_height"] // patch, im["resized_width"] // patch]
                                            for im in row["images"]]
        assert sample["image_tokens"] == sum(h * w // 4 for _, h, w in sample["image_grid_thw"])
    assert len({s["prompt_tokens"] for s in report["samples"]}) >= 8
    assert report["boundary"]["kept"] == report["boundary"]["expected"] == len(rows) - 1
