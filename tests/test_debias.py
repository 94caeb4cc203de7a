"""Post-hoc tail de-biasing."""

from __future__ import annotations

import numpy as np
import pytest

from agesearch.debias import TailDebiaser
from agesearch.regions import AgeBins, Regions


def _toy(n=2000, seed=0):
    """A model that regresses towards the mean: pred = 0.6 * age + 0.4 * 50 + noise."""
    rng = np.random.default_rng(seed)
    y = np.clip(rng.normal(50, 15, n), 18, 95).round()
    pred = 0.6 * y + 20 + rng.normal(0, 3, n)
    regions = Regions.from_train(y, AgeBins.from_labels(y)).of(y)
    return y, pred, regions


def test_strength_zero_is_identity():
    y, p, _ = _toy()
    d = TailDebiaser(strength=0.0).fit(p, y)
    np.testing.assert_allclose(d.transform(p), p)


@pytest.mark.parametrize("method", ["linear", "isotonic"])
def test_full_strength_removes_validation_slope(method):
    y, p, _ = _toy()
    slope_before = np.polyfit(y, p, 1)[0]
    d = TailDebiaser(method=method, strength=1.0).fit(p, y)
    slope_after = np.polyfit(y, d.transform(p), 1)[0]
    assert slope_before == pytest.approx(0.6, abs=0.02)
    assert slope_after == pytest.approx(1.0, abs=0.03 if method == "linear" else 0.08)


def test_auto_respects_guard_and_helps_the_tail():
    y, p, reg = _toy()
    base_all = np.mean(np.abs(p - y))
    base_few = np.mean(np.abs(p - y)[reg == "few"])
    d = TailDebiaser(strength="auto", guard=0.03).fit(p, y, reg)
    assert 0.0 < d.strength_ < 1.0
    chosen = [s for s in d.scan_ if s["strength"] == d.strength_][0]
    assert chosen["ok"] and chosen["mae"] <= 1.03 * base_all + 1e-9  # guard on cross-fitted rows
    assert chosen["mae_few"] < base_few
    # a looser guard never chooses a weaker tail correction
    loose = TailDebiaser(strength="auto", guard=0.5).fit(p, y, reg)
    assert loose.strength_ >= d.strength_
    none = TailDebiaser(strength="auto", guard=None).fit(p, y, reg)
    assert none.strength_ >= loose.strength_


def test_round_trip_and_validation():
    y, p, reg = _toy(300)
    d = TailDebiaser(method="isotonic", strength="auto").fit(p, y, reg)
    d2 = TailDebiaser.from_dict(d.to_dict())
    np.testing.assert_allclose(d.transform(p), d2.transform(p))
    with pytest.raises(ValueError, match="strength"):
        TailDebiaser(strength=1.5)
    with pytest.raises(ValueError, match="regions"):
        TailDebiaser(strength="auto").fit(p, y)
    with pytest.raises(RuntimeError, match="before fit"):
        TailDebiaser().transform(p)


def test_trial_debias_composes_and_checkpoints(synthetic_small, tmp_path):
    from agesearch.trainer import Trial
    from tests.conftest import TINY

    cfg = {**TINY, "max_epochs": 4, "debias": "linear", "debias_strength": 1.0}
    t = Trial(cfg, synthetic_small, threads=1).fit()
    assert t.debiaser is not None and t.debiaser.strength_ == 1.0
    y = synthetic_small.y["val"]
    raw, fixed = t.predict("val", debiased=False), t.predict("val")
    assert np.polyfit(y, fixed, 1)[0] == pytest.approx(1.0, abs=1e-6)  # in-sample: exact
    assert np.polyfit(y, raw, 1)[0] < 0.95
    m = t.fit_debias()
    assert m is not None and m["debias_strength"] == 1.0 and np.isfinite(m["mae_few"])
    path = t.save(tmp_path / "c.pt")
    t2 = Trial(cfg, synthetic_small, threads=1)
    t2.load(path)
    np.testing.assert_allclose(t2.predict("val"), fixed, rtol=1e-6)
