"""Report figures as PNG bytes (matplotlib, Agg backend; nothing is shown on screen)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from agesearch.regions import Regions  # noqa: E402

REGION_COLORS = {"many": "#cfe8cf", "medium": "#fbe7b5", "few": "#f7c6c6", "zero": "#dddddd"}


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def _shade_regions(ax, regions: Regions) -> None:
    b = regions.bins
    edges = b.edges
    reg = regions.bin_region
    start = 0
    for i in range(1, b.n_bins + 1):
        if i == b.n_bins or reg[i] != reg[start]:
            ax.axvspan(edges[start], edges[i], color=REGION_COLORS.get(reg[start], "#eeeeee"), alpha=0.6, lw=0)
            start = i


def age_histogram(regions: Regions) -> bytes:
    """Training rows per age bin, background shaded by region."""
    fig, ax = plt.subplots(figsize=(7, 3))
    _shade_regions(ax, regions)
    b = regions.bins
    ax.bar(b.left_edges, regions.train_counts, width=b.width, align="edge", color="#4a6fa5")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in REGION_COLORS.values()]
    ax.legend(handles, list(REGION_COLORS), loc="upper right", fontsize=8, title="region")
    ax.set_xlabel("age (years)")
    ax.set_ylabel("training rows")
    ax.set_title("Training ages and shot regions")
    return _png(fig)


def per_age_mae(table: pd.DataFrame, regions: Regions, labels: dict[str, str]) -> bytes:
    """Test MAE per age for a few models (``table``: model, age, mae, n)."""
    fig, ax = plt.subplots(figsize=(7, 3.4))
    _shade_regions(ax, regions)
    for model, sub in table.groupby("model", sort=False):
        ax.plot(sub["age"], sub["mae"], marker=".", lw=1, label=labels.get(str(model), str(model)))
    ax.set_xlabel("true age (years)")
    ax.set_ylabel("test MAE (years)")
    ax.set_title("Per-age test MAE")
    ax.legend(fontsize=7)
    return _png(fig)


def optimisation_history(ranked: pd.DataFrame, mode: str, metric: str) -> bytes:
    """Score per trial number: completed, pruned (partial scores), best-so-far line."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    t = ranked.sort_values("number")
    comp = t[t["status"] == "COMPLETE"]
    part = t[t["status"].isin(["PRUNED", "RUNNING"])]
    ax.scatter(part["number"], part["score"], s=8, color="#bbbbbb", label="pruned/running (partial)")
    ax.scatter(comp["number"], comp["score"], s=10, color="#4a6fa5", label="complete")
    if not comp.empty:
        acc = np.minimum.accumulate if mode == "min" else np.maximum.accumulate
        ax.step(comp["number"], acc(comp["score"].to_numpy(dtype=float)), where="post", color="#c0392b", label="best so far")
    ref = t[t["is_reference"]]
    if not ref.empty and np.isfinite(ref["score"].iloc[0]):
        ax.axhline(float(ref["score"].iloc[0]), ls="--", color="#555555", lw=1, label="vanilla reference")
    ax.set_xlabel("trial number")
    ax.set_ylabel(f"validation {metric}")
    ax.set_title("Optimisation history")
    ax.legend(fontsize=7)
    return _png(fig)


def metric_by_group(trials: pd.DataFrame, column: str, metric: str) -> bytes:
    """Distribution of a validation metric of COMPLETE trials per value of ``column``."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    t = trials[(trials["status"] == "COMPLETE") & trials[metric].notna()]
    groups = t.groupby(t[column].astype(str), sort=True)[metric] if column in t.columns else []
    names, data = [], []
    for name, s in groups:
        names.append(str(name)[:24])
        data.append(s.to_numpy(dtype=float))
    if data:
        ax.boxplot(data, showfliers=True)
        ax.set_xticks(range(1, len(names) + 1), names, rotation=20, fontsize=8)
    ax.set_ylabel(f"validation {metric.split('/', 1)[-1]}")
    ax.set_title(f"{metric.split('/', 1)[-1]} by {column.split('/', 1)[-1]} (completed trials)")
    return _png(fig)


def coverage_by_region(cov: pd.DataFrame, level: float) -> bytes:
    """Interval coverage per region and model, against the nominal level."""
    fig, ax = plt.subplots(figsize=(7, 3))
    models = list(pd.unique(cov["model"]))
    regions = list(pd.unique(cov["region"]))
    w = 0.8 / max(len(models), 1)
    for i, m in enumerate(models):
        sub = cov[cov["model"] == m].set_index("region").reindex(regions)
        ax.bar(np.arange(len(regions)) + i * w, sub["coverage"], width=w, label=str(m))
    ax.axhline(level, ls="--", color="k", lw=1, label=f"nominal {level:.0%}")
    ax.set_xticks(np.arange(len(regions)) + 0.4 - w / 2, regions)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share of true ages inside interval")
    ax.set_title("Prediction-interval coverage by region (test)")
    ax.legend(fontsize=7)
    return _png(fig)
