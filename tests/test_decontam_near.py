"""Near-duplicate decontamination on a planted set: recall per kind of copy and false positives on look-alikes.

The planted set is made from the engine's stand-in bench (flat-shaded renders of a few object kinds, template
questions: the hard case, since many records look alike and share their question): for each of the first
records with one image, copies of it as a training row re-encoded, resized, cropped, with its question
paraphrased; and look-alikes that must not match (another question on the same image; the record's question and
options on one of the engine's training renders, which look much like the bench's). ``python tests/test_decontam_near.py`` prints the table that
docs/DATA.md quotes.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixtures_engine import standin_small  # noqa: E402

RECORDS = 40
SYNONYMS = {"closer": "nearer", "farther": "further", "larger": "bigger", "smaller": "tinier", "object": "item",
            "camera": "viewer", "left": "left-hand", "taller": "higher", "box": "crate", "sphere": "ball",
            "many": "much", "distance": "separation", "far": "distant"}


def paraphrase(question: str, swaps: int) -> str:
    """Reworded: new framing and order of clauses, and ``swaps`` content words replaced by synonyms."""
    words = question.rstrip("?").split()
    done = 0
    for i, w in enumerate(words):
        if done < swaps and w.lower() in SYNONYMS:
            words[i], done = SYNONYMS[w.lower()], done + 1
    return "Look at the scene and tell me: " + " ".join(words).lower() + "? Reply with the option's letter."


def jpeg(img: Image.Image, quality: int = 75) -> Image.Image:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue()))


def crop(img: Image.Image, keep: float) -> Image.Image:
    w, h = img.size
    dx, dy = int(w * (1 - keep) / 2), int(h * (1 - keep) / 2)
    return img.crop((dx, dy, w - dx, h - dy))


COPIES = {  # kind -> (image transform, question transform); all must be found
    "exact copy": (lambda i: i, lambda q: q),
    "JPEG q75": (jpeg, lambda q: q),
    "JPEG q50": (lambda i: jpeg(i, 50), lambda q: q),
    "resize -1 px": (lambda i: i.resize((i.width - 1, i.height - 1)), lambda q: q),
    "resize x0.9": (lambda i: i.resize((int(i.width * 0.9), int(i.height * 0.9))), lambda q: q),
    "resize x1.25": (lambda i: i.resize((int(i.width * 1.25), int(i.height * 1.25))), lambda q: q),
    "crop 95%": (lambda i: crop(i, 0.95), lambda q: q),
    "crop 90%": (lambda i: crop(i, 0.90), lambda q: q),
    "paraphrase (reworded)": (lambda i: i, lambda q: paraphrase(q, 0)),
    "paraphrase (1 synonym)": (lambda i: i, lambda q: paraphrase(q, 1)),
    "paraphrase (2 synonyms)": (lambda i: i, lambda q: paraphrase(q, 2)),
    "paraphrase + JPEG q75": (jpeg, lambda q: paraphrase(q, 0)),
}


def measure(root: Path, bench_dir: Path, train_dir: Path) -> dict[str, tuple[int, int]]:
    """kind -> (rows flagged, rows) over the planted set (copies and look-alikes)."""
    from data_mix.config import DataConfig
    from data_mix.decontam import BenchIndex, MediaHasher, _matches, resolve_bench
    from data_mix.near_dup import ImageHasher
    from data_mix.readers import read_source

    data = DataConfig(root=str(root))
    spec = resolve_bench(str(bench_dir / "test.jsonl"), data)
    bench = [s for s in read_source(spec, data) if len(s.images) == 1 and not s.videos]
    images, videos = ImageHasher(), MediaHasher()
    index = BenchIndex.build([spec], data, images)
    out: dict[str, list[int]] = {}
    count = [0]

    def row(kind: str, image: Image.Image | Path, question: str, options=()) -> None:
        from data_mix.sample import Sample

        count[0] += 1
        path = root / "planted" / f"{count[0]}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        (Image.open(image) if isinstance(image, Path) else image).convert("RGB").save(path)
        text = question + "".join(f"\n{o}" for o in options)
        sample = Sample(id=kind, messages=[{"role": "user", "content": [{"type": "image"}, {"type": "text",
                                                                                          "text": text}]}],
                        images=[str(path)], source="planted", file="planted.jsonl", row=0)
        hit = bool(_matches(sample, index, images, videos)[1])
        flagged, total = out.get(kind, [0, 0])
        out[kind] = [flagged + hit, total + 1]

    chosen = bench[:RECORDS]
    for rec in chosen:
        img, question = Image.open(rec.images[0]), rec.meta["question"]
        options = (rec.metric_extra or {}).get("option") or ()
        for kind, (tf_image, tf_question) in COPIES.items():
            row(kind, tf_image(img), tf_question(question), options)
        other_q = next(b.meta["question"] for b in bench if b.meta["question"] != question)
        row("look-alike: same image, other question", img, other_q)
    train = sorted((train_dir / "images").rglob("*.png"))[:RECORDS]
    for k, path in enumerate(train):
        rec = chosen[k % len(chosen)]
        row("look-alike: a bench question and its options on an engine training render (not a bench image)", path,
            rec.meta["question"], (rec.metric_extra or {}).get("option") or ())
    return {k: (v[0], v[1]) for k, v in out.items()}


def table(result: dict[str, tuple[int, int]]) -> str:
    lines = ["| planted row | kind | flagged / rows | rate |", "|---|---|---:|---:|"]
    for kind, (flagged, total) in result.items():
        what = "false positive" if kind.startswith("look-alike") else "copy (recall)"
        lines.append(f"| {kind} | {what} | {flagged} / {total} | {flagged / total:.0%} |")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    standin = standin_small(tmp_path_factory).root
    result = measure(tmp_path_factory.mktemp("near"), standin / "spatialtree_bench", standin / "spatial")
    print("\n" + table(result))
    return result


def test_copies_that_survive_the_hashes_are_found(planted):
    rate = {k: f / n for k, (f, n) in planted.items()}
    for kind in ("exact copy", "JPEG q75", "JPEG q50", "resize -1 px", "resize x1.25", "paraphrase (reworded)",
                 "paraphrase + JPEG q75"):
        assert rate[kind] >= 0.95, (kind, planted[kind])
    assert rate["resize x0.9"] >= 0.8, planted["resize x0.9"]


def test_look_alikes_are_not_flagged(planted):
    for kind, (flagged, total) in planted.items():
        if kind.startswith("look-alike"):
            assert total >= RECORDS // 2 and flagged / total <= 0.03, (kind, flagged, total)


def test_the_documented_misses_are_real(planted):
    """docs/DATA.md says a crop of 10% is missed about half the time and synonyms lower the recall: keep it true."""
    assert planted["crop 90%"][0] / planted["crop 90%"][1] <= 0.6
    assert planted["paraphrase (2 synonyms)"][0] < planted["paraphrase (reworded)"][0]


if __name__ == "__main__":
    import tempfile

    class _Factory:
        def __init__(self, root):
            self.root = Path(root)

        def mktemp(self, name):
            path = self.root / name
            path.mkdir(parents=True, exist_ok=True)
            return path

    with tempfile.TemporaryDirectory() as tmp:
        factory = _Factory(tmp)
        standin = standin_small(factory).root
        print(table(measure(factory.mktemp("near"), standin / "spatialtree_bench", standin / "spatial")))
