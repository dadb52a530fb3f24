"""L4 action plans: ``agenticnaveval`` (one navigation step) and ``manipulateeval`` (a multi-step plan).

The model answers with camera actions and step counts, ``{"actions": ["W", "←"], "step_nums": [3, 2]}``
(navigation) or one such entry per segment, ``{"step 1": {...}, "step 2": {...}}`` (manipulation). The
actions are replayed from the annotated start pose (translation in the camera's frame, yaw/pitch/roll
composed as "zyx" Euler angles) and the end pose is compared with the annotated one, as the benchmark
scorer does:

    score = 0.4 * direction + 0.35 * position + 0.25 * rotation      (times a relevance penalty for manipulation)
    direction = max(0, cos(predicted displacement, annotated displacement)); 1 if neither moved
    position  = exp(-13.863 * |end position error| in m)              (0.2 m -> 0.5)
    rotation  = exp(-0.0154 * (end rotation error in degrees / 5)^2)

Manipulation multiplies by 0.7 when the annotation moves more than 10 cm but the plan moves less than 3 cm,
and by 0.5 when the annotation rotates more than 5 degrees in total but the plan less than 2 degrees.

One deliberate difference: when the replay produces NaN (a NaN or opposite infinite step count in the
answer), the scorer's final clip turns NaN into 1.0; here such an answer scores 0 (``details["nonfinite"]``).
"""

from __future__ import annotations

import math
import re

import numpy as np

from rewards.metrics._parse import parse_action_dict
from rewards.metrics.deps import require
from rewards.metrics.record import Metric

ACTIONS = {
    "W": "Dolly In", "S": "Dolly Out", "A": "Truck Left", "D": "Truck Right",
    "space": "Pedestal Up", "shift": "Pedestal Down",
    "←": "Pan Left", "→": "Pan Right", "↑": "Tilt Up", "↓": "Tilt Down",
    "↺": "Roll CCW", "↻": "Roll CW", "STOP": "Stay",
}
# action symbol -> (index into [dx, dy, dz, yaw, pitch, roll], sign, uses the rotation step)
_EFFECT = {
    "W": (2, 1.0, False), "S": (2, -1.0, False), "D": (0, 1.0, False), "A": (0, -1.0, False),
    "space": (1, -1.0, False), "shift": (1, 1.0, False),
    "→": (3, 1.0, True), "←": (3, -1.0, True), "↑": (4, 1.0, True), "↓": (4, -1.0, True),
    "↻": (5, 1.0, True), "↺": (5, -1.0, True),
}
_DEFAULT_TRANSLATION_STEP = 0.02
_DEFAULT_ROTATION_STEP = float(np.deg2rad(0.5))


def _rotation():
    # imported on first use (keeps `import rewards` fast); a missing scipy is an ImportError, not a 0 score
    return require("agenticnaveval", "scipy.spatial.transform").Rotation


def segment_keys(extra_info: dict) -> list[str]:
    """The annotated segment keys ("0->1", "1->2", ...) in order of their start index."""
    return sorted((k for k in extra_info if "->" in k), key=lambda k: int(k.split("->")[0]))


def apply_actions(pose: np.ndarray, segment: dict, step_info: dict) -> np.ndarray:
    """The pose (x, y, z, quaternion xyzw) after one segment's actions. Unknown symbols are skipped; a
    missing step count counts 1. Non-numeric step counts raise (the caller scores the answer 0)."""
    translation_step = step_info.get("translation_step_size", _DEFAULT_TRANSLATION_STEP)
    rotation_step = step_info.get("rotation_step_size", _DEFAULT_ROTATION_STEP)
    actions = segment.get("actions", [])
    step_nums = segment.get("step_nums", [])
    delta = [0.0] * 6  # dx, dy, dz, yaw, pitch, roll
    for j, symbol in enumerate(actions):
        if not ACTIONS.get(symbol):
            continue
        count = step_nums[j] if j < len(step_nums) else 1
        effect = _EFFECT.get(symbol)
        if effect is None:  # STOP
            continue
        index, sign, rotates = effect
        step = (rotation_step if rotates else translation_step) * count
        delta[index] = delta[index] + step if sign > 0 else delta[index] - step
    rot = _rotation()
    new_rot = rot.from_euler("zyx", delta[3:]) * rot.from_quat(pose[3:])
    quat = new_rot.as_quat()
    out = np.zeros(7)
    out[:3] = pose[:3] + np.array(delta[:3])
    out[3:] = quat / (np.linalg.norm(quat) + 1e-12)
    return out


def _direction_score(gt_vec: np.ndarray, pred_vec: np.ndarray) -> float:
    norm_gt, norm_pred = np.linalg.norm(gt_vec), np.linalg.norm(pred_vec)
    if norm_gt < 1e-6 and norm_pred < 1e-6:
        return 1.0
    if norm_gt > 1e-6 and norm_pred > 1e-6:
        cos = np.dot(gt_vec, pred_vec) / (norm_gt * norm_pred)
        return float(max(0, cos))
    return 0.0


def end_pose_scores(start: np.ndarray, pred_end: np.ndarray, gt_end: np.ndarray) -> dict:
    """Direction, position and rotation scores of a predicted end pose against the annotated one."""
    rot = _rotation()
    position_error = float(np.linalg.norm(pred_end[:3] - gt_end[:3]))
    rotation_error = float(np.rad2deg((rot.from_quat(pred_end[3:]).inv() * rot.from_quat(gt_end[3:])).magnitude()))
    return {
        "direction_score": _direction_score(gt_end[:3] - start[:3], pred_end[:3] - start[:3]),
        "position_score": float(np.exp(-13.863 * position_error)),
        "rotation_score": float(np.exp(-0.0154 * (rotation_error / 5.0) ** 2)),
        "final_position_error_m": position_error,
        "final_rotation_error_deg": rotation_error,
    }


def _combine(parts: dict, penalty: float = 1.0) -> tuple[float, bool]:
    raw = (0.4 * parts["direction_score"] + 0.35 * parts["position_score"] + 0.25 * parts["rotation_score"]) * penalty
    if not math.isfinite(raw):
        return 0.0, True
    return max(0.0, min(1.0, raw)), False


def _total_rotation(poses) -> float:
    rot = _rotation()
    return sum((rot.from_quat(poses[i - 1][3:]).inv() * rot.from_quat(poses[i][3:])).magnitude()
               for i in range(1, len(poses)))


def _quiet(fn):
    """Overflow in a replay of absurd step counts is expected (it scores ~0): keep numpy from warning."""
    def wrapper(*args, **kwargs):
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return fn(*args, **kwargs)
    wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
    return wrapper


@_quiet
def agenticnaveval(response: str, answer, extra_info: dict) -> dict:
    """One navigation step: replay the answer's actions from the second-to-last annotated pose.

    ``extra_info``: ``optimal_rel_pose`` (poses, x y z qx qy qz qw) and segment entries "i->j" with
    ``translation_step_size`` / ``rotation_step_size`` (the last segment's sizes are used).
    """
    plan = parse_action_dict(response)
    if plan is None:
        return {"score": 0.0, "details": {"error": "no action dict in the response"}}
    poses = np.array(extra_info["optimal_rel_pose"])
    start = poses[-2]
    step_info = extra_info[segment_keys(extra_info)[-1]]
    pred_end = apply_actions(start.copy(), plan, step_info)
    # As in the scorer: compare with poses[:7][-1] (7 = the pose vector's length), i.e. the last annotated
    # pose whenever there are at most 7 (a navigation step has 2).
    gt_end = poses[: len(pred_end)][-1]
    parts = end_pose_scores(start, pred_end, gt_end)
    score, nonfinite = _combine(parts)
    if nonfinite:
        parts["nonfinite"] = True
    return {"score": score, "details": parts}


@_quiet
def manipulateeval(response: str, answer, extra_info: dict) -> dict:
    """A multi-segment plan: the answer's segments (sorted by the first number in their keys) are replayed
    from the first annotated pose, one per annotated segment; extra segments are ignored."""
    plan = parse_action_dict(response)
    if plan is None:
        return {"score": 0.0, "details": {"error": "no action dict in the response"}}
    poses = np.array(extra_info["optimal_rel_pose"])
    start = poses[0]
    keys = segment_keys(extra_info)
    trajectory = [start.copy()]
    for i, pred_key in enumerate(_sorted_plan_keys(plan)):
        if i >= len(keys):
            break
        segment = plan[pred_key]
        if not isinstance(segment, dict):
            continue
        trajectory.append(apply_actions(trajectory[-1], segment, extra_info[keys[i]]))
    n_pred = len(trajectory) - 1
    pred_end = trajectory[-1]
    gt_end = poses[: n_pred + 1][-1]
    parts = end_pose_scores(start, pred_end, gt_end)

    gt_move = float(np.linalg.norm(gt_end[:3] - start[:3]))
    pred_move = float(np.linalg.norm(pred_end[:3] - start[:3]))
    penalty = 1.0
    if gt_move > 0.1 and pred_move < 0.03:
        penalty *= 0.7
    gt_rotates = len(poses) > 1 and _total_rotation(poses) > np.deg2rad(5)
    pred_rotates = len(trajectory) > 1 and _total_rotation(trajectory) > np.deg2rad(2)
    if gt_rotates and not pred_rotates:
        penalty *= 0.5
    score, nonfinite = _combine(parts, penalty)
    parts.update(relevance_penalty=penalty, predicted_segments=n_pred, total_segments=len(keys),
                 gt_movement_magnitude=gt_move, pred_movement_magnitude=pred_move)
    if nonfinite:
        parts["nonfinite"] = True
    return {"score": score, "details": parts}


def _sorted_plan_keys(plan: dict) -> list:
    """Plan keys ordered by the first number in each ("step 2" before "step 10"); alphabetically when some
    key has no number."""
    try:
        return sorted(plan.keys(), key=lambda k: int(re.search(r"\d+", k).group()))
    except (AttributeError, ValueError):
        return sorted(plan.keys())


ACTIONS_PROMPT = ("{question}\nYou must ensure that the action intensity values represented by `step_nums` are within "
           "the range of 0 to 10, inclusive.\nPlease provide the action output formatted as a JSON object and "
           "enclosed within a ```json``` code block. Please do your best to move and try. This can help you get "
           "more rewards.")
_SCIPY = (("scipy.spatial.transform", "scipy"),)

RECORDS = (Metric("agenticnaveval", agenticnaveval, answer="mapping_ok", prompt=ACTIONS_PROMPT, deps=_SCIPY),
           Metric("manipulateeval", manipulateeval, answer="mapping_ok", prompt=ACTIONS_PROMPT, deps=_SCIPY))
