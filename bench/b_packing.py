"""Packing: share of non-padding tokens per micro-batch, packed (``train.packing: true``) against padded,
and what it buys in a training step, on the benchmark corpus's length mix (70% short one-image MCQ,
30% long multi-image conversations; bench/workload.py).

The same micro-batches (8 samples drawn 7:3, seeded) are collated both ways by train's own collators
(``pad_batch`` / ``pack_batch``, sdpa block-diagonal mask, rows of at most 2048 tokens). Padded batches
are what TRL's SFTTrainer gives a VLM: it refuses packing and padding-free for vision-language models.
"""

from __future__ import annotations

import random

from bench.harness import Context, Figure, compare, cpu_clock, known_answer, pair_figure

BATCH = 8
PACK_LENGTH = 2048
LOSS_TOLERANCE = 1e-4
"""Relative (project choice): the same tokens in fp32 through two attention layouts agree to ~1e-6."""


def micro_batches(encoded_short: list, encoded_long: list, n_batches: int, seed: int = 0) -> list[list]:
    """``n_batches`` lists of BATCH encoded samples, each sample long with probability 0.3."""
    rng = random.Random(seed)
    return [[rng.choice(encoded_long) if rng.random() < 0.3 else rng.choice(encoded_short) for _ in range(BATCH)]
            for _ in range(n_batches)]


def run(ctx: Context) -> list[Figure]:
    import torch

    from bench import workload
    from train.collate import SampleEncoder, batch_stats, pad_batch
    from train.config import ModelConfig
    from train.model_loading import load_model, load_processor
    from train.module_groups import apply_freeze
    from train.packing import pack_batch, rope_index_fn

    corpus = workload.build(ctx.workdir / "corpus", ctx.pick(60, 200))
    cfg = ModelConfig()
    processor = load_processor(cfg)
    model = load_model(cfg, "cpu")
    apply_freeze(model, cfg.freeze)
    encoder = SampleEncoder(processor, corpus.data_config())
    samples = workload.read_samples(corpus)
    encoded = [encoder.encode(s) for s in samples]
    short = [e for e, s in zip(encoded, samples) if s.source == "short_mcq"]
    long = [e for e, s in zip(encoded, samples) if s.source == "long_conv"]
    rope = rope_index_fn(model)
    batches = micro_batches(short, long, ctx.pick(8, 32))

    def collate(batch, packed: bool) -> dict:
        out = (pack_batch(batch, PACK_LENGTH, encoder.pad_id, rope, "sdpa") if packed
               else pad_batch(batch, encoder.pad_id))
        stats = batch_stats(out, len(batch))
        out.pop("real_tokens", None)
        return {"batch": out, "stats": stats}

    padded = [collate(b, False) for b in batches]
    packed = [collate(b, True) for b in batches]
    frac_packed = [p["stats"]["nonpad_fraction"] for p in packed]
    frac_padded = [p["stats"]["nonpad_fraction"] for p in padded]
    lengths = sorted(len(e) for e in encoded)
    notes = (f"{len(batches)} micro-batches of {BATCH}; sample lengths {lengths[0]}-{lengths[-1]} tokens "
             f"(median {lengths[len(lengths) // 2]}); one value per micro-batch, so the spread is the data's, not noise.")
    figures = [pair_figure(
        "nonpad_fraction", "share of non-padding token positions per micro-batch, packed vs padded.", "fraction",
        frac_packed, frac_padded, "the same micro-batches right-padded (TRL's VLM collation)", notes=notes)]

    # Known answer: packed and padded versions of a micro-batch have the same loss (the same tokens and labels;
    # the block-diagonal mask and per-sample positions keep samples apart), before any step changes the weights.
    with torch.no_grad():
        model.eval()
        n_check = min(4, len(batches))
        loss_packed = [float(model(**packed[i]["batch"]).loss) for i in range(n_check)]
        loss_padded = [float(model(**padded[i]["batch"]).loss) for i in range(n_check)]
    same_loss = known_answer("same_loss", f"loss of the first {n_check} micro-batches, packed and padded (before "
                             "training)", loss_packed, loss_padded, rel_tol=LOSS_TOLERANCE)

    # One optimizer step on each side's version of a batch: real tokens per second.
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5)
    model.train()
    steps = ctx.pick(1, 4)
    cursor = {"packed": 0, "padded": 0}

    def step(kind: str) -> float:
        i = cursor[kind] % len(batches)
        cursor[kind] += 1
        item = (packed if kind == "packed" else padded)[i]
        t = cpu_clock()
        loss = model(**item["batch"]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return item["stats"]["real_tokens"] / (cpu_clock() - t)

    def ours() -> float:
        return sum(step("packed") for _ in range(steps)) / steps

    def baseline() -> float:
        return sum(step("padded") for _ in range(steps)) / steps

    a, b = compare(ours, baseline, ctx.repeats, ctx.warmup, ctx.log)
    figures.append(pair_figure(
        "step_tokens_per_s", f"real (non-padding) tokens per second of a training step (forward, backward, AdamW) "
        f"of the tiny Qwen2.5-VL, vision frozen, averaged over {steps} micro-batches per measurement (CPU time).", "tokens/s",
        a, b, "the same micro-batches padded", checks=[same_loss],
        notes="sdpa with a block-diagonal mask (CPU); on GPU with flash-attn the packed rows use varlen kernels and "
              "the gain is larger than the mask path shows here."))
    return figures
