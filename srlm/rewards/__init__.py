"""Reward sources: where scores come from (the `reward/` config group).

Every module of this package is imported on the first lookup (srlm.rewards.base), so a new
source is one module here (a class decorated with ``@register_reward("name", schema=...)``) plus
one ``conf/reward/<name>.yaml``; no method changes. See srlm/rewards/base.py and
docs/extending.md.
"""
