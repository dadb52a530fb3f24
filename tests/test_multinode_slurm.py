"""A real multi-node Slurm on simulated nodes: slurmctld + slurmd on node1, slurmd on node2 (network namespaces,
scripts/netns/nodes.sh; scripts/slurm/local_cluster.sh with SPATIALTREE_SLURM_NETNS), Debian's slurm-wlm + munge.

- `launch/sweep.py --submit` (run on node1, the login node) of a sweep whose run asks for `slurm.nodes: 2`: the
  project's sbatch template starts one torchrun per node with srun, rendezvous (c10d) on the allocation's first
  node; ZeRO-3 SFT across the two nodes.
- node2 dies mid-run (link down, every process SIGKILLed: slurmd, its job step, torchrun, the trainer): Slurm
  sets it DOWN after SlurmdTimeout, requeues the array task (NODE_FAIL + --requeue); node2 comes back (link up,
  slurmd started again), the task runs again on both nodes, resumes from the last checkpoint and ends with the
  weights of the uninterrupted single-node run (tests/fixtures_multinode.py).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from fixtures_engine import standin_small
from fixtures_multinode import (
    SAVE_EVERY,
    SFT_OVERRIDES,
    SFT_RECIPE,
    STEPS,
    assert_same_weights,
    single_node_sft_reference,
    worker_env,
)
from fixtures_netns import simulated_nodes
from fixtures_wait import wait_until

REPO = Path(__file__).resolve().parents[1]
CLUSTER_SH = REPO / "scripts" / "slurm" / "local_cluster.sh"
pytestmark = [pytest.mark.slurm, pytest.mark.dist, pytest.mark.slow]
SLURMD_TIMEOUT = 5  # s before Slurm sets a silent node DOWN (Slurm's default: 300)



@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two simulated nodes and a Slurm on them; torn down (daemons stopped, namespaces deleted) at the end."""
    with simulated_nodes("s", 2) as nodes:
        state = tmp_path_factory.mktemp("slurm_netns")
        env = dict(os.environ, SPATIALTREE_SLURM_DIR=str(state), SPATIALTREE_SLURM_NETNS=nodes.prefix,
                   SPATIALTREE_NETNS_PREFIX=nodes.prefix, SPATIALTREE_SLURM_CPUS="2",
                   SPATIALTREE_SLURM_SLURMD_TIMEOUT=str(SLURMD_TIMEOUT))
        sh = lambda *a: subprocess.run([str(CLUSTER_SH), *a], env=env, capture_output=True, text=True,  # noqa: E731
                                       timeout=300)
        out = sh("install")
        assert out.returncode == 0, out.stderr
        start = time.monotonic()
        out = sh("start")
        assert out.returncode == 0, f"{out.stderr}\n{_logs(state)}"
        conf = out.stdout.strip().split("=", 1)[1]
        print(f"Slurm on 2 simulated nodes up after {time.monotonic() - start:.1f} s ({conf})")
        try:
            yield {"nodes": nodes, "sh": sh, "state": state, "conf": conf, "env": {"SLURM_CONF": conf}}
        finally:
            stop = sh("stop")
            assert stop.returncode == 0, stop.stderr
            assert sh("status").returncode == 3, "the cluster still runs after stop"
            assert not list(state.glob("*.pid")), list(state.glob("*.pid"))


def _logs(state: Path) -> str:
    return "\n".join(f"--- {p}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted((state / "log").glob("*.log")))


def client(cluster, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """A command on node1 (the login node) with the cluster's SLURM_CONF."""
    return cluster["nodes"].run("node1", list(argv), env=cluster["env"], timeout=timeout)


def test_both_nodes_are_in_the_partition(cluster):
    out = client(cluster, "sinfo", "-h", "-N", "-o", "%N %T")
    assert out.returncode == 0, out.stderr
    assert sorted(out.stdout.split("\n")[:2]) == ["node1 idle", "node2 idle"], out.stdout
    step = client(cluster, "srun", "-N2", "--ntasks-per-node=1", "hostname")
    assert step.returncode == 0 and sorted(step.stdout.split()) == ["node1", "node2"], step.stderr


@pytest.fixture(scope="module")
def standin(tmp_path_factory) -> Path:
    return standin_small(tmp_path_factory).root


@pytest.fixture(scope="module")
def sweep(cluster, standin, tmp_path_factory) -> dict:
    """A one-run sweep on 2 nodes x 1 process, submitted from node1."""
    root = tmp_path_factory.mktemp("sweep_2nodes")
    overrides = {**SFT_OVERRIDES, "data.root": str(standin)}  # ZeRO-3
    spec = {"name": "two_nodes", "defaults": {
        "launcher": "sft", "recipe": SFT_RECIPE, "overrides": overrides,
        "slurm": {"nodes": 2, "gpus_per_node": 0, "procs_per_node": 1, "cpus_per_task": 1, "time": "30:00",
                  "signal_secs": 60, "env": {"GLOO_SOCKET_IFNAME": "eth0"}}},
        "runs": [{"name": "sft2n"}]}
    path = root / "two_nodes.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    sweep_dir = root / "sweep"
    out = cluster["nodes"].run("node1", [sys.executable, "launch/sweep.py", str(path), "--submit", "--sweep-dir",
                                         str(sweep_dir)], env={**worker_env(), **cluster["env"]}, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    state = json.loads((sweep_dir / "sweep.json").read_text())
    return {"dir": sweep_dir, "run": sweep_dir / "runs" / "sft2n", "job": state["runs"]["sft2n"]["job"],
            "script": Path(state["submissions"][0]["script"]), "submit_out": out.stdout}


def _job_log(sweep) -> str:
    path = sweep["run"] / "job.log"
    return path.read_text(errors="replace") if path.exists() else "(no job.log yet)"


def _job(cluster, job: str) -> dict[str, str]:
    out = client(cluster, "scontrol", "show", "job", job)
    return dict(re.findall(r"(\w+)=(\S*)", out.stdout))


def test_the_sbatch_script_asks_for_two_nodes_and_rendezvous_on_the_first(sweep):
    script = sweep["script"].read_text()
    assert "#SBATCH --nodes=2\n" in script and "#SBATCH --array=0\n" in script
    assert 'MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1)"' in script
    assert '--rdzv_backend=c10d --rdzv_endpoint="$MASTER_ADDR:$MASTER_PORT"' in script
    assert "export GLOO_SOCKET_IFNAME=eth0" in script
    assert re.search(r"submitted two_nodes: job \d+, tasks 0=sft2n", sweep["submit_out"])


@pytest.fixture(scope="module")
def requeued(cluster, sweep) -> dict:
    """node2 dies after the first checkpoint; Slurm requeues the task; node2 comes back."""
    nodes, run = cluster["nodes"], sweep["run"]
    marker = run / f"checkpoint-{SAVE_EVERY}" / "COMPLETE"
    wait_until(marker.exists, 600, f"checkpoint-{SAVE_EVERY} of the 2-node job", lambda: _job_log(sweep))
    job_before = _job(cluster, sweep["job"])
    nodes.kill("node2")
    killed = time.monotonic()

    def requeued_and_waiting() -> bool:
        job = _job(cluster, sweep["job"])
        return job.get("Restarts") == "1" and job.get("JobState") == "PENDING"

    wait_until(requeued_and_waiting, SLURMD_TIMEOUT + 180, "Slurm to set node2 DOWN and requeue the task",
          lambda: json.dumps(_job(cluster, sweep["job"])) + "\n" + _logs(cluster["state"]))
    requeue_secs = time.monotonic() - killed
    node2_state = client(cluster, "sinfo", "-h", "-n", "node2", "-o", "%T").stdout.strip()
    nodes.revive("node2")
    out = cluster["sh"]("start")  # starts the missing slurmd (node2's)
    assert out.returncode == 0, out.stderr
    return {"job_before": job_before, "requeue_secs": requeue_secs, "node2_state": node2_state}


def test_a_dead_node_requeues_the_task_and_the_rerun_resumes(cluster, sweep, requeued, reference, tiny_model_dir):
    run = sweep["run"]
    assert requeued["job_before"]["NodeList"] == "node[1-2]" and requeued["job_before"]["NumNodes"] == "2"
    assert requeued["node2_state"].startswith("down"), requeued["node2_state"]
    wait_until(lambda: (run / "DONE").exists() or (run / "FAILED").exists() and "attempt 1" in _job_log(sweep), 900,
          "the requeued task to finish", lambda: _job_log(sweep)[-6000:])
    log = _job_log(sweep)
    assert (run / "DONE").exists(), log[-6000:]
    assert "attempt 0, 2 node(s) from node1" in log and "attempt 1, 2 node(s) from node1" in log, log[-4000:]
    newest = re.findall(r"resuming from (\S*checkpoint-(\d+))", log)
    assert len(newest) == 2 and newest[0] == newest[1], newest  # both ranks (one per node) resumed
    assert SAVE_EVERY <= int(newest[0][1]) < STEPS
    slurmctld = (cluster["state"] / "log" / "slurmctld.log").read_text(errors="replace")
    print("\n".join(line for line in slurmctld.splitlines() if "node2" in line or "equeue" in line)[-3000:])
    summary = json.loads((run / "train_summary.json").read_text())
    assert summary["steps"] == STEPS and summary["resumed_from"] == newest[0][0]
    diff = assert_same_weights(run, reference, tiny_model_dir, "2-node Slurm job, node killed, requeued, resumed")
    status = cluster["nodes"].run("node1", [sys.executable, "launch/sweep.py", "--status", "--sweep-dir",
                                            str(sweep["dir"])], env=cluster["env"])
    assert status.returncode == 0 and "1 done" in status.stdout, status.stdout
    print(f"node2 killed -> task requeued after {requeued['requeue_secs']:.0f} s; resumed from checkpoint-"
          f"{newest[0][1]}; max weight difference to the single-node run {diff:.3g}")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, standin) -> Path:
    return single_node_sft_reference(tmp_path_factory, standin, "zero3")
