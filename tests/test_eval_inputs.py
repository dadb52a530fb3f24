"""eval.inputs=lmms_eval: the images and frames lmms-eval 0.7.3's wrapper for each model family gives a checkpoint.

Checked against the reference code itself: frame choice against lmms-eval's own ``spatialtreebench_doc_to_visual``
(loaded by file path, as the rewards parity test loads its metrics) on videos whose frames carry their own
number; image pixels, per family, against what that family's lmms-eval wrapper does (JPEG encoder or not) +
qwen-vl-utils' ``fetch_image`` at the wrapper's patch size and pixel limits. Vision-token counts go
through the real Qwen2.5-VL processor, and the numbers are the ones printed in docs/EVAL.md.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data_mix.config import DataConfig
from eval_hooks.config import EvalConfig
from eval_hooks.evaluator import read_bench
from eval_hooks.generation import build_inputs, prompt_messages
from eval_hooks.inputs import lmms_inputs
from train.models import family_for_type

REPO = Path(__file__).resolve().parents[1]
W, H = 64, 32  # source frames of the frame-number videos


def _lmms_file(rel: str) -> Path:
    path = Path(str(metadata.distribution("lmms-eval").locate_file(f"lmms_eval/{rel}")))
    assert path.is_file(), f"lmms-eval 0.7.3 is a dev dependency (scripts/bootstrap.sh): {path} missing"
    return path


@pytest.fixture(scope="module")
def doc_to_visual():
    """lmms-eval's spatialtreebench_doc_to_visual, loaded by path (its package __init__ needs far more packages;
    its logger and metrics are not used here, so they are stubbed)."""
    stubs = {name: types.ModuleType(name) for name in (
        "lmms_eval", "lmms_eval.tasks", "lmms_eval.tasks.spatialtreebench", "lmms_eval.tasks.spatialtreebench.metrics",
        "loguru")}
    for name in list(stubs)[:-1]:
        stubs[name].__path__ = []
    metrics = ("gravityeval", "multichoiceeval", "meanrelativeacc", "cogmapeval", "gpteval", "judgemodel",
               "aff_mask_metric", "manipulateeval", "agenticnaveval")
    stubs["lmms_eval.tasks.spatialtreebench.metrics"].rule_metrics = types.SimpleNamespace(**dict.fromkeys(metrics))
    stubs["loguru"].logger = types.SimpleNamespace(warning=print, error=print, info=print)
    with pytest.MonkeyPatch.context() as mp:
        for name, module in stubs.items():
            if name not in sys.modules:
                mp.setitem(sys.modules, name, module)
        spec = importlib.util.spec_from_file_location("_lmms_spatialtreebench_utils",
                                                      _lmms_file("tasks/spatialtreebench/utils.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module.spatialtreebench_doc_to_visual


def _numbered_video(path: Path, n: int) -> Path:
    """An mp4 whose frame i shows i: left half gray (i // 16) * 12, right half gray (i % 16) * 15."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for i in range(n):
            frame = np.zeros((H, W, 3), np.uint8)
            frame[:, : W // 2], frame[:, W // 2:] = (i // 16) * 12, (i % 16) * 15
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def _number(img: Image.Image) -> int:
    a = np.asarray(img.convert("RGB"), dtype=float)
    w = a.shape[1]
    return round(a[:, : w // 4].mean() / 12) * 16 + round(a[:, 3 * w // 4:].mean() / 15)  # away from the seam


def _bench(folder: Path, records: list[dict]) -> Path:
    rows = []
    for i, rec in enumerate(records):
        extra = {"metricfunc": "multichoiceeval", "spatree0": "L2", "spatree1": "Memory", "spatree2": "CognitiveMap"}
        rows.append({"id": f"r{i}", "question": "Where is the chair?", "option": ["A. left", "B. right"],
                     "answer": "A", "question_type": "mcq", "hint": "", "extra_info": json.dumps(extra),
                     "image": rec.get("image", []), "video": rec.get("video", []),
                     "video_info": rec.get("video_info", [])})
    path = folder / "test.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _samples(bench: Path, inputs: str) -> list:
    return read_bench(EvalConfig(bench=str(bench), inputs=inputs), DataConfig())


CASES = {  # name: (frames in the video, frame_index or None)
    "frame_index of 48, thinned to 32": (300, list(range(0, 288, 6))),
    "frame_index of 20, all of them": (300, list(range(5, 105, 5))),
    "no frame_index, 300 frames: 32": (300, None),
    "no frame_index, 100 frames: 16": (100, None),
    "no frame_index, 10 frames: 16 with repeats": (10, None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_frames_are_the_ones_lmms_eval_reads(tmp_path, doc_to_visual, case):
    n, frame_index = CASES[case]
    video = _numbered_video(tmp_path / "clip.mp4", n)
    Image.new("RGB", (40, 40), "red").save(tmp_path / "still.png")
    info = [{"frame_index": frame_index}] if frame_index else []
    doc = {"video": [str(video)], "video_info": info, "image": ["still.png"]}
    theirs = [_number(f) for f in doc_to_visual(doc)]

    sample = _samples(_bench(tmp_path, [{**doc, "video": ["clip.mp4"]}]), "lmms_eval")[0]
    messages, images = lmms_inputs(sample, prompt_messages(sample), DataConfig(), family_for_type("qwen2_5_vl"))
    assert [_number(im) for im in images] == theirs  # the record's image is not used, as in lmms-eval
    assert len(theirs) == {300: 32, 100: 16, 10: 16}[n] if frame_index is None else min(32, len(frame_index))
    assert messages[0] == {"role": "system", "content": "You are a helpful assistant."}
    content = messages[1]["content"]
    assert [p["type"] for p in content] == ["image"] * len(theirs) + ["text"]
    assert content[-1]["text"].startswith("Where is the chair?\nOptions : A. left\nB. right")


# family -> (the wrapper JPEG-encodes the image first, fetch_image's image_patch_size): lmms-eval 0.7.3
# models/simple/<wrapper>.py (qwen2_vl / qwen2_5_vl: _encode_image_data_url; qwen3_vl: PIL images, patch 16)
LMMS_WRAPPERS = {"qwen2_vl": (True, 14), "qwen2_5_vl": (True, 14), "qwen3_vl": (False, 16), "qwen3_vl_moe": (False, 16)}


@pytest.mark.parametrize("family", list(LMMS_WRAPPERS))
@pytest.mark.parametrize("size", [(1920, 1080), (640, 480), (320, 240), (1000, 700)])
def test_images_equal_lmms_eval_jpeg_and_qwen_vl_utils_fetch_image(size, family):
    spec = importlib.util.spec_from_file_location("_lmms_media_encoder", _lmms_file("models/model_utils/media_encoder.py"))
    encoder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(encoder)
    try:
        import qwen_vl_utils
    except ImportError:
        pytest.fail("qwen-vl-utils 0.0.14 is a dev dependency (scripts/bootstrap.sh): pip install --no-deps it")

    rng = np.random.default_rng(size[0])
    image = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    fam = family_for_type(family)
    jpeg, patch = LMMS_WRAPPERS[family]
    assert fam.lmms_model in ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")
    url = encoder.encode_image_to_data_url(image, image_format="JPEG", mime_type="image/jpeg", convert_rgb=True,
                                           quality=85) if jpeg else image  # models/simple/qwen2_5_vl.py
    theirs = qwen_vl_utils.fetch_image({"type": "image", "image": url, "min_pixels": fam.lmms_min_pixels,
                                        "max_pixels": fam.lmms_max_pixels}, image_patch_size=patch)
    ours = fam.lmms_resize(image)
    assert ours.size == theirs.size
    assert np.array_equal(np.asarray(ours), np.asarray(theirs))


# ---------------------------------------------------------------------------------------------- token counts

TOKENS = {  # what docs/EVAL.md prints: (row, eval.inputs=training, eval.inputs=lmms_eval)
    "image 1920x1080": (252, 1980),
    "image 640x480": (252, 391),
    "image 320x240": (99, 266),
    "video 640x360, frame_index of 48 frames": (1008, 9568),
}


@pytest.fixture(scope="module")
def qwen_processor():
    """The real Qwen2.5-VL processor with transformers' own Qwen2-VL size defaults (image 3,136..1,003,520 pixels,
    video frames 100,352..602,112): limits that do not bind below 200,704 pixels, as a released Qwen2.5-VL
    checkpoint's processor (the tiny model's processor caps images at 224x224, which would)."""
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    from train.config import ModelConfig
    from train.model_loading import load_processor

    tiny = load_processor(ModelConfig())
    image, video = Qwen2VLImageProcessor(), Qwen2VLVideoProcessor()
    assert image.size["longest_edge"] >= 200704 and video.size["longest_edge"] >= 200704
    return Qwen2_5_VLProcessor(image_processor=image, video_processor=video, tokenizer=tiny.tokenizer,
                               chat_template=tiny.chat_template)


def _vision_tokens(processor, bench: Path, inputs: str) -> int:
    samples = _samples(bench, inputs)
    batch = build_inputs(processor, samples, DataConfig(), inputs=inputs)
    ids = processor.tokenizer.convert_tokens_to_ids(["<|image_pad|>", "<|video_pad|>"])
    return int(sum((batch["input_ids"] == i).sum() for i in ids))


def test_vision_token_counts_are_the_docs_table(tmp_path, qwen_processor):
    measured = {}
    for row in TOKENS:
        folder = tmp_path / row.split(",")[0].replace(" ", "_")
        folder.mkdir()
        if row.startswith("image"):
            w, h = (int(x) for x in row.split()[1].split("x"))
            Image.new("RGB", (w, h), (90, 120, 150)).save(folder / "im.png")
            bench = _bench(folder, [{"image": ["im.png"]}])
        else:
            import av

            with av.open(str(folder / "clip.mp4"), "w") as container:
                stream = container.add_stream("mpeg4", rate=10)
                stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
                for _ in range(60):
                    frame = av.VideoFrame.from_ndarray(np.full((360, 640, 3), 100, np.uint8), format="rgb24")
                    container.mux(stream.encode(frame))
                container.mux(stream.encode())
            bench = _bench(folder, [{"video": ["clip.mp4"], "video_info": [{"frame_index": list(range(48))}]}])
        measured[row] = (_vision_tokens(qwen_processor, bench, "training"),
                         _vision_tokens(qwen_processor, bench, "lmms_eval"))
    assert measured == TOKENS

    docs = (REPO / "docs/EVAL.md").read_text()
    for row, (training, lmms) in TOKENS.items():
        line = next(x for x in docs.splitlines() if x.startswith(f"| {row} |"))
        assert [c.strip() for c in line.split("|")[2:4]] == [f"{training:,}", f"{lmms:,}"], line


def test_the_tiny_model_generates_from_lmms_eval_inputs(tmp_path):
    """End to end on a real model: a 1920x1080 image as 1,980 vision tokens through generate and the scorer."""
    from eval_hooks.evaluator import BenchEvaluator
    from train.config import ModelConfig
    from train.model_loading import load_model_and_processor

    Image.new("RGB", (1920, 1080), (30, 60, 90)).save(tmp_path / "im.png")
    bench = _bench(tmp_path, [{"image": ["im.png"]}])
    cfg = EvalConfig(bench=str(bench), protocol="paper", max_new_tokens=3)
    model, processor = load_model_and_processor(ModelConfig(), device="cpu")
    batch = build_inputs(processor, _samples(bench, "lmms_eval"), DataConfig(), inputs="lmms_eval")
    assert batch["image_grid_thw"].tolist() == [[1, 66, 120]]  # 33 x 60 merged tokens = 1,980
    result = BenchEvaluator(cfg, DataConfig()).evaluate(model, processor, tmp_path / "out", step="final")
    assert result.summary["settings"]["inputs"] == "lmms_eval" and result.summary["num_samples"] == 1
    assert result.summary["settings"]["max_new_tokens"] == 3 and result.summary["weights"] == "paper_table"
