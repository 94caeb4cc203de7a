"""Data layer: load and validate a table, split it, preprocess it, and keep it as tensors-to-be.

Flow: :func:`load_table` (CSV / Parquet / ``builtin:NAME`` / DataFrame -> validated
:class:`AgeTable`) -> :func:`make_split` (seeded, stratified by age bin) -> :func:`prepare`
(:class:`Preprocessor` fitted on the training split only -> :class:`PreparedData`, which saves to and
loads from a folder so every trial and the report use the same rows).

Every user mistake raises :class:`DataError` with a one-line message naming the column and the fix.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
from scipy.special import ndtri

from agesearch.datasets import BUILTIN_IGNORE, BUILTIN_PREFIX, load_builtin
from agesearch.regions import AgeBins, Regions, RegionSpec

log = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "val", "test")
MAX_AGE = 150.0
MIN_ROWS = 20
MAX_INT_LEVELS = 10
"""Integer columns with at most this many distinct values are treated as categorical."""
MIN_FEW_SHOT_VAL = 30
"""Below this many few-shot validation rows the search metric is noisy: a warning is issued."""


class DataError(ValueError):
    """A problem with the user's data, with a one-line message naming the problem and the fix."""


# --------------------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class ColumnRoles:
    """Which column plays which role. ``numeric`` and ``categorical`` are the model features."""

    target: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    ignore: tuple[str, ...] = ()
    uncertainty: str | None = None

    @property
    def features(self) -> tuple[str, ...]:
        return self.numeric + self.categorical

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ColumnRoles":
        return cls(
            target=d["target"],
            numeric=tuple(d["numeric"]),
            categorical=tuple(d["categorical"]),
            ignore=tuple(d.get("ignore", ())),
            uncertainty=d.get("uncertainty"),
        )


@dataclass
class AgeTable:
    """A validated table: features, ages (float years), optional per-row age standard deviation."""

    features: pd.DataFrame
    y: np.ndarray
    roles: ColumnRoles
    source: str
    y_std: np.ndarray | None = None
    n_dropped: int = 0
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.y)


def read_frame(source: str | os.PathLike[str] | pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Read CSV or Parquet (by extension), a ``builtin:NAME`` data set, or pass a DataFrame through."""
    if isinstance(source, pd.DataFrame):
        return source.copy(), "<DataFrame>"
    text = str(source)
    if text.startswith(BUILTIN_PREFIX):
        try:
            return load_builtin(text[len(BUILTIN_PREFIX):]), text
        except (ValueError, ImportError) as exc:
            raise DataError(str(exc)) from None
    path = Path(text)
    if not path.exists():
        raise DataError(f"data file {text!r} does not exist; check the path or use builtin:synthetic")
    if not path.is_file():
        raise DataError(f"data path {text!r} is not a file; pass a .csv or .parquet file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            df = pd.read_parquet(path, engine="pyarrow")
        elif suffix in (".csv", ".txt", ".tsv", ".gz"):
            sep = "\t" if suffix == ".tsv" else ","
            header = [str(c) for c in pd.read_csv(path, sep=sep, nrows=1, header=None).iloc[0]]
            dup = sorted({c for c in header if header.count(c) > 1})
            if dup:
                raise DataError(f"duplicate column name(s) {dup} in {text}; rename them so each is unique")
            df = pd.read_csv(path, sep=sep)
        else:
            raise DataError(
                f"data file {text!r} has unsupported extension {suffix!r}; use .csv or .parquet"
            )
    except DataError:
        raise
    except pd.errors.EmptyDataError:
        raise DataError(f"data file {text!r} is empty; give a CSV with a header row and data rows") from None
    except Exception as exc:  # noqa: BLE001 - any reader failure is a user-facing data error
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"cannot read {text!r} ({first}); check that it is a valid {suffix.lstrip('.') or 'CSV'} file"
        ) from None
    return df, text


def _is_categorical(s: pd.Series, max_int_levels: int) -> bool:
    if pd.api.types.is_bool_dtype(s) or not pd.api.types.is_numeric_dtype(s):
        return True
    if pd.api.types.is_integer_dtype(s):
        return s.nunique(dropna=True) <= max_int_levels
    return False


def load_table(
    source: str | os.PathLike[str] | pd.DataFrame,
    target: str = "age",
    *,
    categorical: Sequence[str] | None = None,
    numeric: Sequence[str] | None = None,
    ignore: Sequence[str] = (),
    uncertainty: str | None = None,
    strict: bool = False,
    max_age: float = MAX_AGE,
    max_int_levels: int = MAX_INT_LEVELS,
) -> AgeTable:
    """Load and validate a table.

    Args:
        source: a ``.csv`` / ``.parquet`` path, ``builtin:synthetic`` / ``builtin:flchain``, or a
            DataFrame.
        target: the age column.
        categorical: force these columns to be categorical (others auto-detected: non-numeric,
            or integer with at most ``max_int_levels`` distinct values).
        numeric: force these columns to be numeric.
        ignore: columns that are never features (identifiers, leaks).
        uncertainty: optional column with the per-row age standard deviation (years, >= 0).
        strict: raise on NaN/inf targets instead of dropping those rows with a warning.
        max_age: ages above this are rejected as implausible.

    Raises:
        DataError: with a one-line message naming the problem and the fix.
    """
    df, name = read_frame(source)
    if not ignore and name.startswith(BUILTIN_PREFIX):
        ignore = tuple(c for c in BUILTIN_IGNORE.get(name[len(BUILTIN_PREFIX):], ()) if c != target)
    cols = [str(c) for c in df.columns]
    dup = sorted({c for c in cols if cols.count(c) > 1})
    if dup:
        raise DataError(f"duplicate column name(s) {dup} in {name}; rename them so each is unique")
    df.columns = cols
    if target not in df.columns:
        shown = ", ".join(cols[:12]) + (" ..." if len(cols) > 12 else "")
        raise DataError(
            f"target column {target!r} not found in {name}; pick one of: {shown} (flag --target)"
        )
    for role, names in (("categorical", categorical or ()), ("numeric", numeric or ()), ("ignore", ignore)):
        missing = [c for c in names if c not in df.columns]
        if missing:
            raise DataError(f"{role} column(s) {missing} not found in {name}; check the spelling")
    if uncertainty is not None and uncertainty not in df.columns:
        raise DataError(f"uncertainty column {uncertainty!r} not found in {name}; check the spelling")
    both = set(categorical or ()) & set(numeric or ())
    if both:
        raise DataError(f"column(s) {sorted(both)} declared both numeric and categorical; pick one")
    if target in (categorical or ()) or target in (numeric or ()) or target in ignore:
        raise DataError(f"target column {target!r} cannot also be a feature or ignored; remove it there")

    raw_y = df[target]
    y = pd.to_numeric(raw_y, errors="coerce")
    bad_text = raw_y.notna() & y.isna()
    if bad_text.all() or (bad_text.mean() > 0.5 and not pd.api.types.is_numeric_dtype(raw_y)):
        example = raw_y[bad_text].iloc[0] if bad_text.any() else ""
        raise DataError(
            f"target column {target!r} is not numeric (e.g. {str(example)[:30]!r}); give ages in years"
        )
    y_arr = y.to_numpy(dtype=float)
    bad = ~np.isfinite(y_arr)
    warnings: list[str] = []
    n_dropped = int(bad.sum())
    if n_dropped:
        if strict:
            raise DataError(
                f"target column {target!r} has {n_dropped} missing/non-numeric/inf value(s); "
                "remove those rows or run without --strict to drop them"
            )
        warnings.append(f"dropped {n_dropped} row(s) whose target {target!r} is missing, non-numeric or inf")
        df = df.loc[~bad].reset_index(drop=True)
        y_arr = y_arr[~bad]
    if len(y_arr) and y_arr.min() < 0:
        raise DataError(
            f"target column {target!r} has negative ages (min {y_arr.min():g}); ages must be in years >= 0"
        )
    if len(y_arr) and y_arr.max() > max_age:
        raise DataError(
            f"target column {target!r} has implausible ages (max {y_arr.max():g} > {max_age:g}); "
            "check the unit (years) or the column"
        )
    if len(y_arr) < MIN_ROWS:
        raise DataError(
            f"{name} has {len(y_arr)} usable row(s); at least {MIN_ROWS} are needed for a "
            "train/validation/test split"
        )
    if np.unique(y_arr).size < 2:
        raise DataError(f"target column {target!r} has a single distinct age; age must vary to be learned")

    y_std = None
    if uncertainty is not None:
        u = pd.to_numeric(df[uncertainty], errors="coerce").to_numpy(dtype=float)
        if not np.all(np.isfinite(u)) or (u < 0).any():
            raise DataError(
                f"uncertainty column {uncertainty!r} must be finite and >= 0 on every row; fill or fix it"
            )
        y_std = u

    reserved = {target, *ignore} | ({uncertainty} if uncertainty else set())
    cand = [c for c in df.columns if c not in reserved]
    cat_cols: list[str] = []
    num_cols: list[str] = []
    for c in cand:
        s = df[c]
        if s.isna().all():
            raise DataError(f"feature column {c!r} is entirely missing; add it to ignore (--ignore {c})")
        if s.nunique(dropna=True) < 2 and not s.isna().any():
            raise DataError(f"feature column {c!r} is constant; add it to ignore (--ignore {c})")
        if c in (categorical or ()):
            cat_cols.append(c)
        elif c in (numeric or ()):
            if not pd.api.types.is_numeric_dtype(s):
                conv = pd.to_numeric(s, errors="coerce")
                if (conv.isna() & s.notna()).any():
                    bad_v = s[conv.isna() & s.notna()].iloc[0]
                    raise DataError(
                        f"numeric column {c!r} holds text (e.g. {str(bad_v)[:30]!r}); clean it or "
                        "declare it categorical"
                    )
                df[c] = conv
            num_cols.append(c)
        elif _is_categorical(s, max_int_levels):
            cat_cols.append(c)
        else:
            num_cols.append(c)
    if not cat_cols and not num_cols:
        raise DataError(f"{name} has no feature columns besides the target; add feature columns")
    for c in num_cols:
        v = df[c].to_numpy(dtype=float)
        if np.isinf(v).any():
            df[c] = np.where(np.isinf(v), np.nan, v)
            warnings.append(f"numeric column {c!r}: {int(np.isinf(v).sum())} inf value(s) treated as missing")

    roles = ColumnRoles(
        target=target,
        numeric=tuple(num_cols),
        categorical=tuple(cat_cols),
        ignore=tuple(ignore),
        uncertainty=uncertainty,
    )
    for w in warnings:
        log.warning(w)
    return AgeTable(
        features=df[list(roles.features)].reset_index(drop=True),
        y=y_arr.astype(np.float64),
        roles=roles,
        source=name,
        y_std=y_std,
        n_dropped=n_dropped,
        warnings=warnings,
    )


# --------------------------------------------------------------------------------------- splitting


@dataclass(frozen=True)
class Split:
    """Row positions (into the :class:`AgeTable`) of each split."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    seed: int

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in SPLITS:
            raise KeyError(f"unknown split {name!r}; valid: {', '.join(SPLITS)}")
        return getattr(self, name)

    def labels(self, n_rows: int) -> np.ndarray:
        """Split name of every row, shape ``(n_rows,)``."""
        out = np.empty(n_rows, dtype=object)
        for s in SPLITS:
            out[self[s]] = s
        return out


def make_split(
    y: np.ndarray,
    *,
    bin_width: float = 1.0,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    seed: int = 0,
) -> Split:
    """Seeded split stratified by age bin.

    Inside each bin the rows are shuffled and cut by the fractions; the fractional remainders are
    resolved by seeded random rounding, so even bins with 1-3 rows contribute to validation and test
    in proportion (on average) instead of always landing in train.
    """
    fr = np.asarray(fractions, dtype=float)
    if fr.shape != (3,) or (fr < 0).any() or not math.isclose(fr.sum(), 1.0, abs_tol=1e-6) or fr[0] <= 0:
        raise DataError(f"split fractions must be three non-negative numbers summing to 1, got {fractions}")
    y = np.asarray(y, dtype=float)
    n = len(y)
    if n < MIN_ROWS:
        raise DataError(f"{n} rows are too few to split; at least {MIN_ROWS} are needed")
    rng = np.random.default_rng(seed)
    bins = AgeBins.from_labels(y, bin_width)
    idx = bins.assign(y)
    order = np.argsort(idx, kind="stable")
    bounds = np.flatnonzero(np.diff(idx[order])) + 1
    parts: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    for group in np.split(order, bounds):
        group = rng.permutation(group)
        m = len(group)
        expected = fr * m
        counts = np.floor(expected).astype(int)
        rem = expected - counts
        short = m - counts.sum()
        if short > 0:
            pick = rng.choice(3, size=short, replace=False, p=rem / rem.sum())
            counts[pick] += 1
        cuts = np.cumsum(counts)[:-1]
        for s, chunk in zip(SPLITS, np.split(group, cuts)):
            parts[s].append(chunk)
    out = {s: np.sort(np.concatenate(parts[s])).astype(np.int64) for s in SPLITS}
    for s in SPLITS:
        if fr[SPLITS.index(s)] > 0 and len(out[s]) == 0:
            raise DataError(f"the {s} split is empty with {n} rows; provide more rows")
    return Split(train=out["train"], val=out["val"], test=out["test"], seed=seed)


# --------------------------------------------------------------------------------------- preprocessing


class Preprocessor:
    """Feature preprocessing fitted on the training split only.

    Numeric columns: median imputation plus a 0/1 missing indicator (for columns with missing values
    in training), then a quantile transform to a standard normal (as in the FT-Transformer paper).
    Categorical columns: integer codes; code 0 is reserved for levels unseen in training, code 1 for
    missing values, the training levels follow in sorted order.

    Args:
        numeric: numeric column names.
        categorical: categorical column names.
        quantile: apply the quantile transform (else standardise by mean/std).
        n_quantiles: number of quantiles stored per column.
    """

    UNKNOWN = 0
    MISSING = 1

    def __init__(
        self,
        numeric: Sequence[str],
        categorical: Sequence[str],
        *,
        quantile: bool = True,
        n_quantiles: int = 1000,
    ) -> None:
        if n_quantiles < 2:
            raise ValueError(f"n_quantiles must be >= 2, got {n_quantiles}")
        self.numeric = list(numeric)
        self.categorical = list(categorical)
        self.quantile = quantile
        self.n_quantiles = n_quantiles
        self.medians_: dict[str, float] = {}
        self.indicators_: list[str] = []
        self.quantiles_: dict[str, list[float]] = {}
        self.scale_: dict[str, tuple[float, float]] = {}
        self.levels_: dict[str, list[str]] = {}

    # -- fitting
    def fit(self, frame: pd.DataFrame) -> "Preprocessor":
        for c in self.numeric:
            v = pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=float)
            ok = v[np.isfinite(v)]
            if ok.size == 0:
                raise DataError(f"numeric column {c!r} has no value in the training split; add it to ignore")
            self.medians_[c] = float(np.median(ok))
            if ok.size < v.size:
                self.indicators_.append(c)
            if self.quantile:
                refs = np.linspace(0.0, 1.0, min(self.n_quantiles, max(ok.size, 2)))
                self.quantiles_[c] = np.quantile(ok, refs).tolist()
            else:
                sd = float(ok.std())
                self.scale_[c] = (float(ok.mean()), sd if sd > 0 else 1.0)
        for c in self.categorical:
            s = frame[c]
            self.levels_[c] = sorted({str(v) for v in s[s.notna()].tolist()})
        return self

    # -- transforming
    @property
    def n_num_features(self) -> int:
        """Number of numeric model inputs (transformed columns plus missing indicators)."""
        return len(self.numeric) + len(self.indicators_)

    @property
    def cat_cardinalities(self) -> list[int]:
        """Cardinality of each categorical input (reserved codes included)."""
        return [len(self.levels_[c]) + 2 for c in self.categorical]

    def _transform_numeric(self, c: str, v: np.ndarray) -> np.ndarray:
        v = np.where(np.isfinite(v), v, self.medians_[c])
        if not self.quantile:
            m, s = self.scale_[c]
            return (v - m) / s
        q = np.asarray(self.quantiles_[c])
        refs = np.linspace(0.0, 1.0, q.size)
        # Average of the forward and backward interpolation, as scikit-learn does for ties.
        u = 0.5 * (np.interp(v, q, refs) - np.interp(-v, -q[::-1], -refs[::-1]))
        return ndtri(np.clip(u, 1e-7, 1 - 1e-7))

    def transform(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Model inputs.

        Returns:
            ``x_num`` float32 of shape ``(n, n_num_features)`` and ``x_cat`` int64 of shape
            ``(n, len(categorical))``.
        """
        if not self.medians_ and self.numeric:
            raise RuntimeError("Preprocessor.transform called before fit")
        missing = [c for c in self.numeric + self.categorical if c not in frame.columns]
        if missing:
            raise DataError(f"column(s) {missing} used by the model are missing from the data; add them")
        n = len(frame)
        num = []
        for c in self.numeric:
            v = pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=float)
            num.append(self._transform_numeric(c, v))
        for c in self.indicators_:
            v = pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=float)
            num.append((~np.isfinite(v)).astype(float))
        x_num = np.stack(num, axis=1).astype(np.float32) if num else np.zeros((n, 0), np.float32)
        cats = []
        for c in self.categorical:
            lut = {lv: i + 2 for i, lv in enumerate(self.levels_[c])}
            s = frame[c]
            codes = np.array(
                [self.MISSING if pd.isna(v) else lut.get(str(v), self.UNKNOWN) for v in s.tolist()],
                dtype=np.int64,
            )
            cats.append(codes)
        x_cat = np.stack(cats, axis=1) if cats else np.zeros((n, 0), np.int64)
        return x_num, x_cat

    def unusable_rows(self, frame: pd.DataFrame) -> np.ndarray:
        """Boolean mask of rows with every model feature missing (nothing left to predict from)."""
        cols = self.numeric + self.categorical
        if not cols:
            return np.zeros(len(frame), dtype=bool)
        return frame[cols].isna().all(axis=1).to_numpy()

    # -- serialisation
    def to_dict(self) -> dict[str, Any]:
        return {
            "numeric": self.numeric,
            "categorical": self.categorical,
            "quantile": self.quantile,
            "n_quantiles": self.n_quantiles,
            "medians": self.medians_,
            "indicators": self.indicators_,
            "quantiles": self.quantiles_,
            "scale": {k: list(v) for k, v in self.scale_.items()},
            "levels": self.levels_,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Preprocessor":
        p = cls(d["numeric"], d["categorical"], quantile=d["quantile"], n_quantiles=d["n_quantiles"])
        p.medians_ = {k: float(v) for k, v in d["medians"].items()}
        p.indicators_ = list(d["indicators"])
        p.quantiles_ = {k: list(v) for k, v in d["quantiles"].items()}
        p.scale_ = {k: (float(v[0]), float(v[1])) for k, v in d["scale"].items()}
        p.levels_ = {k: list(v) for k, v in d["levels"].items()}
        return p


# --------------------------------------------------------------------------------------- prepared data


@dataclass
class PreparedData:
    """Everything a trial needs, as arrays per split, plus the state to reproduce it.

    ``x_num[s]`` float32 ``(n_s, n_num)``, ``x_cat[s]`` int64 ``(n_s, n_cat)``, ``y[s]`` float64
    ``(n_s,)``, ``y_std[s]`` (label uncertainty) or None, ``rows[s]`` the table row positions.
    """

    x_num: dict[str, np.ndarray]
    x_cat: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    rows: dict[str, np.ndarray]
    roles: ColumnRoles
    preprocessor: Preprocessor
    regions: Regions
    seed: int
    source: str
    y_std: dict[str, np.ndarray] | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def bins(self) -> AgeBins:
        return self.regions.bins

    @property
    def n_num(self) -> int:
        return self.x_num["train"].shape[1]

    @property
    def cat_cardinalities(self) -> list[int]:
        return self.preprocessor.cat_cardinalities

    def region_of(self, split: str) -> np.ndarray:
        """Region name of each row of ``split``."""
        return self.regions.of(self.y[split])

    def without(self, split: str) -> "PreparedData":
        """A copy with ``split`` emptied (search trials get the data without the test split)."""
        def drop(d: dict[str, np.ndarray] | None) -> dict[str, np.ndarray] | None:
            if d is None:
                return None
            return {k: (v[:0] if k == split else v) for k, v in d.items()}

        return PreparedData(
            x_num=drop(self.x_num), x_cat=drop(self.x_cat), y=drop(self.y), rows=drop(self.rows),
            roles=self.roles, preprocessor=self.preprocessor, regions=self.regions, seed=self.seed,
            source=self.source, y_std=drop(self.y_std), warnings=list(self.warnings),
        )  # fmt: skip

    # -- persistence (a folder: arrays.npz + prep.json; no pickle)
    def save(self, folder: str | os.PathLike[str]) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {}
        for s in SPLITS:
            arrays[f"x_num_{s}"] = self.x_num[s]
            arrays[f"x_cat_{s}"] = self.x_cat[s]
            arrays[f"y_{s}"] = self.y[s]
            arrays[f"rows_{s}"] = self.rows[s]
            if self.y_std is not None:
                arrays[f"y_std_{s}"] = self.y_std[s]
        tmp = folder / "arrays.tmp.npz"
        np.savez(tmp, **arrays)
        os.replace(tmp, folder / "arrays.npz")
        meta = {
            "roles": self.roles.to_dict(),
            "preprocessor": self.preprocessor.to_dict(),
            "regions": self.regions.to_dict(),
            "seed": self.seed,
            "source": self.source,
            "warnings": self.warnings,
        }
        (folder / "prep.json").write_text(json.dumps(meta))
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> "PreparedData":
        folder = Path(folder)
        try:
            meta = json.loads((folder / "prep.json").read_text())
            arrays = np.load(folder / "arrays.npz", allow_pickle=False)
        except FileNotFoundError:
            raise DataError(f"no prepared data in {str(folder)!r}; run the search there first") from None
        has_std = "y_std_train" in arrays.files
        return cls(
            x_num={s: arrays[f"x_num_{s}"] for s in SPLITS},
            x_cat={s: arrays[f"x_cat_{s}"] for s in SPLITS},
            y={s: arrays[f"y_{s}"] for s in SPLITS},
            rows={s: arrays[f"rows_{s}"] for s in SPLITS},
            y_std={s: arrays[f"y_std_{s}"] for s in SPLITS} if has_std else None,
            roles=ColumnRoles.from_dict(meta["roles"]),
            preprocessor=Preprocessor.from_dict(meta["preprocessor"]),
            regions=Regions.from_dict(meta["regions"]),
            seed=int(meta["seed"]),
            source=meta["source"],
            warnings=list(meta.get("warnings", [])),
        )


def prepare(
    table: AgeTable,
    *,
    seed: int = 0,
    split: Split | None = None,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    bin_width: float = 1.0,
    region_spec: RegionSpec | None = None,
    quantile: bool = True,
) -> PreparedData:
    """Split ``table`` (unless ``split`` is given), fit preprocessing on train, build regions.

    Warns (and records in ``warnings``) when the validation split has fewer than
    :data:`MIN_FEW_SHOT_VAL` few-shot rows, since the search optimises that number.
    """
    if split is None:
        split = make_split(table.y, bin_width=bin_width, fractions=fractions, seed=seed)
    pre = Preprocessor(table.roles.numeric, table.roles.categorical, quantile=quantile)
    pre.fit(table.features.iloc[split.train])
    bins = AgeBins.from_labels(table.y, bin_width)
    regions = Regions.from_train(table.y[split.train], bins, region_spec or RegionSpec())
    x_num, x_cat, y, rows = {}, {}, {}, {}
    y_std = {} if table.y_std is not None else None
    for s in SPLITS:
        r = split[s]
        x_num[s], x_cat[s] = pre.transform(table.features.iloc[r])
        y[s] = table.y[r]
        rows[s] = r
        if y_std is not None:
            y_std[s] = table.y_std[r]  # type: ignore[index]
    warnings = list(table.warnings)
    n_few_val = int((regions.of(y["val"]) == "few").sum())
    if n_few_val < MIN_FEW_SHOT_VAL:
        msg = (
            f"the validation split has only {n_few_val} few-shot row(s) (< {MIN_FEW_SHOT_VAL}): "
            "few-shot MAE will be noisy; consider region mode 'tertile' or larger few-shot threshold"
        )
        log.warning(msg)
        warnings.append(msg)
    return PreparedData(
        x_num=x_num, x_cat=x_cat, y=y, rows=rows, roles=table.roles, preprocessor=pre,
        regions=regions, seed=seed, source=table.source, y_std=y_std, warnings=warnings,
    )  # fmt: skip


def features_frame(columns: Iterable[str], frame: pd.DataFrame) -> pd.DataFrame:
    """The model's feature columns of ``frame``, for prediction on new files."""
    cols = list(columns)
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise DataError(f"column(s) {missing} used by the model are missing from the data; add them")
    return frame[cols]
