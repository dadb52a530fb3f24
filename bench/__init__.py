"""Side-by-side performance harness: ``python -m bench`` (``make bench``); see docs/PERFORMANCE.md.

Each benchmark measures ours and a baseline in the same run, interleaved, and reports the ratio.
"""

# name -> module with ``run(ctx) -> list[Figure]``; the order is the order of a full run. Adding a benchmark is one
# line here. Optional in the module: ``METHOD = n`` (raise it when what the benchmark measures changes: the drift
# guard then stops comparing its baselines with older runs) and known-answer checks on its figures
# (``pair_figure(..., checks=[bench.harness.known_answer(...)])``).
BENCHMARKS: dict[str, str] = {
    "rewards": "bench.b_rewards",
    "packing": "bench.b_packing",
    "data": "bench.b_data",
    "sft": "bench.b_sft",
    "grpo": "bench.b_grpo",
    "eval": "bench.b_eval",
    "report_page": "bench.b_report_page",
    "decontam": "bench.b_decontam",
}
