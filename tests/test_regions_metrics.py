"""Bins, regions and metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agesearch.metrics import gm, per_bin_mae, regression_metrics
from agesearch.regions import AgeBins, Regions, RegionSpec


def test_bins_integer_and_float_ages():
    b = AgeBins.from_labels(np.array([20, 21, 25.0]), 1.0)
    assert b.origin == 20 and b.n_bins == 6
    np.testing.assert_array_equal(b.assign([20, 20.9, 21, 25, 26]), [0, 0, 1, 5, 5])
    b2 = AgeBins.from_labels(np.array([0.3, 4.9]), 2.5)
    assert b2.origin == 0 and b2.n_bins == 2
    np.testing.assert_array_equal(b2.assign([0.3, 2.5, 4.9]), [0, 1, 1])
    with pytest.raises(ValueError, match="positive"):
        AgeBins.from_labels(np.array([1.0]), 0)


def test_regions_absolute_thresholds_and_zero():
    bins = AgeBins(width=1.0, origin=0.0, n_bins=4)
    # counts per bin: 150 (many), 50 (medium), 5 (few), 0 (zero)
    y = np.repeat([0.5, 1.5, 2.5], [150, 50, 5])
    r = Regions.from_train(y, bins)
    assert list(r.bin_region) == ["many", "medium", "few", "zero"]
    assert list(r.of(np.array([0.2, 1.2, 2.2, 3.2, 99.0, -5.0]))) == [
        "many", "medium", "few", "zero", "zero", "zero"
    ]
    # boundaries: exactly 100 is medium, exactly 20 is medium
    y2 = np.repeat([0.5, 1.5, 2.5], [100, 20, 19])
    assert list(Regions.from_train(y2, bins).bin_region[:3]) == ["medium", "medium", "few"]


def test_regions_tertile_mode():
    bins = AgeBins(width=1.0, origin=0.0, n_bins=7)
    y = np.repeat(np.arange(6) + 0.5, [1, 2, 3, 4, 5, 6])
    r = Regions.from_train(y, bins, RegionSpec(mode="tertile"))
    assert list(r.bin_region) == ["few", "few", "medium", "medium", "many", "many", "zero"]


def test_region_spec_validation():
    with pytest.raises(ValueError, match="few <= many"):
        RegionSpec(many=10, few=20)
    with pytest.raises(ValueError, match="mode"):
        RegionSpec(mode="quartile")


def test_metrics_hand_computed():
    y = np.array([10.0, 20.0, 30.0, 40.0])
    p = np.array([12.0, 20.0, 27.0, 44.0])
    reg = np.array(["many", "many", "few", "few"])
    m = regression_metrics(y, p, reg)
    assert m["mae"] == pytest.approx((2 + 0 + 3 + 4) / 4)
    assert m["rmse"] == pytest.approx(math.sqrt((4 + 0 + 9 + 16) / 4))
    assert m["mae_many"] == pytest.approx(1.0) and m["mae_few"] == pytest.approx(3.5)
    assert m["gm_many"] == pytest.approx(math.sqrt((2 + 1e-3) * 1e-3))
    assert m["pearson"] == pytest.approx(np.corrcoef(y, p)[0, 1])
    assert math.isnan(m["mae_zero"]) and math.isnan(m["gm_medium"]) and m["n_zero"] == 0
    assert math.isnan(m["pearson_few"]) is False


def test_gm_zero_error_does_not_collapse_and_empty_is_nan():
    assert gm(np.array([1.0, 2.0]), np.array([1.0, 3.0])) > 0
    assert math.isnan(gm(np.array([]), np.array([])))


def test_per_bin_mae():
    bins = AgeBins(width=10.0, origin=0.0, n_bins=3)
    out = per_bin_mae(np.array([1.0, 5.0, 15.0]), np.array([2.0, 8.0, 15.0]), bins)
    np.testing.assert_allclose(out[:2], [2.0, 0.0])
    assert math.isnan(out[2])
