"""The runs the multi-node tests compare: one SFT configuration (ZeRO-3 unless changed, 12 steps, a checkpoint
every 4) and its single-node references (torchrun --nproc_per_node 2 on this machine: the same 2 ranks and the
same global batch as 2 nodes x 1 process), built once per test session and shared by the torchrun and Slurm
tests."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from safetensors.torch import load_file
from test_sft_dist import child_env, free_port, tail

REPO = Path(__file__).resolve().parents[1]
STEPS, SAVE_EVERY = 12, 4
# The lead's dist_size_corr recipe on the tiny model; lr 1e-3 (no warm-up) so that 12 steps move the weights far
# more than the 1e-5 tolerance of the comparison.
SFT_OVERRIDES = {"model.name_or_path": "tiny-qwen2.5-vl", "train.max_steps": STEPS, "train.save_steps": SAVE_EVERY,
                 "train.per_device_batch_size": 2, "train.grad_accum": 1, "optim.lr": 1e-3, "optim.warmup_ratio": 0,
                 "train.num_threads": 1, "train.logging_steps": 1, "train.report_to": "[jsonl]", "eval.bench": "null",
                 "data.decontaminate": "off",
                 "train.deepspeed": "zero3"}
SFT_RECIPE = "dist_size_corr"
TOLERANCE = 1e-5

_REFERENCES: dict[str, Path] = {}


def sft_args(data_root: Path, out: Path, **changes) -> list[str]:
    """launch/sft.py and its arguments for the shared configuration (``changes``: dotted keys with _ for .)."""
    values = {**SFT_OVERRIDES, "data.root": data_root, "train.output_dir": out, "train.resume": "auto",
              **{k.replace("__", "."): v for k, v in changes.items()}}
    return [str(REPO / "launch" / "sft.py"), f"recipe={SFT_RECIPE}", *(f"{k}={v}" for k, v in values.items())]


def worker_env() -> dict[str, str]:
    """The torchrun environment of the tests (DeepSpeed CPU accelerator, one thread, the shm op cache).

    DeepSpeed builds its CPU shm op on first use, in the ranks, while the other ranks wait in a collective. The
    cache is per interpreter here: environments at other paths share ~/.cache/torch_extensions, and each one's
    build rewrites the op for its own include paths, so the next rank of this one rebuilds it (over a minute on 2
    cores, longer than the killed run's collective timeout). An explicit TORCH_EXTENSIONS_DIR wins."""
    env = child_env()
    if "TORCH_EXTENSIONS_DIR" not in os.environ:
        key = hashlib.sha1(sys.prefix.encode()).hexdigest()[:10]
        env["TORCH_EXTENSIONS_DIR"] = str(Path.home() / ".cache" / "torch_extensions" / f"py-{key}")
    return env


def single_node_sft_reference(tmp_path_factory, data_root: Path, stage: str = "zero3") -> Path:
    """The uninterrupted single-node run (1 node x 2 processes) of the shared configuration under DeepSpeed
    ``stage``, once per session. (ZeRO-2 and ZeRO-3 sum the gradients in another order: after 12 steps at lr 1e-3
    they differ by up to ~1e-5, so every run is compared with the reference of its own stage.)"""
    if stage not in _REFERENCES:
        out = tmp_path_factory.mktemp(f"sft_single_node_{stage}") / "out"
        log = out.parent / "log.txt"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
               str(free_port()), *sft_args(data_root, out, train__deepspeed=stage)]
        with open(log, "w") as f:
            proc = subprocess.run(cmd, cwd=REPO, env=worker_env(), stdout=f, stderr=subprocess.STDOUT, timeout=900)
        assert proc.returncode == 0, f"single-node {stage} reference failed; tail of {log}:\n{tail(log)}"
        _REFERENCES[stage] = out
    return _REFERENCES[stage]


def max_weight_diff(a: Path, b: Path) -> float:
    """The largest absolute difference between two saved models (same tensor names required)."""
    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert wa.keys() == wb.keys(), sorted(set(wa) ^ set(wb))[:5]
    return max((wa[k].float() - wb[k].float()).abs().max().item() for k in wa)


def assert_same_weights(got: Path, ref: Path, start: Path, what: str) -> float:
    """``got`` equals ``ref`` within TOLERANCE, and ``ref`` really moved away from ``start``; returns the diff."""
    diff = max_weight_diff(got, ref)
    assert diff <= TOLERANCE, f"{what}: final weights differ from the single-node run by {diff:.3g} (> {TOLERANCE})"
    w0, w1 = load_file(str(start / "model.safetensors")), load_file(str(ref / "model.safetensors"))
    moved = min((w1[k] - w0[k]).abs().max().item() for k in w0 if k.startswith("model.layers."))
    assert moved > 100 * TOLERANCE, f"the reference barely trained (smallest layer change {moved:.3g})"
    return diff

