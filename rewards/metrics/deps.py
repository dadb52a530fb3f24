"""The third-party packages some metrics need, checked so that a missing one is an ImportError, never a 0 score.

A metric that cannot import what it computes with must not score every answer 0 (the reward would look like
a model that never gets L4 right). So:

- ``import rewards`` (and so verl's loading of rewards/verl_reward.py) looks every dependency up and raises
  :class:`MissingMetricDependency` naming the metrics and the pip package when one is not installed
  (:func:`check_installed`: a lookup, no import, so loading stays fast);
- the metric imports the module on first use through :func:`require`, which raises the same error when the
  installed package does not import (a broken or incompatible build);
- :func:`rewards.score` lets this error through instead of scoring 0.

numpy is not listed: every metric module imports it at load.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

_KNOWN: dict[str, tuple[tuple[str, str], ...]] = {}


def dependencies() -> dict[str, tuple[tuple[str, str], ...]]:
    """metricfunc -> (module it imports, pip package that provides it), from the metric records (``Metric.deps``:
    scipy for the rotations of the L4 camera replay; Pillow for affordance masks that are not plain PNG), as
    registered by :func:`check_installed`."""
    return dict(_KNOWN)


class MissingMetricDependency(ImportError):
    """A metric's package is not installed or does not import; the message names the metric and the package."""


def _message(metrics: list[str], package: str, module: str, why: str) -> str:
    names = ", ".join(repr(m) for m in metrics)
    return (f"metricfunc {names} needs the Python package {package!r} (module {module}), which {why} in "
            f"{sys.executable}: install it there (pip install {package}); without it these rewards cannot be "
            "computed (they would silently score 0)")


def _top_level_found(module: str) -> bool:
    try:
        return importlib.util.find_spec(module.split(".")[0]) is not None
    except (ImportError, ValueError):
        return False


def check_installed(registry) -> None:
    """Raise MissingMetricDependency when a package a metric of ``registry`` (name -> record) needs is not
    installed (lookup only)."""
    _KNOWN.update({name: record.deps for name, record in registry.items() if record.deps})
    by_package: dict[tuple[str, str], list[str]] = {}
    for metric, record in registry.items():
        for module, package in record.deps:
            by_package.setdefault((module, package), []).append(metric)
    for (module, package), metrics in by_package.items():
        if not _top_level_found(module):
            raise MissingMetricDependency(_message(metrics, package, module, "is not installed"))


def require(metric: str, module: str):
    """Import ``module`` for ``metric``; a failure is a MissingMetricDependency naming both."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        known = dependencies()
        package = dict(known.get(metric, ())).get(module, module.split(".")[0])
        users = sorted(m for m, deps in known.items() if any(d[0] == module for d in deps)) or [metric]
        raise MissingMetricDependency(_message(users, package, module, f"cannot be imported ({exc})")) from exc


def require_all() -> None:
    """Import every dependency now (verl's reward loader calls this: a broken package fails at load)."""
    for metric, deps in dependencies().items():
        for module, _package in deps:
            require(metric, module)
