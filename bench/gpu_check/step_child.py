"""A short SFT or GRPO run through the project's own entry points (``train.sft.run``, ``train.grpo.trl_backend.run_trl``)
with a step meter attached: per optimizer step its wall time (CUDA synchronised) and the model FLOPs of what it
trained and generated, from the very tensors the trainer received.

    torchrun --standalone --nproc_per_node 1 -m bench.gpu_check.step_child sft|grpo OUT DATA_ROOT DEVICE MODEL STEPS

Writes OUT/step_meter.json. The meter is attached where the mid-training evaluation hook is
(``train.callbacks.attach_eval_hook``, off here: ``eval.bench=null``), the one attachment point both trainers share.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

WARM = 1


def sft_overrides(root: str, batch: int, packing: bool = True) -> list[str]:
    """The benchmark corpus mixed 7:3 (bench/workload.py), packed (unless the model's family refuses packing),
    the recipe's defaults otherwise."""
    return [f"data.root={root}", f"data.registry={root}/registry.yaml", "data.max_length=4096", "mix.unit=samples",
            "mix.groups.short.weight=7", "mix.groups.short.sources=[short_mcq]", "mix.groups.long.weight=3",
            "mix.groups.long.sources=[long_conv]", "mix.upsample=true", "mix.budget.unit=epochs",
            "mix.budget.value=50", "mix.budget.group=long", f"train.per_device_batch_size={batch}",
            f"train.packing={str(packing).lower()}", "optim.warmup_ratio=0", "optim.scheduler=constant"]


def grpo_overrides(root: str, batch: int, completion: int) -> list[str]:
    """The 64 L1-L4 prompts of bench/workload.build_rl, 4 completions each, the auto_think recipe otherwise."""
    return [f"data.root={root}", f"data.registry={root}/registry.yaml", "mix.groups.rl.sources=[rl_bench]",
            "mix.budget.unit=epochs", "mix.budget.value=1", "mix.budget.group=rl", f"train.per_device_batch_size={batch}",
            "train.grad_accum=1", "grpo.num_generations=4", f"grpo.max_completion_length={completion}",
            "grpo.max_prompt_length=512"]


def sequence_stats(family, config, inputs: dict) -> dict:
    """Tokens, sum of squared sequence lengths, vision patches (and for GRPO the extra forward passes) of one
    micro-batch as the trainer got it; ``family`` (train/models/) says where the patches and the packed samples'
    boundaries are."""
    import torch

    patches = family.vision_patches(config, inputs)
    if "completion_mask" in inputs:  # GRPO: prompt + completion per sequence
        # A completion the loss masks out (mask_truncated_completions) has an all-zero mask but was generated and
        # run through the model to its full width: count it so.
        comp = inputs["completion_mask"].sum(1)
        comp = torch.where(comp == 0, torch.full_like(comp, inputs["completion_ids"].shape[1]), comp)
        lengths = (inputs["prompt_mask"].sum(1) + comp).tolist()
        passes = 1 + (inputs.get("old_per_token_logps") is not None) + (inputs.get("ref_per_token_logps") is not None)
        return {"lengths": lengths, "patches": patches, "forward_passes": passes, "completion_tokens": int(comp.sum())}
    labels = inputs["labels"]
    pos = inputs.get("position_ids")
    if isinstance(pos, torch.Tensor):  # packed (train/packing.py; a padded batch has none): each sample's length
        from bench.gpu_check.inputs import sample_spans

        text = family.text_positions(pos)
        lengths = [b - a for row in range(labels.shape[0]) for a, b in sample_spans(text[row], labels[row])]
    else:
        lengths = inputs["attention_mask"].sum(1).tolist()
    return {"lengths": lengths, "patches": patches, "forward_passes": 0, "completion_tokens": 0,
            "packed": isinstance(pos, torch.Tensor)}


class StepMeter:
    """Wraps ``trainer.compute_loss`` to collect :func:`sequence_stats` and records each step's end."""

    def __new__(cls, trainer, out: Path):
        import torch
        from transformers import TrainerCallback

        from bench.gpu_check.flops import model_shape
        from train.models import family_for_model

        cuda = torch.cuda.is_available()
        shape = model_shape(trainer.model)
        family, config = family_for_model(trainer.model), trainer.model.config
        steps: list[dict] = []
        current: list[dict] = []
        original = trainer.compute_loss

        def compute_loss(model, inputs, *args, **kwargs):
            if model.training:
                current.append(sequence_stats(family, config, inputs))
            return original(model, inputs, *args, **kwargs)

        trainer.compute_loss = compute_loss

        class _Meter(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                if cuda:
                    torch.cuda.synchronize()
                steps.append({"end": time.perf_counter(), "micro_batches": list(current)})
                current.clear()

            def on_train_end(self, args, state, control, **kwargs):
                if state.is_world_process_zero:
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_text(json.dumps({
                        "shape": asdict(shape), "model_type": trainer.model.config.model_type, "warm": WARM,
                        "device_name": torch.cuda.get_device_name(0) if cuda else "cpu", "steps": steps,
                        "dtype": str(next(trainer.model.parameters()).dtype),
                        "attn_implementation": getattr(trainer.model.config, "_attn_implementation", None)}))

        return _Meter()


def main(kind: str, out: str, root: str, device: str, model: str, steps: str) -> int:
    import torch

    from train import callbacks as telemetry
    from train.recipe import load_recipe

    gpu = device == "cuda"
    common = [f"model.name_or_path={model}", f"train.device={device}", f"train.max_steps={WARM + int(steps)}",
              f"train.output_dir={out}", "train.save_steps=0", "train.logging_steps=1", "train.report_to=[]",
              "eval.bench=null", "data.decontaminate=off", *([] if gpu else ["train.num_threads=1"])]
    if kind == "sft":
        from train.models import family_for_checkpoint
        from train.sft import run

        packing = family_for_checkpoint(model).packing_refusal is None  # refused: the run is padded, and says so
        recipe = load_recipe(None, [*sft_overrides(root, 8 if gpu else 2, packing), *common])
    else:
        from train.grpo.trl_backend import pick_generation
        from train.grpo.trl_backend import run_trl as run

        recipe = load_recipe("auto_think", [*grpo_overrides(root, 8 if gpu else 4, 128 if gpu else 12), *common])
    meter_path = Path(out) / "step_meter.json"
    real = telemetry.attach_eval_hook

    def attach(trainer, recipe_, processor):
        trainer.add_callback(StepMeter(trainer, meter_path))
        return real(trainer, recipe_, processor)

    telemetry.attach_eval_hook = attach
    code = run(recipe, [])
    if kind == "grpo" and meter_path.is_file():
        data = json.loads(meter_path.read_text())
        summary = Path(out) / "train_summary.json"  # what the run itself used (train.grpo.trl_backend.run_trl)
        data["rollouts"] = (json.loads(summary.read_text())["rollouts"] if summary.is_file() else
                            pick_generation(recipe.grpo, "cuda" if torch.cuda.is_available() and gpu else "cpu")[1])
        meter_path.write_text(json.dumps(data))
    from train.cli import end_process

    end_process(code)
    return code


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
