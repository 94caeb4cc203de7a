"""Read an experiment folder (see the experiment contract) into one trials table.

The search writes ``DIR/NAME/`` with ``experiment.json``, ``data/`` (the full prepared data) and the
Ray Tune storage; :func:`agesearch.search.results.load_trials` turns that into a trials DataFrame
(one row per trial) and a long per-epoch history. :func:`load_experiment` wraps it and validates the
table so the rest of the report can rely on its columns.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

STATUSES: tuple[str, ...] = ("COMPLETE", "PRUNED", "RUNNING", "PENDING", "FAILED")
"""Trial states of the contract, in ranking order (final scores first)."""

REQUIRED_COLUMNS: tuple[str, ...] = ("trial_id", "number", "status", "score")


class ReportError(ValueError):
    """A problem with the report's input, reported in one line naming the problem and the fix."""


@dataclass
class Experiment:
    """An experiment folder's metadata and trials.

    Attributes:
        meta: ``experiment.json`` (empty when the trials were given directly).
        trials: one row per trial (contract columns; see :func:`validate_trials`).
        history: per-epoch validation metrics (``trial_id``, ``epoch``, one column per metric).
        path: the experiment folder, or None.
    """

    meta: dict[str, Any]
    trials: pd.DataFrame
    history: pd.DataFrame = field(default_factory=pd.DataFrame)
    path: Path | None = None

    @property
    def name(self) -> str:
        return str(self.meta.get("name") or (self.path.name if self.path else "experiment"))

    @property
    def metric(self) -> str:
        return str(self.meta.get("metric", "mae_few"))

    @property
    def mode(self) -> str:
        return str(self.meta.get("mode", "min"))

    @property
    def status(self) -> str:
        return str(self.meta.get("status", "unknown"))

    def completeness_notes(self) -> list[str]:
        """Sentences for the top of the report when the search is partial or interrupted."""
        notes = []
        if self.status not in ("finished", "unknown"):
            notes.append(
                f"The search is {self.status}: this report covers the trials recorded so far."
            )
        counts = self.trials["status"].value_counts()
        unfinished = int(counts.get("RUNNING", 0) + counts.get("PENDING", 0))
        if unfinished:
            notes.append(
                f"{unfinished} trial(s) were still running or pending; their scores are partial "
                "and are ranked below the completed trials."
            )
        n_total = self.meta.get("num_samples")
        if isinstance(n_total, (int, float)) and n_total > 0 and len(self.trials) < n_total:
            notes.append(f"{len(self.trials)} of the {int(n_total)} requested trials were started.")
        return notes


def validate_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """Check the contract columns and normalise dtypes (vectorised; no per-row Python)."""
    missing = [c for c in REQUIRED_COLUMNS if c not in trials.columns]
    if missing:
        raise ReportError(
            f"trials table lacks column(s) {missing}; it must follow the experiment contract "
            "(agesearch.search.results.load_trials)"
        )
    t = trials.copy()
    t["trial_id"] = t["trial_id"].astype(str)
    t["number"] = pd.to_numeric(t["number"], errors="coerce").fillna(-1).astype(np.int64)
    t["status"] = t["status"].astype(str).str.upper()
    bad = ~t["status"].isin(STATUSES)
    if bad.any():
        raise ReportError(
            f"unknown trial status(es) {sorted(t.loc[bad, 'status'].unique())[:5]}; valid: "
            f"{', '.join(STATUSES)}"
        )
    t["score"] = pd.to_numeric(t["score"], errors="coerce").astype(float)
    if "is_reference" not in t.columns:
        t["is_reference"] = t["number"] == 0
    t["is_reference"] = t["is_reference"].fillna(False).astype(bool)
    for c in ("epochs", "best_epoch"):
        if c not in t.columns:
            t[c] = np.nan
    for c in ("reason", "checkpoint"):
        if c not in t.columns:
            t[c] = None
    return t.reset_index(drop=True)


def _read_meta(path: Path) -> dict[str, Any]:
    f = path / "experiment.json"
    if not f.is_file():
        raise ReportError(
            f"{str(path)!r} is not an experiment folder (no experiment.json); pass the folder "
            "'agesearch search --storage DIR --name NAME' created, i.e. DIR/NAME"
        )
    try:
        return json.loads(f.read_text())
    except json.JSONDecodeError as exc:
        raise ReportError(f"{str(f)!r} is not valid JSON ({exc.msg}); the search did not finish writing it") from None


def load_experiment(path: str | os.PathLike[str]) -> Experiment:
    """Read an experiment folder through the search's reader API."""
    path = Path(path)
    if not path.exists():
        raise ReportError(f"experiment folder {str(path)!r} does not exist; check the path")
    meta = _read_meta(path)
    try:
        from agesearch.search.results import load_trials
    except ImportError:  # pragma: no cover - only before the search lands
        raise ReportError(
            "agesearch.search.results.load_trials is not available in this installation; "
            "update agesearch to a version with the search"
        ) from None
    trials, history = load_trials(path)
    if len(trials) == 0:
        raise ReportError(f"the experiment {str(path)!r} has no trials yet; run or resume the search first")
    return Experiment(meta=meta, trials=validate_trials(trials), history=history, path=path)


def config_columns(trials: pd.DataFrame) -> list[str]:
    """The ``config/<key>`` columns."""
    return [c for c in trials.columns if isinstance(c, str) and c.startswith("config/")]


def row_config(trials: pd.DataFrame, index: Any) -> dict[str, Any]:
    """The configuration dict of one trial (missing/NaN keys dropped: conditional parameters)."""
    row = trials.loc[index, config_columns(trials)]
    out: dict[str, Any] = {}
    for k, v in row.items():
        if v is None or (isinstance(v, float) and np.isnan(v)):
            continue
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
            v = int(v)  # Parquet/pandas turn int columns with gaps (conditional keys) into floats
        out[str(k).split("/", 1)[1]] = v
    return out

