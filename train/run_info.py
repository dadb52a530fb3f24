"""What every run writes about itself: the resolved recipe, the git commit, package versions."""

from __future__ import annotations

import platform
import socket
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from eval_hooks.io import atomic_write_json
from train.recipe import REPO_ROOT, to_yaml

if TYPE_CHECKING:
    from train.config import Recipe

MAIN_PACKAGES = ("torch", "torchvision", "transformers", "trl", "peft", "deepspeed", "datasets",
                 "accelerate", "omegaconf", "wandb", "flash-attn", "vllm", "verl", "numpy")


def git_commit(root: Path = REPO_ROOT) -> dict:
    """Commit hash and whether the tree had uncommitted changes (None outside a checkout)."""
    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                                  timeout=10, check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None
    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def package_versions() -> dict[str, str | None]:
    out = {}
    for name in MAIN_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def write_run_info(recipe: Recipe, run_dir: str | Path, launcher: str, decontamination: dict | None = None) -> Path:
    """Write recipe.yaml and run_info.json into ``run_dir``; return the directory. ``decontamination``: what the
    check before the run read and found (data_mix.decontam.run_record)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "recipe.yaml").write_text(to_yaml(recipe))
    info = {
        "launcher": launcher,
        "argv": sys.argv,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": socket.gethostname(),
        "python": platform.python_version(),
        "git": git_commit(),
        "packages": package_versions(),
    }
    if decontamination is not None:
        info["decontamination"] = decontamination
    atomic_write_json(run_dir / "run_info.json", info)
    return run_dir
