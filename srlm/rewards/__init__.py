"""Reward sources: where scores come from (the `reward/` config group).

Every module of this package is imported by :func:`load_reward_modules`, so a new source is one
module here (a class decorated with ``@register_reward``) plus one ``conf/reward/<name>.yaml``;
no method changes. See srlm/rewards/base.py and docs/rewards.md.
"""

from __future__ import annotations

import importlib
import pkgutil


def load_reward_modules() -> None:
    """Import every module of srlm.rewards, so that each registers its source (and schema)."""
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
