"""The family matrix rows of InternVL (transformers-native layout), Qwen3.5 and Qwen3.5-MoE, on their tiny models.

A sibling of tests/test_families_seam.py with the same session-scoped pieces (tests/fixtures_families.py: the
loaded-model cache, ``Loaded``): the seam's matrix checks are called here on these rows (classes from
config.json, counted == encoded tokens, assistant labels == the template's generation marks, freeze tensor by
tensor, blank vision calls exact and reaching every vision tensor); what differs per family is written here:
packing (InternVL: packed == padded through the seam's check; Qwen3.5: refused, and the leak of its
linear-attention state across a packed row measured), rollout suppression (InternVL has no video token id:
frames become image tiles), the Qwen3.5 think block in the assistant span, LoRA merge, and SFT learning.
"""

from __future__ import annotations

import pytest
import test_families_seam as matrix
import torch
from fixtures_engine import standin_small
from fixtures_families import _LOADED, Loaded
from fixtures_sft import sample_zoo

from data_mix.config import DataConfig
from train.collate import IGNORE_INDEX, SampleEncoder, pad_batch
from train.config import ModelConfig

FAMILIES = {"tiny-internvl": "internvl", "tiny-qwen3.5": "qwen3_5", "tiny-qwen3.5-moe": "qwen3_5_moe"}
CLASSES = {"tiny-internvl": ("InternVLForConditionalGeneration", "InternVLProcessor"),
           "tiny-qwen3.5": ("Qwen3_5ForConditionalGeneration", "Qwen3VLProcessor"),
           "tiny-qwen3.5-moe": ("Qwen3_5MoeForConditionalGeneration", "Qwen3VLProcessor")}


ROWS2 = [("tiny-internvl", "internvl"), ("tiny-qwen3.5", "qwen3_5"), ("tiny-qwen3.5-moe", "qwen3_5_moe")]
FAMILIES = dict(ROWS2)


def load2(name: str) -> Loaded:
    """As fixtures_families.load, in the same cache, for the rows of this file."""
    if name not in _LOADED:
        from train.model_loading import load_model_and_processor

        torch.set_num_threads(1)
        model, processor = load_model_and_processor(ModelConfig(name_or_path=name, attn_implementation="sdpa"),
                                                    device="cpu")
        _LOADED[name] = Loaded(name, FAMILIES[name], model.eval(), processor)
    return _LOADED[name]


@pytest.fixture(scope="session", params=list(FAMILIES))
def row(request) -> Loaded:
    return load2(request.param)


@pytest.fixture(scope="module")
def loaded():
    """name -> (model, processor) of a row (the tests below that are not the seam's own)."""
    def get(name: str):
        got = load2(name)
        return got.model, got.processor

    return get


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    return sample_zoo(tmp_path_factory.mktemp("zoo2"))


@pytest.fixture(scope="session")
def standin(tmp_path_factory):
    return standin_small(tmp_path_factory)


def _family(model):
    from train.models import family_for_model

    return family_for_model(model)


# ------------------------------------------------------------------------------- the seam's matrix checks

def test_found_from_config_json_with_real_classes(row):
    matrix.test_each_family_is_found_from_config_json_and_loads_its_real_classes(row)


def test_counted_tokens_equal_encoded_tokens(row, standin, tmp_path_factory):
    matrix.test_counted_tokens_equal_encoded_tokens(row, standin, tmp_path_factory)


def test_assistant_labels_are_the_templates_generation_marks(row, zoo):
    matrix.test_assistant_labels_are_the_templates_generation_marks(row, zoo)


@pytest.mark.parametrize("frozen", ["vision", "projector", "llm"])
def test_freeze_holds_tensor_by_tensor(row, zoo, frozen):
    from train.config import FreezeConfig

    matrix.test_freeze_holds_tensor_by_tensor(row, zoo, FreezeConfig(**{g: g == frozen for g in
                                                                        ("vision", "projector", "llm")}))


def test_blank_vision_calls_add_zero_and_reach_every_vision_tensor(row, zoo):
    matrix.test_blank_vision_calls_add_zero_and_reach_every_vision_tensor(row, zoo)


def test_internvl_packed_batch_gives_the_padded_loss_and_gradients(zoo):
    matrix.test_packed_batch_gives_the_padded_loss_and_gradients(load2("tiny-internvl"), zoo)


def test_rollouts_suppress_the_vision_placeholders(row):
    from train.grpo.trl_backend import suppressed_tokens

    ids = set(suppressed_tokens(row.processor, row.model))
    tok = row.processor.tokenizer
    placeholders = ["<IMG_CONTEXT>", "<img>", "</img>", "<video>"] if row.model_type == "internvl" else \
        ["<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>"]
    assert set(tok.convert_tokens_to_ids(placeholders)) <= ids and row.model.config.image_token_id in ids
    assert tok.eos_token_id not in ids and tok.pad_token_id not in ids


def test_a_rollout_stops_at_the_familys_end_of_turn(row, zoo):
    matrix.check_stop_tokens(row.model, row.processor, zoo)


# ------------------------------------------------------------------------------- what differs per family

@pytest.mark.parametrize("name", list(FAMILIES))
def test_assistant_span_is_the_answer_and_its_end_token(loaded, zoo, name):
    _, processor = loaded(name)
    enc = SampleEncoder(processor, DataConfig()).encode(zoo["single"])
    learned = processor.tokenizer.decode(enc.labels[enc.labels != IGNORE_INDEX])
    # Qwen3.5's template trains an empty think block before an answer that carries none (thinking by default)
    assert learned == ("<think>\n\n</think>\n\nred<|im_end|>" if "qwen3.5" in name else "red<|im_end|>")


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

@pytest.fixture(scope="module")
def colours(tmp_path_factory):
    """The training layer's colour task (tests/test_families_train.py): 256 training, 40 held-out squares."""
    from test_families_train import colour_samples

    root = tmp_path_factory.mktemp("colours2")
    return colour_samples(root, 256, seed=0), colour_samples(root, 40, seed=1)


def colour_accuracy(model_path: str, held_out: list) -> float:
    """test_families_train.accuracy: greedy, 3 new tokens, the answer starts with the colour, the prompt rendered
    with the family's generation arguments for a non-thinking answer."""
    from test_families_train import accuracy

    return accuracy(model_path, held_out)


# Steps per row: the training layer's 30, except dense Qwen3.5 (measured: 0.0 -> 0.15 after 30 steps, its labels
# carry the 8-token empty think block besides the answer; the MoE row passed at 30).
LEARN_STEPS = {"tiny-internvl": 30, "tiny-qwen3.5": 60, "tiny-qwen3.5-moe": 30}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(FAMILIES))
def test_sft_learns_held_out_colours(name, colours, tmp_path):
    """The training layer's learning proof on these rows: SFT steps of 8 (vision frozen) take held-out
    accuracy on a 4-colour question (chance 0.25) from <= 0.4 to >= 0.8."""
    from train.data import ListSource
    from train.recipe import load_recipe
    from train.sft import run

    torch.set_num_threads(1)
    train, held_out = colours
    out = tmp_path / "run"
    recipe = load_recipe(None, [f"model.name_or_path={name}", f"train.output_dir={out}", f"train.max_steps={LEARN_STEPS[name]}",
                                "train.per_device_batch_size=8", "optim.lr=2e-3", "optim.warmup_ratio=0.1",
                                "train.save_steps=0", "eval.bench=null", "data.decontaminate=off", "train.report_to=[jsonl]",
                                "train.num_threads=1", "train.logging_steps=5"])
    assert recipe.model.freeze.vision
    assert run(recipe, [], source=ListSource(train, epochs=2)) == 0
    before, after = colour_accuracy(name, held_out), colour_accuracy(str(out), held_out)
    assert before <= 0.4 and after >= 0.8, (before, after)


# ------------------------------------------------------------------------------------------- GRPO

@pytest.fixture(scope="module")
def rl_standin(tmp_path_factory):
    from fixtures_grpo import shared_rl_standin

    return shared_rl_standin(tmp_path_factory)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_two_grpo_steps_with_per_level_telemetry(rl_standin, tmp_path, name):
    """recipe=auto_think with only model.name_or_path changed (short completions for time): two TRL GRPO steps,
    per-level reward telemetry, a saved model that loads as the family again."""
    import json

    from train.grpo import run
    from train.models import family_for_checkpoint
    from train.recipe import load_recipe

    out = tmp_path / "run"
    recipe = load_recipe("auto_think", [
        f"model.name_or_path={name}", f"data.root={rl_standin}", "train.max_steps=2", f"train.output_dir={out}",
        "eval.bench=null", "data.decontaminate=off", "grpo.max_completion_length=8", "train.per_device_batch_size=8", "grpo.num_generations=4",
        "train.grad_accum=1", "train.logging_steps=1", "train.num_threads=1", "train.report_to=[jsonl]"])
    assert run(recipe, []) == 0
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if '"train/reward"' in x]
    assert [r["step"] for r in rows] == [1, 2]
    levels = {k.split("/")[1] for r in rows for k in r if k.startswith("train/L") and k.endswith("/reward")}
    assert levels and levels <= {"L1", "L2", "L3", "L4"}
    for r in rows:
        for lv in levels & {k.split("/")[1] for k in r if k.startswith("train/L")}:
            assert 1 <= r[f"train/{lv}/completion_length"] <= 8
    assert family_for_checkpoint(str(out)).name == FAMILIES[name]


# ------------------------------------------------------------------------------------------- lmms-eval inputs

def _lmms_reference(processor, model_type: str, images: list, text: str):
    """What lmms-eval 0.7.3's wrapper for the family does with a record's images and prompt text (batch of 1).

    qwen3_5 (models/simple/qwen3_vl.py, ``_preprocess_chunk``): a system turn, the images as PIL in the user turn
    with the wrapper's pixel limits, ``enable_thinking=True``, qwen-vl-utils ``process_vision_info`` with
    ``image_patch_size=16``, then the processor with ``do_resize=False``. internvl_hf
    (models/chat/internvl_hf.py): the task's auto messages (no system turn), the processor with
    ``min_patches=1, max_patches=12``. internvl_hf (0.7.3, ``generate_until``) renders
    ``chat_messages[0].model_dump()["messages"]``, i.e. the task's ``doc_to_messages`` output unchanged: for a task
    with ``doc_to_visual`` / ``doc_to_text`` (spatialtreebench), ``ConfigurableMessagesTask._auto_doc_to_messages``
    gives one user turn, visuals first, no system turn (unlike qwen3_vl.py's ``messages.insert(0, system)``)."""
    if model_type.startswith("qwen3_5"):
        from qwen_vl_utils import process_vision_info

        from train.models.qwen3_5 import LMMS_MAX_PIXELS, LMMS_MIN_PIXELS

        content = [{"type": "image", "image": im, "max_pixels": LMMS_MAX_PIXELS, "min_pixels": LMMS_MIN_PIXELS}
                   for im in images]
        messages = [[{"role": "system", "content": "You are a helpful assistant."},
                     {"role": "user", "content": [*content, {"type": "text", "text": text}]}]]
        texts = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True,
                                              enable_thinking=True)
        image_inputs, _, video_kwargs = process_vision_info(messages, return_video_kwargs=True, image_patch_size=16,
                                                            return_video_metadata=True)
        return processor(text=texts, images=image_inputs, videos=None, video_metadata=None, **video_kwargs,
                         do_resize=False, return_tensors="pt")
    messages = [{"role": "user", "content": [*[{"type": "image", "url": im} for im in images],
                                             {"type": "text", "text": text}]}]
    prompt = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return processor(images=images, videos=None, text=prompt, return_tensors="pt", min_patches=1, max_patches=12)


QWEN_SYSTEM = "You are a helpful assistant."  # lmms-eval 0.7.3's Qwen wrappers: system_prompt default
TEMPLATE_SYSTEM = "You are the tiny InternVL."  # a template default of its own, for the test


@pytest.mark.parametrize("name", list(FAMILIES))
def test_eval_inputs_lmms_eval_equal_the_wrappers_own_preprocessing(loaded, tmp_path, name):
    """eval.inputs=lmms_eval gives the same input_ids and pixel tensors as lmms-eval's wrapper for the family,
    record by record (one image, two images, a large and a thin one). The system turn is the wrapper's: Qwen3.5's
    inserts "You are a helpful assistant." (and passes enable_thinking=True: the prompt opens the think block);
    internvl_hf inserts none, so the chat template's own default system turn is the only one (checked with a
    template whose default differs from the Qwen wrappers' text)."""
    import copy
    import json

    from PIL import Image

    from eval_hooks.config import EvalConfig
    from eval_hooks.evaluator import read_bench
    from eval_hooks.generation import build_inputs, prompt_messages

    model, processor = loaded(name)
    family = _family(model)
    assert family.lmms_model == ("internvl_hf" if name == "tiny-internvl" else "qwen3_5")
    if name == "tiny-internvl":  # a default system turn unlike the Qwen wrappers' own, so an added one would show
        processor = copy.deepcopy(processor)
        processor.chat_template = processor.chat_template.replace(QWEN_SYSTEM, TEMPLATE_SYSTEM)
        system, ending = TEMPLATE_SYSTEM, "<|im_start|>assistant\n"
    else:  # the wrapper's system turn and enable_thinking=True
        system, ending = QWEN_SYSTEM, "<|im_start|>assistant\n<think>\n"
    sizes = [[(640, 480)], [(300, 200), (120, 90)], [(1000, 700)], [(40, 400)]]
    rows = []
    for i, group in enumerate(sizes):
        files = []
        for j, (w, h) in enumerate(group):
            Image.new("RGB", (w, h), (40 * i, 90 + 30 * j, 150)).save(tmp_path / f"im{i}_{j}.png")
            files.append(f"im{i}_{j}.png")
        extra = {"metricfunc": "multichoiceeval", "spatree0": "L1", "spatree1": "Geometry", "spatree2": "Distance"}
        rows.append({"id": f"r{i}", "question": "Which is closer?", "option": ["A. left", "B. right"], "answer": "A",
                     "question_type": "mcq", "hint": "", "extra_info": json.dumps(extra), "image": files,
                     "video": [], "video_info": []})
    bench = tmp_path / "bench.jsonl"
    bench.write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = DataConfig()
    for sample in read_bench(EvalConfig(bench=str(bench), inputs="lmms_eval"), data):
        ours = build_inputs(processor, [sample], data, inputs="lmms_eval")
        text = [p["text"] for p in prompt_messages(sample)[-1]["content"] if p.get("type") == "text"][-1]
        images = []
        for path in sample.images:
            with Image.open(path) as im:
                images.append(im.convert("RGB"))
        theirs = _lmms_reference(processor, FAMILIES[name], images, text)
        assert torch.equal(ours["input_ids"], theirs["input_ids"]), sample.id
        text = processor.tokenizer.decode(ours["input_ids"][0])
        assert text.startswith(f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n"), text[:80]
        assert text.count("<|im_start|>system") == 1 and text.endswith(ending), sample.id
        assert torch.equal(ours["pixel_values"], theirs["pixel_values"]), sample.id
        if "image_grid_thw" in theirs:
            assert torch.equal(ours["image_grid_thw"], theirs["image_grid_thw"]), sample.id
