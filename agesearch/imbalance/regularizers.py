"""Batch regularisers any head can use: RankSim and a correlation loss.

Each is a small callable ``reg(z=(B, d), pred=(B,), y=(B,), weights=(B,) | None) -> scalar``
that the trainer adds to the head's loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _rank_normalised(seq: Tensor) -> Tensor:
    """Row-wise ranks in ``(0, 1]`` of ``seq`` ``(n, m)``: the largest value gets rank 1/m."""
    rank = torch.argsort(torch.argsort(seq, dim=1).flip(1), dim=1)
    return (rank + 1).float() / seq.shape[1]


class _TrueRanker(torch.autograd.Function):
    """Blackbox differentiable ranking (Vlastelica et al.), as in the RankSim reference."""

    @staticmethod
    def forward(ctx, sequence: Tensor, lambda_val: float) -> Tensor:  # type: ignore[override]
        rank = _rank_normalised(sequence)
        ctx.lambda_val = lambda_val
        ctx.save_for_backward(sequence, rank)
        return rank

    @staticmethod
    def backward(ctx, grad_output: Tensor):  # type: ignore[override]
        sequence, rank = ctx.saved_tensors
        rank_prime = _rank_normalised(sequence + ctx.lambda_val * grad_output)
        return -(rank - rank_prime) / (ctx.lambda_val + 1e-8), None


def ranksim_loss(z: Tensor, y: Tensor, lambda_val: float = 2.0) -> Tensor:
    """RankSim (Gong et al. 2022) without its weight: ranking of cosine similarities of ``z``
    ``(B, d)`` should match the ranking of label similarities ``-|y_i - y_j|`` (``y`` ``(B,)``).

    As in the reference, the batch is first reduced to one random row per distinct label, and the
    loss is the SUM over rows of the mean squared rank difference. Random choice uses torch's
    global generator (seeded by the trial).
    """
    y = y.reshape(-1)
    uniq, inv = torch.unique(y, return_inverse=True)
    if len(uniq) < len(y):
        perm = torch.randperm(len(y), device=y.device)
        first = torch.full((len(uniq),), len(y), device=y.device, dtype=torch.long)
        first = first.scatter_reduce(0, inv[perm], perm, reduce="amin")
        z, y = z[first], y[first]
    if len(y) < 2:
        return z.sum() * 0.0
    zn = F.normalize(z.reshape(z.shape[0], -1), dim=1)
    sim = zn @ zn.T
    label_ranks = _rank_normalised(-(y[:, None] - y[None, :]).abs())
    feature_ranks = _TrueRanker.apply(sim, float(lambda_val))
    return F.mse_loss(feature_ranks, label_ranks, reduction="none").mean(1).sum()


class RankSim:
    """``gamma * ranksim_loss(z, y, lambda_)`` (reference: lambda 2, gamma 100).

    Args:
        lambda_: interpolation strength of the differentiable ranking (> 0).
        gamma: weight of the regulariser (>= 0).
    """

    def __init__(self, lambda_: float = 2.0, gamma: float = 100.0) -> None:
        if not lambda_ > 0:
            raise ValueError(f"ranksim_lambda must be > 0, got {lambda_}; use e.g. 2")
        if not gamma >= 0:
            raise ValueError(f"ranksim_gamma must be >= 0, got {gamma}; use e.g. 100")
        self.lambda_ = float(lambda_)
        self.gamma = float(gamma)

    def __call__(self, *, z: Tensor, pred: Tensor, y: Tensor, weights: Tensor | None = None) -> Tensor:
        return self.gamma * ranksim_loss(z, y, self.lambda_)

    def __repr__(self) -> str:
        return f"RankSim(lambda_={self.lambda_}, gamma={self.gamma})"


def correlation_loss(pred: Tensor, y: Tensor, weights: Tensor | None = None, eps: float = 1e-8) -> Tensor:
    """``1 - r`` with ``r`` the (weighted) Pearson correlation of ``pred`` and ``y``, both ``(B,)``.

    Heads whose decoded prediction is not differentiable (integer decoders) get no gradient from it.
    """
    pred = pred.reshape(-1).float()
    y = y.reshape(-1).to(pred)
    w = torch.ones_like(pred) if weights is None else weights.reshape(-1).to(pred)
    w = w / w.sum().clamp(min=eps)
    pc = pred - (w * pred).sum()
    yc = y - (w * y).sum()
    cov = (w * pc * yc).sum()
    r = cov / torch.sqrt((w * pc * pc).sum() * (w * yc * yc).sum() + eps)
    return 1.0 - r


class CorrelationLoss:
    """``weight * (1 - weighted Pearson r(pred, y))`` over the batch.

    Args:
        weight: multiplier (>= 0).
    """

    def __init__(self, weight: float = 1.0) -> None:
        if not weight >= 0:
            raise ValueError(f"corr_weight must be >= 0, got {weight}")
        self.weight = float(weight)

    def __call__(self, *, z: Tensor, pred: Tensor, y: Tensor, weights: Tensor | None = None) -> Tensor:
        return self.weight * correlation_loss(pred, y, weights)

    def __repr__(self) -> str:
        return f"CorrelationLoss(weight={self.weight})"
