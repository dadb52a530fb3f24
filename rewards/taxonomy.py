"""The SpatialTree capability hierarchy as data: levels, abilities, leaves and their weights.

This is the single home of the taxonomy; data_mix, rewards and eval_hooks all read it.
It imports only the standard library so that verl's own environment can load it.

A node's score is the weighted mean of its children's scores, divided by the sum of the weights
taken into account. Two named weightings (:data:`WEIGHTINGS`) differ only in the L2 ability weights:

- ``lmms_eval``: the public SpatialTree-Bench scorer's (lmms-eval 0.7.3,
  ``lmms_eval/tasks/spatialtreebench/spatree_hierarchy.json``: L2 Memory 1, Underst. 1);
- ``paper_table``: the weights that reproduce the paper's published Avg columns from their ability
  columns (Tables 1-3): lmms-eval's L1/L3/L4 weights, equal level weights, and L2 Underst. 0.70 /
  Memory 0.30 (the bracketed L2 weights of the paper's Table 1). Found by recomputation, see
  tests/test_eval_weights.py; the paper does not state how its Avg was computed beyond Table 1's brackets.

Aggregation modes:

- ``mode="reference"``: every child counts; a leaf with no samples scores 0 (what the public
  scorer does on the full benchmark).
- ``mode="renormalize"``: only children that have samples count (right for subsets such as a
  mid-training evaluation); a node without any sampled descendant has no score (None).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from rewards.did_you_mean import did_you_mean

AGGREGATION_MODES = ("renormalize", "reference")
DEFAULT_WEIGHTING = "lmms_eval"

# (level name, level title, weight, [(ability, weight, [(leaf, weight), ...]), ...])
_HIERARCHY: tuple = (
    ("L1", "Perception", 0.25, (
        ("Geometry", 0.5, (("Distance", 0.65), ("Shape", 0.1), ("Size", 0.25))),
        ("Localization", 0.2, (("3D Detection", 0.65), ("3D Grounding", 0.35))),
        ("Motion", 0.05, (("Allo", 0.5), ("Ego", 0.5))),
        ("Orientation", 0.1, (("Gravity", 0.4), ("Object Orientation", 0.6))),
        ("Relation", 0.15, (("Correspondence", 0.5), ("Relative Direction", 0.5))),
    )),
    ("L2", "Mental Mapping", 0.25, (
        ("Memory", 1.0, (("Cognitive Map", 0.7), ("Memory Retrieval", 0.3))),
        ("Underst.", 1.0, (
            ("Affordance", 0.25), ("Motion Understanding", 0.25), ("Perspective Taking", 0.05),
            ("Relation Understanding", 0.35), ("Spatial Caption", 0.1),
        )),
    )),
    ("L3", "Mental Simulation", 0.25, (
        ("Caus. Reas.", 0.65, (("Dynamics", 0.3), ("Geometry Puzzles", 0.55), ("Relation", 0.15))),
        ("Seq. Plan.", 0.35, (("Operation", 0.6), ("Route", 0.4))),
    )),
    ("L4", "Agentic Competence", 0.25, (
        ("Goal-Driven Execution", 0.5, (("Agentic Navigation", 0.5), ("Robotic Arm", 0.5))),
        ("Open-world Exploration", 0.5, (("Knowledge Acquisition", 0.7), ("Self-Goaling", 0.3))),
    )),
)

LEVELS = ("L1", "L2", "L3", "L4")

# Named weightings: node key -> weight where it differs from the tree's own (lmms-eval's) weights.
WEIGHTINGS: dict[str, dict[str, float]] = {
    "lmms_eval": {},
    "paper_table": {"L2/Underst.": 0.70, "L2/Memory": 0.30},
}


def normalize(name: str) -> str:
    """The key a name is looked up by: spaces removed, case folded ("3D Detection" -> "3ddetection")."""
    return "".join(str(name).split()).lower()


@dataclass(frozen=True)
class Node:
    """One node of the tree. ``path`` is the names from the level down, e.g. ("L1", "Geometry", "Distance")."""

    name: str
    weight: float
    path: tuple[str, ...]
    children: tuple[Node, ...] = field(default=(), repr=False)

    @property
    def is_leaf(self) -> bool:
        return not self.children

    @property
    def level(self) -> str | None:
        return self.path[0] if self.path else None

    @property
    def key(self) -> str:
        """Slash-joined path used in metric names: "L1/Geometry/Distance" ("" for the root)."""
        return "/".join(self.path)

    @property
    def tag(self) -> str:
        """The leaf tag as the benchmark stores it in ``extra_info`` (spaces removed)."""
        return self.name.replace(" ", "")

    def walk(self) -> Iterator[Node]:
        """This node and all its descendants, depth first, parents before children."""
        yield self
        for child in self.children:
            yield from child.walk()


def _build() -> Node:
    levels = []
    for lname, _title, lw, abilities in _HIERARCHY:
        ab_nodes = []
        for aname, aw, leaves in abilities:
            leaf_nodes = tuple(Node(n, w, (lname, aname, n)) for n, w in leaves)
            ab_nodes.append(Node(aname, aw, (lname, aname), leaf_nodes))
        levels.append(Node(lname, lw, (lname,), tuple(ab_nodes)))
    return Node("SpaTree", 1.0, (), tuple(levels))


ROOT = _build()
LEVEL_TITLES = {lname: title for lname, title, _w, _a in _HIERARCHY}
_LEAVES = {normalize(n.name): n for n in ROOT.walk() if n.is_leaf}
_ABILITIES = {}
for _lvl in ROOT.children:
    for _ab in _lvl.children:
        _ABILITIES.setdefault(normalize(_ab.name), []).append(_ab)


def leaves() -> list[Node]:
    """All 27 leaves in tree order."""
    return [n for n in ROOT.walk() if n.is_leaf]


def abilities() -> list[Node]:
    """All 11 abilities (second tier) in tree order: the columns of the paper's tables."""
    return [ab for lvl in ROOT.children for ab in lvl.children]


def _unknown(kind: str, name: str, choices: Iterable[str]) -> KeyError:
    return KeyError(f"unknown SpatialTree {kind} {name!r}{did_you_mean(name, choices)}")


def leaf(name: str) -> Node:
    """The leaf called ``name`` as the benchmark spells it, with or without spaces, any case."""
    node = _LEAVES.get(normalize(name))
    if node is None:
        raise _unknown("leaf", name, [n.name for n in _LEAVES.values()])
    return node


def ability(name: str, level: str | None = None) -> Node:
    """The ability called ``name`` ("Geometry", "Underst.", "Seq.Plan."); ``level`` disambiguates."""
    found = [n for n in _ABILITIES.get(normalize(name), []) if level is None or n.level == level]
    if len(found) != 1:
        raise _unknown("ability", name, [a.name for a in abilities()])
    return found[0]


def node(path: str | Iterable[str]) -> Node:
    """The node at a slash path ("L1/Geometry/Distance") or a sequence of names."""
    parts = [p for p in (path.split("/") if isinstance(path, str) else path) if p]
    cur = ROOT
    for part in parts:
        match = [c for c in cur.children if normalize(c.name) == normalize(part)]
        if not match:
            raise _unknown("node", "/".join(parts), [n.key for n in ROOT.walk() if n.key])
        cur = match[0]
    return cur


def level_of(leaf_name: str) -> str:
    """"L1".."L4" for a leaf name."""
    return leaf(leaf_name).path[0]


def leaf_from_tags(extra_info: Mapping[str, object]) -> Node | None:
    """The leaf named by the deepest ``spatreeN`` tag of a record's extra_info, or None."""
    tags = [(int(k[7:]), v) for k, v in extra_info.items() if k.startswith("spatree") and k[7:].isdigit()]
    if not tags:
        return None
    name = max(tags)[1]
    try:
        return leaf(str(name))
    except KeyError:
        return None


def weight_of(node: Node, weighting: str = DEFAULT_WEIGHTING) -> float:
    """``node``'s weight among its siblings under a named weighting (:data:`WEIGHTINGS`)."""
    return _weights(weighting).get(node.key, node.weight)


def _weights(weighting: str) -> dict[str, float]:
    if weighting not in WEIGHTINGS:
        raise ValueError(f"unknown weighting {weighting!r}; one of {', '.join(WEIGHTINGS)}")
    return WEIGHTINGS[weighting]


@dataclass
class Aggregate:
    """Scores of every node after aggregation; ``scores[key]`` is None where nothing was sampled."""

    mode: str
    scores: dict[str, float | None]
    counts: dict[str, int]
    weighting: str = DEFAULT_WEIGHTING
    """The named weighting (:data:`WEIGHTINGS`) the scores were aggregated with."""
    missing: frozenset[str] = frozenset()
    """Keys of nodes without a score because a leaf below could not be scored (given as ``missing``): the
    leaves themselves, and in ``reference`` mode every ancestor (never counted as 0)."""

    @property
    def overall(self) -> float | None:
        return self.scores[""]


def aggregate(leaf_scores: Mapping[str, float], leaf_counts: Mapping[str, int] | None = None,
              mode: str = "renormalize", weighting: str = DEFAULT_WEIGHTING,
              missing: Iterable[str] = ()) -> Aggregate:
    """Aggregate mean leaf scores (keyed by leaf name, any spelling) up the tree.

    ``leaf_counts`` gives sample counts per leaf (defaults to 1 for every scored leaf). ``missing`` names
    leaves whose score could not be computed (e.g. an LLM-judged leaf evaluated without a judge): they have
    no score in either mode, and in ``reference`` mode neither has any ancestor.
    """
    return aggregate_nodes({leaf(k).key: float(v) for k, v in leaf_scores.items()},
                           {leaf(k).key: int(v) for k, v in (leaf_counts or {}).items()},
                           mode=mode, weighting=weighting, missing={leaf(k).key for k in missing})


def aggregate_nodes(node_scores: Mapping[str, float], node_counts: Mapping[str, int] | None = None,
                    mode: str = "renormalize", weighting: str = DEFAULT_WEIGHTING,
                    missing: Iterable[str] = ()) -> Aggregate:
    """Aggregate scores given at any nodes, by key ("L1/Geometry/Distance", or an ability "L2/Underst."), up
    to the root. A node given a score is taken as it is, its children are not visited: the paper's tables give
    ability scores, and their Avg is recomputed this way. Otherwise as :func:`aggregate`.
    """
    if mode not in AGGREGATION_MODES:
        raise ValueError(f"aggregation mode must be one of {AGGREGATION_MODES}, got {mode!r}")
    weights = _weights(weighting)
    given = {node(k).key: float(v) for k, v in node_scores.items()}
    counts_in = {node(k).key: int(v) for k, v in (node_counts or {}).items()}
    missing_in = {node(k).key for k in missing}
    scores: dict[str, float | None] = {}
    counts: dict[str, int] = {}
    missing_out: set[str] = set()

    def visit(n: Node) -> tuple[float | None, int]:
        if n.key in missing_in:
            s, c = None, counts_in.get(n.key, 0)
            missing_out.add(n.key)
        elif n.key in given or n.is_leaf:
            s = given.get(n.key)
            c = counts_in.get(n.key, 1 if s is not None else 0)
            if s is None and mode == "reference":
                s = 0.0
        else:
            total = wsum = 0.0
            c = 0
            lost = False
            for child in n.children:
                cs, cc = visit(child)
                c += cc
                lost = lost or child.key in missing_out
                if cs is None and (mode == "renormalize" or child.key in missing_out):
                    continue
                w = weights.get(child.key, child.weight)
                total += w * (cs or 0.0)
                wsum += w
            s = total / wsum if wsum > 0 else (None if mode == "renormalize" else 0.0)
            if lost and (mode == "reference" or s is None):
                s = None
                missing_out.add(n.key)
        scores[n.key] = s
        counts[n.key] = c
        return s, c

    visit(ROOT)
    return Aggregate(mode=mode, scores=scores, counts=counts, weighting=weighting, missing=frozenset(missing_out))
