"""The SpatialTree capability hierarchy as data: levels, abilities, leaves and their weights.

This is the single home of the taxonomy; data_mix, rewards and eval_hooks all read it.
It imports only the standard library so that verl's own environment can load it.

Weights are those of the public SpatialTree-Bench scorer. A node's score is the weighted mean
of its children's scores, divided by the sum of the weights taken into account:

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


@dataclass
class Aggregate:
    """Scores of every node after aggregation; ``scores[key]`` is None where nothing was sampled."""

    mode: str
    scores: dict[str, float | None]
    counts: dict[str, int]

    @property
    def overall(self) -> float | None:
        return self.scores[""]


def aggregate(leaf_scores: Mapping[str, float], leaf_counts: Mapping[str, int] | None = None,
              mode: str = "renormalize") -> Aggregate:
    """Aggregate mean leaf scores (keyed by leaf name, any spelling) up the tree.

    ``leaf_counts`` gives sample counts per leaf (defaults to 1 for every scored leaf).
    """
    if mode not in AGGREGATION_MODES:
        raise ValueError(f"aggregation mode must be one of {AGGREGATION_MODES}, got {mode!r}")
    by_key = {leaf(k).key: float(v) for k, v in leaf_scores.items()}
    counts_in = {leaf(k).key: int(v) for k, v in (leaf_counts or {}).items()}
    scores: dict[str, float | None] = {}
    counts: dict[str, int] = {}

    def visit(n: Node) -> tuple[float | None, int]:
        if n.is_leaf:
            s = by_key.get(n.key)
            c = counts_in.get(n.key, 1 if s is not None else 0)
        else:
            total = wsum = 0.0
            c = 0
            for child in n.children:
                cs, cc = visit(child)
                c += cc
                if cs is None and mode == "renormalize":
                    continue
                total += child.weight * (cs or 0.0)
                wsum += child.weight
            s = total / wsum if wsum > 0 else (None if mode == "renormalize" else 0.0)
        if n.is_leaf and s is None and mode == "reference":
            s = 0.0
        scores[n.key] = s
        counts[n.key] = c
        return s, c

    visit(ROOT)
    return Aggregate(mode=mode, scores=scores, counts=counts)
