"""Export a trained model for prediction, and load it back: ``agesearch.load_model(dir).predict(df)``.

An exported model is a folder with three files, none of them pickles:

- ``config.json``: the resolved trial configuration, the label scale the head was built with
  (``target``), the model's input sizes and the export format version;
- ``preprocessing.json``: :meth:`~agesearch.data.Preprocessor.to_dict`, the column roles and the
  age regions (so predictions can be labelled by region);
- ``model.safetensors``: the weights (training-only state such as FDS statistics is dropped).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from agesearch.data import ColumnRoles, DataError, PreparedData, Preprocessor, features_frame
from agesearch.heads import Head, TargetInfo, build_head
from agesearch.model import MODEL_DEFAULTS, AgeFTTransformer
from agesearch.regions import AgeBins, Regions

FORMAT_VERSION = 1
INTERVAL_LEVEL = 0.9
"""Central probability of the prediction intervals of probabilistic heads."""
FILES = ("config.json", "preprocessing.json", "model.safetensors")


def head_intervals(head: Head, out: Tensor, bins: AgeBins, level: float = INTERVAL_LEVEL) -> tuple[np.ndarray, np.ndarray] | None:
    """Central ``level`` prediction interval ``(lower, upper)``, each ``(B,)``, or None.

    Uses ``head.predict_interval(out, level)`` when the head defines it; else, for heads whose
    ``predict_proba`` gives a distribution over the age bins ``(B, n_bins)``, the bin-centre
    quantiles of that distribution; else None (point heads).
    """
    if not 0 < level < 1:
        raise ValueError(f"interval level must be in (0, 1), got {level}")
    fn = getattr(head, "predict_interval", None)
    if callable(fn):
        lo, hi = fn(out, level)
        return _np(lo), _np(hi)
    if not getattr(head, "probabilistic", False):
        return None
    proba = head.predict_proba(out)
    if proba is None or proba.shape[-1] != bins.n_bins:
        return None
    cdf = torch.cumsum(proba.double(), dim=-1).cpu().numpy()
    cdf /= cdf[:, -1:]
    centers = bins.centers
    a = (1 - level) / 2
    lo_idx = (cdf < a).sum(axis=1)
    hi_idx = np.minimum((cdf < 1 - a).sum(axis=1), bins.n_bins - 1)
    return centers[lo_idx] - bins.width / 2, centers[hi_idx] + bins.width / 2


def _np(x: Any) -> np.ndarray:
    return x.detach().double().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x, dtype=float)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def export_model(
    folder: str | os.PathLike[str], *, config: dict[str, Any], data: PreparedData,
    state_dict: dict[str, Any], info: dict[str, Any] | None = None,
    debias: dict[str, Any] | None = None,
) -> Path:
    """Write a trained model to ``folder`` (created) for :func:`load_model`.

    Args:
        config: the (resolved) trial configuration the weights were trained with.
        data: the prepared data the model was trained on (preprocessing state, roles, regions and
            the training labels that set the head's scale).
        state_dict: the model's ``state_dict()`` (tensors or numpy arrays).
        info: extra JSON-serialisable facts to store (e.g. source trial, test metrics).
        debias: the fitted post-hoc de-biaser (``TailDebiaser.to_dict()``), applied by predict.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    target = TargetInfo.from_labels(data.y["train"], data.bins)
    cfg = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in config.items()}
    meta = {
        "format": "agesearch-model",
        "version": FORMAT_VERSION,
        "config": cfg,
        "target": {"mean": target.mean, "std": target.std},
        "n_num": int(data.n_num),
        "cat_cardinalities": [int(c) for c in data.cat_cardinalities],
        "interval_level": INTERVAL_LEVEL,
        "debias": debias,
        "info": info or {},
    }
    prep = {
        "roles": data.roles.to_dict(),
        "preprocessor": data.preprocessor.to_dict(),
        "regions": data.regions.to_dict(),
    }
    tensors = {
        k: (v.detach().cpu() if isinstance(v, Tensor) else torch.from_numpy(np.array(v))).contiguous().clone()
        for k, v in state_dict.items()
        if not k.startswith("smoother.")
    }
    tmp = folder / "model.safetensors.tmp"
    save_file(tensors, str(tmp))
    os.replace(tmp, folder / "model.safetensors")
    _atomic_write(folder / "preprocessing.json", json.dumps(prep).encode())
    _atomic_write(folder / "config.json", json.dumps(meta, indent=2, default=str).encode())
    return folder


class AgeModel:
    """A loaded exported model. Use :func:`load_model`.

    Attributes:
        config: the trial configuration; roles: column roles; regions: age regions of training.
    """

    def __init__(
        self, model: AgeFTTransformer, preprocessor: Preprocessor, roles: ColumnRoles,
        regions: Regions, meta: dict[str, Any],
    ) -> None:
        self.model = model.eval()
        self.preprocessor = preprocessor
        self.roles = roles
        self.regions = regions
        self.meta = meta
        self.config: dict[str, Any] = meta["config"]

    @torch.no_grad()
    def predict(self, frame: pd.DataFrame, *, batch_size: int = 4096) -> pd.DataFrame:
        """Predicted ages for the rows of ``frame`` (the training feature columns are needed).

        Returns a DataFrame with the index of ``frame`` and ``predicted_age``, plus ``age_lower`` /
        ``age_upper`` (central ``interval_level`` interval) when the head provides intervals. Rows
        with every model feature missing get NaN.
        """
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"predict expects a pandas DataFrame, got {type(frame).__name__}")
        feats = features_frame(self.roles.features, frame)
        x_num, x_cat = self.preprocessor.transform(feats)
        xn = torch.as_tensor(x_num, dtype=torch.float32)
        xc = torch.as_tensor(x_cat, dtype=torch.long)
        preds, lows, highs = [], [], []
        level = float(self.meta.get("interval_level", INTERVAL_LEVEL))
        for i in range(0, len(frame), batch_size):
            out, _ = self.model(xn[i : i + batch_size], xc[i : i + batch_size])
            preds.append(self.model.head.predict(out).double().numpy())
            iv = head_intervals(self.model.head, out, self.regions.bins, level)
            if iv is not None:
                lows.append(iv[0])
                highs.append(iv[1])
        result = pd.DataFrame(index=frame.index)
        pred = np.concatenate(preds) if preds else np.zeros(0)
        if self.meta.get("debias") and len(pred):
            from agesearch.debias import TailDebiaser

            pred = TailDebiaser.from_dict(self.meta["debias"]).transform(pred)
        result["predicted_age"] = pred
        if lows and len(lows) == len(preds):
            result["age_lower"] = np.concatenate(lows)
            result["age_upper"] = np.concatenate(highs)
        bad = self.preprocessor.unusable_rows(feats)
        if bad.any():
            result.loc[bad, :] = np.nan
        return result


def load_model(folder: str | os.PathLike[str], *, device: str = "cpu") -> AgeModel:
    """Load a model written by :func:`export_model` (weights via safetensors, no pickle)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    missing = [f for f in FILES if not (folder / f).is_file()]
    if missing:
        raise DataError(
            f"{str(folder)!r} is not an exported agesearch model (missing {', '.join(missing)}); "
            "pass the 'model' folder of a report"
        )
    meta = json.loads((folder / "config.json").read_text())
    if meta.get("format") != "agesearch-model" or int(meta.get("version", 0)) > FORMAT_VERSION:
        raise DataError(
            f"{str(folder)!r} holds an unsupported model format {meta.get('format')!r} "
            f"v{meta.get('version')}; upgrade agesearch"
        )
    prep = json.loads((folder / "preprocessing.json").read_text())
    regions = Regions.from_dict(prep["regions"])
    cfg = meta["config"]
    target = TargetInfo(mean=float(meta["target"]["mean"]), std=float(meta["target"]["std"]), bins=regions.bins)
    head = build_head(cfg, int(cfg.get("d_block", MODEL_DEFAULTS["d_block"])), target)
    model = AgeFTTransformer.from_config(
        cfg, n_num=int(meta["n_num"]), cat_cardinalities=list(meta["cat_cardinalities"]), head=head
    )
    model.load_state_dict(load_file(str(folder / "model.safetensors"), device=device))
    return AgeModel(
        model.to(device), Preprocessor.from_dict(prep["preprocessor"]),
        ColumnRoles.from_dict(prep["roles"]), regions, meta,
    )
