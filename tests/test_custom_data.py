"""Bring your own data (docs/DATA.md): LLaMA-Factory ShareGPT, Qwen-VL finetune and LLaVA-Instruct files, a
registry naming them and a recipe mixing them, through the readers, the data-mix report and a few SFT steps of
the tiny model. And custom data that cannot work fails early, saying why: an ``eval.bench`` the custom registry
does not have (exit 2 before any model loads), a JSON array in a ``.jsonl`` file (read, with a warning)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
COLORS = ("red", "green", "blue", "yellow")


def _image(path: Path, color: str, size=(56, 56)) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


def write_byod(root: Path, n: int = 12) -> Path:
    """The three formats under ``root`` as their projects ship them, ``root/registry.yaml`` and
    ``root/my_sft.yaml`` (the recipe of docs/DATA.md). Returns the recipe path."""
    # LLaMA-Factory, ShareGPT with role/content turns (its mllm_demo.json): a JSON array, "images" beside
    # "messages", an optional top-level "system".
    lf = []
    for i in range(n):
        _image(root / "llamafactory" / "mllm_demo_data" / f"{i}.png", COLORS[i % 4])
        row = {"messages": [{"role": "user", "content": "<image>What colour is the square?"},
                            {"role": "assistant", "content": f"It is {COLORS[i % 4]}."}],
               "images": [f"mllm_demo_data/{i}.png"]}
        if i % 3 == 0:
            row["system"] = "You are a careful visual assistant."
        if i % 4 == 1:  # two turns, two images
            _image(root / "llamafactory" / "mllm_demo_data" / f"{i}b.png", "white", (84, 56))
            row["messages"] += [{"role": "user", "content": "<image>And this one?"},
                                {"role": "assistant", "content": "That one is white."}]
            row["images"].append(f"mllm_demo_data/{i}b.png")
        lf.append(row)
    (root / "llamafactory" / "mllm_demo.json").write_text(json.dumps(lf, indent=2))

    # Qwen2.5-VL's qwen-vl-finetune: JSONL, "image" (a path or a list), from/value turns with "<image>\n".
    lines = []
    for i in range(n // 3):
        names = [f"images/d{i}_{k}.png" for k in range(1 + i % 2)]
        for k, name in enumerate(names):
            _image(root / "qwenvl" / name, COLORS[(i + k) % 4])
        tags = "<image>\n" * len(names)
        lines.append(json.dumps({"image": names[0] if len(names) == 1 else names, "conversations": [
            {"from": "human", "value": f"{tags}Which object is closer to the camera? A. left B. right"},
            {"from": "gpt", "value": "AB"[i % 2]}]}) + "\n")
    (root / "qwenvl" / "spatial_distance.jsonl").write_text("".join(lines))

    # LLaVA-Instruct-150K: a JSON array (llava_instruct_150k.json), here saved under a .jsonl name, as happens.
    rows = []
    for i in range(n):
        name = f"{i:012d}.png"
        _image(root / "coco" / "train2017" / name, COLORS[(i + 1) % 4])
        rows.append({"id": f"{i:012d}", "image": name, "conversations": [
            {"from": "human", "value": "<image>\nDescribe the image in one sentence."},
            {"from": "gpt", "value": f"A flat {COLORS[(i + 1) % 4]} square fills the whole picture."}]})
    rows.append({"id": "text-only", "conversations": [{"from": "human", "value": "Say hello."},
                                                      {"from": "gpt", "value": "Hello."}]})
    (root / "llava").mkdir(parents=True, exist_ok=True)
    (root / "llava" / "llava_instruct_150k.jsonl").write_text(json.dumps(rows))

    (root / "registry.yaml").write_text("""sources:
  my_llamafactory:
    description: LLaMA-Factory ShareGPT rows (messages + images)
    format: messages
    files: [llamafactory/mllm_demo.json]
    media_root: llamafactory
    modality: multi_image
  my_llava_instruct:
    description: LLaVA-Instruct-150K
    format: llava
    files: [llava/llava_instruct_150k.jsonl]
    media_root: coco/train2017
    modality: image
  my_distance:
    description: my distance QA in Qwen-VL finetune format
    format: llava
    files: [qwenvl/spatial_distance.jsonl]
    media_root: qwenvl
    modality: multi_image
    tags: {level: L1, ability: Geometry, leaf: Distance}
""")
    recipe = root / "my_sft.yaml"
    recipe.write_text(f"""bases: [sft_base]
description: my distance data mixed 1:3 (tokens) with my general data
data:
  root: {root}
  registry: {root / 'registry.yaml'}
  decontaminate: "off"   # this registry has no evaluation set to check against (name one to check)
mix:
  groups:
    general: {{weight: 3, sources: [my_llamafactory, my_llava_instruct]}}
    ability: {{weight: 1, sources: [my_distance]}}
eval:
  bench: null   # this registry has no bench-format source; name one here to evaluate during training
""")
    return recipe


@pytest.fixture(scope="module")
def byod(tmp_path_factory) -> Path:
    return write_byod(tmp_path_factory.mktemp("byod"))


def test_each_format_reads_as_its_project_means_it(byod, caplog):
    from data_mix.readers import read_source
    from train.recipe import load_recipe

    recipe = load_recipe(str(byod))
    with caplog.at_level(logging.WARNING, logger="data_mix"):
        llava = list(read_source("my_llava_instruct", recipe.data))
    assert any("llava_instruct_150k.jsonl is a JSON array" in r.message for r in caplog.records)
    assert len(llava) == 13 and llava[0].id == "000000000000" and llava[-1].images == []
    assert llava[0].images[0].endswith("coco/train2017/000000000000.png")
    assert llava[0].messages[0]["content"] == [{"type": "image"},
                                               {"type": "text", "text": "Describe the image in one sentence."}]

    lf = list(read_source("my_llamafactory", recipe.data))
    assert len(lf) == 12
    assert lf[0].messages[0] == {"role": "system",
                                 "content": [{"type": "text", "text": "You are a careful visual assistant."}]}
    assert [m["role"] for m in lf[1].messages] == ["user", "assistant", "user", "assistant"] and len(lf[1].images) == 2
    assert lf[1].messages[2]["content"][0] == {"type": "image"}

    qwen = list(read_source("my_distance", recipe.data))
    assert len(qwen) == 4 and [len(s.images) for s in qwen] == [1, 2, 1, 2]
    assert qwen[1].messages[0]["content"][:2] == [{"type": "image"}, {"type": "image"}]
    assert {s.leaf for s in qwen} == {"Distance"} and {s.level for s in qwen} == {"L1"}


def test_the_data_mix_report_of_the_recipe(byod):
    from transformers import AutoTokenizer

    from data_mix.mixer import build_mix
    from data_mix.report import format_report, realized_report
    from train.recipe import load_recipe
    from train.tiny import ensure_tiny

    recipe = load_recipe(str(byod))
    mix = build_mix(recipe.data, recipe.mix, tokenizer=AutoTokenizer.from_pretrained(str(ensure_tiny())))
    report = realized_report(mix, progress=False)
    print(format_report(report, mix))
    drawn = {s["name"]: s["samples"] for s in report["sources"]}
    assert drawn["my_distance"] == 4  # one epoch of the ability group
    assert drawn["my_llamafactory"] > 0 and drawn["my_llava_instruct"] > 0
    assert report["groups"]["ability"]["share"] == pytest.approx(0.25, abs=0.05)  # 1 : 3 in tokens
    assert report["levels"]["L1"] == 4 and mix.skips.summary().startswith("0 skipped")


@pytest.mark.slow
def test_a_few_sft_steps_on_the_tiny_model(byod, tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", WANDB_MODE="offline")
    proc = subprocess.run([sys.executable, str(REPO / "launch" / "sft.py"), f"recipe={byod}",
                           "model.name_or_path=tiny-qwen2.5-vl", f"train.output_dir={out}", "train.max_steps=3",
                           "train.per_device_batch_size=2", "train.grad_accum=1", "train.save_steps=0",
                           "train.logging_steps=1", "train.report_to=[jsonl]", "data.max_length=512", "optim.lr=1e-3"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    from train.curve import read_metrics

    losses, _ = read_metrics(out)
    assert [step for step, _ in losses] == [1, 2, 3] and all(0 < loss < 100 for _, loss in losses)
    assert json.loads((out / "train_summary.json").read_text())["samples_skipped"] == 0


# ----------------------------------------------------------------------- custom data that cannot work

def _validate(argv: list[str]) -> int:
    from train.cli import main

    def must_not_run(recipe, flags):
        raise AssertionError("the run started (and would load the model) although the recipe is invalid")

    return main("launch/sft.py", argv, must_not_run)


def test_a_custom_registry_without_the_default_bench_fails_at_validation(byod, tmp_path, capsys):
    """The recipe without ``eval.bench: null``: sft_base keeps the default bench, which this registry lacks."""
    text = byod.read_text().replace("  bench: null", "  every_steps: 500")
    recipe = tmp_path / "no_bench.yaml"
    recipe.write_text(text)
    assert _validate([f"recipe={recipe}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("launch/sft.py: error: eval.bench='spatialtree_bench' is neither a dataset in the registry ")
    assert "(it has no bench-format source)" in err and "eval.bench=null" in err

    registry = Path(byod.parent / "registry.yaml").read_text() + """  my_bench:
    format: bench
    files: [bench.jsonl]
"""
    (tmp_path / "registry.yaml").write_text(registry)
    assert _validate([f"recipe={recipe}", f"data.registry={tmp_path / 'registry.yaml'}"]) == 2
    assert "(its bench sources: my_bench)" in capsys.readouterr().err
    assert _validate([f"recipe={recipe}", f"data.registry={tmp_path / 'registry.yaml'}", "eval.bench=my_bench",
                      "--print-config"]) == 0  # a registry name is enough here (the file is read by the run)
    assert _validate([f"recipe={recipe}", "eval.bench=null", "--print-config"]) == 0
    bench_file = tmp_path / "test.jsonl"
    bench_file.write_text("")
    assert _validate([f"recipe={recipe}", f"eval.bench={bench_file}", "--print-config"]) == 0


def test_json_containers_are_read_whatever_their_extension_says(tmp_path, caplog):
    from data_mix.rowfiles import ArrayInJsonlFile, DataFileError, JsonArrayFile, JsonlFile, open_rowfile

    rows = [{"a": 1}, {"a": 2}, {"a": 3}]
    (tmp_path / "array.jsonl").write_text("\ufeff\n" + json.dumps(rows, indent=1))  # BOM, blank line, pretty
    (tmp_path / "lines.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "array.json").write_text(json.dumps(rows))
    (tmp_path / "lines.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with caplog.at_level(logging.WARNING, logger="data_mix"):
        kinds = {name: open_rowfile(str(tmp_path / name)) for name in ("array.jsonl", "lines.json", "array.json",
                                                                       "lines.jsonl")}
    assert [type(kinds[n]) for n in ("array.jsonl", "lines.json", "array.json", "lines.jsonl")] == \
        [ArrayInJsonlFile, JsonlFile, JsonArrayFile, JsonlFile]
    for f in kinds.values():
        assert [rec for _, rec in f.iter_rows()] == rows and len(f) == 3 and f.get(2) == {"a": 3}
    assert len(caplog.records) == 2
    assert "array.jsonl is a JSON array" in caplog.records[0].message and "name it .json" in caplog.records[0].message
    assert "lines.json holds one JSON object per line" in caplog.records[1].message

    # JSONL whose rows are arrays: read as one array, it ends after row 1; the rest is an error, not dropped
    (tmp_path / "rows_of_arrays.jsonl").write_text('[{"a": 1}]\n[{"a": 2}]\n')
    with pytest.raises(DataFileError, match=r"more data at byte 11, after the JSON array of 1 elements ended \(this .jsonl file starts with '\['"):
        list(open_rowfile(str(tmp_path / "rows_of_arrays.jsonl")).iter_rows())
    # a pretty-printed single object in a .json file is still the JSON-array error it was
    (tmp_path / "object.json").write_text(json.dumps({"data": rows}, indent=2))
    with pytest.raises(DataFileError, match="must hold a JSON array of objects"):
        list(open_rowfile(str(tmp_path / "object.json")).iter_rows())
