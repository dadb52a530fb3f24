"""torchrun child of tests/test_eval_hooks.py: a plain transformers.Trainer under DeepSpeed ZeRO-3 (CPU, gloo)
with the bench hook evaluating at every step, generation on partitioned weights.

    torchrun --nproc_per_node 2 tests/eval_zero3_child.py OUT BENCH GATHER(true|false)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(out: str, bench: str, gather: str) -> int:
    import deepspeed
    import torch
    from PIL import Image
    from transformers import Trainer, TrainingArguments

    from eval_hooks.callback import attach_bench_eval
    from train.model_loading import load_model, load_processor
    from train.recipe import load_recipe

    torch.set_num_threads(1)
    deepspeed.init_distributed(dist_backend="gloo")  # use_cpu=True makes accelerate skip DeepSpeed's own init
    recipe = load_recipe(None, [f"eval.bench={bench}", f"train.output_dir={out}", "eval.max_samples_per_leaf=2",
                                "eval.max_new_tokens=8", "eval.every_steps=1", f"eval.zero3_gather_params={gather}"])
    args = TrainingArguments(output_dir=out, max_steps=2, per_device_train_batch_size=2, use_cpu=True, report_to=[],
                             deepspeed=str(Path(__file__).resolve().parents[1] / "recipes/deepspeed/zero3.json"),
                             save_strategy="no", logging_steps=1, remove_unused_columns=False, learning_rate=1e-3,
                             ddp_backend="gloo", disable_tqdm=True)
    processor = load_processor(recipe.model)
    model = load_model(recipe.model, "cpu")  # after TrainingArguments: ZeRO-3 partitions it as it loads
    assert any(hasattr(p, "ds_id") for p in model.parameters()), "not partitioned by ZeRO-3"
    image = Image.new("RGB", (56, 56), (200, 30, 30))
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What color?"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "red"}]}]
    enc = processor(text=[processor.apply_chat_template(msgs, tokenize=False)], images=[image], return_tensors="pt")

    class Rows(torch.utils.data.Dataset):
        def __len__(self):
            return 16

        def __getitem__(self, i):
            return enc

    def collate(items):
        batch = {k: torch.cat([x[k] for x in items]) for k in ("input_ids", "attention_mask", "pixel_values",
                                                               "image_grid_thw")}
        batch["labels"] = batch["input_ids"].clone()
        return batch

    trainer = Trainer(model=model, args=args, train_dataset=Rows(), data_collator=collate, processing_class=processor)
    cb = attach_bench_eval(trainer, recipe.eval, recipe.data, processor=processor, report_to=["jsonl"])
    trainer.train()
    assert [r.step for r in cb.results] == [0, 1, 2], [r.step for r in cb.results]
    from train.cli import end_process

    end_process(0)  # as the launchers do: left to exit-time destructors, a finished rank can abort (SIGABRT)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
