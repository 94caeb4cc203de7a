"""Resampling of the training split (after preprocessing, seeded, vectorised).

* :func:`random_over_under` - random oversampling of rare bins / undersampling of many-shot bins,
  to a target count per populated bin.
* :func:`smote_resample` - SMOTER (Torgo et al. 2013), SMOGN (Branco et al. 2017; reference
  package ``smogn``) and a Borderline variant: a relevance function over ``y`` splits the sorted
  labels into rare and frequent "bumps"; rare bumps are oversampled with synthetic rows that
  interpolate features AND target between a seed and one of its ``k`` nearest neighbours in the
  same bump (target by inverse-distance weighting, so it lies between the two targets); SMOGN
  uses Gaussian noise instead when the neighbour is farther than half the seed's median distance
  to the bump; frequent bumps are optionally undersampled. Categorical values come from the seed
  or the neighbour.
* :func:`jitter_oversample` - duplicate rare rows with small Gaussian noise on numeric features,
  label unchanged.

Everything returns a :class:`Resampled` that says where each output row comes from.

Differences from the ``smogn`` package (which is row-by-row pandas): neighbours come from
scikit-learn ``NearestNeighbors`` on an HEOM-equivalent embedding (numeric features divided by
their training range, categoricals one-hot scaled by 1/sqrt(2), so a mismatch adds 1 to the
squared distance); the median distance per seed uses at most 512 bump rows; the inverse-distance
target uses the full distance (the package uses the last numeric feature only, a known bug); the
noisy target is clipped to the bump's range; noisy rows keep the seed's categories.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import PchipInterpolator
from sklearn.neighbors import NearestNeighbors

from agesearch.regions import AgeBins

RELEVANCE_METHODS: tuple[str, ...] = ("counts", "boxplot")
SMOTE_METHODS: tuple[str, ...] = ("smoter", "smogn", "borderline")
BIN_TARGETS: tuple[str, ...] = ("mean", "median", "max", "min")
MEDIAN_SAMPLE = 512


@dataclass
class Resampled:
    """Resampled training arrays and the provenance of each row.

    Attributes:
        x_num ``(m, n_num)`` float32, x_cat ``(m, n_cat)`` int64, y ``(m,)`` float64,
        y_std ``(m,)`` or None.
        source: original row copied into each output row, ``-1`` for synthetic rows ``(m,)``.
        seed: seed row of each synthetic row, ``-1`` for copies ``(m,)``.
        neighbour: neighbour row used for interpolation, ``-1`` for copies and noisy rows ``(m,)``.
    """

    x_num: np.ndarray
    x_cat: np.ndarray
    y: np.ndarray
    y_std: np.ndarray | None
    source: np.ndarray
    seed: np.ndarray
    neighbour: np.ndarray

    @property
    def synthetic(self) -> np.ndarray:
        """Mask of synthetic rows, ``(m,)`` bool."""
        return self.source < 0


def _copies(x_num, x_cat, y, y_std, idx: np.ndarray) -> Resampled:
    idx = np.asarray(idx, dtype=np.int64)
    neg = np.full(len(idx), -1, dtype=np.int64)
    return Resampled(
        x_num[idx], x_cat[idx], y[idx], None if y_std is None else y_std[idx], idx, neg, neg.copy()
    )


def _concat(parts: list[Resampled]) -> Resampled:
    y_std = None if parts[0].y_std is None else np.concatenate([p.y_std for p in parts])
    return Resampled(
        np.concatenate([p.x_num for p in parts]).astype(np.float32),
        np.concatenate([p.x_cat for p in parts]).astype(np.int64),
        np.concatenate([p.y for p in parts]).astype(np.float64),
        y_std,
        np.concatenate([p.source for p in parts]),
        np.concatenate([p.seed for p in parts]),
        np.concatenate([p.neighbour for p in parts]),
    )


def _check(x_num: np.ndarray, x_cat: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=float).reshape(-1)
    x_num = np.asarray(x_num, dtype=np.float32).reshape(len(y), -1)
    x_cat = np.asarray(x_cat, dtype=np.int64).reshape(len(y), -1)
    if len(y) < 2:
        raise ValueError(f"resampling needs at least 2 training rows, got {len(y)}")
    if not np.all(np.isfinite(y)):
        raise ValueError("resampling needs finite labels; drop NaN/inf targets first")
    return x_num, x_cat, y


# ---------------------------------------------------------------------- random over/under
def bin_target(counts: np.ndarray, target: str | int) -> int:
    """Target rows per populated bin: ``mean|median|max|min`` of the populated counts, or an int."""
    pop = counts[counts > 0]
    if isinstance(target, str):
        if target not in BIN_TARGETS:
            raise ValueError(f"unknown resample_target {target!r}; valid: {', '.join(BIN_TARGETS)} or a count")
        return max(1, int(round(float(getattr(np, target)(pop)))))
    if int(target) != target or target < 1:
        raise ValueError(f"resample_target must be a positive count or one of {BIN_TARGETS}, got {target}")
    return int(target)


def random_over_under(
    x_num: np.ndarray,
    x_cat: np.ndarray,
    y: np.ndarray,
    bins: AgeBins,
    *,
    mode: str,
    target: str | int = "mean",
    y_std: np.ndarray | None = None,
    rng: np.random.Generator,
) -> Resampled:
    """Random oversampling (``mode="over"``: bins below the target gain copies drawn with
    replacement) or undersampling (``mode="under"``: bins above the target keep a random subset)."""
    if mode not in ("over", "under"):
        raise ValueError(f"mode must be 'over' or 'under', got {mode!r}")
    x_num, x_cat, y = _check(x_num, x_cat, y)
    b = bins.assign(y)
    counts = np.bincount(b, minlength=bins.n_bins)
    t = bin_target(counts, target)
    order = np.argsort(b, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)])
    keep: list[np.ndarray] = []
    for k in np.flatnonzero(counts):
        rows = order[starts[k] : starts[k + 1]]
        c = len(rows)
        if mode == "over":
            keep.append(rows)
            if c < t:
                keep.append(rng.choice(rows, size=t - c, replace=True))
        else:
            keep.append(rng.choice(rows, size=t, replace=False) if c > t else rows)
    return _copies(x_num, x_cat, y, y_std, np.sort(np.concatenate(keep)) if mode == "under" else np.concatenate(keep))


# ---------------------------------------------------------------------- relevance and bumps
def boxplot_stats(y: np.ndarray, coef: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """R's ``boxplot.stats`` (as the ``smogn`` package): ``[lo whisker, Q1, median, Q3, hi whisker]``
    (Tukey hinges) and the values outside the whiskers."""
    y = np.sort(np.asarray(y, dtype=float))
    n = len(y)
    med = np.median(y)
    lo_half = y[: (n + 1) // 2]
    hi_half = y[n // 2 :]
    q1, q3 = np.median(lo_half), np.median(hi_half)
    iqr = q3 - q1
    inside = y[(y >= q1 - coef * iqr) & (y <= q3 + coef * iqr)]
    stats = np.array([inside.min(), q1, med, q3, inside.max()])
    return stats, y[(y < stats[0]) | (y > stats[4])]


def relevance(
    y: np.ndarray,
    method: str = "counts",
    *,
    bins: AgeBins | None = None,
    coef: float = 1.5,
) -> np.ndarray:
    """Relevance ``phi(y)`` in [0, 1] of every label, shape ``(n,)``.

    ``counts``: ``1 - count(bin of y) / max bin count`` (rare bins are relevant; works when the
    label distribution has no box-plot outliers, as with most age tables). ``boxplot``: the
    ``smogn`` package's automatic method: control points (low whisker, 1 if there are low
    outliers else 0), (median, 0), (high whisker, 1 if high outliers else 0), monotone cubic
    (PCHIP) interpolation, constant beyond the end points.
    """
    y = np.asarray(y, dtype=float)
    if method == "counts":
        bins = bins or AgeBins.from_labels(y, 1.0)
        counts = bins.counts(y)
        return 1.0 - counts[bins.assign(y)] / counts.max()
    if method == "boxplot":
        stats, out = boxplot_stats(y, coef)
        xs = [stats[0], stats[2], stats[4]]
        ps = [float(np.any(out < stats[0])), 0.0, float(np.any(out > stats[4]))]
        keep = np.concatenate([[True], np.diff(xs) > 0])
        xs, ps = np.asarray(xs)[keep], np.asarray(ps)[keep]
        if len(xs) < 2:
            return np.zeros_like(y)
        f = PchipInterpolator(xs, ps, extrapolate=False)
        phi = f(np.clip(y, xs[0], xs[-1]))
        return np.clip(np.nan_to_num(phi), 0.0, 1.0)
    raise ValueError(f"unknown resample_relevance {method!r}; valid: {', '.join(RELEVANCE_METHODS)}")


def bumps(y: np.ndarray, phi: np.ndarray, threshold: float) -> list[tuple[np.ndarray, bool]]:
    """Contiguous runs of rare (``phi >= threshold``) / frequent labels in sorted ``y``:
    ``[(row indices, is_rare), ...]`` from the smallest label up."""
    order = np.argsort(y, kind="stable")
    rare = phi[order] >= threshold
    cuts = np.flatnonzero(np.diff(rare.astype(np.int8))) + 1
    return [(seg, bool(r[0])) for seg, r in zip(np.split(order, cuts), np.split(rare, cuts))]


# ---------------------------------------------------------------------- SMOTER / SMOGN
def _embedding(x_num: np.ndarray, x_cat: np.ndarray, rng_num: np.ndarray) -> np.ndarray:
    """HEOM-equivalent Euclidean embedding: numeric / range, categoricals one-hot / sqrt(2)."""
    parts = [x_num.astype(np.float64) / rng_num]
    for j in range(x_cat.shape[1]):
        levels, codes = np.unique(x_cat[:, j], return_inverse=True)
        if len(levels) > 1:
            oh = np.zeros((len(codes), len(levels)))
            oh[np.arange(len(codes)), codes] = 1.0 / math.sqrt(2.0)
            parts.append(oh)
    return np.hstack(parts) if parts else np.zeros((len(x_num), 0))


def _knn_within(emb: np.ndarray, k: int) -> np.ndarray:
    """Indices ``(n, k_eff)`` of each row's nearest neighbours (itself excluded) within ``emb``."""
    n = len(emb)
    k_eff = min(k, n - 1)
    if k_eff < 1:
        return np.zeros((n, 1), dtype=np.int64)  # a lone row is its own neighbour
    nn = NearestNeighbors(n_neighbors=k_eff + 1).fit(emb)
    idx = nn.kneighbors(emb, return_distance=False)
    is_self = idx == np.arange(n)[:, None]
    no_self = ~is_self.any(1)
    is_self[no_self, -1] = True  # duplicates can push self out of the list: drop the farthest
    return idx[~is_self].reshape(n, k_eff)


def _heom(a_num, a_cat, b_num, b_cat, rng_num) -> np.ndarray:
    d2 = (((a_num.astype(np.float64) - b_num) / rng_num) ** 2).sum(1)
    d2 = d2 + (a_cat != b_cat).sum(1)
    return np.sqrt(d2)


def _seed_draw(n_pool: int, n_new: int, rng: np.random.Generator) -> np.ndarray:
    """``n_new`` seeds from a pool of ``n_pool``: every row ``n_new // n_pool`` times, the rest
    drawn without replacement (as the ``smogn`` package)."""
    reps, rem = divmod(n_new, n_pool)
    return np.concatenate([np.repeat(np.arange(n_pool), reps), rng.choice(n_pool, rem, replace=False)]).astype(np.int64)


def _synthesize(
    rows: np.ndarray,
    seeds_local: np.ndarray,
    x_num, x_cat, y, y_std, emb, rng_num, *, k: int, noisy: bool, pert: float,
    rng: np.random.Generator,
) -> Resampled:
    """Synthetic rows from seeds (local indices into ``rows``, the bump)."""
    nb = _knn_within(emb[rows], k)
    m = len(seeds_local)
    s = seeds_local
    nbr_local = nb[s, rng.integers(0, nb.shape[1], size=m)]
    si, ni = rows[s], rows[nbr_local]
    u = rng.random(m)
    xs, xn = x_num[si].astype(np.float64), x_num[ni].astype(np.float64)
    syn_num = xs + u[:, None] * (xn - xs)
    take_n = rng.random((m, x_cat.shape[1])) < 0.5
    syn_cat = np.where(take_n, x_cat[ni], x_cat[si])
    a = _heom(syn_num, syn_cat, xs, x_cat[si], rng_num)
    b = _heom(syn_num, syn_cat, xn, x_cat[ni], rng_num)
    den = a + b
    safe = den > 0
    wa = np.where(safe, b / np.where(safe, den, 1.0), 0.5)  # weight of the seed
    syn_y = np.clip(wa * y[si] + (1 - wa) * y[ni], np.minimum(y[si], y[ni]), np.maximum(y[si], y[ni]))
    syn_std = None if y_std is None else wa * y_std[si] + (1 - wa) * y_std[ni]
    neighbour = ni.copy()
    if noisy:
        # half the median distance from each seed to (a sample of) its bump
        ref = rows if len(rows) <= MEDIAN_SAMPLE else rng.choice(rows, MEDIAN_SAMPLE, replace=False)
        uniq_seeds, inv = np.unique(si, return_inverse=True)
        med = np.empty(len(uniq_seeds))
        for c in range(0, len(uniq_seeds), 2048):
            us = uniq_seeds[c : c + 2048]
            d = np.sqrt(((emb[us][:, None, :] - emb[ref][None, :, :]) ** 2).sum(-1))
            med[c : c + 2048] = np.median(d, axis=1)
        max_dist = med[inv] / 2.0
        d_sn = np.sqrt(((emb[si] - emb[ni]) ** 2).sum(1))
        far = d_sn >= max_dist
        if far.any():
            t_pert = np.minimum(pert, max_dist[far])
            sd_num = x_num[rows].astype(np.float64).std(0)
            sd_y = float(y[rows].std())
            f = int(far.sum())
            syn_num[far] = xs[far] + rng.standard_normal((f, x_num.shape[1])) * sd_num * t_pert[:, None]
            syn_cat[far] = x_cat[si[far]]
            lo, hi = float(y[rows].min()), float(y[rows].max())
            syn_y[far] = np.clip(y[si[far]] + rng.standard_normal(f) * sd_y * t_pert, lo, hi)
            if syn_std is not None:
                syn_std[far] = y_std[si[far]]
            neighbour[far] = -1
    neg = np.full(m, -1, dtype=np.int64)
    return Resampled(syn_num.astype(np.float32), syn_cat.astype(np.int64), syn_y, syn_std, neg, si, neighbour)


def smote_resample(
    x_num: np.ndarray,
    x_cat: np.ndarray,
    y: np.ndarray,
    *,
    method: str = "smogn",
    k: int = 5,
    pert: float = 0.02,
    relevance_method: str = "counts",
    threshold: float = 0.5,
    target: str | float = "balance",
    under: bool = True,
    bins: AgeBins | None = None,
    y_std: np.ndarray | None = None,
    rng: np.random.Generator,
) -> Resampled:
    """SMOTER / SMOGN / Borderline resampling of the training rows.

    Args:
        x_num ``(n, n_num)``, x_cat ``(n, n_cat)``, y ``(n,)``: training rows (preprocessed).
        method: ``smoter`` (interpolation only), ``smogn`` (Gaussian noise for far neighbours),
            ``borderline`` (SMOTER whose seeds are only the rare rows having a non-rare row among
            their ``k`` nearest neighbours in the whole training set).
        k: neighbours (>= 1). pert: SMOGN noise scale as a fraction of each feature's std.
        relevance_method, threshold: :func:`relevance`; rows with ``phi >= threshold`` are rare.
        target: ``balance`` (the ``smogn`` package: every bump resized to ``n / n_bumps``; rare
            bumps only grow, frequent bumps shrink when ``under``) or a factor >= 1 by which every
            rare bump grows (frequent bumps unchanged).
        bins: bins for ``counts`` relevance (default: width 1 over ``y``).
        y_std: optional per-row label uncertainty, interpolated like the label.
    """
    if method not in SMOTE_METHODS:
        raise ValueError(f"unknown resampling method {method!r}; valid: {', '.join(SMOTE_METHODS)}")
    if int(k) != k or k < 1:
        raise ValueError(f"resample_k must be a positive integer, got {k}; use e.g. 5")
    if not 0 <= pert <= 1:
        raise ValueError(f"resample_pert must be in [0, 1], got {pert}; use e.g. 0.02")
    if not 0 < threshold <= 1:
        raise ValueError(f"resample_threshold must be in (0, 1], got {threshold}; use e.g. 0.5")
    if not (target == "balance" or (isinstance(target, (int, float)) and target >= 1)):
        raise ValueError(f"resample_target must be 'balance' or a factor >= 1, got {target!r}")
    x_num, x_cat, y = _check(x_num, x_cat, y)
    n = len(y)
    phi = relevance(y, relevance_method, bins=bins)
    groups = bumps(y, phi, threshold)
    if not any(r for _, r in groups):
        warnings.warn(
            f"{method}: no label has relevance >= {threshold}; nothing to oversample "
            "(lower resample_threshold or use resample_relevance='counts')",
            stacklevel=2,
        )
        return _copies(x_num, x_cat, y, y_std, np.arange(n))
    rng_num = x_num.max(0).astype(np.float64) - x_num.min(0) if x_num.shape[1] else np.zeros(0)
    rng_num = np.where(rng_num > 0, rng_num, 1.0)
    emb = _embedding(x_num, x_cat, rng_num)
    border_ok = None
    if method == "borderline":
        rare_row = phi >= threshold
        nb_all = _knn_within(emb, k)
        border_ok = rare_row & (~rare_row[nb_all]).any(1)
    balance = round(n / len(groups))
    parts: list[Resampled] = []
    for rows, is_rare in groups:
        size = len(rows)
        goal = balance if target == "balance" else (round(size * float(target)) if is_rare else size)
        if not is_rare:
            if target == "balance" and under and size > goal:
                parts.append(_copies(x_num, x_cat, y, y_std, np.sort(rng.choice(rows, goal, replace=False))))
            else:
                parts.append(_copies(x_num, x_cat, y, y_std, rows))
            continue
        parts.append(_copies(x_num, x_cat, y, y_std, rows))
        n_new = goal - size
        if n_new <= 0:
            continue
        pool = np.arange(size)
        if border_ok is not None:
            pool = np.flatnonzero(border_ok[rows])
            if len(pool) == 0:
                warnings.warn(
                    "borderline: a rare bump has no row next to frequent rows; all its rows seed",
                    stacklevel=2,
                )
                pool = np.arange(size)
        seeds = pool[_seed_draw(len(pool), n_new, rng)]
        parts.append(
            _synthesize(rows, seeds, x_num, x_cat, y, y_std, emb, rng_num, k=k,
                        noisy=method == "smogn", pert=pert, rng=rng)
        )
    return _concat(parts)


def jitter_oversample(
    x_num: np.ndarray,
    x_cat: np.ndarray,
    y: np.ndarray,
    *,
    sigma: float = 0.05,
    relevance_method: str = "counts",
    threshold: float = 0.5,
    target: str | float = "balance",
    bins: AgeBins | None = None,
    y_std: np.ndarray | None = None,
    rng: np.random.Generator,
) -> Resampled:
    """Duplicate rare rows with Gaussian noise ``N(0, (sigma * std_f)^2)`` on each numeric feature
    ``f`` (std over the training rows); label, label uncertainty and categoricals unchanged.
    Rare rows and how many copies: as :func:`smote_resample` (no undersampling)."""
    if not 0 <= sigma <= 1:
        raise ValueError(f"resample_jitter must be in [0, 1], got {sigma}; use e.g. 0.05")
    if not (target == "balance" or (isinstance(target, (int, float)) and target >= 1)):
        raise ValueError(f"resample_target must be 'balance' or a factor >= 1, got {target!r}")
    x_num, x_cat, y = _check(x_num, x_cat, y)
    phi = relevance(y, relevance_method, bins=bins)
    groups = bumps(y, phi, threshold)
    balance = round(len(y) / len(groups))
    sd = x_num.astype(np.float64).std(0)
    parts = [_copies(x_num, x_cat, y, y_std, np.arange(len(y)))]
    for rows, is_rare in groups:
        if not is_rare:
            continue
        goal = balance if target == "balance" else round(len(rows) * float(target))
        if goal <= len(rows):
            continue
        src = rows[_seed_draw(len(rows), goal - len(rows), rng)]
        noisy = x_num[src] + rng.standard_normal((len(src), x_num.shape[1])) * sd * sigma
        neg = np.full(len(src), -1, dtype=np.int64)
        parts.append(Resampled(noisy.astype(np.float32), x_cat[src], y[src],
                               None if y_std is None else y_std[src], neg, src, neg.copy()))
    return _concat(parts)
