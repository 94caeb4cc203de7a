"""Search spaces: YAML -> validated :class:`SearchSpace` -> Optuna define-by-run function.

A space file declares what every trial shares (``fixed`` model/training settings, ``data``
evaluation definitions such as bins and region thresholds, the search ``metric``) and what is
searched (``params``, plus ``conditional`` blocks that exist only when earlier choices take given
values). Example::

    metric: mae_few            # validation metric optimised (min); mae, gm, rmse[_region], ...
    fixed: {n_blocks: 1, d_block: 32, attention_n_heads: 4, max_epochs: 8, patience: 4}
    data: {bin_width: 1, regions: {mode: absolute, many: 100, few: 20}}
    pruner: {name: median, n_startup_trials: 3, n_warmup_steps: 2}
    params:
      lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
      loss: {type: categorical, choices: [l1, mse, huber]}
    conditional:
      - when: {loss: huber}
        params:
          huber_delta: {type: float, low: 0.5, high: 5.0}

:meth:`SearchSpace.validate` checks names against the live registries (heads, losses, strategies)
and every range before Ray starts; :class:`DefineByRun` (a module-level class, so it pickles with
Ray Tune's experiment state) samples one flat configuration per Optuna trial. Conditional
parameters get distinct Optuna names per branch (``huber_delta[loss=huber]``), as Optuna requires
for parameters whose distribution depends on the branch.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

TOP_LEVEL_KEYS: tuple[str, ...] = (
    "name", "description", "metric", "mode", "fixed", "data", "pruner", "params", "conditional",
    "guard",
)  # fmt: skip
DATA_KEYS: tuple[str, ...] = ("bin_width", "regions", "fractions")
REGION_KEYS: tuple[str, ...] = ("mode", "many", "few")
PARAM_TYPES: tuple[str, ...] = ("categorical", "float", "int")
METRIC_BASES: tuple[str, ...] = ("mae", "rmse", "gm", "pearson")
METRIC_REGIONS: tuple[str, ...] = ("many", "medium", "few", "zero")
RESERVED_KEYS: tuple[str, ...] = ("regions", "region_mode", "many", "few", "bin_width", "metric")
"""Keys that are evaluation definitions, fixed per search: never trial parameters."""

REFERENCE_CONFIG: dict[str, Any] = {"strategy": "none", "head": "regression", "loss": "l1"}
"""The vanilla reference trial: no imbalance handling, plain regression head, L1 loss."""


class SpaceError(ValueError):
    """An invalid search space, with a one-line message naming the problem and the fix."""


def _one_line_errors(method):  # noqa: ANN001, ANN202
    """Turn any unexpected parsing exception of malformed input into a one-line :class:`SpaceError`.

    The specific checks give precise messages; this net catches shapes they did not foresee
    (found by the hypothesis fuzz tests), so a bad file never ends in a traceback.
    """
    import functools

    @functools.wraps(method)
    def wrapper(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        try:
            return method(*args, **kwargs)
        except SpaceError:
            raise
        except (TypeError, ValueError, KeyError, AttributeError, IndexError, OverflowError) as exc:
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            src = kwargs.get("source") or getattr(args[0], "source", None) if args else None
            where = f"{src}: " if isinstance(src, str) else ""
            raise SpaceError(
                f"{where}malformed search space ({type(exc).__name__}: {first}); compare with "
                "search_spaces/quick.yaml (agesearch spaces quick)"
            ) from None

    return wrapper


# ------------------------------------------------------------------------------ live registries


def strategy_registry() -> dict[str, Any]:
    """Registered imbalance strategies (``{"none": None}`` until the strategies module has some)."""
    import agesearch.imbalance as imb

    reg = getattr(imb, "STRATEGIES", None)
    return dict(reg) if reg else {"none": None}


def head_registry() -> dict[str, Any]:
    from agesearch.heads import HEADS

    return dict(HEADS)


def loss_registry() -> dict[str, Any]:
    from agesearch.losses import POINT_LOSSES

    return dict(POINT_LOSSES)


def known_config_keys() -> set[str]:
    """Every configuration key a trial understands: training, model, head and strategy keys."""
    import agesearch.imbalance as imb
    from agesearch.model import MODEL_DEFAULTS
    from agesearch.trainer import TRAIN_DEFAULTS

    keys = set(TRAIN_DEFAULTS) | set(MODEL_DEFAULTS) | {"huber_delta"}
    for cls in head_registry().values():
        keys |= set(getattr(cls, "config_keys", ()))
    for obj in strategy_registry().values():
        keys |= set(getattr(obj, "config_keys", ()) or ())
        keys |= set(getattr(obj, "params", None) or {})
    keys |= set(getattr(imb, "GLOBAL_PARAMS", None) or {})
    keys |= set(getattr(imb, "CONFIG_KEYS", ()) or ())
    return keys


def strategy_param_specs() -> dict[str, Any]:
    """Flat key -> the strategy module's parameter spec (with ``check(name, value)``), if any."""
    import agesearch.imbalance as imb

    specs: dict[str, Any] = {}
    for obj in strategy_registry().values():
        for k, p in (getattr(obj, "params", None) or {}).items():
            if hasattr(p, "check"):
                specs.setdefault(k, p)
    for k, p in (getattr(imb, "GLOBAL_PARAMS", None) or {}).items():
        if hasattr(p, "check"):
            specs.setdefault(k, p)
    return specs


def check_strategy_name(name: Any) -> None:
    """Raise ValueError for an unknown strategy (``a+b`` combinations allowed where supported)."""
    import agesearch.imbalance as imb

    resolve = getattr(imb, "resolve_strategy", None)
    if resolve is not None:
        resolve(name)
        return
    valid = strategy_registry()
    if name not in valid:
        raise ValueError(f"unknown strategy {name!r}; valid: {', '.join(sorted(map(str, valid)))}")


def check_combination(config: dict[str, Any]) -> None:
    """Raise ValueError when ``config``'s strategy cannot run with its head (where checkable)."""
    import agesearch.imbalance as imb

    validate = getattr(imb, "validate_strategy_config", None)
    if validate is not None:
        validate(config)


NAMED_CHOICES: dict[str, Any] = {
    "strategy": strategy_registry,
    "head": head_registry,
    "loss": loss_registry,
}
"""Keys whose values are names in a registry, checked against the live registry."""


def _valid_metric(metric: str) -> bool:
    parts = metric.split("_", 1)
    return parts[0] in METRIC_BASES and (len(parts) == 1 or parts[1] in METRIC_REGIONS)


# ------------------------------------------------------------------------------ parameters


@dataclass(frozen=True)
class Param:
    """One searched parameter.

    Args:
        key: the configuration key it sets.
        type: ``categorical``, ``float`` or ``int``.
        choices: the values of a categorical parameter.
        low, high: the range of a numeric parameter (inclusive).
        log: sample on a log scale (``low > 0``).
        step: discretisation step (not with ``log``).
        optuna_name: the name Optuna sees (distinct per conditional branch).
    """

    key: str
    type: str
    optuna_name: str
    choices: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None

    def suggest(self, trial: Any) -> Any:
        """Sample this parameter from an ``optuna.Trial``."""
        if self.type == "categorical":
            return trial.suggest_categorical(self.optuna_name, list(self.choices))
        if self.type == "int":
            return trial.suggest_int(
                self.optuna_name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log
            )
        return trial.suggest_float(
            self.optuna_name, float(self.low), float(self.high), step=self.step, log=self.log
        )

    def values(self) -> tuple[Any, ...]:
        """The categorical choices (empty for numeric parameters)."""
        return self.choices


def _parse_param(key: str, spec: Any, where: str, optuna_name: str) -> Param:
    if not isinstance(spec, Mapping):
        if isinstance(spec, list):
            spec = {"type": "categorical", "choices": spec}
        else:
            raise SpaceError(
                f"{where}: parameter {key!r} must be a mapping such as "
                "{type: float, low: 0.001, high: 0.1} or a list of choices; put constants under 'fixed'"
            )
    spec = dict(spec)
    ptype = spec.pop("type", "categorical" if "choices" in spec else None)
    if ptype not in PARAM_TYPES:
        raise SpaceError(
            f"{where}: parameter {key!r} has type {ptype!r}; use one of {', '.join(PARAM_TYPES)}"
        )
    allowed = {"categorical": {"choices"}, "float": {"low", "high", "log", "step"},
               "int": {"low", "high", "log", "step"}}[ptype]  # fmt: skip
    extra = sorted(set(spec) - allowed)
    if extra:
        raise SpaceError(
            f"{where}: parameter {key!r} ({ptype}) has unknown field(s) {extra}; "
            f"valid fields: {', '.join(sorted(allowed | {'type'}))}"
        )
    if ptype == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise SpaceError(f"{where}: parameter {key!r} needs a non-empty 'choices' list")
        for c in choices:
            if not (c is None or isinstance(c, (bool, int, float, str))):
                raise SpaceError(
                    f"{where}: choice {c!r} of {key!r} is not a scalar; use strings, numbers or booleans"
                )
        if len(set(map(repr, choices))) != len(choices):
            raise SpaceError(f"{where}: parameter {key!r} lists a choice twice; remove the duplicate")
        return Param(key=key, type=ptype, optuna_name=optuna_name, choices=tuple(choices))
    for f in ("low", "high"):
        if f not in spec:
            raise SpaceError(f"{where}: parameter {key!r} ({ptype}) needs '{f}'")
        v = spec[f]
        if isinstance(v, str):  # YAML 1.1 reads 1e-4 as a string
            try:
                v = float(v)
            except ValueError:
                raise SpaceError(f"{where}: {key}.{f} = {spec[f]!r} is not a number") from None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise SpaceError(f"{where}: {key}.{f} = {spec[f]!r} is not a finite number")
        spec[f] = v
    low, high = spec["low"], spec["high"]
    log = bool(spec.get("log", False))
    step = spec.get("step")
    if low > high:
        raise SpaceError(f"{where}: parameter {key!r} has low {low} > high {high}; swap them")
    if log and low <= 0:
        raise SpaceError(
            f"{where}: parameter {key!r} is log-scaled but its range touches 0 (low={low}); "
            "use a positive low or drop 'log'"
        )
    if log and step is not None:
        raise SpaceError(f"{where}: parameter {key!r} sets both 'log' and 'step'; Optuna allows one")
    if step is not None and not (isinstance(step, (int, float)) and step > 0):
        raise SpaceError(f"{where}: parameter {key!r} has step {step!r}; use a positive number")
    if ptype == "int":
        for f, v in (("low", low), ("high", high), ("step", step)):
            if v is not None and float(v) != int(v):
                raise SpaceError(f"{where}: int parameter {key!r} has non-integer {f} {v}")
    return Param(key=key, type=ptype, optuna_name=optuna_name, low=low, high=high, log=log,
                 step=None if step is None else float(step) if ptype == "float" else int(step))  # fmt: skip


@dataclass(frozen=True)
class Conditional:
    """Parameters that exist only when every ``when`` key takes one of the listed values."""

    when: tuple[tuple[str, tuple[Any, ...]], ...]
    params: tuple[Param, ...]

    def active(self, config: Mapping[str, Any]) -> bool:
        return all(k in config and config[k] in vals for k, vals in self.when)

    @property
    def label(self) -> str:
        return ",".join(f"{k}={'|'.join(map(str, v))}" for k, v in self.when)


# ------------------------------------------------------------------------------ the space


@dataclass
class SearchSpace:
    """A parsed search space (see the module docstring for the YAML format)."""

    fixed: dict[str, Any]
    params: list[Param]
    conditionals: list[Conditional]
    metric: str = "mae_few"
    mode: str = "min"
    data: dict[str, Any] = field(default_factory=dict)
    pruner: dict[str, Any] = field(default_factory=lambda: {"name": "median"})
    name: str = "space"
    description: str = ""
    source: str = "<dict>"
    guard: str | None = None
    """``REGION:EPS`` (e.g. ``overall:0.05``): the metric is optimised subject to that region's
    validation MAE staying within (1 + EPS) x the vanilla reference's (see agesearch.objective)."""

    # -- construction
    @classmethod
    @_one_line_errors
    def from_dict(cls, raw: Mapping[str, Any], *, source: str = "<dict>") -> "SearchSpace":
        """Parse (structure only; call :meth:`validate` for names and combinations)."""
        if not isinstance(raw, Mapping):
            raise SpaceError(f"{source}: a search space must be a YAML mapping; see search_spaces/quick.yaml")
        for key in ("fixed", "data"):
            if raw.get(key) is not None and not isinstance(raw[key], Mapping):
                raise SpaceError(
                    f"{source}: '{key}' must be a mapping of key: value, got {type(raw[key]).__name__}; "
                    f"e.g. {key}: {{max_epochs: 8}}" if key == "fixed" else
                    f"{source}: 'data' must be a mapping, got {type(raw[key]).__name__}; e.g. data: {{bin_width: 1}}"
                )
        if raw.get("conditional") is not None and not isinstance(raw["conditional"], list):
            raise SpaceError(
                f"{source}: 'conditional' must be a list of blocks with 'when' and 'params', "
                f"got {type(raw['conditional']).__name__}"
            )
        for key in ("metric", "mode", "name", "description"):
            if raw.get(key) is not None and not isinstance(raw[key], str):
                raise SpaceError(f"{source}: '{key}' must be a string, got {raw[key]!r}")
        # Shorthand: any other top-level key is a configuration key; a scalar is a fixed
        # setting, a mapping or a list is a searched parameter (checked like the others).
        extra = {k: v for k, v in raw.items() if k not in TOP_LEVEL_KEYS}
        fixed = dict(raw.get("fixed") or {})
        params_raw = dict(raw.get("params") or {}) if isinstance(raw.get("params") or {}, Mapping) else raw.get("params")
        for k, v in extra.items():
            if isinstance(v, (Mapping, list)):
                if isinstance(params_raw, dict):
                    params_raw[k] = v
            else:
                fixed[k] = v
        data = dict(raw.get("data") or {})
        pruner = raw.get("pruner", {"name": "median"})
        if isinstance(pruner, str):
            pruner = {"name": pruner}
        if not isinstance(pruner, Mapping) or "name" not in pruner:
            raise SpaceError(f"{source}: 'pruner' must be a name or a mapping with 'name'; e.g. pruner: median")
        if not isinstance(params_raw, Mapping):
            raise SpaceError(f"{source}: 'params' must be a mapping of key -> parameter spec")
        params = [_parse_param(str(k), v, f"{source} params", str(k)) for k, v in params_raw.items()]
        conds: list[Conditional] = []
        for i, block in enumerate(raw.get("conditional") or []):
            where = f"{source} conditional[{i}]"
            if not isinstance(block, Mapping) or set(block) - {"when", "params"} or "when" not in block:
                raise SpaceError(f"{where}: a conditional block needs 'when' and 'params' (nothing else)")
            when_raw = block["when"]
            if not isinstance(when_raw, Mapping) or not when_raw:
                raise SpaceError(f"{where}: 'when' must map keys to a value or list, e.g. when: {{loss: huber}}")
            when = tuple(
                (str(k), tuple(v) if isinstance(v, list) else (v,)) for k, v in when_raw.items()
            )
            label = ",".join(f"{k}={'|'.join(map(str, v))}" for k, v in when)
            bparams = block.get("params") or {}
            if not isinstance(bparams, Mapping) or not bparams:
                raise SpaceError(f"{where}: 'params' must be a non-empty mapping")
            conds.append(
                Conditional(
                    when=when,
                    params=tuple(
                        _parse_param(str(k), v, where, f"{k}[{label}]") for k, v in bparams.items()
                    ),
                )
            )
        metric = str(raw.get("metric", "mae_few"))
        mode = raw.get("mode") or ("max" if metric.startswith("pearson") else "min")
        return cls(
            fixed=fixed, params=params, conditionals=conds, metric=metric, mode=str(mode),
            data=data, pruner=dict(pruner), name=str(raw.get("name", Path(source).stem)),
            description=str(raw.get("description", "")), source=source,
            guard=None if raw.get("guard") in (None, "none") else str(raw.get("guard")),
        )  # fmt: skip

    @classmethod
    def from_yaml(cls, path: str | Path) -> "SearchSpace":
        """Read and parse a YAML space file (call :meth:`validate` afterwards)."""
        p = Path(path)
        if not p.is_file():
            raise SpaceError(
                f"search space file {str(p)!r} does not exist; see 'agesearch spaces' for the shipped ones"
            )
        try:
            raw = yaml.safe_load(p.read_text())
        except UnicodeDecodeError:
            raise SpaceError(f"{p}: not a text file; give a YAML search space") from None
        except yaml.YAMLError as exc:
            first = str(exc).strip().splitlines()[0]
            raise SpaceError(f"{p}: invalid YAML ({first}); fix the syntax") from None
        return cls.from_dict(raw or {}, source=str(p))

    # -- validation
    def all_params(self) -> list[Param]:
        return list(self.params) + [p for c in self.conditionals for p in c.params]

    @_one_line_errors
    def validate(self) -> "SearchSpace":
        """Check keys, names, ranges and combinations; raises :class:`SpaceError`. Returns self."""
        from agesearch.search.pruning import SCHEDULERS

        src = self.source
        if not _valid_metric(self.metric):
            raise SpaceError(
                f"{src}: unknown metric {self.metric!r}; use one of {', '.join(METRIC_BASES)} "
                f"optionally suffixed _{'/_'.join(METRIC_REGIONS)} (e.g. mae_few)"
            )
        if self.mode not in ("min", "max"):
            raise SpaceError(f"{src}: mode must be 'min' or 'max', got {self.mode!r}")
        if self.guard is not None:
            from agesearch.objective import parse_guard

            try:
                parse_guard(self.guard)
            except ValueError as exc:
                raise SpaceError(f"{src}: {exc}") from None
            if self.mode != "min":
                raise SpaceError(f"{src}: a guard needs a minimised metric (an MAE/RMSE/GM); drop guard or use mode: min")
        bad_data = sorted(set(self.data) - set(DATA_KEYS))
        if bad_data:
            raise SpaceError(f"{src}: unknown data key(s) {bad_data}; valid: {', '.join(DATA_KEYS)}")
        regions = self.data.get("regions") or {}
        if not isinstance(regions, Mapping) or set(regions) - set(REGION_KEYS):
            raise SpaceError(f"{src}: data.regions takes only {', '.join(REGION_KEYS)}")
        try:
            self.region_spec()
        except (TypeError, ValueError) as exc:
            raise SpaceError(f"{src}: data.regions: {exc}") from None
        if self.pruner["name"] not in SCHEDULERS:
            raise SpaceError(
                f"{src}: unknown pruner {self.pruner['name']!r}; valid: {', '.join(sorted(SCHEDULERS))}"
            )
        try:
            SCHEDULERS[self.pruner["name"]](**{k: v for k, v in self.pruner.items() if k != "name"})
        except (TypeError, ValueError) as exc:
            raise SpaceError(f"{src}: pruner {self.pruner['name']!r}: {exc}") from None

        known = known_config_keys()
        seen: dict[str, str] = {}
        for k in self.fixed:
            seen[k] = "fixed"
        for p in self.all_params():
            if p.key in RESERVED_KEYS:
                raise SpaceError(
                    f"{src}: {p.key!r} is an evaluation definition, fixed per search; set it under 'data', not as a parameter"
                )
        for k in list(self.fixed) + [p.key for p in self.params]:
            if k in RESERVED_KEYS:
                raise SpaceError(f"{src}: {k!r} is an evaluation definition; set it under 'data' or top level")
            if k not in known:
                raise SpaceError(
                    f"{src}: unknown configuration key {k!r}; valid keys: {', '.join(sorted(known))} "
                    f"(top level also takes: {', '.join(TOP_LEVEL_KEYS)})"
                )
        for p in self.params:
            if p.key in seen:
                raise SpaceError(f"{src}: {p.key!r} is both {seen[p.key]} and searched; keep one")
            seen[p.key] = "searched"
        # Registry names.
        for key, registry in NAMED_CHOICES.items():
            valid = registry()
            for v in self._possible_values(key) or ():
                if key == "strategy":
                    try:
                        check_strategy_name(v)
                    except ValueError as exc:
                        raise SpaceError(f"{src}: {str(exc).splitlines()[0]}") from None
                elif v not in valid:
                    raise SpaceError(
                        f"{src}: unknown {key} {v!r}; valid: {', '.join(sorted(map(str, valid)))}"
                    )
        # Conditional blocks: 'when' refers to earlier keys and values they can take.
        for c in self.conditionals:
            for k, vals in c.when:
                if k not in seen:
                    raise SpaceError(
                        f"{src}: conditional 'when: {k}' refers to a key that is neither fixed nor "
                        "searched before this block; define it in 'params' first"
                    )
                possible = self._possible_values(k)
                if possible is not None:
                    missing = [v for v in vals if v not in possible]
                    if missing:
                        raise SpaceError(
                            f"{src}: conditional 'when: {k}' lists {missing}, which {k} can never take "
                            f"(it takes {list(possible)}); fix the values or the choices"
                        )
            for p in c.params:
                if p.key not in known:
                    raise SpaceError(
                        f"{src}: unknown configuration key {p.key!r}; valid keys: {', '.join(sorted(known))}"
                    )
                if seen.get(p.key) in ("fixed", "searched"):
                    raise SpaceError(
                        f"{src}: {p.key!r} is {seen[p.key]} and also conditional; keep one"
                    )
            for p in c.params:
                seen.setdefault(p.key, "conditional")
        # Searched values inside the ranges the strategies accept.
        specs = strategy_param_specs()
        for k, v in self.fixed.items():
            if k in specs:
                try:
                    specs[k].check(k, v)
                except ValueError as exc:
                    raise SpaceError(f"{src}: fixed {k}: {str(exc).splitlines()[0]}") from None
        for p in self.all_params():
            spec = specs.get(p.key)
            if spec is None:
                continue
            probe = list(p.choices) if p.type == "categorical" else [p.low, p.high]
            for v in probe:
                if p.type == "int" and v is not None:
                    v = int(v)
                try:
                    spec.check(p.key, v)
                except ValueError as exc:
                    raise SpaceError(f"{src}: parameter {p.key!r}: {str(exc).splitlines()[0]}") from None
        # Strategy x head combinations (e.g. a strategy that needs its own head).
        strategies = self._possible_values("strategy") or ("none",)
        heads_ = self._possible_values("head") or ("regression",)
        for st in strategies:
            ok = []
            for h in heads_:
                try:
                    check_combination({**self.fixed, "strategy": st, "head": h})
                    ok.append(h)
                except ValueError as exc:
                    err = str(exc).splitlines()[0]
            if not ok:
                raise SpaceError(f"{src}: strategy {st!r} cannot run with any head in the space ({err})")
        # Choices that cannot combine: a searched loss needs a head that takes a loss.
        heads = head_registry()
        head_vals = self._possible_values("head") or ("regression",)
        loss_vals = self._possible_values("loss")
        if loss_vals and not any("loss" in getattr(heads[h], "config_keys", ()) for h in head_vals):
            raise SpaceError(
                f"{src}: 'loss' is set but none of the heads {list(head_vals)} takes a loss; "
                "drop 'loss' or add a point-regression head"
            )
        for h in head_vals:
            allowed = getattr(heads[h], "losses", None)
            if allowed is not None and loss_vals and "loss" in self.fixed and self.fixed["loss"] not in allowed:
                raise SpaceError(f"{src}: head {h!r} cannot use loss {self.fixed['loss']!r}; valid: {list(allowed)}")
        self._check_fixed_values()
        return self

    def _check_fixed_values(self) -> None:
        """Fixed values and choices have the type of the setting's default, and the trainer accepts
        the fixed settings (so a typo fails here, not in every trial)."""
        from agesearch.model import MODEL_DEFAULTS
        from agesearch.trainer import TRAIN_DEFAULTS, resolve_config

        src = self.source
        defaults = {**MODEL_DEFAULTS, **TRAIN_DEFAULTS}
        values = [(k, v, "fixed") for k, v in self.fixed.items()]
        values += [(p.key, v, "choice") for p in self.all_params() if p.type == "categorical" for v in p.choices]
        for k, v, what in values:
            if v is None:
                raise SpaceError(f"{src}: {what} {k} is null; give a value or remove it to use the default")
            d = defaults.get(k)
            numeric = isinstance(d, (int, float)) and not isinstance(d, bool)
            if numeric and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
                raise SpaceError(f"{src}: {what} {k} must be a finite number like {d!r}, got {v!r}")
            if isinstance(d, bool) and not isinstance(v, bool):
                raise SpaceError(f"{src}: {what} {k} must be true or false, got {v!r}")
        base = self.base_config()
        try:
            resolve_config(base)
        except (TypeError, ValueError) as exc:
            raise SpaceError(f"{src}: fixed settings: {(str(exc).splitlines() or [''])[0]}") from None
        for p in self.all_params():  # every searched value the trainer could receive: range ends, choices
            probe = list(p.choices) if p.type == "categorical" else [p.low, p.high]
            for v in probe:
                try:
                    resolve_config({**base, p.key: v})
                except (TypeError, ValueError) as exc:
                    raise SpaceError(
                        f"{src}: params {p.key}: {(str(exc).splitlines() or [''])[0]}; narrow the range or fix the choices"
                    ) from None

    def _possible_values(self, key: str) -> tuple[Any, ...] | None:
        """Values ``key`` can take (fixed or categorical choices); None when numeric or absent."""
        if key in self.fixed:
            return (self.fixed[key],)
        vals: list[Any] = []
        found = False
        for p in self.all_params():
            if p.key == key:
                found = True
                if p.type != "categorical":
                    return None
                vals.extend(v for v in p.choices if v not in vals)
        return tuple(vals) if found else None

    # -- derived settings
    def region_spec(self):
        from agesearch.regions import RegionSpec

        return RegionSpec(**dict(self.data.get("regions") or {}))

    @property
    def bin_width(self) -> float:
        return float(self.data.get("bin_width", 1.0))

    def base_config(self) -> dict[str, Any]:
        """Fixed settings every trial gets (early stopping on the search metric by default)."""
        return {"early_stop_metric": self.metric, **copy.deepcopy(self.fixed)}

    def reference_config(self) -> dict[str, Any]:
        """The vanilla reference: the fixed settings with no imbalance handling."""
        return {**self.base_config(), **REFERENCE_CONFIG}

    def define_by_run(self) -> "DefineByRun":
        return DefineByRun(self)

    def to_dict(self) -> dict[str, Any]:
        def pdict(p: Param) -> dict[str, Any]:
            if p.type == "categorical":
                return {"type": p.type, "choices": list(p.choices)}
            d: dict[str, Any] = {"type": p.type, "low": p.low, "high": p.high}
            if p.log:
                d["log"] = True
            if p.step is not None:
                d["step"] = p.step
            return d

        return {
            "name": self.name, "description": self.description, "metric": self.metric,
            "guard": self.guard,
            "mode": self.mode, "fixed": self.fixed, "data": self.data, "pruner": self.pruner,
            "params": {p.key: pdict(p) for p in self.params},
            "conditional": [
                {"when": {k: list(v) for k, v in c.when}, "params": {p.key: pdict(p) for p in c.params}}
                for c in self.conditionals
            ],
        }  # fmt: skip

    def describe(self) -> str:
        """A short human-readable summary (for ``agesearch spaces``)."""
        lines = [f"{self.name}: {self.description}".rstrip(": "),
                 f"  metric {self.metric} ({self.mode}), pruner {self.pruner['name']}",
                 f"  fixed: {', '.join(f'{k}={v}' for k, v in self.fixed.items()) or '-'}"]  # fmt: skip
        for p in self.params:
            lines.append(f"  {p.key}: {_pdesc(p)}")
        for c in self.conditionals:
            for p in c.params:
                lines.append(f"  {p.key} (when {c.label}): {_pdesc(p)}")
        return "\n".join(lines)


def _pdesc(p: Param) -> str:
    if p.type == "categorical":
        return "{" + ", ".join(map(str, p.choices)) + "}"
    return f"{p.type} [{p.low}, {p.high}]" + (" log" if p.log else "") + (f" step {p.step}" if p.step else "")


def load_space(path: str | Path) -> SearchSpace:
    """Read, parse and validate a space file."""
    return SearchSpace.from_yaml(path).validate()


class DefineByRun:
    """Optuna define-by-run function for a :class:`SearchSpace` (module-level: it pickles).

    Called with an ``optuna.Trial``; returns the full flat trial configuration (fixed settings plus
    sampled values under their configuration keys). A trial enqueued with the user attribute
    ``agesearch_reference`` gets :meth:`SearchSpace.reference_config` and samples nothing.
    """

    def __init__(self, space: SearchSpace) -> None:
        self.space = space

    def __call__(self, trial: Any) -> dict[str, Any]:
        if trial.user_attrs.get("agesearch_reference"):
            return self.space.reference_config()
        config = self.space.base_config()
        for p in self.space.params:
            config[p.key] = p.suggest(trial)
        for c in self.space.conditionals:
            if c.active(config):
                for p in c.params:
                    config[p.key] = p.suggest(trial)
        return config


SHIPPED_DIR = Path(__file__).resolve().parents[2] / "search_spaces"


def shipped_spaces() -> list[Path]:
    """The space files shipped in ``search_spaces/``."""
    return sorted(SHIPPED_DIR.glob("*.yaml")) if SHIPPED_DIR.is_dir() else []


def resolve_space_path(name: str | Path) -> Path:
    """A path as given, or a shipped space by name (``quick`` -> ``search_spaces/quick.yaml``)."""
    p = Path(name)
    if p.is_file():
        return p
    cand = SHIPPED_DIR / (p.name if p.suffix else f"{p.name}.yaml")
    if cand.is_file():
        return cand
    names = ", ".join(s.stem for s in shipped_spaces())
    raise SpaceError(f"search space {str(name)!r} not found; give a YAML path or a shipped name ({names})")


def distinct(values: Sequence[Any]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if v not in out:
            out.append(v)
    return out
