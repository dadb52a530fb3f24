"""Packing: a packed micro-batch (train/packing.py: the model family's position ids, text positions restarting
per sample) gives the same loss and gradients as every sample run alone, for any family that packs (a family that
refuses packing, e.g. Qwen3.5, is skipped with its reason).

On a GPU with flash-attn: ``flash_attention_2`` in bf16. The samples take several bins of at most the longest
sample's length, and the collator (train/packing.py, for the attention the model was loaded with:
``train.model_loading.attention_of``) flattens them into ONE row without mask: transformers derives cu_seqlens
from the restarting text positions only for a batch of one row (issue 27: two rows ran plain causal attention
over each whole row). CPU smoke mode: the same flash code path of transformers with CPU kernels
(train/flash_standin.py) in fp32. A negative control runs the same packed row with the sample boundaries removed
(one plain causal sequence).

Isolation, exactly: the loss of the last sample of each packed row is back-propagated to the input embeddings;
the gradient at every position of the earlier samples in that row must be exactly zero (a sample sees only
itself), whatever the precision. The negative control must give a non-zero gradient there, or the
measurement could not see a leak.
"""

from __future__ import annotations

import importlib.util

from bench.gpu_check import inputs
from bench.gpu_check.record import CheckResult, Settings, Tolerance, rel_diff

NAME = "packing"
FLASH_MISSING = "flash-attn not installed (pip install flash-attn --no-build-isolation, or EXTRAS=dev,gpu make setup)"


def tolerances(smoke: bool) -> list[Tolerance]:
    if smoke:
        why = ("project choice: fp32 with the same sdpa kernels on both sides leaves only summation-order rounding "
               "(~1e-7 relative); 1e-5 is the bound of tests/test_sft_collate_packing.py")
        return [Tolerance("loss_rel_diff", 1e-5, why), Tolerance("grad_rel_diff", 1e-4, why),
                Tolerance("grad_cosine_min", 0.99999, why)]
    why = ("project choice: bf16 keeps 8 significant bits (2^-8 = 0.4% per rounding); packed and unpacked runs differ "
           "in matmul shapes (other kernels, other summation order) and flash-attn's backward accumulates dq with "
           "atomics, so about one bf16 rounding of the loss and ~1% of the gradient norm; a leak between packed "
           "samples moves the loss by far more (see the negative control)")
    return [Tolerance("loss_rel_diff", 5e-3, why), Tolerance("grad_rel_diff", 5e-2, why),
            Tolerance("grad_cosine_min", 0.998, why)]


def _label_count(enc) -> int:
    from train.collate import IGNORE_INDEX

    return int((enc.labels[1:] != IGNORE_INDEX).sum())


def _without_boundaries(family, packed: dict) -> dict:
    """The same rows as one causal sequence each: text positions 0..L-1 (the family's restarting row), no block
    mask."""
    import torch

    leak = dict(packed)
    pos = packed["position_ids"].clone()
    text = family.text_positions(pos)  # a view into pos
    rows, length = text.shape
    text[...] = torch.arange(length, device=pos.device).expand(rows, -1)
    leak["position_ids"] = pos
    leak.pop("attention_mask", None)
    return leak


def last_samples(family, packed: dict) -> list[tuple[int, int, int]]:
    """(row, start, end) of the last sample of every packed row that holds two or more samples."""
    text_pos, labels = family.text_positions(packed["position_ids"]), packed["labels"]
    spans = []
    for row in range(labels.shape[0]):
        real = inputs.sample_spans(text_pos[row], labels[row])
        if len(real) >= 2:
            spans.append((row, *real[-1]))
    if not spans:
        raise RuntimeError("no packed row holds two samples: nothing to check isolation on")
    return spans


def isolation(model, batch: dict, spans: list[tuple[int, int, int]]) -> tuple[float, float]:
    """(largest |gradient| of the last samples' loss at the earlier samples' input embeddings in the same row,
    largest at their own positions)."""
    import torch

    from train.collate import IGNORE_INDEX

    captured = {}

    def leaf(module, args, out):
        out = out.detach().requires_grad_(True)
        captured["emb"] = out
        return out

    handle = model.get_input_embeddings().register_forward_hook(leaf)
    try:
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits.float()
    finally:
        handle.remove()
    labels = batch["labels"]
    loss = sum(torch.nn.functional.cross_entropy(logits[row, a:b - 1], labels[row, a + 1:b],
                                                 ignore_index=IGNORE_INDEX, reduction="sum") for row, a, b in spans)
    loss.backward()
    grad = captured["emb"].grad.float().abs()
    cross = max(float(grad[row, :a].max()) for row, a, _ in spans)
    own = max(float(grad[row, a:b].max()) for row, a, b in spans)
    model.zero_grad(set_to_none=True)
    return cross, own


def run(settings: Settings) -> CheckResult:
    import torch

    from train.collate import pad_batch
    from train.model_loading import attention_of
    from train.models import family_for_checkpoint
    from train.packing import first_fit_decreasing, pack_batch, rope_index_fn

    family = family_for_checkpoint(settings.model)
    r = CheckResult(NAME, f"packed micro-batch ({family.name}'s packed position ids, samples apart) vs every sample "
                          "alone: token-mean loss and gradients of every trainable parameter")
    if family.packing_refusal:  # e.g. Qwen3.5's linear-attention state (train/models/qwen3_5.py)
        return r.skip(f"{family.name}: {family.packing_refusal}")
    r.tolerances = tolerances(settings.smoke)
    tol = {t.name: t.value for t in r.tolerances}
    r.rule = (f"loss_rel_diff <= {tol['loss_rel_diff']}, grad_rel_diff <= {tol['grad_rel_diff']}, "
              f"grad_cosine >= {tol['grad_cosine_min']}; the last sample of each packed row has exactly zero "
              f"gradient at the earlier samples' input positions, and the negative control (boundaries removed) "
              f"has a non-zero one; the samples take two or more bins, which on flash-attention reach the model "
              f"as one row")
    if settings.smoke:
        attn, dtype = "flash_varlen_standin", "fp32"
        r.exercised = ("CPU smoke stand-in: transformers' flash-attention code path with CPU varlen kernels "
                       "(train/flash_standin.py), fp32, cpu (not flash-attn's kernels)")
    else:
        if importlib.util.find_spec("flash_attn") is None:
            return r.skip(FLASH_MISSING)
        attn, dtype = "flash_attention_2", "bf16"
        r.exercised = "flash_attention_2 varlen (no mask, boundaries from the text positions), bf16, cuda"

    model, processor = inputs.load(settings, dtype, attn)
    model.eval()  # no dropout; gradients still flow
    if model.config._attn_implementation != attn:
        raise RuntimeError(f"the model loaded with attention {model.config._attn_implementation!r}, not {attn!r}")
    model_dtype = next(model.parameters()).dtype
    enc = inputs.encoder(settings, processor)
    encoded = [enc.encode(s) for s in inputs.samples(settings, *settings.pick((3, 1), (12, 4)))]
    row = max(len(e) for e in encoded)
    bins = len(first_fit_decreasing([len(e) for e in encoded], row))
    packed = pack_batch(encoded, row, enc.pad_id, rope_index_fn(model), attention_of(model), dtype=model_dtype)
    packed.pop("real_tokens")
    packed = inputs.to_device(packed, settings.device, model_dtype)

    model.zero_grad(set_to_none=True)
    loss_packed = model(**packed).loss
    loss_packed.backward()
    grads_packed = inputs.trainable_grads(model)

    model.zero_grad(set_to_none=True)
    counts = [_label_count(e) for e in encoded]
    total = sum(counts)
    loss_alone = 0.0
    for e, n in zip(encoded, counts):
        out = model(**inputs.to_device(pad_batch([e], enc.pad_id), settings.device, model_dtype))
        (out.loss * (n / total)).backward()  # token mean over all samples, as the packed loss is
        loss_alone += float(out.loss.detach()) * n / total
    grads_alone = inputs.trainable_grads(model)

    spans = last_samples(family, packed)
    leak_packed, self_packed = isolation(model, packed, spans)
    control = _without_boundaries(family, packed)
    leak_control, _ = isolation(model, control, spans)
    with torch.no_grad():
        loss_leak = float(model(**control).loss)
    m = {"loss_packed": float(loss_packed.detach()), "loss_alone": loss_alone,
         "loss_rel_diff": rel_diff(float(loss_packed), loss_alone),
         "control_loss_no_boundaries": loss_leak, "control_rel_diff": rel_diff(loss_leak, loss_alone),
         "cross_sample_grad_max": leak_packed, "own_sample_grad_max": self_packed,
         "control_cross_sample_grad_max": leak_control,
         "samples": len(encoded), "bins": bins, "family": family.name, "rows": int(packed["input_ids"].shape[0]),
         "row_length": int(packed["input_ids"].shape[1]),
         "sample_lengths": [len(e) for e in encoded], "label_tokens": total, "dtype": str(model_dtype)}
    m.update(inputs.compare_grads(grads_packed, grads_alone))
    m["headline"] = ["loss_rel_diff", "grad_rel_diff", "cross_sample_grad_max", "control_cross_sample_grad_max"]
    r.measured = m
    r.decide({"loss_rel_diff": m["loss_rel_diff"] <= tol["loss_rel_diff"],
              "grad_rel_diff": m["grad_rel_diff"] <= tol["grad_rel_diff"],
              "grad_cosine": m["grad_cosine"] >= tol["grad_cosine_min"],
              "grads finite": m["grad_finite"],
              "samples isolated (cross-sample gradient exactly 0)": leak_packed == 0.0 and self_packed > 0.0,
              "control sees the leak": leak_control > 0.0,
              "several bins per micro-batch": bins >= 2,
              "flash path: one row reached the model": "flash" not in attn or m["rows"] == 1})
    del model
    inputs.free(settings)
    return r
