"""A guarded search (issue: trade-off aware search) with a real Ray and Optuna."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from agesearch.objective import INFEASIBLE
from tests.test_search_ray import ray_local, tiny_frame, tiny_space  # noqa: F401  (fixture)

pytestmark = [pytest.mark.ray]


def test_guarded_search_ranks_every_feasible_trial_above_every_infeasible_one(ray_local, tmp_path):  # noqa: F811
    from agesearch.search import load_trials, search

    sp = tiny_space(
        max_epochs=3,
        strategy={"type": "categorical", "choices": ["none", "inverse", "sqrt_inv"]},
        lr={"type": "float", "low": 1e-4, "high": 3e-2, "log": True},
    )
    res = search(data=tiny_frame(), space=sp, name="guarded", storage=tmp_path, num_samples=6,
                 cpus_per_trial=1, max_concurrent=2, seed=0, progress=False, guard="overall:0.03")  # fmt: skip
    meta = json.loads((Path(res.experiment) / "experiment.json").read_text())
    g = meta["guard"]
    assert g["metric"] == "mae" and g["eps"] == 0.03 and g["reference"] > 0
    bound = (1 + g["eps"]) * g["reference"]
    trials, _ = load_trials(res.experiment)
    ref = trials[trials["is_reference"]]
    assert len(ref) == 1 and int(ref["number"].iloc[0]) == 0
    done = trials[trials["status"] == "COMPLETE"].sort_values("score")
    feasible = (done["val/mae"] <= bound + 1e-9).tolist()
    # lexicographic: once an infeasible trial appears in the ranking, no feasible one follows
    assert feasible == sorted(feasible, reverse=True), done[["score", "val/mae"]]
    for _, row in done.iterrows():
        if row["val/mae"] <= bound + 1e-9:
            assert row["score"] == pytest.approx(row["val/mae_few"])
        else:
            assert row["score"] > INFEASIBLE
    assert all(math.isfinite(s) for s in done["score"])


def test_guard_validation_in_space():
    from agesearch.search import SearchSpace
    from agesearch.search.space import SpaceError

    with pytest.raises(SpaceError, match="REGION:EPS"):
        SearchSpace.from_dict({"metric": "mae_few", "guard": "overall", "params": {"lr": [0.001]}}).validate()
    with pytest.raises(SpaceError, match="minimised metric"):
        SearchSpace.from_dict({"metric": "pearson", "guard": "overall:0.05", "params": {"lr": [0.001]}}).validate()
    sp = SearchSpace.from_dict({"metric": "mae_few", "guard": "many:0.1", "params": {"lr": [0.001]}}).validate()
    assert sp.to_dict()["guard"] == "many:0.1"
