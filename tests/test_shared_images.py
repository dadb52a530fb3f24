"""train/grpo/shared_images.py: a GRPO batch's repeated images are encoded once, with the same features and
projector gradients as encoding every copy, for every family (its tiny model)."""

from __future__ import annotations

import pytest
import torch

from tests.fixtures_families import ROWS, load
from tests.test_families2 import ROWS2, load2

NAMES = [name for name, _ in ROWS + ROWS2]


def _batch(processor, n_distinct: int, copies: int):
    """``n_distinct`` different images, each repeated ``copies`` times in GRPO's order (a prompt's copies are
    adjacent), as the processor encodes them for one call."""
    from PIL import Image

    gen = torch.Generator().manual_seed(0)
    images = [Image.fromarray((torch.rand(56 + 28 * i, 84, 3, generator=gen) * 255).byte().numpy())
              for i in range(n_distinct)]
    ordered = [img for img in images for _ in range(copies)]
    return processor.image_processor(images=ordered, return_tensors="pt")


def _features(owner, batch, grad: bool):
    """Image features of every copy (one tensor of all rows, and any DeepStack layers), and the projector's
    gradient of a fixed function of them."""
    args = {k: v for k, v in batch.items() if k in ("pixel_values", "image_grid_thw")}
    out = owner.get_image_features(**args, return_dict=True)
    pooled = out.pooler_output
    rows = torch.cat(list(pooled)) if isinstance(pooled, tuple) else pooled.reshape(-1, pooled.shape[-1])
    deep = [torch.cat(list(layer)) for layer in (getattr(out, "deepstack_features", None) or [])]
    weights = torch.linspace(-1, 1, rows.numel()).reshape(rows.shape)
    if grad:
        (rows * weights).sum().backward()
    return rows.detach(), [d.detach() for d in deep]


@pytest.mark.parametrize("name", NAMES)
def test_repeated_images_are_encoded_once_with_the_same_features_and_gradients(name):
    from train.grpo import shared_images

    loaded = load2(name) if name in dict(ROWS2) else load(name)
    family = loaded.family
    owner = family.vision_owner(loaded.model)
    tower = family.vision_tower(owner)
    batch = _batch(loaded.processor, n_distinct=2, copies=4)
    params = [p for p in owner.parameters() if p.requires_grad]
    seen = []
    counter = tower.register_forward_pre_hook(lambda m, a, k: seen.append(
        (a[0] if a else next(iter(k.values()))).shape[0]), with_kwargs=True)
    try:
        for p in params:
            p.grad = None
        rows_all, deep_all = _features(owner, batch, grad=True)
        grads_all = [None if p.grad is None else p.grad.clone() for p in params]
        for p in params:
            p.grad = None
        handle = shared_images.install(owner, family)
        try:
            assert shared_images.install(owner, family).names == []  # installed once
            rows_once, deep_once = _features(owner, batch, grad=True)
            grads_once = [None if p.grad is None else p.grad.clone() for p in params]
        finally:
            handle.remove()
    finally:
        counter.remove()
        for p in params:
            p.grad = None
    # the tower saw 8 copies without sharing, 2 images with it (pixel rows: 1/4)
    assert len(seen) == 2 and seen[1] * 4 == seen[0], seen
    torch.testing.assert_close(rows_once, rows_all, atol=1e-5, rtol=1e-5)
    assert len(deep_once) == len(deep_all)
    for a, b in zip(deep_once, deep_all):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert any(g is not None and g.abs().sum() > 0 for g in grads_all)
    for a, b in zip(grads_once, grads_all):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    assert "get_image_features" not in owner.__dict__  # removed


def test_distinct_images_with_equal_fingerprints_stay_apart():
    """Two units whose fingerprints agree but whose pixels differ are not merged (``torch.equal`` decides)."""
    from train.grpo.shared_images import unique_units

    a = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    b = torch.tensor([[2.0, 1.0], [4.0, 3.0]])  # same sum, other pixels
    first, inverse = unique_units([a, b, a.clone(), b.clone()], [(1, 1, 2)] * 4)
    assert first == [0, 1] and inverse == [0, 1, 0, 1]
    first, inverse = unique_units([a, a.clone()], [(1, 1, 2), (1, 2, 1)])  # same pixels, other grids
    assert first == [0, 1] and inverse == [0, 1]
