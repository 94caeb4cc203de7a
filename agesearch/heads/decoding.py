"""The padded age-bin grid, decoders, prediction intervals and the decision-threshold scan.

Distribution and ordinal heads share one view of their output: probabilities ``p`` over ``K`` bins
(shape ``(B, K)``) and "task" probabilities ``s_k`` for "age is above bin k" (shape ``(B, K-1)``).

Decoders (``decoder`` key):

- ``expectation``: ``sum_k p_k v_k`` (minimises the squared error).
- ``median``: the first bin whose survival ``P(bin > k)`` is at most ``decision_threshold`` (0.5:
  the median, which minimises the absolute error; other values give other quantiles).
- ``mode``: ``v[argmax p]``.
- ``count``: ``v[#{k : s_k > decision_threshold}]`` on the head's own task probabilities (ordinal
  reference decoding: CORAL/soft BCE count ``sigmoid(logit_k)``, CORN counts the cumulative
  products). For a distribution head ``s = 1 - cdf`` and ``count`` equals ``median``.
- ``sum``: ``v_0 + width * sum_k s_k`` (expected bin index; equals ``expectation`` when ``s`` is
  monotone).

Integer decoders (median, mode, count) give exact-zero errors on integer ages; metrics use an
epsilon for the geometric mean.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence, Union

import numpy as np
import torch
from torch import Tensor

from agesearch.metrics import POINT_METRICS, metric_sign, regression_metrics
from agesearch.regions import AgeBins

DECODERS: tuple[str, ...] = ("expectation", "median", "mode", "count", "sum")
THRESHOLD_DECODERS: tuple[str, ...] = ("median", "count")
"""Decoders that use ``decision_threshold``."""
THRESHOLD_GRID: np.ndarray = np.round(np.arange(0.05, 0.951, 0.01), 4)
"""Candidates of the ``decision_threshold="auto"`` scan."""


class BinGrid:
    """The data's age bins padded by ``pad`` bins each side.

    Attributes:
        bins: the padded :class:`AgeBins` (``K = n_bins`` bins).
        values: age each bin stands for, ``(K,)`` float64 (left edges for on-grid integer ages,
            else centres).
        width: bin width in years.
    """

    def __init__(self, bins: AgeBins, pad: int, on_grid: bool = True) -> None:
        if int(pad) != pad or pad < 0:
            raise ValueError(f"bin_pad must be an integer >= 0, got {pad!r}")
        pad = int(pad)
        self.bins = AgeBins(
            width=bins.width, origin=bins.origin - pad * bins.width, n_bins=bins.n_bins + 2 * pad
        )
        if self.bins.n_bins < 2:
            raise ValueError("the age grid needs at least 2 bins; set bin_pad >= 1")
        self.width = float(bins.width)
        self.on_grid = on_grid
        self.values = self.bins.left_edges if on_grid else self.bins.centers
        self.offset = 0.0 if on_grid else 0.5
        """Position of a bin's value inside the bin, as a fraction of the width."""

    @property
    def n_bins(self) -> int:
        return self.bins.n_bins

    def values_t(self, like: Tensor) -> Tensor:
        """``values`` as a tensor on ``like``'s device and dtype, ``(K,)``."""
        return torch.as_tensor(self.values, dtype=like.dtype, device=like.device)

    def assign(self, y: Tensor) -> Tensor:
        """Bin index of each age (clipped to the grid), ``(B,)`` int64."""
        pos = (y.double() - self.bins.origin) / self.width
        return torch.clamp(torch.floor(pos + 1e-9), 0, self.n_bins - 1).long()

    def boundaries(self, like: Tensor) -> Tensor:
        """Age between bin ``k`` and ``k+1`` in value space (``v_k + width/2``), ``(K-1,)``."""
        return self.values_t(like)[:-1] + 0.5 * self.width


# --------------------------------------------------------------------------- probabilities


def survival(probs: Tensor) -> Tensor:
    """``P(bin > k)`` for k = 0..K-2, ``(B, K-1)``, from bin probabilities ``(B, K)``."""
    return (1.0 - torch.cumsum(probs, dim=1)[:, :-1]).clamp(0.0, 1.0)


def proba_from_survival(s: Tensor) -> Tensor:
    """Bin probabilities ``(B, K)`` from task probabilities ``(B, K-1)``.

    Non-monotone inputs (independent sigmoids) are made monotone by a running minimum first, so
    the probabilities are non-negative and sum to 1.
    """
    s = torch.cummin(s.clamp(0.0, 1.0), dim=1).values
    ones = torch.ones_like(s[:, :1])
    zeros = torch.zeros_like(s[:, :1])
    upper = torch.cat([ones, s], dim=1)
    lower = torch.cat([s, zeros], dim=1)
    return upper - lower


def count_decode(task_probs: Tensor, threshold: float | Tensor, grid: BinGrid) -> Tensor:
    """``v[#{k : s_k > threshold}]``, ``(B,)``."""
    idx = (task_probs > threshold).sum(dim=1)
    return grid.values_t(task_probs)[idx]


def decode(
    decoder: str, probs: Tensor, task_probs: Tensor, threshold: float | Tensor, grid: BinGrid
) -> Tensor:
    """Ages ``(B,)`` from bin probabilities ``(B, K)`` and task probabilities ``(B, K-1)``."""
    v = grid.values_t(probs)
    if decoder == "expectation":
        return probs @ v
    if decoder == "mode":
        return v[probs.argmax(dim=1)]
    if decoder == "median":
        return count_decode(survival(probs), threshold, grid)
    if decoder == "count":
        return count_decode(task_probs, threshold, grid)
    if decoder == "sum":
        return v[0] + grid.width * task_probs.sum(dim=1)
    raise ValueError(f"unknown decoder {decoder!r}; valid: {', '.join(DECODERS)}")


def quantile(probs: Tensor, q: float, grid: BinGrid) -> Tensor:
    """The ``q``-quantile ``(B,)`` of the distribution, each bin's mass spread uniformly over
    ``[v_k - width/2, v_k + width/2]`` (piecewise-linear CDF, so quantiles are continuous)."""
    cdf = torch.cumsum(probs, dim=1)
    k = torch.searchsorted(cdf.contiguous(), torch.full_like(cdf[:, :1], q)).clamp_max(probs.shape[1] - 1)
    k = k[:, 0]
    rows = torch.arange(probs.shape[0], device=probs.device)
    below = torch.where(k > 0, cdf[rows, (k - 1).clamp_min(0)], torch.zeros_like(cdf[:, 0]))
    mass = probs[rows, k].clamp_min(1e-12)
    frac = ((q - below) / mass).clamp(0.0, 1.0)
    return grid.values_t(probs)[k] - 0.5 * grid.width + grid.width * frac


def central_interval(probs: Tensor, level: float, grid: BinGrid) -> tuple[Tensor, Tensor]:
    """Central ``level`` interval ``(lo, hi)``, each ``(B,)``."""
    a = (1.0 - level) / 2.0
    return quantile(probs, a, grid), quantile(probs, 1.0 - a, grid)


# --------------------------------------------------------------------------- validation


def validate_levels(levels: Any) -> tuple[float, ...]:
    """``interval_levels`` as a tuple of floats in (0, 1)."""
    if isinstance(levels, (int, float)):
        levels = [levels]
    try:
        out = tuple(float(x) for x in levels)
    except (TypeError, ValueError):
        raise ValueError(f"interval_levels must be a list of levels in (0, 1), e.g. [0.8, 0.9]; got {levels!r}") from None
    for x in out:
        if not 0.0 < x < 1.0:
            raise ValueError(f"interval_levels must lie in (0, 1), e.g. [0.8, 0.9]; got {list(out)}")
    return out


def validate_threshold(value: Any) -> float | None:
    """``decision_threshold``: a float in (0, 1), or ``"auto"`` (returns None)."""
    if isinstance(value, str):
        if value == "auto":
            return None
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"decision_threshold must be a number in (0, 1) or 'auto', got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
        raise ValueError(f"decision_threshold must be a number in (0, 1) or 'auto', got {value!r}")
    return float(value)


def level_key(level: float) -> str:
    """``0.9 -> "90"``, ``0.975 -> "97.5"`` (metric key suffix)."""
    return f"{level * 100:g}"


# --------------------------------------------------------------------------- threshold scan


def metric_value(metric: str, y: np.ndarray, pred: np.ndarray, regions: np.ndarray | None) -> float:
    """One metric such as ``mae`` or ``mae_few``; falls back to the overall metric when the
    region has no row. Returned with the sign that makes lower better."""
    base, _, region = metric.partition("_")
    if base not in POINT_METRICS:
        raise ValueError(
            f"search metric {metric!r} is not a point metric; use one of "
            f"{', '.join(sorted(POINT_METRICS))}, optionally suffixed _many/_medium/_few/_zero"
        )
    fn = POINT_METRICS[base]
    if region and regions is not None and np.any(regions == region):
        m = regions == region
        value = fn(y[m], pred[m])
    else:
        value = fn(y, pred)
    return metric_sign(base) * value


Metric = Union[str, Callable[[dict[str, float]], float]]
"""A metric name (``mae_few``) or a score of a metrics dict to minimise (``Objective.score``)."""


def scan_threshold(
    task_probs: Tensor,
    y: np.ndarray,
    regions: np.ndarray | None,
    metric: Metric,
    grid: BinGrid,
    candidates: Sequence[float] = tuple(THRESHOLD_GRID),
) -> float:
    """The count-decoding threshold minimising ``metric`` on ``(task_probs, y)``.

    Args:
        task_probs: ``(n, K-1)`` probabilities of "age above bin k".
        y: true ages ``(n,)``.
        regions: region of each row ``(n,)`` or None.
        metric: e.g. ``mae_few`` (few-shot MAE) or ``mae``, or a callable scoring the
            :func:`~agesearch.metrics.regression_metrics` dict (lower is better; NaN skipped).
        candidates: thresholds to try; ties go to the one closest to 0.5.
    """
    if task_probs.shape[0] == 0:
        return 0.5
    s = task_probs.detach().double().cpu()
    cand = torch.as_tensor(np.asarray(candidates, dtype=float), dtype=s.dtype)
    idx = (s[:, :, None] > cand[None, None, :]).sum(dim=1).numpy()  # (n, T)
    preds = grid.values[idx]
    y = np.asarray(y, dtype=float)
    best, best_t = math.inf, 0.5
    for j, t in enumerate(cand.tolist()):
        if callable(metric):
            v = float(metric(regression_metrics(y, preds[:, j], regions)))
        else:
            v = metric_value(metric, y, preds[:, j], regions)
        if not math.isfinite(v):
            continue
        if v < best - 1e-12 or (abs(v - best) <= 1e-12 and abs(t - 0.5) < abs(best_t - 0.5)):
            best, best_t = v, t
    return float(best_t)
