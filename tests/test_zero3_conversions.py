"""train/zero3_conversions.py: transformers' expert-weight conversions see a ZeRO-3 model's full parameter shapes.

A ZeRO-3 parameter's ``.shape`` is ``(0,)`` (the full one is ``ds_shape``). Here the partitioning is imitated on a
real tiny-qwen3-vl-moe (every parameter's data emptied, ``ds_shape`` set as DeepSpeed sets it), and the save-side
conversion (``revert_weight_conversion``, what ``save_pretrained`` applies) is compared with the unpartitioned
model's. The load side under real ZeRO-3 on two ranks is tests/test_families_dist.py.
"""

from __future__ import annotations

import torch

from train import zero3_conversions


def _partition(model) -> None:
    for p in model.parameters():
        p.ds_shape = p.shape
        p.data = torch.empty(0, dtype=p.dtype)


def _reverted(model, state: dict, convert) -> dict:
    from transformers.core_model_loading import WeightConverter, revert_weight_conversion

    kept = WeightConverter.convert
    WeightConverter.convert = convert
    try:
        return revert_weight_conversion(model, dict(state))
    finally:
        WeightConverter.convert = kept


def test_a_partitioned_moe_saves_its_experts_in_the_layout_a_plain_model_saves():
    from transformers import AutoModelForImageTextToText
    from transformers.core_model_loading import WeightConverter

    from train.model_loading import resolve_model_path

    zero3_conversions.install()
    model = AutoModelForImageTextToText.from_pretrained(resolve_model_path("tiny-qwen3-vl-moe"), dtype=torch.float32)
    full = {k: v.clone() for k, v in model.state_dict().items()}
    plain = _reverted(model, full, WeightConverter.convert)
    experts = [k for k in plain if ".experts." in k]
    assert experts and all(plain[k].shape == full[k].shape for k in experts)  # transformers 5 saves its own layout
    _partition(model)
    assert zero3_conversions.partitioned(model)
    fixed = _reverted(model, full, WeightConverter.convert)
    assert fixed.keys() == plain.keys() and all(torch.equal(fixed[k], plain[k]) for k in plain)
    # transformers' own conversion on the partitioned model transposes every expert tensor (gate_up_proj
    # [4, 256, 128] -> [4, 128, 256]; down_proj is square in the tiny model, so a plain load would keep it
    # transposed): what the wrapper prevents
    unfixed = _reverted(model, full, zero3_conversions._ORIGINAL)
    assert all(torch.equal(unfixed[k], plain[k].transpose(1, 2)) for k in experts)
