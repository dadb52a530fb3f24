"""The one list of errors a user can fix: the command line prints them as one line and exits 1 (train/cli.py)."""

from __future__ import annotations


def user_errors() -> tuple[type[BaseException], ...]:
    """Errors that name what the user can fix (a data file and row, a full disk, a model path, a packing
    length, a prompt, verl's environment, a training row that is a bench record): the command line prints them as one line and exits 1. Anything else
    is a bug: a traceback."""
    from data_mix.badsample import BadSample, TooManyBadSamples
    from data_mix.decontam import ContaminationError
    from data_mix.plan import PlanError
    from data_mix.registry import RegistryError
    from data_mix.rowfiles import DataFileError
    from train.checkpoint import CheckpointError
    from train.data import BadDataError
    from train.grpo.dataset import GRPODataError
    from train.grpo.prompts import PromptError
    from train.grpo.verl_backend import VerlBackendError
    from train.model_loading import ModelLoadError
    from train.module_groups import UnsupportedArchitecture
    from train.packing import PackingError

    return (BadSample, TooManyBadSamples, PlanError, RegistryError, DataFileError, CheckpointError, BadDataError,
            GRPODataError, PromptError, VerlBackendError, ModelLoadError, UnsupportedArchitecture, PackingError,
            ContaminationError)
