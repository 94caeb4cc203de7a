"""Point heads: one output trained on the standardised label.

:class:`PointHead` holds what regression-type heads share: standardisation, decoding, and
prediction intervals by split conformal calibration (the validation absolute-residual quantile,
refitted by :meth:`PointHead.calibrate` after every epoch). Age groups, when declared, are the
groups of the point predictions (no probabilities, so ``group_tau`` does not apply).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from agesearch.heads.base import Head, TargetInfo, register_head
from agesearch.heads.decoding import validate_levels
from agesearch.heads.groups import AgeGroups
from agesearch.losses import FOCAL_ACTIVATIONS, POINT_LOSSES, weighted_mean

POINT_KEYS: tuple[str, ...] = ("interval_levels", "age_groups")


class PointHead(Head):
    """Linear layer to one output, the standardised age ``(y - mean) / std``.

    Args:
        d_in: representation size.
        target: label scale and bins.
        interval_levels: central interval levels (split conformal on validation).
        age_groups: optional group edges (ages).
    """

    def __init__(
        self,
        d_in: int,
        target: TargetInfo,
        *,
        interval_levels: Sequence[float] = (0.8, 0.9),
        age_groups: Sequence[float] | None = None,
    ) -> None:
        super().__init__(d_in, target)
        self.interval_levels = validate_levels(interval_levels)
        self.register_buffer(
            "interval_halfwidth", torch.full((len(self.interval_levels),), math.nan)
        )
        self.groups = (
            None
            if age_groups is None
            else AgeGroups(age_groups, target.bin_values, target.bin_values, target.train_counts)
        )
        self.linear = nn.Linear(d_in, 1)

    def forward(self, z: Tensor) -> Tensor:
        """``(B, d_in) -> (B, 1)``."""
        return self.linear(z)

    def _standardise(self, y: Tensor) -> Tensor:
        return (y - self.target.mean) / self.target.std

    def predict(self, out: Tensor) -> Tensor:
        """``(B, 1) -> (B,)`` ages in years."""
        return out[:, 0] * self.target.std + self.target.mean

    def predict_interval(self, out: Tensor, level: float) -> tuple[Tensor, Tensor]:
        """``pred -/+ q`` with ``q`` the calibrated absolute-residual quantile for ``level``
        (NaN before :meth:`calibrate`; levels other than ``interval_levels`` are not available)."""
        level = float(level)
        if level not in self.interval_levels:
            raise ValueError(
                f"level {level} was not calibrated; add it to interval_levels {list(self.interval_levels)}"
            )
        q = self.interval_halfwidth[self.interval_levels.index(level)]
        pred = self.predict(out)
        return pred - q, pred + q

    def predict_groups(self, out: Tensor) -> Tensor | None:
        if self.groups is None:
            return None
        return torch.as_tensor(self.groups.group_of(self.predict(out)), device=out.device)

    @torch.no_grad()
    def calibrate(
        self, out: Tensor, y: np.ndarray, regions: np.ndarray | None, metric: str
    ) -> dict[str, Any]:
        """Split-conformal half-widths from validation residuals: the ``ceil((n+1) L) / n``
        empirical quantile of ``|y - pred|`` for each level ``L``."""
        y = np.asarray(y, dtype=float)
        if len(y) == 0 or not self.interval_levels:
            return {}
        res = np.sort(np.abs(self.predict(out).double().cpu().numpy() - y))
        n = len(res)
        qs = []
        for level in self.interval_levels:
            k = min(n, int(math.ceil((n + 1) * level))) - 1
            qs.append(res[k])
        self.interval_halfwidth.copy_(torch.as_tensor(qs, dtype=self.interval_halfwidth.dtype))
        return {"interval_halfwidth": qs}


def _kwargs_huber(h: "RegressionHead") -> dict[str, Any]:
    return {"delta": h.huber_delta / h.target.std}


def _kwargs_focal(h: "RegressionHead") -> dict[str, Any]:
    # beta is per year; the head's errors are in standard deviations: beta * |e_years| = (beta * std) * |e_std|.
    return {"beta": h.focal_beta * h.target.std, "gamma": h.focal_gamma, "activate": h.focal_activate}


LOSS_KWARGS = {"huber": _kwargs_huber, "focal_l1": _kwargs_focal, "focal_mse": _kwargs_focal}
"""How a regression loss's keyword arguments derive from the head's settings (in years)."""


@register_head
class RegressionHead(PointHead):
    """Plain regression head.

    Args:
        d_in: representation size.
        target: label scale and bins.
        loss: a name in :data:`agesearch.losses.POINT_LOSSES` (``l1``, ``mse``, ``huber``,
            ``focal_l1``, ``focal_mse``).
        huber_delta: Huber threshold in years.
        focal_beta: Focal-R beta per year of error (reference 0.2).
        focal_gamma: Focal-R gamma (reference 1).
        focal_activate: ``sigmoid`` (reference default) or ``tanh``.
        interval_levels, age_groups: see :class:`PointHead`.
    """

    name = "regression"
    config_keys = ("loss", "huber_delta", "focal_beta", "focal_gamma", "focal_activate") + POINT_KEYS

    def __init__(
        self,
        d_in: int,
        target: TargetInfo,
        *,
        loss: str = "l1",
        huber_delta: float = 1.0,
        focal_beta: float = 0.2,
        focal_gamma: float = 1.0,
        focal_activate: str = "sigmoid",
        **common: Any,
    ) -> None:
        super().__init__(d_in, target, **common)
        if loss not in POINT_LOSSES:
            raise ValueError(
                f"unknown loss {loss!r} for head 'regression'; valid: {', '.join(sorted(POINT_LOSSES))}"
            )
        if not huber_delta > 0:
            raise ValueError(f"huber_delta must be > 0 years, got {huber_delta}")
        if not (math.isfinite(focal_beta) and focal_beta > 0):
            raise ValueError(f"focal_beta must be > 0 (per year of error; reference 0.2), got {focal_beta}")
        if not (math.isfinite(focal_gamma) and focal_gamma >= 0):
            raise ValueError(f"focal_gamma must be >= 0 (reference 1), got {focal_gamma}")
        if focal_activate not in FOCAL_ACTIVATIONS:
            raise ValueError(
                f"focal_activate must be one of {', '.join(FOCAL_ACTIVATIONS)}, got {focal_activate!r}"
            )
        self.loss_name = loss
        self.huber_delta = float(huber_delta)
        self.focal_beta = float(focal_beta)
        self.focal_gamma = float(focal_gamma)
        self.focal_activate = focal_activate

    def loss(self, out: Tensor, y: Tensor, weights: Tensor | None = None, **batch: Tensor) -> Tensor:
        fn = POINT_LOSSES[self.loss_name]
        kwargs = LOSS_KWARGS[self.loss_name](self) if self.loss_name in LOSS_KWARGS else {}
        per = fn(out[:, 0], self._standardise(y), **kwargs)
        return weighted_mean(per, weights)
