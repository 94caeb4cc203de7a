"""Report side of the trade-off issue: repeated evaluation, pooled CIs, trade-off table, tails,
de-biased variants. Unit tests on real arrays plus one report built with real Ray refits of real
(tiny) trials on a real CSV file."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agesearch.cli import main
from agesearch.data import load_table, prepare
from agesearch.datasets import synthetic
from agesearch.report import Experiment, build_report
from agesearch.report.pooled import add_tails, evaluate_pooled
from agesearch.report.repeats import default_repeats, prepare_repeats, reload_table, repeat_splits
from agesearch.report.stats import predictions_frame
from agesearch.report.tradeoff import GUARDS, select_under_guard, tradeoff_table
from agesearch.trainer import Trial
from tests.conftest import TINY

# --------------------------------------------------------------------------------------- trade-off


def _summary(vals: dict[str, dict[str, float]]) -> pd.DataFrame:
    rows = []
    for model, per in vals.items():
        for region, v in per.items():
            rows.append({"model": model, "metric": "mae", "region": region, "n": 10, "value": v,
                         "lower": v - 0.5, "upper": v + 0.5})
    return pd.DataFrame(rows)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(1.0, 20.0), st.floats(1.0, 20.0)), min_size=1, max_size=8))
def test_tradeoff_table_is_monotone_and_respects_guard(cands):
    vals = {"vanilla": {"all": 5.0, "few": 10.0, "many": 4.0}}
    for i, (overall, few) in enumerate(cands):
        vals[f"m{i}"] = {"all": overall, "few": few, "many": overall}
    summary = _summary(vals)
    paired = pd.DataFrame(columns=["model", "reference", "metric", "region", "diff", "lower", "upper"])
    t = tradeoff_table(summary, paired, list(vals), "vanilla", debiased={"m0"})
    assert len(t) == len(GUARDS) and t["guard"].iloc[-1] == "none"
    few = t["mae_few"].to_numpy()
    assert np.all(np.diff(few) <= 1e-12)  # looser guard: never worse few-shot MAE
    for _, r in t.iterrows():
        if r["eps"] is not None and r["eps"] == r["eps"]:
            assert r["mae"] <= (1 + r["eps"]) * 5.0 + 1e-9
        # nothing allowed by this guard has a better few-shot MAE
        allowed = [m for m, v in vals.items() if r["eps"] is None or r["eps"] != r["eps"] or v["all"] <= (1 + r["eps"]) * 5.0 + 1e-12]
        assert r["mae_few"] <= min(vals[m]["few"] for m in allowed) + 1e-12
    assert t.loc[t["model"] == "m0", "debiased"].all()


def test_select_under_guard_prefers_feasible_and_falls_back_to_vanilla():
    pts = pd.DataFrame({"mae": [5.0, 5.2, 6.0], "mae_few": [10.0, 8.0, 6.0]}, index=["vanilla", "a", "b"])
    assert select_under_guard(pts, "vanilla", 0.0) == "vanilla"
    assert select_under_guard(pts, "vanilla", 0.05) == "a"
    assert select_under_guard(pts, "vanilla", None) == "b"
    assert select_under_guard(pts, "vanilla", 0.1, metric="mae") == "a"


# --------------------------------------------------------------------------------------- pooled stats


def _toy_preds(R: int, S: int, n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for r in range(R):
        y = rng.uniform(20, 80, n)
        region = np.where(y > 70, "few", "many")
        rows = rng.choice(10_000, n, replace=False)
        for model, noise in (("vanilla", 5.0), ("good", 2.0)):
            for s in range(S):
                frames.append(predictions_frame(model, s, y, y + rng.normal(0, noise, n), region, repeat=r, row=rows))
    return add_tails(pd.concat(frames, ignore_index=True), {r: 50.0 for r in range(R)})


def test_pooled_ci_contains_point_and_pools_all_triples():
    preds = _toy_preds(R=3, S=2, n=40)
    summary, paired = evaluate_pooled(preds, n_boot=200, seed=1)
    fin = summary.dropna(subset=["value", "lower"])
    assert (fin["lower"] <= fin["value"]).all() and (fin["value"] <= fin["upper"]).all()
    assert (summary["n_repeats"] == 3).all() and (summary["n_seeds"] == 2).all()
    g = preds[preds["model"] == "good"]
    want = float((g["pred"] - g["y"]).abs().mean())
    got = summary.query("model == 'good' and metric == 'mae' and region == 'all'")["value"].item()
    assert got == pytest.approx(want)
    assert {"few_low", "few_high"} & set(summary["region"]) == {"few_high"}  # ages > 70 vs median 50
    d = paired.query("model == 'good' and metric == 'mae' and region == 'all'").iloc[0]
    assert d["diff"] < 0 and d["upper"] < 0 and d["verdict"] == "better"
    # repeat-level resampling widens the interval compared with one repeat's rows and seeds only
    one, _ = evaluate_pooled(preds[preds["repeat"] == 0], n_boot=200, seed=1)
    width = lambda s: s.query("model == 'good' and metric == 'mae' and region == 'all'").eval("upper - lower").item()  # noqa: E731
    assert width(summary) < width(one) * 1.5  # 3x the rows: not wider than one repeat by much


# --------------------------------------------------------------------------------------- re-splits


@pytest.fixture(scope="module")
def table_and_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("tab")
    df = synthetic(300, seed=4).drop(columns=["id"])
    csv = root / "data.csv"
    df.to_csv(csv, index=False)
    table = load_table(str(csv), "age")
    data = prepare(table, seed=0)
    return csv, table, data


def test_repeat_splits_disjoint_and_keep_search_split(table_and_data):
    csv, table, data = table_and_data
    splits = repeat_splits(table.y, data, repeats=3, seed=0)
    assert np.array_equal(splits[0].test, data.rows["test"]) and np.array_equal(splits[0].train, data.rows["train"])
    n = len(table.y)
    for sp in splits:
        parts = [set(sp.train.tolist()), set(sp.val.tolist()), set(sp.test.tolist())]
        assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
        assert sum(map(len, parts)) == n
    assert not np.array_equal(splits[1].test, splits[2].test)
    folds = repeat_splits(table.y, data, outer_folds=4, seed=0)
    assert np.array_equal(np.sort(np.concatenate([f.test for f in folds])), np.arange(n))  # each row tested once
    datas = prepare_repeats(table, data, splits)
    assert datas[0] is data
    assert datas[1].regions is data.regions
    assert datas[1].preprocessor.medians_ != data.preprocessor.medians_  # refitted on its own train rows
    assert default_repeats(data) in (1, 5)
    meta = {"data": {"source": str(csv), "target": "age"}}
    assert len(reload_table(meta, data).y) == n
    with pytest.raises(ValueError, match="no usable 'data' block"):
        reload_table({"data": {"source": "<DataFrame>"}}, data)


# --------------------------------------------------------------------------------------- full report


@pytest.mark.ray
@pytest.mark.slow
def test_report_with_repeats_tradeoff_and_debias(table_and_data, tmp_path):
    csv, table, data = table_and_data
    root = tmp_path / "exp"
    data.save(root / "data")
    meta = {"name": "tradeoff", "status": "finished", "metric": "mae_few", "mode": "min",
            "data": {"source": str(csv), "target": "age", "ignore": []}, "guard": None}
    (root / "experiment.json").write_text(json.dumps(meta))
    rows = []
    for i, c in enumerate([{"loss": "l1", "lr": 3e-3}, {"loss": "mse", "lr": 3e-3}]):
        cfg = {**TINY, "max_epochs": 2, "patience": 2, "strategy": "none", "head": "regression", **c}
        tr = Trial(cfg, data.without("test"), threads=1).fit()
        m = tr.evaluate("val", best=True)
        rows.append({"trial_id": f"t{i}", "number": i, "status": "COMPLETE", "is_reference": i == 0,
                     "epochs": tr.epoch, "best_epoch": tr.best_epoch, "score": m["mae_few"],
                     **{f"val/{k}": v for k, v in m.items()}, **{f"config/{k}": v for k, v in cfg.items()}})
    exp = Experiment(meta=meta, trials=pd.DataFrame(rows), path=root)
    R, S = 2, 2
    res = build_report(exp, tmp_path / "rep", refit_top=1, seeds=S, repeats=R, n_boot=100, baselines=False,
                       guard="overall:0.03", progress=None)
    out = tmp_path / "rep"
    refits = pd.read_csv(out / "refits.csv")
    assert refits["error"].isna().all()
    assert refits.groupby("model").size().to_dict() == {"rank1": R * S, "vanilla": R * S}
    assert refits.groupby(["model", "repeat"]).size().eq(S).all()
    # every test row of every repeat is outside that repeat's training and validation rows
    splits = pd.read_parquet(out / "splits.parquet")
    preds = pd.read_parquet(out / "predictions.parquet")
    for r in range(R):
        sp = splits[splits["repeat"] == r]
        fit_rows = set(sp.loc[sp["split"] != "test", "row"])
        test_rows = set(preds.loc[preds["repeat"] == r, "row"])
        assert test_rows == set(sp.loc[sp["split"] == "test", "row"]) and not (test_rows & fit_rows)
    assert set(preds.loc[preds["repeat"] == 0, "row"]) == set(data.rows["test"].tolist())
    assert preds.groupby(["model", "repeat"])["seed"].nunique().eq(S).all()
    # CIs contain their point estimates
    tm = pd.read_csv(out / "test_metrics.csv").dropna(subset=["value", "lower"])
    assert (tm["lower"] <= tm["value"]).all() and (tm["value"] <= tm["upper"]).all()
    assert (tm["n_repeats"] == R).all()
    # trade-off table: 5 guards, monotone, de-biased variants are marked candidates
    t = pd.read_csv(out / "tradeoff.csv")
    assert len(t) == 5 and np.all(np.diff(t["mae_few"].to_numpy()) <= 1e-9)
    assert {"rank1+debias", "vanilla+debias"} <= set(tm["model"]) and res.debiased == {"rank1+debias", "vanilla+debias"}
    assert (t["debiased"] == t["model"].str.endswith("+debias")).all()
    assert refits["debias_strength"].between(0, 1).all()
    assert res.guard.startswith("overall:0.03") and res.recommendation in set(tm["model"])
    html = (out / "index.html").read_text()
    assert "Recommendation under the guard overall:0.03" in html and "trade-off table" in html
    assert "per-tail few-shot errors" in html or res.tails.empty
    if not res.tails.empty:
        assert set(res.tails["tail"]) <= {"low", "high"} and res.tails["bias"].notna().all()


def test_cli_rejects_bad_guard_and_repeats(table_and_data, tmp_path, capsys):
    csv, table, data = table_and_data
    root = tmp_path / "exp"
    data.save(root / "data")
    (root / "experiment.json").write_text(json.dumps({"name": "x", "status": "finished"}))
    assert main(["report", str(root), "--out", str(tmp_path / "o"), "--guard", "overall:lots"]) == 2
    assert "not a number" in capsys.readouterr().err
    assert main(["report", str(root), "--out", str(tmp_path / "o"), "--repeats", "0"]) == 2
    assert "repeats must be" in capsys.readouterr().err
