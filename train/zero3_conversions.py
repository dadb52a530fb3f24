"""Weight conversions that see a ZeRO-3 model's full parameter shapes (transformers 5.23 with DeepSpeed ZeRO-3).

transformers converts some checkpoints' tensors on load and converts them back on save (``WeightConverter``,
transformers/core_model_loading.py). Two of those operations read the model's parameter shapes: ``Transpose`` with
``check_dims=True`` transposes only when the tensor's shape differs from the parameter's (Qwen3-VL-MoE's fused
experts: the released checkpoints store ``[experts, hidden, 2 x inter]``, transformers 5 keeps ``[experts,
2 x inter, hidden]`` and saves that), and ``Split`` sizes its pieces from the parameters. Under ZeRO-3 a parameter
is a partition placeholder whose ``.shape`` is ``(0,)`` (its real shape is ``ds_shape``), so:

- loading a checkpoint already in the in-memory layout (any checkpoint transformers 5 saved, the tiny models, an
  earlier stage's output) transposes it anyway: ``size mismatch ... [4, 128, 256] ... [4, 256, 128]`` for
  ``gate_up_proj``, and a square ``down_proj`` (inter = hidden) silently transposed;
- saving under ZeRO-3 transposes every expert tensor back to the legacy layout, which a plain load reads back
  correctly except a square ``down_proj``, kept transposed.

Measured on tiny-qwen3-vl-moe (tests/test_families_dist.py). :func:`install` wraps ``WeightConverter.convert`` so
that, for a model whose parameters are partitioned, the operations see a view of the model whose
``get_parameter`` gives a meta tensor of the full shape; nothing changes for a model that is not partitioned.
"""

from __future__ import annotations

_ORIGINAL = None
"""transformers' own ``WeightConverter.convert`` once :func:`install` wrapped it (tests compare the two)."""


class FullShapes:
    """A partitioned model as a weight conversion sees it: ``get_parameter`` answers the full shape."""

    def __init__(self, model):
        self._model = model

    def get_parameter(self, name: str):
        import torch

        param = self._model.get_parameter(name)
        shape = getattr(param, "ds_shape", None)
        return param if shape is None else torch.empty(shape, dtype=param.dtype, device="meta")

    def __getattr__(self, name: str):
        return getattr(self._model, name)


def partitioned(model) -> bool:
    """Whether ``model``'s parameters are ZeRO-3 partitions (the first one says: zero.Init partitions all)."""
    first = next(iter(model.parameters()), None) if hasattr(model, "parameters") else None
    return first is not None and hasattr(first, "ds_shape")


def install() -> None:
    """Wrap ``WeightConverter.convert`` once per process (idempotent)."""
    global _ORIGINAL
    if _ORIGINAL is not None:
        return
    from transformers.core_model_loading import WeightConverter

    original = _ORIGINAL = WeightConverter.convert

    def convert(self, layer_name, model=None, *args, **kwargs):
        if model is not None and partitioned(model):
            model = FullShapes(model)
        return original(self, layer_name, model, *args, **kwargs)

    WeightConverter.convert = convert
