"""The built-in prior, queried through ``predict``, reproduces the seven findings of Li, Xie, Cubuk 2024
("Scaling (Down) CLIP", arXiv 2404.08197), with the exact numbers of issue 3. One test per finding."""

from __future__ import annotations

import pytest

from budget.flops import sample_cost
from planner.scaling.predict import predict_config


def top1(model, seen, unique, **kw) -> float:
    return predict_config(model=model, samples_seen=seen, unique_samples=unique, **kw)["predicted_top1"]


def test_finding1_quality_beats_quantity():
    pool = 3.4e9
    q04 = top1("ViT-B-32", 0.4 * pool, 0.4 * pool, quality_fraction=0.4)
    q10 = top1("ViT-B-32", pool, pool, quality_fraction=1.0)
    q02 = top1("ViT-B-32", 0.2 * pool, 0.2 * pool, quality_fraction=0.2)
    assert q04 > q10, (q04, q10)
    assert q02 < q04, (q02, q04)


def test_finding2_large_models_need_samples():
    small = {m: top1(m, 5e7, 5e7) for m in ("ViT-S-16", "ViT-B-16", "ViT-L-16")}
    assert small["ViT-L-16"] < small["ViT-B-16"] and small["ViT-L-16"] < small["ViT-S-16"], small
    large = {m: top1(m, 3.4e9, 3.4e9) for m in ("ViT-S-16", "ViT-B-16", "ViT-L-16")}
    assert max(large, key=large.get) == "ViT-L-16", large


def test_finding3_unique_data_saturates_at_fixed_samples():
    gain = top1("ViT-B-32", 3.4e9, 3.4e9) - top1("ViT-B-32", 3.4e9, 4e8)
    assert 0 <= gain < 0.01, gain


def test_finding4_resnet_vs_vit():
    assert top1("RN50", 2.5e7, 2.5e7) > top1("ViT-B-32", 2.5e7, 2.5e7)
    assert top1("RN50", 3.4e9, 3.4e9) < top1("ViT-B-32", 3.4e9, 3.4e9)


@pytest.mark.parametrize("seen", [2.5e7, 1e8, 3e8, 9e8])
def test_finding5_slip_better_at_equal_samples_below_1e9(seen):
    assert top1("ViT-B-32", seen, seen, strategy="slip") > top1("ViT-B-32", seen, seen, strategy="clip")


def test_finding5_slip_worse_at_equal_compute():
    seen = 3.4e9
    ratio = sample_cost("ViT-B-32", "slip").forward_gflops / sample_cost("ViT-B-32", "clip").forward_gflops
    assert ratio > 1.9  # SLIP costs about 2x CLIP
    slip = predict_config(model="ViT-B-32", samples_seen=seen, unique_samples=seen, strategy="slip")
    clip = predict_config(model="ViT-B-32", samples_seen=seen * ratio, unique_samples=seen, strategy="clip")
    assert clip["total_gflops"] == pytest.approx(slip["total_gflops"], rel=1e-9)
    assert slip["predicted_top1"] < clip["predicted_top1"]


@pytest.mark.parametrize("model", ["ViT-B-16", "ViT-L-16"])
@pytest.mark.parametrize("clip_seen", [1e9, 3.4e9, 1.28e10])
def test_finding6_flip_matches_clip_at_equal_compute(model, clip_seen):
    ratio = sample_cost(model, "clip").forward_gflops / sample_cost(model, "flip", flip_mask_ratio=0.5).forward_gflops
    for unique in (clip_seen, 4e8):
        clip = top1(model, clip_seen, unique)
        flip = top1(model, clip_seen * ratio, unique, strategy="flip", flip_mask_ratio=0.5)
        assert flip >= clip - 0.01, (unique, flip, clip)


def test_finding7_augmentation_halves_the_data_at_30_epochs():
    aug = top1("ViT-B-32", 30 * 2.5e7, 2.5e7, strategy="clip_aug")
    clip = top1("ViT-B-32", 30 * 5e7, 5e7, strategy="clip")
    assert abs(aug - clip) < 0.01, (aug, clip)
    assert top1("ViT-B-32", 2.5e7, 2.5e7, strategy="clip_aug") < top1("ViT-B-32", 2.5e7, 2.5e7, strategy="clip")
