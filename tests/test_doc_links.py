"""Every page under docs/ that a doc, the README, a script or a code comment names exists (a dangling pointer sends a
reader nowhere)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_docs_page_named_anywhere_exists():
    files = [REPO / "README.md", REPO / "Makefile", *REPO.glob("docs/*.md")]
    for top in ("train", "data_mix", "rewards", "eval_hooks", "sweeps", "launch", "bench", "scripts", "recipes",
                "tests"):
        files += [p for p in (REPO / top).rglob("*") if p.suffix in (".py", ".sh", ".md", ".yaml")]
    missing = []
    for path in files:
        for i, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            for name in re.findall(r"docs/[A-Za-z0-9_]+\.md", line):
                if not (REPO / name).is_file():
                    missing.append(f"{path.relative_to(REPO)}:{i}: {name}")
    assert missing == []
