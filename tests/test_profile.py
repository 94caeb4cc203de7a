"""``agesearch profile``: real CSV files through the real CLI (subprocess), and the Python API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, "-m", "agesearch.cli", "profile", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def make_table(n: int = 3000, seed: int = 0, top_code: float | None = 80.0, leaks: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = np.clip(np.round(rng.normal(50.0, 13.0, n)), 1, None)  # the clip never binds
    if top_code is not None:
        age = np.minimum(age, top_code)  # everyone older is recorded at top_code
    df = pd.DataFrame({
        "pid": [f"P{i:05d}" for i in range(n)],
        "age": age,
        "marker_a": 0.05 * age + rng.normal(0, 1.0, n),
        "marker_b": rng.normal(0, 1, n),
        "sex": rng.choice(["F", "M"], n),
    })  # fmt: skip
    df.loc[rng.random(n) < 0.1, "marker_b"] = np.nan
    if leaks:
        df["age_months"] = age * 12 + rng.integers(0, 12, n)  # |r| ~ 0.999 with age
        df["age_label"] = [f"y{int(a)}" for a in age]  # text that determines the age exactly
    return df


@pytest.fixture(scope="module")
def dirty_csv(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("profile_data") / "cohort.csv"
    make_table().to_csv(p, index=False)
    return p


def test_cli_profile_writes_outputs_and_flags_leaks_and_top_coding(dirty_csv, tmp_path):
    out = tmp_path / "prof"
    r = run_cli("--data", str(dirty_csv), "--target", "age", "--out", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    text = r.stdout
    # concise summary: region table and warnings with codes
    for token in ("many", "medium", "few", "zero", "[top_coded]", "[leaky_column]", "[identifier]"):
        assert token in text, (token, text)
    assert "maximum age 80" in text
    assert "'age_months'" in text and "'age_label'" in text
    assert "Traceback" not in r.stderr

    files = {p.name for p in out.iterdir()}
    assert files == {"age_histogram.png", "bins.csv", "features.csv", "profile.json"}
    png = (out / "age_histogram.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000

    bins = pd.read_csv(out / "bins.csv")
    assert list(bins.columns) == ["bin", "age_from", "age_to", "n_total", "n_train", "n_val", "n_test", "region"]
    assert bins["n_total"].sum() == 3000
    assert (bins["n_total"] == bins["n_train"] + bins["n_val"] + bins["n_test"]).all()
    # regions follow the DIR thresholds on TRAINING counts
    expect = np.where(bins["n_train"] == 0, "zero", np.where(bins["n_train"] > 100, "many",
                      np.where(bins["n_train"] < 20, "few", "medium")))  # fmt: skip
    assert (bins["region"].to_numpy() == expect).all()
    assert bins.loc[bins["age_from"] == 80, "n_total"].item() > 3 * bins.loc[bins["age_from"] == 79, "n_total"].item()

    feats = pd.read_csv(out / "features.csv").set_index("column")
    assert set(feats.index) == {"pid", "marker_a", "marker_b", "sex", "age_months", "age_label"}
    assert feats.loc["marker_b", "type"] == "numeric" and feats.loc["sex", "type"] == "categorical"
    assert 8.0 < feats.loc["marker_b", "missing_pct"] < 12.0
    assert feats.loc["age_months", "corr_age"] > 0.98
    assert 0.3 < feats.loc["marker_a", "corr_age"] < 0.8
    assert feats.loc["sex", "n_distinct"] == 2

    summary = json.loads((out / "profile.json").read_text())
    codes = {(w["code"], w["column"]) for w in summary["warnings"]}
    assert ("leaky_column", "age_months") in codes and ("leaky_column", "age_label") in codes
    assert ("identifier", "pid") in codes and ("top_coded", "age") in codes
    assert not any(c == "leaky_column" and col in ("marker_a", "marker_b", "sex") for c, col in codes)
    assert sum(summary["split_sizes"].values()) == 3000


def test_cli_clean_table_has_no_false_alarms(tmp_path):
    p = tmp_path / "clean.csv"
    make_table(top_code=None, leaks=False).drop(columns=["pid"]).to_csv(p, index=False)
    r = run_cli("--data", str(p), "--target", "age", "--out", str(tmp_path / "o"), "--ignore", "marker_b",
                cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    codes = {w["code"] for w in json.loads((tmp_path / "o" / "profile.json").read_text())["warnings"]}
    assert not codes & {"top_coded", "bottom_coded", "leaky_column", "identifier"}, codes
    feats = pd.read_csv(tmp_path / "o" / "features.csv")
    assert "marker_b" not in set(feats["column"])  # --ignore honoured


def test_cli_default_out_and_region_flags(dirty_csv, tmp_path):
    r = run_cli("--data", str(dirty_csv), "--target", "age", "--few", "1", "--bin-width", "2",
                "--ignore", "pid", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = tmp_path / "profile-cohort"
    assert (out / "profile.json").is_file()
    summary = json.loads((out / "profile.json").read_text())
    assert summary["bin_width"] == 2.0
    assert any(w["code"] == "empty_region" and "few-shot" in w["message"] for w in summary["warnings"])
    bins = pd.read_csv(out / "bins.csv")
    assert np.allclose(bins["age_to"] - bins["age_from"], 2.0)
    assert "few" not in set(bins["region"])


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--data", "{csv}", "--bin-width", "abc"], "--bin-width"),
        (["--data", "{csv}", "--bin-width", "0"], "positive"),
        (["--target", "age"], "--data"),
        (["--data", "{csv}", "--many", "5", "--few", "10"], "--many"),
        (["--data", "{csv}", "--target", "agee"], "'agee' not found"),
        (["--data", "{missing}"], "does not exist"),
        (["--data", "{empty}"], "empty"),
        (["--data", "{csv}", "--out", "{csv}"], "is a file"),
        (["--data", "{csv}", "--ignore", "nope"], "'nope'"),
    ],
)
def test_cli_bad_input_one_line_exit_2(args, needle, dirty_csv, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    fill = {"csv": str(dirty_csv), "missing": str(tmp_path / "nope.csv"), "empty": str(empty)}
    r = run_cli(*[a.format(**fill) for a in args], cwd=tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("agesearch: error:"), r.stderr
    assert needle in lines[0]
    assert "Traceback" not in r.stderr


def test_api_matches_search_split_and_writes_nothing_without_out(tmp_path, monkeypatch):
    from agesearch.data import load_table, prepare
    from agesearch.profile import ProfileResult, profile

    monkeypatch.chdir(tmp_path)
    df = make_table(n=1500, seed=3)
    res = profile(df, "age", ignore=["pid"], seed=5)
    assert isinstance(res, ProfileResult) and res.files == {}
    assert list(tmp_path.iterdir()) == []
    ref = prepare(load_table(df, "age", ignore=["pid"]), seed=5)
    assert (res.bins["region"].to_numpy() == ref.regions.bin_region.astype(str)).all()
    assert (res.bins["n_train"].to_numpy() == ref.regions.train_counts).all()
    assert res.split_sizes == {s: len(ref.y[s]) for s in ("train", "val", "test")}
    few_val = int((ref.regions.of(ref.y["val"]) == "few").sum())
    assert res.region_table.set_index("region").loc["few", "n_val"] == few_val
    assert ("few_shot_val" in res.codes()) == (0 < few_val < 30 or (few_val == 0 and
            res.region_table.set_index("region").loc["few", "bins"] > 0))  # fmt: skip
    assert "top_coded" in res.codes() and "leaky_column" in res.codes()
    assert "Traceback" not in res.summary()


def test_nhanes_top_coding_at_90_detected(nhanes_path, tmp_path):
    from agesearch.profile import profile

    res = profile(nhanes_path, "age", tmp_path / "nh", ignore=["sampleID"])
    top = [w for w in res.warnings if w.code == "top_coded"]
    assert len(top) == 1 and "maximum age 90" in top[0].message
    assert "bottom_coded" not in res.codes()
    assert "leaky_column" not in res.codes()
    assert res.n_rows == 15160
    assert (tmp_path / "nh" / "age_histogram.png").stat().st_size > 10_000
