"""The same vision-tower calls on every rank, for DeepSpeed on mixed-media batches.

Under ZeRO-3 each module call gathers its parameters collectively, forward and backward. When one rank's
micro-batch has images and videos and another's has only images (or only text), the ranks would gather
different parameters at the same moment and the collective fails ("Detected mismatch between
collectives", or gloo's "Received data size doesn't match"). Under ZeRO-2 a text-only micro-batch leaves
the trainable merger without gradients on that rank only, and the gradient all-reduce buckets differ in
size: the same failure at the end of backward. The fix, in the spirit of the dummy-image trick other
multimodal trainers use, made exact (the model family, train/models/, says where the vision tower is and how
to call it on a blank input):

* every training forward runs the vision tower twice (the image call, then the video call), on the smallest
  blank input (``blank_vision_output``) for whatever the micro-batch lacks;
* the blank calls run where the real ones do, after the real features are merged into ``inputs_embeds``
  and before the language model, and add ``0 x`` their output to ``inputs_embeds``;
* so backward, too, reaches both merger calls before the token embedding on every rank, exactly as when
  both media are real. (A blank call joined at the embedding output is reached after the embedding in
  backward, because DeepSpeed's backward hook sits on that output: the ranks diverge there.)

The added term is exactly zero: loss, gradients and weights equal those of the run without it
(tests/test_sft_dist.py compares a ZeRO-3 run on adversarial per-rank media with ZeRO-2).

Evaluation forwards are left alone unless ``in_eval`` is set: a ZeRO-3 reference model (GRPO's KL term) runs in
eval mode and gathers per module like the policy, so it needs the calls too. Decoding steps (a forward with a
non-empty KV cache) never get them: pixels enter only the first step of a generation (transformers 5.23 even
encodes them in a separate call before it), so no rank calls the vision tower while decoding. The first step
still gets them, but that does not make generation on ZeRO-3-partitioned weights uniform (the separate encoder
call runs only where there are media): GRPO keeps TRL's default of gathering the whole policy for generation.
A family whose vision call has further outputs sums them into the same zero term: Qwen3-VL's DeepStack features
(which join the first language-model layers in a real call) are included, so the DeepStack mergers run on every
rank too (tests/test_families_dist.py compares ZeRO-3 with ZeRO-2 on a tiny Qwen3-VL).
"""

from __future__ import annotations

import torch


def vision_owner(model: torch.nn.Module) -> torch.nn.Module:
    """The multimodal body of ``model``'s family: it has the vision tower and the language model."""
    from train.models import family_for_model

    return family_for_model(model).vision_owner(model)


def decoding(kwargs: dict) -> bool:
    """A generation step after the first: the forward continues a non-empty KV cache."""
    cache = kwargs.get("past_key_values")
    length = getattr(cache, "get_seq_length", None)
    return length is not None and length() > 0


def install_uniform_vision(model: torch.nn.Module, in_eval: bool = False) -> list:
    """Hook ``model`` so every training forward runs the image and the video vision call; returns the hook
    handles (``handle.remove()`` undoes it). Evaluation forwards (``model.eval()``) are left alone unless
    ``in_eval``; decoding steps always are. A model hooked already is left as it is (returns ``[]``): a trainer
    and its mixins may each install it."""
    from train.models import family_for_model

    family = family_for_model(model)
    owner = family.vision_owner(model)
    installed = [h for h in owner._forward_pre_hooks.values() if hasattr(h, "uniform_vision_in_eval")]
    if installed:
        if installed[0].uniform_vision_in_eval != in_eval:
            raise ValueError(f"uniform vision hooks are installed already with in_eval={not in_eval}")
        return []
    missing: list[str] = []

    def note_missing(module, args, kwargs):
        active = (module.training or in_eval) and not decoding(kwargs)
        missing[:] = [k for k in family.pixel_keys if active and kwargs.get(k) is None]

    note_missing.uniform_vision_in_eval = in_eval

    def run_blank_calls(module, args, kwargs):
        keys, missing[:] = list(missing), []
        embeds = kwargs.get("inputs_embeds")
        if not keys or embeds is None:
            return None
        zero = embeds.new_zeros(())
        for key in keys:
            zero = zero + family.blank_vision_output(owner, key).to(embeds.dtype) * 0.0
        return args, {**kwargs, "inputs_embeds": embeds + zero}

    # prepend: before DeepSpeed's own pre-hook on the language model when the engine exists already (GRPO's ZeRO-3
    # reference model), so the blank calls are traced before the language model's fetch, where real calls are.
    return [owner.register_forward_pre_hook(note_missing, with_kwargs=True),
            family.language_model(owner).register_forward_pre_hook(run_blank_calls, with_kwargs=True, prepend=True)]
