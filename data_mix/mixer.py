"""The mixer: a recipe's ``mix`` section as a deterministic, resumable, sharded stream of Samples.

The stream has ``plan.total_samples`` positions. Position p belongs to rank ``p % world_size``;
a rank's i-th position is ``rank + i * world_size``. Which source a position draws from is fixed
by :class:`~data_mix.permutation.Interleave`; which row, by a seeded :class:`Permutation` of the
source's rows per epoch of that source (without replacement within an epoch; a new order each
epoch when ``mix.upsample`` repeats rows). Nothing is materialised: memory does not grow with the
number of rows, and a restart enters the stream at its saved position directly.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from data_mix import rowcheck
from data_mix.badsample import BadSample, BadSampleTracker
from data_mix.permutation import Interleave, Permutation, stable_key
from data_mix.plan import MixPlan, available_rows, extend_plan, make_plan
from data_mix.readers import SourceRows
from data_mix.registry import check_mix, load_registry
from data_mix.rowcheck import too_long
from data_mix.sample import Sample
from data_mix.tokens import TokenCounter

log = logging.getLogger("data_mix")


class SourceDraws:
    """Row of a source's j-th draw: epoch e = j // rows, a new seeded order per epoch; with
    ``fraction`` < 1 the rows come from the first ``rows`` of a fixed seeded shuffle (the pool)."""

    def __init__(self, rows: SourceRows, available: int, seed: int):
        self.rows, self.available, self.seed = rows, available, seed
        self.name = rows.spec.name
        n = len(rows)
        self._pool = Permutation(n, stable_key(seed, self.name, "pool")) if available < n else None
        self._epochs: dict[int, Permutation] = {}
        self.table = None
        """The row check's :class:`~data_mix.rowcheck.RowTable` (tokens and bad rows), when it ran."""

    def available_row_ids(self) -> list[int] | None:
        """The source rows this source can draw when ``fraction`` < 1 (its seeded pool); None when all can."""
        return None if self._pool is None else [self._pool(i) for i in range(self.available)]

    def draw(self, r: int, counter: TokenCounter, data) -> tuple[Sample, int]:
        """(sample, tokens) of source row ``r``; tokens counted once (the row check's count when it ran); raises
        BadSample for a bad row, ``too_long`` included."""
        known = self.table.known(r) if self.table is not None else None
        sample = self.rows.get(r)
        tokens = counter(sample) if known is None else known
        bad = too_long(sample, tokens, data)
        if bad is not None:
            raise bad
        return sample, tokens

    def row(self, j: int) -> int:
        epoch, r = divmod(j, self.available)
        perm = self._epochs.get(epoch)
        if perm is None:
            if len(self._epochs) > 4:
                self._epochs.clear()
            perm = self._epochs[epoch] = Permutation(self.available, stable_key(self.seed, self.name, "epoch", epoch))
        idx = perm(r)
        return self._pool(idx) if self._pool is not None else idx


def count_first_draws(draws: SourceDraws, counter: TokenCounter, data) -> list[int]:
    """Tokens of the source's first draws (its first epoch's order): every available row when there are
    at most ``data.token_estimate_rows``, else that many. Bad rows (a row longer than ``data.max_length``
    included: it would inflate the mean) stop the count under ``data.on_bad_sample=error`` and are left out
    under ``skip``."""
    n = min(draws.available, max(1, data.token_estimate_rows))
    counts = []
    for j in range(n):
        try:
            counts.append(draws.draw(draws.row(j), counter, data)[1])
        except BadSample:
            if data.on_bad_sample != "skip":
                raise
    if not counts:
        raise BadSample(draws.rows.paths[0], -1, "bad_record", f"no readable sample among {n} rows of {draws.name}")
    return counts


def _mean_of_drawn(counts: list[int], k: int) -> float:
    """Mean tokens of the first k draws when they were all counted (exact), else of all counted rows."""
    head = counts[:k] if 0 < k <= len(counts) else counts
    return sum(head) / len(head)


def _draws_for(data, mix, sources: dict[str, SourceRows]) -> dict[str, SourceDraws]:
    """The draws of every source of ``mix`` (its rows read into ``sources`` on first use)."""
    seed = 0 if mix.seed is None else int(mix.seed)
    names = [s for g in mix.groups.values() for s in g.sources]
    registry = load_registry(data.registry)
    for s in names:
        if s not in sources:
            sources[s] = SourceRows(registry.get(s), data)
    fraction = {s: g.fraction for g in mix.groups.values() for s in g.sources}
    return {s: SourceDraws(sources[s], available_rows(len(sources[s]), fraction[s]), seed) for s in names}


def _plan_for(data, mix, counter, draws: dict[str, SourceDraws], budget_tokens=None, label="") -> MixPlan:
    """The plan of ``mix`` over ``draws`` (token counts from the row check's tables where it ran)."""
    names = list(draws)
    rows = {s: len(d.rows) for s, d in draws.items()}
    need_tokens = mix.unit == "tokens" or mix.budget.unit == "tokens" or budget_tokens is not None
    if not need_tokens:
        return make_plan(mix, rows, None, budget_tokens, label)
    counts = {s: count_first_draws(draws[s], counter, data) for s in names if draws[s].available}
    tps = {s: sum(c) / len(c) for s, c in counts.items()}
    plan = make_plan(mix, rows, tps, budget_tokens, label)
    for _ in range(4):  # the draws' own mean where they were all counted; a few rounds reach a fixed point
        drawn = {sp.name: sp.samples for sp in plan.sources}
        tps = {s: _mean_of_drawn(c, drawn[s] if drawn[s] <= draws[s].available else 0) for s, c in counts.items()}
        new = make_plan(mix, rows, tps, budget_tokens, label)
        if [sp.samples for sp in new.sources] == [sp.samples for sp in plan.sources]:
            return new
        plan = new
    return plan


class Mix:
    """This rank's share of the mixed stream. Iterating yields Samples with ``meta`` keys
    ``mix_pos`` (rank-local position), ``group`` and ``tokens``."""

    def __init__(self, data, mix, plan: MixPlan, draws: dict[str, SourceDraws], counter: TokenCounter,
                 rank: int = 0, world_size: int = 1):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world_size {world_size}")
        self.data, self.config, self.plan, self.counter = data, mix, plan, counter
        self.rank, self.world_size = rank, world_size
        self.seed = 0 if mix.seed is None else int(mix.seed)
        self._active = [sp for sp in plan.sources if sp.samples > 0]
        self._draws = [draws[sp.name] for sp in self._active]
        self._interleave = Interleave([sp.samples for sp in self._active],
                                      [stable_key(self.seed, sp.name, "phase") for sp in self._active])
        self.position = 0
        self.skips = BadSampleTracker.from_config(data)
        self.row_check: BadSampleTracker | None = None
        """The rows checked before training (``build_mix(check_rows=True)``), counted under data.on_bad_sample."""

    # ------------------------------------------------------------------ sizes
    @property
    def total_samples(self) -> int:
        """Planned samples over all ranks."""
        return self.plan.total_samples

    @property
    def samples_this_rank(self) -> int:
        return max(0, -(-(self.total_samples - self.rank) // self.world_size))

    def __len__(self) -> int:
        return self.samples_this_rank

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        return {"position": self.position, "rank": self.rank, "world_size": self.world_size,
                "seed": self.seed, "plan": self.plan.fingerprint(), "skips": self.skips.state_dict()}

    def state_after(self, mix_pos: int) -> dict:
        """The state that resumes right after the sample with ``meta["mix_pos"] == mix_pos`` (for
        trainers that consume through DataLoader workers and track positions themselves)."""
        return {**self.state_dict(), "position": int(mix_pos) + 1}

    def load_state_dict(self, state: dict) -> None:
        mine = self.state_dict()
        for key in ("plan", "seed", "world_size", "rank"):
            if state.get(key) != mine[key]:
                raise ValueError(f"cannot resume: the saved mix state has {key}={state.get(key)!r}, this mix has "
                                 f"{mine[key]!r} (same recipe, data, seed and number of ranks are needed)")
        self.position = int(state["position"])
        self.skips.load_state_dict(state.get("skips", {}))

    # ------------------------------------------------------------------ iteration
    def locate(self, local: int) -> tuple[str, int]:
        """(source, row) drawn at this rank's position ``local`` (for tests and debugging)."""
        p = self.rank + local * self.world_size
        _pos, s, j = next(self._interleave.iter_from(p))
        return self._active[s].name, self._draws[s].row(j)

    def _sample(self, s: int, j: int, local: int) -> Sample:
        sample, tokens = self._draws[s].draw(self._draws[s].row(j), self.counter, self.data)
        sample.meta.update(mix_pos=local, group=self._active[s].group, tokens=tokens)
        return sample

    def iterate(self, start: int = 0, worker: int = 0, num_workers: int = 1, block: int = 1) -> Iterator[Sample]:
        """This rank's samples from rank-local position ``start``; with workers, worker ``w`` takes
        the blocks of ``block`` positions whose number is w modulo ``num_workers``."""
        first = self.rank + start * self.world_size
        for p, s, j in self._interleave.iter_from(first):
            if (p - self.rank) % self.world_size:
                continue
            local = (p - self.rank) // self.world_size
            if num_workers > 1 and (local // block) % num_workers != worker:
                continue
            try:
                sample = self._sample(s, j, local)
            except BadSample as exc:
                self.position = local + 1
                self.skips.bad(exc)
                continue
            self.skips.ok()
            self.position = local + 1
            yield sample
        if self.skips.skipped:
            log.warning("mix (rank %d): %s", self.rank, self.skips.summary())

    def __iter__(self) -> Iterator[Sample]:
        return self.iterate(self.position)


def build_mix(data, mix, *, rank: int = 0, world_size: int = 1, tokenizer=None, match_mix=None,
              min_samples: int | None = None, check_rows: bool = False, progress: bool = False) -> Mix:
    """The Mix of a recipe's ``data`` and ``mix`` sections for one rank.

    ``tokenizer`` (or a processor) counts text tokens; without one a documented estimate is used.
    ``match_mix``: when ``mix.budget.match_recipe`` names a recipe, the caller loads that recipe and
    passes its (resolved) ``mix`` section; its planned tokens on the same data become this budget.
    ``min_samples``: samples (over all ranks) the trainer's ``train.max_steps`` takes; with ``mix.upsample``
    a smaller plan is scaled up to exactly that many (same proportions), without it the plan is kept.
    ``check_rows``: read and check every row the mix can draw first (data_mix/rowcheck.py; ``progress`` shows a
    bar); the Mix's ``row_check`` then holds the tracker that counted them (None without the check).
    """
    registry = load_registry(data.registry)
    check_mix(mix, registry)
    counter = TokenCounter(data, tokenizer)
    sources: dict[str, SourceRows] = {}
    budget_tokens, label = None, ""
    if mix.budget.match_recipe is not None:
        if match_mix is None:
            raise ValueError(f"mix.budget.match_recipe={mix.budget.match_recipe!r}: load that recipe and pass its "
                             f"mix as build_mix(..., match_mix=recipe.mix)")
        if match_mix.budget.match_recipe is not None:
            raise ValueError(f"recipe {mix.budget.match_recipe!r} itself matches another recipe; "
                             f"match a recipe with its own budget")
        check_mix(match_mix, registry)
        other = _plan_for(data, match_mix, counter, _draws_for(data, match_mix, sources))
        budget_tokens = other.total_tokens
        label = f"{budget_tokens:.0f} tokens (the planned tokens of {mix.budget.match_recipe})"
    draws = _draws_for(data, mix, sources)
    tracker = rowcheck.check_rows(draws, counter, data, progress=progress) if check_rows else None
    plan = _plan_for(data, mix, counter, draws, budget_tokens, label)
    if min_samples is not None and mix.upsample and min_samples > plan.total_samples:
        plan = extend_plan(plan, min_samples, "train.max_steps with mix.upsample")
    out = Mix(data, mix, plan, draws, counter, rank=rank, world_size=world_size)
    out.row_check = tracker
    return out
