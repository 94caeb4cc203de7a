"""Profile an age table before searching: histogram with shot regions, counts, features, warnings.

:func:`profile` is the exploratory step users run first (``agesearch profile``). It loads the table
with :func:`agesearch.data.load_table` and splits it with :func:`agesearch.data.prepare`, exactly as
``agesearch search`` will (same seed, same bins, same region thresholds), so the many / medium /
few / zero-shot regions it shows are the ones the search optimises. It reports:

- an age histogram (PNG) with the regions shaded and the training-count thresholds drawn;
- a table of rows per age bin, per split and region (CSV);
- a feature summary: type, missing %, distinct values, association with age (Pearson r for numeric
  columns, the correlation ratio eta for categorical ones) (CSV);
- warnings, each with a code (:data:`WARNING_CODES`): empty regions, a tiny validation few-shot set,
  top- or bottom-coded ages (a spike of rows at the maximum or minimum age), leaky columns (almost
  perfectly correlated with the target, or determining it), identifier-like columns.

Nothing is pickled: the outputs are PNG, CSV and JSON.
"""

from __future__ import annotations

import json
import logging
import math
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd

from agesearch.data import MIN_FEW_SHOT_VAL, SPLITS, DataError, load_table, prepare
from agesearch.regions import REGIONS, AgeBins, Regions, RegionSpec

log = logging.getLogger(__name__)

LEAK_CORR = 0.98
"""A numeric column whose |Pearson r| with the target exceeds this is flagged as leaky."""
SPIKE_FACTOR = 2.0
"""Rows at the extreme age must exceed this multiple of the larger neighbouring count to be a spike."""
SPIKE_MIN_ROWS = 10
"""A spike at the extreme age needs at least this many rows (fewer is noise)."""
ID_FRACTION = 0.5
"""A categorical column with more distinct values than this fraction of rows looks like an identifier."""

WARNING_CODES: tuple[str, ...] = (
    "data",
    "empty_region",
    "few_shot_val",
    "zero_shot",
    "top_coded",
    "bottom_coded",
    "leaky_column",
    "identifier",
)
"""Codes of :class:`ProfileWarning`, in the order they are reported."""

REGION_COLORS: dict[str, str] = {
    "many": "#4daf4a",
    "medium": "#ffd92f",
    "few": "#ff7f00",
    "zero": "#e41a1c",
}
FILES: dict[str, str] = {
    "histogram": "age_histogram.png",
    "bins": "bins.csv",
    "features": "features.csv",
    "summary": "profile.json",
}
"""Output files written into ``out`` (fixed names: nothing is written outside ``out``)."""


@dataclass(frozen=True)
class ProfileWarning:
    """One finding: ``code`` (one of :data:`WARNING_CODES`), a one-line ``message`` with the fix,
    and the ``column`` it concerns, if any."""

    code: str
    message: str
    column: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "column": self.column}


@dataclass
class ProfileResult:
    """What :func:`profile` found.

    Attributes:
        source: the data source as given.
        target: the age column.
        n_rows: usable rows (rows with a missing target are dropped, see ``warnings``).
        seed: the split seed.
        regions: the :class:`~agesearch.regions.Regions` built from the training split.
        split_sizes: rows per split.
        bins: one row per age bin: ``bin``, ``age_from``, ``age_to``, ``n_total``, ``n_train``,
            ``n_val``, ``n_test``, ``region``.
        region_table: one row per region: ``region``, ``bins``, ``n_train``, ``n_val``, ``n_test``.
        features: one row per feature: ``column``, ``type``, ``missing_pct``, ``n_distinct``,
            ``corr_age``, ``corr_kind`` (``pearson`` or ``eta``).
        warnings: the findings, most structural first.
        files: output paths by kind (``histogram``, ``bins``, ``features``, ``summary``), empty
            when no ``out`` folder was given.
    """

    source: str
    target: str
    n_rows: int
    seed: int
    regions: Regions
    split_sizes: dict[str, int]
    bins: pd.DataFrame
    region_table: pd.DataFrame
    features: pd.DataFrame
    warnings: list[ProfileWarning] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)
    age_range: tuple[float, float] = (math.nan, math.nan)

    @property
    def age_bins(self) -> AgeBins:
        return self.regions.bins

    def codes(self) -> list[str]:
        """The warning codes, in order."""
        return [w.code for w in self.warnings]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (what ``profile.json`` holds)."""
        return {
            "source": self.source,
            "target": self.target,
            "n_rows": self.n_rows,
            "seed": self.seed,
            "age_min": self.age_range[0],
            "age_max": self.age_range[1],
            "bin_width": self.age_bins.width,
            "region_spec": {"mode": self.regions.spec.mode, "many": self.regions.spec.many,
                            "few": self.regions.spec.few},
            "split_sizes": self.split_sizes,
            "regions": self.region_table.to_dict(orient="records"),
            "features": json.loads(self.features.to_json(orient="records")),
            "warnings": [w.to_dict() for w in self.warnings],
            "files": {k: str(v) for k, v in self.files.items()},
        }  # fmt: skip

    def summary(self, max_features: int = 5) -> str:
        """A concise, human-readable summary (what the command prints)."""
        lo, hi = self.age_range
        n_num = int((self.features["type"] == "numeric").sum())
        n_cat = len(self.features) - n_num
        s = self.split_sizes
        lines = [
            f"{self.source}: {self.n_rows:,} rows, target {self.target!r} {lo:g}-{hi:g}, "
            f"{len(self.features)} features ({n_num} numeric, {n_cat} categorical)",
            f"split (seed {self.seed}): train {s['train']:,} / val {s['val']:,} / test {s['test']:,}; "
            f"{self.age_bins.n_bins} bins of {self.age_bins.width:g} year(s); regions from training "
            f"counts ({self._spec_text()})",
            f"  {'region':<8}{'bins':>6}{'train':>8}{'val':>7}{'test':>7}",
        ]
        for r in self.region_table.itertuples(index=False):
            lines.append(f"  {r.region:<8}{r.bins:>6}{r.n_train:>8}{r.n_val:>7}{r.n_test:>7}")
        assoc = self.features.assign(a=self.features["corr_age"].abs()).dropna(subset=["a"])
        assoc = assoc.sort_values("a", ascending=False).head(max_features)
        if len(assoc):
            lines.append(
                "strongest age associations: "
                + ", ".join(f"{c} {v:+.2f}" for c, v in zip(assoc["column"], assoc["corr_age"]))
            )
        if self.warnings:
            lines.append(f"warnings ({len(self.warnings)}):")
            lines.extend(f"  - [{w.code}] {w.message}" for w in self.warnings)
        else:
            lines.append("warnings: none")
        if self.files:
            folder = self.files["summary"].parent
            lines.append(f"outputs in {folder}: " + ", ".join(p.name for p in self.files.values()))
        return "\n".join(lines)

    def _spec_text(self) -> str:
        spec = self.regions.spec
        if spec.mode == "tertile":
            return "tertiles of populated bins"
        return f"many > {spec.many}, few < {spec.few} training rows"


# --------------------------------------------------------------------------------------- helpers


@contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Silence a logger's warnings: the profile reports them itself, once."""
    lg = logging.getLogger(logger_name)
    old = lg.level
    lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        lg.setLevel(old)


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return math.nan
    x, y = x[ok], y[ok]
    sx, sy = x.std(), y.std()
    if sx == 0 or sy == 0:
        return math.nan
    return float(np.mean((x - x.mean()) * (y - y.mean())) / (sx * sy))


def _eta(codes: pd.Series, y: np.ndarray) -> float:
    """Correlation ratio: sqrt(between-group / total sum of squares), missing values excluded."""
    ok = codes.notna().to_numpy()
    if ok.sum() < 3:
        return math.nan
    yy = y[ok]
    total = float(((yy - yy.mean()) ** 2).sum())
    if total == 0:
        return math.nan
    g = pd.DataFrame({"k": codes[ok].astype(str).to_numpy(), "y": yy}).groupby("k")["y"]
    between = float((g.size() * (g.mean() - yy.mean()) ** 2).sum())
    return math.sqrt(max(0.0, min(1.0, between / total)))


def _determines(col: pd.Series, y: np.ndarray) -> bool:
    """True if the target is constant within each repeated value of ``col`` (and repeated values
    cover most rows, so an identifier, unique per row, does not count)."""
    ok = col.notna().to_numpy()
    if ok.sum() < 10:
        return False
    frame = pd.DataFrame({"k": col[ok].astype(str).to_numpy(), "y": y[ok]})
    stats = frame.groupby("k")["y"].agg(["size", "nunique"])
    rep = stats[stats["size"] >= 2]
    if len(rep) < 2 or rep["size"].sum() < 0.5 * ok.sum():
        return False
    return bool((rep["nunique"] == 1).all())


def _spike(y: np.ndarray, at: str) -> tuple[int, int, float] | None:
    """Rows exactly at the extreme age versus its two nearest neighbours on the age grid.

    The grid step is the median gap between distinct ages (1 for integer ages). Returns
    ``(n_at_extreme, larger_neighbour_count, extreme_age)`` when it is a spike, else None.
    """
    u = np.unique(y)
    if u.size < 4:
        return None
    step = float(np.median(np.diff(u)))
    ext = float(u[-1] if at == "max" else u[0])
    sign = -1.0 if at == "max" else 1.0
    n_ext = int((y == ext).sum())
    neigh = []
    for k in (1, 2):
        c = ext + sign * k * step
        neigh.append(int(((y > c - 0.5 * step) & (y <= c + 0.5 * step)).sum()))
    ref = max(max(neigh), 1)
    if n_ext >= SPIKE_MIN_ROWS and n_ext >= SPIKE_FACTOR * ref:
        return n_ext, max(neigh), ext
    return None


# --------------------------------------------------------------------------------------- checks


def _feature_table(features: pd.DataFrame, numeric: Sequence[str], y: np.ndarray) -> pd.DataFrame:
    """Per-feature summary. The association is Pearson r for numeric columns and eta for
    categorical ones; eta is left out (NaN) for identifier-like columns, where it is trivially 1."""
    rows = []
    n = len(features)
    for c in features.columns:
        s = features[c]
        is_num = c in numeric
        if is_num:
            corr = _pearson(pd.to_numeric(s, errors="coerce").to_numpy(dtype=float), y)
        elif s.nunique(dropna=True) > ID_FRACTION * n:
            corr = math.nan
        else:
            corr = _eta(s, y)
        rows.append({
            "column": c,
            "type": "numeric" if is_num else "categorical",
            "missing_pct": round(100.0 * float(s.isna().mean()), 3),
            "n_distinct": int(s.nunique(dropna=True)),
            "corr_age": corr,
            "corr_kind": "pearson" if is_num else "eta",
        })  # fmt: skip
    return pd.DataFrame(
        rows, columns=["column", "type", "missing_pct", "n_distinct", "corr_age", "corr_kind"]
    )


def _region_warnings(
    regions: Regions, region_table: pd.DataFrame, target: str
) -> list[ProfileWarning]:
    out = []
    spec = regions.spec
    fixes = {
        "many": f"no bin has more than {spec.many} training rows; lower the many-shot threshold "
                "or use region mode 'tertile'",
        "medium": "every populated bin is many- or few-shot; widen the gap between the thresholds "
                  "or use region mode 'tertile'",
        "few": f"no bin has fewer than {spec.few} training rows, so few-shot MAE (the default search "
               "metric) is undefined; raise the few-shot threshold or optimise another region",
    }  # fmt: skip
    by_region = region_table.set_index("region")
    for r in ("many", "medium", "few"):
        if int(by_region.loc[r, "bins"]) == 0:
            out.append(ProfileWarning("empty_region", f"{r}-shot region is empty: {fixes[r]}"))
    n_few_val = int(by_region.loc["few", "n_val"])
    if int(by_region.loc["few", "bins"]) > 0 and n_few_val < MIN_FEW_SHOT_VAL:
        out.append(ProfileWarning(
            "few_shot_val",
            f"the validation split has only {n_few_val} few-shot row(s) (< {MIN_FEW_SHOT_VAL}): "
            "the search metric (validation few-shot MAE) will be noisy; use a larger few-shot "
            "threshold, region mode 'tertile', or wider bins (--bin-width)",
        ))  # fmt: skip
    n_zero = int(by_region.loc["zero", "n_val"]) + int(by_region.loc["zero", "n_test"])
    if n_zero:
        out.append(ProfileWarning(
            "zero_shot",
            f"{n_zero} validation/test row(s) fall in {int(by_region.loc['zero', 'bins'])} age "
            "bin(s) with no training row (zero-shot); they are reported as their own region",
        ))  # fmt: skip
    return out


def _coding_warnings(y: np.ndarray, target: str) -> list[ProfileWarning]:
    out = []
    top = _spike(y, "max")
    if top:
        n, ref, age = top
        out.append(ProfileWarning(
            "top_coded",
            f"{n} rows at the maximum age {age:g} against at most {ref} at each of the two ages "
            f"below: {target!r} looks top-coded ({age:g} means '{age:g} or older'); errors there "
            "are not comparable with other ages, so read that bin's MAE with care or drop it",
            target,
        ))  # fmt: skip
    bottom = _spike(y, "min")
    if bottom:
        n, ref, age = bottom
        out.append(ProfileWarning(
            "bottom_coded",
            f"{n} rows at the minimum age {age:g} against at most {ref} at each of the two ages "
            f"above: {target!r} looks bottom-coded ({age:g} means '{age:g} or younger')",
            target,
        ))  # fmt: skip
    return out


def _column_warnings(
    features: pd.DataFrame, feat_table: pd.DataFrame, y: np.ndarray, target: str
) -> list[ProfileWarning]:
    out = []
    n = len(features)
    for rec in feat_table.itertuples(index=False):
        c = rec.column
        s = features[c]
        leak_why = None
        if rec.type == "numeric" and np.isfinite(rec.corr_age) and abs(rec.corr_age) > LEAK_CORR:
            leak_why = f"|r| = {abs(rec.corr_age):.3f} with {target!r}"
        elif _determines(s, y):
            leak_why = f"each value of it maps to a single {target!r}"
        if leak_why:
            out.append(ProfileWarning(
                "leaky_column",
                f"column {c!r} leaks the target ({leak_why}); a model would just copy it: "
                f"drop it or ignore it (--ignore {c})",
                c,
            ))  # fmt: skip
        elif rec.type == "categorical" and rec.n_distinct > ID_FRACTION * n:
            out.append(ProfileWarning(
                "identifier",
                f"column {c!r} looks like an identifier ({rec.n_distinct:,} distinct values in "
                f"{n:,} rows); ignore it (--ignore {c})",
                c,
            ))  # fmt: skip
    return out


# --------------------------------------------------------------------------------------- plot


def plot_histogram(result: ProfileResult, path: str | os.PathLike[str]) -> Path:
    """Write the age histogram with shaded regions to ``path`` (PNG, matplotlib Agg, no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    b = result.bins
    width = result.age_bins.width
    left = b["age_from"].to_numpy(dtype=float)
    fig = Figure(figsize=(10, 4.5), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    regions = b["region"].to_numpy()
    start = 0
    for i in range(1, len(regions) + 1):  # shade contiguous runs of one region
        if i == len(regions) or regions[i] != regions[start]:
            ax.axvspan(left[start], left[i - 1] + width, color=REGION_COLORS[regions[start]],
                       alpha=0.25, lw=0)  # fmt: skip
            start = i
    ax.bar(left, b["n_train"], width=width, align="edge", color="#377eb8", label="train")
    ax.bar(left, b["n_val"] + b["n_test"], width=width, align="edge", bottom=b["n_train"],
           color="#9ecae1", label="validation + test")  # fmt: skip
    spec = result.regions.spec
    if spec.mode == "absolute":
        ax.axhline(spec.many, color="0.3", ls="--", lw=0.8)
        ax.axhline(spec.few, color="0.3", ls=":", lw=0.8)
    handles, _ = ax.get_legend_handles_labels()
    handles += [Patch(color=REGION_COLORS[r], alpha=0.35, label=f"{r}-shot") for r in REGIONS
                if (regions == r).any()]  # fmt: skip
    ax.legend(handles=handles, loc="best", fontsize=8, frameon=False)
    ax.set_xlabel(f"{result.target} (bins of {width:g})")
    ax.set_ylabel("rows")
    ax.set_title(f"{Path(result.source).name}: rows per age bin; regions from training counts "
                 f"({result._spec_text()})", fontsize=9)  # fmt: skip
    ax.set_xlim(left[0], left[-1] + width)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, format="png")
    return path


# --------------------------------------------------------------------------------------- API


def profile(
    data: str | os.PathLike[str] | pd.DataFrame,
    target: str = "age",
    out: str | os.PathLike[str] | None = None,
    *,
    ignore: Sequence[str] = (),
    bin_width: float = 1.0,
    seed: int = 0,
    region_spec: RegionSpec | None = None,
) -> ProfileResult:
    """Profile an age table as the search will see it.

    Args:
        data: a ``.csv`` / ``.parquet`` path, ``builtin:NAME``, or a DataFrame.
        target: the age column.
        out: folder for the outputs (:data:`FILES`); created if needed. ``None`` writes nothing.
        ignore: columns that are not features (identifiers, known leaks).
        bin_width: age bin width in years (> 0).
        seed: the split seed (the search's default is 0).
        region_spec: region thresholds (default: many > 100, few < 20 training rows).

    Returns:
        A :class:`ProfileResult`.

    Raises:
        DataError: one-line message naming the problem and the fix (bad file, column, width, folder).
    """
    if not (isinstance(bin_width, (int, float)) and math.isfinite(bin_width) and bin_width > 0):
        raise DataError(f"bin width must be a positive number of years, got {bin_width!r}; use e.g. --bin-width 1")
    out_dir = Path(out) if out is not None else None
    if out_dir is not None and out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"output path {str(out_dir)!r} is a file; give a folder for --out")
    with _quiet("agesearch.data"):
        table = load_table(data, target, ignore=list(ignore))
        prepared = prepare(table, seed=seed, bin_width=float(bin_width), region_spec=region_spec)
    regions = prepared.regions
    ab = regions.bins
    counts = {s: ab.counts(prepared.y[s]) for s in SPLITS}
    bins = pd.DataFrame({
        "bin": np.arange(ab.n_bins),
        "age_from": ab.left_edges,
        "age_to": ab.left_edges + ab.width,
        "n_total": counts["train"] + counts["val"] + counts["test"],
        **{f"n_{s}": counts[s] for s in SPLITS},
        "region": regions.bin_region.astype(str),
    })  # fmt: skip
    region_table = pd.DataFrame([
        {"region": r, "bins": int((regions.bin_region == r).sum()),
         **{f"n_{s}": int((regions.of(prepared.y[s]) == r).sum()) for s in SPLITS}}
        for r in REGIONS
    ])  # fmt: skip
    y = table.y
    feat_table = _feature_table(table.features, table.roles.numeric, y)
    warnings = [ProfileWarning("data", w) for w in table.warnings]
    warnings += _region_warnings(regions, region_table, target)
    warnings += _coding_warnings(y, target)
    warnings += _column_warnings(table.features, feat_table, y, target)
    result = ProfileResult(
        source=table.source,
        target=target,
        n_rows=len(table),
        seed=seed,
        regions=regions,
        split_sizes={s: int(len(prepared.y[s])) for s in SPLITS},
        bins=bins,
        region_table=region_table,
        features=feat_table,
        warnings=warnings,
        age_range=(float(y.min()), float(y.max())),
    )
    if out_dir is not None:
        write_outputs(result, out_dir)
    return result


def write_outputs(result: ProfileResult, out: str | os.PathLike[str]) -> dict[str, Path]:
    """Write :data:`FILES` into ``out`` and record them in ``result.files``."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create output folder {str(out)!r} ({exc.strerror}); choose another --out") from None
    if not os.access(out, os.W_OK):
        raise DataError(f"output folder {str(out)!r} is not writable; choose another --out")
    files = {k: out / name for k, name in FILES.items()}
    plot_histogram(result, files["histogram"])
    result.bins.to_csv(files["bins"], index=False)
    result.features.to_csv(files["features"], index=False, float_format="%.6g")
    result.files = files
    files["summary"].write_text(json.dumps(result.to_dict(), indent=2, default=_json_default))
    return files


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    return str(o)


# ``agesearch.profile(...)`` calls :func:`profile` (the module is callable; see agesearch._api).
from agesearch._api import make_callable  # noqa: E402

make_callable(__name__, "profile")
