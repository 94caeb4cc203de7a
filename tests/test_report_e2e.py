"""End to end: a small real search on synthetic data, then the report with refits.

Runs against the search's public API (experiment contract: ``agesearch search --storage DIR --name
NAME`` and ``agesearch.search.results.load_trials``); skipped while the search is not installed.
"""

from __future__ import annotations

import numpy as np
import optuna
import pandas as pd
import pytest

pytest.importorskip("agesearch.search.results", reason="the search (agesearch.search) is not on this branch yet")

from agesearch.cli import main  # noqa: E402
from agesearch.datasets import synthetic  # noqa: E402
from agesearch.report import build_report, load_experiment  # noqa: E402

pytestmark = [pytest.mark.ray, pytest.mark.slow]

SPACE = """\
n_blocks: 1
d_block: 16
attention_n_heads: 4
max_epochs: 2
patience: 2
batch_size: 128
lr: {type: float, low: 0.001, high: 0.01, log: true}
loss: {type: categorical, choices: [l1, mse]}
"""


def test_search_then_report(tmp_path, ray_session):
    df = synthetic(400, seed=5).drop(columns=["id"]).rename(columns={"albumin": "<script>"})
    csv = tmp_path / "data.csv"
    df.to_csv(csv, index=False)
    (tmp_path / "space.yaml").write_text(SPACE)
    rc = main(["search", "--data", str(csv), "--target", "age", "--space", str(tmp_path / "space.yaml"),
               "--num-samples", "4", "--storage", str(tmp_path / "runs"), "--name", "e2e"])
    assert rc == 0
    exp_dir = tmp_path / "runs" / "e2e"
    exp = load_experiment(exp_dir)
    assert exp.trials["is_reference"].sum() == 1
    out = tmp_path / "report"
    res = build_report(exp_dir, out, refit_top=2, seeds=2, n_boot=200, progress=None)
    ranked = pd.read_csv(out / "ranking.csv")
    comp = ranked[ranked["status"] == "COMPLETE"]
    others = ranked.loc[ranked["status"] != "COMPLETE", "rank"]
    assert others.empty or comp["rank"].max() < others.min()
    assert np.all(np.diff(comp["score"].to_numpy()) >= 0)
    tm = res.test_metrics.dropna(subset=["value", "lower"])
    assert (tm["lower"] <= tm["value"]).all() and (tm["value"] <= tm["upper"]).all()
    assert {"rank1", "vanilla"} <= set(tm["model"])
    fam = pd.read_csv(out / "families.csv")
    assert fam["n_trials"].sum() == len(ranked)
    study = optuna.load_study(study_name=exp.name, storage=f"sqlite:///{out / 'study.sqlite3'}")
    want = ranked.sort_values("number")["status"].map({"COMPLETE": "COMPLETE", "PRUNED": "PRUNED", "FAILED": "FAIL",
                                                       "RUNNING": "RUNNING", "PENDING": "WAITING"}).tolist()
    assert [t.state.name for t in study.trials] == want
    html = (out / "index.html").read_text()
    assert "<script" not in html.lower() and "&lt;script&gt;" in html
    assert (out / "model" / "model.safetensors").is_file()
