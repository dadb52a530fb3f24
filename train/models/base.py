"""The model-family seam: everything that differs between VLM architectures, behind one interface.

A family is one subclass of :class:`ModelFamily` in one file of ``train/models/``, registered under the
Hugging Face ``model_type`` values it serves (``config.json``'s ``model_type``, never a substring of the path).
Every other module asks the family of the model or checkpoint at hand (:func:`family_for_model`,
:func:`family_for_checkpoint`) and never names an architecture. docs/MODELS.md lists the families and how to add
one (this file's interface + a tiny builder in ``train/tiny/`` + one row of tests/test_families*.py).

What a family answers (attribute or method, and who asks):
- ``groups`` -- parameter-name prefixes of the vision tower, projector and language model
  (train/module_groups.py: freeze.vision/projector/llm, per-group learning rates, LoRA targets);
- ``assistant_labels(input_ids, tokenizer)`` -- labels of the assistant spans (train/collate.py);
- ``stop_token_ids(tokenizer)`` -- the end-of-turn and EOS ids a generated turn ends at (bench/gpu_check);
- ``vision_keys`` -- processor outputs that are vision inputs, concatenated across samples (train/collate.py);
- ``packing_refusal`` / ``position_fn(model)`` -- whether packing is possible and the per-sample position-id
  rows a packed row needs (train/packing.py); ``text_positions(position_ids)`` -- the row of them that restarts
  per sample (bench/gpu_check);
- ``vision_patches(config, batch)`` -- patches the vision tower runs on for a batch (bench/gpu_check's FLOPs);
- ``vision_owner(model)`` / ``blank_vision_output(owner, kind)`` -- the module that runs the vision tower and one
  vision call on a blank input, summed to a scalar (train/uniform_vision.py, train/grpo/media.py);
- ``token_counter(data_cfg, processor)`` -- exact token counts through the processor (data_mix/tokens.py);
- ``suppressed_token_ids(processor, model)`` -- tokens a rollout must never sample (train/grpo/trl_backend.py);
- ``resized_image_sizes(processor, images)`` -- the (height, width) the image processor gives each image, for
  the verl export (train/grpo/dataset.py);
- ``render_chat(processor, messages, add_generation_prompt, thinking)`` -- the chat template with the family's
  arguments (``chat_template_kwargs``); every caller renders through it (collation, token counts, GRPO prompts,
  evaluation); TRL and verl are handed the same arguments; ``thinking`` is :func:`thinking_for` the prompt's
  template, and ``think_prefix`` says which think block such a prompt leaves open for the completion;
- ``lmms_model``, ``lmms_resize(image)``, ``lmms_processor_kwargs()``, ``lmms_system_prompt``,
  ``lmms_chat_template_kwargs`` / ``render_lmms_chat`` -- lmms-eval's wrapper for the family, its input sizing,
  system turn and template arguments (eval_hooks/inputs.py, eval_hooks/lmms.py);
- ``verl_refusal`` -- why the verl backend cannot train the family (None: it can);
- ``check_recipe(recipe)`` -- a key the family cannot honour is a one-line error at start.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

GROUPS = ("vision", "projector", "llm")
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"  # the think block of the GRPO templates and Qwen3/3.5 templates
MODELS_DOC = "docs/MODELS.md"
IGNORE_INDEX = -100


class UnsupportedFamily(ValueError):
    """A checkpoint or model whose ``model_type`` no family serves (exit 2 at the CLI, before weights load)."""


@dataclass(frozen=True)
class ModuleGroups:
    """Parameter-name prefixes of each group, as named on the ``*ForConditionalGeneration`` model in memory."""

    vision: tuple[str, ...]
    projector: tuple[str, ...]
    llm: tuple[str, ...]

    def prefixes(self) -> list[tuple[str, str]]:
        """(prefix, group), longest prefix first: a projector may sit inside the vision tower."""
        pairs = [(p, g) for g in GROUPS for p in getattr(self, g)]
        return sorted(pairs, key=lambda pg: -len(pg[0]))


def span_labels(input_ids, header: list[int], end_id: int):
    """Labels equal to ``input_ids`` after each ``header`` up to ``end_id`` inclusive, else -100 (the end token
    is learned: it is how the model stops). A helper for families whose turns are header ... end token."""
    import torch

    ids = input_ids.tolist()
    labels = [IGNORE_INDEX] * len(ids)
    n, h = len(ids), len(header)
    i = 0
    while i <= n - h:
        if ids[i:i + h] == header:
            j = i + h
            while j < n and ids[j] != end_id:
                labels[j] = ids[j]
                j += 1
            if j < n:
                labels[j] = ids[j]
            i = j + 1
        else:
            i += 1
    return torch.tensor(labels, dtype=torch.long)


# (n_rows, n_tokens) position ids of one encoded sample, laid into a packed row as they are
PositionFn = Callable[[Any], Any]


class ModelFamily:
    """Base of every family. Subclasses set the class attributes and override what differs."""

    name: ClassVar[str] = ""
    """Short name used in messages and docs (e.g. ``qwen2_5_vl``)."""
    model_types: ClassVar[tuple[str, ...]] = ()
    """HF ``model_type`` values this family serves."""
    groups: ClassVar[ModuleGroups]
    vision_keys: ClassVar[tuple[str, ...]] = ("pixel_values", "image_grid_thw", "pixel_values_videos",
                                              "video_grid_thw")
    """Processor outputs that are vision inputs (concatenated across samples, in sample order)."""
    pixel_keys: ClassVar[tuple[str, ...]] = ("pixel_values", "pixel_values_videos")
    """The pixel tensors among ``vision_keys`` (image first, then video)."""
    grid_of: ClassVar[dict[str, str]] = {"pixel_values": "image_grid_thw", "pixel_values_videos": "video_grid_thw"}
    """For each pixel key, the key describing its layout (dropped together when the pixels are empty)."""
    packing_refusal: ClassVar[str | None] = "packing is not implemented for this family"
    """None when packing works; else the one-line reason ``train.packing=true`` is refused."""
    verl_refusal: ClassVar[str | None] = "verl's RLHFDataset has not been checked with this family"
    """None when the verl export/backend is supported; else the one-line reason it is refused."""
    lmms_model: ClassVar[str | None] = None
    """lmms-eval's model wrapper for the family (``--model`` of lmms-eval 0.7.3)."""
    tiny_name: ClassVar[str | None] = None
    """The embedded tiny model of the family (train/tiny/), e.g. ``tiny-qwen2.5-vl``."""

    # ------------------------------------------------------------------ chat template
    assistant_header: ClassVar[str | None] = None
    """Text that opens an assistant turn in the chat template (e.g. ChatML's ``<|im_start|>assistant\n``)."""
    turn_end: ClassVar[str | None] = None
    """The token that ends a turn (e.g. ``<|im_end|>``)."""

    def markers(self, tokenizer) -> tuple[list[int], int]:
        """(assistant header ids, end-of-turn id) in ``tokenizer``'s vocabulary, cached on the tokenizer."""
        if self.assistant_header is None or self.turn_end is None:
            raise NotImplementedError(f"{self.name}: no assistant_header / turn_end")
        cache = getattr(tokenizer, "_family_markers", None)
        if cache is None:
            cache = (tokenizer(self.assistant_header, add_special_tokens=False)["input_ids"],
                     tokenizer.convert_tokens_to_ids(self.turn_end))
            try:
                tokenizer._family_markers = cache
            except AttributeError:
                pass
        return cache

    def stop_token_ids(self, tokenizer) -> list[int]:
        """Token ids that end a generated turn: the template's end-of-turn token and the tokenizer's EOS (what a
        rollout cuts a completion at; bench/gpu_check/c_rollout.py)."""
        ids = [self.markers(tokenizer)[1], tokenizer.eos_token_id]
        return sorted({int(i) for i in ids if i is not None})

    def chat_template_kwargs(self, thinking: bool) -> dict:
        """Extra ``apply_chat_template`` arguments that make a generation prompt match how a sample was trained
        (a thinking switch, train/models/qwen3_5.py); none for a template without one."""
        return {}

    def render_chat(self, processor, messages: list, *, add_generation_prompt: bool = False,
                    thinking: bool = False) -> str:
        """The chat template rendered (text, placeholders unexpanded) with the family's arguments: the one way the
        project renders a conversation, so that training, token counting, GRPO prompts and evaluation agree.
        ``thinking``: off (Qwen3.5's generation prompt closes its think block empty, which a trained answer without
        reasoning continues) unless the prompt asks for a ``<think>`` block (:func:`thinking_for`): then Qwen3.5's
        prompt opens the block (:meth:`think_prefix`), which every trained answer continues."""
        return processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt,
                                             **self.chat_template_kwargs(thinking))

    def think_prefix(self, processor, thinking: bool) -> str:
        """The think block a generation prompt rendered with ``thinking`` leaves open ("" when none): Qwen3.5 with
        thinking on ends its prompt with ``<think>\\n``, so a completion is the reasoning, ``</think>`` and the
        answer, and the reward, the telemetry and the evaluation's answer extraction read ``prefix + completion``
        (rewards.completion.parse_completion's ``opened``). Read off a rendered one-turn prompt, so a real
        checkpoint's own template answers for itself."""
        cache = getattr(processor, "_family_think_prefix", None)
        if cache is None:
            cache = {}
            try:
                processor._family_think_prefix = cache
            except AttributeError:
                pass
        if thinking not in cache:
            probe = [{"role": "user", "content": [{"type": "text", "text": "?"}]}]
            text = self.render_chat(processor, probe, add_generation_prompt=True, thinking=thinking)
            at = text.rfind(THINK_OPEN)
            cache[thinking] = text[at:] if at != -1 and THINK_CLOSE not in text[at:] else ""
        return cache[thinking]

    def render_lmms_chat(self, processor, messages: list) -> str:
        """A generation prompt as lmms-eval's wrapper for the family renders it (its own template arguments,
        :attr:`lmms_chat_template_kwargs`), for ``eval.inputs=lmms_eval``."""
        return processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True,
                                             **self.lmms_chat_template_kwargs)

    def assistant_labels(self, input_ids, tokenizer):
        """Labels equal to ``input_ids`` inside assistant turns (the end-of-turn token included), else -100."""
        header, end_id = self.markers(tokenizer)
        return span_labels(input_ids, header, end_id)

    # ------------------------------------------------------------------ packing
    def position_fn(self, model) -> PositionFn:
        """Encoded sample -> (rows, n) position ids for a packed row (rows = what the model's forward takes)."""
        raise ValueError(f"{self.name}: {self.packing_refusal}")

    def text_positions(self, position_ids):
        """The (batch, length) text positions inside a packed batch's ``position_ids``: they restart at 0 for every
        packed sample (where transformers' flash path puts the sample boundaries; bench/gpu_check finds each
        sample's span from them). A view: writing into it writes ``position_ids``. Default: one position row, the
        ids themselves."""
        return position_ids

    # ------------------------------------------------------------------ vision calls
    vision_attr: str = "visual"
    """Attribute of :meth:`vision_owner` that holds the vision tower (``visual`` for Qwen, ``vision_tower`` for
    InternVL)."""

    def vision_owner(self, model):
        """The module holding the vision tower and the language model (hooked for blank vision calls): the one
        with image features, a :attr:`vision_attr` tower and a language model, and no LM head."""
        for module in model.modules():
            if (hasattr(module, "get_image_features") and hasattr(module, self.vision_attr)
                    and hasattr(module, "language_model") and not hasattr(module, "lm_head")):
                return module
        raise TypeError(f"{type(model).__name__}: no module with a vision tower and a language model")

    def language_model(self, owner):
        """The language-model submodule of :meth:`vision_owner` (its pre-hook runs the blank calls)."""
        return owner.language_model

    def vision_tower(self, owner):
        """The vision tower of :meth:`vision_owner`."""
        return getattr(owner, self.vision_attr)

    def blank_vision_output(self, owner, kind: str):
        """One vision call (``kind`` is a pixel key) on the smallest blank input, every output summed to a
        scalar (deepstack features included): adding ``0 x`` it runs the tower without changing any number."""
        raise NotImplementedError

    def vision_patches(self, config, batch) -> int:
        """How many patches the vision tower runs on for ``batch`` (a processor output or a collated batch), before
        any merge of patches into tokens: the P of the FLOPs counts (bench/gpu_check/flops.py). Default: the
        layout rows of :attr:`grid_of` (t x h x w patches each)."""
        import torch

        return sum(int(batch[key].prod(-1).sum()) for key in self.grid_of.values()
                   if isinstance(batch.get(key), torch.Tensor))

    # ------------------------------------------------------------------ tokens
    def token_counter(self, data_cfg, processor):
        """A :class:`data_mix.tokens.TokenCounter` counting exactly what the processor encodes."""
        from data_mix.tokens import TokenCounter

        return TokenCounter(data_cfg, processor, chat_template_kwargs=self.chat_template_kwargs(thinking=False))

    def suppressed_token_ids(self, processor, model) -> list[int]:
        """Token ids a rollout must never sample (vision placeholders and markers)."""
        return []

    def resized_image_sizes(self, processor, images: list) -> list[tuple[int, int]]:
        """(height, width) the image processor resizes each image to; [] when the family does not say."""
        return []

    # ------------------------------------------------------------------ evaluation inputs
    def lmms_resize(self, image):
        """An image as lmms-eval's wrapper for this family gives it to the processor."""
        raise ValueError(f"{self.name}: eval.inputs=lmms_eval is not implemented for this family")

    def lmms_processor_kwargs(self) -> dict[str, Any]:
        """Extra processor-call arguments lmms-eval's wrapper uses (its pixel limits)."""
        return {}

    lmms_system_prompt: ClassVar[str | None] = "You are a helpful assistant."
    """The system turn lmms-eval's wrapper puts before the task's messages (the Qwen wrappers' ``system_prompt``
    default in 0.7.3); None: the wrapper adds none and the chat template's own default system turn applies."""
    lmms_chat_template_kwargs: ClassVar[dict[str, Any]] = {}
    """Extra chat-template arguments lmms-eval's wrapper passes (Qwen3.5's: ``enable_thinking=True``)."""

    # ------------------------------------------------------------------ recipe
    def check_recipe(self, recipe) -> None:
        """Raise ValueError (one line naming the key) for a recipe key this family cannot honour."""
        if getattr(recipe.train, "packing", False) and self.packing_refusal:
            raise ValueError(f"train.packing=true: {self.name}: {self.packing_refusal}")
        grpo = getattr(recipe, "grpo", None)
        if grpo is not None and getattr(grpo, "backend", None) == "verl" and self.verl_refusal:
            raise ValueError(f"grpo.backend=verl: {self.name}: {self.verl_refusal}")


def thinking_for(template: str | None) -> bool:
    """Whether a prompt asked through ``template`` is rendered with the chat template's thinking switch on: yes
    when the template asks for a ``<think>`` block (the GRPO templates ``think`` and ``auto_think``, and an
    evaluation asked through them). Then the native think block is the one the question asks for: Qwen3.5's
    generation prompt opens ``<think>\\n`` and is a prefix of every sample SFT trained (with or without reasoning),
    where thinking off closes the block empty and only a sample without reasoning continues it (docs/MODELS.md).
    A template without a switch renders the same either way."""
    return template is not None and THINK_OPEN in template


# ---------------------------------------------------------------------- registry

_REGISTRY: dict[str, ModelFamily] = {}


def register(cls: type[ModelFamily]) -> type[ModelFamily]:
    """Class decorator: one instance of ``cls`` serves each of its ``model_types``."""
    family = cls()
    for model_type in cls.model_types:
        if model_type in _REGISTRY:
            raise ValueError(f"model_type {model_type!r} registered twice")
        _REGISTRY[model_type] = family
    return cls
