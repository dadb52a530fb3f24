"""Shared helpers of the GRPO tests: engine stand-ins of the RL sources only, hand-made bench rows."""

from __future__ import annotations

import json
from pathlib import Path

RL_SOURCES = ("rl_l1", "rl_l2", "rl_l3", "rl_l4")


def subset_registry(path: Path, names: tuple[str, ...]) -> Path:
    """The shipped registry restricted to ``names`` (same files, tags and stand-in tasks)."""
    import yaml

    from train.recipe import recipes_dir

    reg = yaml.safe_load((recipes_dir() / "data" / "registry.yaml").read_text())["sources"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"sources": {n: reg[n] for n in names}}, sort_keys=False))
    return path


def shared_rl_standin(tmp_path_factory) -> Path:
    """One stand-in of rl_l1..rl_l4 per test session (every GRPO test module asks for the same directory)."""
    return make_rl_standin(tmp_path_factory.getbasetemp() / "grpo_rl_standin")


def make_rl_standin(root: Path, names: tuple[str, ...] = RL_SOURCES, seed: int = 0) -> Path:
    """Engine stand-ins (small scale) of the RL prompt sources under ``root`` (data.root), once."""
    from data_mix.engine.standin import make_standin

    if (root / "standin_manifest.json").is_file():
        return root
    registry = subset_registry(root.parent / f"{root.name}_registry.yaml", names)
    make_standin(root, scale="small", seed=seed, registry=registry, progress=False, workers=0)
    return root


def shared_think_sft(tmp_path_factory, model: str = "tiny-qwen2.5-vl", steps: int | None = None
                     ) -> tuple[Path, Path, Path]:
    """(stand-in, registry, think-format SFT model) of train/quickstart_rl.py on the shared stand-in, made once
    per test session and ``model`` (``steps``: its SFT_STEPS unless given): the starting point of the GRPO
    learning tests and of the demo's GRPO stage (tiny-qwen2.5-vl), and of tests/test_families_think.py."""
    from train.quickstart_rl import REGISTRY_NAME, prepare, run_think_sft

    standin = shared_rl_standin(tmp_path_factory)
    work = tmp_path_factory.getbasetemp() / "grpo_think_sft"
    sft_dir = work / ("sft" if model == "tiny-qwen2.5-vl" and steps is None else f"sft-{model}-{steps}")
    if not (sft_dir / "model.safetensors").is_file():
        prepare(standin, subset_registry(work / "registry.yaml", RL_SOURCES))
        overrides = [] if steps is None else [f"train.max_steps={steps}"]
        assert run_think_sft(standin, standin / REGISTRY_NAME, sft_dir, model, overrides) == 0
    return standin, standin / REGISTRY_NAME, sft_dir


def bench_row(i: int, image: str | list[str], question: str = "Which object is closer?", answer: str = "A",
              level: str = "L1", metric: str = "multichoiceeval", **extra) -> dict:
    """One SpatialTree-Bench-format record (as the bench reader reads it)."""
    tags = {"L1": ("Geometry", "Distance"), "L2": ("Memory", "MemoryRetrieval"), "L3": ("Seq.Plan.", "Route"),
            "L4": ("Goal-DrivenExecution", "AgenticNavigation")}[level]
    row = {"question": question, "option": ["A. the red box", "B. the blue box"], "answer": answer,
           "question_type": "mcq", "hint": "{}",
           "extra_info": json.dumps({"metricfunc": metric, "spatree0": level, "spatree1": tags[0], "spatree2": tags[1]}),
           "image": image if isinstance(image, list) else [image], "video": [], "video_info": [],
           "session_id": f"row-{i}"}
    row.update(extra)
    return row


def write_bench_source(root: Path, n: int = 3, sizes: list[tuple[int, int]] | None = None,
                       levels: list[str] | None = None, images_per_row: list[int] | None = None) -> Path:
    """``root/mine.jsonl``: ``n`` bench rows (row i: ``images_per_row[i]`` images of ``sizes[i]`` (w, h), level
    ``levels[i]``, answer A/B alternating) plus ``root/registry.yaml`` naming it source ``mine``.
    Defaults: 1, 2, 3, 1, ... images of 56x56, level L1. Returns the JSONL path."""
    import yaml
    from PIL import Image

    colors = [(220, 40, 40), (40, 160, 60), (40, 80, 220), (230, 200, 40)]
    rows = []
    for i in range(n):
        w, h = (sizes[i] if sizes else (56, 56))
        k = images_per_row[i] if images_per_row else (i % 3) + 1
        names = []
        for j in range(k):
            name = f"img{i}_{j}.png"
            (root / "media").mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (w, h), colors[(i + j) % 4]).save(root / "media" / name)
            names.append(name)
        rows.append(bench_row(i, names, answer="AB"[i % 2], level=levels[i] if levels else "L1"))
    path = root / "mine.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "registry.yaml").write_text(yaml.safe_dump({"sources": {"mine": {
        "format": "bench", "files": ["mine.jsonl"], "media_root": "media", "modality": "multi_image"}}}))
    return path


def grpo_recipe(root: Path, source_file: Path, overrides: list[str] | tuple[str, ...] = (), name: str | None = None):
    """A GRPO recipe over the ``mine`` source written by :func:`write_bench_source` (tiny model, no bench eval)."""
    from train.recipe import load_recipe

    base = [f"data.root={source_file.parent}", f"data.registry={source_file.parent / 'registry.yaml'}",
            "mix.groups.rl.sources=[mine]", "model.name_or_path=tiny-qwen2.5-vl", "eval.bench=null", "data.decontaminate=off",
            "grpo.max_prompt_length=4096", "train.report_to=[jsonl]"]
    return load_recipe(name, [*base, *overrides])
