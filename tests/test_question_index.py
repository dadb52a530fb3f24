"""The decontamination text test's index (data_mix.question_index) gives exactly what comparing every row with every
bench question gives: its prefix filter and signature test only skip work, never a match."""

from __future__ import annotations

import random

import pytest

from data_mix import question_index
from data_mix.near_dup import containment
from data_mix.question_index import QuestionIndex, need_count


def brute_force(questions, texts, threshold):
    return [[i for i, q in enumerate(questions) if q and containment(q, t) >= threshold] for t in texts]


def random_sets(rng, n, vocab, lo, hi, skew=True):
    # skewed word frequencies (template-like words shared by many questions), as in real benches
    weights = [1 / (k + 1) for k in range(len(vocab))] if skew else None
    return [frozenset(rng.choices(vocab, weights=weights, k=rng.randint(lo, hi))) for _ in range(n)]


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.75, 0.9, 1.0])
def test_the_index_finds_exactly_the_questions_a_row_contains(threshold, monkeypatch):
    monkeypatch.setattr(question_index, "BATCH_ROWS", 37)  # several batches, rows split across them
    rng = random.Random(threshold)
    vocab = [f"w{k}" for k in range(300)]
    questions = random_sets(rng, 400, vocab, 0, 12) + random_sets(rng, 20, vocab, 60, 90)  # long: shared bits
    texts = random_sets(rng, 300, vocab + [f"x{k}" for k in range(50)], 0, 40)
    texts += [q | {"x1"} for q in questions[:60]] + [frozenset(list(q)[:len(q) // 2]) for q in questions[:60]]
    index = QuestionIndex(questions, threshold)
    found = index.match(texts)
    expected = brute_force(questions, texts, threshold)
    assert [found[i] for i in range(len(texts))] == expected
    assert sum(map(bool, expected)) > 40 and sum(map(bool, expected)) < len(texts)  # both kinds of rows present
    assert index.candidates(texts[-61]) == expected[-61]


def test_bits_shared_by_two_words_never_hide_a_match():
    """Questions of 100 words put several words on one of the 128 signature bits; a row holding exactly the words
    it needs must still be found."""
    rng = random.Random(1)
    vocab = [f"w{k}" for k in range(1000)]
    questions = [frozenset(rng.sample(vocab, 100)) for _ in range(30)]
    index = QuestionIndex(questions, 0.75)
    texts = [frozenset(rng.sample(sorted(q), need_count(len(q), 0.75))) for q in questions]
    texts += [frozenset(rng.sample(sorted(q), need_count(len(q), 0.75) - 1)) for q in questions]
    found = index.match(texts)
    assert [found[i] for i in range(len(texts))] == brute_force(questions, texts, 0.75)
    assert all(i in found[i] for i in range(30)) and all(i not in found[30 + i] for i in range(30))


def test_need_count_is_the_containment_threshold():
    for n in range(1, 30):
        for threshold in (0.1, 0.5, 2 / 3, 0.75, 1.0):
            c = need_count(n, threshold)
            assert c / n >= threshold and (c == 0 or (c - 1) / n < threshold)
    assert need_count(0, 0.75) == 1 and need_count(4, 1.01) == 5


def test_empty_questions_and_rows_without_bench_words_match_nothing():
    index = QuestionIndex([frozenset(), frozenset({"red", "box"})], 0.75)
    found = index.match([frozenset(), frozenset({"blue"}), frozenset({"red", "box", "cup"})])
    assert [found[i] for i in range(3)] == [[], [], [1]]
    assert QuestionIndex([], 0.75).match([frozenset({"a"})])[0] == []
