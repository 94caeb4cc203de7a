"""The trade-off table: the best few-shot model allowed by each guard on the overall MAE.

Candidates are the refit configurations, the vanilla reference, and their post-hoc de-biased
variants. For a guard ``eps`` on a metric (``mae`` = overall by default), a candidate is allowed when

    pooled test <metric>(candidate) <= (1 + eps) * pooled test <metric>(vanilla)

using the pooled TEST point estimates (over repeats, seeds and test rows; the same numbers the table
shows). Among the allowed candidates the one with the lowest pooled test few-shot MAE is chosen
(ties: lower overall MAE, then name). Because every guard is checked on the same fixed numbers, the
allowed sets are nested (a looser guard allows a superset), so a looser guard can never give a
worse few-shot MAE: the table is monotone by construction. Vanilla always satisfies every guard
(0% change), so every row has an answer. ``guard_holds_ci`` says whether the guard also holds at the
upper end of the paired 95% interval of the overall-MAE difference (a conservative reading).

Selection on test numbers is descriptive: it answers "what would each guard have bought on held-out
data"; with few candidates its optimism is small, and repeated splits (``--repeats``) keep it in check.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

GUARDS: tuple[float | None, ...] = (0.0, 0.03, 0.05, 0.10, None)
"""Guards of the trade-off table on overall MAE (None = no guard)."""

REGION_COLS = (("many", "mae_many"), ("medium", "mae_medium"), ("few", "mae_few"), ("all", "mae"))


def guard_label(metric: str, eps: float | None) -> str:
    if eps is None:
        return "none"
    region = {"mae": "overall"}.get(metric, metric.replace("mae_", ""))
    return f"{region}:{eps:g} (+{eps * 100:g}%)"


def point_table(summary: pd.DataFrame, models: list[str]) -> pd.DataFrame:
    """Pooled test MAE per model and region: index model, columns ``mae``, ``mae_few``, ..."""
    s = summary[(summary["metric"] == "mae") & summary["model"].isin(models)]
    col = np.where(s["region"] == "all", "mae", "mae_" + s["region"].astype(str))
    wide = s.assign(col=col).pivot_table(index="model", columns="col", values="value", aggfunc="first")
    return wide.reindex([m for m in models if m in wide.index])


def select_under_guard(points: pd.DataFrame, reference: str, eps: float | None, metric: str = "mae") -> str:
    """The candidate with the best few-shot MAE whose ``metric`` is within ``(1 + eps)`` of the
    reference's (``eps=None``: no guard). Falls back to overall MAE when no few-shot rows exist."""
    if reference not in points.index:
        raise ValueError(f"the reference {reference!r} is not among the candidates")
    target = "mae_few" if "mae_few" in points.columns and points["mae_few"].notna().any() else "mae"
    ok = pd.Series(True, index=points.index)
    if eps is not None:
        bound = (1.0 + float(eps)) * float(points.loc[reference, metric])
        ok = points[metric] <= bound + 1e-12
    ok[reference] = True
    cand = points[ok]
    key = pd.DataFrame({"t": cand[target].fillna(math.inf), "a": cand["mae"].fillna(math.inf),
                        "name": cand.index.astype(str)}, index=cand.index)
    return str(key.sort_values(["t", "a", "name"], kind="mergesort").index[0])


def tradeoff_table(
    summary: pd.DataFrame, paired: pd.DataFrame, candidates: list[str], reference: str, *,
    labels: dict[str, str] | None = None, debiased: set[str] | None = None,
    guards: tuple[float | None, ...] = GUARDS, metric: str = "mae",
) -> pd.DataFrame:
    """One row per guard: the chosen candidate, its pooled test MAE per region with CIs, and the
    change against the reference (years, with the paired interval, and percent)."""
    labels, debiased = labels or {}, debiased or set()
    points = point_table(summary, candidates)
    get = summary[summary["metric"] == "mae"].set_index(["model", "region"])
    pr = paired[paired["metric"] == "mae"].set_index(["model", "region"]) if not paired.empty else None
    rows: list[dict[str, Any]] = []
    for eps in guards:
        m = select_under_guard(points, reference, eps, metric)
        row: dict[str, Any] = {"guard": guard_label(metric, eps), "eps": eps, "model": m,
                               "description": labels.get(m, ""), "debiased": m in debiased}
        for region, col in REGION_COLS:
            if (m, region) not in get.index:
                continue
            g = get.loc[(m, region)]
            row[col], row[f"{col}_lower"], row[f"{col}_upper"] = float(g["value"]), float(g["lower"]), float(g["upper"])
            ref = float(get.loc[(reference, region), "value"]) if (reference, region) in get.index else math.nan
            row[f"{col}_change_pct"] = 100.0 * (float(g["value"]) / ref - 1.0) if ref and math.isfinite(ref) else math.nan
            if m == reference:
                row[f"{col}_diff"], row[f"{col}_diff_lower"], row[f"{col}_diff_upper"] = 0.0, 0.0, 0.0
            elif pr is not None and (m, region) in pr.index:
                d = pr.loc[(m, region)]
                row[f"{col}_diff"], row[f"{col}_diff_lower"], row[f"{col}_diff_upper"] = (
                    float(d["diff"]), float(d["lower"]), float(d["upper"]))
        if eps is None:
            row["guard_holds_ci"] = True
        else:
            ref_v = float(points.loc[reference, metric])
            region = "all" if metric == "mae" else metric.replace("mae_", "")
            up = (0.0 if m == reference else float(pr.loc[(m, region), "upper"])
                  if pr is not None and (m, region) in pr.index else math.nan)
            row["guard_holds_ci"] = bool(math.isfinite(up) and up <= eps * ref_v + 1e-12)
        rows.append(row)
    return pd.DataFrame(rows)


def tail_table(summary: pd.DataFrame, models: list[str], labels: dict[str, str] | None = None) -> pd.DataFrame:
    """Few-shot errors split into the low and high tail: MAE and signed mean error (bias) with CIs."""
    labels = labels or {}
    s = summary[summary["region"].isin(["few_low", "few_high"]) & summary["metric"].isin(["mae", "bias"])
                & summary["model"].isin(models)]
    rows = []
    for (model, region), g in s.groupby(["model", "region"], sort=False):
        rec: dict[str, Any] = {"model": model, "description": labels.get(model, ""),
                               "tail": "low" if region == "few_low" else "high", "n": int(g["n"].iloc[0])}
        for met in ("mae", "bias"):
            h = g[g["metric"] == met]
            if not h.empty:
                rec[met], rec[f"{met}_lower"], rec[f"{met}_upper"] = (
                    float(h["value"].iloc[0]), float(h["lower"].iloc[0]), float(h["upper"].iloc[0]))
        rows.append(rec)
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    order = {m: i for i, m in enumerate(models)}
    return out.sort_values(["model", "tail"], key=lambda c: c.map(order) if c.name == "model" else c.map({"low": 0, "high": 1}),
                           kind="mergesort").reset_index(drop=True)
