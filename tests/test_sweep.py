"""Sweep files, array planning, sbatch rendering, --local runs and --status (no Slurm needed here)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sweeps.cli import main as sweep_main
from sweeps.loader import load_sweep
from sweeps.plan import array_spec, plan
from sweeps.sbatch import render
from sweeps.spec import SweepError, parse_time
from sweeps.status import sweep_status
from tests.fixtures_sweep import STANDIN

REPO = Path(__file__).resolve().parents[1]
TABLE2 = REPO / "recipes/sweeps/table2_sft.yaml"
TABLE3 = REPO / "recipes/sweeps/table3_rl.yaml"
QUICKSTART = REPO / "recipes/sweeps/quickstart.yaml"
TABLE2_RUNS = ["baseline", "dist", "corr", "size", "dist_size_corr", "dist_size_corr_motion", "all_spatial_75"]


def write_sweep(path: Path, body: str) -> Path:
    path.write_text(body)
    return path


def standin_sweep(tmp_path: Path, extra_runs: str = "") -> Path:
    return write_sweep(tmp_path / "s.yaml", f"""
name: standin
baseline: a
defaults:
  launcher: {STANDIN.relative_to(REPO)}
  overrides: {{standin.steps: 3}}
  slurm: {{gpus_per_node: 0, cpus_per_task: 1, time: "10:00", signal_secs: 30}}
runs:
  - {{name: a, overrides: {{standin.quality: 0.4}}}}
  - {{name: b, overrides: {{standin.quality: 0.6}}}}
{extra_runs}
""")


def bash_syntax_ok(script: str) -> None:
    out = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


# ---------------------------------------------------------------------------- the shipped sweeps

def test_table2_dry_run_prints_one_array_of_seven_runs(capsys, tmp_path):
    code = sweep_main([str(TABLE2), "--dry-run", "--sweep-dir", str(tmp_path / "sw")])
    out = capsys.readouterr().out
    assert code == 0
    assert out.count("#!/bin/bash") == 1
    assert "#SBATCH --array=0-6\n" in out
    names = re.findall(r"^  (\d+)\) RUN=(\S+);", out, flags=re.M)
    assert [(int(i), n) for i, n in names] == list(enumerate(TABLE2_RUNS))
    for name in TABLE2_RUNS:
        assert f"recipe={name} " in out.replace("\\\n", " ")
        assert f"train.output_dir={tmp_path / 'sw' / 'runs' / name}" in out
    # srun + torchrun with a multi-node c10d rendezvous on the allocation's first node
    assert 'MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1)"' in out
    assert "srun --nodes=\"$SLURM_NNODES\"" in out
    assert "-m torch.distributed.run" in out
    assert '--nnodes="$SLURM_NNODES" --nproc_per_node="$NPROC_PER_NODE"' in out
    assert "NPROC_PER_NODE=8\n" in out
    assert '--rdzv_backend=c10d --rdzv_endpoint="$MASTER_ADDR:$MASTER_PORT" --rdzv_id="$RDZV_ID"' in out
    # pre-emption: warning signal to the batch shell, requeue, resume always on
    assert "#SBATCH --signal=B:USR1@600" in out and "#SBATCH --requeue" in out
    assert "trap 'forward USR1' USR1" in out and 'scontrol requeue "$TASK"' in out
    assert out.count(" train.resume=auto)") == 7
    assert "#SBATCH --gpus-per-node=8" in out and "#SBATCH --time=24:00:00" in out
    bash_syntax_ok(out)
    assert not (tmp_path / "sw").exists(), "a dry run writes nothing"


def test_shipped_sweeps_load_with_their_recipes():
    """Every run's recipe exists and its overrides are valid recipe keys."""
    for path in (TABLE2, QUICKSTART):
        sweep = load_sweep(path, validate_recipes=True)
        assert len(sweep.runs) >= 3
    table3 = load_sweep(TABLE3, validate_recipes=True)
    assert [r.name for r in table3.runs] == ["base", "full_think", "sft", "l1_think", "l2_think", "l3_think",
                                             "l4_think", "full_think_after_sft", "auto_think"]


def test_table3_plan_waits_for_the_sft_task(tmp_path, capsys):
    sweep = load_sweep(TABLE3)
    arrays = plan(sweep)
    assert [[r.name for r in a.runs] for a in arrays] == [
        ["base"], ["full_think", "sft"],
        ["l1_think", "l2_think", "l3_think", "l4_think", "full_think_after_sft", "auto_think"]]
    assert arrays[2].after == ["sft"]
    code = sweep_main([str(TABLE3), "--dry-run", "--sweep-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0 and out.count("#!/bin/bash") == 3
    assert "#SBATCH --dependency=afterok:<table3_rl.1>_1" in out  # sft is task 1 of the second array
    assert out.count(f"model.name_or_path={tmp_path / 'runs' / 'sft'} ") == 6
    compare = {name: info for name, info in sweep_state_runs(sweep, tmp_path).items()}
    assert compare["full_think"]["compare_to"] == "base" and compare["l1_think"]["compare_to"] == "sft"
    assert compare["sft"]["compare_to"] is None


def sweep_state_runs(sweep, sweep_dir):
    from sweeps.state import new_state

    return new_state(sweep, plan(sweep), sweep_dir, [], sys.executable)["runs"]


# ---------------------------------------------------------------------------- schema and errors

@pytest.mark.parametrize("body, message", [
    ("runs: [{name: a, recipee: dist}]", "unknown key 'recipee'; did you mean 'recipe'"),
    ("runs: [{name: a, slurm: {gpu_per_node: 2}}]", "unknown key 'gpu_per_node'; did you mean 'gpus_per_node'"),
    ("defaults: {slurm: {nodes: two}}\nruns: [{name: a}]", "bad value for 'nodes'"),
    ("runs: [{name: a}, {name: a}]", "run names must be unique; repeated: a"),
    ("runs: [{name: a, after: [bb]}, {name: b}]", "depends on unknown run 'bb'; did you mean 'b'"),
    ("runs: [{name: a, after: [b]}, {name: b, after: [a]}]", "cycle"),
    ("baseline: nope\nruns: [{name: a}]", "baseline 'nope' is not a run"),
    ("runs: [{name: a, launcher: sfft}]", "launcher 'sfft' is not one of sft, grpo, evaluate"),
    ("runs: [{name: a, overrides: {train.output_dir: x}}]", "'train.output_dir' is set by the sweep itself"),
    ("runs: [{name: 'a b'}]", "run name 'a b' must be"),
    ("runs: [{name: a, slurm: {time: '1:00', signal_secs: 300}}]", "signal_secs=300 must be between 0 and"),
    ("runs: [{name: a, recipe: dist, overrides: {optim.lrr: 1}}]", "'optim.lrr'; did you mean 'optim.lr'"),
    ("runs: [{name: a, recipe: distt}]", "unknown recipe 'distt'; did you mean 'dist'"),
    ("runz: []", "unknown key 'runz'; did you mean 'runs'"),
])
def test_bad_sweep_files_fail_with_the_key_and_closest_names(tmp_path, body, message):
    path = write_sweep(tmp_path / "bad.yaml", "name: bad\n" + body + "\n")
    with pytest.raises(SweepError) as err:
        load_sweep(path)
    assert message in str(err.value)
    assert str(path) in str(err.value) or "runs" not in body


def test_cli_exits_2_with_a_clear_message(tmp_path, capsys):
    path = write_sweep(tmp_path / "bad.yaml", "name: bad\nruns: [{name: a, recipee: dist}]\n")
    assert sweep_main([str(path), "--dry-run"]) == 2
    assert "unknown key 'recipee'; did you mean 'recipe'" in capsys.readouterr().err
    assert sweep_main([str(TABLE2), "--dry-run", "--set", "optim.lrr=1"]) == 2
    assert "did you mean 'optim.lr'" in capsys.readouterr().err
    assert sweep_main([str(TABLE2), "--dry-run", "--set", "slurm.partitio=gpu"]) == 2
    assert "did you mean 'partition'" in capsys.readouterr().err
    # the launcher script itself (a subprocess: import path, exit code)
    out = subprocess.run([sys.executable, "launch/sweep.py", str(path), "--dry-run"], cwd=REPO, capture_output=True,
                         text=True)
    assert out.returncode == 2 and "did you mean 'recipe'" in out.stderr
    # a row the launcher would refuse before loading its model fails at submission, naming the row
    import yaml

    spec = yaml.safe_load((REPO / "recipes" / "data" / "registry.yaml").read_text())
    del spec["sources"]["spatialtree_bench"]  # a custom registry without the default bench
    registry = tmp_path / "registry.yaml"
    registry.write_text(yaml.safe_dump(spec))
    assert sweep_main([str(TABLE2), "--dry-run", "--set", f"data.registry={registry}"]) == 2
    err = capsys.readouterr().err
    assert "run 'baseline'" in err and "is neither a dataset in the registry" in err, err


def test_grid_and_sets_expand_into_runs(tmp_path):
    path = write_sweep(tmp_path / "g.yaml", """
name: g
defaults: {launcher: sft, recipe: dist, overrides: {optim.lr: 1e-5}}
runs: [{name: ref}]
grid:
  - name: "lr{optim.lr}_s{train.seed}"
    axes: {optim.lr: [1e-4, 2e-4], train.seed: [0, 1]}
""")
    sweep = load_sweep(path, sets=["data.root=/data", "slurm.partition=gpu", "slurm.nodes=2"])
    assert [r.name for r in sweep.runs] == ["ref", "lr0.0001_s0", "lr0.0001_s1", "lr0.0002_s0", "lr0.0002_s1"]
    run = sweep.run("lr0.0002_s1")
    assert "optim.lr=0.0002" in run.overrides and "train.seed=1" in run.overrides
    assert "data.root=/data" in run.overrides and run.slurm.partition == "gpu" and run.slurm.nodes == 2
    assert "optim.lr=1e-05" in sweep.run("ref").overrides
    script = render(sweep, plan(sweep)[0], tmp_path)
    assert "#SBATCH --array=0-4" in script and "#SBATCH --partition=gpu" in script and "#SBATCH --nodes=2" in script
    bash_syntax_ok(script)


def test_multinode_resources_and_cpu_runs_render(tmp_path):
    path = write_sweep(tmp_path / "m.yaml", """
name: m
runs:
  - {name: big, recipe: dist, slurm: {nodes: 4, gpus_per_node: 4, cpus_per_task: 32, mem: 480G, account: lab,
     qos: high, constraint: h100, max_parallel: 2, port: 29400, setup: ["module load cuda"], env: {NCCL_DEBUG: WARN},
     extra: ["--exclusive"], signal_secs: 900, time: "2-00:00:00"}}
  - {name: cpu, recipe: dist, slurm: {gpus_per_node: 0, requeue: false}}
""")
    sweep = load_sweep(path)
    big, cpu = plan(sweep)
    s = render(sweep, big, tmp_path)
    for line in ["--nodes=4", "--gpus-per-node=4", "--cpus-per-task=32", "--mem=480G", "--account=lab", "--qos=high",
                 "--constraint=h100", "--array=0%2", "--exclusive", "--signal=B:USR1@900", "--time=2-00:00:00"]:
        assert f"#SBATCH {line}\n" in s
    assert "NPROC_PER_NODE=4\n" in s and "MASTER_PORT=29400\n" in s
    assert "module load cuda\nexport NCCL_DEBUG=WARN\n" in s
    c = render(sweep, cpu, tmp_path)
    assert "--gpus-per-node" not in c and "NPROC_PER_NODE=1\n" in c and "#SBATCH --no-requeue" in c
    assert "--signal" not in c and "REQUEUE=0" in c
    bash_syntax_ok(s)
    bash_syntax_ok(c)


def test_helpers():
    assert array_spec([0, 1, 2, 3, 4, 5, 6]) == "0-6"
    assert array_spec([5, 0, 2, 3, 4]) == "0,2-5"
    assert array_spec([1, 3], max_parallel=2) == "1,3%2"
    assert parse_time("30") == 1800 and parse_time("1:30:00") == 5400 and parse_time("2-00:00:00") == 172800
    assert parse_time("10:00") == 600 and parse_time("1-12") == 129600
    with pytest.raises(SweepError):
        parse_time("soon")


# ---------------------------------------------------------------------------- --local and --status

def test_local_runs_skip_done_and_report_failures(tmp_path, capsys):
    path = standin_sweep(tmp_path, extra_runs="""
  - {name: bad, overrides: {standin.fail: true}}
  - {name: after_bad, after: [bad]}
  - {name: after_b, overrides: {standin.note: "{run:b}"}}
""")
    sweep_dir = tmp_path / "sw"
    assert sweep_main([str(path), "--local", "--sweep-dir", str(sweep_dir)]) == 1
    out = capsys.readouterr().out
    assert "after_bad: not started, needs bad" in out and "FAILED (exit 3)" in out
    assert re.search(r"^\[\d/5 a\] standin a: finished \d+ steps$", out, flags=re.M), out  # streamed, prefixed
    runs = sweep_dir / "runs"
    for name in ("a", "b", "after_b"):
        assert (runs / name / "DONE").exists()
        assert (runs / name / "eval/final/summary.json").exists()
    args = json.loads((runs / "after_b/attempts.jsonl").read_text().splitlines()[0])["args"]
    assert f"standin.note={runs / 'b'}" in args and "train.resume=auto" in args
    states = {s.name: s for s in sweep_status(sweep_dir)}
    assert {n: s.state for n, s in states.items()} == {"a": "done", "b": "done", "bad": "failed",
                                                       "after_bad": "failed", "after_b": "done"}
    assert states["bad"].detail == "exit 3" and any("failing on purpose" in line for line in states["bad"].log)

    # a second run skips finished runs and retries the failed one (still failing)
    assert sweep_main([str(path), "--local", "--sweep-dir", str(sweep_dir)]) == 1
    out = capsys.readouterr().out
    assert "a: done already, skipped" in out and "b: done already, skipped" in out
    assert len((runs / "a/attempts.jsonl").read_text().splitlines()) == 1
    assert len((runs / "bad/attempts.jsonl").read_text().splitlines()) == 2

    assert sweep_main([str(path), "--status", "--sweep-dir", str(sweep_dir)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^bad\s+failed\s+-\s+exit 3", out, flags=re.M)
    assert "| standin bad: failing on purpose" in out and "3 done, 2 failed" in out
    state = json.loads((sweep_dir / "sweep.json").read_text())
    assert state["baseline"] == "a" and state["runs"]["b"]["compare_to"] == "a"
    assert [s.get("mode") for s in state["submissions"]] == ["local", "local"]


def test_status_of_unsubmitted_and_submitted_runs(tmp_path, monkeypatch):
    """--status without a queue: submitted-but-gone runs are reported, never-submitted ones too."""
    from eval_hooks.io import atomic_write_json
    from sweeps import status as status_mod
    from sweeps.state import new_state

    sweep = load_sweep(standin_sweep(tmp_path))
    state = new_state(sweep, plan(sweep), tmp_path, [], sys.executable)
    state["runs"]["a"]["job"] = "7_0"
    atomic_write_json(tmp_path / "sweep.json", state)
    monkeypatch.setattr(status_mod, "squeue_states", lambda: {"7_0": ("PENDING", "Dependency")})
    states = {s.name: (s.state, s.detail) for s in sweep_status(tmp_path)}
    assert states == {"a": ("pending", "pending (Dependency)"), "b": ("not-submitted", "")}
    monkeypatch.setattr(status_mod, "squeue_states", lambda: {})
    assert sweep_status(tmp_path)[0].state == "failed"
    (tmp_path / "runs/a").mkdir(parents=True)
    (tmp_path / "runs/a/RUNNING").write_text("{}")
    assert "time limit, node failure" in sweep_status(tmp_path)[0].detail
