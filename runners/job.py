"""``RunJob``: the picklable callable a sweep submits with submitit (one training run per job).

``RunJob(cfg, out_dir)()`` calls :func:`runners.run.run`. It is a ``submitit.helpers.Checkpointable``:
on preemption or timeout submitit sends SIGUSR2; the training loop (``runners.train``) finishes the step
in flight, writes a checkpoint, then hands over to submitit's handler, which calls :meth:`RunJob.checkpoint`
and requeues the job. The requeued job is a fresh ``RunJob`` with the same arguments: ``run`` finds the
on-disk checkpoint in ``out_dir/runs/<run_id>/`` and resumes from it (and a run that already has a
completed row returns it without training). Nothing heavy is imported when the module loads or when the
object is pickled: the config travels as its JSON.

Example::

    executor = submitit.AutoExecutor(folder="sweep/jobs")
    job = executor.submit(RunJob(cfg, "sweep", device="cuda", sweep_id=grid.sweep_id))
    row = job.result()
"""

from __future__ import annotations

import logging
import os
from typing import Any

import submitit

log = logging.getLogger(__name__)


class RunJob(submitit.helpers.Checkpointable):
    """One run as a submitit job: ``__call__`` trains/evaluates/records; ``checkpoint`` requeues itself.

    Args:
        cfg: a :class:`runners.config.RunConfig` (or a mapping of its fields).
        out_dir: the sweep folder (``results/`` and ``runs/`` live under it).
        device: ``auto`` | ``cpu`` | ``cuda``.
        sweep_id: recorded in the row.
    """

    def __init__(self, cfg: Any, out_dir: str | os.PathLike, device: str = "auto", sweep_id: str = ""):
        from runners.config import RunConfig

        if not isinstance(cfg, RunConfig):
            cfg = RunConfig.from_dict(dict(cfg), check_model=False)
        self.cfg = cfg
        self.out_dir = os.fspath(out_dir)
        self.device = device
        self.sweep_id = sweep_id
        self.attempt = 0

    @property
    def run_id(self) -> str:
        return self.cfg.run_id

    def __call__(self) -> dict:
        from runners.run import run

        self.attempt += 1
        log.info("RunJob %s: attempt %d", self.run_id, self.attempt)
        return run(self.cfg, self.out_dir, device=self.device, sweep_id=self.sweep_id)

    def checkpoint(self, *args: Any, **kwargs: Any) -> submitit.helpers.DelayedSubmission:
        """Called by submitit on preemption/timeout: requeue a copy that resumes from the disk checkpoint.

        The training loop has already saved a checkpoint before submitit's handler runs (see
        :mod:`runners.train`); the model is never pickled, only the config and paths.
        """
        log.warning("RunJob %s: preempted or timed out; requeueing (resumes from the last checkpoint)", self.run_id)
        clone = RunJob(self.cfg, self.out_dir, device=self.device, sweep_id=self.sweep_id)
        clone.attempt = self.attempt
        return submitit.helpers.DelayedSubmission(clone)

    def __getstate__(self) -> dict:
        return {"cfg_json": self.cfg.to_json(), "out_dir": self.out_dir, "device": self.device,
                "sweep_id": self.sweep_id, "attempt": self.attempt}

    def __setstate__(self, state: dict) -> None:
        from runners.config import RunConfig

        self.cfg = RunConfig.from_json(state["cfg_json"])
        self.out_dir, self.device = state["out_dir"], state["device"]
        self.sweep_id, self.attempt = state["sweep_id"], state.get("attempt", 0)

    def __repr__(self) -> str:
        return f"RunJob(run_id={self.run_id!r}, model={self.cfg.model!r}, strategy={self.cfg.strategy!r}, out_dir={self.out_dir!r})"


__all__ = ["RunJob"]
