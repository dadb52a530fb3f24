"""Imports run one way (docs/ARCHITECTURE.md): every import statement of every module, read with ``ast`` (imports
inside functions included, since a lazy import is still a dependency), checked against the allowed arrows
between the project's packages, and no module takes part in an import cycle."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# package -> the packages it may import (an arrow means "may import"). Nothing imports launch.
ALLOWED: dict[str, set[str]] = {
    "launch": {"sweeps", "train", "eval_hooks", "data_mix", "rewards"},
    "bench": {"train", "eval_hooks", "data_mix", "rewards"},
    "sweeps": {"train", "eval_hooks", "rewards"},
    "train": {"eval_hooks", "data_mix", "rewards"},
    "eval_hooks": {"data_mix", "rewards", "train"},
    "data_mix": {"rewards"},
    "rewards": set(),  # numpy/scipy and the standard library only: verl's own environment loads it
    "scripts": {"rewards", "eval_hooks"},
}
# Arrows narrower than a whole package: (from, to) -> the only modules of ``to`` that ``from`` may import.
ONLY: dict[tuple[str, str], set[str]] = {
    ("sweeps", "train"): {"train.recipe"},  # a sweep loads its runs' recipes; it runs the launchers as processes
    ("data_mix", "rewards"): {"rewards.taxonomy", "rewards.did_you_mean", "rewards.metrics"},  # metrics: the
    # benchmark prompt text and the open-MCQ rule of a metric live in its record
    # evaluation asks the model family (lmms-eval wrapper and input sizing); the seam imports no eval_hooks
    ("eval_hooks", "train"): {"train.models"},
    # the demo's summary (scripts/demo_summary.py, run in .venv at the end of the pipeline) prints the paired
    # deltas the evaluation computes; the other scripts run in side environments (verl, lmms) and import rewards only
    ("scripts", "eval_hooks"): {"eval_hooks.offline"},
}


def project_modules() -> dict[str, Path]:
    """Dotted module name -> file, for every Python file of the packages above (launch/ and scripts/ included)."""
    mods = {}
    for top in ALLOWED:
        for path in sorted((REPO / top).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = path
    return mods


def imports_of(name: str, path: Path, mods: dict[str, Path]) -> set[tuple[str, int]]:
    """(project module imported, line) for every import statement in the file; ``from pkg import mod`` counts as
    an import of pkg.mod, ``from pkg.mod import obj`` as pkg.mod."""

    def known(dotted: str) -> str | None:
        while dotted and dotted not in mods:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [known(a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(up + ([node.module] if node.module else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else known(base) for a in node.names]
        else:
            continue
        found |= {(t, node.lineno) for t in targets if t is not None and t != name}
    return found


def test_imports_follow_the_allowed_arrows():
    mods = project_modules()
    wrong = []
    for name, path in mods.items():
        top = name.split(".")[0]
        for target, line in imports_of(name, path, mods):
            to = target.split(".")[0]
            if to == top:
                continue
            only = ONLY.get((top, to))
            ok = to in ALLOWED[top] and (only is None or any(target == m or target.startswith(m + ".") for m in only))
            if not ok:
                wrong.append(f"{path.relative_to(REPO)}:{line} imports {target} ({top} -> {to} is not an allowed arrow)")
    assert not wrong, "\n".join(wrong)


def test_no_module_is_part_of_an_import_cycle():
    mods = project_modules()
    graph = {name: {t for t, _ in imports_of(name, path, mods)} for name, path in mods.items()}
    cycles, index, low, stack, on_stack = [], {}, {}, [], set()

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, f"modules importing each other (directly or around a loop): {cycles}"


def test_the_checker_sees_lazy_relative_and_package_imports(tmp_path):
    """The checker itself: imports inside functions, relative imports and ``from pkg import module`` all count."""
    mods = {"a": tmp_path / "a" / "__init__.py", "a.b": tmp_path / "a" / "b.py", "a.c": tmp_path / "a" / "c.py",
            "d.e": tmp_path / "d" / "e.py"}
    mods["a.b"].parent.mkdir(parents=True)
    mods["a.b"].write_text("def f():\n    from d.e import g\n    from . import c\n    import a.c as x\n")
    assert imports_of("a.b", mods["a.b"], mods) == {("d.e", 2), ("a.c", 3), ("a.c", 4)}
