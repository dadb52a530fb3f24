"""Model families (one module each) behind the interface of :mod:`train.models.base`.

Importing this package registers every family (:mod:`train.models.registry`). To add one: a module here
subclassing ``ModelFamily`` with ``@register``, its import in registry.py, a tiny builder in ``train/tiny/`` and a
row in tests/test_families*.py (docs/MODELS.md).
"""

from train.models.base import GROUPS, ModelFamily, ModuleGroups, UnsupportedFamily, thinking_for  # noqa: F401
from train.models.registry import (  # noqa: F401
    config_json,
    families,
    family_for_checkpoint,
    family_for_config,
    family_for_model,
    family_for_processor,
    family_for_type,
    render_chat,
    supported,
)
