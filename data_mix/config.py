"""The recipe's ``data`` and ``mix`` sections. Plain dataclasses; no heavy imports."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DataConfig:
    """Where data lives and how bad samples are handled."""

    root: str = "data"
    """Directory that registry paths are relative to (absolute paths are used as they are).
    Point it at stand-in data made by ``python -m data_mix.engine --standin DIR``."""
    registry: str = "registry"
    """Dataset registry: a recipe-style name under recipes/ (``registry`` -> recipes/data/registry.yaml) or a YAML path."""
    on_bad_sample: str = "error"
    """``error``: stop at the first bad sample naming file, row and reason; ``skip``: count and report."""
    max_skip_fraction: float = 0.01
    """With ``skip``: stop when more than this fraction of the samples read so far were skipped."""
    skip_check_after: int = 100
    """With ``skip``: the skipped fraction is checked once this many samples were read (before: counted only)."""
    max_length: int = 2048
    """Longest tokenized sample (text plus image/video tokens); longer ones are bad samples."""
    video_fps: float = 1.0
    """Frames per second sampled from a video."""
    video_max_frames: int = 8
    """Most frames taken from one video."""
    image_max_pixels: int = 200704
    """Largest image area passed to the processor (pixels; 200704 = 448x448)."""
    image_min_pixels: int = 3136
    """Smallest image area passed to the processor (pixels; 3136 = 56x56)."""
    video_max_pixels: int = 200704
    """Largest area of one video frame passed to the processor (pixels)."""
    token_estimate_rows: int = 1000
    """Rows per source whose tokens are counted to plan a token budget (all rows when a source has fewer)."""
    index_cache: str | None = None
    """Folder for the row-offset indexes of big (>32 MB) JSON/JSONL files; None = ``~/.cache/spatialtree/index``."""
    num_workers: int = 0
    """DataLoader worker processes."""
    decontaminate: str = "error"
    """Before the model loads, check that no training row of the mix is an evaluation record of
    ``decontaminate_against`` (same image contents and the record's question in the row's user text;
    data_mix/decontam.py). ``error``: stop, naming the training file + row and the bench record; ``warn``: log
    the same and train; ``off``: no check (e.g. after a clean ``python launch/decontam.py recipe=NAME``)."""
    decontaminate_against: list[str] | None = None
    """Bench sources checked by ``decontaminate`` (registry names or bench files); None = ``[eval.bench]`` when
    that is set, else none (filled by train.recipe.finalize)."""


@dataclass
class GroupConfig:
    """One group of sources in a mix, e.g. ``general`` or ``ability``."""

    weight: float = 1.0
    """Relative weight of the group, in the mix's unit (samples or tokens)."""
    sources: list[str] = field(default_factory=list)
    """Registry names of the group's sources."""
    source_weights: dict[str, float] = field(default_factory=dict)
    """Optional weights between this group's sources (default: proportional to their sizes)."""
    fraction: float = 1.0
    """Share of each source's rows available to the mix (0.75 = the first 75% of a seeded shuffle of its rows)."""


@dataclass
class BudgetConfig:
    """How much the mix draws in total."""

    unit: str = "epochs"
    """``samples``, ``tokens`` or ``epochs`` (epochs of the group named by ``group``)."""
    value: float = 1.0
    """Size of the budget in ``unit``."""
    group: str | None = None
    """With ``epochs``: the group whose data is seen ``value`` times (default: the group whose data runs
    out first at the mix's weights, so that 1 epoch needs no upsampling)."""
    match_recipe: str | None = None
    """Take the token consumption of another recipe (e.g. the baseline matches ``dist_size_corr``); ``unit``
    and ``value`` are then ignored. The caller loads that recipe (``train.recipe.matched_mix``) and passes its
    mix to ``build_mix(match_mix=)``; its tokens are planned on this run's data and tokenizer."""
    match_overrides: list[str] | None = None
    """``key=value`` overrides the matched recipe is loaded with. None = this run's own overrides without the
    ``mix.budget.match_*`` keys (filled by train.recipe.finalize), so what a sweep or command line sets for
    every run (stand-in data, budgets, ``mix.upsample``, seeds) also applies to the recipe being matched."""


@dataclass
class MixConfig:
    """Groups of sources, their weights and the budget."""

    unit: str = "samples"
    """Unit the group weights are measured in: ``samples`` or ``tokens``."""
    groups: dict[str, GroupConfig] = field(default_factory=dict)
    """Groups by name; the shipped recipes use ``general`` and ``ability``."""
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    """Total amount drawn."""
    upsample: bool = False
    """Allow repeated rows (each repeat of a source in a new seeded order): when a group needs more rows than
    its sources have, and when ``train.max_steps`` needs more samples than the planned mix, which is then
    scaled up to exactly that many at the same proportions. False: the first is a plan error, the second a
    one-line warning at start (training stops when the planned mix is used up)."""
    seed: int | None = None
    """Seed of the sampling order; None = ``train.seed``."""
