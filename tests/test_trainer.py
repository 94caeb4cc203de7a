"""Trainer: learns, is reproducible, checkpoints and resumes exactly, stops early, diverges loudly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agesearch.trainer import Trial, TrialDiverged, resolve_config
from tests.conftest import TINY


def _mean_mae(data):
    return float(np.abs(data.y["val"] - data.y["train"].mean()).mean())


def test_trains_on_synthetic_and_beats_mean(synthetic_small):
    trial = Trial({**TINY, "max_epochs": 8, "patience": 8}, synthetic_small, threads=1)
    history = list(trial.run())
    assert len(history) == 8
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    trial.restore_best()
    val = trial.evaluate("val")
    assert val["mae"] < 0.75 * _mean_mae(synthetic_small)
    assert {"mae_many", "mae_medium", "mae_few", "mae_zero", "gm", "pearson"} <= set(val)
    assert trial.best_epoch == int(np.argmin([h["mae"] for h in history])) + 1


def test_trains_on_real_nhanes_and_beats_mean(nhanes_small):
    trial = Trial({**TINY, "max_epochs": 6, "patience": 6}, nhanes_small, threads=1)
    trial.fit()
    assert trial.evaluate("val")["mae"] < 0.9 * _mean_mae(nhanes_small)


def test_same_seed_same_results(synthetic_small):
    a = Trial({**TINY, "max_epochs": 2, "seed": 3}, synthetic_small, threads=1)
    b = Trial({**TINY, "max_epochs": 2, "seed": 3}, synthetic_small, threads=1)
    ra, rb = list(a.run()), list(b.run())
    assert ra[-1]["mae"] == rb[-1]["mae"]


def test_checkpoint_resume_is_exact(synthetic_small, tmp_path):
    cfg = {**TINY, "max_epochs": 4, "patience": 4, "lr_schedule": "cosine"}
    full = Trial(cfg, synthetic_small, threads=1)
    ref = [r["mae"] for r in full.run()]
    first = Trial(cfg, synthetic_small, threads=1)
    first.step(), first.step()
    path = first.save(tmp_path / "ckpt.pt")
    resumed = Trial(cfg, synthetic_small, threads=1)
    resumed.load(path)
    assert resumed.epoch == 2
    rest = [r["mae"] for r in resumed.run()]
    np.testing.assert_allclose(rest, ref[2:], rtol=1e-5)


def test_early_stopping_with_patience(synthetic_small):
    trial = Trial({**TINY, "lr": 1e-5, "max_epochs": 50, "patience": 2, "min_delta": 0.5}, synthetic_small, threads=1)
    n = len(list(trial.run()))
    assert n < 50 and trial.stopped
    assert trial.epoch - trial.best_epoch == 2


def test_divergence_raises(synthetic_small):
    trial = Trial({**TINY, "lr": 1e6, "loss": "mse", "max_epochs": 5}, synthetic_small, threads=1)
    with pytest.raises(TrialDiverged, match="lower the learning rate"):
        for _ in trial.run():
            pass


def test_config_validation():
    with pytest.raises(ValueError, match="lr must be"):
        resolve_config({"lr": -1})
    with pytest.raises(ValueError, match="batch_size"):
        resolve_config({"batch_size": 0})
    with pytest.raises(ValueError, match="lr_schedule"):
        resolve_config({"lr_schedule": "step"})


def test_unknown_head_and_loss(synthetic_small):
    with pytest.raises(ValueError, match="unknown head 'nope'"):
        Trial({**TINY, "head": "nope"}, synthetic_small)
    with pytest.raises(ValueError, match="unknown loss 'nope'"):
        Trial({**TINY, "loss": "nope"}, synthetic_small)


def test_no_weight_decay_on_embeddings_norms_biases(synthetic_small):
    trial = Trial({**TINY, "weight_decay": 0.1}, synthetic_small)
    names = {id(p): n for n, p in trial.model.named_parameters()}
    decayed = [names[id(p)] for g in trial.optimizer.param_groups if g["weight_decay"] > 0 for p in g["params"]]
    assert decayed and not any(
        n.endswith(".bias") or "normalization" in n or "embeddings" in n or n.startswith("output_norm")
        for n in decayed
    )
    n_all = sum(len(g["params"]) for g in trial.optimizer.param_groups)
    assert n_all == len(list(trial.model.parameters()))


def test_uses_cuda_when_visible(synthetic_small):
    trial = Trial(TINY, synthetic_small)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert next(trial.model.parameters()).device.type == expected
