"""Shared by the rewards tests: the reference scorer loaded by file path, and generators of varied cases.

The reference is lmms-eval 0.7.3's ``tasks/spatialtreebench/metrics/rule_metrics.py`` (installed with
``--no-deps`` by scripts/bootstrap.sh). Its package ``__init__`` needs many dependencies, so the file is
loaded by path; ``cogmapeval`` imports the ``mindcube_cogmap`` sub-package by its absolute name, so that
package is loaded by path too under that name, with empty parent packages that are removed afterwards.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import io
import json
import math
import random
import sys
import types
from pathlib import Path

import numpy as np

_PKG = "lmms_eval.tasks.spatialtreebench.metrics"


def reference_dir() -> Path | None:
    """The installed reference's metrics folder, found through the distribution's files (not an import:
    sys.modules may hold the empty parent packages of a Reference that is still open)."""
    from importlib import metadata

    try:
        dist = metadata.distribution("lmms-eval")
    except metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file("lmms_eval/tasks/spatialtreebench/metrics")))
    return path if (path / "rule_metrics.py").exists() else None


def _load(name: str, path: Path, package_dirs: list[str] | None = None) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path, submodule_search_locations=package_dirs)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class Reference:
    """rule_metrics loaded by path; ``score`` mimics process_results (an exception or a non-dict result
    scores 0) and reports what happened: ok, error (the reference raised), random (an MCQ guess)."""

    def __init__(self, metrics_dir: Path):
        self.added: list[str] = []
        for name in ("lmms_eval", "lmms_eval.tasks", "lmms_eval.tasks.spatialtreebench", _PKG):
            if name not in sys.modules:  # empty parents: lmms_eval's real __init__ needs many packages
                stub = types.ModuleType(name)
                stub.__path__ = []
                sys.modules[name] = stub
                self.added.append(name)
        mc = metrics_dir / "mindcube_cogmap"
        for sub in ("src", "src/evaluation", "src/evaluation/cogmap"):  # parents without their __init__
            name = f"{_PKG}.mindcube_cogmap." + sub.replace("/", ".")
            stub = types.ModuleType(name)
            stub.__path__ = [str(mc / sub)]
            sys.modules[name] = stub
            self.added.append(name)
        self.mindcube = _load(f"{_PKG}.mindcube_cogmap", mc / "__init__.py", [str(mc)])
        self.added += [m for m in sys.modules if m.startswith(f"{_PKG}.mindcube_cogmap") and m not in self.added]
        self.rules = _load("_spatialtree_reference_rule_metrics", metrics_dir / "rule_metrics.py")
        self.added.append("_spatialtree_reference_rule_metrics")
        self._random_calls = 0
        reference = self

        class _NoRandom:  # the reference's `random` module, replaced to see when it would guess
            @staticmethod
            def choice(seq):
                if len(seq) > 1:  # a pick among one option is no guess
                    reference._random_calls += 1
                return random.choice(seq)

        self.rules.random = _NoRandom
        self.registry = {
            "gravityeval": self.rules.gravityeval, "multichoiceeval": self.rules.multichoiceeval,
            "meanrelativeacc": self.rules.meanrelativeacc, "cogmapeval": self.rules.cogmapeval,
            "judge": self.rules.judgemodel, "affmask": self.rules.aff_mask_metric,
            "manipulateeval": self.rules.manipulateeval, "agenticnaveval": self.rules.agenticnaveval,
        }

    def score(self, metric: str, response: str, answer, extra: dict) -> tuple[float, str, object]:
        before = self._random_calls
        try:
            with contextlib.redirect_stdout(io.StringIO()), np.errstate(all="ignore"):
                result = self.registry[metric](response=response, answer=answer, extra_info=extra)
        except Exception as exc:  # process_results scores this 0
            return 0.0, "error", exc
        if self._random_calls != before:
            return float("nan"), "random", result
        if not isinstance(result, dict):  # aff_mask_metric returns a bare 0.0 on failure: .get fails -> 0
            return 0.0, "error", result
        return float(result.get("score", 0)), "ok", result

    def close(self) -> None:
        for name in self.added:
            sys.modules.pop(name, None)


# ----------------------------------------------------------------------------------------------- generators

_WORDS = ("the", "object", "is", "left", "of", "chair", "answer", "option", "I", "think", "so", "maybe", "correct",
          "not", "because", "red", "cube", "table", "closer", "farther", "step", "then", "first", "Answer:",
          "choice", "is", "right", "yes", "no", "know", "nothing", "Yes", "NO", "image", "camera")
_ODD = ("", " ", "\n", "\t", "\u00a0", "\u3000", "\ufffd", "é", "—", "```", "{", "}", "[", "]", "(", ")", ",", ".",
        ":", "=", "\"", "'", "NaN", "Infinity", "-Infinity", "1e400", "9" * 40, "<think>", "</think>",
        "<answer>", "</answer>", "\\n", "//", "null", "true")


def noise(rng: random.Random, n: int | None = None) -> str:
    n = rng.randint(0, 8) if n is None else n
    parts = [rng.choice(_WORDS) if rng.random() < 0.7 else rng.choice(_ODD) for _ in range(n)]
    return rng.choice((" ", "", "\n")).join(parts)


def _num(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.5:
        return str(round(rng.uniform(0.1, 20), rng.randint(0, 3)))
    if kind < 0.7:
        return str(rng.randint(0, 5000))
    if kind < 0.8:
        return f"{rng.randint(1, 99)},{rng.randint(100, 999)}"
    if kind < 0.9:
        return "-" + str(round(rng.uniform(0, 10), 2))
    return rng.choice(("1.", ".5", "1e3", "0", "00.50", "9" * 30, "3/4", "½", "٣"))


def mcq_cases(rng: random.Random, n: int) -> list:
    texts = ("red cube", "blue chair", "the table", "left", "right", "closer", "farther", "2 meters", "A lamp",
             "yes", "no", "none of the above", "B")
    out = []
    for _ in range(n):
        k = rng.choice((0, 1, 2, 2, 3, 4, 4, 4, 5, 6))
        options = [f"{chr(65 + i)}. {rng.choice(texts)}" for i in range(k)]
        if k and rng.random() < 0.1:
            options = [rng.choice(texts) for _ in range(k)]  # options without letters
        answer = chr(65 + rng.randrange(max(k, 1))) if rng.random() < 0.95 else rng.choice(("a", "AB", ""))
        letter = chr(65 + rng.randrange(max(k, 1) + 1))
        form = rng.choice((
            "{L}", "({L})", "{L}.", "The answer is {L}", "answer: {L}", "Answer: {L}", "Answer: ({L})", "{L} is correct",
            "The correct option is {L}.", "I choose {L} because", "Option {L}", "{l}", "**{L}**", "{L}, {M}",
            "({L}) or ({M})", "{L} {M}", "Answer: {L} and {M}", "{T}", "It is {T} for sure, I think so.",
            "<|begin_of_box|>{L}<|end_of_box|>", "Select {L}", "Choice {M} is wrong; Choice {L}", "{L}) {T}",
            "```{L}```", "The answer should be {L}!", "{M}. {T}\n{L}.",
        ))
        body = form.format(L=letter, l=letter.lower(), M=chr(65 + rng.randrange(max(k, 1) + 1)),
                           T=rng.choice(options)[3:] if options else "x")
        out.append((noise(rng) + rng.choice(("", " ", "\n")) + body + rng.choice(("", " ", ".", "\n")) + noise(rng),
                    answer, {"option": options}))
    return out


def numeric_cases(rng: random.Random, n: int) -> list:
    out = []
    for _ in range(n):
        target = rng.choice((str(round(rng.uniform(0.1, 30), 2)), str(rng.randint(1, 200)), "0", "-3.5", "1e2",
                             " 4.0 ", str(rng.uniform(0.5, 2))))
        t = float(target)
        form = rng.choice(("{x}", "{x} m", "about {x} meters", "({x}, {y})", "[{x},{y}]", "{x}, {y}", "{x}-{y}",
                           "between {x} and {y}", "{y}", "none", "{x}{x}", "~{x}", "{x}e5", "{x}.5.5"))
        x = rng.choice((_num(rng), str(round(t * rng.uniform(0.4, 1.6), 3)), str(t), str(round(t * 1.05, 6))))
        out.append((noise(rng) + " " + form.format(x=x, y=_num(rng)) + " " + noise(rng), target, {}))
    return out


def judge_cases(rng: random.Random, n: int) -> list:
    out = []
    for _ in range(n):
        answer = rng.choice(("yes", "no", "Yes", "No", "YES", "maybe"))
        out.append((noise(rng, rng.randint(0, 12)), answer, {}))
    return out


def _json_value(rng: random.Random, good: float) -> str:
    r = rng.random()
    if r < 0.6:
        return repr(round(good + rng.gauss(0, 3), rng.randint(0, 4)))
    return rng.choice(("NaN", "Infinity", "-Infinity", '"12"', "null", "[1]", "true", "1e400", "9" * 400, "1e200",
                       str(int(good)), "-0", "{}"))


def gravity_cases(rng: random.Random, n: int) -> list:
    out = []
    for _ in range(n):
        gt = {"roll": round(rng.uniform(-30, 30), 2), "pitch": round(rng.uniform(-40, 40), 2),
              "vfov": round(rng.uniform(30, 90), 2)}
        unc = {f"{k}_unc": rng.choice((round(rng.uniform(0.5, 8), 2), 1, 0, -1, 1e-200)) if rng.random() < 0.15
               else round(rng.uniform(0.5, 8), 2) for k in gt}
        keys = [k for k in gt if rng.random() < 0.93]
        body = ", ".join(f'"{k}": {_json_value(rng, gt[k])}' for k in keys)
        obj = "{" + body + rng.choice(("", "", ",", ", ")) + "}"
        form = rng.choice(("```json\n{o}\n```", "```\n{o}\n```", "{o}", "Result: {o} done", "```json {o}```",
                           "roll: {r}, pitch = {p}, vfov: {v}", "'roll'={r} 'pitch': {p} \"vfov\":{v}",
                           "{o}\n{o}", "{o_trunc}", "[{o}]", "```json\n{o}", "roll {r} pitch {p}"))
        text = form.format(o=obj, o_trunc=obj[: rng.randint(0, len(obj))], r=round(gt["roll"] + rng.gauss(0, 2), 1),
                           p=round(gt["pitch"], 1), v=rng.choice((str(gt["vfov"]), "50.", "-7")))
        out.append((noise(rng, rng.randint(0, 3)) + text + noise(rng, rng.randint(0, 3)), json.dumps(gt), unc))
    return out


def _quat(rng: random.Random) -> list:
    q = np.array([rng.gauss(0, 1) for _ in range(4)])
    return list(q / np.linalg.norm(q))


def _poses(rng: random.Random, count: int) -> list:
    pos = np.array([rng.uniform(-1, 1) for _ in range(3)])
    poses = []
    for _ in range(count):
        poses.append(list(pos) + _quat(rng) if rng.random() < 0.5 or not poses else list(pos) + poses[-1][3:])
        pos = pos + np.array([rng.gauss(0, 0.3) for _ in range(3)])
    return poses


_SYMBOLS = ("W", "S", "A", "D", "space", "shift", "←", "→", "↑", "↓", "↺", "↻", "STOP", "X", "w", "up")


def _steps(rng: random.Random, k: int) -> list:
    def one():
        r = rng.random()
        if r < 0.8:
            return rng.randint(0, 10)
        return rng.choice((2.5, -3, "3", None, float("nan"), 1e308, True, [1], 0.0))
    return [one() for _ in range(k)]


def _plan(rng: random.Random) -> dict:
    k = rng.randint(0, 4)
    plan = {"actions": [rng.choice(_SYMBOLS) for _ in range(k)], "step_nums": _steps(rng, k + rng.choice((0, 0, 1, -1)))}
    r = rng.random()
    if r < 0.05:
        plan["actions"] = rng.choice(("W", 3, None, {"W": 1}))
    elif r < 0.1:
        del plan["step_nums"]
    elif r < 0.13:
        plan["step_nums"] = rng.choice((3, "33", {"0": 1}))
    return plan


def _dump(rng: random.Random, obj) -> str:
    r = rng.random()
    if r < 0.15:
        return repr(obj)  # a Python literal (single quotes, None, nan)
    text = json.dumps(obj, ensure_ascii=rng.random() < 0.5)
    if r < 0.25:
        text = text.replace("]", ", ]", 1)
    if r < 0.3:
        text = text[: rng.randint(0, len(text))]
    return text


def _wrap_json(rng: random.Random, text: str) -> str:
    form = rng.choice(("```json\n{t}\n```", "```json{t}```", "```\n{t}\n```", "{t}", "Plan: {t}. Go.", "```json\n{t}",
                       "{t}\n```json\n{t}\n```", "``` {t} ```"))
    return noise(rng, rng.randint(0, 2)) + form.format(t=text) + noise(rng, rng.randint(0, 2))


def nav_cases(rng: random.Random, n: int) -> list:
    out = []
    for _ in range(n):
        count = rng.choice((2, 2, 2, 3, 5, 8, 9))
        extra = {"optimal_rel_pose": _poses(rng, count)}
        for i in range(count - 1):
            extra[f"{i}->{i + 1}"] = {"translation_step_size": rng.choice((0.0626, 0.05, 0.1)),
                                      "rotation_step_size": rng.choice((0.0725, 0.1))}
        if rng.random() < 0.1:
            extra[f"{count - 2}->{count - 1}"] = {}
        plan = _plan(rng)
        out.append((_wrap_json(rng, _dump(rng, plan)), "", extra))
    return out


def manip_cases(rng: random.Random, n: int) -> list:
    out = []
    for _ in range(n):
        segs = rng.randint(1, 4)
        extra = {"optimal_rel_pose": _poses(rng, segs + 1)}
        for i in range(segs):
            extra[f"{i}->{i + 1}"] = {"translation_step_size": rng.choice((0.0626, 0.02, 0.2)),
                                      "rotation_step_size": rng.choice((0.0725, 0.2))}
        k = rng.randint(0, segs + 2)
        names = rng.choice((["step {}", "Step_{}", "{}"], ["segment {}"], ["s{}"], ["move"]))
        plan = {}
        for i in range(k):
            key = rng.choice(names).format(rng.choice((i + 1, i, k - i)))
            plan[key] = _plan(rng) if rng.random() < 0.92 else rng.choice(("W", 3, None, ["W"]))
        out.append((_wrap_json(rng, _dump(rng, plan)), "", extra))
    return out


_FACING_WORDS = ("up", "down", "left", "right", "inner", "outer", "north", "Front", " back ", "into", "sideways", "")


def _cogmap(rng: random.Random, names: list, complex_: bool) -> dict:
    def entry():
        e = {"position": [rng.randint(0, 4), rng.randint(0, 4)]}
        if rng.random() < 0.7:
            e["facing"] = rng.choice(_FACING_WORDS[:8])
        return e
    if complex_:
        return {"objects": [{"name": n, **entry()} for n in names],
                "views": [{"name": f"View {i}", **entry()} for i in range(rng.randint(0, 2))]}
    return {n: entry() for n in names}


def _perturb(rng: random.Random, cogmap: dict, names: list) -> dict:
    gen = json.loads(json.dumps(cogmap))
    entries = gen["objects"] if "objects" in gen else list(gen.values())
    for e in entries:
        r = rng.random()
        if r < 0.2:
            e["position"] = [rng.randint(0, 4), rng.randint(0, 4)]
        elif r < 0.25:
            e["position"] = rng.choice(("1,2", [1], ["1", "2"], [1.5, 2.5, 3], None, [[1, 2]], [10 ** 400, 1]))
        elif r < 0.3:
            e["facing"] = rng.choice(_FACING_WORDS + (["up"], [], 3))
        elif r < 0.4 and "position" in e:
            x, y = e["position"][:2] if isinstance(e["position"], list) else (0, 0)
            e["position"] = [y, -x] if rng.random() < 0.5 else [-x, -y]  # rotated maps
    if "objects" not in gen:
        r = rng.random()
        if r < 0.15 and gen:
            gen.pop(rng.choice(list(gen)))
        elif r < 0.25:
            gen[rng.choice(("lamp", "door", "objects"))] = {"position": [rng.randint(0, 4), 0]}
        elif r < 0.3 and gen:
            key = rng.choice(list(gen))
            gen[key] = rng.choice(([gen[key], {"position": [0, 0]}], [], "left", None))
        if rng.random() < 0.1:  # a complex map answering a simple one
            gen = {"objects": [{"name": k, **v} for k, v in gen.items() if isinstance(v, dict)]}
    return gen


def _map_text(rng: random.Random, gen: dict) -> str:
    text = json.dumps(gen, indent=rng.choice((None, 2)))
    r = rng.random()
    if r < 0.1:
        text = text.replace('"position"', "position").replace('"facing"', "facing")
    elif r < 0.15:
        text = text.replace("]", "],", 1).replace("}", ",}", 1)
    elif r < 0.2:
        text = text.replace("{", "{ // map\n", 1)
    elif r < 0.25:
        text = text[: rng.randint(0, len(text))]
    elif r < 0.28:
        text = "{" * rng.randint(1, 3) + text
    return text


def cogmap_cases(rng: random.Random, n: int) -> list:
    objs = ("chair", "table", "sofa", "lamp", "plant", "tv", "bed")
    out = []
    for _ in range(n):
        names = rng.sample(objs, rng.randint(1, 5))
        truth = _cogmap(rng, names, rng.random() < 0.3)
        answer = rng.choice("ABCD")
        letter = rng.choice("ABCDEF")
        gen = _perturb(rng, truth, names) if rng.random() < 0.9 else _cogmap(rng, rng.sample(objs, 3), False)
        form = rng.choice(("<CogMap>{m}</CogMap>\n<Think>...</Think>\n<Answer>{L}. {w}</Answer>", "{m}\nAnswer: {L}",
                           "{m}\n{L}", "Map: {m} My answer is {L}", "{m} \"{L}\"", "{L}. {m}", "{m}", "{L}",
                           "<Answer>The answer is {L}</Answer>{m}", "{m}\n* {L} *\nanswer is {L}"))
        text = form.format(m=_map_text(rng, gen), L=letter, w=rng.choice(objs))
        extra = {"cogmap": json.dumps(truth) if rng.random() < 0.8 else truth,
                 "id_type": rng.choice(("around_12", "rotation_3", "translation_x", "among_4", "other", "", None))}
        out.append((noise(rng, rng.randint(0, 2)) + text + noise(rng, rng.randint(0, 2)), answer, extra))
    return out


def png_masks() -> list[tuple[str, bytes]]:
    """Masks in the encodings a benchmark may ship (8-bit gray, binary, gradients, RGB, palette, 16-bit,
    1-bit), as PNG bytes: written with Pillow, so the decoder is checked on another encoder's output."""
    from PIL import Image

    h, w = 24, 32
    yy, xx = np.mgrid[0:h, 0:w]
    gradient = ((xx * 7 + yy * 3) % 256).astype(np.uint8)
    binary = (((xx - 16) ** 2 + (yy - 12) ** 2) < 60).astype(np.uint8) * 255
    masks = []

    def png(img, **kw):
        buf = io.BytesIO()
        img.save(buf, format="PNG", **kw)
        return buf.getvalue()

    masks.append(("gray", png(Image.fromarray(gradient, "L"))))
    masks.append(("binary", png(Image.fromarray(binary, "L"), optimize=True)))
    masks.append(("one_bit", png(Image.fromarray(binary > 0).convert("1"))))
    rgb_gray = np.stack([binary, binary, binary], axis=-1)
    masks.append(("rgb_gray", png(Image.fromarray(rgb_gray, "RGB"))))
    masks.append(("rgba", png(Image.fromarray(np.dstack([rgb_gray, gradient]), "RGBA"))))
    masks.append(("palette", png(Image.fromarray(binary, "L").convert("P"))))
    masks.append(("gray16", png(Image.fromarray(gradient.astype(np.uint16) * 257))))
    masks.append(("gray_alpha", png(Image.fromarray(np.dstack([gradient, binary]), "LA"))))
    return masks


def affmask_cases(rng: random.Random, n: int, masks: list[tuple[str, bytes]]) -> list:
    encoded = []
    for _name, data in masks:
        b64 = base64.b64encode(data).decode()
        encoded += [b64, "data:image/png;base64," + b64, b64[:-2], "\n".join(b64[i:i + 60] for i in range(0, len(b64), 60))]
    encoded += ["", "not base64 at all!", base64.b64encode(b"GIF89a....").decode()]
    out = []
    for _ in range(n):
        answer = rng.choice(encoded)
        x = rng.choice((round(rng.random(), 3), rng.randint(0, 40), -1, 1.0, 0, 0.5, 2.5, 31.5, 1e308))
        y = rng.choice((round(rng.random(), 3), rng.randint(0, 30), -0.5, 1, 23.5, 12))
        form = rng.choice(("[{x}, {y}]", "({x},{y})", "x={x}, y={y}", "y: {y} then X = {x}", "{x}, {y}",
                           "[{x}, {y}] or [{y}, {x}]", "point {x} {y}", "x:{x}", "{x},{y},{x}", "```json\n[{x}, {y}]\n```"))
        out.append((noise(rng, rng.randint(0, 3)) + form.format(x=x, y=y) + noise(rng, rng.randint(0, 3)), answer, {}))
    return out


GENERATORS = {
    "multichoiceeval": mcq_cases, "meanrelativeacc": numeric_cases, "judge": judge_cases,
    "gravityeval": gravity_cases, "agenticnaveval": nav_cases, "manipulateeval": manip_cases,
    "cogmapeval": cogmap_cases,
}


def is_close(a: float, b: float, tol: float = 1e-6) -> bool:
    return math.isfinite(a) and math.isfinite(b) and abs(a - b) <= tol
