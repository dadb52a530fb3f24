"""verl adapter: same components and total as the TRL path; imports nothing heavy."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from rewards import LevelShaping, RewardConfig, make_reward_funcs, reward_weights
from rewards.verl_reward import compute_score

REPO = Path(__file__).resolve().parents[1]
MCQ = {"option": ["A. cube", "B. chair"]}
THOUGHT = "The chair is drawn larger and lower in the image than the cube, so it is nearer to the camera."
SAMPLES = [
    ("multichoiceeval", "B", MCQ, "L1", "<answer>B</answer>"),
    ("multichoiceeval", "B", json.dumps(MCQ), "L1", f"<think>{THOUGHT * 8}</think><answer>B</answer>"),
    ("multichoiceeval", "A", MCQ, "L3", f"<think>{THOUGHT}</think><answer>A</answer>"),
    ("meanrelativeacc", "3.0", {}, "L4", f"<think>{THOUGHT}</think>about 3.1 m"),
    ("judge", "no", None, "L2", "No."),
    ("agenticnaveval", "", {"optimal_rel_pose": [[0, 0, 0, 0, 0, 0, 1], [0, 0, 0.25, 0, 0, 0, 1]],
                            "0->1": {"translation_step_size": 0.0626, "rotation_step_size": 0.0725}},
     "L4", '<think>move forward four steps</think>```json\n{"actions": ["W"], "step_nums": [4]}\n```'),
]


@pytest.mark.parametrize("cfg", [RewardConfig(length_unit="words"),
                                 RewardConfig(mode="think", length_unit="words"),
                                 RewardConfig(length_unit="words", format_weight=0.3,
                                              levels={"L1": LevelShaping(length_free_tokens=2, length_cap_tokens=40,
                                                                         length_penalty=0.4),
                                                      "L3": LevelShaping(reasoning_bonus=0.5, think_reward=0.05)})])
@pytest.mark.parametrize("how", ["extra_info", "reward_kwargs"])
def test_adapter_matches_trl_path(cfg, how):
    funcs = make_reward_funcs(cfg)
    weights = reward_weights(cfg)
    cfg_dict = dataclasses.asdict(cfg)
    for metricfunc, answer, extra, level, completion in SAMPLES:
        cols = {"metricfunc": [metricfunc], "answer": [answer], "metric_extra": [extra], "level": [level]}
        trl = {f.__name__: f(prompts=["q"], completions=[[{"role": "assistant", "content": completion}]], **cols)[0]
               for f in funcs}
        trl_total = sum(w * trl[name] for w, name in zip(weights, ["accuracy", "format", "length", "reasoning"]))
        info = {"metricfunc": metricfunc, "metric_extra": extra, "level": level}
        if how == "extra_info":
            out = compute_score("spatialtree", completion, answer, {**info, "reward_config": cfg_dict})
        else:
            out = compute_score("spatialtree", completion, answer, info, reward_config=cfg_dict)
        assert out["score"] == pytest.approx(trl_total, abs=1e-9)
        for name in ("accuracy", "format", "length", "reasoning"):
            assert out[name] == pytest.approx(trl[name], abs=1e-9), (name, completion)
    assert SAMPLES and out["accuracy"] > 0.5  # the navigation sample moved the right way


def test_adapter_errors_are_clear():
    with pytest.raises(ValueError, match="metricfunc"):
        compute_score("src", "B", "B", {"level": "L1"})
    with pytest.raises(ValueError, match="did you mean 'reward.format_weight'"):
        compute_score("src", "B", "B", {"metricfunc": "judge", "reward_config": {"formatweight": 1}})


def test_adapter_imports_only_light_modules():
    """Loaded by file path the way verl loads a custom reward, in a fresh interpreter."""
    code = f"""
import importlib.util, json, sys
import numpy, scipy.spatial.transform, PIL.Image  # what the metrics' packages import is their business
before = {{m.split(".")[0] for m in sys.modules}}
spec = importlib.util.spec_from_file_location("custom_module", {str(REPO / "rewards" / "verl_reward.py")!r})
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
words = {{"length_unit": "words"}}  # length_unit=tokens loads a tokenizer (transformers) by design
out = mod.compute_score("s", "<answer>B</answer>", "B", {{"metricfunc": "multichoiceeval",
                        "metric_extra": {{"option": ["A. x", "B. y"]}}, "level": "L1"}}, reward_config=words)
assert out["accuracy"] == 1.0, out
mod.compute_score("s", '{{"actions": ["W"], "step_nums": [1]}}', "", {{"metricfunc": "agenticnaveval",
    "metric_extra": {{"optimal_rel_pose": [[0,0,0,0,0,0,1],[0,0,0.1,0,0,0,1]], "0->1": {{}}}}, "level": "L4"}},
    reward_config=words)
new = {{m.split(".")[0] for m in sys.modules}} - before - set(sys.stdlib_module_names)
print(json.dumps(sorted(new)))
"""
    out = subprocess.run([sys.executable, "-I", "-c", code], cwd="/", capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    new_modules = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert new_modules <= {"rewards", "custom_module"}, new_modules
    assert not new_modules & {"torch", "transformers", "trl", "train", "data_mix", "eval_hooks", "cv2", "PIL"}


_BLOCK = """
import sys
class _Blocked:  # a sys.meta_path finder that makes one package (and its submodules) unimportable
    def find_spec(self, name, path=None, target=None):
        if name == {mod!r} or name.startswith({mod!r} + "."):
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)", name=name)
        return None
sys.meta_path.insert(0, _Blocked())
"""


def _run_blocked(module: str, body: str) -> subprocess.CompletedProcess:
    code = _BLOCK.format(mod=module) + body
    return subprocess.run([sys.executable, "-I", "-c", code], cwd="/", capture_output=True, text=True, timeout=120)


_LOAD_LIKE_VERL = f"""
import importlib.util
spec = importlib.util.spec_from_file_location("custom_module", {str(REPO / "rewards" / "verl_reward.py")!r})
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
print("LOADED")
"""


@pytest.mark.parametrize(("blocked", "metrics", "package"), [
    ("scipy", ["'agenticnaveval', 'manipulateeval'"], "'scipy'"),  # not installed: found at `import rewards`
    ("scipy.spatial", ["'agenticnaveval', 'manipulateeval'"], "'scipy'"),  # installed but broken: verl's load
    ("PIL", ["'affmask'"], "'pillow'"),
])
def test_a_missing_metric_dependency_fails_loading_the_verl_reward(blocked, metrics, package):
    """verl's reward loader gets an ImportError that names the metrics and the package, not a reward of 0."""
    out = _run_blocked(blocked, _LOAD_LIKE_VERL)
    assert out.returncode != 0 and "LOADED" not in out.stdout
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("rewards.metrics.deps.MissingMetricDependency: metricfunc "), last
    for name in metrics:
        assert name in last
    assert f"Python package {package}" in last and f"pip install {package.strip(chr(39))}" in last


def test_a_broken_metric_dependency_raises_on_first_use_instead_of_scoring_zero():
    """scipy installed but scipy.spatial not importable: `import rewards` works (lookup only), the L4 metric
    raises ImportError when asked, through rewards.score and through the TRL reward functions alike."""
    body = """
import rewards
from rewards.metrics.deps import MissingMetricDependency
extra = {"optimal_rel_pose": [[0, 0, 0, 0, 0, 0, 1], [0, 0, 0.25, 0, 0, 0, 1]], "0->1": {"translation_step_size": 0.0625}}
answer = '{"actions": ["W"], "step_nums": [4]}'
print("MCQ", rewards.score("multichoiceeval", "B", "B", {"option": ["A. x", "B. y"]})["score"])
for call in (lambda: rewards.score("agenticnaveval", answer, "", extra),
             lambda: rewards.make_reward_funcs(rewards.RewardConfig(length_unit="words"))[0](
                 completions=[answer], metricfunc=["agenticnaveval"], answer=[""], metric_extra=[extra])):
    try:
        print("SCORED", call())
    except MissingMetricDependency as exc:
        assert isinstance(exc, ImportError)
        print("RAISED", exc)
"""
    out = _run_blocked("scipy.spatial", body)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert lines[0] == "MCQ 1.0"  # the metrics that need nothing extra still work
    assert [line.split()[0] for line in lines[1:]] == ["RAISED", "RAISED"], out.stdout
    assert "'agenticnaveval', 'manipulateeval'" in lines[1] and "cannot be imported" in lines[1]


def test_the_same_answer_scores_without_blocking():
    """The control for the two tests above: the navigation answer they use is worth 1.0 here."""
    from rewards import score

    extra = {"optimal_rel_pose": [[0, 0, 0, 0, 0, 0, 1], [0, 0, 0.25, 0, 0, 0, 1]],
             "0->1": {"translation_step_size": 0.0625}}
    assert score("agenticnaveval", '{"actions": ["W"], "step_nums": [4]}', "", extra)["score"] == pytest.approx(1.0)
