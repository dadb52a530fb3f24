"""Ray and verl across two simulated nodes (network namespaces, scripts/netns/nodes.sh), verl 0.9.1 in its own
environment (.venv-verl).

``ray start --head`` on node1 and ``ray start --address=node1`` on node2 make one Ray cluster: ``ray.nodes()``
from node1 lists two alive nodes at the two nodes' own addresses. On node1, ``launch/grpo.py grpo.backend=verl
grpo.ray_address=...`` writes the parquet files and verl's config, and verl's ``main_ppo`` joins that cluster,
runs its TaskRunner and enters its trainer. verl's rollouts need GPUs, so on this machine verl stops where it first
asks for them: ``create_resource_pool`` -> ``ValueError: Total available GPUs 0 is less than total desired GPUs 2``
(exit non-zero). The test asserts exactly that stop (an earlier failure is a failure of the test).

Every subprocess has a hard timeout (a hang fails within the timeout, it never stalls CI); the namespaces are
removed in ``finally``, which SIGKILLs every process on the nodes (Ray's daemons, workers, verl's driver).
``ray stop --force`` is not used: it kills Ray processes by name across the whole process table, which the
simulated nodes share with the machine (other Ray users of the machine would be killed too).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from fixtures_netns import simulated_nodes
from fixtures_reliability import child_env
from fixtures_verl import verl_env
from grpo_media_child import write_prompts

REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.dist, pytest.mark.slow]
RAY_PORT = 6379  # every node has its own port space: no clash with anything on the machine
CPUS_PER_NODE = 16  # logical CPUs announced to Ray; with 1 per node verl's TaskRunner made no progress
START_TIMEOUT = 45  # s, one `ray start`
JOIN_TIMEOUT = 45  # s, until ray.nodes() shows both nodes alive
LAUNCH_TIMEOUT = 150  # s, launch/grpo.py up to verl's GPU check
GPU_ERROR = "ValueError: Total available GPUs 0 is less than total desired GPUs 2"

NODES_QUERY = """
import json, ray
ray.init(address="{address}", logging_level="ERROR", log_to_driver=False)
print("NODES " + json.dumps([{{"ip": n["NodeManagerAddress"], "alive": n["Alive"], "cpus": n["Resources"].get("CPU"),
                              "gpus": n["Resources"].get("GPU", 0)}} for n in ray.nodes()]))
"""


def ray_env() -> dict[str, str]:
    return {**child_env(), "RAY_USAGE_STATS_ENABLED": "0"}


def run_logged(nodes, node: str, argv: list[str], log: Path, timeout: float) -> tuple[int, str]:
    """``argv`` on ``node`` with its output in ``log`` (a file, not a pipe: Ray's daemons would hold a pipe open);
    (exit code, output). Past ``timeout`` s the test fails (the namespace teardown kills what is left)."""
    with open(log, "w") as f:
        proc = subprocess.Popen(nodes.on(node, argv), cwd=REPO, env={**nodes.env, **ray_env()}, stdout=f,
                                stderr=subprocess.STDOUT)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail(f"{' '.join(argv[:4])} ... on {node} still running after {timeout} s:\n"
                        f"{log.read_text()[-3000:]}")
    return code, log.read_text()


def ray_nodes(nodes, ray_python: Path, address: str, log: Path, deadline: float) -> list[dict]:
    """ray.nodes() as seen from node1, polled until two nodes are alive or ``deadline`` (monotonic) passes."""
    seen: list[dict] = []
    while time.monotonic() < deadline:
        code, out = run_logged(nodes, "node1", [str(ray_python), "-c", NODES_QUERY.format(address=address)], log,
                               timeout=max(deadline - time.monotonic(), 5))
        lines = [line for line in out.splitlines() if line.startswith("NODES ")]
        if code == 0 and lines:
            seen = json.loads(lines[-1][len("NODES "):])
            if sum(n["alive"] for n in seen) >= 2:
                return seen
        time.sleep(1)
    return seen


@pytest.fixture(scope="module")
def verl_python() -> Path:
    return verl_env()


@pytest.fixture(scope="module")
def cluster_run(verl_python, tmp_path_factory) -> dict:
    """Ray head + worker on two simulated nodes, then the verl launch on node1; everything torn down on return."""
    root = tmp_path_factory.mktemp("mn_ray")
    data = root / "data"
    write_prompts(data)
    ray = verl_python.parent / "ray"
    # Ray's temp dir holds unix sockets (path length limit ~107): a short one per node (the nodes share /tmp)
    ray_tmp = Path(tempfile.mkdtemp(prefix="stray", dir="/tmp"))
    result: dict = {"root": root, "out": root / "run"}
    try:
        with simulated_nodes("r", 2) as nodes:
            listed = nodes.sh("list")
            ips = {line.split()[0]: line.split()[1] for line in listed.stdout.splitlines()}
            address = f"{ips['node1']}:{RAY_PORT}"
            common = [f"--num-cpus={CPUS_PER_NODE}", "--num-gpus=0", "--object-store-memory=100000000",
                      "--disable-usage-stats"]
            t0 = time.monotonic()
            code, out = run_logged(nodes, "node1", [str(ray), "start", "--head", f"--node-ip-address={ips['node1']}",
                                                    f"--port={RAY_PORT}", f"--temp-dir={ray_tmp / 'node1'}",
                                                    "--include-dashboard=false", *common],
                                   root / "ray_head.log", START_TIMEOUT)
            assert code == 0, f"ray start --head on node1 failed:\n{out[-3000:]}"
            code, out = run_logged(nodes, "node2", [str(ray), "start", f"--address={address}",
                                                    f"--node-ip-address={ips['node2']}",
                                                    f"--temp-dir={ray_tmp / 'node2'}", *common],
                                   root / "ray_worker.log", START_TIMEOUT)
            assert code == 0, f"ray start (worker) on node2 failed:\n{out[-3000:]}"
            result["ips"] = ips
            result["ray_nodes"] = ray_nodes(nodes, verl_python, address, root / "ray_nodes.log",
                                            time.monotonic() + JOIN_TIMEOUT)
            result["ray_up_s"] = time.monotonic() - t0
            t1 = time.monotonic()
            args = [f"data.root={data}", f"data.registry={data / 'registry.yaml'}", "mix.groups.rl.sources=[mine]",
                    "model.name_or_path=tiny-qwen2.5-vl", "eval.bench=null", "data.decontaminate=off", "grpo.max_prompt_length=4096",
                    "train.report_to=[jsonl]", f"train.output_dir={result['out']}", "grpo.num_generations=2",
                    "train.per_device_batch_size=2", "train.max_steps=2", "grpo.max_completion_length=8",
                    "grpo.backend=verl", f"grpo.ray_address={address}", "grpo.verl.nnodes=2",
                    "grpo.verl.gpus_per_node=1", f"grpo.verl.python={verl_python}"]
            result["code"], result["log"] = run_logged(nodes, "node1", [sys.executable, "launch/grpo.py", *args],
                                                       root / "launch.log", LAUNCH_TIMEOUT)
            result["launch_s"] = time.monotonic() - t1
            result["prefix"] = nodes.prefix
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    result["left"] = [p for p in os.listdir("/proc") if p.isdigit() and _cmdline_has(p, str(ray_tmp))]
    return result


def _cmdline_has(pid: str, needle: str) -> bool:
    try:
        return needle in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def test_ray_head_and_worker_form_one_cluster(cluster_run):
    """ray.nodes() from node1: two alive nodes, at node1's and node2's own addresses, CPUs only."""
    alive = [n for n in cluster_run["ray_nodes"] if n["alive"]]
    assert sorted(n["ip"] for n in alive) == sorted(cluster_run["ips"].values()), cluster_run["ray_nodes"]
    assert all(n["cpus"] == CPUS_PER_NODE and n["gpus"] == 0 for n in alive)
    print(f"Ray: {len(alive)} alive nodes {sorted(n['ip'] for n in alive)} after {cluster_run['ray_up_s']:.1f} s")


def test_verl_launch_reaches_the_trainers_resource_pool(cluster_run):
    """launch/grpo.py (verl backend) on node1: parquet + config written, verl joins the 2-node cluster, its
    TaskRunner enters the trainer and stops at the resource pool for want of GPUs (exit non-zero)."""
    log = cluster_run["log"]
    verl = cluster_run["out"] / "verl"
    assert (verl / "train.parquet").is_file() and (verl / "val.parquet").is_file() and \
        (verl / "grpo_verl.yaml").is_file(), log[-3000:]
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(verl / "grpo_verl.yaml")
    assert cfg.ray_kwargs.ray_init.address == f"{cluster_run['ips']['node1']}:{RAY_PORT}"
    assert cfg.trainer.nnodes == 2 and cfg.trainer.n_gpus_per_node == 1
    assert list(cfg.data.train_files) == [str((verl / "train.parquet").resolve())]
    assert cluster_run["code"] != 0, log[-3000:]
    for step in ("Connected to Ray cluster.", "TaskRunnerV1.run()", "self.trainer.init()", "create_resource_pool()"):
        assert step in log, f"verl did not get to {step!r}:\n{log[-5000:]}"
    assert GPU_ERROR in log, log[-5000:]
    print(f"verl launch: exit {cluster_run['code']} after {cluster_run['launch_s']:.1f} s with '{GPU_ERROR}'")


def test_nothing_left_running(cluster_run):
    """The namespaces are gone and no process of this Ray cluster survives the teardown."""
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=30).stdout
    assert cluster_run["prefix"] + "-" not in namespaces, namespaces
    assert cluster_run["left"] == [], cluster_run["left"]
