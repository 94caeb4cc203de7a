"""What an imbalance strategy hands the trainer: a :class:`TrainingPlan`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from torch import Tensor, nn

from agesearch.data import PreparedData

Regularizer = Callable[..., Tensor]
"""``reg(z=(B, d), pred=(B,), y=(B,), weights=(B,) | None) -> scalar`` added to the loss."""


@dataclass
class TrainingPlan:
    """Training arrays (possibly resampled), per-row weights, smoother and regularisers.

    Attributes:
        x_num: float32 ``(n, n_num)``; x_cat: int64 ``(n, n_cat)``; y: float64 ``(n,)``.
        y_std: per-row label uncertainty ``(n,)`` or None.
        weights: per-row loss weights ``(n,)`` with mean 1, or None for uniform.
        smoother: feature smoother (FDS) or None; if it has ``update(z, bin_idx, epoch)`` the trainer
            calls it after every epoch with the representations of all training rows.
        regularizers: extra loss terms on the representation / predictions.
    """

    x_num: np.ndarray
    x_cat: np.ndarray
    y: np.ndarray
    y_std: np.ndarray | None = None
    weights: np.ndarray | None = None
    smoother: nn.Module | None = None
    regularizers: list[Regularizer] = field(default_factory=list)


def build_plan(config: dict[str, Any], data: PreparedData, *, seed: int = 0) -> TrainingPlan:
    """The plan for ``config["strategy"]`` (``none`` here: the training split as it is)."""
    strategy = config.get("strategy", "none")
    if strategy != "none":
        raise ValueError(f"unknown strategy {strategy!r}; valid: none")
    return TrainingPlan(
        x_num=data.x_num["train"],
        x_cat=data.x_cat["train"],
        y=data.y["train"],
        y_std=None if data.y_std is None else data.y_std["train"],
    )
