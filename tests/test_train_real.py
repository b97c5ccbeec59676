"""Real results (slow): a tiny ViT CLIP on Fashion-MNIST shards, zero-shot on the 10k test split; and
quality filtering by the trained model's image-text similarity beating no filtering at 60 % corrupted captions.

Measured numbers (this machine: 2 shared cores, loaded by other jobs, 1 torch thread; noisy):
* clean, tiny-vit-s-28, 60k samples seen, batch 128, lr 1e-3: zero-shot top-1 0.7955 on the 10k test split
  (271 s training under load; ≈ 100 s at the ~600 samples/s an unloaded 2-core machine gives).
* this test's config (40k samples seen, tiny-vit-s-28, batch 128, lr 1e-3): zero-shot top-1 0.7825, top-5 0.9930,
  linear probe 0.7904; 156 s for the whole run (training + evaluation on 10k images) under load.
* quality (60 % corrupted, 20k pairs): the scorer's top 40 % has precision 0.741 / recall 0.741 for clean pairs;
  at equal samples seen (40k) zero-shot top-1 is 0.4309 training on all pairs vs 0.6353 on the top 40 % (262 s).
The assertions are on accuracy only; wall time is logged, never asserted.
"""

from __future__ import annotations

import logging
import shutil
import time

import pytest

from tests._data_fixtures import build_demo_data
from tests._train_fixtures import one_thread  # noqa: F401 - fixture

log = logging.getLogger(__name__)


def _cfg(shards, evald, **over):
    from runners.config import RunConfig

    d = dict(model="tiny-vit-s-28", strategy="clip", samples_seen=40_000, batch_size=128, lr=1e-3,
             warmup_steps=20, weight_decay=0.1, train_data=str(shards), eval_data=str(evald), workers=1,
             linear_probe=False, retrieval=False)
    d.update(over)
    return RunConfig.from_dict(d)


@pytest.mark.slow
def test_tiny_vit_reaches_seventy_percent_zero_shot(tmp_path_factory, one_thread, tmp_path):  # noqa: F811
    from runners.run import run

    shards, evald = build_demo_data(tmp_path_factory.mktemp("fm"), n_train=20_000, n_eval=10_000)
    t0 = time.monotonic()
    row = run(_cfg(shards, evald, linear_probe=True), tmp_path, device="cpu")
    print(f"\nzero-shot top-1 {row['zeroshot_top1']:.4f} top-5 {row['zeroshot_top5']:.4f} linear probe "
          f"{row['linear_probe_top1']:.4f} ({time.monotonic() - t0:.0f} s, train loss {row['final_train_loss']:.3f})")
    assert row["zeroshot_top1"] >= 0.70


@pytest.mark.slow
def test_quality_filter_beats_all_data_at_equal_samples_seen(tmp_path_factory, one_thread, tmp_path):  # noqa: F811
    """60 % corrupted captions: score with a model trained on all of it, keep the top 40 %, retrain."""
    from runners.data.score import score_shards
    from runners.run import run

    shards, evald = build_demo_data(tmp_path_factory.mktemp("fm-noisy"), n_train=20_000, n_eval=10_000, corrupt=0.6)
    work = tmp_path / "shards"
    shutil.copytree(shards, work)
    scorer = run(_cfg(work, evald), tmp_path / "scorer", device="cpu")
    report = score_shards(work, checkpoint=tmp_path / "scorer" / "runs" / scorer["run_id"] / "final.pt",
                          model="tiny-vit-s-28")
    print(f"\nscore filter: {report.filter[:3] if report.filter else report.auc}")
    all_data = run(_cfg(work, evald, seed=1), tmp_path / "all", device="cpu")
    top40 = run(_cfg(work, evald, seed=1, quality_fraction=0.4), tmp_path / "top40", device="cpu")
    print(f"zero-shot top-1: all data {all_data['zeroshot_top1']:.4f}, top 40 % by score {top40['zeroshot_top1']:.4f}")
    assert top40["zeroshot_top1"] > all_data["zeroshot_top1"]
