"""What an imbalance strategy hands the trainer: a :class:`TrainingPlan`, built by
:func:`build_plan` through the strategy registry (:data:`~agesearch.imbalance.strategies.STRATEGIES`)."""

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
        strategy: the strategy name the plan was built for.
        info: what the strategy did (e.g. ``n_before``, ``n_after``, ``n_synthetic`` rows).
    """

    x_num: np.ndarray
    x_cat: np.ndarray
    y: np.ndarray
    y_std: np.ndarray | None = None
    weights: np.ndarray | None = None
    smoother: nn.Module | None = None
    regularizers: list[Regularizer] = field(default_factory=list)
    strategy: str = "none"
    info: dict[str, Any] = field(default_factory=dict)


def build_plan(config: dict[str, Any], data: PreparedData, *, seed: int = 0) -> TrainingPlan:
    """The plan for ``config["strategy"]`` (default ``none``), dispatched through the registry.

    The configuration is validated first (unknown strategy, out-of-range knob, wrong head: one-line
    ``ValueError``); resampling touches the training split only and is seeded by ``seed``.
    """
    from agesearch.imbalance.strategies import (
        PlanContext,
        make_global_regularizers,
        validate_strategy_config,
    )

    cls = validate_strategy_config(config)
    plan = TrainingPlan(
        x_num=data.x_num["train"],
        x_cat=data.x_cat["train"],
        y=data.y["train"],
        y_std=None if data.y_std is None else data.y_std["train"],
        strategy=str(config.get("strategy", "none")),
    )
    ctx = PlanContext(config=config, data=data, rng=np.random.default_rng(seed), plan=plan)
    cls.apply(ctx)
    plan.regularizers.extend(make_global_regularizers(config))
    plan.info.update(ctx.info)
    return plan
