"""The paper's RL objective and its auto-think task mapping, with the sentences they rest on (SpatialTree, Sec. 6.2).

Data only; imports nothing of the project (verl's environment loads ``rewards``). The recipes
(``recipes/rl/*.yaml``) write these choices out and ``tests/test_paper_objective.py`` checks that they agree.
Where a paper task is a benchmark leaf or a task type is our reading of its words, said per entry.
"""

from __future__ import annotations

OBJECTIVE = ("The training objective is purely maximizing the reward on discrete MCQ selection.")
"""Limitations, 'Task and Metric Discrepancy': why the Table 3 recipes train with ``reward.accuracy: mcq_only``."""

PERCEPTION = ("For tasks such as depth estimation, object counting, and orientation, we removed rewards for "
              "\u201cthinking processes\u201d and introduced a length penalty.")
"""Auto-think, 'For Intuitive Perception'."""

REASONING = ("For nested tasks like navigation planning and causal reasoning, we retained and amplified rewards for "
             "explicit reasoning steps, encouraging the model to utilize more tokens for intermediate computation.")
"""Auto-think, 'For Complex Reasoning'."""

PER_LEVEL = ("We initially conducted experiments using standard GRPO on individual capabilities selected from each "
             "level of the SpatialTree.")
"""'Limitations of Naive RL on Low-Level Skills': the L1..L4 RL@think rows. The paper does not name the
capabilities; the recipes train on every prompt of the level (our reading, docs/GRPO.md)."""

PERCEPTION_TASKS: dict[str, str] = {
    "Distance": "depth estimation (our reading: the benchmark's L1 Geometry/Distance leaf)",
    "counting": "object counting (a task type; the benchmark files counting under L2 Memory, so it is named here "
                "and shaped like L1 wherever it is filed)",
    "Gravity": "orientation (L1 Orientation/Gravity)",
    "Object Orientation": "orientation (L1 Orientation/Object Orientation)",
}
"""``reward.tasks`` key -> the paper's words: no thinking reward, a length penalty (shaped like L1)."""

REASONING_TASKS: dict[str, str] = {
    "Route": "navigation planning (L3 Seq. Plan./Route)",
    "Agentic Navigation": "navigation planning (L4 Goal-Driven Execution/Agentic Navigation)",
    "Dynamics": "causal reasoning (L3 Caus. Reas./Dynamics)",
    "Geometry Puzzles": "causal reasoning (L3 Caus. Reas./Geometry Puzzles)",
    "Relation": "causal reasoning (L3 Caus. Reas./Relation)",
}
"""``reward.tasks`` key -> the paper's words: thinking paid ("retained") and the reasoning bonus larger than the
level's and growing with the think block ("amplified", "utilize more tokens"). Coefficients: project choices."""
