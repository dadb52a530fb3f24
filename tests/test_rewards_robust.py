"""Any response gives a finite score in [0, 1] and no exception, for every metric (property-based)."""

from __future__ import annotations

import base64
import json
import math
import random
import time

import fixtures_rewards as fx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rewards import METRICS, score

_rng = random.Random(7)
_MASK = base64.b64encode(fx.png_masks()[1][1]).decode()
# (answer, extra_info) per metric: a normal target plus degenerate ones (target 0, NaN, no options, sigma 0).
TARGETS = {
    "multichoiceeval": [("B", {"option": ["A. red cube", "B. blue chair", "C. left"]}), ("A", {"option": []}),
                        ("A", {"option": ["A. only"]})],
    "meanrelativeacc": [("3.5", {}), ("0", {}), ("nan", {}), ("-2", {}), ("1e308", {})],
    "judge": [("yes", {}), ("No", {})],
    "gravityeval": [(json.dumps({"roll": 1.5, "pitch": -2, "vfov": 55}), {"roll_unc": 2, "pitch_unc": 1, "vfov_unc": 3}),
                    (json.dumps({"roll": 0, "pitch": 0, "vfov": 0}), {"roll_unc": 0, "pitch_unc": 1e-200, "vfov_unc": -1})],
    "agenticnaveval": [("", fx.nav_cases(_rng, 1)[0][2])],
    "manipulateeval": [("", fx.manip_cases(_rng, 1)[0][2])],
    "cogmapeval": [("B", fx.cogmap_cases(_rng, 1)[0][2])],
    "affmask": [(_MASK, {}), ("", {}), ("AAAA", {})],
    "gpteval": [("The camera pans left.", {"prompt": "How does the camera move?"})],
}
FRAGMENTS = ["{", "}", "[", "]", '"roll": ', '"actions": ["W", "←"]', '"step_nums": [3, NaN]', "NaN", "Infinity",
             "-Infinity", "1e400", "9" * 400, "```json\n", "\n```", "```", "<think>", "</think>", "<answer>",
             "</answer>", "Answer: B", "(A)", "x=0.5, y=0.25", "[0.1, 0.9]", "yes", "no", "\ufffd", "\x00", "\u202e",
             " ", "\n", ",", ":", "//", "'", "step 1", '{"chair": {"position": [1, 2], "facing": "up"}}', "A.", "-0"]

response_text = st.one_of(
    st.text(max_size=300),
    st.lists(st.sampled_from(FRAGMENTS), max_size=25).map("".join),
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=8)), max_size=15).map("".join),
    st.binary(max_size=200).map(lambda b: b.decode("utf-8", "replace")),
    st.recursive(st.one_of(st.none(), st.booleans(), st.floats(), st.integers(), st.text(max_size=5)),
                 lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
                 max_leaves=12).map(lambda v: json.dumps(v, allow_nan=True)),
)


def _judge(messages):  # a local stand-in that replies with whatever the response contains
    return messages[-1]["content"][-40:]


def _check(metric, response, answer, extra):
    result = score(metric, response, answer, extra, judge=_judge if metric == "gpteval" else None)
    assert isinstance(result["score"], float)
    assert math.isfinite(result["score"]) and 0.0 <= result["score"] <= 1.0, (metric, response, result)
    assert isinstance(result["details"], dict)


@pytest.mark.parametrize("metric", sorted(METRICS))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(response=response_text, which=st.integers(min_value=0, max_value=10))
def test_any_response_scores_in_unit_interval(metric, response, which):
    answer, extra = TARGETS[metric][which % len(TARGETS[metric])]
    _check(metric, response, answer, extra)


M = 1_000_000
ADVERSARIAL = {
    "empty": "", "whitespace": " \n\t\u00a0" * 10, "megabyte_words": "the answer is maybe " * (M // 20),
    "megabyte_digits": "9" * M, "megabyte_open_braces": "{" * M, "unclosed_fences": "```json\n" * (M // 8),
    "number_list": "1," * (M // 2), "deep_json": "[" * 100_000 + "]" * 100_000, "replacement": "\ufffd" * M,
    "truncated_json": '{"actions": ["W", "A"], "step_nums": [3', "nan_json": '{"roll": NaN, "pitch": Infinity, "vfov": -Infinity}',
    "huge_numbers": '{"roll": 1e400, "pitch": ' + "9" * 5000 + ', "vfov": 1e-400, "actions": ["W"], "step_nums": [1e308]}',
    "bare_keys": "{" + ("key " * 1000 + ": 1, ") * 200 + "}",
}


@pytest.mark.parametrize("metric", sorted(METRICS))
def test_adversarial_responses(metric):
    started = time.perf_counter()
    for response in ADVERSARIAL.values():
        targets = TARGETS[metric] if len(response) < 10_000 else TARGETS[metric][:1]  # megabytes: one target
        for answer, extra in targets:
            _check(metric, response, answer, extra)
    _check(metric, b"\xff\xfe invalid \xc3\x28 utf-8 \xe2\x82", *TARGETS[metric][0])  # bytes are decoded, replaced
    _check(metric, None, *TARGETS[metric][0])
    assert time.perf_counter() - started < 20, "adversarial inputs must stay roughly linear"


def test_unknown_metric_is_a_caller_error():
    with pytest.raises(ValueError, match="did you mean 'multichoiceeval'"):
        score("multichoice_eval", "A", "A", {})
    with pytest.raises(ValueError, match="not JSON"):
        score("judge", "yes", "yes", "{not json")


def test_failures_are_explained_in_details():
    bad = score("gravityeval", "no json here", json.dumps({"roll": 1, "pitch": 1, "vfov": 1}),
                {"roll_unc": 1, "pitch_unc": 1, "vfov_unc": 1})
    assert bad["score"] == 0.0 and "error" in bad["details"]
    crash = score("gravityeval", '{"roll": "1", "pitch": 1, "vfov": 1}', json.dumps({"roll": 1, "pitch": 1, "vfov": 1}),
                  {"roll_unc": 1, "pitch_unc": 1, "vfov_unc": 1})
    assert crash["score"] == 0.0 and crash["details"]["error"].startswith("TypeError")
