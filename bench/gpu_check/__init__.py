"""``make gpu-check`` (``python -m bench.gpu_check``): what a CPU cannot check, on one machine with GPUs.

Checks (each a module with one ``run``; the pass rules and tolerances are in the modules and in
bench/gpu_results.json):

- ``packing`` (c_packing.py): flash-attn varlen packed rows = every sample alone, loss and gradients, and
  exact isolation between packed samples;
- ``bf16_loss``, ``bf16_update`` (c_precision.py): bf16 vs fp32 loss/gradients, and how much of an optimizer
  update survives on bf16 weights;
- ``rollout`` (c_rollout.py): vLLM greedy rollouts vs HF generate;
- ``zero3`` (c_zero3.py): DeepSpeed ZeRO-3 over NCCL on all visible GPUs = one GPU;
- ``throughput_sft``, ``throughput_grpo`` (c_throughput.py): tokens/s per GPU and MFU, beside the anchors;
- ``memory_grpo`` (c_memory.py): one full-length GRPO micro-batch of the recipe, peak memory vs train/memory.py.

Without a GPU it prints one line and exits 0. ``--device cpu --allow-cpu`` runs every check's comparison code
on the CPU with the documented fallbacks (tests only; never written to bench/gpu_results.json).
"""

CHECKS = ("packing", "precision", "rollout", "zero3", "throughput", "memory")
"""Check groups in run order (``--only``); precision gives bf16_loss + bf16_update, throughput gives
throughput_sft + throughput_grpo."""
