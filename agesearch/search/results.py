"""Read an experiment folder: :func:`load_trials` -> ``(trials, history)`` DataFrames.

See EXPERIMENT_CONTRACT (README section ``search``) for the columns. Sources: the per-trial
records ``trials/<trial_id>.json`` written by the driver (status, reason, number, configuration),
Ray Tune's per-trial ``result.json`` (every reported epoch) and the checkpoint folders
(``checkpoint_*/meta.json`` + ``trial_state.pt``).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

from agesearch.objective import Objective

from agesearch.search.storage import Location
from agesearch.search.trainable import META_FILE, STATE_FILE

TUNE_DIR = "tune"
TRIALS_DIR = "trials"
TUNE_KEYS = {
    "timestamp", "time_this_iter_s", "time_total_s", "time_since_restore", "iterations_since_restore",
    "training_iteration", "done", "pid", "hostname", "node_ip", "date", "trial_id", "config",
    "checkpoint_dir_name", "should_checkpoint", "experiment_tag", "node_id", "gpu_ids",
    "failed_reason",
}  # fmt: skip
"""Keys Ray Tune adds to results (and placement details): not metrics."""
NOT_VAL = {"epoch", "train_loss", "best_epoch", "should_stop", "score", "ckpt_rank", "start_epoch",
           "test_rows", "checkpoint_discarded"}  # fmt: skip


def read_results(trial_dir: Path) -> list[dict[str, Any]]:
    """Every result row Tune wrote for a trial (``result.json`` lines; tolerant of a torn last line)."""
    f = trial_dir / "result.json"
    rows: list[dict[str, Any]] = []
    if not f.is_file():
        return rows
    for line in f.read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def _history_rows(trial_id: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_epoch: dict[int, dict[str, Any]] = {}
    for r in rows:
        if "epoch" not in r:
            continue
        rec = {"trial_id": trial_id}
        for k, v in r.items():
            if k in TUNE_KEYS or isinstance(v, (dict, list, str)) or v is None:
                continue
            rec[k] = float(v)
        by_epoch[int(r["epoch"])] = rec  # a resumed trial may re-report an epoch: keep the last
    return [by_epoch[e] for e in sorted(by_epoch)]


def best_checkpoint(trial_dir: Path, best_epoch: int) -> str | None:
    """Path of the state file saved at ``best_epoch`` (else the latest one, which holds the best state)."""
    found: list[tuple[int, Path]] = []
    for meta in trial_dir.glob(f"checkpoint_*/{META_FILE}"):
        try:
            epoch = int(json.loads(meta.read_text())["epoch"])
        except (OSError, ValueError, KeyError, TypeError):  # removed or half-written by a running search
            continue
        state = meta.parent / STATE_FILE
        if state.is_file():
            found.append((epoch, state))
    if not found:
        return None
    for epoch, state in found:
        if epoch == best_epoch:
            return str(state)
    return str(max(found)[1])


def _trial_dir(root: Path, name: Any) -> Path | None:
    """``root/tune/<name>``; None when the record names no folder or one outside ``tune/``."""
    if not isinstance(name, str) or not name:
        return None
    from agesearch.paths import safe_join

    try:
        return safe_join(root / TUNE_DIR, name)
    except ValueError:
        return None


def load_trials(exp_dir: str | os.PathLike[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(trials, history)`` of an experiment folder (local path or URI, downloaded when remote)."""
    root = Location(exp_dir).local_copy()
    if not (root / "experiment.json").is_file():
        raise FileNotFoundError(
            f"{str(exp_dir)!r} is not an experiment folder (no experiment.json); give DIR/NAME of a search"
        )
    exp = json.loads((root / "experiment.json").read_text())
    metric = exp.get("metric", "mae_few")
    objective = Objective.from_experiment(exp)
    records = []
    for f in sorted((root / TRIALS_DIR).glob("*.json")):
        try:  # records are replaced atomically; a file can still vanish between glob and read
            rec = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(rec, dict) and rec.get("trial_id"):
            records.append(rec)
    trial_rows: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    for rec in records:
        tid = rec["trial_id"]
        tdir = _trial_dir(root, rec.get("trial_dir"))
        rows = _history_rows(tid, read_results(tdir)) if tdir else []
        history.extend(rows)
        status = rec["status"]
        last = rows[-1] if rows else {}
        best_epoch = int(last.get("best_epoch", 0) or 0)
        best_row = next((r for r in rows if int(r["epoch"]) == best_epoch), None)
        score = float(last.get("score", math.nan)) if status != "FAILED" else math.nan
        if best_row is not None and status != "FAILED":
            # guarded searches rank by the penalised scalar; otherwise the raw metric
            score = objective.score(best_row) if objective.guarded else float(best_row.get(metric, score))
        row: dict[str, Any] = {
            "trial_id": tid,
            "number": rec.get("number"),
            "status": status,
            "reason": rec.get("reason"),
            "is_reference": bool(rec.get("is_reference", False)),
            "epochs": int(last.get("epoch", 0) or 0),
            "best_epoch": best_epoch,
            "score": score,
        }
        if best_row is not None:
            for k, v in best_row.items():
                if k not in NOT_VAL and k != "trial_id" and not k.startswith("best_"):
                    row[f"val/{k}"] = v
        for k, v in (rec.get("config") or {}).items():
            row[f"config/{k}"] = v
        row["checkpoint"] = best_checkpoint(tdir, best_epoch) if tdir and best_epoch else None
        trial_rows.append(row)
    trials = pd.DataFrame(trial_rows)
    if len(trials):
        # Trials without an Optuna number (should not happen) go last, in trial-id order.
        order = trials["number"].fillna(1e12).astype(float)
        trials = trials.assign(_o=order).sort_values(["_o", "trial_id"]).drop(columns="_o")
        trials["number"] = trials["number"].astype("Int64")
        trials = trials.reset_index(drop=True)
    else:
        trials = pd.DataFrame(columns=["trial_id", "number", "status", "reason", "is_reference",
                                       "epochs", "best_epoch", "score", "checkpoint"])  # fmt: skip
    hist = pd.DataFrame(history)
    if len(hist):
        hist["epoch"] = hist["epoch"].astype(int)
    else:
        hist = pd.DataFrame(columns=["trial_id", "epoch"])
    return trials, hist


def read_experiment(exp_dir: str | os.PathLike[str]) -> dict[str, Any]:
    return json.loads(Location(exp_dir).read_text("experiment.json"))
