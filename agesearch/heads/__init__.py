"""Heads: regression, distribution, ordinal, ... (a registry of small classes)."""

from agesearch.heads.base import HEADS, Head, TargetInfo, build_head, register_head
from agesearch.heads import regression as _regression  # noqa: F401  (registers "regression")

__all__ = ["HEADS", "Head", "TargetInfo", "build_head", "register_head"]
