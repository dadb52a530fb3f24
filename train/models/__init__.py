"""Model families (one module each) behind the interface of :mod:`train.models.base`.

Importing this package registers every family. To add one: a module here subclassing ``ModelFamily`` with
``@register``, its import below, a tiny builder in ``train/tiny/`` and a row in tests/test_families*.py
(docs/MODELS.md).
"""

from train.models import internvl, qwen2_5_vl, qwen2_vl, qwen3_5, qwen3_5_moe, qwen3_vl, qwen3_vl_moe  # noqa: F401
from train.models.base import (  # noqa: F401
    GROUPS,
    ModelFamily,
    ModuleGroups,
    UnsupportedFamily,
    families,
    family_for_checkpoint,
    family_for_config,
    family_for_model,
    family_for_processor,
    family_for_type,
    supported,
)
