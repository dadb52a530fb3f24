"""The tiny-model cache key is the code the process runs (train/tiny/__init__.py).

A copy of the ``train.tiny`` package in a scratch directory: a process imports its builders, then the copy's
``common.py`` is edited on disk (what it writes into ``tiny_model.json``). Before the fix the key was hashed from the files
on disk when asked, so that process stored the old code's model under the new code's key (found once as a stale
tokenizer.json in a shared cache directory). Now the key is the old code's, the stored model is the old code's,
and only a fresh process (which runs the edited code) gets the new key.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OLD = 'write_text(json.dumps(meta))'
NEW = 'write_text(json.dumps(dict(meta, edited=1)))'


EDIT_AFTER_IMPORT = f"""
import json, pathlib, sys
import train.tiny as tiny
before = tiny.source_hash("tiny-qwen2-vl")  # imports every builder module
common = pathlib.Path(tiny.__file__).parent / "common.py"
common.write_text(common.read_text().replace({OLD!r}, {NEW!r}))
path = tiny.ensure_tiny(name="tiny-qwen2-vl")
print(json.dumps({{"before": before, "after": tiny.source_hash("tiny-qwen2-vl"), "dir": str(path)}}))
"""
KEY = "import train.tiny as t; print(t.source_hash('tiny-qwen2-vl'))"
EDIT_BEFORE_BUILDER = """
import pathlib
import train.tiny as tiny
common = pathlib.Path(tiny.__file__).parent / "common.py"
common.write_text(common.read_text().replace("edited=1", "edited=2") + "\\nMARK = 2\\n")
from train.tiny import common as loaded
print(tiny.source_hash("tiny-qwen2-vl"), loaded.MARK)
"""
pytestmark = pytest.mark.slow  # fresh processes building a tiny model from a copied package (~40 s)


def _run(code: str, src: Path) -> str:
    env = dict(os.environ, PYTHONPATH=str(src), SPATIALTREE_CACHE=str(src / "cache"), OMP_NUM_THREADS="1",
               PYTHONDONTWRITEBYTECODE="1")
    res = subprocess.run([sys.executable, "-c", code], cwd=src, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout.strip().splitlines()[-1]


def test_cache_key_and_stored_model_are_the_imported_code_not_the_files_on_disk(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(REPO / "train" / "tiny", src / "train" / "tiny", ignore=shutil.ignore_patterns("__pycache__"))
    (src / "train" / "__init__.py").write_text("")
    assert OLD in (src / "train" / "tiny" / "common.py").read_text()
    old_key = _run(KEY, src)

    got = json.loads(_run(EDIT_AFTER_IMPORT, src))
    assert got["before"] == got["after"] == old_key  # the key of the code this process runs, edit or not
    stored = Path(got["dir"])
    assert stored.name.split("-")[-2] == old_key and (stored / "tiny_model.json").is_file()
    meta = json.loads((stored / "tiny_model.json").read_text())
    assert meta["name"] == "tiny-qwen2-vl" and "edited" not in meta  # the old code's output under the old code's key
    assert not list(stored.parent.glob("*.tmp-*"))  # the atomic write left no temporary directory

    new_key = _run(KEY, src)  # a fresh process runs the edited file: another key, so the stored model is not reused
    assert new_key != old_key

    # A builder module imported after the edit: the key is the edited code's, the one that runs.
    key, mark = _run(EDIT_BEFORE_BUILDER, src).split()
    assert mark == "2" and key == _run(KEY, src) and key not in (old_key, new_key)


BUILD_UNDER_ZERO3 = """
import json, os, pathlib, sys
import torch.distributed as dist
from transformers.integrations import HfDeepSpeedConfig
from transformers.integrations.deepspeed import is_deepspeed_zero3_enabled
from safetensors import safe_open
rank = os.environ["RANK"]
os.environ["SPATIALTREE_CACHE"] = os.path.join(os.environ["SPATIALTREE_CACHE"], "rank" + rank)  # each rank builds
import train.tiny as tiny
dist.init_process_group("gloo")
live = HfDeepSpeedConfig({"zero_optimization": {"stage": 3}, "train_micro_batch_size_per_gpu": 1})  # kept alive
assert is_deepspeed_zero3_enabled()
path = tiny.ensure_tiny(name="tiny-qwen2-vl")
assert is_deepspeed_zero3_enabled()  # the process's ZeRO-3 setting is restored after the build
shapes = {}
for f in path.glob("*.safetensors"):
    with safe_open(str(f), "pt") as st:
        shapes.update({k: list(st.get_slice(k).get_shape()) for k in st.keys()})
got = {"n": len(shapes), "empty": [k for k, s in shapes.items() if 0 in s or not s],
       "config": (path / "config.json").is_file()}
pathlib.Path(sys.argv[1], "rank" + rank + ".json").write_text(json.dumps(got))
dist.destroy_process_group()
"""


def test_first_use_inside_a_zero3_job_stores_complete_weights_on_every_rank(tmp_path):
    """A tiny name's first use in a 2-rank job whose TrainingArguments name a ZeRO-3 config (the ZeRO-3 eval test
    on a cold cache) once cached empty tensors (the model was partitioned as it was built) and, on rank 1, a
    directory without weights or config (transformers saves on rank 0 only)."""
    from test_sft_dist import free_port

    port = free_port()
    src = tmp_path / "src"
    shutil.copytree(REPO / "train" / "tiny", src / "train" / "tiny", ignore=shutil.ignore_patterns("__pycache__"))
    (src / "train" / "__init__.py").write_text("")
    (src / "build.py").write_text(BUILD_UNDER_ZERO3)
    env = dict(os.environ, PYTHONPATH=str(src), SPATIALTREE_CACHE=str(src / "cache"), OMP_NUM_THREADS="1",
               PYTHONDONTWRITEBYTECODE="1")
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                          str(port), "build.py", str(tmp_path)], cwd=src, env=env, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    for rank in (0, 1):
        got = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert got == {"n": got["n"], "empty": [], "config": True} and got["n"] > 50, (rank, got)
