"""Contract-shaped trials tables for report tests (the search's load_trials output format)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def fake_trials(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` trials following the experiment contract: mixed states, conditional config keys."""
    rng = np.random.default_rng(seed)
    status = rng.choice(["COMPLETE", "PRUNED", "FAILED"], size=n, p=[0.6, 0.3, 0.1])
    status[0] = "COMPLETE"
    strategy = rng.choice(["none", "inverse", "sqrt_inv", "lds"], size=n)
    strategy[0] = "none"
    score = rng.uniform(4, 12, n)
    score[status == "FAILED"] = np.nan
    lds_sigma = np.where(strategy == "lds", rng.uniform(0.5, 3, n), np.nan)  # conditional key
    reason = np.full(n, None, dtype=object)
    reason[status == "PRUNED"] = "pruned by median pruner at epoch 2"
    reason[status == "FAILED"] = "diverged: loss became nan at epoch 3"
    return pd.DataFrame(
        {
            "trial_id": [f"t{i:05d}" for i in range(n)],
            "number": np.arange(n),
            "status": status,
            "reason": reason,
            "is_reference": np.arange(n) == 0,
            "epochs": rng.integers(1, 10, n),
            "best_epoch": rng.integers(1, 5, n),
            "score": score,
            "val/mae": rng.uniform(3, 6, n),
            "val/mae_few": score,
            "val/mae_many": rng.uniform(2, 5, n),
            "config/strategy": strategy,
            "config/head": rng.choice(["regression", "distribution"], size=n),
            "config/loss": rng.choice(["l1", "mse", "huber"], size=n),
            "config/lr": 10 ** rng.uniform(-4, -2, n),
            "config/n_blocks": rng.integers(1, 4, n),
            "config/lds_sigma": lds_sigma,
            "checkpoint": None,
        }
    )
