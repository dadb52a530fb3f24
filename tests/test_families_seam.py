"""The model-family seam, fast layer of the matrix: every family's tiny model, parametrized over
tests/fixtures_families.py:ROWS (fp32, CPU).

Per family: it builds and loads through from_pretrained with its real classes and is found from config.json;
token counts through the processor equal what training encodes (stand-in samples of every source, images above
the pixel cap, frame lists); assistant labels equal the chat template's own ``{% generation %}`` marks;
freeze.vision/projector/llm hold tensor by tensor through an optimizer step; a packed batch gives the loss and
gradients of the padded one (1e-5); the blank vision calls add exactly zero and reach every vision and projector
tensor (DeepStack mergers included); rollouts suppress the vision placeholders. And for the seam itself: no
module outside train/models and train/tiny names a family, and an unsupported model_type exits 2 before any
weight loads.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fixtures_engine import standin_small
from fixtures_families import ROWS, encoded_length, loaded  # noqa: F401  (fixture)
from fixtures_sft import sample_zoo
from PIL import Image

from data_mix.config import DataConfig
from data_mix.sample import Sample
from train.collate import IGNORE_INDEX, SampleEncoder, pad_batch
from train.config import FreezeConfig

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    return sample_zoo(tmp_path_factory.mktemp("family_zoo"))


@pytest.fixture(scope="session")
def standin(tmp_path_factory):
    return standin_small(tmp_path_factory)


# ---------------------------------------------------------------------------------------------- the seam itself

# What only train/models (and the tiny builders) may name: model types, chat markers, vision-token strings and the
# attributes of one architecture. Docstrings and comments may mention a model; code may not.
FAMILY_MARKERS = ("qwen", "internvl", "glm4v", "im_start", "im_end", "image_pad", "video_pad", "vision_start",
                  "IMG_CONTEXT", "get_rope_index", "smart_resize", "spatial_merge_size", "deepstack")
FAMILY_ATTRIBUTES = {"visual", "get_rope_index", "spatial_merge_size", "deepstack_merger_list"}
SCANNED = ("train", "data_mix", "eval_hooks", "launch", "rewards", "bench/gpu_check")  # gpu-check takes any family
# anchors.py holds published figures measured on one named model (Qwen2.5-VL-7B): data with its source, not a path
# the code takes per family
EXEMPT = ("train/models/", "train/tiny/", "bench/gpu_check/anchors.py")


def _code_strings_and_attributes(tree: ast.AST):
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = getattr(node, "body", [])
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            docstrings.add(id(node.value))  # attribute docstrings
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value
        elif isinstance(node, ast.Attribute):
            yield node.lineno, f".{node.attr}"


def test_no_module_outside_the_seam_names_a_family():
    found = []
    for top in SCANNED:
        for path in sorted((REPO / top).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if rel.startswith(EXEMPT):
                continue
            for line, text in _code_strings_and_attributes(ast.parse(path.read_text())):
                if text.startswith("tiny-"):  # a tiny model's name is a checkpoint name, like a hub id
                    continue
                low = text.lower()
                hit = [m for m in FAMILY_MARKERS if m.lower() in low]
                if text.startswith(".") and text[1:] in FAMILY_ATTRIBUTES:
                    hit.append(text)
                if hit:
                    found.append(f"{rel}:{line}: {text[:60]!r} ({', '.join(hit)})")
    assert not found, "family-specific code outside train/models:\n" + "\n".join(found)


def test_an_unsupported_model_type_exits_2_before_any_weight_loads(tmp_path):
    ckpt = tmp_path / "llava_ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text(json.dumps({"model_type": "llava"}))
    (ckpt / "model.safetensors").write_bytes(b"not weights")  # loading them would fail differently
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    res = subprocess.run([sys.executable, str(REPO / "launch" / "sft.py"), "recipe=quickstart_sft",
                          f"model.name_or_path={ckpt}", f"train.output_dir={tmp_path / 'out'}"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, res.stderr[-2000:]
    lines = [x for x in res.stderr.splitlines() if "error" in x]
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr[-2000:]
    assert "'llava' is not supported" in lines[0] and "docs/MODELS.md" in lines[0]
    assert all(mt in lines[0] for _, mt in ROWS)
    assert not (tmp_path / "out").exists()


def test_each_family_is_found_from_config_json_and_loads_its_real_classes(loaded):  # noqa: F811
    from transformers import AutoConfig

    from train.model_loading import resolve_model_path
    from train.models import family_for_checkpoint

    family = family_for_checkpoint(loaded.name)
    assert family.name == loaded.model_type == loaded.model.config.model_type
    assert loaded.family is family and family.tiny_name == loaded.name
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    assert type(loaded.model).__name__ == MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES[loaded.model_type]
    config = AutoConfig.from_pretrained(resolve_model_path(loaded.name))
    assert config.model_type == loaded.model_type
    assert hasattr(loaded.processor, "image_processor") and hasattr(loaded.processor, "video_processor")
    assert sum(p.numel() for p in loaded.model.parameters()) < 2_000_000


# ---------------------------------------------------------------------------------------------- token counts

def _extras(root: Path) -> list[Sample]:
    """Images above data.image_max_pixels (PNG and JPEG), a tall thin one, a frame-list video, mixed media."""
    root.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (1000, 667), (10, 200, 30)).save(root / "big.jpg", quality=90)
    Image.new("RGB", (3000, 2000), (90, 20, 30)).save(root / "huge.png")
    Image.new("RGB", (20, 300), (10, 20, 30)).save(root / "thin.png")
    frames = []
    for i in range(5):
        Image.new("RGB", (640, 480), (i * 40, 20, 30)).save(root / f"f{i}.png")
        frames.append(str(root / f"f{i}.png"))

    def msgs(n_img, n_vid):
        return [{"role": "user", "content": [*[{"type": "image"}] * n_img, *[{"type": "video"}] * n_vid,
                                             {"type": "text", "text": "Which is left?"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "The blue one."}]}]

    return [Sample(id="big_jpeg", source="x", messages=msgs(1, 0), images=[str(root / "big.jpg")]),
            Sample(id="huge_png_and_thin", source="x", messages=msgs(2, 0),
                   images=[str(root / "huge.png"), str(root / "thin.png")]),
            Sample(id="frames", source="x", messages=msgs(0, 1), videos=[frames]),
            Sample(id="image_and_video", source="x", messages=msgs(1, 1), images=[str(root / "thin.png")],
                   videos=[frames[:3]])]


def test_counted_tokens_equal_encoded_tokens(loaded, standin, tmp_path_factory):  # noqa: F811
    """For the first rows of every stand-in source and images above the pixel cap: the counter (the data report,
    token budgets) says exactly what training / a rollout encodes."""
    from data_mix.readers import read_source
    from data_mix.registry import load_registry
    from data_mix.tokens import TokenCounter

    data = DataConfig(root=str(standin.root), image_max_pixels=1_000_000)  # above every tiny processor's cap
    samples = []
    for name in load_registry(data.registry).names():
        rows = read_source(name, data)
        samples += [next(rows), next(rows)]
    samples += _extras(tmp_path_factory.mktemp("extras"))
    counter = TokenCounter(data, loaded.processor)
    assert counter.kind == "processor"
    encoder = SampleEncoder(loaded.processor, data, max_length=100_000)
    wrong = []
    for s in samples:
        n = counter(s)
        encoded = len(encoder.encode(s)) if s.messages[-1]["role"] == "assistant" else \
            encoded_length(loaded.processor, s, data)
        if n != encoded:
            wrong.append(f"{s.source}/{s.id}: counted {n}, encoded {encoded}")
    assert not wrong, "\n".join(wrong)
    assert any(s.videos for s in samples) and len(samples) > 30


# ---------------------------------------------------------------------------------------------- labels

def test_assistant_labels_are_the_templates_generation_marks(loaded, zoo):  # noqa: F811
    """The family's header/end-token spans equal the chat template's own {% generation %} marks, every turn."""
    proc = loaded.processor
    encoder = SampleEncoder(proc, DataConfig())
    for name in ("multi", "system", "video"):
        sample = zoo[name]
        enc = encoder.encode(sample)
        text_only = [{**m, "content": [p for p in m["content"] if p["type"] == "text"]} for m in sample.messages]
        marked = proc.tokenizer.apply_chat_template(text_only, tokenize=True, return_dict=True,
                                                    return_assistant_tokens_mask=True)
        ids, mask = marked["input_ids"], marked["assistant_masks"]
        expected = [i for i, m in zip(ids, mask) if m]
        assert enc.labels[enc.labels != IGNORE_INDEX].tolist() == expected, name


# ---------------------------------------------------------------------------------------------- freezing

@pytest.mark.parametrize("freeze", [FreezeConfig(), FreezeConfig(vision=False, projector=True),
                                    FreezeConfig(vision=False, llm=True)], ids=["vision", "projector", "llm"])
def test_freeze_holds_tensor_by_tensor(loaded, zoo, freeze):  # noqa: F811
    from train.config import OptimConfig
    from train.module_groups import apply_freeze, build_optimizer, group_of

    model = copy.deepcopy(loaded.model).train()
    groups = loaded.family.groups
    counts = apply_freeze(model, freeze)
    frozen = {g for g in ("vision", "projector", "llm") if getattr(freeze, g)}
    assert {g for g, c in counts.items() if c["trainable"] == 0} == frozen
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    encoder = SampleEncoder(loaded.processor, DataConfig())
    batch = pad_batch([encoder.encode(zoo[k]) for k in ("single", "video", "text")], encoder.pad_id)
    opt = build_optimizer(model, OptimConfig(lr=1e-2, weight_decay=0.1))
    model(**batch).loss.backward()
    opt.step()
    changed = {g: 0 for g in ("vision", "projector", "llm")}
    for name, p in model.named_parameters():
        group = group_of(name, groups)
        same = torch.equal(p, before[name])
        if group in frozen:
            assert same and p.grad is None, f"{name} ({group}) is frozen but changed"
        else:
            changed[group] += not same
    assert all(changed[g] > 0 for g in changed if g not in frozen), changed


# ---------------------------------------------------------------------------------------------- packing

def test_packed_batch_gives_the_padded_loss_and_gradients(loaded, zoo):  # noqa: F811
    from train.packing import pack_batch, rope_index_fn

    assert loaded.family.packing_refusal is None
    model = copy.deepcopy(loaded.model).eval()  # eval: no dropout; gradients still flow
    encoder = SampleEncoder(loaded.processor, DataConfig())
    encoded = [encoder.encode(s) for s in zoo.values()]
    packed = pack_batch(encoded, 512, encoder.pad_id, rope_index_fn(model), "sdpa")
    packed.pop("real_tokens")
    assert packed["input_ids"].shape[0] < len(encoded)

    def loss_and_grads(batch):
        model.zero_grad(set_to_none=True)
        loss = model(**batch).loss
        loss.backward()
        return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    loss_p, grads_p = loss_and_grads(packed)
    loss_u, grads_u = loss_and_grads(pad_batch(encoded, encoder.pad_id))
    torch.testing.assert_close(loss_p, loss_u, atol=1e-5, rtol=1e-5)
    assert grads_p.keys() == grads_u.keys() and len(grads_p) > 0
    for name in grads_p:
        torch.testing.assert_close(grads_p[name], grads_u[name], atol=1e-5, rtol=1e-4, msg=name)


# ---------------------------------------------------------------------------------------------- vision calls

def test_blank_vision_calls_add_zero_and_reach_every_vision_tensor(loaded, zoo):  # noqa: F811
    """A text-only micro-batch with the hooks: same loss as without, and every vision and projector tensor
    (DeepStack mergers included) takes part in backward, as ZeRO needs on every rank."""
    from train.module_groups import group_of
    from train.uniform_vision import install_uniform_vision

    encoder = SampleEncoder(loaded.processor, DataConfig())
    batch = pad_batch([encoder.encode(zoo["text"])], encoder.pad_id)
    plain = copy.deepcopy(loaded.model).train()
    hooked = copy.deepcopy(loaded.model).train()
    assert len(install_uniform_vision(hooked)) == 2
    loss_plain, loss_hooked = plain(**batch).loss, hooked(**batch).loss
    assert torch.equal(loss_plain, loss_hooked)
    loss_hooked.backward()
    groups = loaded.family.groups
    missing = [n for n, p in hooked.named_parameters()
               if group_of(n, groups) in ("vision", "projector") and p.grad is None]
    assert not missing, missing[:5]
    assert all(torch.count_nonzero(p.grad) == 0 for n, p in hooked.named_parameters()
               if group_of(n, groups) in ("vision", "projector"))


def test_rollouts_suppress_the_vision_placeholders(loaded):  # noqa: F811
    from train.grpo.trl_backend import suppressed_tokens

    ids = set(suppressed_tokens(loaded.processor, loaded.model))
    cfg = loaded.model.config
    assert {cfg.image_token_id, cfg.video_token_id} <= ids
    tok = loaded.processor.tokenizer
    assert tok.eos_token_id not in ids and tok.pad_token_id not in ids


def test_a_rollout_stops_at_the_familys_end_of_turn(loaded, zoo):  # noqa: F811
    """The ids a rollout cuts at (bench/gpu_check/c_rollout.py) include the token that closes a trained assistant
    turn, and none of them is suppressed."""
    check_stop_tokens(loaded.model, loaded.processor, zoo)


def check_stop_tokens(model, processor, zoo):
    from train.grpo.trl_backend import suppressed_tokens
    from train.models import family_for_model

    enc = SampleEncoder(processor, DataConfig()).encode(zoo["single"])
    stop = set(family_for_model(model).stop_token_ids(processor.tokenizer))
    assert int(enc.labels[enc.labels != IGNORE_INDEX][-1]) in stop
    assert processor.tokenizer.eos_token_id in stop and not stop & set(suppressed_tokens(processor, model))


def test_a_family_refuses_a_backend_it_was_not_checked_with_in_one_line(tmp_path):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    res = subprocess.run([sys.executable, str(REPO / "launch" / "grpo.py"), "recipe=auto_think",
                          "model.name_or_path=tiny-internvl", "grpo.backend=verl", "--dry-run",
                          f"train.output_dir={tmp_path / 'out'}"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, res.stderr[-2000:]
    lines = [x for x in res.stderr.splitlines() if "error" in x]
    assert len(lines) == 1 and "Traceback" not in res.stderr
    assert "grpo.backend=verl: internvl: verl 0.9.1 does not support InternVL" in lines[0]
    assert "grpo.backend=trl" in lines[0]
