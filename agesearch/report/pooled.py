"""Test metrics pooled over repeated splits and seeds, with a hierarchical (cluster) bootstrap.

Input: the long predictions table (:func:`agesearch.report.stats.predictions_frame`), one row per
(model, seed, repeat, test row). A model's value of a metric in a group of rows (``all``, a region,
or a few-shot tail) is the metric over every (repeat, seed, test row) triple of that group, each
weighted equally. For the MAE this is the mean over seeds of the MAE pooled over the repeats' test
rows (every repeat has the same number of seeds).

Confidence intervals come from a three-level bootstrap that follows how the numbers were produced:

1. draw the repeats (splits) with replacement, shape ``(B, R)`` counts;
2. inside each drawn repeat, draw its test rows with replacement (counts ``(B, n_r)``) and,
   independently per model, its seeds with replacement (counts ``(B, S)``);
3. the weight of a triple is the product of its three counts; the metric is the weighted metric.

So the interval widens with the split-to-split spread (different training, validation and test
rows), the seed spread and the test-row noise. With one repeat, level 1 is a no-op and the interval
is the usual row + seed bootstrap. Repeats and rows are drawn ONCE and shared by every model, so
differences against the reference are paired on the same resampled splits and rows. Intervals are
percentile intervals; in tiny groups the bootstrap distribution can be so skewed that the point
estimate falls outside it, in which case the interval is extended to include it (flagged in
``extended``).
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np
import pandas as pd

from agesearch.metrics import GM_EPS
from agesearch.regions import REGIONS
from agesearch.report.stats import HIGHER_IS_BETTER, METRICS, REGION_ALL, bootstrap_counts

POOLED_METRICS: tuple[str, ...] = METRICS + ("bias",)
"""``bias`` is the signed mean error (prediction minus age; negative = under-predicted)."""

TAILS = ("few_low", "few_high")
_F = 10  # sufficient statistics: 1, |e|, e^2, log|e|, e, y, p, y^2, p^2, y*p


def _stats(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    e = p - y
    return np.stack([np.ones_like(e), np.abs(e), e * e, np.log(np.abs(e) + GM_EPS), e, y, p, y * y, p * p, y * p], axis=1)


def _metrics_from(tot: np.ndarray) -> dict[str, np.ndarray]:
    """Metrics from summed statistics ``(..., _F)``."""
    with np.errstate(invalid="ignore", divide="ignore"):
        w = tot[..., 0]
        mean = tot / w[..., None]
        vy = mean[..., 7] - mean[..., 5] ** 2
        vp = mean[..., 8] - mean[..., 6] ** 2
        cov = mean[..., 9] - mean[..., 5] * mean[..., 6]
        r = np.clip(cov / np.sqrt(vy * vp), -1.0, 1.0)
        r = np.where((vy > 1e-12) & (vp > 1e-12), r, np.nan)
        out = {"mae": mean[..., 1], "rmse": np.sqrt(mean[..., 2]), "gm": np.exp(mean[..., 3]),
               "bias": mean[..., 4], "pearson": r}
    for k in out:
        out[k] = np.where(w > 0, out[k], np.nan)
    return out


def _interval(dist: np.ndarray, value: float, alpha: float) -> tuple[float, float, bool]:
    d = dist[np.isfinite(dist)]
    if d.size == 0 or not math.isfinite(value):
        return math.nan, math.nan, False
    lo, hi = float(np.quantile(d, alpha)), float(np.quantile(d, 1 - alpha))
    extended = value < lo or value > hi
    return min(lo, value), max(hi, value), extended


def _groups(region: np.ndarray, tail: np.ndarray | None) -> dict[str, np.ndarray]:
    present = set(np.unique(region).tolist())
    g = {REGION_ALL: np.ones(len(region), bool)}
    g.update({r: region == r for r in REGIONS if r in present})
    if tail is not None:
        for t in TAILS:
            m = tail == t
            if m.any():
                g[t] = m
    return g


def evaluate_pooled(
    preds: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0, level: float = 0.95,
    reference: str | None = "vanilla", metrics: Iterable[str] = POOLED_METRICS,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pooled point estimates with hierarchical-bootstrap CIs, and paired differences.

    Args:
        preds: long predictions; every model must predict every test row of every repeat it has
            (column ``tail``, optional, marks few-shot rows ``few_low`` / ``few_high``).
        n_boot: bootstrap resamples.
        reference: model every other model is compared with (skipped when absent).

    Returns:
        ``summary``: model, metric, region, n (test rows over repeats), value, lower, upper,
        extended, seed_sd (mean over repeats of the seed standard deviation), split_sd (standard
        deviation over repeats of the per-repeat value), n_seeds, n_repeats.
        ``paired``: model, reference, metric, region, diff, lower, upper, p_value, verdict.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    metrics = tuple(metrics)
    alpha = (1 - level) / 2
    repeats = np.sort(preds["repeat"].unique())
    R = len(repeats)
    rep_counts = np.vstack([np.ones((1, R)), bootstrap_counts(R, n_boot, seed)])  # (B+1, R)
    has_tail = "tail" in preds.columns
    base: dict[int, tuple] = {}
    for i, r in enumerate(repeats):
        b = preds[preds["repeat"] == r].drop_duplicates("row").sort_values("row")
        rows = b["row"].to_numpy()
        tail = b["tail"].astype(object).to_numpy() if has_tail else None
        groups = _groups(b["region"].to_numpy().astype(str), tail)
        cnt = np.vstack([np.ones((1, len(rows))), bootstrap_counts(len(rows), n_boot, seed + 7919 * (i + 1))])
        base[int(r)] = (rows, b["y"].to_numpy(dtype=float), groups, cnt, i)
    all_groups = [REGION_ALL] + [g for g in list(REGIONS) + list(TAILS) if any(g in v[2] for v in base.values())]

    boot: dict[tuple[str, str, str], np.ndarray] = {}
    out_rows = []
    for mi, model in enumerate(pd.unique(preds["model"])):
        sub = preds[preds["model"] == model]
        rng = np.random.default_rng([seed, 104729, mi])
        tot = {g: np.zeros((n_boot + 1, _F)) for g in all_groups}
        per_unit: dict[str, list[tuple[int, np.ndarray]]] = {g: [] for g in all_groups}  # (repeat, point stats)
        n_rows = {g: 0 for g in all_groups}
        seeds_per_rep = []
        for r, part in sub.groupby("repeat", sort=True):
            rows, y, groups, cnt, ri = base[int(r)]
            wide = part.pivot_table(index="seed", columns="row", values="pred", aggfunc="first")
            wide = wide.reindex(columns=rows)
            P = wide.to_numpy(dtype=float)
            if np.isnan(P).any():
                raise ValueError(f"model {model!r} lacks predictions for some test rows of repeat {r}")
            S = P.shape[0]
            seeds_per_rep.append(S)
            seed_cnt = np.vstack([np.ones((1, S)), rng.multinomial(S, np.full(S, 1.0 / S), size=n_boot)])
            for g, m in groups.items():
                n_rows[g] += int(m.sum())
                for s in range(S):
                    st = cnt[:, m] @ _stats(y[m], P[s, m])  # (B+1, F)
                    per_unit[g].append((ri, st[0]))
                    tot[g] += (rep_counts[:, ri] * seed_cnt[:, s])[:, None] * st
        for g in all_groups:
            if n_rows[g] == 0:
                continue
            met = _metrics_from(tot[g])
            units = per_unit[g]
            unit_met = _metrics_from(np.stack([u[1] for u in units]))
            unit_rep = np.array([u[0] for u in units])
            rep_stats = {ri: np.sum([u[1] for u in units if u[0] == ri], axis=0) for ri in np.unique(unit_rep)}
            rep_met = _metrics_from(np.stack(list(rep_stats.values())))
            for name in metrics:
                value = float(met[name][0])
                dist = met[name][1:]
                boot[(str(model), name, g)] = dist
                lo, hi, ext = _interval(dist, value, alpha)
                sds = [np.nanstd(unit_met[name][unit_rep == ri]) for ri in np.unique(unit_rep)
                       if (unit_rep == ri).sum() > 1 and np.isfinite(unit_met[name][unit_rep == ri]).any()]
                rv = rep_met[name][np.isfinite(rep_met[name])]
                out_rows.append({
                    "model": str(model), "metric": name, "region": g, "n": n_rows[g],
                    "value": value, "lower": lo, "upper": hi, "extended": ext,
                    "seed_sd": float(np.mean(sds)) if sds else 0.0,
                    "split_sd": float(np.std(rv)) if rv.size > 1 else 0.0,
                    "n_seeds": int(max(seeds_per_rep)), "n_repeats": len(seeds_per_rep),
                })
    summary = pd.DataFrame(out_rows)
    return summary, _paired(summary, boot, reference, alpha)


def _paired(summary: pd.DataFrame, boot: dict, reference: str | None, alpha: float) -> pd.DataFrame:
    cols = ["model", "reference", "metric", "region", "diff", "lower", "upper", "p_value", "verdict"]
    if summary.empty or reference is None or reference not in set(summary["model"]):
        return pd.DataFrame(columns=cols)
    ref = summary[summary["model"] == reference].set_index(["metric", "region"])["value"]
    rows = []
    for rec in summary[(summary["model"] != reference) & summary["metric"].isin(METRICS)].itertuples(index=False):
        key = (rec.metric, rec.region)
        if key not in ref.index:
            continue
        d = boot[(rec.model, rec.metric, rec.region)] - boot[(reference, rec.metric, rec.region)]
        diff = float(rec.value - ref[key])
        lo, hi, _ = _interval(d, diff, alpha)
        fin = d[np.isfinite(d)]
        p = float(min(1.0, 2 * min((fin <= 0).mean(), (fin >= 0).mean()))) if fin.size else math.nan
        better_sign = 1.0 if rec.metric in HIGHER_IS_BETTER else -1.0
        if math.isfinite(lo) and (lo > 0 or hi < 0):
            verdict = "better" if np.sign(diff) == better_sign else "worse"
        else:
            verdict = "within noise"
        rows.append({"model": rec.model, "reference": reference, "metric": rec.metric, "region": rec.region,
                     "diff": diff, "lower": lo, "upper": hi, "p_value": p, "verdict": verdict})
    return pd.DataFrame(rows, columns=cols)


def add_tails(preds: pd.DataFrame, medians: dict[int, float]) -> pd.DataFrame:
    """Column ``tail``: ``few_low`` / ``few_high`` for few-shot rows below / at-or-above the median
    training age of their repeat (``medians[repeat]``), None elsewhere."""
    med = preds["repeat"].map(medians).to_numpy(dtype=float)
    few = preds["region"].to_numpy() == "few"
    tail = np.where(preds["y"].to_numpy(dtype=float) < med, "few_low", "few_high").astype(object)
    tail[~few] = None
    return preds.assign(tail=tail)
