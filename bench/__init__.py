"""Side-by-side performance harness: ``python -m bench`` (``make bench``); see docs/PERFORMANCE.md.

Each benchmark measures ours and a baseline in the same run, interleaved, and reports the ratio.
"""

# name -> module with ``run(ctx) -> list[Figure]``; the order is the order of a full run.
BENCHMARKS: dict[str, str] = {
    "rewards": "bench.b_rewards",
    "packing": "bench.b_packing",
    "data": "bench.b_data",
    "sft": "bench.b_sft",
    "grpo": "bench.b_grpo",
    "eval": "bench.b_eval",
    "decontam": "bench.b_decontam",
}
