"""Shared by the verl tests: verl's environment, a stand-in export with every metricfunc at every level, a stub judge.

verl 0.9.1 lives in its own environment (.venv-verl, scripts/verl/setup_env.sh). :func:`verl_env` runs that
script every time (idempotent: ~0.1 s when the environment is complete, otherwise it creates or completes it,
5 minutes from nothing on this 2-core machine) and returns its python.
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
from pathlib import Path

from fixtures_judge import scores
from fixtures_side_env import side_env

REPO = Path(__file__).resolve().parents[1]


def verl_env() -> Path:
    """verl's interpreter (tests/fixtures_side_env.py)."""
    return side_env("verl", timeout=2400)


# ------------------------------------------------------------------------------------------- the stub judge

def strict_grade(user: str) -> str:
    """A strict judge: 0.8 when the reference answer's text appears in the student answer, else 0.1
    (deterministic, so both environments get the same grade)."""
    reference = user.split("Reference answer:\n", 1)[1].split("\n\nStudent answer:\n", 1)[0]
    student = user.split("\n\nStudent answer:\n", 1)[1]
    return scores(0.8 if reference.strip().lower() in student.lower() else 0.1)


# --------------------------------------------------------------------- bench rows for every metricfunc

def _mask_png(width: int = 40, height: int = 30) -> str:
    """A base64 PNG mask: the left half 255, the right half 0."""
    import numpy as np
    from PIL import Image

    mask = np.zeros((height, width), dtype=np.uint8)
    mask[:, : width // 2] = 255
    buf = io.BytesIO()
    Image.fromarray(mask, "L").save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


_NAV = {"optimal_rel_pose": [[0, 0, 0, 0, 0, 0, 1], [0, 0, 0.25, 0, 0, 0, 1]],
        "0->1": {"translation_step_size": 0.0625, "rotation_step_size": 0.0725}}
_MANIP = {"optimal_rel_pose": [[0, 0, 0, 0, 0, 0, 1], [0, 0, 0.2, 0, 0, 0, 1], [0.1, 0, 0.2, 0, 0, 0, 1]],
          "0->1": {"translation_step_size": 0.05, "rotation_step_size": 0.0725},
          "1->2": {"translation_step_size": 0.05, "rotation_step_size": 0.0725}}
_COGMAP = {"chair": {"position": [0, 0], "facing": "up"}, "table": {"position": [2, 0], "facing": "left"},
           "lamp": {"position": [2, 3]}}
_GRAVITY = {"roll": 2.0, "pitch": -5.0, "vfov": 60.0}

# (metricfunc as the bench stores it, question_type, level, leaf, answer, hint, options, right answer, wrong answer,
#  image sizes (w, h)). Image sizes vary (multiples of 28 and not, one to three images) so that the token counts
# of both sides go through resizing.
METRIC_CASES = [
    ("multichoiceeval", "mcq", "L1", "Distance", "A", {}, ["A. the red box", "B. the blue box"], "A", "B",
     [(600, 400)]),
    ("multichoiceeval", "open", "L1", "Size", "3.0", {}, [], "3.0", "9.5", [(84, 56)]),
    ("gravityeval", "open", "L1", "Gravity", json.dumps(_GRAVITY), {"roll_unc": 2.0, "pitch_unc": 2.0, "vfov_unc": 5.0},
     [], json.dumps(_GRAVITY), '{"roll": 25.0, "pitch": 30.0, "vfov": 100.0}', [(100, 70)]),
    ("cogmapeval", "mcq", "L2", "Cognitive Map", "B", {"cogmap": json.dumps(_COGMAP), "id_type": "around_12"},
     ["A. chair", "B. table"], json.dumps(_COGMAP) + "\nAnswer: B",
     json.dumps({"chair": {"position": [2, 0]}, "table": {"position": [0, 3]}}) + "\nAnswer: A", [(56, 56), (56, 84)]),
    ("affmask", "open", "L2", "Affordance", "MASK", {}, [], "[0.25, 0.5]", "[0.75, 0.5]", [(112, 84)]),
    ("gpteval", "open", "L2", "Motion Understanding", "pan left", {"prompt": "Describe the camera motion."}, [],
     "The camera will pan left slowly.", "The camera tilts up.", [(56, 56), (56, 56), (56, 56)]),
    ("multichoiceeval", "mcq", "L3", "Route", "B", {}, ["A. left then right", "B. straight ahead"], "B", "A",
     [(140, 84)]),
    ("judge", "open", "L3", "Dynamics", "yes", {}, [], "Yes, it will fall.", "No.", [(70, 70)]),
    ("agenticnaveval", "open", "L4", "Agentic Navigation", "", _NAV, [],
     '```json\n{"actions": ["W"], "step_nums": [4]}\n```', '```json\n{"actions": ["S", "A"], "step_nums": [4, 3]}\n```',
     [(56, 56), (84, 84)]),
    ("manipulateeval", "open", "L4", "Robotic Arm", "", _MANIP, [],
     '```json\n{"step 1": {"actions": ["W"], "step_nums": [4]}, "step 2": {"actions": ["D"], "step_nums": [2]}}\n```',
     '```json\n{"step 1": {"actions": ["S"], "step_nums": [2]}, "step 2": {"actions": ["←"], "step_nums": [9]}}\n```',
     [(56, 56)]),
    ("multichoiceeval", "mcq", "L4", "Knowledge Acquisition", "A", {}, ["A. open the door, done", "B. wait, not done"],
     "A", "B", [(333, 251), (20, 20)]),
]
"""Every metricfunc of SpatialTree-Bench (open multichoiceeval = meanrelativeacc), levels L1-L4."""

METRICFUNCS = ("multichoiceeval", "meanrelativeacc", "gravityeval", "cogmapeval", "affmask", "gpteval", "judge",
               "agenticnaveval", "manipulateeval")


def write_metric_source(root: Path) -> Path:
    """``root/every_metric.jsonl`` (one bench record per :data:`METRIC_CASES` entry, images under ``root/media``)
    and ``root/registry.yaml`` naming it source ``every_metric``. Returns the JSONL path."""
    import yaml
    from PIL import Image

    (root / "media").mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (metric, qtype, level, leaf, answer, hint, options, _right, _wrong, sizes) in enumerate(METRIC_CASES):
        names = []
        for j, (w, h) in enumerate(sizes):
            name = f"m{i}_{j}.png"
            Image.new("RGB", (w, h), ((40 * i) % 255, (90 + 30 * j) % 255, 120)).save(root / "media" / name)
            names.append(name)
        rows.append({
            "question": f"Question {i} about the {leaf.lower()} in the image?", "option": options,
            "answer": _mask_png() if answer == "MASK" else answer, "question_type": qtype, "hint": json.dumps(hint),
            "extra_info": json.dumps({"metricfunc": metric, "spatree0": level, "spatree1": "x", "spatree2": leaf}),
            "image": names, "video": [], "video_info": [], "session_id": f"m{i}",
        })
    path = root / "every_metric.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "registry.yaml").write_text(yaml.safe_dump({"sources": {"every_metric": {
        "format": "bench", "files": [path.name], "media_root": "media", "modality": "multi_image"}}}))
    return path


def completions_for(rows: list[dict]) -> list[dict]:
    """For each exported parquet row (``extra_info.id`` = session id m<i>): right and wrong answers, bare and in
    the think/answer format, plus an empty completion: ``[{"index", "completion", "case", "right"}]``."""
    items = []
    for row in rows:
        case = METRIC_CASES[int(row["extra_info"]["id"][1:])]
        right, wrong = case[7], case[8]
        forms = [(right, True, "bare"), (wrong, False, "bare"),
                 (f"<think>The scene shows it clearly.</think><answer>{right}</answer>", True, "think"),
                 (f"<think>{'I look again. ' * 20}</think><answer>{wrong}</answer>", False, "think"),
                 ("", False, "empty")]
        for text, is_right, form in forms:
            items.append({"index": row["extra_info"]["index"], "completion": text, "right": is_right, "form": form})
    return items


# ------------------------------------------------------------------- the same completions scored both ways

def score_both_ways(verl_python: Path, recipe, out: Path, rows: list[dict], items: list[dict], tmp: Path,
                    tokenizer=None, timeout: int = 900) -> tuple[list[dict], dict, list, list[float]]:
    """``items`` ({index, completion}) scored by verl's NaiveRewardManager on the export (scripts/verl/
    score_parquet.py, in verl's environment) and by TRL's reward functions on the same rows' columns.

    Returns (verl's scores, the TRL columns, TRL's per-function values, TRL's weighted totals as TRL forms them).
    ``tokenizer``: what TRL's length counter uses under ``reward.length_unit=tokens`` (verl's side loads the
    export's ``reward_kwargs.tokenizer``)."""
    from rewards.grpo import make_reward_funcs, reward_weights

    (tmp / "completions.json").write_text(json.dumps([{"index": i["index"], "completion": i["completion"]}
                                                      for i in items]))
    proc = subprocess.run([str(verl_python), str(REPO / "scripts" / "verl" / "score_parquet.py"),
                           str(out / "grpo_verl.yaml"), str(out / "train.parquet"), str(tmp / "completions.json"),
                           str(tmp / "scores.json")], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    verl_scores = json.loads((tmp / "scores.json").read_text())
    assert len(verl_scores) == len(items)

    funcs = make_reward_funcs(recipe.reward, tokenizer=tokenizer)
    weights = reward_weights(recipe.reward)
    by_index = {r["extra_info"]["index"]: r for r in rows}
    columns = {"metricfunc": [], "answer": [], "metric_extra": [], "level": [], "leaf": [], "task": []}
    for item in items:
        row = by_index[item["index"]]
        columns["metricfunc"].append(row["extra_info"]["metricfunc"])
        columns["answer"].append(row["reward_model"]["ground_truth"])
        columns["metric_extra"].append(json.loads(row["extra_info"]["metric_extra"]))
        columns["level"].append(row["extra_info"]["level"])
        columns["leaf"].append(row["extra_info"].get("leaf"))  # the TRL dataset carries leaf and task too: they
        columns["task"].append(row["extra_info"].get("task"))  # select the reward.tasks overrides (auto-think's)
    completions = [[{"role": "assistant", "content": it["completion"]}] for it in items]
    per_func = [f(prompts=[None] * len(items), completions=completions, **columns) for f in funcs]
    totals = [sum(w * (v[i] or 0.0) for w, v in zip(weights, per_func)) for i in range(len(items))]
    return verl_scores, columns, per_func, totals
