"""The launchers run under the project's .venv whatever python starts them (launch/_env.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LAUNCHERS = sorted(p.name for p in (REPO / "launch").glob("*.py") if not p.name.startswith("_"))


def _foreign_python() -> str:
    """A python that is not the project's venv and lacks its packages (the system python)."""
    for cand in ("/usr/bin/python3", shutil.which("python3") or ""):
        if cand and Path(cand).exists():
            probe = subprocess.run([cand, "-c", "import omegaconf"], capture_output=True)
            if probe.returncode != 0:
                return cand
    pytest.skip("SKIPPED LOUDLY: no python without the project's packages on this machine")


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, **extra}


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_every_launcher_calls_the_venv_check_first(launcher):
    text = (REPO / "launch" / launcher).read_text()
    head = text[:text.index("use_project_venv(")]
    assert "from launch._env import use_project_venv" in head
    assert not any(line.startswith(("from train", "from eval_hooks", "from data_mix", "from sweeps"))
                   for line in head.splitlines()), "a project import runs before the venv check"


def test_a_foreign_python_is_re_executed_under_the_venv():
    if not (REPO / ".venv" / "bin" / "python").exists():
        pytest.skip("SKIPPED LOUDLY: this checkout has no .venv")
    proc = subprocess.run([_foreign_python(), str(REPO / "launch" / "sft.py"), "optim.lr=0"], capture_output=True,
                          text=True, env=_env(), cwd=REPO, timeout=120)
    # the recipe check ran (omegaconf imported): only possible under the venv's python
    assert proc.returncode == 2 and proc.stderr.strip() == "launch/sft.py: error: optim.lr=0.0 must be in (0, inf): Learning rate of the language model."


def test_without_the_venv_one_line_says_how_to_set_it_up():
    proc = subprocess.run([_foreign_python(), str(REPO / "launch" / "evaluate.py"), "eval.bench=x"], capture_output=True,
                          text=True, env=_env(SPATIALTREE_NO_VENV="1"), cwd=REPO, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("launch/evaluate.py: error:") and "make setup" in lines[0]
    assert "omegaconf" in lines[0]
