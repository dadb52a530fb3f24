"""The quickstart's RL stage: its prompt sources and the short think-format SFT GRPO starts from.

    python launch/quickstart_rl.py STANDIN OUT [--model tiny-qwen2.5-vl]
    python launch/grpo.py recipe=quickstart_rl data.root=STANDIN model.name_or_path=OUT

Why a second SFT: the quickstart SFT (recipe quickstart_sft) answers one L1 question with a bare letter, so
GRPO from it has nothing to shape (2-token completions, no <think> block) and no room on its own task
(README, "What the GRPO stage shows"). This SFT teaches the *format* instead, on think-format targets for
engine RL prompts of L1 and L3 (L3 always reasons inside <think>, L1 half the time), asked with the GRPO
auto_think template so SFT and GRPO prompts are the same text. GRPO then trains on other rows of the same
sources, whose answers the SFT never saw.

From the multiple-choice rows of the stand-in's rl_l1 and rl_l3 (file order), per level:
    rows [0, N_GRPO)                 -> source learn_l1 / learn_l3 (the GRPO prompts)
    rows [N_GRPO, N_GRPO + N_SFT)    -> the think-format SFT samples
    the rest                         -> source learn_heldout (never trained on: the held-out check)
The sources are written beside the stand-in's own (STANDIN/rl/) with a registry STANDIN/quickstart_rl.yaml
(the given registry plus these three), which recipe quickstart_rl reads. tests/test_grpo_train.py and tests/test_demo_grpo.py use the same code.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import random
import sys
from pathlib import Path

LEVELS = {"L1": "rl_l1", "L3": "rl_l3"}
N_GRPO = 8          # project choice: GRPO prompts per level; every step of quickstart_grpo sees all 16
N_SFT = 32          # project choice: SFT prompts per level (other rows than the GRPO ones)
SFT_STEPS = 100     # project choice: 100 steps of 16 (25 epochs of the 64 samples); ~1 min on 2 cores
SFT_BATCH = 16
REGISTRY_NAME = "quickstart_rl.yaml"


def mcq_rows(standin: Path, source: str, registry: Path):
    """The multiple-choice samples of ``source`` in file order."""
    from data_mix.readers import read_source
    from train.recipe import load_recipe

    data = load_recipe(None, [f"data.root={standin}", f"data.registry={registry}"]).data
    from rewards.metrics import REGISTRY

    return [s for s in read_source(source, data) if s.metricfunc in REGISTRY and REGISTRY[s.metricfunc].is_mcq]


def split_rows(standin: Path, registry: Path) -> dict[str, dict[str, list]]:
    """{level: {"grpo": [...], "sft": [...], "heldout": [...]}} (module docstring)."""
    out = {}
    for level, source in LEVELS.items():
        rows = mcq_rows(standin, source, registry)
        if len(rows) < N_GRPO + N_SFT + 1:
            raise ValueError(f"{source} under {standin} has {len(rows)} multiple-choice rows; the quickstart RL "
                             f"stage needs at least {N_GRPO + N_SFT + 1}")
        out[level] = {"grpo": rows[:N_GRPO], "sft": rows[N_GRPO:N_GRPO + N_SFT], "heldout": rows[N_GRPO + N_SFT:]}
    return out


def _write_rows(samples, path: Path) -> None:
    """The chosen rows exactly as they are in the stand-in's files."""
    wanted: dict[str, set[int]] = {}
    for s in samples:
        wanted.setdefault(s.file, set()).add(s.row)
    lines = []
    for file, rows in wanted.items():
        lines += [line for i, line in enumerate(Path(file).read_text().splitlines()) if i in rows]
    path.write_text("\n".join(lines) + "\n")


def prepare(standin: Path, registry: Path | None = None) -> Path:
    """Write the learn_l1 / learn_l3 / learn_heldout sources and their registry; return the registry path."""
    import yaml

    from train.recipe import recipes_dir

    standin = Path(standin)
    registry = Path(registry) if registry else recipes_dir() / "data" / "registry.yaml"
    split = split_rows(standin, registry)
    reg = yaml.safe_load(registry.read_text())
    for level, parts in split.items():
        _write_rows(parts["grpo"], standin / "rl" / f"learn_{level.lower()}.jsonl")
    _write_rows([s for parts in split.values() for s in parts["heldout"]], standin / "rl" / "learn_heldout.jsonl")
    for name in ("learn_l1", "learn_l3", "learn_heldout"):
        reg["sources"][name] = {"format": "bench", "files": [f"rl/{name}.jsonl"], "media_root": "rl",
                                "modality": "image"}
    out = standin / REGISTRY_NAME
    out.write_text(yaml.safe_dump(reg, sort_keys=False))
    return out


def think_sft_samples(standin: Path, registry: Path) -> list:
    """The SFT samples: the GRPO auto_think prompt of each row and a think-format target."""
    from train.grpo.prompts import build_prompt, template_for
    from train.recipe import load_recipe

    split = split_rows(standin, registry)
    base = load_recipe("quickstart_grpo")
    template = template_for(base.grpo.templates, base.grpo.prompt_mode)
    samples = []
    for i, s in enumerate(split["L1"]["sft"] + split["L3"]["sft"]):
        think = s.level == "L3" or i % 2 == 0   # project choice: L3 always reasons; L1 half the time
        target = (f"<think>I compare the objects in the image, so the answer is {s.answer}.</think>" if think
                  else "") + f"<answer>{s.answer}</answer>"
        sample = copy.deepcopy(s)
        sample.messages = build_prompt(s, template) + [{"role": "assistant",
                                                        "content": [{"type": "text", "text": target}]}]
        samples.append(sample)
    return samples


def run_think_sft(standin: Path, registry: Path, out: Path, model: str = "tiny-qwen2.5-vl",
                  overrides: list[str] | tuple[str, ...] = ()) -> int:
    """recipe quickstart_sft on the think-format samples, SFT_STEPS steps of SFT_BATCH (reshuffled each epoch,
    seed 0); the run directory is ``out``."""
    from train.recipe import load_recipe
    from train.sft import run as sft_run

    samples = think_sft_samples(standin, registry)
    rng = random.Random(0)

    def epochs():
        while True:
            order = samples[:]
            rng.shuffle(order)
            yield from order

    recipe = load_recipe("quickstart_sft", [
        f"model.name_or_path={model}", f"data.root={standin}", f"data.registry={registry}",
        f"train.output_dir={out}", f"train.max_steps={SFT_STEPS}", f"train.per_device_batch_size={SFT_BATCH}",
        "data.max_length=1024", "eval.bench=null", "data.decontaminate=off", "train.report_to=[jsonl]",
        "optim.warmup_ratio=0.05", *overrides])
    return sft_run(recipe, [], source=itertools.islice(epochs(), SFT_STEPS * SFT_BATCH))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="launch/quickstart_rl.py", description=__doc__.splitlines()[0])
    p.add_argument("standin", type=Path, help="the stand-in data root (launch/engine.py --standin DIR)")
    p.add_argument("out", type=Path, help="run directory of the think-format SFT")
    p.add_argument("--model", default="tiny-qwen2.5-vl")
    args = p.parse_args(argv)
    try:
        registry = prepare(args.standin)
    except (OSError, ValueError) as exc:
        print(f"launch/quickstart_rl.py: error: {exc}", file=sys.stderr)
        return 2
    print(f"quickstart RL sources: {registry} (learn_l1, learn_l3, learn_heldout)")
    return run_think_sft(args.standin, registry, args.out, args.model)


if __name__ == "__main__":
    raise SystemExit(main())
