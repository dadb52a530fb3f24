"""The dataset registry (recipes/data/registry.yaml): every source a recipe can name.

Loaded once per process and checked whole: unknown keys, unknown formats and SpatialTree tags
that are not in the taxonomy fail with the closest valid names.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from rewards import taxonomy
from rewards.did_you_mean import did_you_mean

FORMATS = ("llava", "bench", "messages")
MODALITIES = ("image", "multi_image", "video", "3d", "text")
REPO_ROOT = Path(__file__).resolve().parents[1]


class RegistryError(ValueError):
    """The registry or a recipe's use of it is wrong; the message names the entry and the closest names."""


@dataclass(frozen=True)
class Tags:
    """SpatialTree tags of a source, checked against the taxonomy."""

    level: str
    ability: str
    leaf: str


@dataclass
class SourceSpec:
    """One registry entry."""

    name: str
    format: str
    files: list[str]
    media_root: str | None = None
    modality: str = "image"
    description: str = ""
    tags: Tags | None = None
    frame_fps: float | None = None
    """Frame rate of the frame folders of this source's videos (None: frames are taken as already sampled)."""
    split: str | None = None
    """Split of a saved HF DatasetDict (None: the only split, or ``train``)."""
    standin: dict[str, Any] = field(default_factory=dict)

    def resolve(self, path: str, root: str) -> str:
        """``path`` made absolute against ``root`` (data.root) unless it already is."""
        path = os.path.expanduser(path)
        return path if os.path.isabs(path) else os.path.join(root, path)

    def file_paths(self, data) -> list[str]:
        """Absolute file paths (glob patterns expanded, sorted); a pattern that matches nothing is an error."""
        out: list[str] = []
        for f in self.files:
            path = self.resolve(f, data.root)
            if glob.has_magic(path):
                matched = sorted(glob.glob(path))
                if not matched:
                    raise FileNotFoundError(f"source {self.name!r}: no file matches {path!r} (data.root={data.root!r})")
                out.extend(matched)
            else:
                if not os.path.exists(path):
                    raise FileNotFoundError(
                        f"source {self.name!r}: file {path!r} does not exist (data.root={data.root!r}; "
                        f"stand-in data: python -m data_mix.engine --standin DIR, then data.root=DIR)")
                out.append(path)
        return out

    def media_dir(self, data) -> str:
        """Folder that the rows' relative media paths are resolved against."""
        return self.resolve(self.media_root, data.root) if self.media_root else data.root


_SPEC_KEYS = [f.name for f in fields(SourceSpec) if f.name != "name"]


def check_tags(raw: Any, where: str) -> Tags:
    """Tags from a ``{level, ability, leaf}`` mapping, validated through the taxonomy."""
    if not isinstance(raw, dict):
        raise RegistryError(f"{where}: tags must be a mapping with level, ability, leaf")
    unknown = set(raw) - {"level", "ability", "leaf"}
    if unknown:
        key = sorted(unknown)[0]
        raise RegistryError(f"{where}: unknown tag key {key!r}{did_you_mean(key, ['level', 'ability', 'leaf'])}")
    if "leaf" not in raw:
        raise RegistryError(f"{where}: tags need a leaf (the ability and level follow from it)")
    try:
        node = taxonomy.leaf(str(raw["leaf"]))
    except KeyError as exc:
        raise RegistryError(f"{where}: {exc.args[0]}") from None
    level, ability = node.path[0], node.path[1]
    if "level" in raw and str(raw["level"]) != level:
        raise RegistryError(f"{where}: leaf {node.name!r} is in level {level}, not {raw['level']!r}")
    if "ability" in raw and taxonomy.normalize(raw["ability"]) != taxonomy.normalize(ability):
        raise RegistryError(f"{where}: leaf {node.name!r} belongs to ability {ability!r}, not {raw['ability']!r}")
    return Tags(level=level, ability=ability, leaf=node.name)


def _spec(name: str, raw: Any, where: str) -> SourceSpec:
    if not isinstance(raw, dict):
        raise RegistryError(f"{where}: source {name!r} must be a mapping")
    for key in raw:
        if key not in _SPEC_KEYS:
            raise RegistryError(f"{where}: source {name!r}: unknown key {key!r}{did_you_mean(key, _SPEC_KEYS)} "
                                f"(valid keys: {', '.join(_SPEC_KEYS)})")
    here = f"{where}: source {name!r}"
    fmt = raw.get("format")
    if fmt not in FORMATS:
        raise RegistryError(f"{here}: format {fmt!r} is not one of {', '.join(FORMATS)}{did_you_mean(fmt, FORMATS)}")
    files = raw.get("files")
    if isinstance(files, str):
        files = [files]
    if not files or not all(isinstance(f, str) for f in files):
        raise RegistryError(f"{here}: files must be a non-empty list of paths")
    modality = raw.get("modality", "image")
    if modality not in MODALITIES:
        raise RegistryError(f"{here}: modality {modality!r} is not one of {', '.join(MODALITIES)}"
                            f"{did_you_mean(modality, MODALITIES)}")
    tags = check_tags(raw["tags"], here) if raw.get("tags") is not None else None
    frame_fps = raw.get("frame_fps")
    if frame_fps is not None and not float(frame_fps) > 0:
        raise RegistryError(f"{here}: frame_fps must be > 0")
    return SourceSpec(name=name, format=fmt, files=list(files), media_root=raw.get("media_root"),
                      modality=modality, description=str(raw.get("description", "")), tags=tags,
                      frame_fps=None if frame_fps is None else float(frame_fps), split=raw.get("split"),
                      standin=dict(raw.get("standin") or {}))


@dataclass
class Registry:
    """All sources of a registry file, by name."""

    path: str
    sources: dict[str, SourceSpec]

    def get(self, name: str) -> SourceSpec:
        if name not in self.sources:
            raise RegistryError(f"unknown source {name!r} in registry {self.path}{did_you_mean(name, self.sources)}")
        return self.sources[name]

    def __contains__(self, name: str) -> bool:
        return name in self.sources

    def names(self) -> list[str]:
        return list(self.sources)


def registry_path(name_or_path: str) -> Path:
    """recipes/data/NAME.yaml for a bare name (``$SPATIALTREE_RECIPES`` overrides recipes/), else the path."""
    if name_or_path.endswith((".yaml", ".yml")) or os.sep in name_or_path:
        path = Path(name_or_path).expanduser()
    else:
        recipes = Path(os.environ.get("SPATIALTREE_RECIPES", REPO_ROOT / "recipes"))
        path = recipes / "data" / f"{name_or_path}.yaml"
    if not path.is_file():
        raise RegistryError(f"dataset registry {str(path)!r} does not exist (data.registry={name_or_path!r})")
    return path


_CACHE: dict[tuple[str, float], Registry] = {}


def load_registry(name_or_path: str = "registry") -> Registry:
    """Load and check a registry (cached per file and modification time)."""
    path = registry_path(name_or_path)
    key = (str(path.resolve()), path.stat().st_mtime)
    if key in _CACHE:
        return _CACHE[key]
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise RegistryError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("sources"), dict):
        raise RegistryError(f"{path}: a registry is a mapping with a 'sources' mapping")
    extra = set(raw) - {"sources"}
    if extra:
        raise RegistryError(f"{path}: unknown top-level key {sorted(extra)[0]!r}; only 'sources' is allowed")
    reg = Registry(str(path), {str(n): _spec(str(n), v, str(path)) for n, v in raw["sources"].items()})
    _CACHE[key] = reg
    return reg


def check_mix(mix, registry: Registry) -> None:
    """Check a recipe's mix against the registry before any data is read: names, weights, budget."""
    if not mix.groups:
        raise RegistryError("mix.groups is empty: name at least one group of sources")
    owner: dict[str, str] = {}
    for gname, group in mix.groups.items():
        where = f"mix.groups.{gname}"
        if not group.sources:
            raise RegistryError(f"{where}.sources is empty")
        if group.weight < 0:
            raise RegistryError(f"{where}.weight must be >= 0, got {group.weight}")
        if not 0 < group.fraction <= 1:
            raise RegistryError(f"{where}.fraction must be in (0, 1], got {group.fraction}")
        for src in group.sources:
            if src not in registry:
                raise RegistryError(f"{where}.sources: unknown source {src!r}{did_you_mean(src, registry.names())}"
                                    f" (registry {registry.path})")
            if src in owner:
                raise RegistryError(f"source {src!r} is in two groups: {owner[src]!r} and {gname!r}")
            owner[src] = gname
        if group.source_weights:
            missing = [s for s in group.sources if s not in group.source_weights]
            extra = [s for s in group.source_weights if s not in group.sources]
            if extra:
                raise RegistryError(f"{where}.source_weights: {extra[0]!r} is not one of the group's sources"
                                    f"{did_you_mean(extra[0], group.sources)}")
            if missing:
                raise RegistryError(f"{where}.source_weights: give a weight for every source or none "
                                    f"(missing {', '.join(missing)})")
            if any(w < 0 for w in group.source_weights.values()) or sum(group.source_weights.values()) <= 0:
                raise RegistryError(f"{where}.source_weights must be >= 0 and not all 0")
    if sum(g.weight for g in mix.groups.values()) <= 0:
        raise RegistryError("mix.groups: the group weights sum to 0")
    budget = mix.budget
    if budget.group is not None and budget.group not in mix.groups:
        raise RegistryError(f"mix.budget.group: unknown group {budget.group!r}{did_you_mean(budget.group, mix.groups)}")
    if budget.match_recipe is None and not budget.value > 0:
        raise RegistryError(f"mix.budget.value must be > 0, got {budget.value}")
