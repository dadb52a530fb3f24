"""Two simulated nodes (network namespaces, scripts/netns/nodes.sh): `torchrun --nnodes 2 --rdzv-backend c10d`
of launch/sft.py (ZeRO-2, ZeRO-3) and launch/grpo.py (ZeRO-3 with a KL term), gloo over the nodes' eth0.

- Each 2-node run ends with the same weights (within 1e-5) as the single-node run with the same 2 ranks and
  global batch (torchrun --nproc_per_node 2 here; tests/test_sft_dist.py shows that one equals one process).
- A node dies mid-run (its link goes down, then every process on it is SIGKILLed, as in a power loss: no FIN
  or RST reaches the other node): the other node's job exits non-zero after ``train.collective_timeout_s``
  instead of hanging, leaves no process behind, and the same command (train.resume=auto) on both nodes resumes
  from the last complete checkpoint and ends with the uninterrupted run's weights.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fixtures_engine import standin_small
from fixtures_multinode import (
    SAVE_EVERY,
    STEPS,
    assert_same_weights,
    max_weight_diff,
    sft_args,
    single_node_sft_reference,
    worker_env,
)
from fixtures_netns import simulated_nodes
from grpo_media_child import overrides as grpo_media_overrides
from grpo_media_child import write_prompts
from test_sft_dist import free_port, tail

REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.dist, pytest.mark.slow]
COLLECTIVE_TIMEOUT = 60  # s, for the run whose node is killed (default 1800); above the start-up gap between ranks on a busy 2-core machine


def node_env() -> dict[str, str]:
    # gloo on the node's own interface; LOGLEVEL=INFO makes torchrun log the rendezvous outcome per node
    return {**worker_env(), "GLOO_SOCKET_IFNAME": "eth0", "LOGLEVEL": "INFO"}


@pytest.fixture(scope="module")
def nodes():
    with simulated_nodes("t", 2) as n:
        yield n


@pytest.fixture(scope="module")
def standin(tmp_path_factory) -> Path:
    return standin_small(tmp_path_factory).root


@pytest.fixture(scope="module")
def reference(tmp_path_factory, standin) -> Path:
    """The single-node ZeRO-3 run."""
    return single_node_sft_reference(tmp_path_factory, standin, "zero3")


def two_node_run(nodes, root: Path, name: str, args: list[str], timeout: float = 900) -> dict:
    logs = {n: root / f"{name}_{n}.log" for n in nodes.names}
    procs = nodes.torchrun(args, logs, rdzv_id=name, env=node_env())
    codes = nodes.wait_all(procs, timeout)
    return {"codes": codes, "logs": logs}


def logs_text(run: dict) -> str:
    return "\n".join(f"--- {n}\n{tail(p)}" for n, p in run["logs"].items())


@pytest.fixture(scope="module")
def zero2(nodes, standin, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("mn_zero2")
    run = two_node_run(nodes, root, "zero2", sft_args(standin, root / "out", train__deepspeed="zero2"))
    return {**run, "out": root / "out"}


def test_rendezvous_puts_one_rank_on_each_node(zero2):
    assert zero2["codes"] == {"node1": 0, "node2": 0}, logs_text(zero2)
    for i, node in enumerate(("node1", "node2")):
        text = zero2["logs"][node].read_text(errors="replace")
        # torchrun's rendezvous result on this node: its group rank, the master on node1, its global rank
        for line in (f"group_rank={i}", "group_world_size=2", "master_addr=node1", f"global_ranks=[{i}]"):
            assert re.search(rf"\]\s+{re.escape(line)}$", text, re.M), f"{node}: no '{line}' in\n{text[-3000:]}"
    assert json.loads((zero2["out"] / "run_info.json").read_text())["host"] == "node1"  # rank 0's hostname


def test_zero2_on_two_nodes_equals_single_node(zero2, tmp_path_factory, standin, tiny_model_dir):
    assert zero2["codes"] == {"node1": 0, "node2": 0}, logs_text(zero2)
    assert json.loads((zero2["out"] / "train_summary.json").read_text())["steps"] == STEPS
    reference = single_node_sft_reference(tmp_path_factory, standin, "zero2")
    diff = assert_same_weights(zero2["out"], reference, tiny_model_dir, "ZeRO-2 on 2 nodes")
    print(f"ZeRO-2 on 2 nodes: max weight difference to the single-node run {diff:.3g}")


@pytest.fixture(scope="module")
def killed(nodes, standin, tmp_path_factory) -> dict:
    """ZeRO-3 on 2 nodes; node2 dies as soon as checkpoint-4 is complete."""
    root = tmp_path_factory.mktemp("mn_kill")
    out = root / "out"
    args = sft_args(standin, out, train__collective_timeout_s=COLLECTIVE_TIMEOUT)
    logs = {n: root / f"attempt0_{n}.log" for n in nodes.names}
    procs = nodes.torchrun(args, logs, rdzv_id="kill0", env=node_env())
    marker = out / f"checkpoint-{SAVE_EVERY}" / "COMPLETE"
    end = time.monotonic() + 900
    while not marker.exists() and time.monotonic() < end and procs["node1"].poll() is None:
        time.sleep(0.05)
    assert marker.exists(), "no checkpoint before the kill:\n" + "\n".join(tail(p) for p in logs.values())
    nodes.kill("node2")
    killed_at = time.monotonic()
    codes = nodes.wait_all(procs, COLLECTIVE_TIMEOUT + 240)
    survivor_secs = time.monotonic() - killed_at
    left = nodes.pids("node1")
    nodes.revive("node2")
    return {"root": root, "out": out, "args": args, "codes": codes, "logs": logs, "survivor_secs": survivor_secs,
            "left_on_node1": left}


def test_a_dead_node_fails_the_job_cleanly_within_the_collective_timeout(killed):
    codes = killed["codes"]
    assert codes["node2"] == -9 or codes["node2"] == 137, codes  # the killed node's torchrun
    assert codes["node1"] not in (0, "hung"), f"the surviving node: {codes['node1']}\n{tail(killed['logs']['node1'])}"
    assert killed["survivor_secs"] < COLLECTIVE_TIMEOUT + 120, killed["survivor_secs"]
    assert killed["left_on_node1"] == [], "processes left on the surviving node"
    text = killed["logs"]["node1"].read_text(errors="replace")
    # gloo's own words, depending on where the rank waited: a send/recv timeout or the pair closed on timeout
    assert re.search(rf"Timed out waiting {COLLECTIVE_TIMEOUT * 1000}ms|Application timeout caused pair closure",
                     text), tail(killed["logs"]["node1"])
    assert not (killed["out"] / "train_summary.json").exists()
    assert not (killed["out"] / f"checkpoint-{STEPS}").exists()


@pytest.fixture(scope="module")
def resumed(nodes, killed) -> dict:
    """The same command again on both nodes (train.resume=auto)."""
    from train.checkpoint import latest_complete

    newest = latest_complete(killed["out"])
    run = two_node_run(nodes, killed["root"], "attempt1", killed["args"])
    return {**run, "out": killed["out"], "newest_at_restart": newest}


def test_the_rerun_resumes_and_ends_with_the_uninterrupted_weights(resumed, reference, tiny_model_dir):
    assert resumed["codes"] == {"node1": 0, "node2": 0}, logs_text(resumed)
    newest = resumed["newest_at_restart"]
    assert newest is not None and SAVE_EVERY <= int(newest.name.split("-")[1]) < STEPS
    for node in ("node1", "node2"):  # both ranks restored their model, optimizer shard and data position
        assert f"resuming from {newest}" in resumed["logs"][node].read_text(errors="replace"), tail(resumed["logs"][node])
    summary = json.loads((resumed["out"] / "train_summary.json").read_text())
    assert summary["steps"] == STEPS and summary["resumed_from"] == str(newest)
    steps = [json.loads(line)["step"] for line in (resumed["out"] / "metrics.jsonl").read_text().splitlines()
             if '"train/loss"' in line]
    assert set(steps) == set(range(1, STEPS + 1)), steps
    diff = assert_same_weights(resumed["out"], reference, tiny_model_dir, "ZeRO-3 on 2 nodes, killed and resumed")
    print(f"killed at checkpoint {newest.name}, resumed: max weight difference to the single-node run {diff:.3g}")


# ---------------------------------------------------------------------------- GRPO


def grpo_args(data: Path, out: Path) -> list[str]:
    """launch/grpo.py with the per-rank-media prompt set of tests/grpo_media_child.py (a KL term, a reward that
    differs within every group), ZeRO-3."""
    base = [f"data.root={data}", f"data.registry={data / 'registry.yaml'}", "mix.groups.rl.sources=[mine]",
            "model.name_or_path=tiny-qwen2.5-vl", "eval.bench=null", "data.decontaminate=off", "grpo.max_prompt_length=4096",
            "train.report_to=[jsonl]"]
    return [str(REPO / "launch" / "grpo.py"), *base, *grpo_media_overrides(str(out), "zero3"), "train.save_steps=0"]


@pytest.fixture(scope="module")
def grpo(nodes, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("mn_grpo")
    write_prompts(root / "data")
    single = root / "single"
    with open(root / "single.log", "w") as f:
        proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                               str(free_port()), *grpo_args(root / "data", single)], cwd=REPO, env=worker_env(),
                              stdout=f, stderr=subprocess.STDOUT, timeout=900)
    assert proc.returncode == 0, tail(root / "single.log")
    run = two_node_run(nodes, root, "grpo", grpo_args(root / "data", root / "two_nodes"))
    return {**run, "single": single, "out": root / "two_nodes"}


def test_grpo_on_two_nodes_equals_single_node(grpo, tiny_model_dir):
    assert grpo["codes"] == {"node1": 0, "node2": 0}, logs_text(grpo)
    rows = [json.loads(line) for line in (grpo["out"] / "metrics.jsonl").read_text().splitlines()
            if '"train/reward"' in line]
    assert [r["step"] for r in rows] == [1, 2] and all(r["train/reward_std"] > 0 for r in rows)  # a real signal
    diff = assert_same_weights(grpo["out"], grpo["single"], tiny_model_dir, "GRPO ZeRO-3 on 2 nodes")
    assert max_weight_diff(grpo["out"], tiny_model_dir) > 1e-3
    print(f"GRPO: max weight difference to the single-node run {diff:.3g}")
