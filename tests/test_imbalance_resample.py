"""Resampling: plausibility of synthetic rows, bump logic, counts, seeding, speed."""

from __future__ import annotations

import time

import numpy as np
import pytest

from agesearch.imbalance import jitter_oversample, random_over_under, relevance, smote_resample
from agesearch.imbalance.resample import boxplot_stats, bumps
from agesearch.regions import AgeBins


def _data(n=3000, d=6, seed=0):
    rng = np.random.default_rng(seed)
    y = np.clip(np.round(rng.normal(45, 12, n)), 18, 90)
    x = (rng.standard_normal((n, d)) + (y[:, None] - 45) / 12).astype(np.float32)
    c = rng.integers(0, 3, (n, 2))
    return x, c, y


def _rare_bump_of(y, phi, thr):
    """Map each row to (lo, hi) of its bump's label range."""
    out = {}
    for rows, rare in bumps(y, phi, thr):
        for r in rows:
            out[r] = (y[rows].min(), y[rows].max(), rare)
    return out


def test_smoter_synthetic_rows_are_plausible():
    x, c, y = _data()
    r = smote_resample(x, c, y, method="smoter", k=5, rng=np.random.default_rng(0))
    syn = r.synthetic
    assert syn.sum() > 100
    s, nb = r.seed[syn], r.neighbour[syn]
    assert (nb >= 0).all()
    lo = np.minimum(x[s], x[nb]) - 1e-5
    hi = np.maximum(x[s], x[nb]) + 1e-5
    assert ((r.x_num[syn] >= lo) & (r.x_num[syn] <= hi)).all()
    # target between seed's and neighbour's, inside the seed's rare bump
    yl = np.minimum(y[s], y[nb]) - 1e-9
    yh = np.maximum(y[s], y[nb]) + 1e-9
    assert ((r.y[syn] >= yl) & (r.y[syn] <= yh)).all()
    phi = relevance(y, "counts", bins=AgeBins.from_labels(y))
    bump = _rare_bump_of(y, phi, 0.5)
    for si, ni, ys in zip(s, nb, r.y[syn]):
        blo, bhi, rare = bump[si]
        assert rare and blo <= ys <= bhi and bump[ni][:2] == (blo, bhi)
    # categoricals from seed or neighbour
    cs = r.x_cat[syn]
    assert ((cs == c[s]) | (cs == c[nb])).all()
    # copies are untouched originals
    cp = ~syn
    np.testing.assert_array_equal(r.x_num[cp], x[r.source[cp]])


def test_smogn_noise_for_far_neighbours_and_balance():
    x, c, y = _data(seed=1)
    # a few rare rows far from everything: their neighbours are far -> Gaussian noise
    x[y >= 75] += np.float32(3.0) * np.sign(np.random.default_rng(1).standard_normal((int((y >= 75).sum()), x.shape[1])))
    r = smote_resample(x, c, y, method="smogn", pert=0.02, rng=np.random.default_rng(0))
    syn = r.synthetic
    noisy = syn & (r.neighbour < 0)
    interp = syn & (r.neighbour >= 0)
    assert noisy.sum() > 0 and interp.sum() > 0
    # noisy rows stay close to their seed (pert 0.02 of the bump's feature std)
    dev = np.abs(r.x_num[noisy] - x[r.seed[noisy]])
    assert dev.max() < 0.02 * 8 * x.std(0).max()
    assert np.isfinite(r.y[noisy]).all()
    # balance: every bump has about n / n_bumps rows
    phi = relevance(y, "counts", bins=AgeBins.from_labels(y))
    groups = bumps(y, phi, 0.5)
    goal = round(len(y) / len(groups))
    origin = np.where(r.source >= 0, r.source, r.seed)
    for rows, rare in groups:
        n_out = np.isin(origin, rows).sum()
        assert n_out == (max(goal, len(rows)) if rare else min(goal, len(rows)))
    # the same seed gives the same rows
    r2 = smote_resample(x, c, y, method="smogn", pert=0.02, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(r.x_num, r2.x_num)


def test_borderline_seeds_touch_frequent_rows():
    x, c, y = _data(seed=2)
    r = smote_resample(x, c, y, method="borderline", k=5, rng=np.random.default_rng(0))
    seeds = np.unique(r.seed[r.synthetic])
    full = smote_resample(x, c, y, method="smoter", k=5, rng=np.random.default_rng(0))
    assert 0 < len(seeds) < len(np.unique(full.seed[full.synthetic]))
    phi = relevance(y, "counts", bins=AgeBins.from_labels(y))
    from agesearch.imbalance.resample import _embedding, _knn_within

    rng_num = np.ptp(x, 0).astype(float)
    nb = _knn_within(_embedding(x, c, rng_num), 5)
    rare = phi >= 0.5
    assert rare[seeds].all() and (~rare[nb[seeds]]).any(1).all()


def test_jitter_keeps_labels_and_categoricals():
    x, c, y = _data(seed=3)
    r = jitter_oversample(x, c, y, sigma=0.05, rng=np.random.default_rng(0))
    syn = r.synthetic
    src = r.seed[syn]
    np.testing.assert_array_equal(r.y[syn], y[src])
    np.testing.assert_array_equal(r.x_cat[syn], c[src])
    d = np.abs(r.x_num[syn] - x[src])
    assert d.max() > 0 and d.mean() < 0.1 * x.std()


@pytest.mark.parametrize("mode", ["over", "under"])
def test_random_over_under_hit_target(mode):
    x, c, y = _data(seed=4)
    bins = AgeBins.from_labels(y)
    r = random_over_under(x, c, y, bins, mode=mode, target="median", rng=np.random.default_rng(0))
    before, after = bins.counts(y), bins.counts(r.y)
    t = int(round(np.median(before[before > 0])))
    pop = before > 0
    if mode == "over":
        np.testing.assert_array_equal(after[pop], np.maximum(before[pop], t))
    else:
        np.testing.assert_array_equal(after[pop], np.minimum(before[pop], t))
        assert len(np.unique(r.source)) == len(r.source)  # no duplicates
    assert (after[~pop] == 0).all()
    with pytest.raises(ValueError, match="resample_target"):
        random_over_under(x, c, y, bins, mode=mode, target="average", rng=np.random.default_rng(0))


def test_boxplot_relevance_like_smogn():
    rng = np.random.default_rng(0)
    y = np.concatenate([rng.uniform(30, 50, 500), [80, 85, 90]])
    stats, out = boxplot_stats(y)
    assert (out > stats[4]).any() and not (out < stats[0]).any()
    phi = relevance(y, "boxplot")
    assert phi[y >= stats[4]].min() == pytest.approx(1.0)
    assert phi[np.argmin(np.abs(y - stats[2]))] < 0.05
    assert (phi[y <= stats[2]] < 1e-9).all()  # no low outliers: low end not relevant


@pytest.mark.slow
def test_smogn_is_fast_on_50k_rows():
    rng = np.random.default_rng(0)
    n, d = 50_000, 20
    y = np.clip(np.round(rng.normal(48, 15, n)), 18, 95)
    x = (rng.standard_normal((n, d)) + (y[:, None] - 48) / 15).astype(np.float32)
    c = np.zeros((n, 0), dtype=np.int64)
    t = time.perf_counter()
    r = smote_resample(x, c, y, method="smogn", rng=np.random.default_rng(0))
    elapsed = time.perf_counter() - t
    assert r.synthetic.sum() > 1000
    assert elapsed < 30, f"SMOGN on 50,000 x 20 took {elapsed:.1f} s"
