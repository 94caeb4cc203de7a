"""Rebuild an Optuna study from the trials table: hyperparameter importances and an SQLite study.

Each trial becomes ``optuna.trial.create_trial`` with its configuration as parameters, its score as
value (its last reported score for PRUNED trials, which Optuna keeps as ``intermediate_values``) and
its state (COMPLETE / PRUNED / FAIL / RUNNING). Parameter distributions are inferred per column
(vectorised): strings and booleans -> categorical, integers -> int range, floats -> float range
(log scale when positive and spanning more than a factor 20). Conditional parameters (NaN for
trials that did not use them) are simply absent from those trials.

Writing a study through Optuna's RDB storage costs about 3 ms per trial, so
:func:`write_sqlite_study` stores the ``limit`` best-ranked trials (plus the reference) unless
``limit`` is 0; the report says how many were stored.
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from agesearch.report.experiment import config_columns

log = logging.getLogger(__name__)

STATE_NAMES = {"COMPLETE": "COMPLETE", "PRUNED": "PRUNED", "FAILED": "FAIL", "RUNNING": "RUNNING", "PENDING": "WAITING"}
SKIP_PARAMS = {"seed"}
"""Configuration keys that are not hyperparameters."""


def infer_distributions(trials: pd.DataFrame) -> dict[str, Any]:
    """``{param: optuna distribution}`` for every configuration column with at least 2 values."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    dists: dict[str, Any] = {}
    for col in config_columns(trials):
        name = col.split("/", 1)[1]
        if name in SKIP_PARAMS:
            continue
        s = trials[col].dropna()
        if s.empty:
            continue
        if pd.api.types.is_bool_dtype(s) or not pd.api.types.is_numeric_dtype(s):
            choices = tuple(sorted({str(v) for v in s.unique()}))
            if len(choices) >= 2:
                dists[name] = CategoricalDistribution(choices)
            continue
        v = s.to_numpy(dtype=float)
        lo, hi = float(v.min()), float(v.max())
        if lo == hi:
            continue
        if np.all(v == np.round(v)):
            dists[name] = IntDistribution(int(lo), int(hi))
        else:
            log_scale = lo > 0 and hi / lo > 20
            dists[name] = FloatDistribution(lo, hi, log=log_scale)
    return dists


def build_frozen_trials(trials: pd.DataFrame, dists: dict[str, Any]) -> list[Any]:
    """One ``FrozenTrial`` per row of ``trials`` (in ``number`` order)."""
    import optuna
    from optuna.distributions import CategoricalDistribution, IntDistribution

    t = trials.sort_values("number", kind="mergesort")
    params = {}
    for name, d in dists.items():
        col = t[f"config/{name}"]
        if isinstance(d, CategoricalDistribution):
            params[name] = col.astype(object).where(col.isna(), col.astype(str))
        elif isinstance(d, IntDistribution):
            params[name] = col.astype(float)
        else:
            params[name] = col.astype(float)
    table = pd.DataFrame(params, index=t.index)
    records = table.to_dict("records")
    states = t["status"].map(STATE_NAMES).fillna("FAIL").to_numpy()
    scores = t["score"].to_numpy(dtype=float)
    epochs = pd.to_numeric(t.get("epochs", pd.Series(np.nan, index=t.index)), errors="coerce").to_numpy()
    reasons = t["reason"].to_numpy() if "reason" in t.columns else np.full(len(t), None)
    ids = t["trial_id"].to_numpy()
    out = []
    TS = optuna.trial.TrialState
    for rec, st, sc, ep, why, tid in zip(records, states, scores, epochs, reasons, ids):
        p, dd = {}, {}
        for k, v in rec.items():
            if v is None or (isinstance(v, float) and math.isnan(v)):
                continue
            dd[k] = dists[k]
            p[k] = int(v) if isinstance(dists[k], IntDistribution) else v
        state = TS[st]
        finite = math.isfinite(sc)
        value = sc if (state == TS.COMPLETE and finite) else None
        if state == TS.COMPLETE and not finite:
            state = TS.FAIL
        inter = {}
        if state in (TS.PRUNED, TS.RUNNING) and finite:
            step = int(ep) if ep == ep and ep is not None else 0
            inter = {step: sc}
        attrs = {"trial_id": str(tid)}
        if why is not None and why == why:
            attrs["reason"] = str(why)
        out.append(
            optuna.trial.create_trial(
                state=state, value=value, params=p, distributions=dd,
                intermediate_values=inter, user_attrs=attrs,
            )
        )
    return out


FANOVA_MAX_TRIALS = 300
"""fANOVA costs about 6 s per 1,000 trials; above this many completed trials the random-forest
mean-decrease-in-impurity evaluator is used instead (about 1 s for 6,000)."""


def param_importances(frozen: list[Any], direction: str = "minimize", seed: int = 0) -> pd.DataFrame:
    """Importances from the COMPLETE trials; empty when fewer than 2 complete or no param.

    fANOVA up to :data:`FANOVA_MAX_TRIALS` completed trials, mean decrease in impurity above; the
    evaluator's name is in the ``evaluator`` column.
    """
    import optuna

    n_complete = sum(1 for f in frozen if f.state == optuna.trial.TrialState.COMPLETE)
    if n_complete < 2:
        return pd.DataFrame(columns=["param", "importance"])
    study = optuna.create_study(direction=direction)
    study.add_trials(frozen)
    if n_complete <= FANOVA_MAX_TRIALS:
        evaluator, name = optuna.importance.FanovaImportanceEvaluator(seed=seed), "fANOVA"
    else:
        evaluator = optuna.importance.MeanDecreaseImpurityImportanceEvaluator(seed=seed)
        name = "mean decrease in impurity"
    try:
        imp = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (RuntimeError, ValueError) as exc:  # e.g. no parameter shared by all completed trials
        log.warning("hyperparameter importance unavailable: %s", exc)
        return pd.DataFrame(columns=["param", "importance"])
    return pd.DataFrame(
        {"param": list(imp.keys()), "importance": [float(v) for v in imp.values()], "evaluator": name}
    )


def write_sqlite_study(
    frozen: list[Any], path: str | os.PathLike[str], *, study_name: str, direction: str = "minimize",
    keep: list[int] | None = None,
) -> int:
    """Write ``frozen`` (or the positions ``keep`` of it) as an Optuna SQLite study at ``path``.

    Built in an in-memory SQLite database and copied to the file with SQLite's backup API, so the
    file appears complete or not at all. Returns the number of trials stored.
    """
    import optuna

    path = Path(path)
    chosen = frozen if keep is None else [frozen[i] for i in keep]
    storage = optuna.storages.RDBStorage("sqlite:///:memory:")
    study = optuna.create_study(storage=storage, study_name=study_name, direction=direction)
    study.add_trials(chosen)
    tmp = path.with_name(path.name + ".tmp")
    if tmp.exists():
        tmp.unlink()
    raw = storage.engine.raw_connection()
    try:
        dst = sqlite3.connect(tmp)
        try:
            raw.driver_connection.backup(dst)
        finally:
            dst.close()
    finally:
        raw.close()
        storage.engine.dispose()
    os.replace(tmp, path)
    return len(chosen)
