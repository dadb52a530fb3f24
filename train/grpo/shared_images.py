"""Encode each distinct image of a GRPO batch once.

GRPO repeats every prompt ``num_generations`` times, so a rollout batch and every loss batch carry each image
``num_generations`` times, and the vision tower (with its projector) encodes every copy. :func:`install` wraps
the model's ``get_image_features`` / ``get_video_features`` so that identical inputs in one call are encoded
once and their features handed to every copy.

Exact by construction: a copy's features are the same tensor rows as its original's (index selection, whose
backward sums the copies' gradients into the projector, as the separate copies' backwards would), and every
family on the list attends within one image (Qwen's windows and ``cu_seqlens``, InternVL's tiles), so an image's
features do not depend on the others in the call. The vision tower is still called once per call, so ZeRO-3's
gathers and the blank vision calls (train/uniform_vision.py) stay in step across ranks.

What counts as "the same": the family's layout (``ModelFamily.grid_of``): with a grid (Qwen), an image is its
grid row and its ``t*h*w`` patch rows of the pixel tensor; without one (InternVL), a tile is one row of
dim 0. Identity is ``torch.equal`` on the pixels (and the grid), after a one-sync fingerprint narrows the
candidates, so no hash collision can merge two images.
"""

from __future__ import annotations

import functools

import torch

METHODS = {"pixel_values": "get_image_features", "pixel_values_videos": "get_video_features"}
"""The feature method that encodes each pixel key."""


def unique_units(units: list[torch.Tensor], grids: list[tuple] | None) -> tuple[list[int], list[int]]:
    """(indices of the first copy of each distinct unit, for every unit the position of its first copy in that
    list)."""
    fingerprints = torch.stack([u.reshape(-1)[:4096].float().sum() for u in units]).tolist() if units else []
    first: list[int] = []
    inverse: list[int] = []
    by_key: dict[tuple, list[int]] = {}
    for i, unit in enumerate(units):
        key = (tuple(unit.shape), grids[i] if grids else None, fingerprints[i])
        for slot in by_key.get(key, []):
            if torch.equal(units[first[slot]], unit):
                inverse.append(slot)
                break
        else:
            by_key.setdefault(key, []).append(len(first))
            inverse.append(len(first))
            first.append(i)
    return first, inverse


RAW_FIELDS = ("last_hidden_state", "hidden_states", "attentions")
"""Output fields that hold the tower's raw rows or per-layer states of the distinct units: dropped (None)."""


def _expand(value, inverse: list[int], n: int, per_unit: bool):
    """A feature field of the distinct units -> the same field for every unit: a tuple with a tensor per unit
    (grid layouts), a tensor with a row per unit (tile layouts), or a list / tuple of such (e.g. features taken
    from several layers). Anything else that carries tensors comes back None."""
    if isinstance(value, torch.Tensor):
        if not per_unit and value.shape[0] == n:
            return value.index_select(0, torch.tensor(inverse, device=value.device))
        return None
    if isinstance(value, (tuple, list)):
        if per_unit and len(value) == n and all(isinstance(v, torch.Tensor) for v in value):
            return tuple(value[j] for j in inverse)
        items = [_expand(v, inverse, n, per_unit) for v in value]
        return None if any(i is None for i in items) else type(value)(items)
    return value


def _shared(method, pixel_key: str, grid_key: str | None):
    """``method`` (a bound feature method) with each distinct unit encoded once."""

    @functools.wraps(method)
    def encode(*args, **kwargs):
        args = list(args)
        pixels = args[0] if args else kwargs.get(pixel_key)
        grid = (args[1] if len(args) > 1 else kwargs.get(grid_key)) if grid_key else None
        if not isinstance(pixels, torch.Tensor) or kwargs.get("return_dict") is False or (grid_key and grid is None):
            return method(*args, **kwargs)
        if grid_key:
            sizes = grid.prod(-1).tolist()
            units, grids = list(pixels.split(sizes)), [tuple(g) for g in grid.tolist()]
        else:
            units, grids = list(pixels.unbind(0)), None
        first, inverse = unique_units(units, grids)
        if len(first) == len(units):
            return method(*args, **kwargs)
        distinct = torch.cat([units[i] for i in first]) if grid_key else pixels[first]
        if args:
            args[0] = distinct
        else:
            kwargs[pixel_key] = distinct
        if grid_key:
            if len(args) > 1:
                args[1] = grid[first]
            else:
                kwargs[grid_key] = grid[first]
        out = method(*args, **kwargs)
        for field in list(out.keys()):  # a ModelOutput: only the fields that are set
            value = None if field in RAW_FIELDS else _expand(out[field], inverse, len(first), bool(grid_key))
            if value is None and field not in RAW_FIELDS:
                raise TypeError(f"train/grpo/shared_images.py: {type(out).__name__}.{field} of "
                                f"{type(method.__self__).__name__}.{method.__name__} has no per-image layout it "
                                "knows; features of repeated images cannot be handed out")
            setattr(out, field, value)
        return out

    encode.shared_images = True
    return encode


class Handle:
    """Undoes :func:`install` (``remove()``), as a hook handle does."""

    def __init__(self, owner, names: list[str]):
        self.owner, self.names = owner, names

    def remove(self) -> None:
        for name in self.names:
            self.owner.__dict__.pop(name, None)


def install(owner, family) -> Handle:
    """Wrap ``owner``'s feature methods (``owner`` is the family's :meth:`vision_owner`) for every pixel key
    the family has; installing twice wraps once."""
    names = []
    for pixel_key in family.pixel_keys:
        name = METHODS.get(pixel_key)
        if name is None or not hasattr(owner, name) or getattr(owner.__dict__.get(name), "shared_images", False):
            continue
        owner.__dict__[name] = _shared(getattr(owner, name), pixel_key, family.grid_of.get(pixel_key))
        names.append(name)
    return Handle(owner, names)
