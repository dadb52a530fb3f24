"""Child processes of the GPU check: ``torchrun --standalone`` (a free rendezvous port of its own) or plain python,
each with its log file under the run's log folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench.gpu_check.record import Settings

REPO = Path(__file__).resolve().parents[2]


def child_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false",
               HF_HUB_OFFLINE=os.environ.get("HF_HUB_OFFLINE", "1"), WANDB_MODE=os.environ.get("WANDB_MODE", "offline"))
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    if settings.smoke:
        env["DS_ACCELERATOR"] = "cpu"
        env.setdefault("TORCH_EXTENSIONS_DIR", str(Path.home() / ".cache" / "torch_extensions"))
    return env


def run_child(settings: Settings, label: str, module: str, args: list[str], nproc: int | None) -> None:
    """``python -m module args`` (``nproc`` None) or under ``torchrun --standalone --nproc_per_node nproc``;
    raises with the end of its log when it exits non-zero."""
    launcher = [] if nproc is None else ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc)]
    cmd = [sys.executable, *launcher, "-m", module, *args]
    log = settings.logs() / f"{label}.log"
    with open(log, "w") as f:
        try:
            proc = subprocess.run(cmd, cwd=REPO, env=child_env(settings), stdout=f, stderr=subprocess.STDOUT,
                                  timeout=settings.timeout)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{label}: timed out after {settings.timeout:.0f} s; see {log}") from None
    if proc.returncode:
        tail = "\n".join(log.read_text().splitlines()[-20:])
        raise RuntimeError(f"{label} exited {proc.returncode}; end of {log}:\n{tail}")
