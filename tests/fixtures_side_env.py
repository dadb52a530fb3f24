"""The side environments that pin what `.venv` cannot hold (verl, lmms-eval): built or completed by their
`scripts/<name>/setup_env.sh` (idempotent), skipped with a loud reason only when pip cannot reach the registry."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def side_env(name: str, timeout: int) -> Path:
    """``.venv-<name>``'s interpreter, after scripts/<name>/setup_env.sh made sure the environment is complete."""
    proc = subprocess.run(["bash", str(REPO / "scripts" / name / "setup_env.sh")], capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-2000:]
        if "Could not find a version" in tail or "No matching distribution" in tail or "connection" in tail.lower():
            pytest.skip(f"{name.upper()} ENVIRONMENT COULD NOT BE INSTALLED (pip cannot reach the registry): {tail}")
        raise AssertionError(f"scripts/{name}/setup_env.sh failed:\n{tail}")
    return REPO / f".venv-{name}" / "bin" / "python"
