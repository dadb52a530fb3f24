"""score_record on raw benchmark records, and gpteval through an OpenAI-compatible judge (local stub server)."""

from __future__ import annotations

import json

import fixtures_rewards as fx
import pytest
from fixtures_judge import StubJudge

from rewards import JudgeConfig, RewardConfig, make_reward_funcs, reward_columns, score, score_record
from rewards.metrics.llm_judge import JudgeClient, parse_judge_score


def _record(metricfunc, answer, hint="", question_type="mcq", option=None, leaf="Distance"):
    return {"question": "q", "option": option or [], "answer": answer, "question_type": question_type, "hint": hint,
            "extra_info": json.dumps({"metricfunc": metricfunc, "spatree0": "L1", "spatree1": "Geometry",
                                      "spatree2": leaf}), "session_id": "s1"}


def test_score_record_follows_process_results():
    mcq = _record("multichoiceeval", "B", option=["A. near", "B. far"])
    assert score_record(mcq, "answer: B")["score"] == 1.0
    assert score_record(mcq, "answer: B")["tags"]["spatree2"] == "Distance"
    open_mcq = _record("multichoiceeval", "2.0", question_type="open", option=["A. 1", "B. 2"])
    out = score_record(open_mcq, "2.24 meters")  # 12% off: within 1 - theta for theta <= 0.85 (8 of 10)
    assert out["metricfunc"] == "meanrelativeacc" and out["score"] == pytest.approx(0.8)
    grav = _record("gravityeval", json.dumps({"roll": 0, "pitch": 0, "vfov": 60}),
                   hint=json.dumps({"roll_unc": 1, "pitch_unc": 1, "vfov_unc": 1}))
    assert score_record(grav, '{"roll": 0, "pitch": 0, "vfov": 60}')["score"] == 1.0
    unknown = score_record(_record("somethingelse", "A"), "A")
    assert unknown["score"] == 0.0 and "unknown metricfunc" in unknown["details"]["error"]
    with pytest.raises(ValueError, match="record s1: hint is not JSON"):
        score_record(_record("judge", "yes", hint="{roll"), "yes")


def test_score_record_matches_reference_process_results():
    """The reference's own process_results glue (utils.py) cannot be imported without its dependencies;
    replay its steps with the reference metric functions on records of several kinds."""
    path = fx.reference_dir()
    if path is None:
        pytest.fail("lmms-eval is not installed (scripts/bootstrap.sh installs it)")
    ref = fx.Reference(path)
    try:
        records = [
            (_record("multichoiceeval", "C", option=["A. x", "B. y", "C. z"]), "I pick (C)"),
            (_record("multichoiceeval", "3", question_type="open"), "3.2"),
            (_record("judge", "Yes"), "yes, it is"),
            (_record("gravityeval", json.dumps({"roll": 1, "pitch": 2, "vfov": 50}),
                     hint=json.dumps({"roll_unc": 2, "pitch_unc": 2, "vfov_unc": 4})), '{"roll": 2, "pitch": 2, "vfov": 47}'),
        ]
        for record, response in records:
            info = json.loads(record["extra_info"])
            name, extra = info["metricfunc"], json.loads(record["hint"]) if record["hint"] else {}
            if name == "multichoiceeval" and record["question_type"] != "open":
                extra["option"] = record["option"]
            elif name == "multichoiceeval":
                name = "meanrelativeacc"
            expected, status, _ = ref.score(name, response, record["answer"], extra)
            assert status == "ok"
            assert score_record(record, response)["score"] == pytest.approx(expected, abs=1e-9)
    finally:
        ref.close()


def test_reward_columns_from_a_record():
    cols = reward_columns(_record("multichoiceeval", "B", option=["A. near", "B. far"]))
    assert cols["metricfunc"] == "multichoiceeval" and cols["level"] == "L1"
    assert json.loads(cols["metric_extra"]) == {"option": ["A. near", "B. far"]}
    assert score(cols["metricfunc"], "B", cols["answer"], cols["metric_extra"])["score"] == 1.0


@pytest.fixture()
def judge(monkeypatch):
    monkeypatch.setenv("STUB_JUDGE_KEY", "secret-token")
    with StubJudge() as stub:
        yield stub


def test_gpteval_through_openai_compatible_endpoint(judge):
    cfg = JudgeConfig(base_url=judge.url, model="judge-model", api_key_env="STUB_JUDGE_KEY", retries=3)
    client = JudgeClient.from_config(cfg)
    judge.replies = [(503, ""), (200, '```json\n{"answer_score": [[0.75]], "reason": "direction right"}\n```')]
    out = score("gpteval", "The camera pans left, then tilts up.", "Pan left, tilt up.",
                {"prompt": "Describe the camera motion."}, judge=client)
    assert out["score"] == 0.75 and out["details"]["reason"] == "direction right"
    path, auth, body = judge.seen[-1]
    assert path == "/v1/chat/completions" and auth == "Bearer secret-token" and body["model"] == "judge-model"
    assert "Pan left, tilt up." in body["messages"][1]["content"] and len(judge.seen) == 2  # one retry after 503

    judge.replies = [(200, "Score: 7 out of 10")]  # no JSON: first number, clipped to [0, 1]
    assert score("gpteval", "x", "y", {}, judge=client)["score"] == 1.0
    judge.replies = [(400, "bad request")]
    failed = score("gpteval", "x", "y", {}, judge=client)
    assert failed["score"] == 0.0 and "HTTP 400" in failed["details"]["error"]

    judge.replies = [(200, '{"answer_score": 0.5}')]  # the GRPO path builds its client from the recipe section
    acc, _fmt, _len, reasoning = make_reward_funcs(RewardConfig(judge=cfg, length_unit="words"))
    batch = {"prompts": ["q"], "completions": ["<answer>pans left</answer>"], "metricfunc": ["gpteval"],
             "answer": ["pan left"], "metric_extra": [{"prompt": "q"}], "level": ["L3"]}
    calls = len(judge.seen)
    assert acc(**batch) == [0.5]
    assert reasoning(**batch) == [0.0]  # correct enough, but no think block
    assert len(judge.seen) == calls + 1  # the judge is asked once per sample, not once per component


def test_gpteval_without_judge_or_with_unreachable_judge():
    assert score("gpteval", "x", "y", {})["details"]["error"].startswith("gpteval needs a judge")
    client = JudgeClient("http://127.0.0.1:9/v1", "m", timeout_s=2, retries=1)
    out = score("gpteval", "x", "y", {}, judge=client)
    assert out["score"] == 0.0 and "cannot reach" in out["details"]["error"]


def test_parse_judge_score_forms():
    assert parse_judge_score('{"answer_score": [[0.4]], "reason": "r"}') == (0.4, "r")
    assert parse_judge_score('{"answer_score": 1}')[0] == 1.0
    assert parse_judge_score("nothing useful")[0] is None
