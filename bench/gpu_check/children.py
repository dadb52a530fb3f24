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
        # A session of its own: on a timeout the whole tree goes (torchrun's workers included), not just torchrun.
        proc = subprocess.Popen(cmd, cwd=REPO, env=child_env(settings), stdout=f, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            code = proc.wait(timeout=settings.timeout)
        except subprocess.TimeoutExpired:
            stop_group(proc)
            raise RuntimeError(f"{label}: timed out after {settings.timeout:.0f} s; see {log}") from None
        except BaseException:  # interrupted (Ctrl-C, SIGTERM): take the child's tree down too
            stop_group(proc)
            raise
    if code:
        tail = "\n".join(log.read_text().splitlines()[-20:])
        raise RuntimeError(f"{label} exited {code}; end of {log}:\n{tail}")


def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM to the child's process group (torchrun's agent then stops its workers), SIGKILL after 10 s."""
    import signal

    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
