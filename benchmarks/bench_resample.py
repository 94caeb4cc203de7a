"""Resampling benchmark: agesearch SMOGN vs the ``smogn`` package (a peer, not a dependency).

Same data (n rows x 20 numeric features, right-skewed ages with box-plot outliers so the
package's automatic relevance finds a rare bump), same relevance (box plot, threshold 0.5),
k=5, pert=0.02, 'balance' with undersampling. Reports wall time and the label histogram.

    pip install -e '.[bench]'
    python benchmarks/bench_resample.py --rows 5000 50000 --smogn-timeout 900
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agesearch.imbalance import smote_resample  # noqa: E402
from benchmarks._results import machine, update_section  # noqa: E402

EDGES = [18, 30, 40, 50, 60, 70, 80, 90, 200]


def make_data(n: int, d: int = 20, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = np.round(np.clip(18 + rng.gamma(4.0, 7.0, n), 18, 110), 1)
    x = rng.standard_normal((n, d)) + ((age - age.mean()) / age.std())[:, None] * rng.uniform(0.2, 0.8, d)
    df = pd.DataFrame(x, columns=[f"f{i}" for i in range(d)])
    df["age"] = age
    return df


def hist(y: np.ndarray) -> list[int]:
    return np.histogram(y, bins=EDGES)[0].tolist()


def _run_package(df: pd.DataFrame, q: mp.Queue) -> None:
    import smogn

    # smogn 0.1.2 calls np.quantile(..., interpolation=...), removed in NumPy 2.4: map it to
    # method= in this child process only, so the package runs unchanged otherwise
    _quantile = np.quantile

    def quantile(*a, interpolation=None, **kw):
        if interpolation is not None:
            kw["method"] = interpolation
        return _quantile(*a, **kw)

    np.quantile = quantile

    # ... and converts size-1 arrays with int()/float() (an error since NumPy 2.x): draw scalars
    def scalar(fn):
        def draw(*a, size=None, **kw):
            return fn(*a, **kw) if size == 1 else fn(*a, size=size, **kw)

        return draw

    np.random.choice = scalar(np.random.choice)
    np.random.normal = scalar(np.random.normal)
    np.random.seed(0)
    t = time.perf_counter()
    out = smogn.smoter(data=df.reset_index(drop=True), y="age", k=5, pert=0.02, samp_method="balance",
                       rel_thres=0.5, rel_method="auto", rel_xtrm_type="both", rel_coef=1.5)
    q.put((time.perf_counter() - t, out["age"].to_numpy()))


def run_package(df: pd.DataFrame, timeout: float):
    q: mp.Queue = mp.Queue()
    p = mp.Process(target=_run_package, args=(df, q))
    p.start()
    try:
        return q.get(timeout=timeout)
    except Exception:
        alive = p.is_alive()
        if alive:
            p.terminate()
        p.join()
        return f"> {timeout:.0f} (abandoned)" if alive else f"failed (exit {p.exitcode})"
    finally:
        p.join(5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[5000, 50000])
    ap.add_argument("--smogn-timeout", type=float, default=900.0, help="seconds before the package run is abandoned")
    args = ap.parse_args()
    lines = [
        f"Machine: {machine()}. Data: n rows x 20 numeric features, ages 18 + Gamma(4, 7) (right "
        "tail with box-plot outliers); both sides: SMOGN, box-plot relevance, threshold 0.5, k=5, "
        "pert=0.02, 'balance' with undersampling. Label histogram bins (years): "
        f"{EDGES[:-1]} and over {EDGES[-2]}.",
        "",
        "| rows | implementation | time (s) | rows out | synthetic | label histogram |",
        "|---|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)

    def emit(line: str) -> None:
        lines.append(line)
        print(line, flush=True)
    for n in args.rows:
        df = make_data(n)
        x = df.drop(columns="age").to_numpy(np.float32)
        y = df["age"].to_numpy()
        emit(f"| {n} | input | - | {n} | - | {hist(y)} |")
        t = time.perf_counter()
        r = smote_resample(x, np.zeros((n, 0), np.int64), y, method="smogn", k=5, pert=0.02,
                           relevance_method="boxplot", threshold=0.5, target="balance", under=True,
                           rng=np.random.default_rng(0))
        dt = time.perf_counter() - t
        emit(f"| {n} | agesearch | {dt:.2f} | {len(r.y)} | {int(r.synthetic.sum())} | {hist(r.y)} |")
        res = run_package(df, args.smogn_timeout)
        if isinstance(res, str):
            emit(f"| {n} | smogn 0.1.2 | {res} | - | - | - |")
        else:
            dt, yo = res
            emit(f"| {n} | smogn 0.1.2 | {dt:.2f} | {len(yo)} | - | {hist(yo)} |")
    lines.append(
        "\nThe package computes a full pairwise distance matrix of each rare bump in Python loops "
        "(O(n_rare^2)) and builds rows one by one with pandas; agesearch uses NearestNeighbors and "
        "NumPy. smogn 0.1.2 needs a shim for NumPy 2 (np.quantile(interpolation=), int() of size-1 arrays), applied in "
        "the benchmark's child process only."
    )
    update_section("Resampling", "\n".join(lines))


if __name__ == "__main__":
    main()
