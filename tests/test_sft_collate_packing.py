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


@pytest.fixture(scope="module")
def standin():
    """The tiny model on transformers' flash-attention code path with CPU kernels (train/flash_standin.py)."""
    from train.model_loading import disable_cache, load_model

    model = load_model(ModelConfig(attn_implementation="flash_varlen_standin"), "cpu").eval()
    disable_cache(model)
    return model


def _segments(batch) -> list[tuple[int, int, int]]:
    """(row, start, end) of every sample in a packed batch: where the text positions restart at 0."""
    out = []
    for row in range(batch["input_ids"].shape[0]):
        starts = (batch["position_ids"][0, row] == 0).nonzero().flatten().tolist() + [batch["input_ids"].shape[1]]
        out += [(row, a, b) for a, b in zip(starts, starts[1:])]
    return out


def _check_packed_equals_alone(model, encoded, packed, pad_id):
    """Logits of every sample in ``packed`` equal the sample run alone, and the packed loss and its gradients
    equal the padded batch's (fp32, 1e-5)."""
    packed = dict(packed)
    packed.pop("real_tokens")
    padded = pad_batch(encoded, pad_id)
    with torch.no_grad():
        out = model(**packed)
        alone = [model(**pad_batch([e], pad_id)) for e in encoded]
    seen = set()
    for row, a, b in _segments(packed):
        match = [i for i, e in enumerate(encoded) if len(e) == b - a and torch.equal(packed["input_ids"][row, a:b], e.input_ids)]
        if not match:
            continue  # trailing padding segment of a row
        torch.testing.assert_close(out.logits[row, a:b], alone[match[0]].logits[0], atol=1e-5, rtol=1e-5)
        seen.add(match[0])
    assert seen == set(range(len(encoded)))
    grads = []
    for batch in (packed, padded):
        model.zero_grad()
        loss = model(**batch).loss
        loss.backward()
        grads.append((loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    model.zero_grad()
    (loss_p, g_p), (loss_u, g_u) = grads
    torch.testing.assert_close(loss_p, loss_u, atol=1e-5, rtol=1e-5)
    assert g_p.keys() == g_u.keys() and len(g_p) > 10
    for name in g_p:
        torch.testing.assert_close(g_p[name], g_u[name], atol=1e-5, rtol=1e-4, msg=lambda m, n=name: f"{n}: {m}")


def test_packed_equals_alone_sdpa(tiny, zoo, encoder):
    """sdpa: five samples in two rows of at most 160 tokens, one block-diagonal causal mask per row; logits equal
    every sample run alone, loss and gradients equal the padded batch (fp32, 1e-5)."""
    model, _ = tiny
    encoded = [encoder.encode(s) for s in zoo.values()]
    packed = pack_batch(encoded, 160, encoder.pad_id, rope_index_fn(model), "sdpa")
    assert packed["input_ids"].shape[0] == 2 and packed["attention_mask"].shape[0] == 2
    padded = pad_batch(encoded, encoder.pad_id)
    assert int(packed["real_tokens"]) / packed["input_ids"].numel() > padded["attention_mask"].float().mean().item()
    _check_packed_equals_alone(model, encoded, packed, encoder.pad_id)


def test_packed_equals_alone_flash_path(standin, zoo, encoder):
    """The flash path a GPU takes (transformers' flash_attention_forward, CPU varlen kernels): the same five samples
    packed into two bins come out as ONE row without mask or padding (transformers derives cu_seqlens from the
    restarting positions only for a single row); logits, loss and gradients equal the unpacked batch."""
    from train.model_loading import attention_of

    encoded = [encoder.encode(s) for s in zoo.values()]
    assert first_fit_decreasing([len(e) for e in encoded], 160).__len__() == 2  # several rows before flattening
    packed = pack_batch(encoded, 160, encoder.pad_id, rope_index_fn(standin), attention_of(standin))
    assert packed["input_ids"].shape == (1, sum(len(e) for e in encoded)) and "attention_mask" not in packed
    assert packed["position_ids"].shape == (4, 1, packed["input_ids"].shape[1])
    assert len(_segments(packed)) == len(encoded)
    _check_packed_equals_alone(standin, encoded, packed, encoder.pad_id)


def test_the_standin_catches_several_rows_without_mask(standin, zoo, encoder):
    """The defect of issue 27 item 1, shown on the stand-in: two packed rows without a mask go through flash's plain
    branch (batch size 2: no varlen), so a row's later samples attend to its earlier ones and their logits move."""
    encoded = [encoder.encode(s) for s in zoo.values()]
    rows = pack_batch(encoded, 160, encoder.pad_id, rope_index_fn(standin), "sdpa")
    rows.pop("attention_mask")
    rows.pop("real_tokens")
    with torch.no_grad():
        out = standin(**rows)
        alone = {i: standin(**pad_batch([e], encoder.pad_id)).logits[0] for i, e in enumerate(encoded)}
    worst = 0.0
    for row, a, b in _segments(rows):
        for i, e in enumerate(encoded):
            if len(e) == b - a and torch.equal(rows["input_ids"][row, a:b], e.input_ids) and a > 0:
                worst = max(worst, (out.logits[row, a:b] - alone[i]).abs().max().item())
    assert worst > 1e-2


def test_use_cache_off_everywhere_lets_sdpa_split_a_flat_row(tiny, zoo, encoder):
    """use_cache=False on every config (train.model_loading.disable_cache): the text config's True made Qwen-VL
    build a DynamicCache in a training forward, and with a cache transformers skips packed-sequence detection,
    so a flat packed row without a mask mixed its samples. With it off, that row equals the samples alone."""
    import copy

    from train.model_loading import configs_of, disable_cache

    model = copy.deepcopy(tiny[0])
    encoded = [encoder.encode(zoo[k]) for k in ("single", "text", "video")]
    flat = pack_batch(encoded, 512, encoder.pad_id, rope_index_fn(model), "flash_attention_2")  # one row, no mask
    flat.pop("real_tokens")
    last = slice(flat["input_ids"].shape[1] - len(encoded[-1]), None)
    with torch.no_grad():
        alone = model(**pad_batch([encoded[-1]], encoder.pad_id)).logits[0]
        assert model.config.text_config.use_cache is True  # as loaded
        mixed = model(**flat).logits[0, last]
        assert disable_cache(model) == len(configs_of(model)) == 3
        assert all(c.use_cache is False for c in configs_of(model))
        split = model(**flat).logits[0, last]
    assert (mixed - alone).abs().max() > 1e-2
    torch.testing.assert_close(split, alone, atol=1e-5, rtol=1e-5)


def test_packing_refuses_an_attention_it_has_no_layout_for(tiny, zoo, encoder):
    encoded = [encoder.encode(zoo["text"])]
    with pytest.raises(PackingError, match="no packed layout for attention 'flex_attention'"):
        pack_batch(encoded, 160, encoder.pad_id, rope_index_fn(tiny[0]), "flex_attention")


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
