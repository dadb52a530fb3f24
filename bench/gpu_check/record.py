"""What every check returns, the run's settings, the terminal table and bench/gpu_results.json.

JSON schema (``SCHEMA``), one object:

- ``schema``, ``mode`` (``gpu`` or ``cpu-smoke``: a smoke file is never a GPU result), ``started``,
  ``finished``, ``seconds``, ``command``;
- ``machine``: bench.machine.describe() plus ``gpus`` (names), ``gpu_count`` and ``peak_bf16``
  (``tflops``, ``source``, ``matched``) used for MFU;
- ``model``: the checkpoint the checks ran on;
- ``checks``: name -> :class:`CheckResult` as a dict (``status`` pass / fail / skipped / error, ``rule``,
  ``tolerances`` each with its ``source``, ``measured`` numbers, ``exercised`` = what actually ran);
- ``anchors``: published or estimated reference figures, each with ``source`` and ``conditions``
  (bench/gpu_check/anchors.py);
- ``flops``: the FLOPs formulas used for MFU, in words (bench/gpu_check/flops.py);
- ``summary``: counts per status.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = "spatialtree-gpu-check/1"
STATUSES = ("pass", "fail", "skipped", "error")


@dataclass
class Tolerance:
    """One bound of a pass rule and where its value comes from."""

    name: str
    """What is bounded (``loss_rel_diff``)."""
    value: float
    """The bound."""
    source: str
    """Why this value: ``project choice: ...`` with the reasoning, or a cited source."""


@dataclass
class CheckResult:
    """The record of one check."""

    name: str
    """Short id (``packing``)."""
    title: str
    """One line: what is compared with what."""
    status: str = "error"
    """``pass``, ``fail``, ``skipped`` or ``error``."""
    reason: str = ""
    """Why it was skipped, failed or errored (empty on pass)."""
    rule: str = ""
    """The pass rule in words."""
    tolerances: list[Tolerance] = field(default_factory=list)
    """The bounds the rule uses, each with its source."""
    measured: dict[str, Any] = field(default_factory=dict)
    """The numbers the rule was applied to, and any worth keeping."""
    exercised: str = ""
    """What actually ran (kernels, dtype, device, processes); in CPU smoke mode, what stood in for the GPU part."""
    seconds: float = 0.0
    """Wall time of the check's group (``precision`` and ``throughput`` each run two checks in one group)."""

    def decide(self, checks: dict[str, bool]) -> CheckResult:
        """status = pass when every named condition holds, else fail naming the ones that do not."""
        failed = [name for name, ok in checks.items() if not ok]
        self.status = "fail" if failed else "pass"
        self.reason = ("not met: " + ", ".join(failed)) if failed else ""
        return self

    def skip(self, reason: str) -> CheckResult:
        self.status, self.reason = "skipped", reason
        return self

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Settings:
    """One run of the GPU check."""

    device: str
    """``cuda``, or ``cpu`` for the smoke mode the tests use (``--device cpu --allow-cpu``)."""
    model: str
    """Checkpoint for the packing, precision, rollout and throughput checks (default: the embedded tiny model)."""
    out: Path
    """Where the JSON goes."""
    workdir: Path
    """Scratch folder (corpus, child runs), removed at the end unless ``--keep``."""
    gpus: int
    """Processes of the ZeRO-3 run: all visible GPUs (2 gloo processes in CPU smoke mode)."""
    peak_tflops: float | None = None
    """Override of the peak bf16 dense TFLOP/s used for MFU (unknown GPU models)."""
    steps: int = 4
    """Timed optimizer steps of each throughput measurement (after one warm-up step)."""
    timeout: float = 600.0
    """Seconds a child process (torchrun, vLLM) may take."""
    log_dir: Path | None = None
    """Where child processes write their logs (default: workdir/logs)."""

    @property
    def smoke(self) -> bool:
        return self.device == "cpu"

    def pick(self, smoke, gpu):
        """``smoke`` in CPU smoke mode, else ``gpu``."""
        return smoke if self.smoke else gpu

    def logs(self) -> Path:
        path = self.log_dir or self.workdir / "logs"
        path.mkdir(parents=True, exist_ok=True)
        return path


def scratch_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="spatialtree-gpu-check-"))


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def rel_diff(a: float, b: float) -> float:
    """|a - b| / |b| (inf when b is 0 and a is not)."""
    if b == 0:
        return 0.0 if a == 0 else float("inf")
    return abs(a - b) / abs(b)


def summary_counts(checks: dict[str, CheckResult]) -> dict[str, int]:
    return {s: sum(1 for c in checks.values() if c.status == s) for s in STATUSES}


def _headline(c: CheckResult) -> str:
    """The two or three numbers of a check worth a glance."""
    from bench.report import fmt

    shown = [(k, c.measured[k]) for k in c.measured.get("headline", []) if c.measured.get(k) is not None]
    return ", ".join(f"{k} {fmt(v) if isinstance(v, float) else v}" for k, v in shown)


def table(checks: dict[str, CheckResult], mode: str) -> str:
    """The terminal summary: one row per check, then why each check that did not pass did not."""
    rows = [("check", "status", "seconds", "numbers")] + [
        (c.name, c.status, f"{c.seconds:.0f}", _headline(c)) for c in checks.values()]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"gpu-check ({mode})"] + ["  ".join(r[i].ljust(widths[i]) for i in range(3)) + "  " + r[3] for r in rows]
    lines += [f"  {c.name}: {c.status}: {c.reason}" for c in checks.values() if c.reason]
    lines.append(", ".join(f"{n} {s}" for s, n in summary_counts(checks).items()))
    return "\n".join(lines)
