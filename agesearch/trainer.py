"""One training trial, without Ray: configuration dict + prepared data -> per-epoch metrics.

:class:`Trial` trains an :class:`~agesearch.model.AgeFTTransformer` epoch by epoch
(:meth:`Trial.step` / :meth:`Trial.run`), evaluates on validation after every epoch, keeps the
best-epoch weights, stops early with patience, and exposes a checkpointable state
(:meth:`Trial.state_dict` / :meth:`Trial.load_state_dict`: model, optimizer, scheduler, epoch,
RNG, best state, history, strategy state such as FDS statistics). Ray Tune wraps it in
:mod:`agesearch.search`; nothing here imports Ray.

Fast by construction: the training tensors are moved to the device once; minibatches are index
permutations on the device (no DataLoader, no per-row Python).
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import os
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import Tensor

from agesearch.data import PreparedData
from agesearch.debias import TailDebiaser
from agesearch.heads import TargetInfo, build_head
from agesearch.imbalance import TrainingPlan, build_plan
from agesearch.metrics import metric_sign, regression_metrics
from agesearch.model import AgeFTTransformer
from agesearch.probabilistic import head_metrics
from agesearch.objective import Objective

TRAIN_DEFAULTS: dict[str, Any] = {
    "head": "regression",
    "loss": "l1",
    "strategy": "none",
    "lr": 1e-3,
    "weight_decay": 1e-5,
    "batch_size": 256,
    "max_epochs": 60,
    "patience": 10,
    "lr_schedule": "none",
    "early_stop_metric": "mae",
    "seed": 0,
    "eval_batch_size": 4096,
    "grad_clip": 0.0,
    "min_delta": 0.0,
    "debias": "none",
    "debias_strength": "auto",
    "debias_guard": 0.03,
}
"""Training settings used when the configuration does not set them."""

LR_SCHEDULES = ("none", "cosine")
DEBIAS_METHODS = ("none", "linear", "isotonic")


class TrialDiverged(RuntimeError):
    """Training produced a NaN or inf loss; the trial cannot continue."""


def pick_device(prefer: str | None = None) -> torch.device:
    """``cuda`` when a CUDA device is visible (or ``prefer`` says so), else ``cpu``."""
    if prefer:
        return torch.device(prefer)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


_metric_sign = metric_sign  # kept for callers of the former private name


def resolve_config(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` over :data:`TRAIN_DEFAULTS`, validated (one-line errors)."""
    cfg = {**TRAIN_DEFAULTS, **config}
    if not (cfg["lr"] > 0 and math.isfinite(cfg["lr"])):
        raise ValueError(f"lr must be a positive number, got {cfg['lr']}")
    if cfg["weight_decay"] < 0:
        raise ValueError(f"weight_decay must be >= 0, got {cfg['weight_decay']}")
    for k in ("batch_size", "max_epochs", "patience", "eval_batch_size"):
        if int(cfg[k]) != cfg[k] or cfg[k] < 1:
            raise ValueError(f"{k} must be a positive integer, got {cfg[k]}")
    if cfg["lr_schedule"] not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {cfg['lr_schedule']!r}")
    if cfg["debias"] not in DEBIAS_METHODS:
        raise ValueError(f"debias must be one of {DEBIAS_METHODS}, got {cfg['debias']!r}")
    if cfg["debias"] != "none":
        TailDebiaser(cfg["debias"], cfg["debias_strength"], guard=cfg["debias_guard"])  # validates
    return cfg


class Trial:
    """Train one configuration.

    Args:
        config: flat configuration (model, head, loss, strategy and training keys); missing keys
            take :data:`TRAIN_DEFAULTS` and :data:`agesearch.model.MODEL_DEFAULTS`.
        data: the prepared data (only ``train`` and ``val`` are used for training and selection).
        device: ``"cpu"``, ``"cuda"``, ... (default: CUDA when visible).
        threads: torch intra-op threads (default: leave torch's setting; pass the trial's CPUs).
        objective: when given, early stopping and best-epoch selection use ``objective.score``
            (the search metric with its guard) instead of ``config["early_stop_metric"]``; the
            score is reported as ``score``.
    """

    def __init__(
        self,
        config: dict[str, Any],
        data: PreparedData,
        *,
        device: str | torch.device | None = None,
        threads: int | None = None,
        objective: "Objective | None" = None,
    ) -> None:
        self.config = resolve_config(config)
        self.data = data
        self.device = pick_device(str(device) if device is not None else None)
        if threads:
            torch.set_num_threads(max(1, int(threads)))
        cfg = self.config
        seed = int(cfg["seed"])
        torch.manual_seed(seed)
        self.plan: TrainingPlan = build_plan(cfg, data, seed=seed)
        y_train = np.asarray(self.plan.y, dtype=float)
        self.target = TargetInfo.from_labels(
            data.y["train"], data.bins, None if data.y_std is None else data.y_std["train"]
        )
        head = build_head(cfg, int(cfg.get("d_block", 64)), self.target)
        self.model = AgeFTTransformer.from_config(
            cfg,
            n_num=data.n_num,
            cat_cardinalities=data.cat_cardinalities,
            head=head,
            smoother=self.plan.smoother,
        ).to(self.device)
        self.optimizer = torch.optim.AdamW(
            self._param_groups(), lr=cfg["lr"], weight_decay=cfg["weight_decay"]
        )
        self.scheduler = (
            torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=int(cfg["max_epochs"]))
            if cfg["lr_schedule"] == "cosine"
            else None
        )
        # Training tensors: moved to the device once.
        dev = self.device
        self._x_num = torch.as_tensor(self.plan.x_num, dtype=torch.float32, device=dev)
        self._x_cat = torch.as_tensor(self.plan.x_cat, dtype=torch.long, device=dev)
        self._y = torch.as_tensor(y_train, dtype=torch.float32, device=dev)
        self._bin = torch.as_tensor(data.bins.assign(y_train), dtype=torch.long, device=dev)
        self._w = (
            None
            if self.plan.weights is None
            else torch.as_tensor(self.plan.weights, dtype=torch.float32, device=dev)
        )
        self._y_std = (
            None
            if self.plan.y_std is None
            else torch.as_tensor(self.plan.y_std, dtype=torch.float32, device=dev)
        )
        self._eval_cache: dict[str, tuple[Tensor, Tensor]] = {}
        self._perm_gen = torch.Generator(device="cpu").manual_seed(seed + 1)
        # The trial's own RNG stream for dropout etc., so trials sharing a process don't interfere.
        self._rng_state = torch.Generator().manual_seed(seed + 2).get_state()
        self._cuda_rng_state: list[Tensor] = []
        self.epoch = 0
        self.history: list[dict[str, float]] = []
        self.objective = objective
        self.metric = "score" if objective is not None else str(cfg["early_stop_metric"])
        self._sign = 1.0 if objective is not None else _metric_sign(self.metric)
        self.best_value = math.inf
        self.best_epoch = 0
        self.best_state: dict[str, Tensor] | None = None
        self.bad_epochs = 0
        self.stopped = False
        self.debiaser: TailDebiaser | None = None

    # ------------------------------------------------------------------ building blocks
    def _param_groups(self) -> list[dict[str, Any]]:
        groups = self.model.parameter_groups(self.config["weight_decay"])
        extra = getattr(self.model.head, "extra_param_groups", None)
        if callable(extra):
            taken = {id(p) for g in extra() for p in g["params"]}
            for g in groups:
                g["params"] = [p for p in g["params"] if id(p) not in taken]
            groups = groups + list(extra())
        return groups

    @property
    def n_train(self) -> int:
        return int(self._y.shape[0])

    def train_epoch(self) -> float:
        """One pass over the (planned) training rows; returns the mean training loss.

        Runs on the trial's own RNG stream (restored afterwards), so two trials in one process
        give the same results as each alone.
        """
        cuda = self.device.type == "cuda"
        devices = [self.device] if cuda else []
        with torch.random.fork_rng(devices=devices, device_type="cuda"):
            torch.set_rng_state(self._rng_state)
            if cuda and self._cuda_rng_state:
                torch.cuda.set_rng_state(self._cuda_rng_state[0], self.device)
            loss = self._train_epoch()
            self._rng_state = torch.get_rng_state()
            if cuda:
                self._cuda_rng_state = [torch.cuda.get_rng_state(self.device)]
        return loss

    def _train_epoch(self) -> float:
        cfg = self.config
        model = self.model
        model.train()
        bs = int(cfg["batch_size"])
        n = self.n_train
        perm = torch.randperm(n, generator=self._perm_gen).to(self.device)
        smoother = self.plan.smoother
        collect = smoother is not None and hasattr(smoother, "update")
        z_all = (
            torch.empty((n, model.output_norm.normalized_shape[0]), device=self.device)
            if collect
            else None
        )
        total, count = 0.0, 0
        for start in range(0, n, bs):
            idx = perm[start : start + bs]
            y = self._y[idx]
            w = None if self._w is None else self._w[idx]
            extras = {} if self._y_std is None else {"y_std": self._y_std[idx]}
            out, z = model(
                self._x_num[idx], self._x_cat[idx], bin_idx=self._bin[idx], epoch=self.epoch
            )
            loss = model.head.loss(out, y, w, **extras)
            if self.plan.regularizers:
                pred = model.head.predict(out)
                for reg in self.plan.regularizers:
                    loss = loss + reg(z=z, pred=pred, y=y, weights=w)
            if not torch.isfinite(loss):
                raise TrialDiverged(
                    f"loss became {loss.item()} at epoch {self.epoch + 1}; lower the learning rate"
                )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg["grad_clip"] and cfg["grad_clip"] > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), float(cfg["grad_clip"]))
            self.optimizer.step()
            if z_all is not None:
                z_all[idx] = z.detach()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
        if collect:
            smoother.update(z_all, self._bin, self.epoch)  # type: ignore[union-attr]
        if self.scheduler is not None:
            self.scheduler.step()
        return total / max(count, 1)

    def _split_tensors(self, split: str) -> tuple[Tensor, Tensor]:
        if split not in self._eval_cache:
            self._eval_cache[split] = (
                torch.as_tensor(self.data.x_num[split], dtype=torch.float32, device=self.device),
                torch.as_tensor(self.data.x_cat[split], dtype=torch.long, device=self.device),
            )
        return self._eval_cache[split]

    @contextlib.contextmanager
    def _weights(self, best: bool) -> Iterator[None]:
        """Temporarily load the best-epoch state (weights and head buffers such as thresholds)."""
        if not (best and self.best_state is not None):
            yield
            return
        state = copy.deepcopy(self.model.state_dict())
        self.model.load_state_dict(self.best_state)
        try:
            yield
        finally:
            self.model.load_state_dict(state)

    @torch.no_grad()
    def raw_outputs(
        self, x_num: np.ndarray | Tensor, x_cat: np.ndarray | Tensor, *, best: bool = False
    ) -> Tensor:
        """Raw head outputs ``(n, d_out)`` for inputs ``(n, n_num)``, ``(n, n_cat)`` (eval mode)."""
        model = self.model
        with self._weights(best):
            model.eval()
            xn = torch.as_tensor(x_num, dtype=torch.float32, device=self.device)
            xc = torch.as_tensor(x_cat, dtype=torch.long, device=self.device)
            bs = int(self.config["eval_batch_size"])
            outs = [model(xn[i : i + bs], xc[i : i + bs])[0] for i in range(0, xn.shape[0], bs)]
        if not outs:
            return torch.zeros((0, 1), device=self.device)
        return torch.cat(outs)

    def predict(
        self, split: str | None = None, *, x_num=None, x_cat=None, best: bool = True, debiased: bool = True
    ) -> np.ndarray:
        """Predicted ages ``(n,)`` for a split of the data, or for given arrays.

        With a fitted de-biaser (config ``debias``) and ``debiased=True`` the correction is applied.
        """
        if split is not None:
            x_num, x_cat = self._split_tensors(split)
        with self._weights(best):
            out = self.raw_outputs(x_num, x_cat)
            if out.shape[0] == 0:
                return np.zeros(0)
            pred = self.model.head.predict(out).double().cpu().numpy()
        if debiased and self.debiaser is not None:
            pred = self.debiaser.transform(pred)
        return pred

    def fit_debias(self) -> dict[str, float] | None:
        """Fit the post-hoc tail de-biaser (config ``debias``) on the validation predictions of the
        best epoch. Returns the validation metrics of the CROSS-FITTED corrected predictions (never
        scored on the rows a map was fitted on), or None when ``debias`` is ``none``."""
        cfg = self.config
        if cfg["debias"] == "none" or len(self.data.y["val"]) < 4:
            return None
        metric = self.objective.metric if self.objective is not None else self.metric
        region = str(cfg.get("debias_region", metric.split("_", 1)[1] if "_" in metric else "few"))
        pred = self.predict("val", debiased=False)
        regions = self.data.region_of("val")
        self.debiaser = TailDebiaser(
            cfg["debias"], cfg["debias_strength"], guard=cfg["debias_guard"], region=region,
            seed=int(cfg["seed"]),
        ).fit(pred, self.data.y["val"], regions)
        m = regression_metrics(self.data.y["val"], self.debiaser.oof_, regions)
        m["debias_strength"] = float(self.debiaser.strength_)
        return m

    def evaluate(self, split: str = "val", *, best: bool = False) -> dict[str, float]:
        """Metrics overall and per region on ``split`` (plus the head's probabilistic metrics:
        ``nll``, ``coverage90``, ``width90``, group metrics; see :mod:`agesearch.probabilistic`)."""
        with self._weights(best):
            return self._metrics(split, self.raw_outputs(*self._split_tensors(split)))

    def _metrics(self, split: str, out: Tensor) -> dict[str, float]:
        y, regions, head = self.data.y[split], self.data.region_of(split), self.model.head
        pred = head.predict(out).double().cpu().numpy() if out.shape[0] else np.zeros(0)
        if self.debiaser is not None and len(pred):
            pred = self.debiaser.transform(pred)
        return {**regression_metrics(y, pred, regions), **head_metrics(head, out, y, regions)}

    def calibrate_head(self) -> Tensor:
        """Hook: heads with ``calibrate`` fit post-training decision rules on validation outputs
        (``decision_threshold="auto"``, conformal intervals) for the search objective (its
        guarded ``score`` when the trial has one, else ``search_metric``, default ``mae_few``).
        Returns the validation outputs."""
        out = self.raw_outputs(*self._split_tensors("val"))
        calibrate = getattr(self.model.head, "calibrate", None)
        if callable(calibrate) and out.shape[0]:
            metric = (
                self.objective.score
                if self.objective is not None
                else str(self.config.get("search_metric", "mae_few"))
            )
            calibrate(out, self.data.y["val"], self.data.region_of("val"), metric)
        return out

    # ------------------------------------------------------------------ the loop
    def step(self) -> dict[str, float]:
        """Train one epoch, evaluate on validation, update best state and early stopping.

        Returns the validation metrics plus ``epoch``, ``train_loss``, ``best_epoch``,
        ``best_<metric>`` and ``should_stop`` (1.0 when patience ran out or max_epochs reached).
        """
        if self.stopped:
            raise RuntimeError("trial already stopped; create a new Trial to train again")
        loss = self.train_epoch()
        self.epoch += 1
        m = self._metrics("val", self.calibrate_head())
        if self.objective is not None:
            m["score"] = self.objective.score(m)
        value = float(m.get(self.metric, math.nan))
        improved = math.isfinite(value) and (
            self.best_state is None
            or self._sign * value < self._sign * self.best_value - float(self.config["min_delta"])
        )
        if improved:
            self.best_value = value
            self.best_epoch = self.epoch
            self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
        if self.bad_epochs >= int(self.config["patience"]) or self.epoch >= int(self.config["max_epochs"]):
            self.stopped = True
        record = {
            **m,
            "epoch": float(self.epoch),
            "train_loss": loss,
            "best_epoch": float(self.best_epoch),
            f"best_{self.metric}": self.best_value,
            "should_stop": float(self.stopped),
        }
        self.history.append(record)
        return record

    def run(self) -> Iterator[dict[str, float]]:
        """Yield :meth:`step` results until early stopping or ``max_epochs``."""
        while not self.stopped:
            yield self.step()

    def fit(self) -> "Trial":
        """Train to completion (early stopping), restore the best-epoch weights, fit the de-biaser."""
        for _ in self.run():
            pass
        self.restore_best()
        self.fit_debias()
        return self

    def restore_best(self) -> None:
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)

    # ------------------------------------------------------------------ checkpointing
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: tensors and plain Python values only."""
        state: dict[str, Any] = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "epoch": self.epoch,
            "best_value": self.best_value,
            "best_epoch": self.best_epoch,
            "best_state": self.best_state,
            "bad_epochs": self.bad_epochs,
            "stopped": self.stopped,
            "history": self.history,
            "rng_torch": self._rng_state,
            "rng_perm": self._perm_gen.get_state(),
            "rng_cuda": self._cuda_rng_state,
            "debiaser": None if self.debiaser is None else self.debiaser.to_dict(),
        }
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.epoch = int(state["epoch"])
        self.best_value = float(state["best_value"])
        self.best_epoch = int(state["best_epoch"])
        self.best_state = state["best_state"]
        self.bad_epochs = int(state["bad_epochs"])
        self.stopped = bool(state["stopped"])
        self.history = list(state["history"])
        self.debiaser = None if state.get("debiaser") is None else TailDebiaser.from_dict(state["debiaser"])
        self._rng_state = state["rng_torch"].cpu()
        self._perm_gen.set_state(state["rng_perm"].cpu())
        self._cuda_rng_state = [t.cpu() for t in state.get("rng_cuda") or []] if torch.cuda.is_available() else []

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`state_dict` atomically to ``path`` (``torch.save``; load with weights_only)."""
        path = Path(path)
        buf = io.BytesIO()
        torch.save(self.state_dict(), buf)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(buf.getvalue())
        os.replace(tmp, path)
        return path

    def load(self, path: str | os.PathLike[str]) -> None:
        """Restore from :meth:`save` output; only tensors and plain values are accepted."""
        self.load_state_dict(torch.load(path, map_location=self.device, weights_only=True))
