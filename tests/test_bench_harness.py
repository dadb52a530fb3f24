"""The benchmark harness: ``python -m bench --quick --only rewards packing`` writes results.json in the
promised shape (every figure: ours, baseline and their ratio, each with a median and a spread) and the
results block of the performance document; plus the statistics and ordering it relies on."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

import pytest

from bench import guards
from bench.harness import compare, known_answer, pair_figure, summarize
from bench.report import BEGIN, END, update_doc

pytestmark = pytest.mark.slow  # runs the side-by-side benchmark; make test runs it, make test-quick does not

STATS_KEYS = {"median", "spread", "n", "values"}
SPREAD_KEYS = {"q1", "q3", "min", "max"}


def check_stats(stats: dict, where: str) -> None:
    assert STATS_KEYS <= set(stats), where
    assert SPREAD_KEYS == set(stats["spread"]), where
    s = stats["spread"]
    assert s["min"] <= s["q1"] <= stats["median"] <= s["q3"] <= s["max"], (where, stats)
    assert stats["n"] == len(stats["values"]) >= 1, where


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    out, doc = tmp / "results.json", tmp / "PERFORMANCE.md"
    doc.write_text("# Performance\n\nHand-written text stays.\n")
    res = subprocess.run([sys.executable, "-m", "bench", "--quick", "--only", "rewards", "packing", "--repeats", "2",
                          "--warmup", "0", "--out", str(out), "--doc", str(doc), "--logs", str(tmp / "logs")],
                         capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(out.read_text()), doc.read_text()


def test_results_json_has_every_figure_as_a_ratio_with_median_and_spread(quick_run):
    results, _ = quick_run
    assert set(results["benchmarks"]) == {"rewards", "packing"}
    machine = results["machine"]
    for key in ("cpu", "cores_usable", "ram_gib", "packages", "torch_threads", "load_average_at_start"):
        assert machine.get(key) is not None, key
    assert machine["packages"]["torch"] and machine["packages"]["transformers"] and machine["packages"]["trl"]
    assert machine["kernels"]["aten_cpu_capability"]  # which CPU kernels ran: the cause of issue 25's swing
    assert "drift" in results["guards"] and results["guards"]["checks_failed"] == []
    for name, bench in results["benchmarks"].items():
        assert bench["status"] == "ok", (name, bench.get("reason"))
        assert bench["figures"], name
        for fig in bench["figures"]:
            where = f"{name}/{fig['name']}"
            for side in ("ours", "baseline", "ratio"):
                check_stats(fig[side], f"{where}/{side}")
            assert fig["ours"]["n"] == fig["baseline"]["n"] == fig["ratio"]["n"] >= 2, where  # repeats or batches
            pairs = [o / b for o, b in zip(fig["ours"]["values"], fig["baseline"]["values"])]
            assert fig["ratio"]["values"] == pytest.approx(pairs), where  # per pair, not median / median
            assert fig["baseline_name"] and fig["unit"] and fig["better"] in ("higher", "lower"), where
    rewards = {f["name"]: f for f in results["benchmarks"]["rewards"]["figures"]}
    assert {"multichoiceeval", "meanrelativeacc"} <= set(rewards)
    assert rewards["multichoiceeval"]["target"] and rewards["multichoiceeval"]["meets_target"] in (True, False)
    packing = {f["name"]: f for f in results["benchmarks"]["packing"]["figures"]}
    # Packed rows carry more real tokens than padded ones on the short/long mix, batch by batch.
    assert all(o > b for o, b in zip(packing["nonpad_fraction"]["ours"]["values"],
                                     packing["nonpad_fraction"]["baseline"]["values"]))
    # Known answer: a packed micro-batch has the padded one's loss (same tokens, block-diagonal attention).
    [check] = packing["step_tokens_per_s"]["checks"]
    assert check["name"] == "same_loss" and check["ok"] and check["max_rel_diff"] < 1e-4


def test_document_block_is_written_and_hand_written_text_kept(quick_run):
    results, doc = quick_run
    assert doc.startswith("# Performance\n\nHand-written text stays.\n")
    assert doc.count(BEGIN) == 1 and doc.count(END) == 1
    for bench in results["benchmarks"].values():
        for fig in bench["figures"]:
            assert f"| {fig['name']} |" in doc
    assert results["machine"]["cpu"] in doc


def test_doc_update_replaces_only_its_block(tmp_path):
    fig = pair_figure("x", "a thing.", "1/s", [2.0, 4.0], [1.0, 2.0], "base")
    results = {"started": "t0", "finished": "t1", "seconds": 1.0,
               "config": {"quick": True, "repeats": 2, "warmup": 0, "only": ["b"]},
               "machine": {"cpu": "CPU-A", "packages": {}}, "benchmarks": {"b": {"status": "ok", "figures": [fig.to_dict()]}}}
    doc = tmp_path / "P.md"
    doc.write_text(f"# P\n\nbefore\n\n{BEGIN}\nold table\n{END}\n\nafter\n")
    update_doc(results, doc)
    results["machine"]["cpu"] = "CPU-B"
    update_doc(results, doc)
    text = doc.read_text()
    assert text.startswith("# P\n\nbefore\n\n") and text.endswith("\n\nafter\n")
    assert "old table" not in text and "CPU-A" not in text and "CPU-B" in text and text.count(BEGIN) == 1


def test_summarize_and_paired_ratios():
    s = summarize([5.0, 1.0, 3.0, 2.0, 4.0])
    assert s["median"] == 3.0 and s["spread"] == {"q1": 2.0, "q3": 4.0, "min": 1.0, "max": 5.0}
    fig = pair_figure("f", "w", "u", [2.0, 9.0, 3.0], [1.0, 3.0, 3.0], "b", better="lower",
                      check=lambda o, b, r: r["median"] <= 1.5)
    assert fig.ratio["values"] == [2.0, 3.0, 1.0] and fig.ratio["median"] == 2.0 and fig.meets_target is False
    assert fig.ratio["median"] != statistics.median([2.0, 9.0, 3.0]) / statistics.median([1.0, 3.0, 3.0])
    with pytest.raises(ValueError):
        pair_figure("f", "w", "u", [1.0], [1.0, 2.0], "b")


def test_compare_warms_up_then_alternates_abba():
    calls = []
    a, b = compare(lambda: calls.append("a") or 1.0, lambda: calls.append("b") or 2.0, repeats=4, warmup=1)
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b", "b", "a"]
    assert a == [1.0] * 4 and b == [2.0] * 4


# ---------------------------------------------------------------------------- guards (issue 25): no training

VERSIONS = {"torch": "2.14.1", "transformers": "5.23.0", "trl": "1.16.0"}


def fake_run(baseline: float, ratio: float, *, versions=None, quick=False, method=1, checks=None) -> dict:
    """A results dict with one figure whose medians are ``baseline`` and ``ratio`` (ours = ratio x baseline)."""
    fig = pair_figure("tokens_per_s", "w", "tokens/s", [baseline * ratio] * 3, [baseline] * 3, "TRL",
                      checks=checks)
    return {"started": "t0", "finished": "t1", "seconds": 1.0,
            "config": {"quick": quick, "repeats": 3, "warmup": 0, "only": ["sft"]},
            "machine": {"cpu": "CPU", "python": "3.11.7", "packages": dict(versions or VERSIONS)},
            "benchmarks": {"sft": {"status": "ok", "method": method, "figures": [fig.to_dict()]}}}


def test_known_answer_holds_within_tolerance_and_fails_beyond():
    ok = known_answer("loss", "first loss", [6.8731, 6.8731], [6.8732, 6.8731], rel_tol=1e-3)
    assert ok["ok"] and ok["max_abs_diff"] == pytest.approx(1e-4)
    bad = known_answer("loss", "first loss", 6.90, 6.8731, rel_tol=1e-3)
    assert not bad["ok"] and bad["max_rel_diff"] == pytest.approx(0.0269 / 6.8731, rel=1e-3)
    assert known_answer("same", "identical", 1.0, 1.0)["ok"] and not known_answer("same", "identical", 0.0, 1.0)["ok"]
    with pytest.raises(ValueError):
        known_answer("x", "w", [1.0, 2.0], [1.0])


def test_drift_flags_a_baseline_that_moved_more_than_25_percent_on_the_same_versions():
    committed = fake_run(4587.0, 1.03)
    moved = guards.drift(fake_run(678.0, 6.02), committed, "committed")  # issue 25's 6.8x
    assert moved["compared"] and moved["checked"] == 1
    [flag] = moved["flags"]
    assert flag["figure"] == "tokens_per_s" and flag["change"] == pytest.approx(678 / 4587 - 1)
    assert guards.drift(fake_run(4587.0 * 1.2, 1.0), committed, "committed")["flags"] == []  # 20%: not flagged
    assert guards.drift(fake_run(4587.0 * 0.7, 1.0), committed, "committed")["flags"]  # -30%: flagged
    results = fake_run(678.0, 6.02)
    results["guards"] = guards.guard(results, committed, "committed")
    assert results["guards"]["flagged"]
    assert any(line.startswith("FLAG: baseline drift sft/tokens_per_s") for line in guards.lines(results))


def test_drift_is_not_compared_across_versions_sizes_or_methods():
    committed = fake_run(4587.0, 1.03)
    other = guards.drift(fake_run(678.0, 6.0, versions={**VERSIONS, "trl": "1.17.0"}), committed, "committed")
    assert not other["compared"] and other["flags"] == [] and "trl 1.16.0 -> 1.17.0" in other["reason"]
    quick = guards.drift(fake_run(678.0, 6.0, quick=True), committed, "committed")
    assert not quick["compared"] and "--quick" in quick["reason"]
    method = guards.drift(fake_run(678.0, 6.0, method=2), committed, "committed")
    assert method["compared"] and method["flags"] == [] and method["method_changed"] == ["sft"]
    # a library the older run did not record does not block the comparison; it is said
    newer = guards.drift(fake_run(678.0, 6.0, versions={**VERSIONS, "peft": "0.21.2"}), committed, "committed")
    assert newer["flags"] and newer["unrecorded"] == ["peft"]
    assert not guards.drift(fake_run(1.0, 1.0), None, "nothing")["compared"]


def test_compare_to_flags_every_ratio_more_than_15_percent_off():
    earlier = fake_run(4000.0, 1.00)
    near = guards.compare_runs(fake_run(3000.0, 1.10), earlier, "run1.json")  # baseline moved, ratio within 15%
    assert [r["flagged"] for r in near["rows"]] == [False] and near["flags"] == []
    far = guards.compare_runs(fake_run(4000.0, 1.20), earlier, "run1.json")
    assert far["flags"][0]["change"] == pytest.approx(0.20) and far["flags"][0]["ratio_then"] == 1.0
    lower = guards.compare_runs(fake_run(4000.0, 0.80), earlier, "run1.json")
    assert lower["flags"]  # both directions
    earlier["benchmarks"]["sft"]["figures"][0]["name"] = "renamed"
    missing = guards.compare_runs(fake_run(4000.0, 1.0), earlier, "run1.json")
    assert missing["rows"] == [] and missing["not_in_earlier"] == ["sft/tokens_per_s"]


def test_failed_known_answer_and_compare_to_reach_the_document(tmp_path):
    bad = known_answer("first_step_loss", "first loss", 7.5, 6.87, rel_tol=1e-3)
    results = fake_run(4000.0, 1.3, checks=[bad])
    results["guards"] = guards.guard(results, None, "committed", fake_run(4000.0, 1.0), "run1.json")
    assert results["guards"]["flagged"] and results["guards"]["checks_failed"][0]["name"] == "first_step_loss"
    doc = tmp_path / "P.md"
    update_doc(results, doc)
    text = doc.read_text()
    assert "FLAG: known answer sft/tokens_per_s first_step_loss" in text
    assert "FLAG: ratio sft/tokens_per_s 1.3 against 1 in run1.json (+30%; limit 15%)" in text


def test_compare_to_a_file_that_is_not_a_results_file_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "r.json"
    bad.write_text("{not json")
    res = subprocess.run([sys.executable, "-m", "bench", "--compare-to", str(bad), "--only", "rewards"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and res.stderr.strip().count("\n") == 0, res.stderr
    assert str(bad) in res.stderr and "not JSON" in res.stderr


def test_the_sft_benchmark_spells_out_the_work_trl_would_otherwise_change(tmp_path):
    """Issue 25's cause: SFTConfig's defaults (bf16 autocast wherever bf16 is supported, gradient checkpointing)
    changed TRL's work with the CPU; the benchmark sets both, and refuses unequal settings."""
    from transformers.utils import is_torch_bf16_available_on_device
    from trl import SFTConfig

    from bench.b_sft import same_work, trl_config

    default = SFTConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    assert default.gradient_checkpointing is True
    assert default.bf16 is is_torch_bf16_available_on_device("cpu")  # the machine decides the default
    cfg = trl_config(tmp_path, 3)
    assert (cfg.bf16, cfg.fp16, cfg.gradient_checkpointing, cfg.torch_compile) == (False, False, False, False)
    assert cfg.optim == "adamw_torch_fused" and cfg.train_sampling_strategy == "sequential"
    same_work({"autocast": "no", "optimizer": "AdamW (fused)"}, {"autocast": "no", "optimizer": "AdamW (fused)"})
    with pytest.raises(RuntimeError, match="autocast.*'no', 'bf16'"):
        same_work({"autocast": "no", "optimizer": "AdamW (fused)"}, {"autocast": "bf16", "optimizer": "AdamW (fused)"})
