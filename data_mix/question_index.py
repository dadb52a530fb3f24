"""Bench questions indexed for the decontamination text test: which bench questions does a training row contain?

A row contains a question when at least ``need`` of the question's ``n`` content words occur in the row, where
``need`` is the smallest count whose share ``need / n`` reaches the threshold (the float comparison of
:func:`data_mix.near_dup.containment`). The answer is exact. Rows are taken in batches and three steps run in
numpy (until issue 25 a Python loop compared ~1,000 candidate questions per row one by one: 358 s for 1M rows
against 10k questions):

1. Prefix filtering (no recall lost): a row holding ``need`` of a question's words holds at least one of its
   ``n - need + 1`` rarest words (rarest across the bench), so only the questions posted under a word of the row
   are candidates.
2. A 128-bit signature per question and per row (one bit per word, by a seeded hash of the word's id) rejects
   most candidates: a row holding ``need`` of a question's words has at least ``t`` of the question's bits, ``t``
   being the fewest distinct bits that any ``need`` of its words have (two words on one bit count once), so the
   test never rejects a true match.
3. The survivors' words are counted exactly against a bitmap of the batch's row words.

A question without content words is never a candidate (it has no word to be found by).
"""

from __future__ import annotations

import numpy as np

from data_mix.near_dup import CONTAINMENT, content_words

SIGNATURE_BITS = 128
"""Bits of a signature, two 64-bit words (a row of ~10 bench words sets ~8% of them; project choice)."""
BATCH_ROWS = 2048
"""Rows per numpy batch (~1,000 candidates per row on the benchmark's workload: ~16 MB per candidate array)."""
BITMAP_BYTES = 1 << 25
"""Largest bitmap of a batch's row words (rows x bench words); a large vocabulary makes batches smaller."""


def need_count(n: int, threshold: float) -> int:
    """Fewest of a question's ``n`` words whose share reaches ``threshold`` (``n + 1`` when none does)."""
    for c in range(n + 1):
        if n and c / n >= threshold:
            return c
    return n + 1


def _csr(lists: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    ptr = np.zeros(len(lists) + 1, dtype=np.int64)
    np.cumsum([len(x) for x in lists], out=ptr[1:])
    return ptr, np.fromiter((v for x in lists for v in x), dtype=np.int64, count=int(ptr[-1]))


def _expand(ptr: np.ndarray, flat: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every element of the lists ``flat[ptr[k]:ptr[k + 1]]`` of ``keys``, and for each the index of its key."""
    starts, lens = np.take(ptr, keys), np.take(ptr, keys + 1)
    lens -= starts
    total = int(lens.sum())
    offsets = np.cumsum(lens)
    offsets -= lens
    pos = np.arange(total, dtype=np.int64)
    pos += np.repeat(starts - offsets, lens)
    return np.repeat(np.arange(len(keys), dtype=np.int64), lens), np.take(flat, pos)


class Matches:
    """The questions each row of a batch contains: row ``i``'s are ``questions[ptr[i]:ptr[i + 1]]`` (sorted)."""

    def __init__(self, n_rows: int, rows: np.ndarray, questions: np.ndarray):
        self.ptr = np.searchsorted(rows, np.arange(n_rows + 1))
        self.questions = questions

    def __len__(self) -> int:
        return len(self.ptr) - 1

    def __getitem__(self, i: int) -> list[int]:
        return self.questions[self.ptr[i]:self.ptr[i + 1]].tolist()

    def counts(self) -> np.ndarray:
        return np.diff(self.ptr)


class QuestionIndex:
    """Bench questions (their content words); :meth:`match` gives the questions each of a batch of rows contains.

    ``questions[i]`` is question i's content words (near_dup.content_words); ``threshold`` the share of them a row
    must hold (near_dup.CONTAINMENT)."""

    def __init__(self, questions: list[frozenset[str]], threshold: float = CONTAINMENT):
        self.questions = questions
        self.threshold = threshold
        df: dict[str, int] = {}
        for words in questions:
            for w in words:
                df[w] = df.get(w, 0) + 1
        self.vocab = {w: i for i, w in enumerate(sorted(df, key=lambda w: (df[w], w)))}
        """Word -> id; ids in rarity order, rarest first."""
        n_words = len(self.vocab)
        ids = [sorted(self.vocab[w] for w in q) for q in questions]
        self.need = np.array([need_count(len(q), threshold) for q in ids], dtype=np.int64)
        self.q_ptr, self.q_words = _csr(ids)
        postings: list[list[int]] = [[] for _ in range(n_words)]
        for i, q in enumerate(ids):
            for w in q[:max(0, len(q) - int(self.need[i]) + 1)]:
                postings[w].append(i)
        self.p_ptr, self.p_questions = _csr(postings)
        self.word_bit = np.random.default_rng(0).integers(0, SIGNATURE_BITS, max(1, n_words))
        q_bits = np.take(self.word_bit, self.q_words)
        owner = np.repeat(np.arange(len(ids)), np.diff(self.q_ptr))
        bits_needed = np.zeros(len(ids), dtype=np.uint8)
        for i, q in enumerate(ids):  # fewest distinct bits of any `need` words: fill the fullest bits first
            per_bit = np.sort(np.bincount(self.word_bit[q], minlength=1))[::-1].cumsum()
            bits_needed[i] = min(int(np.searchsorted(per_bit, self.need[i])) + 1, 255) if q else 0
        # what step 2 reads of a candidate, stored in posting order: a row's candidates are contiguous runs
        self.p_sig = [np.take(sig, self.p_questions) for sig in self._signatures(owner, q_bits, len(ids))]
        self.p_bits_needed = np.take(bits_needed, self.p_questions)

    @staticmethod
    def _signatures(owner: np.ndarray, bits: np.ndarray, n: int) -> list[np.ndarray]:
        """Per owner, the OR of its bits: one uint64 array per 64 bits."""
        out = []
        for k in range(SIGNATURE_BITS // 64):
            sig = np.zeros(n, dtype=np.uint64)
            mine = (bits >> 6) == k
            np.bitwise_or.at(sig, owner[mine], np.left_shift(np.uint64(1), (bits[mine] & 63).astype(np.uint64)))
            out.append(sig)
        return out

    def word_ids(self, words) -> list[int]:
        """Ids of the bench words among ``words`` (a word no bench question has cannot matter)."""
        vocab = self.vocab
        return [vocab[w] for w in words if w in vocab]

    def candidates(self, text: frozenset[str]) -> list[int]:
        """Bench questions (indices) whose content words ``text`` contains at the index's threshold or more."""
        return self.match([text])[0]

    def match_texts(self, texts: list[str]) -> Matches:
        """:meth:`match` of the content words of each text."""
        return self.match([content_words(t) for t in texts])

    def match(self, texts: list[frozenset[str]]) -> Matches:
        """The questions that each of ``texts`` (content words) contains, in batches of :data:`BATCH_ROWS`."""
        step = max(1, min(BATCH_ROWS, BITMAP_BYTES // max(1, len(self.vocab))))
        rows, questions = [], []
        for lo in range(0, len(texts), step):
            r, q = self.match_ids([self.word_ids(t) for t in texts[lo:lo + step]])
            rows.append(r + lo)
            questions.append(q)
        if not rows:
            return Matches(0, np.empty(0, np.int64), np.empty(0, np.int64))
        return Matches(len(texts), np.concatenate(rows), np.concatenate(questions))

    def match_ids(self, rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        """(row, question) pairs where ``rows[r]`` (word ids, each once) contains the question; by row, question."""
        lens = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
        words = np.fromiter((w for r in rows for w in r), dtype=np.int64, count=int(lens.sum()))
        owner = np.repeat(np.arange(len(rows), dtype=np.int64), lens)
        if not len(words):
            return np.empty(0, np.int64), np.empty(0, np.int64)
        r_sig = self._signatures(owner, np.take(self.word_bit, words), len(rows))
        # 1. candidates: the postings of each (row, word), as positions in the posting arrays
        starts, lens = np.take(self.p_ptr, words), np.take(self.p_ptr, words + 1)
        lens -= starts
        ends = np.cumsum(lens)
        pos = np.arange(int(ends[-1]), dtype=np.int64)
        pos += np.repeat(starts - (ends - lens), lens)
        # 2. the signature test (never rejects a true match)
        shared = np.zeros(len(pos), dtype=np.uint8)
        for p_sig, sig in zip(self.p_sig, r_sig):
            both = np.repeat(np.take(sig, owner), lens)
            both &= np.take(p_sig, pos)
            shared += np.bitwise_count(both)
        keep = np.flatnonzero(shared >= np.take(self.p_bits_needed, pos))
        cand_r = np.take(owner, np.searchsorted(ends, keep, side="right"))
        cand_q = np.take(self.p_questions, np.take(pos, keep))
        # 3. exact count of the survivors' words among the row's words
        n_words = len(self.vocab)
        present = np.zeros(len(rows) * n_words, dtype=np.uint8)
        present[owner * n_words + words] = 1
        pair, qword = _expand(self.q_ptr, self.q_words, cand_q)
        qword += np.take(cand_r, pair) * n_words
        count = np.bincount(pair, weights=np.take(present, qword), minlength=len(cand_q))
        ok = count >= np.take(self.need, cand_q)
        # one answer per (row, question), sorted (a row may hold two of a question's prefix words)
        key = np.sort(cand_r[ok] * len(self.questions) + cand_q[ok])
        key = key[np.r_[True, key[1:] != key[:-1]]] if len(key) else key
        return np.divmod(key, len(self.questions))
