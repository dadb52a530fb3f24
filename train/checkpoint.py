"""Atomic checkpoints, retention and resume discovery.

A checkpoint is written into ``run_dir/.staging/checkpoint-N``, every file is fsynced, then the
directory is renamed to ``run_dir/checkpoint-N`` and a ``COMPLETE`` marker (written to a temp file,
fsynced, renamed) is added last. ``resume: auto`` picks the newest directory that has the marker,
so a crash at any point of a save (or a full disk) never leaves a checkpoint that resume would pick.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import time
from pathlib import Path

from eval_hooks.io import atomic_write_json

MARKER = "COMPLETE"
STAGING = ".staging"
_CKPT = re.compile(r"^checkpoint-(\d+)$")


class CheckpointError(RuntimeError):
    """A checkpoint cannot be written or read; the message says which, why, and what was kept."""


def checkpoint_step(path: str | Path) -> int | None:
    m = _CKPT.match(Path(path).name)
    return int(m.group(1)) if m else None


def is_complete(path: str | Path) -> bool:
    return (Path(path) / MARKER).is_file()


def complete_checkpoints(run_dir: str | Path) -> list[Path]:
    """Complete checkpoints of ``run_dir``, oldest first (by step)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = [(checkpoint_step(p), p) for p in run_dir.iterdir() if p.is_dir() and checkpoint_step(p) is not None]
    return [p for step, p in sorted(found) if is_complete(p)]


def latest_complete(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint in ``run_dir``, or None."""
    ckpts = complete_checkpoints(run_dir)
    return ckpts[-1] if ckpts else None


def resolve_resume(resume: str, run_dir: str | Path) -> Path | None:
    """``never`` -> None; ``auto`` -> newest complete checkpoint or None; else that path (must be complete)."""
    if resume == "never":
        return None
    if resume == "auto":
        return latest_complete(run_dir)
    path = Path(resume)
    if not path.is_dir():
        raise CheckpointError(f"train.resume={resume!r}: no such checkpoint directory")
    if not is_complete(path):
        raise CheckpointError(f"train.resume={resume!r}: checkpoint has no {MARKER} marker (an interrupted save?)")
    return path


def staging_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / STAGING


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """fsync every file and directory under ``root`` (directories after their contents)."""
    for dirpath, _dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames:
            _fsync_path(Path(dirpath) / name)
        _fsync_path(Path(dirpath))


def publish(staged: Path, run_dir: str | Path, info: dict | None = None) -> Path:
    """fsync ``staged``, move it to ``run_dir/<name>`` and mark it complete; return the final path."""
    run_dir = Path(run_dir)
    final = run_dir / staged.name
    fsync_tree(staged)
    if final.exists() and is_complete(final):  # a run resumed from an earlier checkpoint: keep the old one aside
        final.rename(final.with_name(f"{final.name}.replaced-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"))
    elif final.exists():  # an older, incomplete attempt at the same step (e.g. killed mid-publish)
        shutil.rmtree(final)
    staged.rename(final)
    _fsync_path(run_dir)
    atomic_write_json(final / MARKER, {"step": checkpoint_step(final), "time": time.time(), **(info or {})})
    _fsync_path(final)
    return final


def enforce_retention(run_dir: str | Path, limit: int, protected: set[str] | frozenset[str] = frozenset()) -> list[Path]:
    """Delete the oldest complete checkpoints beyond ``limit`` (0 = keep all) and leftover incomplete ones.

    ``protected``: names of checkpoints this run did not write (an earlier run's, e.g. the one it resumed from):
    never deleted and not counted against ``limit``. Incomplete directories older than the newest complete
    checkpoint are debris of crashed saves. Returns what was deleted.
    """
    run_dir = Path(run_dir)
    complete = [p for p in complete_checkpoints(run_dir) if p.name not in protected]
    removed: list[Path] = []
    if limit > 0 and len(complete) > limit:
        for path in complete[:-limit]:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    latest = latest_complete(run_dir)
    newest = checkpoint_step(latest) if latest is not None else None
    for path in run_dir.iterdir() if run_dir.is_dir() else []:
        step = checkpoint_step(path)
        if step is not None and newest is not None and step < newest and not is_complete(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def is_disk_full(exc: BaseException, where: str | Path | None = None) -> bool:
    """True when ``exc`` (or what caused it) is ENOSPC / EDQUOT, however deep torch or safetensors wrapped it,
    or when the filesystem of ``where`` has (almost) no space left: torch.save's zip writer reports a full
    disk only as "unexpected pos ..."."""
    if where is not None and Path(where).exists() and shutil.disk_usage(where).free < 4 * 2**20:
        return True
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = str(exc)
        if "No space left on device" in text or "Disk quota exceeded" in text or "file write failed" in text:
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def disk_full_message(run_dir: str | Path, step: int, exc: BaseException) -> str:
    kept = latest_complete(run_dir)
    free = shutil.disk_usage(run_dir).free if Path(run_dir).exists() else 0
    return (f"disk full while saving checkpoint-{step} under {run_dir} ({free / 2**20:.1f} MiB free): {exc}. "
            f"The partial save was removed; the previous checkpoint is kept: "
            f"{kept if kept else 'none (this was the first save)'}. Free space or point train.output_dir elsewhere, "
            f"then rerun with train.resume=auto.")
