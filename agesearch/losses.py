"""Per-sample loss functions and the weighted reduction every head uses.

Every loss here returns one value per sample, shape ``(B,)``, so that imbalance strategies can
multiply it by per-sample weights before averaging (as the DIR reference does: ``mean(w * l)``).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

PointLoss = Callable[..., Tensor]


def l1(pred: Tensor, target: Tensor) -> Tensor:
    """Absolute error, shape ``(B,)``."""
    return (pred - target).abs()


def mse(pred: Tensor, target: Tensor) -> Tensor:
    """Squared error, shape ``(B,)``."""
    return (pred - target) ** 2


def huber(pred: Tensor, target: Tensor, delta: float = 1.0) -> Tensor:
    """Huber loss with threshold ``delta`` (in the units of ``pred``), shape ``(B,)``."""
    return F.huber_loss(pred, target, reduction="none", delta=delta)


FOCAL_ACTIVATIONS = ("sigmoid", "tanh")


def _focal_factor(err: Tensor, beta: float, gamma: float, activate: str) -> Tensor:
    a = beta * err.abs()
    if activate == "tanh":
        return torch.tanh(a) ** gamma
    if activate == "sigmoid":
        return (2 * torch.sigmoid(a) - 1) ** gamma
    raise ValueError(f"focal activation must be one of {FOCAL_ACTIVATIONS}, got {activate!r}")


def focal_l1(
    pred: Tensor, target: Tensor, beta: float = 0.2, gamma: float = 1.0, activate: str = "sigmoid"
) -> Tensor:
    """Focal-R on L1 (Yang et al. 2021, DIR ``weighted_focal_l1_loss``), shape ``(B,)``.

    ``|e| * (2 sigmoid(beta |e|) - 1)^gamma`` (or ``tanh(beta |e|)^gamma``), ``e = pred - target``;
    ``beta`` is in inverse units of ``pred`` (the reference's 0.2 is per year). The factor is not
    detached, as in the reference.
    """
    err = pred - target
    return err.abs() * _focal_factor(err, beta, gamma, activate)


def focal_mse(
    pred: Tensor, target: Tensor, beta: float = 0.2, gamma: float = 1.0, activate: str = "sigmoid"
) -> Tensor:
    """Focal-R on MSE (DIR ``weighted_focal_mse_loss``), shape ``(B,)``."""
    err = pred - target
    return err**2 * _focal_factor(err, beta, gamma, activate)


POINT_LOSSES: dict[str, PointLoss] = {
    "l1": l1,
    "mse": mse,
    "huber": huber,
    "focal_l1": focal_l1,
    "focal_mse": focal_mse,
}
"""Registry of point losses for regression-type heads. Extended by the heads module."""


def weighted_mean(per_sample: Tensor, weights: Tensor | None) -> Tensor:
    """``mean(w * l)`` over the batch; plain mean when ``weights`` is None.

    Args:
        per_sample: shape ``(B,)``.
        weights: shape ``(B,)`` or None. Weights are normalised to mean 1 over the training set,
            so this keeps the loss scale of the unweighted case.
    """
    if weights is None:
        return per_sample.mean()
    return (per_sample * weights).mean()
