"""The inputs every check shares: the benchmark corpus (bench/workload.py) plus a video and a text-only sample,
the model loaded through train.model_loading, and batches moved to a device."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from bench.gpu_check.record import Settings


@lru_cache(maxsize=4)
def _corpus(root: str, rows: int):
    from bench import workload

    return workload.build(Path(root), rows)


def corpus(settings: Settings):
    """The seeded SFT corpus (70% one-image MCQ, 30% 3-6-image conversations), built once per run."""
    return _corpus(str(settings.workdir / "corpus"), settings.pick(10, 40))


def extra_samples(corpus) -> list:
    """A 4-frame video (Qwen's temporal rope positions) and a text-only sample (no vision at all)."""
    from data_mix.sample import Sample

    frames = [str(corpus.root / "images" / f"img_56_{k}.png") for k in range(4)]
    video = Sample(id="video", source="gpu_check", videos=[frames], messages=[
        {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "How did the camera move?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "It turned left, then moved forward."}]}])
    text = Sample(id="text", source="gpu_check", messages=[
        {"role": "user", "content": [{"type": "text", "text": "Is the red cube closer than the blue sphere?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Yes, the red cube is closer."}]}])
    return [video, text]


def samples(settings: Settings, short: int, long: int) -> list:
    """``short`` one-image MCQ rows, ``long`` multi-image conversations, then the video and text-only samples."""
    from bench import workload

    c = corpus(settings)
    rows = workload.read_samples(c)
    shorts = [s for s in rows if s.source == "short_mcq"][:short]
    longs = [s for s in rows if s.source == "long_conv"][:long]
    return shorts + longs + extra_samples(c)


def model_config(settings: Settings, dtype: str, attn: str, **fields):
    from train.config import ModelConfig

    return ModelConfig(name_or_path=settings.model, dtype=dtype, attn_implementation=attn, **fields)


def load(settings: Settings, dtype: str, attn: str):
    """(model on the check's device with the recipe's default freeze applied, processor)."""
    from train.model_loading import load_model, load_processor
    from train.module_groups import apply_freeze

    cfg = model_config(settings, dtype, attn)
    model = load_model(cfg, settings.device)
    apply_freeze(model, cfg.freeze)
    return model, load_processor(cfg)


def encoder(settings: Settings, processor):
    from train.collate import SampleEncoder

    return SampleEncoder(processor, corpus(settings).data_config())


def to_device(batch: dict, device, dtype=None) -> dict:
    """Tensors to ``device``; pixel values also to ``dtype`` when given (other floats, e.g. a video's seconds per
    grid step that the rope positions are computed from, keep their precision)."""
    import torch

    out = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            value = value.to(device)
            if dtype is not None and key.startswith("pixel_values"):
                value = value.to(dtype)
        out[key] = value
    return out


def trainable_grads(model) -> dict:
    """name -> fp32 copy of the gradient of every trainable parameter (zeros where none arrived)."""
    import torch

    return {n: (p.grad.detach().float().clone() if p.grad is not None else torch.zeros_like(p, dtype=torch.float32))
            for n, p in model.named_parameters() if p.requires_grad}


def compare_grads(got: dict, ref: dict) -> dict:
    """Relative L2 difference and cosine of two gradient sets over all trainable parameters, and the
    largest per-tensor relative difference."""
    import torch

    diff = sum(float((got[n] - ref[n]).pow(2).sum()) for n in ref) ** 0.5
    norm = sum(float(ref[n].pow(2).sum()) for n in ref) ** 0.5
    got_norm = sum(float(got[n].pow(2).sum()) for n in ref) ** 0.5
    dot = sum(float((got[n] * ref[n]).sum()) for n in ref)
    worst = max((float((got[n] - ref[n]).norm() / ref[n].norm()) for n in ref if float(ref[n].norm()) > 0),
                default=0.0)
    return {"grad_rel_diff": diff / norm if norm else float("inf"),
            "grad_cosine": dot / (norm * got_norm) if norm and got_norm else 0.0,
            "grad_worst_tensor_rel_diff": worst, "grad_tensors": len(ref),
            "grad_norm": norm, "grad_finite": all(bool(torch.isfinite(got[n]).all()) for n in got)}


def sample_spans(text_positions, labels) -> list[tuple[int, int]]:
    """(start, end) of every real sample in one packed row: text positions restart at 0 per sample
    (train/packing.py); the trailing padding segment has no label to learn and is left out."""
    starts = (text_positions == 0).nonzero().flatten().tolist() + [len(labels)]
    return [(a, b) for a, b in zip(starts, starts[1:]) if (labels[a:b] != -100).any()]


def free(settings: Settings) -> None:
    """Release what a finished check held (CUDA cache included)."""
    import gc

    gc.collect()
    if not settings.smoke:
        import torch

        torch.cuda.empty_cache()
