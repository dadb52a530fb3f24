"""vLLM greedy rollouts in a process of their own (GPU memory, vLLM's engine processes, a crash stays here).

    python -m bench.gpu_check.rollout_child JOB.json RESULT.json

JOB: {"model": dir, "requests": [{"messages": [...], "images": [paths]}], "max_new": n, "suppressed": [ids]}.
RESULT: {"completions": [[ids]], "logprobs": [[log-prob of each chosen token]]}. The suppression uses the
same ``train.grpo.trl_backend.suppression_kwargs`` as the GRPO trainer's vLLM rollouts.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(job_path: str, result_path: str) -> int:
    from PIL import Image
    from transformers import AutoProcessor
    from vllm import LLM, SamplingParams

    from train.grpo.trl_backend import suppression_kwargs
    from train.models import render_chat

    job = json.loads(Path(job_path).read_text())
    processor = AutoProcessor.from_pretrained(job["model"])
    llm = LLM(model=job["model"], dtype="bfloat16", gpu_memory_utilization=0.3, enforce_eager=True,
              max_model_len=2048, seed=0, limit_mm_per_prompt={"image": 1})
    params = SamplingParams(temperature=0.0, max_tokens=job["max_new"], logprobs=0,
                            **suppression_kwargs(job["suppressed"], use_vllm=True))
    prompts = []
    for req in job["requests"]:
        prompt = {"prompt": render_chat(processor, req["messages"], add_generation_prompt=True)}
        if req["images"]:
            prompt["multi_modal_data"] = {"image": Image.open(req["images"][0]).convert("RGB")}
        prompts.append(prompt)
    outputs = llm.generate(prompts, params)
    completions, logprobs = [], []
    for out in outputs:
        seq = out.outputs[0]
        ids = list(seq.token_ids)
        completions.append(ids)
        logprobs.append([float(step[tok].logprob) for step, tok in zip(seq.logprobs or [], ids)])
    Path(result_path).write_text(json.dumps({"completions": completions, "logprobs": logprobs}))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
