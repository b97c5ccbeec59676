"""``torch.distributed`` set-up from the launcher's environment: torchrun, or SLURM as submitit runs it.

One process per GPU (or per CPU "rank" for tests): NCCL on GPU, gloo on CPU. Sources, in order:

* torchrun / an explicit launcher: ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``;
* SLURM (submitit, ``tasks_per_node = gpus_per_node``): ``SLURM_PROCID``, ``SLURM_NTASKS``,
  ``SLURM_LOCALID`` through ``submitit.helpers.TorchDistributedEnvironment``, which derives the master
  address from the job's first host and a port from the job id;
* neither: a single process (rank 0 of 1), no process group.

Example::

    env = init_distributed("cuda")     # DistEnv(rank=0, world_size=8, local_rank=0, backend='nccl', …)
    ...
    cleanup(env)
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits: ``rank`` of ``world_size``; ``local_rank`` on its node; ``backend`` or None."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    owns_group: bool = False  # True when init_distributed created the process group (and must destroy it)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def env_ranks() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from torchrun's or SLURM's variables (``(0, 1, 0)`` without either)."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0))
    if "SLURM_PROCID" in os.environ and int(os.environ.get("SLURM_NTASKS", "1")) > 1:
        return int(os.environ["SLURM_PROCID"]), int(os.environ["SLURM_NTASKS"]), int(os.environ.get("SLURM_LOCALID", 0))
    return 0, 1, 0


def init_distributed(device_type: str = "cpu", timeout_s: float = 1800.0) -> DistEnv:
    """Join (or create) the default process group as the environment describes; a no-op for one process.

    ``device_type`` ``cuda`` selects NCCL and sets the current device to ``local_rank``; ``cpu`` selects gloo.
    """
    import torch
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return DistEnv(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)),
                       dist.get_backend(), False)
    rank, world, local = env_ranks()
    if world <= 1:
        return DistEnv()
    if "RANK" not in os.environ:  # SLURM without torchrun: let submitit export the env:// variables
        from submitit.helpers import TorchDistributedEnvironment

        TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    backend = "nccl" if device_type == "cuda" else "gloo"
    if device_type == "cuda":
        torch.cuda.set_device(local)
    dist.init_process_group(backend=backend, rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=timeout_s))
    log.info("distributed: rank %d/%d (local %d), backend %s", rank, world, local, backend)
    return DistEnv(rank, world, local, backend, True)


def cleanup(env: DistEnv) -> None:
    """Destroy the process group if :func:`init_distributed` created it."""
    if env.owns_group:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def barrier(env: DistEnv) -> None:
    if env.distributed:
        import torch.distributed as dist

        dist.barrier()


def broadcast_object(env: DistEnv, obj):
    """``obj`` of rank 0 on every rank."""
    if not env.distributed:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_gather_object(env: DistEnv, obj) -> list:
    """Every rank's ``obj``, in rank order."""
    if not env.distributed:
        return [obj]
    import torch.distributed as dist

    out = [None] * env.world_size
    dist.all_gather_object(out, obj)
    return out


def any_flags(env: DistEnv, *flags: bool) -> tuple[bool, ...]:
    """Each flag true on every rank when it is true on any rank (one collective for all of them).

    Example: ``stop, due = any_flags(env, got_signal, checkpoint_due)``.
    """
    if not env.distributed:
        return tuple(bool(f) for f in flags)
    import torch
    import torch.distributed as dist

    dev = torch.device("cuda", torch.cuda.current_device()) if env.backend == "nccl" else torch.device("cpu")
    t = torch.tensor([1 if f else 0 for f in flags], device=dev)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return tuple(bool(x) for x in t.tolist())


__all__ = ["DistEnv", "all_gather_object", "any_flags", "barrier", "broadcast_object", "cleanup", "env_ranks",
           "init_distributed"]
