"""Sweeps: many runs of the launchers as Slurm job arrays (or one after another locally).

spec (the sweep YAML schema), loader (load + check a sweep file), plan (runs -> arrays), sbatch (script rendering), submit, status,
local, cli (launch/sweep.py). See docs/SWEEPS.md.
"""

from sweeps.loader import load_sweep
from sweeps.spec import Run, SlurmConfig, Sweep, SweepError

__all__ = ["Run", "SlurmConfig", "Sweep", "SweepError", "load_sweep"]
