"""The prompt text of a SpatialTree-Bench record, as the public benchmark builds it.

The template is chosen by the record's ``metricfunc`` (before the "open" multichoice remap) and
level; reproducing the benchmark's wording keeps our scores comparable with its leaderboard.
"""

from __future__ import annotations

_ANSWER_LETTER = ("Return only the letter of the correct option (e.g., A, B, C, etc.). "
                  "Always return in this format: 'answer: X'")
MCQ = "{question}\nOptions : {options}\nChoose the correct option. " + _ANSWER_LETTER
MCQ_L4 = ("{question} \n Options : {options}\nSelect the option that contains the correct action and the "
          "indication of whether the task has been completed. " + _ANSWER_LETTER + " ")
NUMBER = ("{question} Do not response anything other than a single number! "
          "If you cannot determine the answer, please guess a value.")
ACTIONS = ("{question}\nYou must ensure that the action intensity values represented by `step_nums` are within "
           "the range of 0 to 10, inclusive.\nPlease provide the action output formatted as a JSON object and "
           "enclosed within a ```json``` code block. Please do your best to move and try. This can help you get "
           "more rewards.")
POINT = (
    "You will be given a textual description of a point of interest within an image. Your task is to locate "
    "this point and return its normalized coordinates.\nThe point to identify is: **{question}**\n"
    "**Instructions for Coordinate Output:**\n1.  **Format**: The output must be a single JSON array in the "
    "format `[x, y]`.\n2.  **Coordinate System**: The origin `(0, 0)` is at the top-left corner of the image.\n"
    "3.  **Normalization**:\n- `x` is the horizontal coordinate, normalized by the image's width.\n- `y` is the "
    "vertical coordinate, normalized by the image's height.\n4.  **Value Range**: Both `x` and `y` must be float "
    "values strictly between 0 and 1 (i.e., `0 < x < 1` and `0 < y < 1`).\n5.  **Strict Output**: Do not provide "
    "any text or explanation other than the coordinate array itself.\n**Example:**\n- If the image is 1000px "
    "wide and 800px high, and the point is at pixel (500, 200), the output should be `[0.5, 0.25]`.\nNow, based "
    "on the image provided and the target description above, output the coordinates.")


def bench_prompt(question: str, options: list[str], metricfunc: str | None, level: str | None) -> str:
    """The user text for a record (question, options and answer-format instructions)."""
    if metricfunc == "multichoiceeval" and options:
        template = MCQ_L4 if level == "L4" else MCQ
        return template.format(question=question, options="\n".join(str(o) for o in options).strip())
    if metricfunc in ("manipulateeval", "agenticnaveval"):
        return ACTIONS.format(question=question)
    if metricfunc == "meanrelativeacc":
        return NUMBER.format(question=question)
    if metricfunc == "affmask":
        return POINT.format(question=question)
    if metricfunc == "judge":
        return question
    return f"{question} "  # gravityeval, gpteval, cogmapeval, and MCQ without options
