"""Rollouts: vLLM's greedy completions against HF generate's on the same prompts (images included), with the
project's rollout settings (the vision special tokens suppressed: train/grpo/trl_backend.py).

Greedy decoding in two engines need not give the same tokens: bf16 kernels differ, and a near tie between the
two best tokens can go either way, after which the sequences part. So the rule is not "equal text" but, token
by token, judged by HF teacher forcing on the candidate's own prefix:

- every token the candidate chose is HF's greedy choice up to a near tie (its HF log-prob within ``delta`` of
  the best allowed token's);
- the log-probs the candidate reports for its tokens equal HF's within ``delta``.

The exact-match share of whole completions is reported beside it. vLLM runs in its own process
(bench/gpu_check/rollout_child.py). Without vLLM on a GPU the check is skipped. In CPU smoke mode the
candidate is HF generate one prompt at a time (no padding) against the left-padded batch TRL generates,
which runs the same comparison code (and checks that left padding does not change a rollout).
"""

from __future__ import annotations

import importlib.util
import json

from bench.gpu_check import inputs
from bench.gpu_check.children import run_child
from bench.gpu_check.record import CheckResult, Settings, Tolerance

NAME = "rollout"
VLLM_MISSING = "vllm not installed (pip install 'vllm>=0.22,<=0.31': the range TRL 1.16 accepts)"
QUESTIONS = ["Which object is closer to the camera?", "How many objects are there in the image?",
             "Is the red cube left of the blue sphere?", "What color is the largest object?"]


def requests(settings: Settings) -> list[dict]:
    """Prompts as TRL builds them: the chat template with a generation prompt, one image each, one text-only."""
    c = inputs.corpus(settings)
    out = []
    for k, question in enumerate(QUESTIONS):
        size = (56, 112)[k % 2]
        out.append({"messages": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}],
                    "images": [str(c.root / "images" / f"img_{size}_{k}.png")]})
    out.append({"messages": [{"role": "user", "content": [{"type": "text", "text": "Answer with yes or no: is up "
                                                                                   "above down?"}]}], "images": []})
    return out


def _open(paths: list[str]):
    from PIL import Image

    return [Image.open(p).convert("RGB") for p in paths]


def hf_generate(model, processor, reqs: list[dict], max_new: int, suppressed: list[int], batched: bool) -> list[list[int]]:
    """Greedy completions (token ids, up to and including EOS) with HF generate; ``batched``: one left-padded
    batch, else one prompt at a time."""
    import torch

    from train.grpo.trl_backend import suppression_kwargs
    from train.models import family_for_model, render_chat

    processor.tokenizer.padding_side = "left"
    groups = [reqs] if batched else [[r] for r in reqs]
    eos = set(family_for_model(model).stop_token_ids(processor.tokenizer))  # the family's end of turn
    completions = []
    for group in groups:
        texts = [render_chat(processor, r["messages"], add_generation_prompt=True) for r in group]
        images = [im for r in group for im in _open(r["images"])]
        batch = processor(text=texts, images=images or None, padding=True, return_tensors="pt")
        batch = inputs.to_device(dict(batch), model.device, next(model.parameters()).dtype)
        with torch.no_grad():
            out = model.generate(**batch, do_sample=False, max_new_tokens=max_new,
                                 pad_token_id=processor.tokenizer.pad_token_id, **suppression_kwargs(suppressed, False))
        for row in out[:, batch["input_ids"].shape[1]:].tolist():
            cut = next((i + 1 for i, t in enumerate(row) if t in eos), len(row))
            completions.append(row[:cut])
    return completions


def teacher_forced(model, processor, req: dict, completion: list[int]) -> list[list[float]]:
    """HF log-probs (fp32 log-softmax of the raw logits) over the vocabulary at every completion position."""
    import torch

    from train.models import render_chat

    text = render_chat(processor, req["messages"], add_generation_prompt=True)
    batch = dict(processor(text=[text], images=_open(req["images"]) or None, return_tensors="pt"))
    n = batch["input_ids"].shape[1]
    batch["input_ids"] = torch.cat([batch["input_ids"], torch.tensor([completion])], dim=1)
    batch["attention_mask"] = torch.ones_like(batch["input_ids"])
    if "mm_token_type_ids" in batch:
        batch["mm_token_type_ids"] = torch.cat([batch["mm_token_type_ids"],
                                                torch.zeros((1, len(completion)), dtype=torch.long)], dim=1)
    batch = inputs.to_device(batch, model.device, next(model.parameters()).dtype)
    with torch.no_grad():
        logits = model(**batch).logits[0, n - 1:n - 1 + len(completion)].float()
    return torch.log_softmax(logits, dim=-1)


def judge(model, processor, reqs, candidate: list[list[int]], cand_logprobs, reference: list[list[int]],
          suppressed: list[int], delta: float) -> dict:
    """Apply the rule (module doc) to every token of every candidate completion."""
    tokens = near = 0
    lp_diff = 0.0
    worst_gap = 0.0
    for i, (req, comp) in enumerate(zip(reqs, candidate)):
        if not comp:
            continue
        lp = teacher_forced(model, processor, req, comp)
        lp[:, suppressed] = float("-inf")
        best = lp.max(dim=-1).values
        for j, tok in enumerate(comp):
            gap = float(best[j] - lp[j, tok])
            worst_gap = max(worst_gap, gap)
            near += gap <= delta
            tokens += 1
            if cand_logprobs is not None:
                lp_diff = max(lp_diff, abs(float(lp[j, tok]) - cand_logprobs[i][j]))
    exact = sum(a == b for a, b in zip(candidate, reference))
    first_split = [next((j for j, (a, b) in enumerate(zip(c, r)) if a != b), min(len(c), len(r)))
                   for c, r in zip(candidate, reference) if c != r]
    return {"tokens": tokens, "near_greedy_share": near / tokens if tokens else 0.0, "worst_logprob_gap": worst_gap,
            "logprob_max_abs_diff": lp_diff if cand_logprobs is not None else None,
            "exact_completions": exact, "completions": len(reference),
            "first_divergence_positions": first_split}


def vllm_generate(settings: Settings, reqs: list[dict], max_new: int, suppressed: list[int]) -> tuple[list, list]:
    """Run bench/gpu_check/rollout_child.py (vLLM in its own process); (completions, their log-probs)."""
    from train.model_loading import resolve_model_path

    job = settings.workdir / "rollout_job.json"
    result = settings.workdir / "rollout_result.json"
    job.write_text(json.dumps({"model": resolve_model_path(settings.model), "requests": reqs, "max_new": max_new,
                               "suppressed": suppressed}))
    run_child(settings, "rollout_vllm", "bench.gpu_check.rollout_child", [str(job), str(result)], None)
    data = json.loads(result.read_text())
    return data["completions"], data["logprobs"]


def run(settings: Settings) -> CheckResult:
    from train.grpo.trl_backend import suppressed_tokens

    r = CheckResult(NAME, "greedy rollouts of the same prompts: vLLM vs HF generate, token by token under HF "
                          "teacher forcing")
    delta = settings.pick(1e-4, 0.15)
    why = ("project choice: fp32 on both sides differs by summation order only (~1e-6 nats)" if settings.smoke else
           "project choice: bf16 logits carry ~0.4% relative rounding (0.03-0.06 nats at logits of 8-16) in each "
           "engine; 0.15 nats allows a few roundings and counts a choice between near-tied tokens as greedy")
    r.tolerances = [Tolerance("near_tie_delta_nats", delta, why), Tolerance("logprob_max_abs_diff", delta, why)]
    r.rule = (f"every candidate token within {delta} nats of HF's best allowed token (teacher forcing on its own "
              f"prefix), and reported log-probs within {delta} of HF's")
    if not settings.smoke and importlib.util.find_spec("vllm") is None:
        return r.skip(VLLM_MISSING)
    dtype = settings.pick("fp32", "bf16")
    model, processor = inputs.load(settings, dtype, "sdpa" if settings.smoke else "auto")
    model.eval()
    suppressed = suppressed_tokens(processor, model)
    reqs = requests(settings)
    max_new = settings.pick(8, 24)
    reference = hf_generate(model, processor, reqs, max_new, suppressed, batched=True)
    if settings.smoke:
        candidate, cand_lp = hf_generate(model, processor, reqs, max_new, suppressed, batched=False), None
        r.exercised = ("CPU smoke stand-in (vLLM not run): HF generate one prompt at a time vs the left-padded batch, "
                       "fp32, cpu")
    else:
        candidate, cand_lp = vllm_generate(settings, reqs, max_new, suppressed)
        r.exercised = (f"vLLM (own process, bf16, enforce_eager, logit_bias on {len(suppressed)} vision tokens) vs HF "
                       f"generate ({model.config._attn_implementation}, bf16), cuda")
    m = judge(model, processor, reqs, candidate, cand_lp, reference, suppressed, delta)
    m["max_new_tokens"] = max_new
    m["headline"] = ["near_greedy_share", "exact_completions", "logprob_max_abs_diff"]
    r.measured = m
    ok = {"near-greedy tokens": m["near_greedy_share"] == 1.0 and m["tokens"] > 0}
    if cand_lp is not None:
        ok["log-probs agree"] = m["logprob_max_abs_diff"] <= delta
    del model
    inputs.free(settings)
    return r.decide(ok)
