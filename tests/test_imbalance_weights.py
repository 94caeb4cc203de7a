"""Sample weights and kernels against the DIR reference formulas (computed independently here)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import convolve1d, gaussian_filter1d
from scipy.signal.windows import triang
from scipy.stats import gaussian_kde

from agesearch.imbalance import kernel_window, sample_weights
from agesearch.imbalance.weights import cap_weights


def test_kernel_windows_match_reference_numbers():
    np.testing.assert_allclose(kernel_window("gaussian", 5, 2), [0.8583, 0.9458, 1, 0.9458, 0.8583], atol=1e-4)
    np.testing.assert_allclose(kernel_window("triang", 5, 2), [1 / 3, 2 / 3, 1, 2 / 3, 1 / 3], atol=1e-12)
    np.testing.assert_allclose(kernel_window("laplace", 5, 2), [0.368, 0.607, 1, 0.607, 0.368], atol=1e-3)
    s = kernel_window("gaussian", 9, 1, normalize="sum")
    assert s.sum() == pytest.approx(1.0) and s.argmax() == 4
    with pytest.raises(ValueError, match="odd"):
        kernel_window("gaussian", 4, 2)
    with pytest.raises(ValueError, match="valid: gaussian"):
        kernel_window("cosine", 5, 2)


def _reference_window(kernel, ks, sigma):
    """agedb-dir utils.get_lds_kernel_window, transcribed."""
    half = (ks - 1) // 2
    if kernel == "gaussian":
        base = [0.0] * half + [1.0] + [0.0] * half
        return gaussian_filter1d(base, sigma=sigma) / max(gaussian_filter1d(base, sigma=sigma))
    if kernel == "triang":
        return triang(ks)
    lap = [np.exp(-abs(x) / sigma) / (2.0 * sigma) for x in np.arange(-half, half + 1)]
    return np.asarray(lap) / max(lap)


def _reference_weights(labels, reweight, lds, kernel="gaussian", ks=5, sigma=2, max_target=121):
    """agedb-dir datasets.AgeDB._prepare_weights, transcribed (the 0..120 grid, constant padding)."""
    value = {x: 0 for x in range(max_target)}
    for lab in labels:
        value[min(max_target - 1, int(lab))] += 1
    if reweight == "sqrt_inv":
        value = {k: np.sqrt(v) for k, v in value.items()}
    elif reweight == "inverse":
        value = {k: np.clip(v, 5, 1000) for k, v in value.items()}
    num = [value[min(max_target - 1, int(lab))] for lab in labels]
    if lds:
        sm = convolve1d(np.asarray([v for _, v in value.items()]), weights=_reference_window(kernel, ks, sigma), mode="constant")
        num = [sm[min(max_target - 1, int(lab))] for lab in labels]
    w = [np.float32(1 / x) for x in num]
    scaling = len(w) / np.sum(w)
    return np.array([scaling * x for x in w], dtype=float)


@pytest.fixture(scope="module")
def gappy_ages():
    """Integer ages 18-95: a normal bulk, thin tails, gaps (no 80-82, no 90-92), singletons."""
    rng = np.random.default_rng(3)
    bulk = np.clip(np.round(rng.normal(45, 12, 3000)), 18, 79)
    tail = np.array([83, 83, 84, 86, 87, 89, 93, 95, 18, 18, 19])
    return np.concatenate([bulk, tail]).astype(float)


@pytest.mark.parametrize("method", ["inverse", "sqrt_inv"])
@pytest.mark.parametrize(
    "lds,kernel,ks,sigma",
    [(False, "gaussian", 5, 2), (True, "gaussian", 5, 2), (True, "gaussian", 9, 1), (True, "triang", 5, 2), (True, "laplace", 7, 2)],
)
def test_weights_reproduce_dir_reference(gappy_ages, method, lds, kernel, ks, sigma):
    ref = _reference_weights(gappy_ages, method, lds, kernel, ks, sigma)
    got = sample_weights(gappy_ages, method=method, lds=lds, kernel=kernel, ks=ks, sigma=sigma, padding="constant")
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)
    assert got.mean() == pytest.approx(1.0)


def test_reflect_padding_does_not_inflate_edges(gappy_ages):
    const = sample_weights(gappy_ages, method="sqrt_inv", lds=True, padding="constant")
    refl = sample_weights(gappy_ages, method="sqrt_inv", lds=True, padding="reflect")
    oldest = gappy_ages == 95
    # zero padding divides the edge bin by a smaller smoothed count -> larger relative weight
    assert const[oldest][0] / const.mean() > refl[oldest][0] / refl.mean()
    # reflect mode equals scipy's convolve1d(mode='reflect') over the label range
    counts = np.bincount((gappy_ages - 18).astype(int))
    sm = convolve1d(np.sqrt(counts), _reference_window("gaussian", 5, 2), mode="reflect")
    w = 1 / sm[(gappy_ages - 18).astype(int)]
    np.testing.assert_allclose(refl, w * len(w) / w.sum(), rtol=1e-5)


def test_max_weight_caps_and_keeps_mean_one(gappy_ages):
    w = sample_weights(gappy_ages, method="inverse", lds=True, max_weight=3.0)
    assert w.max() <= 3.0 + 1e-9 and w.mean() == pytest.approx(1.0)
    raw = sample_weights(gappy_ages, method="inverse", lds=True)
    assert raw.max() > 3.0
    # order preserved
    assert np.all(np.diff(w[np.argsort(raw, kind="stable")]) >= -1e-12)
    c = cap_weights(np.array([1.0, 1.0, 10.0]), 1.5)
    np.testing.assert_allclose(c, [0.75, 0.75, 1.5])


def test_train_labels_define_the_histogram(gappy_ages):
    val = np.array([18.0, 45.0, 95.0, 120.0, 5.0])
    w = sample_weights(val, method="sqrt_inv", train_labels=gappy_ages)
    counts = np.bincount((gappy_ages - 18).astype(int))
    idx = np.clip((val - 18).astype(int), 0, len(counts) - 1)
    expect = 1 / np.sqrt(counts[idx])
    np.testing.assert_allclose(w, expect / expect.mean(), rtol=1e-6)


def test_float_ages_and_bin_width():
    y = np.array([20.2, 20.7, 21.4, 24.9, 25.1, 25.3, 25.8, 29.0])
    w = sample_weights(y, method="inverse", bin_width=2.5)  # bins [20,22.5) [22.5,25) [25,27.5) [27.5,30)
    # counts 3,1,3,1 all clipped to 5 -> uniform
    np.testing.assert_allclose(w, 1.0)
    w = sample_weights(y, method="sqrt_inv", bin_width=2.5)
    c = np.array([3, 3, 3, 1, 3, 3, 3, 1.0])
    np.testing.assert_allclose(w, (1 / np.sqrt(c)) / (1 / np.sqrt(c)).mean(), rtol=1e-6)


def test_denseweight_matches_formula(gappy_ages):
    y = gappy_ages
    n = len(y)
    bw = 1.06 * np.std(y) * n ** -0.2
    kde = gaussian_kde(y, bw_method=bw / np.std(y, ddof=1))
    p = kde(y)
    p = (p - p.min()) / (p.max() - p.min())
    for alpha in (0.5, 1.0, 2.0):
        expect = np.maximum(1 - alpha * p, 1e-6)
        expect /= expect.mean()
        np.testing.assert_allclose(sample_weights(y, method="denseweight", alpha=alpha), expect, rtol=1e-6)
    np.testing.assert_allclose(sample_weights(y, method="denseweight", alpha=0.0), 1.0)


def test_bad_inputs_fail_with_precise_messages():
    y = np.array([20.0, 30.0])
    with pytest.raises(ValueError, match="valid: none, inverse, sqrt_inv, denseweight"):
        sample_weights(y, method="inv")
    with pytest.raises(ValueError, match="max_weight must be >= 1"):
        sample_weights(y, method="inverse", max_weight=0.5)
    with pytest.raises(ValueError, match="NaN"):
        sample_weights(np.array([1.0, np.nan]), method="inverse")
    with pytest.raises(ValueError, match="padding"):
        sample_weights(y, method="inverse", lds=True, padding="wrap")
    np.testing.assert_allclose(sample_weights(y, method="none"), 1.0)
