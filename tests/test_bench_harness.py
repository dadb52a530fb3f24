"""The benchmark harness: ``python -m bench --quick --only rewards packing`` writes results.json in the
promised shape (every figure: ours, baseline and their ratio, each with a median and a spread) and the
results block of the performance document; plus the statistics and ordering it relies on."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

import pytest

from bench.harness import compare, pair_figure, summarize
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
    assert machine["packages"]["torch"] and machine["packages"]["transformers"]
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
