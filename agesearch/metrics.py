"""Point metrics overall and per region: MAE, RMSE, Pearson r, GM; and per-bin MAE.

Keys are flat (``mae``, ``mae_few``, ``rmse_many``, ``pearson_zero``, ``gm``, ``n_few`` ...) so a
metrics dict can be reported to Ray Tune, stored in Parquet and compared directly. An empty region
gives NaN, never an exception.
"""

from __future__ import annotations

import math

import numpy as np

from agesearch.regions import REGIONS, AgeBins

GM_EPS = 1e-3
"""Added to absolute errors before the geometric mean: the reference's ``scipy.gmean`` returns 0
as soon as one error is exactly 0 (integer decoders do this)."""


def mae(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(np.abs(p - y))) if len(y) else math.nan


def rmse(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.sqrt(np.mean((p - y) ** 2))) if len(y) else math.nan


def pearson(y: np.ndarray, p: np.ndarray) -> float:
    """Pearson correlation; NaN with fewer than 2 rows or a constant input."""
    if len(y) < 2:
        return math.nan
    ys, ps = np.std(y), np.std(p)
    if ys == 0 or ps == 0:
        return math.nan
    return float(np.mean((y - y.mean()) * (p - p.mean())) / (ys * ps))


def gm(y: np.ndarray, p: np.ndarray, eps: float = GM_EPS) -> float:
    """Geometric mean of absolute errors (plus ``eps``)."""
    if len(y) == 0:
        return math.nan
    return float(np.exp(np.mean(np.log(np.abs(p - y) + eps))))


POINT_METRICS = {"mae": mae, "rmse": rmse, "pearson": pearson, "gm": gm}

HIGHER_IS_BETTER = frozenset({"pearson"})
"""Metric bases where larger is better (all others are errors: smaller is better)."""


def metric_sign(metric: str) -> float:
    """``-1`` for metrics where larger is better (``pearson``, ``pearson_few``), else ``+1``: multiply
    a metric by its sign to get a value to minimise."""
    return -1.0 if metric.split("_")[0] in HIGHER_IS_BETTER else 1.0


def regression_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, regions: np.ndarray | None = None
) -> dict[str, float]:
    """Metrics overall and per region.

    Args:
        y_true: ages, shape ``(n,)``.
        y_pred: predictions, shape ``(n,)``.
        regions: region name of each row (``many``/``medium``/``few``/``zero``), shape ``(n,)``.

    Returns:
        ``{"mae": ..., "rmse": ..., "pearson": ..., "gm": ..., "n": ...}`` plus, when ``regions`` is
        given, the same keys suffixed ``_many``, ``_medium``, ``_few``, ``_zero``.
    """
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred shapes differ: {y_true.shape} vs {y_pred.shape}")
    out: dict[str, float] = {name: fn(y_true, y_pred) for name, fn in POINT_METRICS.items()}
    out["n"] = len(y_true)
    if regions is not None:
        regions = np.asarray(regions)
        for r in REGIONS:
            m = regions == r
            for name, fn in POINT_METRICS.items():
                out[f"{name}_{r}"] = fn(y_true[m], y_pred[m])
            out[f"n_{r}"] = int(m.sum())
    return out


def per_bin_mae(y_true: np.ndarray, y_pred: np.ndarray, bins: AgeBins) -> np.ndarray:
    """MAE per age bin, shape ``(n_bins,)``; NaN for bins without rows."""
    idx = bins.assign(y_true)
    err = np.abs(np.asarray(y_pred, float) - np.asarray(y_true, float))
    s = np.bincount(idx, weights=err, minlength=bins.n_bins)
    c = np.bincount(idx, minlength=bins.n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(c > 0, s / np.maximum(c, 1), np.nan)
