"""Simulated nodes for the multi-node tests: Linux network namespaces made by scripts/netns/nodes.sh.

    with simulated_nodes("tr", 2) as nodes:          # node1 (10.231.0.1), node2 (10.231.0.2)
        procs = nodes.torchrun(["launch/sft.py", ...], out_logs, rdzv_id="x")
        nodes.kill("node2")                          # link down, then SIGKILL of every process on node2

Each node has its own network (one interface eth0 on a bridge, loopback), hostname and /etc/hosts; the
filesystem is shared (like a cluster's shared filesystem). Where namespaces cannot be made (not root, or no
iproute2 and no apt-get to install it) the tests FAIL with the reason, unless SPATIALTREE_SKIP_MULTINODE=1 is set
(then they are skipped with a loud warning): a machine without root must opt out explicitly.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NODES_SH = REPO / "scripts" / "netns" / "nodes.sh"
RDZV_PORT = 29400  # every node has its own port space: no clash with anything on the machine


OPT_OUT = "SPATIALTREE_SKIP_MULTINODE"


def _cannot(reason: str) -> None:
    """Fail (the default: CI has root), or skip loudly when the user opted out with SPATIALTREE_SKIP_MULTINODE=1."""
    if os.environ.get(OPT_OUT) == "1":
        reason = f"{reason}; skipped because {OPT_OUT}=1: the multi-node tests did NOT run"
        warnings.warn(reason, stacklevel=2)
        print(f"\n!!! WARNING: {reason} !!!", file=sys.stderr)
        pytest.skip(reason)
    pytest.fail(f"{reason} (set {OPT_OUT}=1 to skip the multi-node tests on such a machine)")


class SimNodes:
    """The nodes of one ``nodes.sh up`` (namespace prefix ``prefix``)."""

    def __init__(self, prefix: str, n: int):
        self.prefix = prefix
        self.names = [f"node{i}" for i in range(1, n + 1)]
        self.env = dict(os.environ, SPATIALTREE_NETNS_PREFIX=prefix)

    def sh(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([str(NODES_SH), *args], env=self.env, capture_output=True, text=True, timeout=timeout)

    def on(self, node: str, argv: list[str]) -> list[str]:
        """``argv`` as a command that runs on ``node``."""
        return [str(NODES_SH), "exec", node, *argv]

    def run(self, node: str, argv: list[str], env: dict | None = None, timeout: float = 120,
            **kw) -> subprocess.CompletedProcess:
        return subprocess.run(self.on(node, argv), env={**self.env, **(env or {})}, capture_output=True, text=True,
                              timeout=timeout, cwd=REPO, **kw)

    def pids(self, node: str) -> list[int]:
        out = self.sh("pids", node)
        assert out.returncode == 0, out.stderr
        return [int(p) for p in out.stdout.split()]

    def kill(self, node: str) -> None:
        out = self.sh("kill", node)
        assert out.returncode == 0, out.stderr

    def revive(self, node: str) -> None:
        out = self.sh("revive", node)
        assert out.returncode == 0, out.stderr

    def torchrun(self, script_args: list[str], logs: dict[str, Path], rdzv_id: str, env: dict,
                 nproc_per_node: int = 1) -> dict[str, subprocess.Popen]:
        """One ``torchrun --nnodes N --rdzv-backend c10d`` per node (endpoint node1), started now; node -> process."""
        procs = {}
        for node in self.names:
            cmd = self.on(node, [sys.executable, "-m", "torch.distributed.run", "--nnodes", str(len(self.names)),
                                 "--nproc-per-node", str(nproc_per_node), "--rdzv-backend", "c10d",
                                 "--rdzv-endpoint", f"node1:{RDZV_PORT}", "--rdzv-id", rdzv_id, "--max-restarts", "0",
                                 *script_args])
            with open(logs[node], "w") as f:
                procs[node] = subprocess.Popen(cmd, cwd=REPO, env={**self.env, **env}, stdout=f,
                                               stderr=subprocess.STDOUT)
        return procs

    def wait_all(self, procs: dict[str, subprocess.Popen], timeout: float) -> dict[str, int | str]:
        """Exit codes per node; a node still running after ``timeout`` s has all its processes killed ("hung")."""
        end = time.monotonic() + timeout
        codes: dict[str, int | str] = {}
        for node, proc in procs.items():
            try:
                codes[node] = proc.wait(timeout=max(end - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                self.kill(node)
                self.revive(node)
                proc.wait()
                codes[node] = "hung"
        return codes


@contextlib.contextmanager
def simulated_nodes(tag: str, n: int = 2) -> Iterator[SimNodes]:
    """``n`` nodes under a prefix unique to this process and ``tag``; torn down (and checked gone) on exit."""
    if os.geteuid() != 0:
        _cannot("not root: the simulated nodes (network namespaces) cannot be created")
    if not all(shutil.which(t) for t in ("ip", "unshare", "nsenter")):
        if shutil.which("apt-get") is None:
            _cannot("iproute2/util-linux (ip, unshare, nsenter) missing and no apt-get to install them")
        out = subprocess.run([str(NODES_SH), "install"], capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, f"scripts/netns/nodes.sh install failed:\n{out.stderr}"
    nodes = SimNodes(f"st{os.getpid() % 100000}{tag}", n)
    out = nodes.sh("up", str(n))
    assert out.returncode == 0, f"scripts/netns/nodes.sh up failed:\n{out.stderr}"
    try:
        yield nodes
    finally:
        out = nodes.sh("down")
        assert out.returncode == 0, out.stderr
        left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert nodes.prefix + "-" not in left, f"namespaces left after down: {left}"
