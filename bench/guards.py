"""The harness guarding its own figures (issue 25): a figure is only worth quoting when its baseline is stable.

- **Known-answer checks** (``Figure.checks``, made by :func:`bench.harness.known_answer`): where both sides do the
  same work, a value both must give (the first SFT step's loss ...). A failed one is flagged.
- **Baseline drift**: each baseline median against the committed ``bench/results.json``; a move of more than
  ``DRIFT`` (25%, project choice) on the same library versions is flagged: the baseline's work or the machine
  changed, and the ratio is not comparable with the committed one until the cause is known. With other versions
  nothing is compared (the versions that differ are listed).
- **Run against run** (``--compare-to FILE``): every ratio median against an earlier run's; a difference of more
  than ``COMPARE`` (15%, project choice) is flagged.

Pure functions over results dicts (``python -m bench``'s JSON), so they are tested without training.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

DRIFT = 0.25
COMPARE = 0.15


def committed_results(repo: Path, rel: str = "bench/results.json") -> tuple[dict | None, str]:
    """(the results file as committed at HEAD, where it came from); the working file when git cannot say."""
    try:
        out = subprocess.run(["git", "-C", str(repo), "show", f"HEAD:{rel}"], capture_output=True, text=True,
                             timeout=30)
        if out.returncode == 0:
            return json.loads(out.stdout), f"{rel} at HEAD"
    except (OSError, subprocess.SubprocessError, json.JSONDecodeError):
        pass
    path = repo / rel
    if path.is_file():
        try:
            return json.loads(path.read_text()), str(path)
        except json.JSONDecodeError:
            return None, f"{path} (not JSON)"
    return None, f"{rel} (missing)"


def load_results(path: Path) -> dict:
    """An earlier run's results.json; a one-line error naming the file when it is not one."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON (line {exc.lineno}: {exc.msg})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), dict):
        raise ValueError(f"{path}: not a bench results file (no 'benchmarks' object)")
    return data


def version_differences(now: dict, then: dict) -> list[str]:
    """``name then -> now`` for every library (and Python) whose version differs between two machine records."""
    diffs = []
    a, b = now.get("packages", {}), then.get("packages", {})
    for name in sorted(set(a) & set(b)):
        if a[name] != b[name]:
            diffs.append(f"{name} {b[name]} -> {a[name]}")
    if now.get("python") and then.get("python") and now["python"] != then["python"]:
        diffs.append(f"python {then['python']} -> {now['python']}")
    return diffs


def unrecorded(now: dict, then: dict) -> list[str]:
    """Libraries this run records that the earlier one did not (an older harness): not compared."""
    a, b = now.get("packages", {}), then.get("packages", {})
    return sorted(name for name in a if name not in b)


def method_of(results: dict, benchmark: str) -> int:
    """The benchmark's METHOD (bench/b_*.py): raised when what it measures changes; 1 when not recorded."""
    return int(results.get("benchmarks", {}).get(benchmark, {}).get("method", 1))


def kernel_differences(now: dict, then: dict) -> list[str]:
    """The CPU kernel facts (bench.machine.kernels) that differ; empty when either run did not record them."""
    a, b = now.get("kernels"), then.get("kernels")
    if not a or not b:
        return []
    out = []
    for key in ("aten_cpu_capability", "mkldnn_bf16_supported"):
        if a.get(key) != b.get(key):
            out.append(f"{key} {b.get(key)} -> {a.get(key)}")
    fa, fb = a.get("cpu_flags", {}), b.get("cpu_flags", {})
    out += [f"cpu flag {f} {fb.get(f)} -> {fa.get(f)}" for f in sorted(set(fa) & set(fb)) if fa[f] != fb[f]]
    return out


def _figures(results: dict) -> dict[tuple[str, str], dict]:
    return {(bname, fig["name"]): fig for bname, bench in results.get("benchmarks", {}).items()
            if bench.get("status") == "ok" for fig in bench.get("figures", [])}


def _change(now: float, then: float) -> float:
    return now / then - 1.0 if then else float("inf")


def drift(results: dict, reference: dict | None, source: str = "the committed results",
          threshold: float = DRIFT) -> dict:
    """Baseline medians of ``results`` against ``reference``'s; flags moves beyond ``threshold`` when the library
    versions and sizes match (else says why nothing was compared)."""
    out = {"reference": source, "threshold": threshold, "compared": False, "flags": [], "checked": 0}
    if reference is None:
        out["reason"] = f"no reference run ({source})"
        return out
    out["reference_finished"] = reference.get("finished")
    if bool(reference.get("config", {}).get("quick")) != bool(results.get("config", {}).get("quick")):
        out["reason"] = "the reference was run at other sizes (--quick on one side only)"
        return out
    versions = version_differences(results.get("machine", {}), reference.get("machine", {}))
    if versions:
        out["reason"] = "other library versions: " + ", ".join(versions)
        return out
    out["compared"] = True
    if unrecorded(results.get("machine", {}), reference.get("machine", {})):
        out["unrecorded"] = unrecorded(results.get("machine", {}), reference.get("machine", {}))
    kernels = kernel_differences(results.get("machine", {}), reference.get("machine", {}))
    if kernels:
        out["kernel_differences"] = kernels
    then = _figures(reference)
    for key, fig in _figures(results).items():
        if key not in then:
            continue
        if method_of(results, key[0]) != method_of(reference, key[0]):
            out.setdefault("method_changed", [])
            if key[0] not in out["method_changed"]:
                out["method_changed"].append(key[0])
            continue
        now_b, then_b = fig["baseline"]["median"], then[key]["baseline"]["median"]
        out["checked"] += 1
        change = _change(now_b, then_b)
        if abs(change) > threshold:
            out["flags"].append({"benchmark": key[0], "figure": key[1], "baseline_now": now_b,
                                 "baseline_then": then_b, "change": change})
    return out


def compare_runs(results: dict, earlier: dict, source: str, threshold: float = COMPARE) -> dict:
    """Every ratio median of ``results`` against ``earlier``'s; ``flagged`` beyond ``threshold``."""
    then = _figures(earlier)
    rows, missing = [], []
    for key, fig in _figures(results).items():
        if key not in then:
            missing.append(f"{key[0]}/{key[1]}")
            continue
        r_now, r_then = fig["ratio"]["median"], then[key]["ratio"]["median"]
        change = _change(r_now, r_then)
        rows.append({"benchmark": key[0], "figure": key[1], "ratio_now": r_now, "ratio_then": r_then,
                     "change": change, "flagged": abs(change) > threshold})
    return {"earlier": source, "earlier_finished": earlier.get("finished"), "threshold": threshold, "rows": rows,
            "flags": [r for r in rows if r["flagged"]], "not_in_earlier": missing,
            "version_differences": version_differences(results.get("machine", {}), earlier.get("machine", {}))}


def failed_checks(results: dict) -> list[dict]:
    """Every known-answer check that did not hold, with its benchmark and figure."""
    return [{"benchmark": b, "figure": f, **c} for (b, f), fig in _figures(results).items()
            for c in fig.get("checks", []) if not c.get("ok")]


def all_checks(results: dict) -> list[dict]:
    return [{"benchmark": b, "figure": f, **c} for (b, f), fig in _figures(results).items()
            for c in fig.get("checks", [])]


def guard(results: dict, reference: dict | None, reference_source: str, earlier: dict | None = None,
          earlier_source: str = "") -> dict:
    """Everything the guards found, as stored in results.json under ``guards``."""
    g = {"checks_failed": failed_checks(results), "drift": drift(results, reference, reference_source)}
    if earlier is not None:
        g["compare_to"] = compare_runs(results, earlier, earlier_source)
    g["flagged"] = bool(g["checks_failed"] or g["drift"]["flags"] or (earlier is not None
                                                                        and g["compare_to"]["flags"]))
    return g


def _pct(x: float) -> str:
    return f"{x:+.0%}" if x == x and abs(x) != float("inf") else str(x)


def lines(results: dict) -> list[str]:
    """Human-readable guard findings (terminal and document), each flag starting with ``FLAG``."""
    g = results.get("guards")
    if not g:
        return []
    out = []
    checks = all_checks(results)
    for c in checks:
        status = "ok" if c["ok"] else "FLAG"
        out.append(f"{status}: known answer {c['benchmark']}/{c['figure']} {c['name']}: ours {c['ours'][0]:.6g}, "
                   f"baseline {c['baseline'][0]:.6g} (largest relative difference {c['max_rel_diff']:.2g}, "
                   f"tolerance {c['rel_tol']:g} relative + {c['abs_tol']:g})")
    if not checks:
        out.append("no known-answer checks in this run")
    d = g["drift"]
    if not d["compared"]:
        out.append(f"baseline drift: not compared with {d['reference']}: {d.get('reason')}")
    else:
        for f in d["flags"]:
            out.append(f"FLAG: baseline drift {f['benchmark']}/{f['figure']}: baseline median {f['baseline_now']:.4g} "
                       f"against {f['baseline_then']:.4g} in {d['reference']} ({_pct(f['change'])}, more than "
                       f"{d['threshold']:.0%} on the same library versions): not comparable until the cause is known")
        if not d["flags"] and d["checked"]:
            out.append(f"baseline drift: {d['checked']} baseline median(s) within {d['threshold']:.0%} of "
                       f"{d['reference']} (same library versions)")
        if d.get("method_changed"):
            out.append(f"baseline drift: not compared for {', '.join(d['method_changed'])}: the benchmark measures "
                       f"differently since that run (its METHOD changed)")
        if d.get("unrecorded"):
            out.append(f"note: {d['reference']} did not record the versions of {', '.join(d['unrecorded'])}")
        if d.get("kernel_differences"):
            out.append("note: CPU kernels differ from the reference run: " + ", ".join(d["kernel_differences"]))
    c = g.get("compare_to")
    if c is not None:
        for r in c["rows"]:
            out.append(f"{'FLAG' if r['flagged'] else 'ok'}: ratio {r['benchmark']}/{r['figure']} {r['ratio_now']:.3g} "
                       f"against {r['ratio_then']:.3g} in {c['earlier']} ({_pct(r['change'])}; limit "
                       f"{c['threshold']:.0%})")
        if c["not_in_earlier"]:
            out.append(f"not in {c['earlier']}: {', '.join(c['not_in_earlier'])}")
        if c["version_differences"]:
            out.append("note: library versions differ from that run: " + ", ".join(c["version_differences"]))
    return out
