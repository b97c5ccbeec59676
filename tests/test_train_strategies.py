"""Each strategy (clip, slip, flip, clip_aug) trains end to end on real Fashion-MNIST shards with a real
open_clip model, is evaluated, and lands as one complete result row; the FLOP accounting matches the plan."""

from __future__ import annotations

import math

import pytest
import torch

from tests._data_fixtures import demo_data  # noqa: F401 - fixture
from tests._train_fixtures import micro_cfg, micro_model, one_thread  # noqa: F401 - fixtures


@pytest.mark.parametrize("strategy,extra", [
    ("clip", {}),
    ("slip", {}),
    ("flip", {"flip_mask_ratio": 0.5}),
    ("clip_aug", {"aug": "stacked_randaug"}),
])
def test_strategy_end_to_end(strategy, extra, demo_data, micro_model, one_thread, tmp_path):  # noqa: F811
    from budget.flops import sample_cost
    from results.schema import COLUMNS
    from results.store import ResultStore
    from runners.run import run

    shards, evald = demo_data
    cfg = micro_cfg(micro_model, shards, evald, strategy=strategy, linear_probe=(strategy == "clip"), **extra)
    row = run(cfg, tmp_path, device="cpu")

    assert row["status"] == "completed" and row["error"] is None
    assert set(COLUMNS) <= set(row)
    for key in ("zeroshot_top1", "zeroshot_top5", "retrieval_i2t_r1", "retrieval_t2i_r1", "retrieval_i2t_r5",
                "retrieval_t2i_r5"):
        assert 0.0 <= row[key] <= 1.0, key
    assert row["zeroshot_top5"] >= row["zeroshot_top1"]
    if strategy == "clip":
        assert 0.0 <= row["linear_probe_top1"] <= 1.0
    assert math.isfinite(row["final_train_loss"])
    assert row["steps"] == 4 and row["epochs"] == pytest.approx(256 / 2000)
    assert row["device"] == "cpu" and row["n_gpus"] == 0 and row["gpu_hours"] == 0.0
    assert row["torch_version"] == torch.__version__.split("+")[0] or row["torch_version"]
    # compute accounting: samples trained × strategy-adjusted per-sample GFLOPs, within 1 % of the plan
    planned = cfg.samples_seen * sample_cost(str(micro_model), strategy, flip_mask_ratio=cfg.flip_mask_ratio,
                                             slip_mlp_dim=64, slip_emb_dim=32).forward_gflops
    assert row["total_gflops"] == pytest.approx(planned, rel=0.01)
    assert row["train_flops"] == pytest.approx(3 * planned * 1e9, rel=0.01)
    rows = ResultStore(tmp_path / "results").read(latest=False)
    assert len(rows) == 1 and rows.iloc[0]["run_id"] == cfg.run_id


def test_strategy_costs_differ_as_the_paper_says(micro_model):
    """SLIP costs more than CLIP (two more image passes + head), FLIP less; clip_aug the same as CLIP."""
    from budget.flops import sample_cost

    c = {s: sample_cost(str(micro_model), s, flip_mask_ratio=0.5).forward_gflops for s in
         ("clip", "slip", "flip", "clip_aug")}
    assert c["slip"] > 2 * c["clip"] - 1e-12 and c["flip"] < c["clip"] and c["clip_aug"] == c["clip"]


def test_slip_head_flops_match_the_accounting():
    """The SSL head we build costs exactly what budget.flops counts for it (FlopCounterMode on the head)."""
    from torch.utils.flop_counter import FlopCounterMode

    from runners.strategies import SSLHead

    head = SSLHead(32, 64, 16).eval()
    with FlopCounterMode(display=False) as counter:
        head(torch.zeros(1, 32))
    assert counter.get_total_flops() == 2 * (32 * 64 + 64 * 64 + 64 * 16)


def test_flip_drops_patches_in_training_only(micro_model, one_thread):  # noqa: F811
    from runners.models import build_model

    built = build_model(str(micro_model), patch_dropout=0.5)
    seen = []
    hook = built.model.visual.transformer.register_forward_pre_hook(lambda m, a: seen.append(a[0].shape[1]))
    x = torch.zeros(2, 3, 28, 28)
    built.model.train()
    built.model.encode_image(x)
    built.model.eval()
    built.model.encode_image(x)
    hook.remove()
    assert seen == [1 + 2, 1 + 4]  # class token + kept patches (2 of 4 in training, all 4 at eval)


@pytest.mark.parametrize("aug", ["none", "crop_flip", "randaug", "stacked_randaug"])
def test_aug_presets_make_rgb_tensors_from_greyscale(aug):
    from PIL import Image

    from runners.strategies import SimCLRViews, train_transform

    img = Image.new("L", (28, 28), 128)
    x = train_transform(aug, 28, (0.5,) * 3, (0.5,) * 3)(img)
    assert x.shape == (3, 28, 28)
    v1, v2 = SimCLRViews(28, (0.5,) * 3, (0.5,) * 3)(img)
    assert v1.shape == v2.shape == (3, 28, 28)


def test_final_checkpoint_loads_with_plain_open_clip(demo_data, micro_model, one_thread, tmp_path):  # noqa: F811
    """open_clip.create_model(name, pretrained=PATH) loads our final weights (same outputs)."""
    import open_clip

    from runners.models import load_trained, open_clip_name
    from runners.train import train

    shards, evald = demo_data
    cfg = micro_cfg(micro_model, shards, evald, samples_seen=128)
    result = train(cfg, tmp_path, device="cpu")
    name = open_clip_name(str(micro_model))
    plain = open_clip.create_model(name, pretrained=str(result.final_path)).eval()
    ours, _, tok = load_trained(str(micro_model), result.final_path)
    x, t = torch.randn(3, 3, 28, 28), tok(["a photo of a bag", "boot", "x"])
    with torch.no_grad():
        assert torch.allclose(plain.encode_image(x), ours.encode_image(x))
        assert torch.allclose(plain.encode_text(t), ours.encode_text(t))
    torch.manual_seed(cfg.seed)  # the same initial weights the run started from (train seeds, then builds)
    fresh = open_clip.create_model(name).eval()
    with torch.no_grad():
        assert not torch.allclose(fresh.encode_image(x), ours.encode_image(x), atol=1e-4)
        assert not torch.allclose(fresh.encode_text(t), ours.encode_text(t), atol=1e-4)


def test_catalog_tiny_model_and_optimizer_groups():
    """Catalog names build; weight decay skips gains, biases and logit_scale (as open_clip)."""
    from runners.models import build_model
    from runners.train import param_groups

    built = build_model("tiny-vit-s-28")
    assert built.image_size == 28 and built.context_length == 16
    assert built.tokenizer(["a bag"]).shape == (1, 16)
    no_decay, decay = param_groups(built.model, 0.2)
    ids = {id(p) for p in no_decay["params"]}
    assert id(built.model.logit_scale) in ids and decay["weight_decay"] == 0.2
    assert all(p.ndim >= 2 for p in decay["params"])
