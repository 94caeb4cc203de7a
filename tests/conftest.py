"""Shared fixtures: real data paths, small prepared data sets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def shared_datasets_dir() -> Path | None:
    """``../shared/datasets`` next to the repository (or ``$AGESEARCH_SHARED``), if present."""
    candidates = [
        os.environ.get("AGESEARCH_SHARED", ""),
        str(ROOT.parent / "shared" / "datasets"),
        "/work/shared/datasets",
    ]
    for c in candidates:
        if c and (Path(c) / "nhanes3_biomarkers.csv").is_file():
            return Path(c)
    return None


@pytest.fixture(scope="session")
def nhanes_path() -> Path:
    d = shared_datasets_dir()
    if d is None:
        pytest.skip("real NHANES table not found (../shared/datasets/nhanes3_biomarkers.csv is absent)")
    return d / "nhanes3_biomarkers.csv"


@pytest.fixture(scope="session")
def synthetic_small():
    """Prepared data from 3,000 rows of builtin synthetic (fast for trainer tests)."""
    from agesearch.data import load_table, prepare
    from agesearch.datasets import synthetic

    table = load_table(synthetic(3000, seed=1).drop(columns=["id"]), "age")
    return prepare(table, seed=0)


@pytest.fixture(scope="session")
def nhanes_small(nhanes_path):
    """Prepared data from a 4,000-row seeded subsample of the real NHANES table."""
    import pandas as pd

    from agesearch.data import load_table, prepare

    df = pd.read_csv(nhanes_path).sample(4000, random_state=0)
    table = load_table(df, "age", ignore=["sampleID"])
    return prepare(table, seed=0)


TINY = {"n_blocks": 1, "d_block": 16, "attention_n_heads": 4, "batch_size": 256, "lr": 3e-3}
"""Tiny model settings for fast tests."""


def ensure_ray():
    """Initialise the shared local Ray (127.0.0.1, 2 CPUs, no dashboard) unless it is running."""
    import ray

    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
                 log_to_driver=False, configure_logging=False)  # fmt: skip
    return ray


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray instance shared by the tests that need Ray.

    Starting Ray costs several seconds and every fresh worker process re-imports torch, so tests
    share one instance and its warm workers; agesearch's search and report reuse an initialised
    Ray instead of starting (and stopping) their own.
    """
    ray = ensure_ray()
    yield ray
    if ray.is_initialized():
        ray.shutdown()
