#!/usr/bin/env python
"""Load an exported verl parquet with verl's own RLHFDataset + collate_fn and count each prompt's tokens.

Run it with verl's environment on a config written by ``launch/grpo.py ... grpo.backend=verl --dry-run``:

    .venv-verl/bin/python scripts/verl/check_dataset.py runs/NAME/verl/grpo_verl.yaml OUT.json

What it does, all with verl 0.9.1's code: builds the tokenizer and processor from ``actor_rollout_ref.model.path``
(``hf_tokenizer`` / ``hf_processor``; a processor that cannot be built is an error here, where verl only warns
and later fails on the first image prompt), builds ``RLHFDataset`` over ``data.train_files`` with verl's
over-long-prompt filter switched on at the config's ``max_prompt_length`` (a row verl cannot process is dropped
by that filter, so every row must survive it), iterates a DataLoader with verl's ``collate_fn``, and counts each
prompt's tokens the way that filter does (chat template, qwen-vl-utils image loading, processor call).
Then it builds the dataset again with ``max_prompt_length`` one below the longest count, to check that verl's
filter drops exactly the rows counted at that maximum.

OUT.json: ``{"processor", "transformers", "rows", "dataset_len", "boundary", "batches", "samples": [{"index",
"prompt_tokens", "image_tokens", "image_grid_thw", "parts", "data_source", ...}]}``. Exit code 0 when every row loaded.
"""

from __future__ import annotations

import json
import sys
import tempfile
import warnings
from pathlib import Path


def _processor(path: str, trust_remote_code: bool):
    from verl.utils import hf_processor

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        processor = hf_processor(path, trust_remote_code=trust_remote_code)
    if processor is None or not hasattr(processor, "image_processor"):
        why = "; ".join(str(w.message) for w in caught if "processor" in str(w.message).lower()) or "no reason given"
        raise SystemExit(f"verl could not build a multimodal processor from {path}: {why}. verl's RLHFDataset then "
                         "rejects every image prompt ('processor is needed to process multimodal data'); "
                         "run scripts/verl/setup_env.sh (it installs torchvision and qwen-vl-utils)")
    return processor


def _count(dataset, processor, row: dict) -> tuple[int, int, list]:
    """(prompt tokens, image tokens, image grids (t, h, w) in patches) of one parquet row, as RLHFDataset's
    length filter computes them."""
    from verl.utils.tokenizer import build_multimodal_processor_inputs

    messages = dataset._build_messages(row, key=dataset.prompt_key)
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False,
                                         **dict(dataset.apply_chat_template_kwargs))
    images, videos, audios = dataset._process_multi_modal_info(messages, dataset.image_patch_size, dataset.config)
    if images is None and videos is None and audios is None:
        ids = processor.tokenizer(text=text, add_special_tokens=False, return_attention_mask=False)["input_ids"]
        return len(ids), 0, []
    out = build_multimodal_processor_inputs(processor, text=[text], images=images, videos=videos, audio=audios,
                                            mm_processor_kwargs=dataset.mm_processor_kwargs)
    ids = out["input_ids"][0]
    image_id = processor.tokenizer.convert_tokens_to_ids(processor.image_token)
    grids = out["image_grid_thw"].tolist() if "image_grid_thw" in out else []
    return len(ids), int((ids == image_id).sum()), grids


def _dataset(files, tokenizer, processor, data_cfg, max_prompt_length: int, cache_dir: str):
    import copy

    from omegaconf import open_dict
    from verl.utils.dataset.rl_dataset import RLHFDataset

    cfg = copy.deepcopy(data_cfg)
    with open_dict(cfg):
        cfg.update({"max_prompt_length": max_prompt_length, "filter_overlong_prompts": True,
                    "filter_overlong_prompts_workers": None, "cache_dir": cache_dir})
    return RLHFDataset(data_files=list(files), tokenizer=tokenizer, config=cfg, processor=processor)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    config_path, out_path = (Path(a).resolve() for a in argv)
    import pyarrow.parquet as pq
    import torch
    import transformers
    from hydra import compose, initialize_config_dir
    from torch.utils.data import DataLoader
    from verl.utils import hf_tokenizer
    from verl.utils.dataset.rl_dataset import collate_fn

    with initialize_config_dir(config_dir=str(config_path.parent), version_base=None):
        cfg = compose(config_name=config_path.stem)
    model_path = cfg.actor_rollout_ref.model.path
    tokenizer = hf_tokenizer(model_path, trust_remote_code=cfg.data.trust_remote_code)
    processor = _processor(model_path, cfg.data.trust_remote_code)
    files = list(cfg.data.train_files)
    rows = [r for f in files for r in pq.read_table(f).to_pylist()]
    cache = tempfile.mkdtemp(prefix="verl-rlhf-cache-")

    dataset = _dataset(files, tokenizer, processor, cfg.data, int(cfg.data.max_prompt_length), cache)
    if len(dataset) != len(rows):
        print(f"verl's RLHFDataset kept {len(dataset)} of {len(rows)} rows of {files}: it drops a row it cannot "
              "process (see 'Error processing one of the samples' above) or that is longer than "
              f"data.max_prompt_length={cfg.data.max_prompt_length}", file=sys.stderr)
        return 1
    samples = []
    for i in range(len(dataset)):
        n, image_tokens, grids = _count(dataset, processor, dataset.dataframe[i])
        samples.append({"row": i, "prompt_tokens": n, "image_tokens": image_tokens, "image_grid_thw": grids})

    batches = []
    loader = DataLoader(dataset, batch_size=min(4, len(dataset)), shuffle=False, collate_fn=collate_fn)
    row = 0
    for batch in loader:
        size = len(batch["index"])
        assert isinstance(batch["dummy_tensor"], torch.Tensor) and batch["dummy_tensor"].shape == (size, 1)
        batches.append({"size": size, "keys": sorted(batch)})
        for k in range(size):
            parts = [[p.get("type") for p in m["content"]] if isinstance(m["content"], list) else ["str"]
                     for m in batch["raw_prompt"][k]]
            samples[row].update(index=int(batch["index"][k]), data_source=str(batch["data_source"][k]),
                                parts=parts, ground_truth=batch["reward_model"][k]["ground_truth"],
                                metricfunc=batch["extra_info"][k]["metricfunc"],
                                exported_prompt_tokens=batch["extra_info"][k].get("prompt_tokens"))
            row += 1

    longest = max(s["prompt_tokens"] for s in samples)
    cut = _dataset(files, tokenizer, processor, cfg.data, longest - 1, cache)
    boundary = {"max_prompt_length": longest - 1, "kept": len(cut),
                "expected": sum(1 for s in samples if s["prompt_tokens"] < longest)}
    summary = {"processor": type(processor).__name__, "image_processor": type(processor.image_processor).__name__,
               "video_processor": type(getattr(processor, "video_processor", None)).__name__,
               "transformers": transformers.__version__, "rows": len(rows), "dataset_len": len(dataset),
               "boundary": boundary, "batches": batches, "samples": samples}
    out_path.write_text(json.dumps(summary, indent=2))
    print(f"verl RLHFDataset: {len(dataset)}/{len(rows)} rows, {len(batches)} batches, longest prompt {longest} "
          f"tokens; filter at {longest - 1} kept {boundary['kept']} (expected {boundary['expected']}) -> {out_path}")
    return 0 if boundary["kept"] == boundary["expected"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
