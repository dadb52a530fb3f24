"""torchrun child of tests/test_grpo_media_dist.py: a GRPO run (``train.grpo.run``, TRL, DeepSpeed on CPU, gloo,
a KL term so a reference model runs too) whose two ranks see different media.

    python tests/grpo_media_child.py --data ROOT                       # write the prompt set once
    torchrun --nproc_per_node 2 tests/grpo_media_child.py OUT ROOT zero2|zero3

The prompt set (:func:`write_prompts`): two text-only prompts, one with one image, one with two images. Each
optimizer step generates for all four (2 per rank, 2 completions each, then 2 micro-batches per rank). With
``train.seed=0`` TRL's sampler gives step 1 rank 0 both text prompts and rank 1 both image prompts, and step 2
each rank a text and an image prompt (so text-only slices of a batch with images too): in generation, the
reference log-prob passes and the training forwards. Every call of the multimodal body is recorded per rank in
``OUT/media_rank{R}.json`` (mode, rows, rows with image tokens, pixel rows, generating or decoding, vision-tower
calls inside it), and each generation batch (images per prompt): the test checks from it that the ranks really
differed and that the vision tower ran equally often on both.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

IMAGES_PER_PROMPT = [0, 0, 1, 2]


def write_prompts(root: Path) -> Path:
    """Four bench-format RL prompts under ``root`` (source ``mine``): text, text, one image, two images."""
    from fixtures_grpo import write_bench_source

    return write_bench_source(root, n=len(IMAGES_PER_PROMPT), images_per_row=IMAGES_PER_PROMPT)


def overrides(out: str, stage: str) -> list[str]:
    return [f"train.output_dir={out}", f"train.deepspeed={stage}", "grpo.beta=0.04", "grpo.num_generations=2",
            "train.per_device_batch_size=2", "train.grad_accum=2", "train.max_steps=2", "train.save_steps=1",
            "grpo.max_completion_length=8", "train.num_threads=1", "train.logging_steps=1", "optim.lr=1e-3",
            "model.freeze.projector=false", "grpo.log_completions=true", "grpo.mask_truncated_completions=false",
            # a reward that differs within every group (an untrained model never answers): fewer words, more reward
            "reward.length_unit=words", "reward.levels.L1.length_free_tokens=0", "reward.levels.L1.length_cap_tokens=16",
            "reward.levels.L1.length_penalty=1.0", "train.seed=0"]


def record_media_calls(events: list[dict]) -> list[int]:
    """Note every call of the multimodal body (policy and reference) and count vision-tower calls, per process."""
    import functools

    import torch
    from transformers.models.qwen2_5_vl import modeling_qwen2_5_vl as qwen

    from train.models import family_for_type

    pixel_keys = family_for_type("qwen2_5_vl").pixel_keys  # the vision inputs of the model this child trains

    calls = [0]
    plain = qwen.Qwen2_5_VLModel.forward

    @functools.wraps(plain)
    def forward(self, *args, **kwargs):
        ids, cache = kwargs.get("input_ids"), kwargs.get("past_key_values")
        before = calls[0]
        event = {
            "training": self.training, "grad": torch.is_grad_enabled(),
            "decode": bool(cache is not None and cache.get_seq_length() > 0),
            "rows": 0 if ids is None else int(ids.shape[0]),
            "image_rows": 0 if ids is None else int((ids == self.config.image_token_id).any(dim=1).sum()),
            "generating": cache is not None,
            "pixel_rows": {k: None if kwargs.get(k) is None else int(kwargs[k].shape[0]) for k in pixel_keys}}
        events.append(event)
        out = plain(self, *args, **kwargs)
        event["vision_calls"] = calls[0] - before  # blank calls included (they run inside this forward)
        return out

    def count(module, args):
        if isinstance(module, qwen.Qwen2_5_VisionTransformerPretrainedModel):
            calls[0] += 1

    qwen.Qwen2_5_VLModel.forward = forward
    from trl import GRPOTrainer

    score = GRPOTrainer._generate_and_score_completions

    @functools.wraps(score)
    def generate_and_score(self, inputs):
        events.append({"generation_batch": [len(x.get("images") or []) for x in inputs]})
        return score(self, inputs)

    GRPOTrainer._generate_and_score_completions = generate_and_score
    torch.nn.modules.module.register_module_forward_pre_hook(count)
    return calls


def main(out: str, root: str, stage: str) -> int:
    from fixtures_grpo import grpo_recipe

    from train.cli import end_process
    from train.grpo import run

    rank = int(os.environ.get("RANK", 0))
    events: list[dict] = []
    calls = record_media_calls(events)
    recipe = grpo_recipe(Path(root), Path(root) / "mine.jsonl", overrides(out, stage))
    try:
        code = run(recipe, [])
    finally:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / f"media_rank{rank}.json").write_text(json.dumps({"events": events, "vision_calls": calls[0]}))
    end_process(code)  # as launch/grpo.py does (train/cli.py)
    return code


if __name__ == "__main__":
    if sys.argv[1] == "--data":
        write_prompts(Path(sys.argv[2]))
        sys.exit(0)
    sys.exit(main(*sys.argv[1:]))
