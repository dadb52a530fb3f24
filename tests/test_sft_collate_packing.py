"""Assistant-only labels (token by token) and packing equivalence (fp32, 1e-5) on the tiny model."""

from __future__ import annotations

import pytest
import torch
from fixtures_sft import assistant, sample_zoo, user

from data_mix.config import DataConfig
from data_mix.sample import Sample
from train.collate import IGNORE_INDEX, SampleEncoder, SampleEncodingError, pad_batch
from train.config import ModelConfig
from train.packing import PackingError, first_fit_decreasing, pack_batch, rope_index_fn


@pytest.fixture(scope="module")
def tiny():
    torch.set_num_threads(1)
    from train.model_loading import load_model, load_processor

    model = load_model(ModelConfig(attn_implementation="sdpa"), "cpu").eval()
    return model, load_processor(ModelConfig())


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    return sample_zoo(tmp_path_factory.mktemp("zoo"))


@pytest.fixture(scope="module")
def encoder(tiny):
    return SampleEncoder(tiny[1], DataConfig())


def _expected_labels(processor, sample, images, videos):
    """Independent construction: render each prefix with the generation prompt; the assistant turn's
    tokens are exactly what the full rendering adds after that prefix (up to and including <|im_end|>)."""
    enc = SampleEncoder(processor, DataConfig())
    full = processor.apply_chat_template(sample.messages, tokenize=False)
    ids = processor(text=[full], **enc.processor_kwargs(images, videos))["input_ids"][0].tolist()
    labels = [IGNORE_INDEX] * len(ids)
    for t, msg in enumerate(sample.messages):
        if msg["role"] != "assistant":
            continue
        prefix = processor.apply_chat_template(sample.messages[:t], tokenize=False, add_generation_prompt=True)
        upto = processor.apply_chat_template(sample.messages[:t + 1], tokenize=False)
        n_prefix = len(processor(text=[prefix], **enc.processor_kwargs(images, videos))["input_ids"][0])
        n_upto = len(processor(text=[upto], **enc.processor_kwargs(images, videos))["input_ids"][0])
        for i in range(n_prefix, n_upto):
            if i < len(ids):
                labels[i] = ids[i]
    return ids, labels


@pytest.mark.parametrize("name", ["single", "multi", "video", "text", "system"])
def test_labels_token_by_token(tiny, zoo, encoder, name):
    _, processor = tiny
    sample = zoo[name]
    from train.collate import _load_media

    images, videos = _load_media(sample, DataConfig())
    ids, expected = _expected_labels(processor, sample, images, videos)
    enc = encoder.encode(sample)
    assert enc.input_ids.tolist() == ids
    assert enc.labels.tolist() == expected
    # What is learned is the assistant text plus <|im_end|>, nothing else.
    learned = processor.tokenizer.decode([t for t in enc.labels.tolist() if t != IGNORE_INDEX])
    answers = [m["content"][0]["text"] + "<|im_end|>" for m in sample.messages if m["role"] == "assistant"]
    assert learned == "".join(answers)
    vision_ids = {processor.tokenizer.convert_tokens_to_ids(t) for t in ("<|image_pad|>", "<|video_pad|>")}
    vision_positions = [i for i, t in enumerate(ids) if t in vision_ids]
    assert bool(vision_positions) == (name != "text")
    assert all(enc.labels[i] == IGNORE_INDEX for i in vision_positions)


def test_padding_is_ignored(zoo, encoder):
    batch = pad_batch([encoder.encode(zoo["single"]), encoder.encode(zoo["multi"])], encoder.pad_id)
    pad = batch["attention_mask"] == 0
    assert pad.any() and (batch["labels"][pad] == IGNORE_INDEX).all()


def test_bad_samples_are_named(tmp_path, encoder):
    no_answer = Sample(id="q-only", source="hand", messages=[user("Hi?")], file="f.jsonl", row=4)
    with pytest.raises(SampleEncodingError, match=r"f.jsonl:5.*no assistant turn"):
        encoder.encode(no_answer)
    missing = Sample(id="gone", source="hand", images=[str(tmp_path / "nope.png")], file="g.jsonl", row=0,
                     messages=[user("image", "Color?"), assistant("red")])
    with pytest.raises(SampleEncodingError, match=r"g.jsonl:1"):
        encoder.encode(missing)
    long = Sample(id="long", source="hand", messages=[user("left " * 3000), assistant("x")], file="h.jsonl", row=2)
    with pytest.raises(SampleEncodingError, match=r"h.jsonl:3.*max 2048"):
        encoder.encode(long)


def test_the_batch_stream_applies_data_mix_bad_sample_policy(tmp_path, zoo, encoder):
    """Encoder-level bad samples go through data_mix's BadSampleTracker: counted per reason, and the skip-fraction
    check starts after data.skip_check_after samples (it was a hard-coded 100 here)."""
    from data_mix.badsample import TooManyBadSamples
    from train.data import BadDataError, BatchStream, ListSource

    missing = Sample(id="gone", source="hand", images=[str(tmp_path / "nope.png")], file="g.jsonl", row=0,
                     messages=[user("image", "Color?"), assistant("red")])
    rows = [zoo["text"], missing, zoo["text"], zoo["text"], missing, zoo["text"]]  # 2 bad of 6

    def stream(**data):
        cfg = DataConfig(**data)
        return BatchStream(ListSource(rows), SampleEncoder(encoder.processor, cfg), 2, cfg)

    lenient = stream(on_bad_sample="skip", max_skip_fraction=0.5, skip_check_after=3)
    assert len(list(lenient)) == 2  # the 4 good samples, in batches of 2
    assert (lenient.seen, lenient.skipped, dict(lenient.skip_counts)) == (6, 2, {"missing_media": 2})
    strict = stream(on_bad_sample="skip", max_skip_fraction=0.3, skip_check_after=3)
    with pytest.raises(TooManyBadSamples, match=r"2 of 5 samples were bad .*data.max_skip_fraction=0.3"):
        list(strict)  # checked at each bad sample once 3 were seen: 2 of 5 is over 0.3
    with pytest.raises(BadDataError, match=r"g.jsonl:1.*data.on_bad_sample=error"):
        list(stream(on_bad_sample="error"))
    state = lenient.state_dict()
    resumed = stream(on_bad_sample="skip", max_skip_fraction=0.5, skip_check_after=3)
    resumed.load_state_dict(state)
    assert (resumed.seen, resumed.skipped, dict(resumed.skip_counts)) == (6, 2, {"missing_media": 2})


def test_first_fit_decreasing():
    bins = first_fit_decreasing([50, 30, 60, 10, 40], 100)
    assert sorted(i for b in bins for i in b) == [0, 1, 2, 3, 4]
    assert all(sum([50, 30, 60, 10, 40][i] for i in b) <= 100 for b in bins)
    assert len(bins) == 2
    with pytest.raises(PackingError, match="packing_max_length=100"):
        first_fit_decreasing([101], 100)


def test_packed_equals_alone(tiny, zoo, encoder):
    """Loss and logits of a packed batch equal those of every sample run alone (fp32, 1e-5)."""
    model, _ = tiny
    encoded = [encoder.encode(s) for s in zoo.values()]
    packed = pack_batch(encoded, 160, encoder.pad_id, rope_index_fn(model), "sdpa")
    assert packed["input_ids"].shape[0] == 2  # five samples share two rows
    real = int(packed.pop("real_tokens"))
    padded = pad_batch(encoded, encoder.pad_id)
    assert real / packed["input_ids"].numel() > padded["attention_mask"].float().mean().item()
    with torch.no_grad():
        out = model(**packed)
        alone = [model(**pad_batch([e], encoder.pad_id)) for e in encoded]
        out_padded = model(**padded)
    # Locate each sample in the packed rows by its tokens (the packer keeps order within a row).
    seen = 0
    for row in range(packed["input_ids"].shape[0]):
        starts = (packed["position_ids"][0, row] == 0).nonzero().flatten().tolist()
        for start in starts:
            match = [i for i, e in enumerate(encoded)
                     if torch.equal(packed["input_ids"][row, start:start + len(e)], e.input_ids)]
            if not match:
                continue  # trailing padding segment
            e, ref = encoded[match[0]], alone[match[0]]
            torch.testing.assert_close(out.logits[row, start:start + len(e)], ref.logits[0], atol=1e-5, rtol=1e-5)
            seen += 1
    assert seen == len(encoded)
    n_lab = [int((e.labels[1:] != IGNORE_INDEX).sum()) for e in encoded]
    token_mean = sum(r.loss * n for r, n in zip(alone, n_lab)) / sum(n_lab)
    torch.testing.assert_close(out.loss, token_mean, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.loss, out_padded.loss, atol=1e-5, rtol=1e-5)


def test_packed_eager_mask_matches_sdpa(tiny, zoo, encoder):
    """The additive mask for eager attention gives the same logits as sdpa's boolean mask."""
    model, _ = tiny
    encoded = [encoder.encode(zoo[k]) for k in ("single", "text")]
    rope = rope_index_fn(model)
    sdpa = pack_batch(encoded, 256, encoder.pad_id, rope, "sdpa")
    eager = pack_batch(encoded, 256, encoder.pad_id, rope, "eager")
    assert sdpa["attention_mask"].dtype == torch.bool and eager["attention_mask"].dtype == torch.float32
    assert "attention_mask" not in pack_batch(encoded, 256, encoder.pad_id, rope, "flash_attention_2")
    for b in (sdpa, eager):
        b.pop("real_tokens")
    with torch.no_grad():
        torch.testing.assert_close(model(**sdpa).logits, model(**eager).logits, atol=1e-5, rtol=1e-5)
