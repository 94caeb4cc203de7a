"""Fair ranking of trials, the Pareto front of overall vs few-shot MAE, and the strategy summary.

A pruned (or still running) trial's score is the metric at the epoch it stopped, i.e. a partial
score: it is never compared with final scores. Trials are ranked in groups: COMPLETE first (by
score, ties by validation overall MAE), then PRUNED, RUNNING, PENDING (same keys, flagged
``comparable=False``), then FAILED. Everything is vectorised (sorting and groupby), so 10,000 trials
take milliseconds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from agesearch.report.experiment import STATUSES

TIE_BREAK = "val/mae"
"""Secondary ranking key: validation overall MAE (lower is better)."""

GROUP_LABELS = {
    "COMPLETE": "final",
    "PRUNED": "partial (pruned)",
    "RUNNING": "partial (running)",
    "PENDING": "not started",
    "FAILED": "failed",
}


def rank_trials(trials: pd.DataFrame, mode: str = "min") -> pd.DataFrame:
    """Trials sorted best first, with ``rank`` (1 = best), ``group`` and ``comparable`` columns.

    Args:
        trials: the contract's trials table.
        mode: ``min`` or ``max`` (direction of ``score``).
    """
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    t = trials.copy()
    group = t["status"].map({s: i for i, s in enumerate(STATUSES)}).fillna(len(STATUSES))
    key = t["score"].astype(float) * (1.0 if mode == "min" else -1.0)
    tie = t[TIE_BREAK].astype(float) if TIE_BREAK in t.columns else pd.Series(0.0, index=t.index)
    order = pd.DataFrame(
        {
            "_g": group.to_numpy(),
            "_nan": key.isna().to_numpy(),
            "_k": key.fillna(np.inf).to_numpy(),
            "_t": tie.fillna(np.inf).to_numpy(),
            "_n": t["number"].to_numpy(),
        },
        index=t.index,
    ).sort_values(["_g", "_nan", "_k", "_t", "_n"], kind="mergesort")
    t = t.loc[order.index].reset_index(drop=True)
    t.insert(0, "rank", np.arange(1, len(t) + 1))
    t.insert(1, "group", t["status"].map(GROUP_LABELS).fillna("other"))
    t.insert(2, "comparable", (t["status"] == "COMPLETE") & t["score"].notna())
    return t


def top_configurations(ranked: pd.DataFrame, k: int, *, include_reference: bool = False) -> pd.DataFrame:
    """The best ``k`` comparable (COMPLETE) trials; falls back to partial ones when none completed."""
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    pool = ranked[ranked["comparable"]]
    if pool.empty:
        pool = ranked[ranked["score"].notna() & (ranked["status"] != "FAILED")]
    if not include_reference:
        pool = pool[~pool["is_reference"]]
    return pool.head(k)


def pareto_front(trials: pd.DataFrame, x: str = TIE_BREAK, y: str = "val/mae_few") -> pd.Series:
    """Boolean mask of COMPLETE trials on the Pareto front of minimising ``x`` and ``y``.

    A trial is on the front when no other completed trial is at least as good on both and strictly
    better on one. O(n log n): sort by ``x`` then ``y``, keep points whose ``y`` beats the running
    minimum of all points before them.
    """
    mask = pd.Series(False, index=trials.index)
    if x not in trials.columns or y not in trials.columns:
        return mask
    ok = (trials["status"] == "COMPLETE") & trials[x].notna() & trials[y].notna()
    sub = trials.loc[ok, [x, y]].astype(float).sort_values([x, y], kind="mergesort")
    if sub.empty:
        return mask
    yv = sub[y].to_numpy()
    prev_min = np.concatenate([[np.inf], np.minimum.accumulate(yv)[:-1]])
    keep = yv < prev_min
    mask.loc[sub.index[keep]] = True
    return mask


def strategy_summary(trials: pd.DataFrame, by: list[str], metric: str = "val/mae_few") -> pd.DataFrame:
    """Per value of the ``by`` configuration columns: trials tried, states, best and median metric.

    Best and median use COMPLETE trials only (partial scores are not final); ``n_trials`` counts
    every trial that tried the value. Columns missing from ``trials`` are skipped; an empty frame
    is returned when none of ``by`` exists.
    """
    by = [c for c in by if c in trials.columns]
    if not by:
        return pd.DataFrame()
    col = metric if metric in trials.columns else "score"
    t = trials[by + ["status", col]].copy()
    for c in by:
        t[c] = t[c].astype(object).where(t[c].notna(), "(unset)").astype(str)
    t["_complete"] = t[col].where(t["status"] == "COMPLETE")
    for s in ("COMPLETE", "PRUNED", "FAILED"):
        t[f"_{s}"] = (t["status"] == s).astype(np.int64)
    g = t.groupby(by, sort=False, dropna=False)
    out = pd.DataFrame(
        {
            "n_trials": g.size(),
            "n_complete": g["_COMPLETE"].sum(),
            "n_pruned": g["_PRUNED"].sum(),
            "n_failed": g["_FAILED"].sum(),
            "best": g["_complete"].min(),
            "median": g["_complete"].median(),
        }
    ).reset_index()
    out = out.sort_values(["best", "median"], na_position="last", kind="mergesort").reset_index(drop=True)
    out.columns = [c.split("/", 1)[1] if c.startswith("config/") else c for c in out.columns]
    return out
