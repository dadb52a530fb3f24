"""The machine a benchmark ran on: CPU, cores, RAM, load, library versions, threads, git commit."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = ("torch", "torchvision", "transformers", "trl", "datasets", "accelerate", "deepspeed", "numpy", "pillow",
            "tokenizers", "safetensors", "peft", "pyarrow", "huggingface-hub", "pyyaml", "lmms-eval")
"""Every library on the measured paths (model, data, trainers, the reference scorer): the drift guard compares a
baseline with the committed run only when all of these match."""
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
"""CPU features that decide which kernels torch/oneDNN use (bf16 without avx512_bf16/AMX is emulated, slowly)."""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _git_commit(repo: Path) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode:
        return None
    return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def _cpu_flags() -> dict[str, bool]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                present = set(line.split(":", 1)[1].split())
                return {flag: flag in present for flag in CPU_FLAGS}
    except OSError:
        pass
    return {}


def kernels() -> dict:
    """Which CPU kernels torch picks here: ATen's vector ISA, whether oneDNN runs bf16 natively, the overriding
    environment variables (ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA)."""
    import torch

    cap = getattr(torch.backends.cpu, "get_cpu_capability", lambda: None)()
    bf16 = getattr(getattr(torch.ops, "mkldnn", None), "_is_mkldnn_bf16_supported", None)
    return {"aten_cpu_capability": cap, "mkldnn_bf16_supported": bool(bf16()) if bf16 else None,
            "cpu_flags": _cpu_flags(),
            "env": {k: os.environ[k] for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA",
                                               "OMP_NUM_THREADS") if k in os.environ}}


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def describe(repo: Path, threads: int) -> dict:
    """A JSON-able description of this machine and software stack."""
    import torch

    return {
        "cpu": _cpu_model(),
        "cores_visible": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "ram_gib": _ram_gib(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "os": platform.platform(),
        "python": platform.python_version(),
        "packages": {name: _version(name) for name in PACKAGES},
        "kernels": kernels(),
        "torch_threads": threads,
        "load_average_at_start": load_average(),
        "git_commit": _git_commit(repo),
    }
