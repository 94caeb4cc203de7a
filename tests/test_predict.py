"""``agesearch predict`` round-trips a report's exported model on held-out rows.

A tiny experiment of real trials (contract-shaped, as in ``test_report_build``) is reported with a
real refit on Ray; the report's ``model/`` is then applied with the CLI to the held-out test rows
written to a file, plus rows the model cannot use.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from agesearch.cli import main
from agesearch.data import load_table, prepare
from agesearch.datasets import synthetic
from agesearch.export import export_model
from agesearch.heads import HEADS
from agesearch.report import Experiment, build_report
from agesearch.trainer import Trial
from tests.conftest import TINY


@pytest.fixture(scope="module")
def reported(tmp_path_factory, ray_session):
    root = tmp_path_factory.mktemp("exp") / "tiny"
    df = synthetic(400, seed=4).drop(columns=["id"])
    data = prepare(load_table(df, "age"), seed=0)
    data.save(root / "data")
    meta = {"name": "tiny", "status": "finished", "metric": "mae_few", "mode": "min", "num_samples": 2}
    (root / "experiment.json").write_text(json.dumps(meta))
    rows = []
    for i, loss in enumerate(["l1", "huber"]):
        cfg = {**TINY, "max_epochs": 2, "patience": 2, "strategy": "none", "head": "regression", "loss": loss}
        tr = Trial(cfg, data.without("test"), threads=1).fit()
        m = tr.evaluate("val", best=True)
        rows.append({"trial_id": f"t{i}", "number": i, "status": "COMPLETE", "reason": None,
                     "is_reference": i == 0, "epochs": tr.epoch, "best_epoch": tr.best_epoch,
                     "score": m["mae_few"], **{f"val/{k}": v for k, v in m.items()},
                     **{f"config/{k}": v for k, v in cfg.items()}, "checkpoint": None})
    exp = Experiment(meta=meta, trials=pd.DataFrame(rows), path=root)
    out = tmp_path_factory.mktemp("report")
    build_report(exp, out, refit_top=1, seeds=1, n_boot=50, baselines=False, progress=None)
    return df, data, out


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.parametrize("ext", [".csv", ".parquet"])
def test_predict_round_trips_report_predictions(reported, tmp_path, capsys, ext):
    df, data, report = reported
    test_rows = df.iloc[data.rows["test"]].reset_index(drop=True)
    bad = test_rows.iloc[:2].copy()
    bad.loc[:, [c for c in bad.columns if c != "age"]] = np.nan  # row 1: nothing to predict from
    bad = bad.astype({"glucose": object})
    bad.iloc[1] = test_rows.iloc[1]
    bad.iloc[1, bad.columns.get_loc("glucose")] = "n.d."  # row 2: text in a numeric column
    new = pd.concat([test_rows.iloc[:5], bad, test_rows.iloc[5:]], ignore_index=True)
    new["glucose"] = [None if pd.isna(v) else str(v) for v in new["glucose"]]  # text column in both formats
    src = tmp_path / f"new{ext}"
    new.to_csv(src, index=False) if ext == ".csv" else new.to_parquet(src, index=False)
    out = tmp_path / "sub" / f"pred{ext}"

    assert main(["predict", "--model", str(report / "model"), "--data", str(src), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "2 row(s) could not be predicted (data rows 6, 7;" in printed

    got = pd.read_csv(out, keep_default_na=False, na_values=[""]) if ext == ".csv" else pd.read_parquet(out)
    assert len(got) == len(new) and list(got.columns[: len(new.columns)]) == list(new.columns)
    problem = got["problem"].fillna("")
    assert problem.iloc[5] == "all model features are missing"
    assert problem.iloc[6] == "column 'glucose': 'n.d.' is not a number"
    assert got["predicted_age"].iloc[[5, 6]].isna().all()
    good = got.drop(index=[5, 6]).reset_index(drop=True)
    assert (good["problem"].fillna("") == "").all()

    model_info = json.loads((report / "model" / "config.json").read_text())["info"]
    preds = pd.read_parquet(report / "predictions.parquet")
    want = preds[(preds["model"] == "rank1") & (preds["seed"] == model_info["refit_seed"])]
    want = want.sort_values("row")["pred"].to_numpy()
    assert len(want) == len(good) == len(data.rows["test"])
    np.testing.assert_allclose(good["predicted_age"].to_numpy(), want, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(good["age"].to_numpy(), data.y["test"])  # input columns carried over, in order


@pytest.mark.ray
@pytest.mark.slow
def test_predict_refuses_to_overwrite_input(reported, tmp_path, capsys):
    df, _, report = reported
    src = tmp_path / "in.csv"
    df.head(20).to_csv(src, index=False)
    before = src.read_bytes()
    rc = main(["predict", "--model", str(report / "model"), "--data", str(src), "--out", str(tmp_path / "." / "in.csv")])
    assert rc == 2
    assert "is the input file" in capsys.readouterr().err
    assert src.read_bytes() == before


PROBABILISTIC = sorted(name for name, cls in HEADS.items() if getattr(cls, "probabilistic", False))


@pytest.mark.skipif(not PROBABILISTIC, reason="no probabilistic head is registered on this branch yet")
def test_proba_columns_are_bin_distributions(tmp_path, capsys):
    df = synthetic(300, seed=6).drop(columns=["id"])
    data = prepare(load_table(df, "age"), seed=0)
    cfg = {**TINY, "max_epochs": 1, "head": PROBABILISTIC[0]}
    tr = Trial(cfg, data.without("test"), threads=1).fit()
    model = export_model(tmp_path / "model", config=tr.config, data=data,
                         state_dict=tr.model.state_dict())
    src = tmp_path / "new.csv"
    df.iloc[data.rows["test"]].to_csv(src, index=False)
    out = tmp_path / "pred.csv"
    assert main(["predict", "--model", str(model), "--data", str(src), "--out", str(out), "--proba"]) == 0
    got = pd.read_csv(out)
    cols = [c for c in got.columns if c.startswith("proba_")]
    assert len(cols) >= 2
    p = got[cols].to_numpy()
    assert (p >= 0).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
