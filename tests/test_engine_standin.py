"""Stand-in data from the engine: layout of every registry entry, manifest, held-out seeds, and the
data_mix readers reading every source back."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml
from fixtures_engine import Standin, standin_small

from data_mix.config import DataConfig
from data_mix.engine import BENCH_TASKS, make_standin
from data_mix.engine.standin import DEFAULT_REGISTRY, StandinError

SFT_FORMAT = "llava"


@pytest.fixture(scope="session")
def standin(tmp_path_factory) -> Standin:
    return standin_small(tmp_path_factory)


def _registry() -> dict:
    return yaml.safe_load(DEFAULT_REGISTRY.read_text())["sources"]


def _expected_rows(src: dict) -> int:
    n = src["standin"]["small"]
    return n * len(BENCH_TASKS) if src["standin"]["task"] == "bench_all" else n


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _media(row: dict) -> list[str]:
    img = row.get("image") or []
    paths = [img] if isinstance(img, str) else list(img)
    return paths + ([row["video"]] if isinstance(row.get("video"), str) else [])


def test_every_registry_source_is_laid_out_with_its_row_count(standin):
    root = standin.root
    reg = _registry()
    assert set(standin.manifest["sources"]) == set(reg)
    for name, src in reg.items():
        path = root / src["files"][0]
        rows = _rows(path)
        assert len(rows) == _expected_rows(src) == standin.manifest["sources"][name]["rows"], name
        media_root = root / src.get("media_root", "")
        for r in rows:
            for p in _media(r):
                assert (media_root / p).exists(), (name, p)
            if src["format"] == "bench":
                assert r["session_id"].startswith(f"{name}-")
                assert json.loads(r["extra_info"])["metricfunc"]
            else:
                assert r["id"].startswith(f"{name}-") and r["conversations"][0]["from"] == "human"
    level = {f"rl_l{k}": f"L{k}" for k in range(1, 5)}
    for name, lvl in level.items():
        tags = {json.loads(r["extra_info"])["spatree0"] for r in _rows(root / reg[name]["files"][0])}
        assert tags == {lvl}, name


def test_readme_and_manifest_say_synthetic(standin):
    readme = (standin.root / "STANDIN_README.md").read_text()
    assert "NOT the paper's data" in readme and "data.root=" in readme
    man = json.loads((standin.root / "standin_manifest.json").read_text())
    assert man["synthetic"] is True and man["seed"] == 0 and man["scale"] == "small"
    assert man["total_rows"] == sum(s["rows"] for s in man["sources"].values())


def test_small_standin_cost(standin):
    # The brief: --scale small in under 30 s here. CPU time is what we control (wall time depends on
    # how many other jobs share the 2 cores): this process and its worker processes together.
    assert standin.cpu_seconds < 20, standin.cpu_seconds


def test_bench_and_rl_scenes_never_appear_in_training_sources(standin):
    root = standin.root
    digests: dict[str, set[str]] = {}
    for name, src in _registry().items():
        media_root = root / src.get("media_root", "")
        digests[name] = {hashlib.sha1(p.read_bytes()).hexdigest() for p in (media_root / name).rglob("*.png")}
        assert digests[name], name
    train = set().union(*(d for n, d in digests.items() if _registry()[n]["format"] == SFT_FORMAT))
    for name, src in _registry().items():
        if src["format"] == "bench":
            assert not digests[name] & train, f"{name} shares images with SFT sources"
    assert not digests["spatialtree_bench"] & set().union(*(digests[f"rl_l{k}"] for k in range(1, 5)))


def test_data_mix_readers_read_every_source(standin):
    readers = pytest.importorskip("data_mix.readers")
    from data_mix.media import load_media

    data = DataConfig(root=str(standin.root))
    for name, info in standin.manifest["sources"].items():
        samples = list(readers.read_source(name, data))
        assert len(samples) == info["rows"], name
        images, videos = load_media(samples[0], data)
        assert len(images) == len(samples[0].images) and len(videos) == len(samples[0].videos)
        if info["format"] == "bench":
            assert all(s.metricfunc and s.leaf for s in samples), name
        if info["task"] == "general_vqa_video":
            assert len(videos) == 1 and len(videos[0]) == 8 and videos[0][0].size == (56, 56)


def test_standin_entry_can_pick_kinds_and_a_fixed_option_order(tmp_path):
    path = tmp_path / "reg.yaml"
    entry = {"format": "llava", "files": ["d.jsonl"], "media_root": "m",
             "standin": {"task": "distance", "small": 6, "kinds": ["closer"], "option_order": "fixed"}}
    path.write_text(yaml.safe_dump({"sources": {"dist": entry}}))
    man = make_standin(tmp_path / "out", registry=path, progress=False, workers=1)
    assert man["sources"]["dist"]["kinds"] == ["closer"] and man["sources"]["dist"]["option_order"] == "fixed"
    rows = _rows(tmp_path / "out" / "d.jsonl")
    assert len(rows) == 6 and all("closer" in r["conversations"][0]["value"] for r in rows)


def test_same_seed_same_standin_and_bad_entries_are_named(tmp_path):
    reg = _registry()
    small = {k: dict(v, standin=dict(v["standin"], small=2)) for k, v in reg.items() if k in (
        "spatial_correspondence", "llava_video", "rl_l4")}
    path = tmp_path / "reg.yaml"
    path.write_text(yaml.safe_dump({"sources": small}))
    a = make_standin(tmp_path / "a", registry=path, seed=3, progress=False, workers=1)
    make_standin(tmp_path / "b", registry=path, seed=3, progress=False, workers=2)
    files_a = {str(p.relative_to(tmp_path / "a")): p.read_bytes() for p in (tmp_path / "a").rglob("*")
               if p.is_file() and p.name != "STANDIN_README.md" and p.name != "standin_manifest.json"}
    files_b = {str(p.relative_to(tmp_path / "b")): p.read_bytes() for p in (tmp_path / "b").rglob("*")
               if p.is_file() and p.name != "STANDIN_README.md" and p.name != "standin_manifest.json"}
    assert files_a == files_b and a["total_rows"] == 6

    for bad, why in (({"format": "llava", "files": ["x.jsonl"], "standin": {"task": "bench_l1", "small": 1}},
                      "bench-only"),
                     ({"format": "bench", "files": ["x.jsonl"], "standin": {"task": "general_vqa", "small": 1}},
                      "no SpatialTree-Bench form"),
                     ({"format": "messages", "files": ["x.jsonl"], "standin": {"task": "distance", "small": 1}},
                      "not 'messages'"),
                     ({"format": "llava", "files": ["x.parquet"], "standin": {"task": "distance", "small": 1}},
                      ".jsonl or .json"),
                     ({"format": "llava", "files": ["x.jsonl"], "standin": {"task": "distanse", "small": 1}},
                      "unknown engine task"),
                     ({"format": "llava", "files": ["x.jsonl"], "standin": {"task": "distance", "small": 1,
                                                                             "kind": ["closer"]}},
                      "did you mean 'kinds'"),
                     ({"format": "llava", "files": ["x.jsonl"], "standin": {"task": "distance", "small": 1,
                                                                             "kinds": ["nearer"]}},
                      "unknown kind")):
        path.write_text(yaml.safe_dump({"sources": {"my_source": bad}}))
        with pytest.raises(StandinError, match="my_source") as err:
            make_standin(tmp_path / "bad", registry=path, progress=False, workers=1)
        assert why in str(err.value)
