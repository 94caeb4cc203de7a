"""Test-split metrics with bootstrap confidence intervals, and paired comparisons on the same rows.

Predictions are held as a long table (:func:`predictions_frame`): one row per (model, seed, repeat,
test row) with the true age, the prediction and the row's region. Every statistic here is computed
from that table, so more seeds or repeated splits (issue: repeated evaluation) only add rows.

Bootstrap: ``B`` resamples of the test rows (with replacement) are drawn ONCE as a count matrix
``(B, n)``; every model's metric on resample ``b`` is the count-weighted metric, so models are
compared on the SAME resamples (a paired bootstrap). A model's value is the mean over its seeds of
the per-seed metric; the interval is the percentile interval of that mean over resamples (it
reflects test-row noise; the seed spread is reported separately as ``seed_sd``).
"""

from __future__ import annotations

import math
import warnings
from typing import Iterable

import numpy as np
import pandas as pd

from agesearch.metrics import GM_EPS, HIGHER_IS_BETTER
from agesearch.regions import REGIONS

METRICS: tuple[str, ...] = ("mae", "rmse", "pearson", "gm")
REGION_ALL = "all"


def predictions_frame(
    model: str, seed: int, y: np.ndarray, pred: np.ndarray, region: np.ndarray, *, repeat: int = 0,
    row: np.ndarray | None = None, lower: np.ndarray | None = None, upper: np.ndarray | None = None,
) -> pd.DataFrame:
    """Long per-row predictions of one fitted model on the test rows."""
    n = len(y)
    df = pd.DataFrame(
        {
            "model": model,
            "seed": np.int64(seed),
            "repeat": np.int64(repeat),
            "row": np.arange(n, dtype=np.int64) if row is None else np.asarray(row, dtype=np.int64),
            "y": np.asarray(y, dtype=float),
            "pred": np.asarray(pred, dtype=float),
            "region": np.asarray(region).astype(str),
        }
    )
    if lower is not None and upper is not None:
        df["lower"] = np.asarray(lower, dtype=float)
        df["upper"] = np.asarray(upper, dtype=float)
    return df


def bootstrap_counts(n: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """How often each of ``n`` rows appears in each of ``n_boot`` resamples, shape ``(n_boot, n)``."""
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n)) + (np.arange(n_boot) * n)[:, None]
    return np.bincount(idx.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(np.float64)


def weighted_metrics(y: np.ndarray, pred: np.ndarray, w: np.ndarray) -> dict[str, np.ndarray]:
    """Metrics under row weights.

    Args:
        y, pred: shape ``(n,)``.
        w: row weights (bootstrap counts), shape ``(B, n)``; all-ones gives the plain metrics.

    Returns:
        ``{metric: (B,)}``; NaN where a resample has no row (or < 2 rows / no variance for Pearson).
    """
    err = pred - y
    sw = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {
            "mae": (w @ np.abs(err)) / sw,
            "rmse": np.sqrt((w @ err**2) / sw),
            "gm": np.exp((w @ np.log(np.abs(err) + GM_EPS)) / sw),
        }
        my, mp = (w @ y) / sw, (w @ pred) / sw
        vy = (w @ y**2) / sw - my**2
        vp = (w @ pred**2) / sw - mp**2
        cov = (w @ (y * pred)) / sw - my * mp
        r = cov / np.sqrt(vy * vp)
        distinct = (w > 0).sum(axis=1)
        r[(distinct < 2) | ~(vy > 1e-12) | ~(vp > 1e-12)] = np.nan
        out["pearson"] = np.clip(r, -1.0, 1.0)
    for k in ("mae", "rmse", "gm"):
        out[k][sw == 0] = np.nan
    return out


def _regions_present(region: np.ndarray) -> list[str]:
    present = set(np.unique(region).tolist())
    return [REGION_ALL] + [r for r in REGIONS if r in present]


def _model_matrix(preds: pd.DataFrame, model: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-seed predictions ``(S, n)`` ordered by row, and the seeds."""
    sub = preds[preds["model"] == model]
    seeds = np.sort(sub["seed"].unique())
    wide = sub.pivot_table(index="seed", columns="row", values="pred", aggfunc="first")
    wide = wide.reindex(index=seeds)
    mat = wide.to_numpy(dtype=float)
    if mat.shape[1] != n:
        raise ValueError(f"model {model!r} has predictions for {mat.shape[1]} of {n} test rows")
    return mat, seeds


def evaluate_predictions(
    preds: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0, level: float = 0.95,
    reference: str | None = "vanilla", metrics: Iterable[str] = METRICS,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Point estimates with bootstrap CIs per model/metric/region, and paired differences.

    Args:
        preds: long predictions (:func:`predictions_frame`) of one repeat: every model has the same
            test rows (``row``).
        n_boot: bootstrap resamples.
        level: confidence level of the percentile intervals.
        reference: model to compare every other model with (skipped when absent).

    Returns:
        ``summary`` with columns model, metric, region, n, value, lower, upper, seed_sd, n_seeds;
        ``paired`` with columns model, reference, metric, region, diff, lower, upper, p_value,
        verdict (``better`` / ``worse`` / ``within noise``: whether the interval of the difference
        excludes zero).
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    metrics = tuple(metrics)
    base = preds.drop_duplicates("row").sort_values("row")
    y = base["y"].to_numpy(dtype=float)
    region = base["region"].to_numpy().astype(str)
    n = len(y)
    counts = bootstrap_counts(n, n_boot, seed)
    masks = {r: (np.ones(n, bool) if r == REGION_ALL else region == r) for r in _regions_present(region)}
    alpha = (1 - level) / 2
    boot: dict[tuple[str, str, str], np.ndarray] = {}
    rows = []
    for model in pd.unique(preds["model"]):
        mat, seeds = _model_matrix(preds, model, n)
        for r, m in masks.items():
            if not m.any():
                continue
            w = np.vstack([np.ones((1, int(m.sum()))), counts[:, m]])
            per_seed = [weighted_metrics(y[m], p[m], w) for p in mat]
            for met in metrics:
                vals = np.vstack([ps[met] for ps in per_seed])  # (S, 1 + B)
                point_seeds = vals[:, 0]
                with warnings.catch_warnings():  # all-NaN columns (e.g. Pearson on 1 row) stay NaN
                    warnings.simplefilter("ignore", RuntimeWarning)
                    dist = np.nanmean(vals[:, 1:], axis=0)
                boot[(str(model), met, r)] = dist
                value = float(np.nanmean(point_seeds)) if np.isfinite(point_seeds).any() else math.nan
                lo, hi = _percentiles(dist, alpha)
                rows.append(
                    {
                        "model": str(model), "metric": met, "region": r, "n": int(m.sum()),
                        "value": value, "lower": lo, "upper": hi,
                        "seed_sd": float(np.nanstd(point_seeds)) if len(seeds) > 1 else 0.0,
                        "n_seeds": len(seeds),
                    }
                )
    summary = pd.DataFrame(rows)
    paired = _paired(summary, boot, reference, alpha)
    return summary, paired


def _percentiles(dist: np.ndarray, alpha: float) -> tuple[float, float]:
    d = dist[np.isfinite(dist)]
    if d.size == 0:
        return math.nan, math.nan
    return float(np.quantile(d, alpha)), float(np.quantile(d, 1 - alpha))


def _paired(
    summary: pd.DataFrame, boot: dict[tuple[str, str, str], np.ndarray], reference: str | None, alpha: float
) -> pd.DataFrame:
    cols = ["model", "reference", "metric", "region", "diff", "lower", "upper", "p_value", "verdict"]
    if summary.empty or reference is None or reference not in set(summary["model"]):
        return pd.DataFrame(columns=cols)
    ref = summary[summary["model"] == reference].set_index(["metric", "region"])["value"]
    rows = []
    for rec in summary[summary["model"] != reference].itertuples(index=False):
        key = (rec.metric, rec.region)
        if key not in ref.index:
            continue
        d = boot[(rec.model, rec.metric, rec.region)] - boot[(reference, rec.metric, rec.region)]
        diff = float(rec.value - ref[key])
        lo, hi = _percentiles(d, alpha)
        fin = d[np.isfinite(d)]
        if fin.size:
            p = float(min(1.0, 2 * min((fin <= 0).mean(), (fin >= 0).mean())))
        else:
            p = math.nan
        better_sign = 1.0 if rec.metric in HIGHER_IS_BETTER else -1.0
        if np.isfinite(lo) and (lo > 0 or hi < 0):
            verdict = "better" if np.sign(diff) == better_sign else "worse"
        else:
            verdict = "within noise"
        rows.append(
            {"model": rec.model, "reference": reference, "metric": rec.metric, "region": rec.region,
             "diff": diff, "lower": lo, "upper": hi, "p_value": p, "verdict": verdict}
        )
    return pd.DataFrame(rows, columns=cols)


def per_age_mae(preds: pd.DataFrame, width: float = 1.0) -> pd.DataFrame:
    """Mean absolute error per model and age bin (seeds pooled): columns model, age, mae, n."""
    d = preds.assign(age=np.floor(preds["y"] / width) * width, abs_err=(preds["pred"] - preds["y"]).abs())
    return d.groupby(["model", "age"], sort=True).agg(mae=("abs_err", "mean"), n=("abs_err", "size")).reset_index()


def interval_coverage(preds: pd.DataFrame) -> pd.DataFrame:
    """Share of true ages inside [lower, upper] per model and region (models with intervals only)."""
    if "lower" not in preds.columns:
        return pd.DataFrame(columns=["model", "region", "coverage", "width", "n"])
    d = preds.dropna(subset=["lower", "upper"])
    d = d.assign(inside=(d["y"] >= d["lower"]) & (d["y"] <= d["upper"]), width=d["upper"] - d["lower"])
    both = pd.concat([d, d.assign(region=REGION_ALL)])
    return both.groupby(["model", "region"]).agg(
        coverage=("inside", "mean"), width=("width", "mean"), n=("inside", "size")
    ).reset_index()
