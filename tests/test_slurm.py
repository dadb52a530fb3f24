"""A real Slurm on localhost: the quickstart sweep as one job array, a forced requeue that resumes,
--status and the report on the results. The cluster is installed (apt) and started by the module
fixture and stopped at teardown. Skipped, loudly, only where neither Slurm nor root + apt-get exist.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
from fixtures_wait import wait_until

from eval_hooks.report import summary_path
from tests.fixtures_sweep import STANDIN

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts/slurm/local_cluster.sh"
QUICKSTART = REPO / "recipes/sweeps/quickstart.yaml"
# The quickstart made cheap enough for CI: a few steps, tiny evaluations (still real SFT + evaluation).
QUICK_SETS = ["train.max_steps=4", "train.per_device_batch_size=4", "train.save_steps=2", "eval.every_steps=2",
              "eval.max_samples_per_leaf=2", "eval.max_new_tokens=8"]


def _slurm_installed() -> bool:
    return all(shutil.which(b) for b in ("slurmctld", "slurmd", "sbatch", "munged"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sh(*args: str, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=timeout)


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=kw.pop("timeout", 120), **kw)



@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A single-node Slurm (5 declared CPUs: the tiny jobs are single-threaded) on free ports; SLURM_CONF set."""
    if not _slurm_installed() and (os.geteuid() != 0 or shutil.which("apt-get") is None):
        reason = ("Slurm is not installed and cannot be installed here (needs root and apt-get): the real-Slurm "
                  "tests (job array, requeue) did NOT run")
        warnings.warn(reason, stacklevel=1)
        print(f"\n!!! WARNING: {reason} !!!", file=sys.stderr)
        pytest.skip(reason)
    state = tmp_path_factory.mktemp("slurm")
    env = dict(os.environ, SPATIALTREE_SLURM_DIR=str(state), SPATIALTREE_SLURM_CPUS="6",
               SPATIALTREE_SLURM_CTLD_PORT=str(_free_port()), SPATIALTREE_SLURM_SLURMD_PORT=str(_free_port()))
    start = time.monotonic()
    out = _sh("install", env=env)
    assert out.returncode == 0, f"local_cluster.sh install failed:\n{out.stderr}"
    installed = time.monotonic() - start
    out = _sh("start", env=env, timeout=120)
    assert out.returncode == 0, f"local_cluster.sh start failed:\n{out.stderr}\n{_logs(state)}"
    conf = out.stdout.strip().split("=", 1)[1]
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = conf
    print(f"local Slurm: install {installed:.1f} s, up after {time.monotonic() - start:.1f} s ({conf})")
    try:
        yield {"env": dict(env, SLURM_CONF=conf), "state": state}
    finally:
        stop = _sh("stop", env=env)
        if old is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = old
        assert stop.returncode == 0, stop.stderr
        assert _sh("status", env=env).returncode == 3, "the cluster still runs after stop"
        for pid_file in ("slurmctld.pid", "slurmd.pid"):
            assert not (state / pid_file).exists()


def _logs(state: Path) -> str:
    return "\n".join(f"--- {p}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted((state / "log").glob("*.log")))


@pytest.fixture(scope="module")
def standin_data(tmp_path_factory) -> Path:
    """Small stand-in data for every registry source (rows with 56x56 images), made in about a second."""
    from tests.fixtures_data import make_standin_like

    root = tmp_path_factory.mktemp("standin")
    general = ("llava_onevision_si", "llava_next_interleave", "llava_next_interleave_3d", "llava_video")
    # general : ability = 3 : 1 over one epoch of the ability data needs ~3x its rows in general data
    return make_standin_like(root, REPO / "recipes/data/registry.yaml", default_rows=24,
                             rows_per_source={name: 64 for name in general})


@pytest.fixture(scope="module")
def submitted(cluster, standin_data, tmp_path_factory):
    """Three sweeps submitted at once (they run side by side on the declared CPUs while the tests
    drive them): a real SFT run to pre-empt, a stand-in counter to requeue twice, the quickstart."""
    root = tmp_path_factory.mktemp("sweeps")
    requeue_yaml = root / "requeue.yaml"
    fast = root / "requeue.fast"
    requeue_yaml.write_text(f"""
name: requeue_test
defaults:
  launcher: {STANDIN.relative_to(REPO)}
  slurm: {{gpus_per_node: 0, cpus_per_task: 1, time: "10:00", signal_secs: 60}}
runs:
  - {{name: counter, overrides: {{standin.steps: 4000, standin.step_secs: 0.25, standin.fast_file: {fast}}}}}
  - {{name: first, overrides: {{standin.steps: 3}}}}
  - {{name: second, overrides: {{standin.steps: 3, standin.init: "{{run:first}}"}}}}
""")
    sft_yaml = root / "sft_requeue.yaml"
    sft_yaml.write_text(f"""
name: sft_requeue
defaults:
  launcher: sft
  overrides: {{model.name_or_path: tiny-qwen2.5-vl, data.root: {standin_data}, mix.upsample: true,
              mix.budget.unit: samples, mix.budget.value: 4000, mix.budget.group: null,
              mix.budget.match_recipe: null, train.max_steps: 400, train.per_device_batch_size: 2,
              train.grad_accum: 1, train.save_steps: 0, train.num_threads: 1, train.report_to: [jsonl],
              train.logging_steps: 1, eval.bench: null, data.decontaminate: "off"}}
  slurm: {{gpus_per_node: 0, cpus_per_task: 1, time: "10:00", signal_secs: 60}}
runs:
  - {{name: sft, recipe: dist}}
""")
    dirs = {"root": root, "requeue": root / "requeue", "quickstart": root / "quickstart", "fast": fast,
            "sft_requeue": root / "sft_requeue"}
    for name, spec in (("sft_requeue", sft_yaml), ("requeue", requeue_yaml)):
        out = _run([sys.executable, "launch/sweep.py", str(spec), "--submit", "--sweep-dir", str(dirs[name])])
        assert out.returncode == 0, out.stderr
    sets = [a for s in [f"data.root={standin_data}", *QUICK_SETS] for a in ("--set", s)]
    out = _run([sys.executable, "launch/sweep.py", str(QUICKSTART), "--submit", "--sweep-dir",
                str(dirs["quickstart"]), *sets])
    assert out.returncode == 0, out.stderr
    assert "submitted quickstart: job" in out.stdout and "tasks 0=baseline, 1=dist, 2=dist_size_corr" in out.stdout
    return dirs


def _job_of(sweep_dir: Path, run: str) -> str:
    return json.loads((sweep_dir / "sweep.json").read_text())["runs"][run]["job"]


def _ckpt_step(run_dir: Path) -> int:
    try:
        return json.loads((run_dir / "standin_ckpt.json").read_text())["step"]
    except (FileNotFoundError, json.JSONDecodeError):
        return 0


def _attempts(run_dir: Path) -> list[dict]:
    path = run_dir / "attempts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _train_steps(run_dir: Path) -> list[int]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    return [row["step"] for row in map(json.loads, path.read_text().splitlines()) if "train/loss" in row]


def _sft_log(run_dir: Path) -> str:
    path = run_dir / "job.log"
    return path.read_text(errors="replace")[-6000:] if path.exists() else "(no job.log)"


def test_real_sft_checkpoints_on_the_time_limit_signal(submitted):
    """The SFT trainer itself under the batch script: SIGUSR1 (the time-limit warning) through the
    batch shell -> checkpoint + exit 0 -> the task requeues itself. (The requeued attempt starts
    while the next tests run; test_real_sft_resumes_from_its_checkpoint checks it.)"""
    sweep_dir = submitted["sft_requeue"]
    run_dir = sweep_dir / "runs/sft"
    job = _job_of(sweep_dir, "sft")
    wait_until(lambda: len(_train_steps(run_dir)) >= 2, 240, "the SFT run to log two training steps",
          lambda: _sft_log(run_dir))
    out = _run(["scancel", "--batch", "--signal=USR1", job])
    assert out.returncode == 0, out.stderr
    wait_until(lambda: "requeueing" in _sft_log(run_dir), 120, "the pre-empted SFT task to requeue itself",
          lambda: _sft_log(run_dir))
    assert "pre-empted at step" in _sft_log(run_dir)
    assert sorted(run_dir.glob("checkpoint-*")), "the pre-empted attempt saved no checkpoint"
    assert not (run_dir / "DONE").exists() and not (run_dir / "FAILED").exists()


def test_forced_requeue_and_time_limit_signal_resume(submitted):
    """scontrol requeue (pre-emption: SIGTERM) and SIGUSR1 to the batch shell (time-limit warning):
    both times the task checkpoints, runs again and resumes from its checkpoint."""
    sweep_dir = submitted["requeue"]
    run_dir = sweep_dir / "runs/counter"
    job = _job_of(sweep_dir, "counter")
    log = lambda: _sft_log(run_dir)  # noqa: E731

    wait_until(lambda: _ckpt_step(run_dir) >= 3, 120, "the first attempt to checkpoint step 3", log)
    out = _run(["scontrol", "requeue", job])
    assert out.returncode == 0, out.stderr
    wait_until(lambda: len(_attempts(run_dir)) >= 2 and _ckpt_step(run_dir) > _attempts(run_dir)[1]["start_step"] + 2,
          120, "the requeued attempt to resume and progress", log)

    status = _run([sys.executable, "launch/sweep.py", "--status", "--sweep-dir", str(sweep_dir)])
    assert status.returncode == 0 and "running" in status.stdout, status.stdout

    out = _run(["scancel", "--batch", "--signal=USR1", job])  # what --signal=B:USR1@secs delivers
    assert out.returncode == 0, out.stderr
    wait_until(lambda: len(_attempts(run_dir)) >= 3, 120, "the third attempt after the USR1 requeue", log)
    submitted["fast"].touch()  # the remaining steps now take no time
    wait_until(lambda: (run_dir / "DONE").exists(), 120, "the run to finish", log)

    attempts = _attempts(run_dir)
    assert len(attempts) == 3, attempts
    assert [a["restart"] for a in attempts] == [None, "1", "2"]
    assert 0 < attempts[1]["start_step"] < attempts[2]["start_step"] < 4000
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 4001)), "every step exactly once across the three attempts"
    text = (run_dir / "job.log").read_text(errors="replace")
    assert "stopped by SIGTERM" in text and "SIGUSR1" in text and "requeueing" in text and "=== run counter done" in text
    assert all(a["args"][-1] == "train.resume=auto" for a in attempts)
    assert not (run_dir / "FAILED").exists()


def test_quickstart_array_runs_every_task_and_writes_summaries(submitted):
    sweep_dir = submitted["quickstart"]
    names = ["baseline", "dist", "dist_size_corr"]
    out = _run([sys.executable, "launch/sweep.py", "--status", "--sweep-dir", str(sweep_dir)])
    assert out.returncode == 0

    def all_over() -> bool:
        st = _run([sys.executable, "launch/sweep.py", "--status", "--sweep-dir", str(sweep_dir)]).stdout
        return all(f"{n} " in st for n in names) and " pending " not in st and " running " not in st

    def logs() -> str:
        return "\n".join(f"--- {n}\n" + "\n".join((sweep_dir / "runs" / n / "job.log").read_text(errors="replace")
                                                    .splitlines()[-30:])
                         for n in names if (sweep_dir / "runs" / n / "job.log").exists())

    wait_until(all_over, 400, "the quickstart array to finish", logs)
    state = json.loads((sweep_dir / "sweep.json").read_text())
    [sub] = state["submissions"]
    assert sub["array"] == "quickstart" and sub["tasks"] == {"0": "baseline", "1": "dist", "2": "dist_size_corr"}
    assert "#SBATCH --array=0-2\n" in Path(sub["script"]).read_text()
    status = _run([sys.executable, "launch/sweep.py", "--status", "--sweep-dir", str(sweep_dir)]).stdout
    assert "3 done" in status, status + logs()
    for i, name in enumerate(names):
        run_dir = sweep_dir / "runs" / name
        assert state["runs"][name]["job"] == f"{sub['job_id']}_{i}"
        assert (run_dir / "DONE").exists(), logs()
        summary = summary_path(run_dir)
        assert summary is not None, f"{name} wrote no summary.json"
        assert json.loads(summary.read_text())["step"] in (4, "final")
        steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()
                 if "bench/overall" in line]
        assert steps[0] == 0 and steps[-1] == 4 and 2 in steps, steps
        assert (run_dir / "model.safetensors").exists() and (run_dir / "train_summary.json").exists()
        assert "attempt 0, 1 node(s)" in (run_dir / "job.log").read_text(errors="replace")

    # resubmitting skips the finished runs
    again = _run([sys.executable, "launch/sweep.py", str(QUICKSTART), "--submit", "--sweep-dir", str(sweep_dir),
                  "--no-validate"])
    assert again.returncode == 0 and "nothing to submit" in again.stdout
    assert len(json.loads((sweep_dir / "sweep.json").read_text())["submissions"]) == 1

    # the report on the real results: table + figures
    rep = _run([sys.executable, "launch/report.py", str(sweep_dir)])
    assert rep.returncode == 0, rep.stderr
    for f in ("table.md", "table.csv", "deltas_heatmap.png", "learning_curves.png"):
        assert (sweep_dir / "report" / f).stat().st_size > 0, f
    # the correlation figure is drawn only over abilities that vary across enough runs; else the report says why
    corr = sweep_dir / "report" / "ability_correlation.png"
    assert (corr.is_file() and corr.stat().st_size > 0) or "ability_correlation.png not drawn:" in rep.stdout, rep.stdout
    assert "| Baseline (baseline) |" in rep.stdout and "| B+Dist.+Size+Corr. |" in rep.stdout



def test_real_sft_resumes_from_its_checkpoint(submitted):
    """The requeued SFT attempt resumed from the checkpoint (train.resume=auto) and trains on from
    there (the run is long on purpose; it is cancelled once that is shown)."""
    sweep_dir = submitted["sft_requeue"]
    run_dir = sweep_dir / "runs/sft"

    def resumed() -> int | None:
        path = run_dir / "job.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        found = re.findall(r"resuming from \S*checkpoint-(\d+)", text)
        return int(found[-1]) if found and "attempt 1" in text else None

    wait_until(lambda: resumed() is not None, 240, "the requeued SFT attempt to resume", lambda: _sft_log(run_dir))
    step = resumed()
    wait_until(lambda: step + 1 in _train_steps(run_dir), 120, f"a training step after checkpoint-{step}",
          lambda: _sft_log(run_dir))
    steps = _train_steps(run_dir)
    assert 0 < step and max(s for s in steps if s <= step) == step, steps
    assert (run_dir / f"checkpoint-{step}").is_dir()
    assert "SIGUSR1" in (run_dir / "job.log").read_text(errors="replace")
    out = _run(["scancel", _job_of(sweep_dir, "sft")])  # enough shown: free the CPU
    assert out.returncode == 0, out.stderr

def test_dependent_array_waits_for_its_run(submitted):
    """`second` references {run:first}: it went into a second array submitted afterok on first's task."""
    sweep_dir = submitted["requeue"]
    runs = sweep_dir / "runs"
    wait_until(lambda: (runs / "second" / "DONE").exists(), 120, "the dependent run to finish",
          lambda: _run([sys.executable, "launch/sweep.py", "--status", "--sweep-dir", str(sweep_dir)]).stdout)
    state = json.loads((sweep_dir / "sweep.json").read_text())
    first_job = state["runs"]["first"]["job"]
    deps = [s["dependency"] for s in state["submissions"] if "second" in s["tasks"].values()]
    assert deps == [f"afterok:{first_job}"]
    started = (runs / "second" / "job.log").read_text().splitlines()[0].rsplit(", ", 1)[1]
    assert started >= (runs / "first" / "DONE").read_text().strip()
    args = _attempts(runs / "second")[0]["args"]
    assert f"standin.init={runs / 'first'}" in args
