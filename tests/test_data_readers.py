"""Readers (LLaVA, bench, messages; JSONL, JSON, parquet, HF dirs), media checks, token counts."""

from __future__ import annotations

import json

import pytest
from fixtures_data import data_config, llava_row, write_image, write_jsonl, write_registry

from data_mix.badsample import BadSample, BadSampleTracker
from data_mix.media import load_media
from data_mix.readers import SourceRows, read_source
from data_mix.registry import load_registry
from data_mix.tokens import TokenCounter


def _source(tmp_path, rows, fmt="llava", file="d.jsonl", **entry):
    if file.endswith(".jsonl"):
        write_jsonl(tmp_path / file, rows)
    elif file.endswith(".json"):
        (tmp_path / file).write_text(json.dumps(rows, ensure_ascii=False))
    reg = write_registry(tmp_path / "reg.yaml", {"src": {"format": fmt, "files": [file], **entry}})
    return data_config(tmp_path, registry=str(reg))


def test_llava_interleaved_images_keep_placeholder_positions(tmp_path):
    for n in ("a", "b"):
        write_image(tmp_path / f"{n}.png")
    row = {"id": "x", "image": ["a.png", "b.png"], "conversations": [
        {"from": "human", "value": "Left <image>\nright <image>\nSame?"}, {"from": "gpt", "value": "yes"}]}
    data = _source(tmp_path, [row])
    [s] = list(read_source("src", data))
    assert s.id == "x" and s.images == [str(tmp_path / "a.png"), str(tmp_path / "b.png")]
    assert s.messages[0]["content"] == [{"type": "text", "text": "Left "}, {"type": "image"},
                                        {"type": "text", "text": "right "}, {"type": "image"},
                                        {"type": "text", "text": "Same?"}]
    assert s.messages[1] == {"role": "assistant", "content": [{"type": "text", "text": "yes"}]}
    assert (s.file, s.row) == (str(tmp_path / "d.jsonl"), 0)


def test_llava_json_array_equals_jsonl_and_has_random_access(tmp_path):
    write_image(tmp_path / "img.png")
    rows = [llava_row(i, answer=f"réponse {i}") for i in range(7)]
    a = [s.to_dict() for s in read_source("src", _source(tmp_path, rows))]
    b = [s.to_dict() for s in read_source("src", _source(tmp_path, rows, file="d.json"))]
    for x, y in zip(a, b):
        x.pop("file"), y.pop("file")
    assert a == b and len(a) == 7
    src = SourceRows(load_registry(str(tmp_path / "reg.yaml")).get("src"), data_config(tmp_path))
    assert src.get(5).messages[1]["content"][0]["text"] == "réponse 5"


def test_video_frame_folder_sampled_at_fps_and_capped(tmp_path):
    for f in range(30):
        write_image(tmp_path / "clip" / f"frame_{f:03d}.png")
    row = {"id": "v", "video": "clip", "conversations": [
        {"from": "human", "value": "<image>\nWhat happens?"}, {"from": "gpt", "value": "a ball moves"}]}
    data = _source(tmp_path, [row], frame_fps=10.0)
    data.video_fps, data.video_max_frames = 2.0, 4
    [s] = list(read_source("src", data))
    # LLaVA-Video marks the video with <image>: it becomes a video part; 30 frames at 10 fps -> 6 at 2 fps -> 4
    assert s.messages[0]["content"][0] == {"type": "video"} and s.images == []
    names = [p.rsplit("/", 1)[1] for p in s.videos[0]]
    assert names == ["frame_000.png", "frame_010.png", "frame_015.png", "frame_025.png"]
    images, videos = load_media(s, data)
    assert images == [] and len(videos[0]) == 4 and videos[0][0].size == (56, 56)


@pytest.mark.parametrize("row,reason,detail", [
    ({"id": 1, "image": "img.png", "conversations": [{"from": "human", "value": "<image> <image> hi"},
                                                      {"from": "gpt", "value": "x"}]},
     "placeholder_mismatch", "2 <image> tag(s) but 1 image(s)"),
    ({"id": 1, "image": ["img.png", "img.png"], "conversations": [{"from": "human", "value": "<image> hi"},
                                                                  {"from": "gpt", "value": "x"}]},
     "placeholder_mismatch", "1 <image> tag(s) but 2 image(s)"),
    ({"id": 1, "image": "img.png", "conversations": [{"from": "human", "value": "<image> hi"},
                                                      {"from": "gpt", "value": "  "}]},
     "empty_assistant_turn", "assistant turn 2"),
    ({"id": 1, "conversations": [{"from": "robot", "value": "hi"}]}, "bad_record", "unknown speaker 'robot'"),
])
def test_bad_llava_rows_name_file_row_and_reason(tmp_path, row, reason, detail):
    write_image(tmp_path / "img.png")
    data = _source(tmp_path, [llava_row(0), row])
    with pytest.raises(BadSample) as err:
        list(read_source("src", data))
    assert (err.value.reason, err.value.row, err.value.file) == (reason, 1, str(tmp_path / "d.jsonl"))
    assert detail in str(err.value) and "d.jsonl, row 2" in str(err.value)


def test_malformed_json_line_error_and_skip(tmp_path):
    write_image(tmp_path / "img.png")
    data = _source(tmp_path, [llava_row(0)])
    with open(tmp_path / "d.jsonl", "a") as fh:
        fh.write('{"id": 1, "conversations": [\n')
        fh.write(json.dumps(llava_row(2)) + "\n")
    with pytest.raises(BadSample, match=r"d.jsonl, row 2: malformed_json"):
        list(read_source("src", data))
    data.on_bad_sample = "skip"
    tracker = BadSampleTracker.from_config(data)
    assert [s.id for s in read_source("src", data, tracker)] == ["r0", "r2"]
    assert dict(tracker.counts) == {"malformed_json": 1} and tracker.seen == 3


def test_json_array_broken_mid_file_names_the_element(tmp_path):
    from data_mix.rowfiles import DataFileError

    write_image(tmp_path / "img.png")
    data = _source(tmp_path, [], file="d.json")
    good = json.dumps([llava_row(0), llava_row(1)])
    (tmp_path / "d.json").write_text(good[:-1] + ', {"id": 2, "conversations": [}]')
    with pytest.raises(DataFileError, match=r"d.json: element 3 is not valid JSON"):
        list(read_source("src", data))


def test_parquet_and_saved_hf_dataset_read_like_jsonl(tmp_path):
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    write_image(tmp_path / "img.png")
    rows = [llava_row(i) for i in range(5)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "d.parquet", row_group_size=2)
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "hf"))
    ref = [s.messages for s in read_source("src", _source(tmp_path, rows))]
    for f in ("d.parquet", "hf"):
        data = _source(tmp_path, rows, file=f)
        assert [s.messages for s in read_source("src", data)] == ref
        src = SourceRows(load_registry(data.registry).get("src"), data)
        assert len(src) == 5 and src.get(3).id == "r3" and src.get(0).id == "r0"


def _bench(**kw):
    rec = {"question": "Which object is closer?", "option": ["A. the red box", "B. the blue ball"], "answer": "A",
           "question_type": "mcq", "hint": json.dumps({"note": 1}), "image": ["img.png"], "video": [],
           "extra_info": json.dumps({"metricfunc": "multichoiceeval", "spatree0": "L1", "spatree1": "Geometry",
                                     "spatree2": "Distance"}), "session_id": "s1"}
    rec.update(kw)
    return rec


def test_bench_records_carry_metric_options_and_tags(tmp_path):
    write_image(tmp_path / "img.png")
    open_q = _bench(question="How far is the box (m)?", question_type="open", answer="2.5", option=[],
                    session_id="s2")
    data = _source(tmp_path, [_bench(), open_q], fmt="bench")
    mcq, op = list(read_source("src", data))
    assert (mcq.metricfunc, mcq.answer, mcq.level, mcq.ability, mcq.leaf) == (
        "multichoiceeval", "A", "L1", "Geometry", "Distance")
    assert mcq.metric_extra == {"note": 1, "option": ["A. the red box", "B. the blue ball"]}
    content = mcq.messages[0]["content"]
    assert [m["role"] for m in mcq.messages] == ["user"] and content[0] == {"type": "image"}
    assert "Which object is closer?\nOptions : A. the red box\nB. the blue ball" in content[1]["text"]
    assert "answer: X" in content[1]["text"]
    # an "open" multichoice question is scored with mean relative accuracy and carries no options
    assert op.metricfunc == "meanrelativeacc" and "option" not in op.metric_extra and op.question_type == "open"


def test_bench_unknown_leaf_tag_is_a_bad_record(tmp_path):
    write_image(tmp_path / "img.png")
    bad = _bench(extra_info=json.dumps({"metricfunc": "multichoiceeval", "spatree0": "L1", "spatree2": "Distanse"}))
    with pytest.raises(BadSample, match="bad_record.*'Distanse'.*'Distance'"):
        list(read_source("src", _source(tmp_path, [bad], fmt="bench")))


def test_messages_rows_with_paths_and_embedded_bytes(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    png = write_image(tmp_path / "img.png", color=(0, 0, 255)).read_bytes()
    with_path = {"messages": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Color?"}]},
                              {"role": "assistant", "content": [{"type": "text", "text": "blue"}]}],
                 "images": ["img.png"]}
    embedded = {"messages": [{"role": "user", "content": "<image>Color?"}, {"role": "assistant", "content": "blue"}],
                "images": [{"bytes": png, "path": None}]}
    inline = {"messages": [{"role": "user", "content": [{"type": "image", "image": "img.png"},
                                                         {"type": "text", "text": "Color?"}]},
                           {"role": "assistant", "content": [{"type": "text", "text": "blue"}]}]}
    [a, a2] = list(read_source("src", _source(tmp_path, [with_path, inline], fmt="messages")))
    assert a2.messages == a.messages and a2.images == a.images
    pq.write_table(pa.Table.from_pylist([embedded]), tmp_path / "m.parquet")
    data = _source(tmp_path, [], fmt="messages", file="m.parquet")
    [b] = list(read_source("src", data))
    assert a.messages == b.messages and a.images == [str(tmp_path / "img.png")] and isinstance(b.images[0], bytes)
    assert load_media(b, data)[0][0].getpixel((5, 5)) == (0, 0, 255)
    # a saved HF dataset with an Image column: rows come back undecoded, load_media decodes them
    import datasets
    from PIL import Image

    hf = datasets.Dataset.from_dict({"messages": [embedded["messages"]], "images": [[Image.open(tmp_path / "img.png")]]})
    hf.save_to_disk(str(tmp_path / "hfimg"))
    data = _source(tmp_path, [], fmt="messages", file="hfimg")
    [c] = list(read_source("src", data))
    assert c.messages == a.messages and load_media(c, data)[0][0].getpixel((5, 5)) == (0, 0, 255)


def _sample_with(tmp_path, name: str):
    data = _source(tmp_path, [llava_row(0, image=name)])
    return next(read_source("src", data)), data


def test_media_checks_name_the_reason(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("not an image")
    full = write_image(tmp_path / "full.png", size=(64, 64)).read_bytes()
    (tmp_path / "cut.png").write_bytes(full[: len(full) // 2])
    for name, reason in [("missing.png", "missing_media"), ("empty.png", "empty_media_file"),
                         ("text.png", "unreadable_image"), ("cut.png", "truncated_image")]:
        s, data = _sample_with(tmp_path, name)
        with pytest.raises(BadSample) as err:
            load_media(s, data)
        assert err.value.reason == reason and err.value.row == 0, name


def test_enormous_image_is_downscaled_within_max_pixels(tmp_path):
    write_image(tmp_path / "big.png", size=(3000, 1500))
    s, data = _sample_with(tmp_path, "big.png")
    (img,), _ = load_media(s, data)
    assert img.width * img.height <= data.image_max_pixels and abs(img.width / img.height - 2) < 0.02


def test_smart_resize_and_vision_tokens():
    from train.models.qwen_common import smart_resize

    assert smart_resize(56, 56, 28, 3136, 200704) == (56, 56)          # 4 tokens
    assert smart_resize(20, 20, 28, 3136, 200704) == (56, 56)          # upscaled to min_pixels
    h, w = smart_resize(1000, 2000, 28, 3136, 200704)
    assert h * w <= 200704 and h % 28 == 0 and w % 28 == 0 and abs(w / h - 2) < 0.1


def test_token_count_matches_the_real_processor(tmp_path, tiny_model_dir):
    """With the tiny model's tokenizer, counted tokens = the processor's input_ids length."""
    from transformers import AutoProcessor

    proc = AutoProcessor.from_pretrained(str(tiny_model_dir))
    write_image(tmp_path / "a.png", size=(112, 84))
    write_image(tmp_path / "b.png", size=(56, 56))
    row = {"id": 0, "image": ["a.png", "b.png"], "conversations": [
        {"from": "human", "value": "Compare <image> and <image>."}, {"from": "gpt", "value": "The first is larger."}]}
    data = _source(tmp_path, [row])
    data.image_max_pixels = 400 * 400  # above the tiny processor's own cap (224x224): the processor's limit counts
    write_image(tmp_path / "a.png", size=(300, 300))
    [s] = list(read_source("src", data))
    images, _ = load_media(s, data)
    text = proc.apply_chat_template(s.messages, tokenize=False)
    ids = proc(text=[text], images=images, return_tensors="pt")["input_ids"][0]
    counter = TokenCounter(data, proc)
    assert counter.kind == "processor" and counter(s) == len(ids)
    est = TokenCounter(data)(s)
    assert est > 0 and abs(est - len(ids)) / len(ids) < 0.6


def test_video_file_decodes_with_pyav_or_says_how_to_get_it(tmp_path):
    row = {"id": "v", "video": "clip.mp4", "conversations": [
        {"from": "human", "value": "<video>\nWhat happens?"}, {"from": "gpt", "value": "nothing"}]}
    data = _source(tmp_path, [row])
    data.video_fps, data.video_max_frames = 2.0, 4
    try:
        import av
    except ImportError:
        (tmp_path / "clip.mp4").write_bytes(b"\x00" * 64)
        [s] = list(read_source("src", data))
        with pytest.raises(RuntimeError, match="pip install av"):
            load_media(s, data)
        return
    import numpy as np

    with av.open(str(tmp_path / "clip.mp4"), "w") as out:  # 3 s at 10 fps
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for i in range(30):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), i * 8, np.uint8), format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    [s] = list(read_source("src", data))
    _, (frames,) = load_media(s, data)
    assert len(frames) == 4 and frames[0].size == (64, 64)
    assert TokenCounter(data).media_sizes(s) == ([], [(4, 64, 64)])  # header-only count agrees
