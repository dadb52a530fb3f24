"""External harness: lmms-eval on saved checkpoints, in a separate process.

Training never waits for it: the process is started in its own session with its output in
``<run>/eval/lmms_eval/<label>/`` (``command.json``, ``lmms_eval.log`` and lmms-eval's own results).
lmms-eval pins its own dependencies and downloads its datasets from the Hugging Face hub, so it
usually lives in a separate environment (``eval.lmms_eval_python``; scripts/lmms/setup_env.sh makes one layered on
.venv) on a machine with network access, or reads a local copy of the task data (``eval.lmms_eval_data``,
:mod:`eval_hooks.lmms_data`).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from eval_hooks import layout
from eval_hooks.io import atomic_write_json

log = logging.getLogger(__name__)

def lmms_model_name(checkpoint: str | Path, requested: str = "auto") -> str:
    """The lmms-eval ``--model`` for ``checkpoint``: its family's wrapper (train/models/, from config.json)
    unless given."""
    if requested != "auto":
        return requested
    from train.models import UnsupportedFamily, family_for_checkpoint

    cfg_file = Path(checkpoint) / "config.json"
    if not cfg_file.is_file():
        raise FileNotFoundError(f"{cfg_file} not found: set eval.lmms_eval_model for a checkpoint without config.json")
    try:
        family = family_for_checkpoint(str(checkpoint))
    except UnsupportedFamily as exc:
        raise ValueError(f"{exc}; or set eval.lmms_eval_model") from None
    if family.lmms_model is None:
        raise ValueError(f"{checkpoint}: no lmms-eval model known for the {family.name} family; set eval.lmms_eval_model")
    return family.lmms_model


def build_command(eval_cfg: Any, checkpoint: str | Path, output_path: str | Path) -> list[str]:
    """The lmms-eval command line for one checkpoint (an argv list; nothing goes through a shell)."""
    if not eval_cfg.lmms_eval_tasks:
        raise ValueError("eval.lmms_eval_tasks is empty")
    model_args = f"pretrained={Path(checkpoint).resolve()}"
    if eval_cfg.lmms_eval_model_args:
        model_args += "," + eval_cfg.lmms_eval_model_args
    python = eval_cfg.lmms_eval_python or sys.executable
    return [python, "-m", "lmms_eval",
            "--model", lmms_model_name(checkpoint, eval_cfg.lmms_eval_model),
            "--model_args", model_args,
            "--tasks", ",".join(eval_cfg.lmms_eval_tasks),
            "--batch_size", "1",
            "--output_path", str(Path(output_path).resolve()),
            "--log_samples",
            *eval_cfg.lmms_eval_args]


def command_env(eval_cfg: Any) -> dict[str, str]:
    env = dict(os.environ)
    # torchrun's variables would make lmms-eval think it is one rank of the training job
    for var in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                "GROUP_RANK", "ROLE_RANK", "TORCHELASTIC_RUN_ID"):
        env.pop(var, None)
    if eval_cfg.lmms_eval_devices is not None:
        env["CUDA_VISIBLE_DEVICES"] = eval_cfg.lmms_eval_devices
    if eval_cfg.lmms_eval_data is not None:  # the local copy of the task data, offline (eval_hooks/lmms_data.py)
        from eval_hooks.lmms_data import environment

        env.update(environment(eval_cfg.lmms_eval_data))
    return env


def results_of(output_dir: str | Path) -> list[Path]:
    """lmms-eval's ``*_results.json`` files under ``output_dir``, oldest first (lmms-eval exits 0 even when the
    evaluation failed: a run without one did not finish)."""
    return sorted(Path(output_dir).glob("*/*_results.json"), key=lambda p: p.stat().st_mtime)


def samples_of(output_dir: str | Path, task: str) -> list[dict[str, Any]]:
    """The per-record log (``--log_samples``) of ``task`` in lmms-eval's latest result under ``output_dir``:
    one dict per document (``doc_id``, ``filtered_resps``, the task's metric with its per-record score, ...)."""
    import json

    results = results_of(output_dir)
    if not results:
        raise FileNotFoundError(f"{output_dir}: no lmms-eval results (see lmms_eval.log there)")
    stem = results[-1].name[: -len("_results.json")]
    path = results[-1].parent / f"{stem}_samples_{task}.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no per-record log of {task} (run lmms-eval with --log_samples)")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class LmmsEvalLauncher:
    """Starts lmms-eval processes for checkpoints without waiting for them."""

    def __init__(self, eval_cfg: Any, run_dir: str | Path):
        self.cfg = eval_cfg
        self.root = Path(run_dir) / layout.EVAL_DIR / "lmms_eval"
        self.running: list[tuple[str, subprocess.Popen]] = []
        self.skipped: list[str] = []

    def _poll(self) -> None:
        self.running = [(label, p) for label, p in self.running if p.poll() is None]

    def launch(self, checkpoint: str | Path, label: str) -> subprocess.Popen | None:
        """Start lmms-eval on ``checkpoint``; None (logged, recorded) when too many already run."""
        self._poll()
        if len(self.running) >= self.cfg.lmms_eval_max_running:
            log.warning("lmms-eval: %d process(es) still running (eval.lmms_eval_max_running=%d); not evaluating %s",
                        len(self.running), self.cfg.lmms_eval_max_running, checkpoint)
            self.skipped.append(str(checkpoint))
            return None
        out = self.root / label
        env = command_env(self.cfg)  # a missing eval.lmms_eval_data copy fails here, before anything starts
        out.mkdir(parents=True, exist_ok=True)
        cmd = build_command(self.cfg, checkpoint, out)
        atomic_write_json(out / "command.json", {"argv": cmd, "checkpoint": str(checkpoint)})
        with open(out / "lmms_eval.log", "ab") as logf:
            proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True)
        log.info("lmms-eval started for %s (pid %d), log: %s", checkpoint, proc.pid, out / "lmms_eval.log")
        self.running.append((label, proc))
        return proc

    def still_running(self) -> list[str]:
        self._poll()
        return [label for label, _ in self.running]
