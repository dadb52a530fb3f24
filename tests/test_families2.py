"""The family matrix rows of InternVL (transformers-native layout), Qwen3.5 and Qwen3.5-MoE, on their tiny models.

Per family: the tiny model loads through from_pretrained with the real processor; the family's parameter groups
cover every tensor and freezing a group holds tensor by tensor through an optimizer step; the blank vision call
reaches the tower; packing equals no packing (InternVL, loss and gradients within 1e-5) or is refused (Qwen3.5,
with the leak of its linear-attention state across a packed row measured).
"""

from __future__ import annotations

import pytest
import torch
from fixtures_sft import sample_zoo

from data_mix.config import DataConfig
from train.collate import IGNORE_INDEX, SampleEncoder, pad_batch
from train.config import ModelConfig

FAMILIES = {"tiny-internvl": "internvl", "tiny-qwen3.5": "qwen3_5", "tiny-qwen3.5-moe": "qwen3_5_moe"}
CLASSES = {"tiny-internvl": ("InternVLForConditionalGeneration", "InternVLProcessor"),
           "tiny-qwen3.5": ("Qwen3_5ForConditionalGeneration", "Qwen3VLProcessor"),
           "tiny-qwen3.5-moe": ("Qwen3_5MoeForConditionalGeneration", "Qwen3VLProcessor")}


@pytest.fixture(scope="module")
def loaded():
    """name -> (model in eval mode, processor), loaded lazily through the project's loader."""
    from train.model_loading import load_model, load_processor

    torch.set_num_threads(1)
    cache: dict[str, tuple] = {}

    def get(name: str):
        if name not in cache:
            cfg = ModelConfig(name_or_path=name, attn_implementation="sdpa")
            torch.manual_seed(0)
            cache[name] = (load_model(cfg, "cpu").eval(), load_processor(cfg))
        return cache[name]

    return get


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    return sample_zoo(tmp_path_factory.mktemp("zoo2"))


def _family(model):
    from train.models import family_for_model

    return family_for_model(model)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_tiny_model_loads_with_its_real_processor(loaded, name):
    import numpy as np
    from PIL import Image

    model, processor = loaded(name)
    assert (type(model).__name__, type(processor).__name__) == CLASSES[name]
    assert _family(model).name == FAMILIES[name] and _family(model).tiny_name == name
    assert sum(p.numel() for p in model.parameters()) < 2_000_000
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 130, 3), dtype=np.uint8))
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Which is closer?"}]}]
    text = processor.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    inputs = processor(text=[text], images=[image], return_tensors="pt")
    expected = processor._get_num_multimodal_tokens(image_sizes=[(64, 130)]).num_image_tokens[0]
    # InternVL's count includes its <img> </img> markers, Qwen's counts the pads only
    markers = 2 if name == "tiny-internvl" else 0
    assert int((inputs["input_ids"] == model.config.image_token_id).sum()) == expected - markers
    assert model.config.image_token_id in _family(model).suppressed_token_ids(processor, model)
    with torch.no_grad():
        logits = model(**inputs).logits
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", list(FAMILIES))
def test_assistant_span_is_the_answer_and_its_end_token(loaded, zoo, name):
    _, processor = loaded(name)
    enc = SampleEncoder(processor, DataConfig()).encode(zoo["single"])
    learned = processor.tokenizer.decode(enc.labels[enc.labels != IGNORE_INDEX])
    # Qwen3.5's template trains an empty think block before an answer that carries none (thinking by default)
    assert learned == ("<think>\n\n</think>\n\nred<|im_end|>" if "qwen3.5" in name else "red<|im_end|>")


@pytest.mark.parametrize("name", list(FAMILIES))
@pytest.mark.parametrize("frozen", ["vision", "projector", "llm"])
def test_freeze_holds_tensor_by_tensor(loaded, zoo, name, frozen):
    """Every tensor is in exactly one group; after an AdamW step the frozen group is bit-identical and every
    tensor of the trained groups that got a gradient moved."""
    import copy

    from train.config import FreezeConfig, OptimConfig
    from train.module_groups import apply_freeze, build_optimizer, group_of

    base, processor = loaded(name)
    model = copy.deepcopy(base).train()
    groups = {n: group_of(n, _family(model).groups) for n, _ in model.named_parameters()}
    assert {g for g in groups.values()} == {"vision", "projector", "llm"}
    apply_freeze(model, FreezeConfig(**{g: g == frozen for g in ("vision", "projector", "llm")}))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    encoder = SampleEncoder(processor, DataConfig())
    batch = pad_batch([encoder.encode(zoo[k]) for k in ("single", "multi")], encoder.pad_id)
    optim = build_optimizer(model, OptimConfig(lr=1e-2, vision_lr=1e-2, projector_lr=1e-2))
    model(**batch).loss.backward()
    optim.step()
    moved = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert not {n for n in moved if groups[n] == frozen}, "a frozen tensor changed"
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert with_grad and with_grad <= moved
    assert {groups[n] for n in with_grad} == {"vision", "projector", "llm"} - {frozen}


@pytest.mark.parametrize("name", list(FAMILIES))
def test_blank_vision_call_reaches_tower_and_projector(loaded, name):
    model, _ = loaded(name)
    family = _family(model)
    owner = family.vision_owner(model)
    model.zero_grad()
    for kind in family.pixel_keys:
        out = family.blank_vision_output(owner, kind)
        assert out.ndim == 0 and torch.isfinite(out)
        (out * 1.0).backward()
    touched = {g for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0
               for g in [__import__("train.module_groups", fromlist=["group_of"]).group_of(n, family.groups)]}
    model.zero_grad()
    assert touched == {"vision", "projector"}


def _encoded(loaded, zoo, name, keys):
    _, processor = loaded(name)
    encoder = SampleEncoder(processor, DataConfig())
    return [encoder.encode(zoo[k]) for k in keys], encoder.pad_id


def _packed_row(encoded, position_fn):
    """All samples end to end in one row: positions per sample, a block-diagonal causal mask."""
    from train.collate import concat_vision
    from train.packing import block_causal_mask

    positions = torch.cat([position_fn(e) for e in encoded], dim=1)
    segments = torch.cat([torch.full((len(e),), i) for i, e in enumerate(encoded)])[None]
    batch = {"input_ids": torch.cat([e.input_ids for e in encoded])[None],
             "labels": torch.cat([e.labels for e in encoded])[None],
             "mm_token_type_ids": torch.cat([e.mm_token_type_ids for e in encoded])[None],
             "position_ids": positions[:, None] if positions.shape[0] > 1 else positions,
             "attention_mask": block_causal_mask(segments), **concat_vision(encoded)}
    return batch


@pytest.mark.parametrize("name", ["tiny-qwen3.5", "tiny-qwen3.5-moe"])
def test_qwen3_5_packing_is_refused_because_linear_attention_state_leaks(loaded, zoo, name):
    """The refusal is a one-line error at start; the reason is real: packed with correct positions and a
    block-diagonal mask, the first sample of a row matches its run alone but the later ones do not, because
    the Gated DeltaNet layers carry state across the row."""
    from types import SimpleNamespace

    from train.models.qwen_common import QwenVLFamily

    model, _ = loaded(name)
    family = _family(model)
    recipe = SimpleNamespace(train=SimpleNamespace(packing=True), grpo=None)
    with pytest.raises(ValueError) as err:
        family.check_recipe(recipe)
    assert "\n" not in str(err.value) and "train.packing" in str(err.value) and "Gated DeltaNet" in str(err.value)
    with pytest.raises(ValueError, match="Gated DeltaNet"):
        family.position_fn(model)

    encoded, pad_id = _encoded(loaded, zoo, name, ("single", "text", "system"))
    positions = QwenVLFamily.position_fn(family, model)  # the 4-row positions the other Qwen families pack with
    with torch.no_grad():
        packed = model(**_packed_row(encoded, positions)).logits[0]
        alone = [model(**pad_batch([e], pad_id)).logits[0] for e in encoded]
    start, diffs = 0, []
    for e, ref in zip(encoded, alone):
        diffs.append((packed[start:start + len(e)] - ref).abs().max().item())
        start += len(e)
    assert diffs[0] < 1e-5, diffs  # positions and mask are right: the first sample is exact
    assert min(diffs[1:]) > 1e-3, diffs  # every later sample reads its predecessors' state


def _big_samples(root):
    """An image above data.image_max_pixels (640x480 > 200,704), a wide one, and 6 large video frames."""
    from fixtures_sft import assistant, user
    from PIL import Image

    from data_mix.sample import Sample

    root.mkdir(parents=True, exist_ok=True)
    paths = {}
    for label, (w, h) in {"large": (640, 480), "wide": (300, 90), "frame": (700, 400)}.items():
        paths[label] = str(root / f"{label}.png")
        Image.new("RGB", (w, h), (120, 90, 60)).save(paths[label])
    return [Sample(id="large", source="hand", images=[paths["large"], paths["wide"]],
                   messages=[user("image", "image", "Which is wider?"), assistant("The second.")]),
            Sample(id="frames", source="hand", videos=[[paths["frame"]] * 6],
                   messages=[user("video", "Did it move?"), assistant("no")])]


@pytest.mark.parametrize("name", list(FAMILIES))
def test_counted_tokens_equal_encoded_tokens(loaded, zoo, tmp_path, name):
    """The family's token counter (through the processor) gives exactly the encoded length of every sample:
    single and multi image, video frames, text only, a system turn, images above the pixel cap."""
    model, processor = loaded(name)
    data = DataConfig()
    counter = _family(model).token_counter(data, processor)
    assert counter.kind == "processor"
    encoder = SampleEncoder(processor, data)
    for sample in [*zoo.values(), *_big_samples(tmp_path / "big")]:
        assert counter(sample) == len(encoder.encode(sample)), sample.id


@pytest.mark.parametrize("name", list(FAMILIES))
def test_lora_trains_the_language_model_and_merges_into_a_plain_checkpoint(loaded, tmp_path, name):
    """Two SFT steps with LoRA on the language model (projector trained whole, vision frozen); the merged
    checkpoint loads with plain transformers (no peft): vision tensors unchanged, attention weights and the
    projector changed, the token embedding untouched."""
    from sft_child import train_zoo
    from transformers import AutoModelForImageTextToText

    from train.module_groups import group_of

    base, _ = loaded(name)
    out = tmp_path / "run"
    assert train_zoo(out, tmp_path / "zoo", [f"model.name_or_path={name}", "train.max_steps=2", "train.save_steps=0",
                                             "model.lora.enabled=true", "model.lora.r=4", "model.lora.alpha=8",
                                             "model.lora.dropout=0.0", "model.freeze.vision=true"]) == 0
    merged = AutoModelForImageTextToText.from_pretrained(out)
    assert type(merged) is type(base)
    start, end = dict(base.named_parameters()), dict(merged.named_parameters())
    assert start.keys() == end.keys() and not any("lora" in n for n in end)
    changed = {n for n in start if not torch.equal(start[n], end[n])}
    groups = _family(base).groups
    assert not {n for n in changed if group_of(n, groups) == "vision"}
    assert {n for n in changed if group_of(n, groups) == "projector"}
    assert any(n.endswith("layers.1.self_attn.q_proj.weight") for n in changed)  # an adapter merged in
    assert not {n for n in changed if "embed_tokens" in n}


# ------------------------------------------------------------------------------------------- SFT learns

LEARN_STEPS, LEARN_BATCH, HELDOUT = 128, 16, 100


@pytest.fixture(scope="module")
def quickstart_small(tmp_path_factory):
    """The quickstart's task (train/quickstart_data.py), sized for LEARN_STEPS steps of LEARN_BATCH fresh rows."""
    from train.quickstart_data import make_quickstart_data

    return make_quickstart_data(tmp_path_factory.mktemp("qs2"), n_train=LEARN_STEPS * LEARN_BATCH, n_heldout=HELDOUT)


def heldout_accuracy(model, processor, bench_file) -> float:
    """Accuracy on the held-out records: the option letter (A or B) the model ranks higher as the first answer
    token, on prompts rendered with the family's generation arguments for a non-thinking answer."""
    from data_mix.media import load_media
    from eval_hooks.config import EvalConfig
    from eval_hooks.evaluator import read_bench
    from eval_hooks.generation import prompt_messages

    data = DataConfig()
    samples = read_bench(EvalConfig(bench=str(bench_file)), data)
    family = _family(model)
    kwargs = family.chat_template_kwargs(thinking=False)
    texts, images = [], []
    for s in samples:
        texts.append(processor.apply_chat_template(prompt_messages(s), add_generation_prompt=True, tokenize=False,
                                                   **kwargs))
        images.extend(load_media(s, data)[0])
    batch = processor(text=texts, images=images, padding=True, padding_side="left", return_tensors="pt")
    letters = processor.tokenizer.convert_tokens_to_ids(["A", "B"])
    model.eval()
    with torch.no_grad():
        logits = model(**batch).logits[:, -1, letters]
    picked = ["AB"[i] for i in logits.argmax(-1).tolist()]
    return sum(p == s.answer for p, s in zip(picked, samples)) / len(samples)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(FAMILIES))
def test_sft_learns_the_quickstart_task(loaded, quickstart_small, tmp_path, name):
    """The quickstart recipe with only model.name_or_path changed (and a shorter budget): held-out accuracy goes
    from chance to >= 0.9 (vision frozen, as the quickstart)."""
    from transformers import AutoModelForImageTextToText

    from train.recipe import load_recipe
    from train.sft import run

    base, processor = loaded(name)
    bench = quickstart_small / "distance_heldout" / "distance_bench.jsonl"
    before = heldout_accuracy(base, processor, bench)
    out = tmp_path / "run"
    recipe = load_recipe("quickstart_sft", [
        f"model.name_or_path={name}", f"data.root={quickstart_small}", f"train.output_dir={out}",
        f"mix.budget.value={LEARN_STEPS * LEARN_BATCH}", f"train.per_device_batch_size={LEARN_BATCH}",
        "optim.scheduler=constant", "eval.bench=null", "train.report_to=[jsonl]"])
    assert run(recipe, []) == 0
    after = heldout_accuracy(AutoModelForImageTextToText.from_pretrained(out), processor, bench)
    assert before <= 0.65, f"{name}: step-0 held-out accuracy {before} is not near chance (0.5)"
    assert after >= 0.9, f"{name}: held-out accuracy {after} after {LEARN_STEPS} steps (from {before})"
