"""Methods: each one readable top to bottom in its own module."""

from __future__ import annotations

from srlm.methods.base import Method


def get_method(name: str) -> type[Method]:
    if name == "self_reward":
        from srlm.methods.self_reward import SelfReward

        return SelfReward
    if name == "irpo":
        from srlm.methods.irpo import Irpo

        return Irpo
    if name == "thinking_judge":
        from srlm.methods.thinking_judge import ThinkingJudge

        return ThinkingJudge
    if name == "tpo":
        from srlm.methods.tpo import Tpo

        return Tpo
    if name == "meta_reward":
        from srlm.methods.meta_reward import MetaReward

        return MetaReward
    raise KeyError(name)
