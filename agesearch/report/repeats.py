"""Repeated evaluation: re-split train+validation vs test several times and re-prepare each split.

A single test split cannot separate two close strategies when the few-shot region holds a dozen
rows. The report's refit can therefore be repeated on ``R`` splits of the same table:

* ``mode="repeated"`` (``--repeats R``): repeat 0 is the search's own split, exactly as saved in
  ``EXPERIMENT/data``; repeats 1..R-1 are fresh seeded splits of the union of the search's
  train+validation+test rows by :func:`agesearch.data.make_split` (stratified by age bin, same
  fractions as the search's split, seed ``seed + 1000 * r``).
* ``mode="kfold"`` (``--outer-folds k``): the union is cut into ``k`` seeded folds stratified by age
  bin; fold ``r`` is the test split of repeat ``r`` and the remaining rows are split into
  train/validation (stratified, the search's train:validation ratio).

Every repeat is re-prepared with :func:`agesearch.data.prepare` on its own split, so the feature
preprocessing is refitted on that repeat's training rows only. The age regions (many / medium /
few / zero shot) are kept as the search defined them, so "few-shot" means the same ages in every
repeat and per-region errors can be pooled.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from agesearch.data import AgeTable, DataError, PreparedData, Split, load_table, make_split, prepare
from agesearch.report.experiment import ReportError

FEW_SHOT_TEST_MIN = 20
"""Below this many few-shot rows in the search's test split, the report repeats by default."""

DEFAULT_REPEATS = 5
SEED_STRIDE = 1000


def default_repeats(data: PreparedData) -> int:
    """``DEFAULT_REPEATS`` when the search's test split has fewer than :data:`FEW_SHOT_TEST_MIN`
    few-shot rows, else 1."""
    n_few = int((data.region_of("test") == "few").sum()) if len(data.y["test"]) else 0
    return DEFAULT_REPEATS if n_few < FEW_SHOT_TEST_MIN else 1


def reload_table(meta: dict[str, Any], data: PreparedData) -> AgeTable:
    """The search's table, reloaded as ``experiment.json``'s ``data`` block says, and checked
    against the saved prepared data (same rows, same ages)."""
    block = meta.get("data") or {}
    source = block.get("source") or data.source
    if not source or str(source).startswith("<"):
        raise ReportError(
            "repeated evaluation needs to reload the table, but experiment.json has no usable "
            "'data' block (source); rerun the search from a file or use --repeats 1"
        )
    kwargs = {k: block[k] for k in ("categorical", "numeric", "ignore", "uncertainty", "max_age") if block.get(k) is not None}
    try:
        table = load_table(source, str(block.get("target", data.roles.target)), **kwargs)
    except DataError as exc:
        raise ReportError(f"cannot reload the search's table for repeated evaluation: {exc}") from None
    n = len(table.y)
    for s in ("train", "val", "test"):
        rows = data.rows[s]
        if len(rows) and (rows.max() >= n or not np.allclose(table.y[rows], data.y[s])):
            raise ReportError(
                f"the table {source!r} no longer matches the search's saved data (ages of the {s} "
                "split differ); restore the original file or use --repeats 1"
            )
    return table


def _fractions(data: PreparedData) -> tuple[float, float, float]:
    n = np.array([len(data.y[s]) for s in ("train", "val", "test")], dtype=float)
    return tuple((n / n.sum()).tolist())  # type: ignore[return-value]


def repeat_splits(
    table_y: np.ndarray, data: PreparedData, *, repeats: int = 1, outer_folds: int = 0, seed: int = 0
) -> list[Split]:
    """The splits of every repeat, as row positions into the table.

    Args:
        table_y: ages of the whole table, shape ``(n,)``.
        data: the search's prepared data (its split is repeat 0 in ``repeated`` mode).
        repeats: number of repeated splits (``outer_folds == 0``).
        outer_folds: ``k >= 2`` for outer k-fold instead (``repeats`` is then ignored).
        seed: base seed.
    """
    if outer_folds and outer_folds < 2:
        raise ReportError(f"outer_folds must be 0 (off) or >= 2, got {outer_folds}")
    if repeats < 1:
        raise ReportError(f"repeats must be >= 1, got {repeats}")
    union = np.sort(np.concatenate([data.rows[s] for s in ("train", "val", "test")])).astype(np.int64)
    y = np.asarray(table_y, dtype=float)[union]
    width = float(data.bins.width)
    fr = _fractions(data)
    if not outer_folds:
        out = [Split(train=data.rows["train"], val=data.rows["val"], test=data.rows["test"], seed=data.seed)]
        for r in range(1, repeats):
            s = make_split(y, bin_width=width, fractions=fr, seed=seed + SEED_STRIDE * r)
            out.append(Split(train=union[s.train], val=union[s.val], test=union[s.test], seed=s.seed))
        return out
    k = int(outer_folds)
    if len(union) < 2 * k:
        raise ReportError(f"{len(union)} rows are too few for {k} outer folds; use fewer folds")
    rng = np.random.default_rng(seed)
    # stratified folds: order rows by (age bin, random), deal them out round-robin
    bin_idx = np.floor(y / width).astype(np.int64)
    order = np.lexsort((rng.random(len(y)), bin_idx))
    fold = np.empty(len(y), dtype=np.int64)
    fold[order] = (np.arange(len(y)) + int(rng.integers(k))) % k
    val_share = fr[1] / (fr[0] + fr[1]) if fr[0] + fr[1] > 0 else 0.15
    out = []
    for r in range(k):
        test = union[fold == r]
        rest = union[fold != r]
        s = make_split(np.asarray(table_y, dtype=float)[rest], bin_width=width,
                       fractions=(1.0 - val_share, val_share, 0.0), seed=seed + SEED_STRIDE * (r + 1))
        out.append(Split(train=rest[s.train], val=rest[s.val], test=np.sort(test), seed=s.seed))
    return out


def prepare_repeats(table: AgeTable, data: PreparedData, splits: list[Split], *, keep_first: bool = True) -> list[PreparedData]:
    """Prepare every repeat on its own split (preprocessing refitted on its training rows), with the
    search's regions. With ``keep_first`` the search's saved data is used as-is for a repeat whose
    split is the search's own."""
    out = []
    for i, sp in enumerate(splits):
        same = keep_first and i == 0 and all(np.array_equal(sp[s], data.rows[s]) for s in ("train", "val", "test"))
        if same:
            out.append(data)
            continue
        p = prepare(table, split=sp, bin_width=float(data.bins.width), seed=int(sp.seed))
        out.append(dataclasses.replace(p, regions=data.regions))
    return out


def split_membership(splits: list[Split]) -> "Any":
    """Long table ``repeat, row, split`` of every repeat (written as ``splits.parquet``)."""
    import pandas as pd

    frames = []
    for r, sp in enumerate(splits):
        for s in ("train", "val", "test"):
            frames.append(pd.DataFrame({"repeat": np.int64(r), "row": sp[s].astype(np.int64), "split": s}))
    return pd.concat(frames, ignore_index=True)


def describe(repeats: int, outer_folds: int) -> str:
    if outer_folds:
        return f"outer {outer_folds}-fold cross-validation (each fold the test split once)"
    if repeats == 1:
        return "the search's own test split"
    return f"{repeats} repeated stratified splits (repeat 0 = the search's own split)"


__all__ = [
    "DEFAULT_REPEATS", "FEW_SHOT_TEST_MIN", "default_repeats", "describe", "prepare_repeats",
    "reload_table", "repeat_splits", "split_membership",
]
