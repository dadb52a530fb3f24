"""The reward section checked against the GRPO prompts at load time, before any model loads: gpteval prompts
without a judge (TRL and the verl export), reward.accuracy=mcq_only, reward.tasks keys; and a counting prompt
filed under L2 Memory that the recipe shapes like L1, through the dataset rows, TRL's reward functions and
verl's compute_score."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures_grpo import bench_row, grpo_recipe


@pytest.fixture(scope="module")
def processor(tiny_model_dir):
    from train.config import ModelConfig
    from train.model_loading import load_processor

    proc = load_processor(ModelConfig(name_or_path=str(tiny_model_dir)))
    proc.tokenizer.padding_side = "left"
    return proc


def write_rows(root: Path, specs: list[dict]) -> Path:
    """``root/mine.jsonl`` from ``specs`` (bench_row keywords plus optional ``task`` / ``leaf``: (ability, leaf)
    tags) with one 56x56 image each, and ``root/registry.yaml`` naming it source ``mine``."""
    import yaml
    from PIL import Image

    (root / "media").mkdir(parents=True, exist_ok=True)
    rows = []
    for i, spec in enumerate(specs):
        spec = dict(spec)
        task, tags = spec.pop("task", None), spec.pop("tags", None)
        Image.new("RGB", (56, 56), (40 * i % 255, 90, 160)).save(root / "media" / f"img{i}.png")
        row = bench_row(i, f"img{i}.png", **spec)
        extra = json.loads(row["extra_info"])
        if tags:
            extra["spatree1"], extra["spatree2"] = tags
        if task:
            extra["task"] = task
        row["extra_info"] = json.dumps(extra)
        rows.append(row)
    path = root / "mine.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "registry.yaml").write_text(yaml.safe_dump({"sources": {"mine": {
        "format": "bench", "files": ["mine.jsonl"], "media_root": "media", "modality": "image"}}}))
    return path


GPTEVAL = dict(level="L3", metric="gpteval", answer="The ball rolls down the ramp.", tags=("Caus.Reas.", "Dynamics"))


def test_gpteval_prompts_without_a_judge_stop_trl_and_the_verl_export_with_one_line(processor, tmp_path, capsys):
    from train.grpo import backends as grpo_trainer
    from train.grpo.dataset import load_prompts

    src = write_rows(tmp_path, [dict(level="L1"), GPTEVAL, dict(level="L3"), GPTEVAL])
    for backend, flags in [("trl", []), ("verl", ["--dry-run"])]:
        out = tmp_path / f"run_{backend}"
        recipe = grpo_recipe(tmp_path, src, [f"grpo.backend={backend}", "train.max_steps=1",
                                             f"train.output_dir={out}"])
        assert grpo_trainer.run(recipe, flags) == 1  # the exit code of every data error
        err = [line for line in capsys.readouterr().err.splitlines() if "gpteval" in line]
        assert len(err) == 1, err
        assert (f"2 GRPO prompts use metricfunc gpteval, which an LLM judge grades, but reward.judge.base_url is not "
                f"set, so their accuracy reward would be a silent 0: {src} rows 2, 4 (leaf Dynamics). Configure "
                "reward.judge") in err[0]
        assert "reward.judge.missing=drop" in err[0]
        assert not (out / "model.safetensors").exists() and not (out / "verl" / "train.parquet").exists()

    dropped = load_prompts(grpo_recipe(tmp_path, src, ["reward.judge.missing=drop"]), processor)
    assert sorted(r.sample.row for r in dropped.rows) == [0, 2] and dropped.no_judge == {"Dynamics": 2}
    assert "2 gpteval prompts left out for want of a judge (reward.judge.missing=drop; Dynamics: 2)" in dropped.summary()
    judged = load_prompts(grpo_recipe(tmp_path, src, ["reward.judge.base_url=http://127.0.0.1:9/v1"]), processor)
    assert len(judged.rows) == 4 and not judged.no_judge  # with a judge they train (nothing is asked at load time)


def test_mcq_only_leaves_out_other_metrics_counted_and_reported(processor, tmp_path):
    from train.grpo.dataset import GRPODataError, load_prompts

    src = write_rows(tmp_path, [dict(level="L1"), dict(level="L1", metric="meanrelativeacc", answer="2.5"),
                                dict(level="L1", question_type="open", answer="1.5"), dict(level="L3"), GPTEVAL])
    loaded = load_prompts(grpo_recipe(tmp_path, src, ["reward.accuracy=mcq_only"]), processor)
    assert sorted(r.sample.row for r in loaded.rows) == [0, 3]  # an "open" MCQ is scored by meanrelativeacc: not MCQ
    assert loaded.not_mcq == {"meanrelativeacc": 2, "gpteval": 1}
    assert ("3 not multiple choice, left out by reward.accuracy=mcq_only (gpteval: 1, meanrelativeacc: 2)"
            in loaded.summary())
    assert len(load_prompts(grpo_recipe(tmp_path, src, ["reward.judge.missing=drop"]), processor).rows) == 4

    only_numbers = write_rows(tmp_path / "n", [dict(level="L1", metric="meanrelativeacc", answer="2.5")])
    with pytest.raises(GRPODataError, match="no usable GRPO prompts: 0 filtered out by level, 1 not multiple choice"):
        load_prompts(grpo_recipe(tmp_path / "n", only_numbers, ["reward.accuracy=mcq_only"]), processor)


def test_a_counting_prompt_under_l2_memory_is_shaped_like_l1_on_both_backends(processor, tmp_path, tiny_model_dir):
    """The recipe says ``reward.tasks.counting.like=L1``: the counting prompt (filed under L2 Memory by the
    benchmark) gets L1's length penalty, the other L2 Memory prompt keeps L2's (none)."""
    from rewards.grpo import make_reward_funcs, reward_weights
    from rewards.verl_reward import compute_score
    from train.grpo.dataset import GRPODataError, load_prompts, to_hf_dataset
    from train.grpo.verl_backend import reward_kwargs
    from train.grpo.verl_export import verl_row

    memory = ("Memory", "MemoryRetrieval")
    src = write_rows(tmp_path, [
        dict(level="L2", metric="meanrelativeacc", answer="3", question="How many chairs?", tags=memory, task="counting"),
        dict(level="L2", answer="B", tags=memory, task="memory"),
    ])
    shaping = ["reward.tasks.counting.like=L1", "reward.levels.L1.length_free_tokens=2",
               "reward.levels.L1.length_cap_tokens=12"]  # L1: free 2 tokens, -0.5 at 12 (length_unit tokens)
    recipe = grpo_recipe(tmp_path, src, shaping)
    loaded = load_prompts(recipe, processor)
    assert [(r.sample.level, r.sample.leaf) for r in loaded.rows] == [("L2", "Memory Retrieval")] * 2
    assert loaded.task_overrides == {"counting": 1} and "shaped by reward.tasks: counting: 1" in loaded.summary()

    ds = to_hf_dataset(loaded, recipe.data)
    order = sorted(range(2), key=lambda i: ds[i]["task"])  # the mix is shuffled: counting first, then memory
    rows = [loaded.rows[i] for i in order]
    columns = {k: [ds[i][k] for i in order] for k in ("metricfunc", "answer", "metric_extra", "level", "leaf", "task")}
    assert columns["task"] == ["counting", "memory"] and columns["metricfunc"] == ["meanrelativeacc", "multichoiceeval"]
    completions = ["<answer>3</answer>", "<answer>B</answer>"]  # 7 tokens each with the embedded tokenizer
    assert [len(processor.tokenizer(c, add_special_tokens=False)["input_ids"]) for c in completions] == [7, 7]
    funcs = make_reward_funcs(recipe.reward, tokenizer=processor.tokenizer)
    trl = {f.__name__: f(prompts=[None] * 2, completions=completions, **columns) for f in funcs}
    assert trl["accuracy"] == [1.0, 1.0] and trl["length"] == [pytest.approx(-0.5 * (7 - 2) / 10), 0.0]
    totals = [sum(w * trl[n][i] for w, n in zip(reward_weights(recipe.reward), trl)) for i in range(2)]
    assert totals == [pytest.approx(0.85), pytest.approx(1.1)]

    kwargs = reward_kwargs(recipe)  # what the verl config hands compute_score: the config and the tokenizer path
    assert kwargs["tokenizer"] == str(Path(tiny_model_dir).resolve())
    for i, row in enumerate(rows):
        parquet_row = verl_row(row, i, recipe.data)
        assert parquet_row["extra_info"]["task"] == columns["task"][i]
        verl = compute_score(parquet_row["data_source"], completions[i], parquet_row["reward_model"]["ground_truth"],
                             parquet_row["extra_info"], **kwargs)
        assert verl["score"] == pytest.approx(totals[i], abs=1e-12) and verl["length"] == trl["length"][i]

    with pytest.raises(GRPODataError, match=r"reward.tasks.countng matches no prompt's task type or leaf; did you "
                                            r"mean 'counting'\? \(task types in the prompts: counting, memory\)"):
        load_prompts(grpo_recipe(tmp_path, src, ["reward.tasks.countng.like=L1"]), processor)
