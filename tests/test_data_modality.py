"""A source whose rows contradict its declared modality is a warning at data-report time; an unknown registry key
lists the valid ones."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from fixtures_data import llava_row, write_image, write_jsonl, write_registry

REPO = Path(__file__).resolve().parents[1]


def test_modality_warnings_name_the_source_and_what_contradicts():
    from types import SimpleNamespace

    from data_mix.report import modality_warnings

    specs = {n: SimpleNamespace(modality=m) for n, m in
             [("imgs", "image"), ("txt", "text"), ("vid", "video"), ("fine", "image")]}
    media = {"imgs": Counter(rows=5, videos=2, images=3), "txt": Counter(rows=4, images=4),
             "vid": Counter(rows=3, images=3), "fine": Counter(rows=3, images=3)}
    assert modality_warnings(media, specs) == [
        "source 'imgs' declares modality 'image' but 2 of 5 drawn rows have videos (fix the registry's modality, "
        "or the data)",
        "source 'txt' declares modality 'text' but 4 of 4 drawn rows have images (fix the registry's modality, or "
        "the data)",
        "source 'vid' declares modality 'video' but none of its 3 drawn rows has a video (fix the registry's "
        "modality, or the data)"]


def test_data_report_warns_on_a_source_that_contradicts_its_modality(tmp_path, capsys):
    import runpy
    import sys

    write_image(tmp_path / "img.png")
    write_jsonl(tmp_path / "rows.jsonl", [llava_row(i) for i in range(6)])
    registry = write_registry(tmp_path / "registry.yaml", {"mine": {"format": "llava", "files": ["rows.jsonl"],
                                                                     "modality": "video"}})
    recipe = tmp_path / "mine.yaml"
    recipe.write_text("mix: {groups: {rl: {sources: [mine]}}, budget: {unit: samples, value: 6}}\neval: {bench: null}\n")
    argv = ["launch/data_report.py", f"recipe={recipe}", f"data.root={tmp_path}", f"data.registry={registry}",
            "--report", "--tokenizer=none", "--no-progress"]
    old = sys.argv
    sys.argv = argv
    try:
        with pytest.raises(SystemExit) as done:
            runpy.run_path(str(REPO / "launch" / "data_report.py"), run_name="__main__")
    finally:
        sys.argv = old
    assert done.value.code == 0
    err = capsys.readouterr().err
    assert ("launch/data_report.py: warning: source 'mine' declares modality 'video' but none of its 6 drawn rows "
            "has a video") in err


def test_unknown_registry_key_lists_the_valid_ones(tmp_path):
    from data_mix.registry import RegistryError, load_registry

    registry = write_registry(tmp_path / "registry.yaml", {"mine": {"format": "llava", "files": ["rows.jsonl"],
                                                                     "modalty": "image"}})
    with pytest.raises(RegistryError, match=r"unknown key 'modalty'; did you mean 'modality'\? \(valid keys: format, "
                                            r"files, media_root, modality,"):
        load_registry(str(registry))
