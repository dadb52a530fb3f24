"""Decontamination: a scan of 1M training rows against 10k bench records, on one core.

Ours: the text test of ``data_mix.decontam.scan`` as it runs (content words of each row's user text, then the
bench's question index over batches of ``SCAN_BATCH`` rows: ``data_mix.question_index``); a row's images are
decoded only when its text contains a bench question, so the pHash rate of the images that are decoded is measured
apart (``extra``). Known answer: on the first ``CHECKED`` rows, the index gives exactly the questions that comparing
the row with every bench question gives (``near_dup.containment``).
Baseline: an exact-text test (each normalised line of the row looked up in a set of the bench's normalised
questions), the cheapest test that still reads every row: the floor of any text test. Rows are generated in memory from question templates (a share of them holding a bench question, reworded):
reading the rows from disk costs the same on both sides and is left out.
"""

from __future__ import annotations

import random
import time

from bench.harness import Context, Figure, compare_many, known_answer, pair_figure

METHOD = 2
"""2 since issue 25: the index's batched numpy path (data_mix.question_index), the one scan() runs."""
CHECKED = 300
"""Rows whose matches are checked against the all-pairs comparison (~10k containment tests per row)."""

COLOURS = ["red", "blue", "green", "yellow", "white", "black", "brown", "grey", "orange", "purple"]
NOUNS = ["box", "sphere", "cone", "cylinder", "chair", "table", "lamp", "sofa", "mug", "plant", "window", "door",
         "bed", "shelf", "monitor", "keyboard", "bottle", "cup", "book", "clock", "pillow", "rug", "vase", "fridge",
         "sink", "stove", "oven", "toilet", "mirror", "desk", "bench", "cabinet", "drawer", "printer", "laptop",
         "phone", "picture", "curtain", "towel", "basket", "bin", "fan", "heater", "radiator", "speaker", "guitar",
         "piano", "bicycle", "stroller", "suitcase"]
OBJECTS = [f"{c} {n}" for c in COLOURS for n in NOUNS]
"""500 object names: a scene vocabulary of a realistic size (a word of a question is then shared by a few dozen
bench questions, not by thousands)."""
TEMPLATES = ["Which object is closer to the camera, the {a} or the {b}?",
             "How far is the {a} from the {b} in meters?",
             "Is the {a} to the left or to the right of the {b}?",
             "What is the height of the {a} in centimeters?",
             "How many {a}s are in the room?",
             "If you walk from the {a} to the {b}, which way do you turn?",
             "Describe the scene around the {a} and the {b}."]


def questions(n: int, rng: random.Random) -> list[str]:
    out = []
    for _ in range(n):
        a, b = rng.sample(OBJECTS, 2)
        out.append(rng.choice(TEMPLATES).format(a=a, b=b))
    return out


def rows(n: int, bench: list[str], rng: random.Random, leak: float = 0.001) -> list[str]:
    """Training user texts: template questions with options; a share ``leak`` of them a reworded bench question."""
    out = []
    for _ in range(n):
        if rng.random() < leak:
            q = "Look at the picture and say: " + rng.choice(bench).lower()
        else:
            a, b = rng.sample(OBJECTS, 2)
            q = rng.choice(TEMPLATES).format(a=a, b=b)
        out.append("<image>\n" + q + "\nA. yes\nB. no\nAnswer with the option's letter.")
    return out


def run(ctx: Context) -> list[Figure]:
    import numpy as np

    from data_mix.decontam import SCAN_BATCH
    from data_mix.near_dup import CONTAINMENT, containment, content_words, normalize, phash
    from data_mix.question_index import QuestionIndex

    rng = random.Random(0)
    n_rows, n_bench = ctx.pick(100_000, 1_000_000), ctx.pick(2_000, 10_000)
    bench = questions(n_bench, rng)
    train = rows(n_rows, bench, rng)
    t0 = time.process_time()
    words = [content_words(q) for q in bench]
    index = QuestionIndex(words, CONTAINMENT)
    exact = {normalize(q) for q in bench}
    build_s = time.process_time() - t0

    def ours() -> dict:
        start, found = time.process_time(), 0
        for lo in range(0, len(train), SCAN_BATCH):
            found += int(np.count_nonzero(index.match_texts(train[lo:lo + SCAN_BATCH]).counts()))
        return {"seconds": time.process_time() - start, "rows_with_question": found}

    def baseline() -> dict:
        start, found = time.process_time(), 0
        for text in train:
            found += any(normalize(line) in exact for line in text.splitlines())
        return {"seconds": time.process_time() - start, "rows_with_question": found}

    sample = train[:CHECKED]
    got = index.match_texts(sample)
    row_words = [content_words(t) for t in sample]
    want = [[i for i, q in enumerate(words) if q and containment(q, w) >= CONTAINMENT] for w in row_words]
    same = sum(got[k] == want[k] for k in range(len(sample)))
    check = known_answer("same_matches_as_all_pairs", f"rows of the first {len(sample)} whose bench questions "
                         "found by the index equal those of comparing the row with every bench question",
                         same, len(sample))
    a, b = compare_many(ours, baseline, max(1, ctx.repeats // 2), 0, ctx.log)
    from PIL import Image

    img = Image.new("RGB", (448, 448), (120, 80, 40))
    start, k = time.process_time(), 0
    while time.process_time() - start < 0.5:
        phash(img)
        k += 1
    phash_rate = k / (time.process_time() - start)
    fig = pair_figure(
        "scan_1m_rows" if not ctx.quick else "scan_rows", f"CPU seconds to test {n_rows:,} training rows against "
        f"{n_bench:,} bench questions (one core; rows in memory).", "s", a["seconds"], b["seconds"],
        "an exact-text test (each normalised line of the row looked up in a set of the bench questions)",
        better="lower", target="ours <= 120 s for 1M rows" if not ctx.quick else None,
        check=(lambda o, _b, _r: o["median"] <= 120) if not ctx.quick else None,
        notes="Rows whose text holds a bench question also have their images decoded and pHashed (rate in extra).",
        checks=[check],
        extra={"rows": n_rows, "bench_questions": n_bench, "index_build_s": round(build_s, 3),
               "rows_with_a_bench_question_ours": a["rows_with_question"][0],
               "rows_with_a_bench_question_exact": b["rows_with_question"][0],
               "matches_per_row_checked": round(sum(map(len, want)) / len(want), 1),
               "phash_per_s_448px": round(phash_rate, 1)})
    ctx.log(f"decontam: ours {fig.ours['median']:.1f} s, exact text {fig.baseline['median']:.1f} s for {n_rows} rows")
    return [fig]
