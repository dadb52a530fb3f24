"""GRPO prompt sets that mix text-only and image prompts, on one process or many (TRL 1.16).

Three things in TRL break such a set (and one costs time), with or without DeepSpeed:

* TRL's rollout marks a prompt without images ``None`` in the per-prompt image lists, and the processor
  refuses a batch that mixes ``None`` and images ("only a single or a list of entries is supported");
  :class:`MixedMediaGRPO` hands it ``[]`` instead (the processor's own way to say "no image here");
* TRL slices the pixels of a generation batch per micro-batch and per log-prob chunk; a slice with only text
  prompts carries ``pixel_values`` with 0 rows, on which a vision tower fails (``torch.cat`` of an empty
  list). :func:`drop_empty_vision_inputs` removes such inputs before the model sees them;
* every prompt is repeated ``num_generations`` times, so each image reaches the vision tower that many times per
  forward; :mod:`train.grpo.shared_images` encodes each distinct one once;
* with several processes, TRL gathers the batch's images for its completions log only on processes whose batch
  has images (``log_multimodal``, on by default, even without ``log_completions``): a rank with text-only
  prompts skips the collective and both ranks hang. :class:`MixedMediaGRPO` turns TRL's gather off and gathers
  them itself on every rank, only when completions are logged (``grpo.log_completions``).

And with DeepSpeed on more than one process (``train.deepspeed`` zero2/zero3), the ranks must run the vision
tower equally often (train/uniform_vision.py explains why): :class:`train.recipe_trainer.RecipeTrainer` installs
the blank vision calls on the policy, and :meth:`MixedMediaGRPO.install_media_hooks` on the reference model when it
is partitioned (ZeRO-3, a KL term), which runs in eval mode. Under ZeRO-2 TRL keeps the reference model whole on every rank (DeepSpeed stage 0):
its forwards gather nothing and need no blank calls. Generation needs none either (under ZeRO-3 TRL gathers the
whole policy for it: ``ds3_gather_for_generation``, left at its default); the hooks skip decoding steps, so a
rollout costs two blank calls, in its first step.
"""

from __future__ import annotations

import torch

from train.grpo import shared_images
from train.models import family_for_model
from train.uniform_vision import install_uniform_vision, vision_owner


def drop_empty_vision_inputs(module, args, kwargs):
    """Forward pre-hook of the multimodal body: 0-row pixel inputs (and their layout keys, the family's
    ``grid_of``) become absent inputs."""
    family = module.__dict__.get("_st_family")  # looked up once per module: the hook runs at every decoding step
    if family is None:
        from train.models import family_for_config

        family = module.__dict__["_st_family"] = family_for_config(module.config)
    empty = [k for k in family.pixel_keys if isinstance(kwargs.get(k), torch.Tensor) and kwargs[k].shape[0] == 0]
    if not empty:
        return None
    kwargs = dict(kwargs)
    for key in empty:
        kwargs[key] = None
        if key in family.grid_of:
            kwargs[family.grid_of[key]] = None
    return args, kwargs


def fill_missing_images(images: list | None) -> list | None:
    """TRL's per-prompt image lists with ``[]`` for a prompt without images (``None`` there breaks the processor)."""
    if images is None:
        return None
    return [[] if prompt_images is None else prompt_images for prompt_images in images]


def unwrap(model):
    """The model inside a DeepSpeed engine (or the model itself)."""
    inner = getattr(model, "module", None)
    return inner if isinstance(inner, torch.nn.Module) else model


def partitioned(engine) -> bool:
    """Whether a DeepSpeed engine shards the parameters (ZeRO-3): each module call then gathers collectively."""
    check = getattr(engine, "zero_optimization_partition_weights", None)
    return bool(check and check())


class MixedMediaGRPO:
    """Mixin for TRL's ``GRPOTrainer``: prompts with and without images in one batch, and the same vision calls on
    every DeepSpeed rank. Call :meth:`install_media_hooks` once after ``GRPOTrainer.__init__``."""

    def install_media_hooks(self) -> dict[str, list]:
        """Hooks on the policy (and the reference model): ``{"policy": handles, "reference": handles}``; takes
        over TRL's image logging (see the module docstring)."""
        self.log_images, self.log_multimodal = self.log_multimodal, False
        models = {"policy": self.model}
        if getattr(self, "ref_model", None) is not None:
            models["reference"] = self.ref_model
        handles: dict[str, list] = {}
        for name, model in models.items():
            owner = vision_owner(unwrap(model))
            handles[name] = [owner.register_forward_pre_hook(drop_empty_vision_inputs, with_kwargs=True,
                                                             prepend=True),
                             shared_images.install(owner, family_for_model(unwrap(model)))]
        # the policy's blank vision calls are installed by train.recipe_trainer.RecipeTrainer, as for SFT
        if self.args.deepspeed and self.args.world_size > 1 and "reference" in models and partitioned(self.ref_model):
            handles["reference"] += install_uniform_vision(unwrap(self.ref_model), in_eval=True)
        return handles

    def _generate(self, prompts: list):
        out = super()._generate(prompts)
        if len(out) != 8:  # (prompt_ids, completion_ids, tool_mask, completions, logprobs, extra, images, tool_images)
            raise RuntimeError(f"TRL's GRPOTrainer._generate returned {len(out)} values; train/grpo/media.py "
                               "expects TRL 1.16's 8")
        return (*out[:6], fill_missing_images(out[6]), out[7])

    def _generate_and_score_completions(self, inputs):
        out = super()._generate_and_score_completions(inputs)
        if self.log_images and self.log_completions:  # every rank, in step with TRL's gather of the prompts
            from accelerate.utils import gather_object

            self._logs["images"].extend(gather_object([x.get("images") or [] for x in inputs]))
        return out
