"""Heads: regression, distribution, ordinal, balanced_mse (a registry of small classes)."""

from agesearch.heads.base import HEADS, Head, TargetInfo, build_head, register_head
from agesearch.heads import regression as _regression  # noqa: F401  (registers "regression")
from agesearch.heads import distribution as _distribution  # noqa: F401  (registers "distribution")
from agesearch.heads import ordinal as _ordinal  # noqa: F401  (registers "ordinal")
from agesearch.heads import balanced_mse as _balanced_mse  # noqa: F401  (registers "balanced_mse")

__all__ = ["HEADS", "Head", "TargetInfo", "build_head", "register_head"]
