"""The README.md model card of a finished run: which model it started from and which recipe trained it.

TRL writes a generic card (its ``create_model_card``) that says "a fine-tuned version of [None]" when the base
model is a local directory (an SFT output, the tiny model), and transformers' Trainer writes none. This card is
written after the final save, over TRL's, from the recipe itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from train.config import Recipe


def model_card(recipe: Recipe, launcher: str, steps: int) -> str:
    m, t = recipe.model, recipe.train
    groups = ", ".join(f"{g}: {', '.join(c.sources)}" for g, c in recipe.mix.groups.items()) or "none"
    frozen = ", ".join(k for k in ("vision", "projector", "llm") if getattr(m.freeze, k)) or "nothing"
    return "\n".join([
        "---",
        f"base_model: {m.name_or_path}",
        "library_name: transformers",
        f"tags: [spatialtree-train, {launcher}]",
        "---",
        "",
        f"# {recipe.name}",
        "",
        f"A fine-tuned version of `{m.name_or_path}`, trained with SpatialTree-Train ({launcher}) for {steps} "
        f"optimizer steps with the recipe `{recipe.name}`"
        + (f" ({recipe.description})" if recipe.description else "") + ".",
        "",
        f"- base model: `{m.name_or_path}`",
        f"- recipe: `{recipe.name}`; the fully resolved recipe is `recipe.yaml` next to this card",
        f"- data mix: {groups}",
        f"- frozen: {frozen}; LoRA: {'on' if m.lora.enabled else 'off'}",
        f"- learning rate {recipe.optim.lr}, batch {t.per_device_batch_size} x {t.grad_accum} per device, seed {t.seed}",
        "",
        "Scores: `eval/*/summary.json` (fractions in [0, 1]; the tables print them x100).",
        "",
    ])


def write_model_card(recipe: Recipe, run_dir: str | Path, launcher: str, steps: int) -> Path:
    path = Path(run_dir) / "README.md"
    path.write_text(model_card(recipe, launcher, steps))
    return path
