"""train/uniform_vision.py in one process: every training forward calls the vision tower twice (image call,
video call) and the blank calls change neither the loss nor any gradient. The distributed proof (ranks with
different media under ZeRO-2/3 equal one process) is in tests/test_sft_dist.py."""

from __future__ import annotations

import pytest
import torch
from fixtures_sft import sample_zoo

from data_mix.config import DataConfig
from train.collate import SampleEncoder, pad_batch
from train.config import FreezeConfig, ModelConfig
from train.model_loading import load_model, load_processor
from train.module_groups import apply_freeze
from train.uniform_vision import install_uniform_vision, vision_owner


@pytest.fixture(scope="module")
def batches(tmp_path_factory):
    torch.set_num_threads(1)
    processor = load_processor(ModelConfig())
    encoder = SampleEncoder(processor, DataConfig())
    zoo = sample_zoo(tmp_path_factory.mktemp("zoo"))
    return {name: pad_batch([encoder.encode(zoo[name])], encoder.pad_id) for name in ("text", "single", "video")}


def fresh_model():
    model = load_model(ModelConfig(attn_implementation="sdpa"), "cpu")
    apply_freeze(model, FreezeConfig(vision=True, projector=False))  # the merger trains, the tower is frozen
    return model.train()


def loss_and_grads(model, batch):
    model.zero_grad(set_to_none=True)
    loss = model(**batch).loss
    loss.backward()
    return loss.detach(), {n: p.grad for n, p in model.named_parameters() if p.requires_grad}


def count_vision_calls(model) -> list[int]:
    calls = [0]
    vision_owner(model).visual.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


@pytest.mark.parametrize("name, real_calls", [("text", 0), ("single", 1), ("video", 1)])
def test_two_vision_calls_and_nothing_else_changes(batches, name, real_calls):
    plain, hooked = fresh_model(), fresh_model()
    plain_calls, hooked_calls = count_vision_calls(plain), count_vision_calls(hooked)
    install_uniform_vision(hooked)
    loss0, grads0 = loss_and_grads(plain, batches[name])
    loss1, grads1 = loss_and_grads(hooked, batches[name])
    assert plain_calls[0] == real_calls and hooked_calls[0] == 2
    assert torch.equal(loss0, loss1)
    assert grads0.keys() == grads1.keys()
    for n, g in grads1.items():
        assert g is not None, f"{n} got no gradient with the blank calls"  # every rank reduces the same tensors
        if grads0[n] is None:  # the merger on a text batch: a zero gradient instead of none
            assert ".merger." in n and not g.any(), n
        else:
            assert torch.equal(g, grads0[n]), n


def test_evaluation_and_removed_hooks_run_no_blank_calls(batches):
    model = fresh_model()
    calls = count_vision_calls(model)
    handles = install_uniform_vision(model)
    with torch.no_grad():
        model.eval()(**batches["text"])
        assert calls[0] == 0
        model.train()(**batches["text"])
        assert calls[0] == 2
        for h in handles:
            h.remove()
        model(**batches["text"])
        assert calls[0] == 2


def test_qwen2_vl_is_covered_too():
    from test_model_modules import tiny_qwen2_vl

    model = tiny_qwen2_vl().train()
    calls = count_vision_calls(model)
    install_uniform_vision(model)
    ids = torch.tensor([[5, 6, 7, 8]])
    out = model(input_ids=ids, labels=ids)
    out.loss.backward()
    assert calls[0] == 2
    assert all(p.grad is not None for p in vision_owner(model).visual.merger.parameters())


def test_a_model_without_vision_is_refused():
    from train.models import UnsupportedFamily

    with pytest.raises(UnsupportedFamily, match="Linear: model_type None is not supported"):
        install_uniform_vision(torch.nn.Linear(2, 2))


def test_in_eval_runs_the_blank_calls_in_evaluation_too(batches):
    """GRPO's ZeRO-3 reference model runs in eval mode and gathers per module: ``in_eval=True`` covers it."""
    plain, hooked = fresh_model().eval(), fresh_model().eval()
    calls = count_vision_calls(hooked)
    install_uniform_vision(hooked, in_eval=True)
    with torch.no_grad():
        for name, real_calls in (("text", 0), ("single", 1)):
            before = calls[0]
            assert torch.equal(plain(**batches[name]).logits, hooked(**batches[name]).logits)
            assert calls[0] - before == 2, (name, real_calls)


def test_decoding_steps_get_no_blank_calls(batches):
    """Generation in training mode (TRL's rollouts): blank calls in the first step only (an empty KV cache), none in
    the decoding steps, and the same tokens as without the hooks."""
    plain, hooked = fresh_model(), fresh_model()
    calls = count_vision_calls(hooked)
    install_uniform_vision(hooked)
    batch = batches["text"]
    kwargs = dict(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], max_new_tokens=6,
                  min_new_tokens=6, do_sample=False)
    with torch.no_grad():
        expected, got = plain.generate(**kwargs), hooked.generate(**kwargs)
    assert torch.equal(expected, got) and got.shape[1] == batch["input_ids"].shape[1] + 6
    assert calls[0] == 2  # the first step's image and video calls; 6 steps would be 12


def test_blank_calls_run_before_hooks_already_on_the_language_model(batches):
    """Installed after DeepSpeed (GRPO's reference engine exists before the trainer can hook it), the blank calls
    still run before DeepSpeed's own pre-hook on the language model, which is where the real calls are."""
    model = fresh_model()
    calls = count_vision_calls(model)
    seen = []
    vision_owner(model).language_model.register_forward_pre_hook(lambda *_: seen.append(calls[0]))
    install_uniform_vision(model)
    model(**batches["text"])
    assert seen == [2]


def test_a_second_install_changes_nothing(batches):
    """train/recipe_trainer.py's RecipeTrainer and GRPO's media mixin may both install it on the policy: still two calls."""
    model = fresh_model()
    calls = count_vision_calls(model)
    first = install_uniform_vision(model)
    assert len(first) == 2 and install_uniform_vision(model) == []
    model(**batches["text"])
    assert calls[0] == 2
    with pytest.raises(ValueError, match="in_eval=False"):
        install_uniform_vision(model, in_eval=True)
    for h in first:
        h.remove()
    assert len(install_uniform_vision(model, in_eval=True)) == 2  # removed hooks do not count
