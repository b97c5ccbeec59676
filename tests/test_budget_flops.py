"""Analytic FLOPs and parameters against open_clip's published profile, and the strategy adjustments."""

from __future__ import annotations

import math

import pytest

from budget.catalog import get_model
from budget.errors import ConfigError
from budget.flops import (
    STRATEGIES,
    TRAIN_FLOPS_PER_FORWARD,
    kept_tokens,
    param_counts,
    sample_cost,
    tower_gflops,
)

# open_clip docs/model_profile.csv (image 224, text 77; FLOPs = 2 x MACs), copied in
# ../shared/reference/published-numbers.md section 2: params M (image, text), GFLOPs (image, text).
PROFILE = {
    "ViT-S-32": (22.64, 40.44, 2.29, 3.38),
    "ViT-S-16": (21.81, 40.44, 9.20, 3.38),
    "ViT-B-32": (87.85, 63.43, 8.82, 5.96),
    "convnext_tiny": (28.61, 63.69, 8.91, 5.96),
    "RN50": (38.32, 63.69, 12.22, 5.96),
    "RN101": (56.26, 63.43, 19.54, 5.96),
    "ViT-B-16": (86.19, 63.43, 35.13, 5.96),
    "ViT-L-16": (304.09, 123.65, 123.11, 13.30),
    "ViT-L-14": (303.97, 123.65, 162.03, 13.30),
    "ViT-H-14": (632.08, 354.03, 334.59, 47.09),
    "ViT-g-14": (1012.65, 354.03, 534.06, 47.09),
    "ViT-bigG-14": (1844.91, 694.66, 967.50, 97.86),
}
ISSUE_ROWS = ("ViT-S-16", "ViT-B-32", "ViT-B-16", "ViT-L-14", "RN50")  # the issue's 3 % requirement
# Cherti et al. arch_info.csv (fvcore) GMACs per sample, image 224 + text 77.
CHERTI_GMACS = {"ViT-S-16": 6.30, "ViT-B-32": 7.40, "RN50": 9.12, "ViT-B-16": 20.57, "ViT-L-16": 68.26,
                "ViT-L-14": 87.73, "ViT-H-14": 190.97, "ViT-g-14": 290.74}


@pytest.mark.parametrize("name", ISSUE_ROWS)
def test_issue_rows_within_3_percent(name):
    _, _, img, txt = PROFILE[name]
    image, text = tower_gflops(name, 224, 77)
    assert abs((image + text) / (img + txt) - 1) < 0.03


@pytest.mark.parametrize("name", sorted(PROFILE))
def test_every_profile_row_per_tower(name):
    """Measured deviations (open_clip 3.3.0): every tower within 0.2 % (ViT-S-32 image −0.20 %, the
    profile's 2.29 being rounded from 2.285); parameters within 0.02 %."""
    p_img, p_txt, g_img, g_txt = PROFILE[name]
    image, text = tower_gflops(name, 224, 77)
    # The profile prints 2 decimals: allow that rounding plus 0.2 %.
    assert image == pytest.approx(g_img, rel=2e-3, abs=0.006)
    assert text == pytest.approx(g_txt, rel=2e-3, abs=0.006)
    n_img, n_txt = param_counts(name)
    assert n_img / 1e6 == pytest.approx(p_img, rel=1e-3, abs=0.006)
    assert n_txt / 1e6 == pytest.approx(p_txt, rel=1e-3, abs=0.006)


@pytest.mark.parametrize("name", sorted(CHERTI_GMACS))
def test_cherti_macs_close(name):
    """fvcore (Cherti et al.) also counts a few element-wise ops (norms, adds): it is 0.06–0.31 % above our
    MACs (RN50 most: BatchNorm); agree within 0.5 %."""
    assert sample_cost(name).forward_macs == pytest.approx(CHERTI_GMACS[name], rel=0.005)
    assert sample_cost(name).forward_macs <= CHERTI_GMACS[name]


def test_paper_text_length_and_image_size():
    # Text tower at the paper's 16 tokens: about 16/77 of the 77-token cost (attention is quadratic).
    t16 = tower_gflops("ViT-B-32", context_length=16)[1]
    t77 = tower_gflops("ViT-B-32")[1]
    assert 0.19 < t16 / t77 < 0.21
    # ViT image tower at 448 px: 4x the tokens, so > 4x the FLOPs.
    assert tower_gflops("ViT-B-16", image_size=448)[0] > 4 * tower_gflops("ViT-B-16")[0]
    with pytest.raises(ConfigError, match="multiple of"):
        tower_gflops("ViT-B-16", image_size=230)
    with pytest.raises(ConfigError, match="positive integer"):
        tower_gflops("ViT-B-16", context_length=0)
    with pytest.raises(ConfigError, match="at least 32"):
        tower_gflops("RN50", image_size=28)


def test_vit_ti_16_matches_timm_card():
    # timm vit_tiny_patch16_224: 5.7 M params and 1.1 GMACs (fvcore, attention matmuls excluded).
    spec = get_model("ViT-Ti-16")
    assert spec.vision.heads == 3
    assert param_counts(spec)[0] / 1e6 == pytest.approx(5.7, rel=0.03)
    image_gmacs = tower_gflops(spec)[0] / 2
    tokens, width = 197, 192
    attention_gmacs = 12 * 2 * tokens * tokens * width / 1e9
    assert image_gmacs - attention_gmacs == pytest.approx(1.1, rel=0.05)


def test_clip_and_clip_aug_cost_the_same():
    a, b = sample_cost("ViT-B-32", "clip"), sample_cost("ViT-B-32", "clip_aug")
    assert a.forward_gflops == b.forward_gflops and a.extra_gflops == 0
    assert a.train_gflops == pytest.approx(TRAIN_FLOPS_PER_FORWARD * a.forward_gflops)


def test_flip_keeps_share_of_patches_and_class_token():
    spec = get_model("ViT-B-16")
    full = sample_cost(spec, "clip")
    flip = sample_cost(spec, "flip", flip_mask_ratio=0.5)
    assert flip.flip_mask_ratio == 0.5 and full.flip_mask_ratio == 0.0
    assert flip.text_gflops == full.text_gflops
    # 196 patches -> 98 kept + class token; the patch embedding still runs on all 196.
    assert kept_tokens(196, 0.5) == 98 and kept_tokens(196, 0.75) == 49 and kept_tokens(4, 0.9) == 1
    w, m, layers = 768, 3072, 12

    def block(n):
        return 4 * n * w * w + 2 * n * n * w + 2 * n * w * m

    embed = 196 * 3 * 16 * 16 * w
    expected = 2 * (embed + layers * block(99) + w * 512) / 1e9
    assert flip.image_gflops == pytest.approx(expected, rel=1e-12)
    # FLIP paper: 50 % masking costs ~0.52x of the image tower FLOPs.
    assert 0.48 < flip.image_gflops / full.image_gflops < 0.53
    assert sample_cost(spec, "flip", flip_mask_ratio=0.0).image_gflops == full.image_gflops


@pytest.mark.parametrize("bad", [1.0, -0.1, float("nan"), "x", None])
def test_flip_mask_ratio_validated(bad):
    with pytest.raises(ConfigError, match="flip_mask_ratio"):
        sample_cost("ViT-B-16", "flip", flip_mask_ratio=bad)


@pytest.mark.parametrize("name", ["RN50", "convnext_tiny", "tiny-rn-32"])
def test_flip_needs_a_vit(name):
    with pytest.raises(ConfigError, match="ViT"):
        sample_cost(name, "flip")


def test_slip_adds_two_views_and_the_ssl_head():
    spec = get_model("ViT-B-16")
    clip, slip = sample_cost(spec, "clip"), sample_cost(spec, "slip")
    head = 512 * 4096 + 4096 * 4096 + 4096 * 256
    assert slip.extra_gflops == pytest.approx(2 * clip.image_gflops + 2 * 2 * head / 1e9)
    assert slip.forward_gflops == pytest.approx(clip.forward_gflops + slip.extra_gflops)
    # Seed paper finding 5: SLIP costs about 2x CLIP (here ViT-B-16 with a 77-token text tower: 2.7x).
    assert 2.0 < slip.forward_gflops / clip.forward_gflops < 3.0
    small = sample_cost(spec, "slip", slip_mlp_dim=512, slip_emb_dim=128)
    assert small.extra_gflops < slip.extra_gflops
    with pytest.raises(ConfigError, match="slip_mlp_dim"):
        sample_cost(spec, "slip", slip_mlp_dim=0)


def test_unknown_strategy():
    with pytest.raises(ConfigError) as err:
        sample_cost("ViT-B-32", "simclr")
    assert all(s in str(err.value) for s in STRATEGIES)


def test_costs_are_finite_and_ordered_by_size():
    names = ["ViT-Ti-16", "ViT-S-16", "ViT-B-16", "ViT-L-16"]
    costs = [sample_cost(n).image_gflops for n in names]
    assert all(math.isfinite(c) for c in costs) and costs == sorted(costs)
