"""The guarded search objective."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agesearch.objective import INFEASIBLE, Objective, parse_guard


def test_parse_guard():
    assert parse_guard("overall:0.05") == ("mae", 0.05)
    assert parse_guard("many:0.1") == ("mae_many", 0.1)
    assert parse_guard(None) == (None, None) and parse_guard("none") == (None, None)
    for bad, msg in (("overall", "REGION:EPS"), ("tail:0.1", "not one of"), ("overall:x", "not a number"),
                     ("overall:-1", ">= 0")):
        with pytest.raises(ValueError, match=msg):
            parse_guard(bad)


def test_unguarded_is_the_metric():
    o = Objective("mae_few")
    assert o.score({"mae_few": 3.0, "mae": 99.0}) == 3.0
    assert math.isnan(o.score({"mae_few": float("nan")}))
    assert Objective("pearson").score({"pearson": 0.9}) == -0.9


def test_guard_inactive_until_reference_known():
    o = Objective("mae_few", "mae", 0.05)
    assert o.score({"mae_few": 3.0, "mae": 99.0}) == 3.0
    g = o.with_reference({"mae": 4.0})
    assert g.bound() == pytest.approx(4.2)
    assert g.score({"mae_few": 3.0, "mae": 4.1}) == 3.0
    assert g.score({"mae_few": 1.0, "mae": 4.4}) > INFEASIBLE


@given(
    few_ok=st.floats(0, 200), all_ok=st.floats(0, 4.2),
    few_bad=st.floats(0, 200), all_bad=st.floats(4.2001, 500),
)
def test_feasible_always_ranks_above_infeasible(few_ok, all_ok, few_bad, all_bad):
    g = Objective("mae_few", "mae", 0.05, reference=4.0)
    assert g.score({"mae_few": few_ok, "mae": all_ok}) < g.score({"mae_few": few_bad, "mae": all_bad})


def test_trial_early_stops_on_guarded_score(synthetic_small):
    from agesearch.trainer import Trial
    from tests.conftest import TINY

    obj = Objective("mae_few", "mae", 0.0, reference=1.0)  # unreachable guard: every epoch infeasible
    t = Trial({**TINY, "max_epochs": 3}, synthetic_small, threads=1, objective=obj)
    recs = list(t.run())
    assert all(r["score"] > INFEASIBLE for r in recs)
    # best epoch = the smallest violation = the smallest overall MAE
    assert t.best_epoch == min(range(len(recs)), key=lambda i: recs[i]["mae"]) + 1
