"""Apply an exported model to a new table: ``agesearch predict`` and :func:`predict_file`.

A row the model cannot use is never dropped: it is written with an empty prediction and a
``problem`` text saying why. A row is unusable when

- every model feature is missing (there is nothing to predict from), or
- a numeric model column holds a value that is not a number (e.g. ``"abc"`` in ``glucose``).

Values that are merely missing (or infinite) in some columns are imputed as in training; levels of
a categorical column unseen in training take the model's "unknown" code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from agesearch.data import DataError, features_frame, read_frame

if TYPE_CHECKING:  # pragma: no cover
    from agesearch.export import AgeModel

OUTPUT_FORMATS: dict[str, str] = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
"""Output file extension -> format."""
PREDICTION_COLUMNS: tuple[str, ...] = ("predicted_age", "age_lower", "age_upper", "problem")
"""Columns written by :func:`predict_frame` (intervals only for heads that give them)."""
PROBA_PREFIX = "proba_"
"""``--proba`` columns are ``proba_<left edge of the age bin>``."""
MAX_LISTED_ROWS = 10
"""How many problem row numbers the summary lists."""


def row_problems(model: "AgeModel", frame: pd.DataFrame) -> pd.Series:
    """Why each row of ``frame`` cannot be predicted: a text per row, ``""`` for usable rows.

    Raises:
        DataError: a model column is absent from ``frame``.
    """
    feats = features_frame(model.roles.features, frame)
    problems = np.full(len(frame), "", dtype=object)
    for c in model.preprocessor.numeric:
        raw = feats[c]
        if pd.api.types.is_numeric_dtype(raw) or pd.api.types.is_bool_dtype(raw):
            continue
        blank = raw.astype("string").str.strip().eq("").fillna(False)
        conv = pd.to_numeric(raw.where(~blank), errors="coerce")
        bad = (raw.notna() & ~blank & conv.isna()).to_numpy()
        for i in np.flatnonzero(bad & (problems == "")):
            problems[i] = f"column {c!r}: {str(raw.iloc[i])[:30]!r} is not a number"
    empty = model.preprocessor.unusable_rows(feats)
    problems[empty & (problems == "")] = "all model features are missing"
    return pd.Series(problems, index=frame.index, name="problem")


def _bin_proba(model: "AgeModel", frame: pd.DataFrame, batch_size: int = 4096) -> pd.DataFrame:
    import torch

    head = model.model.head
    feats = features_frame(model.roles.features, frame)
    x_num, x_cat = model.preprocessor.transform(feats)
    xn = torch.as_tensor(x_num, dtype=torch.float32)
    xc = torch.as_tensor(x_cat, dtype=torch.long)
    parts = []
    with torch.no_grad():
        for i in range(0, len(frame), batch_size):
            out, _ = model.model(xn[i : i + batch_size], xc[i : i + batch_size])
            p = head.predict_proba(out)
            if p is None:
                raise DataError(f"head {model.config.get('head')!r} gives no probabilities; drop --proba")
            parts.append(p.double().cpu().numpy())
    k = parts[0].shape[1] if parts else model.regions.bins.n_bins
    proba = np.concatenate(parts) if parts else np.zeros((0, k))
    bins = model.regions.bins
    if k == bins.n_bins:
        names = [f"{PROBA_PREFIX}{e:g}" for e in bins.left_edges]
    else:  # a head with its own classes (e.g. coarser groups)
        names = [f"{PROBA_PREFIX}class{j}" for j in range(k)]
    return pd.DataFrame(proba, index=frame.index, columns=names)


def has_probabilities(model: "AgeModel") -> bool:
    """Whether the model's head gives a probability per age bin (``--proba``)."""
    return bool(getattr(model.model.head, "probabilistic", False))


def check_proba(model: "AgeModel", proba: bool) -> None:
    """Refuse ``proba`` for a point head (one line naming the head and the fix)."""
    if proba and not has_probabilities(model):
        raise DataError(
            f"--proba needs a probabilistic head, but this model's head is {model.config.get('head', 'regression')!r} "
            "(point predictions); drop --proba"
        )


def predict_frame(model: "AgeModel", frame: pd.DataFrame, *, proba: bool = False) -> pd.DataFrame:
    """Predictions for every row of ``frame`` (same index): ``predicted_age``, ``age_lower`` /
    ``age_upper`` when the head gives intervals, ``proba_<age>`` per bin with ``proba=True``, and
    ``problem`` (``""`` for usable rows). Unusable rows (:func:`row_problems`) get NaN predictions.
    """
    check_proba(model, proba)
    problems = row_problems(model, frame)
    pred = model.predict(frame)
    if proba:
        pred = pred.join(_bin_proba(model, frame))
    bad = (problems != "").to_numpy()
    if bad.any():
        pred.loc[bad, :] = np.nan
    pred["problem"] = problems
    return pred


@dataclass
class PredictResult:
    """What :func:`predict_file` wrote: ``out``, the row count, the problem rows (0-based positions)."""

    out: Path
    n_rows: int
    problem_rows: np.ndarray
    columns: list[str] = field(default_factory=list)
    intervals: bool = False

    def summary(self) -> str:
        """Lines for the terminal: what was written and which rows could not be predicted."""
        shown = [c for c in self.columns if c != "problem"]
        lines = [f"wrote {self.n_rows} prediction(s) to {self.out} ({', '.join(shown)}, problem)"]
        if not self.intervals:
            lines.append("note: this model's head gives point predictions only, so there are no interval columns")
        n_bad = len(self.problem_rows)
        if n_bad:
            first = ", ".join(str(i + 1) for i in self.problem_rows[:MAX_LISTED_ROWS])
            more = " ..." if n_bad > MAX_LISTED_ROWS else ""
            lines.append(
                f"warning: {n_bad} row(s) could not be predicted (data rows {first}{more}; 1-based, header "
                "excluded): their prediction is empty and column 'problem' says why"
            )
        return "\n".join(lines)


def _output_format(out: Path) -> str:
    fmt = OUTPUT_FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise DataError(f"output file {str(out)!r} has unsupported extension {out.suffix!r}; use .csv or .parquet")
    return fmt


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def check_paths(data: str | os.PathLike[str], out: str | os.PathLike[str]) -> tuple[Path, str]:
    """Validate the output path before any work: extension, not the input file, writable folder."""
    out = Path(out)
    fmt = _output_format(out)
    if not str(data).startswith("builtin:") and _same_file(Path(data), out):
        raise DataError(f"--out {str(out)!r} is the input file; write predictions to another file")
    if out.exists() and out.is_dir():
        raise DataError(f"--out {str(out)!r} is a folder; give a file name ending in .csv or .parquet")
    parent = out.parent
    if parent.exists() and not parent.is_dir():
        raise DataError(f"cannot write {str(out)!r}: {str(parent)!r} is not a folder; choose another --out")
    return out, fmt


def write_table(frame: pd.DataFrame, out: Path, fmt: str) -> None:
    """Write ``frame`` to ``out`` atomically (temporary file + rename)."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create folder {str(out.parent)!r} ({exc.strerror}); choose another --out") from None
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        if fmt == "csv":
            frame.to_csv(tmp, index=False)
        else:
            d = frame.copy()
            for c in d.columns:
                if d[c].dtype == object and len(set(d[c].dropna().map(type))) > 1:
                    d[c] = d[c].astype("string")
            d.to_parquet(tmp, engine="pyarrow", index=False)
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DataError(f"cannot write {str(out)!r} ({exc.strerror}); choose another --out") from None


def predict_file(
    model: str | os.PathLike[str] | "AgeModel",
    data: str | os.PathLike[str] | pd.DataFrame,
    out: str | os.PathLike[str],
    *,
    proba: bool = False,
) -> PredictResult:
    """Predict every row of ``data`` (CSV / Parquet / DataFrame) and write ``out`` (.csv/.parquet).

    The output holds the input columns followed by the prediction columns of
    :func:`predict_frame`, in the input's row order.

    Raises:
        DataError: bad model folder, unreadable input, a model column missing from the input, an
            output path that is the input or has an unknown extension, ``proba`` for a point head.
    """
    from agesearch.export import AgeModel, load_model

    out_path, fmt = check_paths(data if not isinstance(data, pd.DataFrame) else "builtin:frame", out)
    m = model if isinstance(model, AgeModel) else load_model(model)
    check_proba(m, proba)  # before reading the data
    frame, _ = read_frame(data)
    frame.columns = [str(c) for c in frame.columns]
    features_frame(m.roles.features, frame)  # missing model columns: one-line error
    pred = predict_frame(m, frame, proba=proba)
    clash = [c for c in pred.columns if c in frame.columns]
    if clash:
        raise DataError(f"the input already has column(s) {clash} that predict writes; rename or drop them")
    result = pd.concat([frame, pred], axis=1)
    write_table(result, out_path, fmt)
    problem_rows = np.flatnonzero((pred["problem"] != "").to_numpy())
    return PredictResult(
        out=out_path, n_rows=len(frame), problem_rows=problem_rows, columns=list(pred.columns),
        intervals="age_lower" in pred.columns,
    )


__all__ = ["PredictResult", "predict_file", "predict_frame", "row_problems", "has_probabilities"]
