"""Report with real refits on Ray, from a contract-shaped experiment of real (tiny) trials.

The search module is not needed here: the trials table is produced by running real
:class:`~agesearch.trainer.Trial` objects and writing the contract's columns; the experiment folder
holds ``experiment.json`` and ``data/`` exactly as the search writes them.
"""

from __future__ import annotations

import json

import numpy as np
import optuna
import pandas as pd
import pytest

from agesearch import load_model
from agesearch.data import load_table, prepare
from agesearch.datasets import synthetic
from agesearch.report import Experiment, build_report
from agesearch.trainer import Trial
from tests.conftest import TINY

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    root = tmp_path_factory.mktemp("exp") / "tiny"
    df = synthetic(400, seed=3).drop(columns=["id"]).rename(columns={"albumin": "<script>"})
    data = prepare(load_table(df, "age"), seed=0)
    data.save(root / "data")
    (root / "experiment.json").write_text(json.dumps(
        {"name": "tiny <exp>", "status": "interrupted", "metric": "mae_few", "mode": "min", "num_samples": 5}))
    configs = [
        {"strategy": "none", "head": "regression", "loss": "l1", "lr": 3e-3},
        {"strategy": "none", "head": "regression", "loss": "mse", "lr": 3e-3},
        {"strategy": "none", "head": "regression", "loss": "huber", "lr": 1e-3},
        {"strategy": "none", "head": "regression", "loss": "l1", "lr": 1e-2},
    ]
    rows = []
    for i, c in enumerate(configs):
        cfg = {**TINY, "max_epochs": 2, "patience": 2, **c}
        tr = Trial(cfg, data.without("test"), threads=1)
        tr.fit()
        m = tr.evaluate("val", best=True)
        status = "PRUNED" if i == 3 else "COMPLETE"
        rows.append({"trial_id": f"t{i}", "number": i, "status": status,
                     "reason": "pruned by median pruner at epoch 1" if status == "PRUNED" else None,
                     "is_reference": i == 0, "epochs": tr.epoch, "best_epoch": tr.best_epoch,
                     "score": m["mae_few"], **{f"val/{k}": v for k, v in m.items()},
                     **{f"config/{k}": v for k, v in cfg.items()}, "checkpoint": None})
    trials = pd.DataFrame(rows)
    exp = Experiment(meta=json.loads((root / "experiment.json").read_text()), trials=trials, path=root)
    return exp, df, data


@pytest.fixture(scope="module")
def report(experiment, tmp_path_factory, ray_session):
    exp, df, data = experiment
    out = tmp_path_factory.mktemp("report")
    res = build_report(exp, out, refit_top=2, seeds=2, n_boot=200, progress=None)
    return res, out


def test_ranking_and_refit_results(report, experiment):
    res, out = report
    exp, _, _ = experiment
    ranked = pd.read_csv(out / "ranking.csv")
    comp = exp.trials[exp.trials["status"] == "COMPLETE"].sort_values(["score", "val/mae"])
    assert ranked["trial_id"].tolist()[:3] == comp["trial_id"].tolist()
    assert ranked["trial_id"].iloc[-1] == "t3"  # pruned: partial score, ranked last
    tm = pd.read_csv(out / "test_metrics.csv")
    # top 2 non-reference completed configs + vanilla (+ their post-hoc de-biased variants) + 4 baselines
    assert set(tm["model"]) == {"rank1", "rank2", "vanilla", "rank1+debias", "rank2+debias", "vanilla+debias",
                                "baseline:mean", "baseline:ridge", "baseline:hgb", "baseline:hgb_weighted"}
    fin = tm.dropna(subset=["value", "lower"])
    assert len(fin) > 20
    assert (fin["lower"] <= fin["value"]).all() and (fin["value"] <= fin["upper"]).all()
    assert (tm.loc[tm["model"] == "rank1", "n_seeds"] == 2).all()
    paired = pd.read_csv(out / "paired.csv")
    assert set(paired["verdict"]) <= {"better", "worse", "within noise"}
    assert "vanilla" not in set(paired["model"])
    preds = pd.read_parquet(out / "predictions.parquet")
    n_test = len(experiment[2].y["test"])
    assert len(preds[preds["model"] == "rank1"]) == 2 * n_test
    # mean predictor is the training mean
    mean_pred = preds.loc[preds["model"] == "baseline:mean", "pred"].unique()
    assert mean_pred == pytest.approx([experiment[2].y["train"].mean()])


def test_strategy_table_study_and_html(report):
    res, out = report
    fam = pd.read_csv(out / "families.csv")
    assert set(fam["loss"]) == {"l1", "mse", "huber"} and fam["n_trials"].sum() == 4
    st = pd.read_csv(out / "strategies.csv")
    assert st.loc[0, "strategy"] == "none" and st.loc[0, "n_complete"] == 3 and st.loc[0, "n_pruned"] == 1
    study = optuna.load_study(study_name="tiny <exp>", storage=f"sqlite:///{out / 'study.sqlite3'}")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE", "COMPLETE", "PRUNED"]
    html = (out / "index.html").read_text()
    assert "<script" not in html.lower() and "&lt;script&gt;" in html
    assert "interrupted" in html and "data:image/png;base64," in html
    md = (out / "report.md").read_text()
    assert "<script" not in md
    for f in ("age_histogram.png", "history.png", "per_age_mae.png", "by_strategy.png"):
        assert (out / "figures" / f).stat().st_size > 1000


def test_exported_model_reproduces_refit_predictions(report, experiment):
    res, out = report
    _, df, data = experiment
    model = load_model(out / "model")
    seed = model.meta["info"]["refit_seed"]
    test_rows = df.iloc[data.rows["test"]]
    got = model.predict(test_rows)
    assert list(got.columns)[0] == "predicted_age" and got.index.equals(test_rows.index)
    if "age_lower" in got:  # heads with intervals (regression: split-conformal, see heads section)
        assert (got["age_lower"] <= got["predicted_age"]).all()
        assert (got["predicted_age"] <= got["age_upper"]).all()
    preds = pd.read_parquet(out / "predictions.parquet")
    want = preds[(preds["model"] == "rank1") & (preds["seed"] == seed)].sort_values("row")["pred"].to_numpy()
    np.testing.assert_allclose(got["predicted_age"].to_numpy(), want, rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match="missing from the data"):
        model.predict(test_rows.drop(columns=["<script>"]))
