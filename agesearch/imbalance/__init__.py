"""Imbalance strategies: sample weights, LDS/FDS, resampling, representation regularisers.

The trainer asks :func:`build_plan` for a :class:`TrainingPlan` (the training arrays after any
resampling, per-row weights, an optional feature smoother and regularisers).
"""

from agesearch.imbalance.plan import TrainingPlan, build_plan

__all__ = ["TrainingPlan", "build_plan"]
