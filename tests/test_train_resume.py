"""Resume is exact; gradient accumulation and 2-process DDP reproduce the single-process loss curve.

All on real Fashion-MNIST shards with a real (micro) open_clip model. The distributed test runs two real
gloo processes on CPU (NCCL/multi-node cannot run here).
"""

from __future__ import annotations

import json
import os
import signal
import socket

import pytest
import torch

from tests._data_fixtures import demo_data  # noqa: F401 - fixture
from tests._train_fixtures import micro_cfg, micro_model, one_thread  # noqa: F401 - fixtures


def _weights(run_dir):
    return torch.load(run_dir / "final.pt", weights_only=True)["state_dict"]


@pytest.mark.parametrize("strategy", ["flip", "slip"])
def test_interrupted_and_resumed_equals_uninterrupted(strategy, demo_data, micro_model, one_thread, tmp_path):  # noqa: F811
    """Stopped after step 3 of 6. FLIP draws random patch masks (the RNG state must be restored); SLIP's
    SimCLR views are random augmentations (seeded per step by the loader)."""
    from runners.checkpoint import list_checkpoints
    from runners.train import TrainingInterrupted, train

    shards, evald = demo_data
    cfg = micro_cfg(micro_model, shards, evald, strategy=strategy, samples_seen=384, warmup_steps=2)
    full = train(cfg, tmp_path / "a", device="cpu")

    with pytest.raises(TrainingInterrupted) as info:
        train(cfg, tmp_path / "b", device="cpu", stop_after_steps=3)
    assert info.value.step == 3
    assert [s for s, _ in list_checkpoints(tmp_path / "b" / "checkpoints")] == [3]
    resumed = train(cfg, tmp_path / "b", device="cpu")

    assert resumed.resumed_from_step == 3 and resumed.samples_trained == full.samples_trained == 384
    assert len(resumed.losses) == len(full.losses) == 6
    assert resumed.losses == pytest.approx(full.losses, rel=1e-5, abs=1e-6)
    wa, wb = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    for k in wa:
        assert torch.allclose(wa[k], wb[k], rtol=1e-5, atol=1e-6), k
    # a finished run re-entered trains nothing more
    again = train(cfg, tmp_path / "b", device="cpu")
    assert again.resumed_from_step == 6 and again.losses == resumed.losses


def test_gradient_accumulation_matches_one_big_batch(demo_data, micro_model, one_thread, tmp_path):  # noqa: F811
    """open_clip-style feature caching: 2 micro-batches give the full-batch contrastive gradient."""
    from runners.train import train

    shards, evald = demo_data
    one = train(micro_cfg(micro_model, shards, evald, samples_seen=256), tmp_path / "one", device="cpu")
    two = train(micro_cfg(micro_model, shards, evald, samples_seen=256, grad_accum_steps=2), tmp_path / "two",
                device="cpu")
    assert two.losses == pytest.approx(one.losses, rel=1e-4, abs=1e-5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_processes_match_one_process(demo_data, micro_model, one_thread, tmp_path, monkeypatch):  # noqa: F811
    """Same global batch (64 = 2 × 32), same data, same init: same loss curve (incl. an uneven last step).
    The CLIP view's random crop is made deterministic in both (ranks draw their own crops by design)."""
    import torch.multiprocessing as mp

    from runners.train import train
    from tests._train_fixtures import deterministic_clip_view, distributed_worker

    deterministic_clip_view(monkeypatch)

    shards, evald = demo_data
    cfg = micro_cfg(micro_model, shards, evald, samples_seen=3 * 64 + 17)  # last step: 17 = 9 + 8 samples
    single = train(cfg, tmp_path / "single", device="cpu")
    out = tmp_path / "ddp.json"
    mp.spawn(distributed_worker, args=(2, _free_port(), cfg.to_json(), str(tmp_path / "ddp"), str(out)), nprocs=2)
    ddp = json.loads(out.read_text())
    assert ddp["samples"] == single.samples_trained == 209
    assert len(ddp["losses"]) == len(single.losses) == 4
    assert ddp["losses"] == pytest.approx(single.losses, rel=1e-4, abs=1e-5)


def test_sigterm_stops_training_but_under_submitit_only_checkpoints():
    """Plain SIGTERM asks the loop to stop. Under submitit (its SIGTERM handler installed, as in a job)
    SIGTERM only asks for a checkpoint: SLURM's preemption sends SIGTERM first and submitit's requeue
    signal (USR2) after it, so stopping on SIGTERM would end the job without a requeue."""
    from submitit.core.job_environment import SignalHandler

    from runners.train import _StopRequests

    old = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, lambda *_: None)  # some other program's handler
        plain = _StopRequests()
        plain.install()
        os.kill(os.getpid(), signal.SIGTERM)
        plain.restore()
        assert plain.signum == signal.SIGTERM and not plain.checkpoint_requested

        signal.signal(signal.SIGTERM, SignalHandler(None, None, None).bypass)  # what submitit installs
        under = _StopRequests()
        under.install()
        os.kill(os.getpid(), signal.SIGTERM)
        assert under.signum is None and under.checkpoint_requested
        os.kill(os.getpid(), signal.SIGUSR2)  # the requeue signal does stop the loop
        under.restore()
        assert under.signum == signal.SIGUSR2
    finally:
        signal.signal(signal.SIGTERM, old)


def _stopped_run(cfg, run_dir):
    """Train ``cfg`` (checkpoint every step) and stop after step 3: checkpoints of steps 2 and 3 remain."""
    from runners.checkpoint import list_checkpoints
    from runners.train import TrainingInterrupted, train

    with pytest.raises(TrainingInterrupted):
        train(cfg, run_dir, device="cpu", stop_after_steps=3)
    found = list_checkpoints(run_dir / "checkpoints")
    assert [s for s, _ in found] == [2, 3]
    return [p for _, p in found]


def test_corrupt_newest_checkpoint_resumes_from_the_older_and_says_so(demo_data, micro_model, one_thread, tmp_path,  # noqa: F811
                                                                       caplog):
    from runners.train import train

    shards, evald = demo_data
    cfg = micro_cfg(micro_model, shards, evald, samples_seen=384, checkpoint_every_steps=1)
    older, newest = _stopped_run(cfg, tmp_path)
    newest.write_bytes(b"not a checkpoint")  # a disk error
    with caplog.at_level("WARNING", logger="runners"):
        result = train(cfg, tmp_path, device="cpu")
    assert result.resumed_from_step == 2 and result.samples_trained == 384 and len(result.losses) == 6
    said = caplog.text
    assert "resuming from the older checkpoint" in said and str(older) in said and str(newest) in said


def test_checkpoints_that_all_fail_to_load_stop_the_run_naming_them(demo_data, micro_model, one_thread, tmp_path):  # noqa: F811
    """Never a silent restart from step 0 (that would redo and double-count the compute already spent)."""
    from runners.checkpoint import CheckpointError
    from runners.train import train

    shards, evald = demo_data
    cfg = micro_cfg(micro_model, shards, evald, samples_seen=384, checkpoint_every_steps=1)
    paths = _stopped_run(cfg, tmp_path)
    for p in paths:
        p.write_bytes(p.read_bytes()[:100])  # truncated
    with pytest.raises(CheckpointError) as info:
        train(cfg, tmp_path, device="cpu")
    message = str(info.value)
    assert "none loads" in message and all(str(p) in message for p in paths)
    assert not (tmp_path / "final.pt").exists()
    assert [p.read_bytes()[:100] for p in paths] == [p.read_bytes() for p in paths]  # left as they were
