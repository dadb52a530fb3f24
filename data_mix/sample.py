"""The one normalized sample type every reader produces and every trainer consumes.

Messages follow the transformers/TRL chat format with typed content parts. Media placeholders
appear as ``{"type": "image"}`` / ``{"type": "video"}`` parts, in the same order as ``images`` /
``videos``; the processor's chat template turns them into the model's vision tokens.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

Message = dict[str, Any]  # {"role": "system"|"user"|"assistant", "content": [part, ...]}


@dataclass
class Sample:
    """A training or evaluation sample, whatever its source format."""

    id: str
    """Stable id: the row's own id, else ``{source}:{row}``."""
    source: str
    """Registry name of the dataset it came from."""
    messages: list[Message]
    """Conversation; for RL/eval prompts the last assistant turn is absent."""
    images: list[str] = field(default_factory=list)
    """Absolute image paths, in placeholder order (``bytes`` of an encoded image where a dataset embeds
    them, e.g. an HF ``Image`` column; ``data_mix.media.load_media`` decodes both)."""
    videos: list[list[str] | str] = field(default_factory=list)
    """Per video: a video file path, or the list of its (already sampled) frame image paths."""
    level: str | None = None
    """SpatialTree level "L1".."L4" (None for general data)."""
    ability: str | None = None
    """SpatialTree ability as the taxonomy spells it ("Geometry", "Underst.")."""
    leaf: str | None = None
    """SpatialTree leaf as the taxonomy spells it ("Distance", "3D Detection")."""
    metricfunc: str | None = None
    """SpatialTree-Bench metric that scores this sample's answer (bench and RL samples)."""
    answer: Any = None
    """Ground truth as the benchmark stores it (bench and RL samples)."""
    metric_extra: dict[str, Any] = field(default_factory=dict)
    """What the metric needs beyond the answer: the record's parsed ``hint`` plus ``option`` for MCQ."""
    question_type: str | None = None
    """"open" for open-ended questions (MCQ metric then scores with mean relative accuracy)."""
    file: str = ""
    """File the sample was read from (for error messages)."""
    row: int = -1
    """Row index in that file (0-based)."""
    meta: dict[str, Any] = field(default_factory=dict)
    """Anything else worth keeping (e.g. a thinking trace under "think")."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Sample:
        return cls(**d)

    @property
    def where(self) -> str:
        """``file:row`` for error messages."""
        return f"{self.file}:{self.row + 1}" if self.file else self.id
