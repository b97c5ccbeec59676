"""The cost of a configuration, in one place: per sample and per run.

The plan's rows (:mod:`planner.plan`), the ranking's features, the sweep ledger's planned cost and the
run's spent cost (:mod:`runners.run`) all come from here; :mod:`budget.flops` holds the formulas. A *configuration* is anything with the field names of a run config
(:class:`runners.config.RunConfig`, a plan row, a result row, a plain dict): ``model``, ``strategy``
(default ``clip``), ``image_size`` and ``context_length`` (None: the model's own), ``flip_mask_ratio``
(None: :data:`budget.flops.DEFAULT_FLIP_MASK_RATIO` for ``flip``), ``slip_mlp_dim``/``slip_emb_dim`` (None:
SLIP's 4096/256) and ``samples_seen``. Reading them all here is what keeps planned and spent FLOPs equal.

Conventions (:mod:`budget.flops`, :mod:`budget.hardware`):

* ``gflops_per_sample``: strategy-adjusted per-sample forward GFLOPs (the paper convention, FLOPs = 2 × MACs);
* ``total_gflops`` = ``gflops_per_sample`` × ``samples_seen`` (the paper's compute axis);
* ``train_flops`` = 3 × forward FLOPs (backward ≈ 2 × forward);
* ``gpu_hours`` = ``train_flops`` / (peak of ``gpu`` × ``mfu``) / 3600 (a plan; a run measures its own).

Example:
    >>> c = run_cost({"model": "ViT-B-32", "strategy": "clip", "samples_seen": "1.36e9"})
    >>> round(c.gflops_per_sample, 2), c.samples_seen, f"{c.total_gflops:.3g}", f"{c.train_flops:.3g}"
    (14.78, 1360000000, '2.01e+10', '6.03e+19')
    >>> c.gpu, c.mfu, round(c.gpu_hours, 1)
    ('A100', 0.4, 134.2)
    >>> slip = run_cost({"model": "ViT-B-32", "strategy": "slip", "slip_mlp_dim": 1024, "samples_seen": 1})
    >>> slip.sample.extra_gflops < sample_cost_of({"model": "ViT-B-32", "strategy": "slip"}).extra_gflops
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from budget.catalog import ModelSpec
from budget.coerce import to_float, to_int
from budget.errors import ConfigError
from budget.flops import SampleCost, sample_cost
from budget.hardware import DEFAULT_GPU, DEFAULT_MFU, check_mfu, get_gpu, gpu_hours
from budget.vocabulary import DEFAULT_FLIP_MASK_RATIO, SLIP_EMB_DIM, SLIP_MLP_DIM

#: The configuration fields the cost reads (what a config must carry for planned and spent to agree).
COST_FIELDS = ("model", "strategy", "image_size", "context_length", "flip_mask_ratio", "slip_mlp_dim",
               "slip_emb_dim", "samples_seen")


@dataclass(frozen=True)
class RunCost:
    """The compute of one run: its per-sample cost × ``samples_seen``, and GPU-hours on ``gpu`` at ``mfu``.

    ``total_gflops`` is paper-convention forward GFLOPs; ``train_flops`` training FLOPs (3 × forward);
    ``gpu_hours`` the estimate for ``train_flops`` on ``gpu`` at model-FLOPs utilisation ``mfu``.
    """

    sample: SampleCost
    samples_seen: int
    total_gflops: float
    train_flops: float
    gpu: str
    mfu: float
    gpu_hours: float

    @property
    def gflops_per_sample(self) -> float:
        """Strategy-adjusted per-sample forward GFLOPs (paper convention)."""
        return self.sample.forward_gflops

    def to_dict(self) -> dict[str, Any]:
        """The columns a result row or a plan row carries (units in the names)."""
        return {"gflops_per_sample": self.gflops_per_sample, "total_gflops": self.total_gflops,
                "train_flops": self.train_flops, "gpu_hours": self.gpu_hours}

    def as_dict(self) -> dict[str, Any]:
        """Everything, nested (JSON-ready)."""
        return asdict(self)


def sample_cost_of(config: Any) -> SampleCost:
    """The strategy-adjusted per-sample cost of ``config`` (see the module docstring for the fields read).

    ``config.model`` may be a catalog name, a path to an open_clip JSON config or a :class:`ModelSpec`.
    Raises :class:`ConfigError` (unknown model or strategy, FLIP on a non-ViT, bad sizes, bad SLIP head).
    """
    model = _field(config, "model")
    if model is None or (isinstance(model, str) and not model.strip()):
        raise ConfigError("a cost needs a model (a catalog name or an open_clip JSON config path)")
    if not isinstance(model, (str, ModelSpec)):
        model = str(model)
    strategy = _field(config, "strategy") or "clip"
    mask = _field(config, "flip_mask_ratio")
    return sample_cost(
        model, str(strategy),
        image_size=_opt_int(config, "image_size"),
        context_length=_opt_int(config, "context_length"),
        flip_mask_ratio=DEFAULT_FLIP_MASK_RATIO if mask is None else _number(mask, "flip_mask_ratio"),
        slip_mlp_dim=_opt_int(config, "slip_mlp_dim", SLIP_MLP_DIM),
        slip_emb_dim=_opt_int(config, "slip_emb_dim", SLIP_EMB_DIM),
    )


def cost_for_samples(sample: SampleCost, samples_seen: Any, *, gpu: str = DEFAULT_GPU,
                     mfu: float = DEFAULT_MFU) -> RunCost:
    """The :class:`RunCost` of ``samples_seen`` samples (a count; ``"1.36e9"`` is read) at ``sample``'s cost."""
    seen = _count(samples_seen)
    g, m = get_gpu(gpu).name, check_mfu(mfu)
    total = sample.forward_gflops * seen
    train = sample.train_gflops * 1e9 * seen
    return RunCost(sample=sample, samples_seen=seen, total_gflops=total, train_flops=train,
                   gpu=g, mfu=m, gpu_hours=gpu_hours(train, gpu=g, mfu=m))


def run_cost(config: Any, *, samples_seen: Any = None, gpu: str | None = None, mfu: float | None = None) -> RunCost:
    """The :class:`RunCost` of ``config``: its per-sample cost × ``samples_seen``.

    ``samples_seen`` defaults to ``config.samples_seen`` (a run passes the samples it actually trained on);
    ``gpu``/``mfu`` default to ``config.gpu``/``config.mfu`` when present, else
    :data:`budget.hardware.DEFAULT_GPU`/:data:`budget.hardware.DEFAULT_MFU`.
    """
    if samples_seen is None:
        samples_seen = _field(config, "samples_seen")
        if samples_seen is None:
            raise ConfigError("a run cost needs samples_seen (a count of samples)")
    gpu = gpu or _field(config, "gpu") or DEFAULT_GPU
    mfu = mfu if mfu is not None else (_field(config, "mfu") or DEFAULT_MFU)
    return cost_for_samples(sample_cost_of(config), samples_seen, gpu=gpu, mfu=mfu)


# --- internals -------------------------------------------------------------------------------------


def _field(config: Any, name: str) -> Any:
    if isinstance(config, Mapping):
        value = config.get(name)
    else:
        value = getattr(config, name, None)
    if isinstance(value, float) and value != value:  # NaN: a missing cell of a table
        return None
    return value


def _opt_int(config: Any, name: str, default: int | None = None) -> int | None:
    value = _field(config, name)
    if value is None:
        return default
    try:
        return to_int(value)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number, got {value!r} ({exc})") from None


def _number(value: Any, name: str) -> float:
    try:
        return to_float(value)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {value!r} ({exc})") from None


def _count(value: Any) -> int:
    try:
        seen = to_int(value)
    except ValueError as exc:
        raise ConfigError(f"samples_seen must be a whole number of samples, got {value!r} ({exc})") from None
    if seen < 0:
        raise ConfigError(f"samples_seen must be ≥ 0, got {seen}")
    return seen


__all__ = ["COST_FIELDS", "RunCost", "cost_for_samples", "run_cost", "sample_cost_of"]
