"""The four training strategies as data: an image transform, an optional batch transform, a loss module.

One training loop (:mod:`runners.train`) serves all four; a strategy changes only

* ``train_transform``: the image transform of the CLIP view (augmentation presets for ``clip_aug``),
* ``extra_views_transform``: SLIP's two SimCLR views per image (``None`` otherwise),
* ``head``: SLIP's SSL projection head (``None`` otherwise),
* ``loss``: :class:`ContrastiveLoss` (open_clip's ``ClipLoss``, features gathered across ranks with
  gradients) plus, for SLIP, :class:`NTXentLoss` on the two views' head outputs,
* ``patch_dropout``: FLIP's mask ratio, handed to open_clip's ``PatchDropout`` when the model is created.

Sources: SLIP (Mu et al. 2022, ``facebookresearch/SLIP``: ``SIMCLRLoss``, the SSL MLP head, the SimCLR
view augmentation); FLIP (Li et al. 2023; open_clip ``PatchDropout``); the augmentation presets follow the
seed paper's three (crop & flip, RandAugment, stacked RandAugment). *Stacked RandAugment* is the SimCLR
augmentation (crop, flip, colour jitter, greyscale) followed by RandAugment, as in Tian et al. 2020 ("What
makes for good views") and ``HobbitLong/SupContrast``'s ``stacked_randaug``.

SLIP's head is ``embed_dim → slip_mlp_dim → slip_mlp_dim → slip_emb_dim`` (Linear+BN+ReLU, Linear+BN+ReLU,
Linear) on each SSL view's image embedding, exactly what ``budget.flops.sample_cost`` counts.

Example::

    strat = build_strategy(cfg, image_size=28, mean=mean, std=std)
    out = module(images, tokens, views)        # TrainModule: CLIP features (+ SSL embeddings)
    losses = strat.loss(out)                   # {"loss": total, "clip_loss": …, ("ssl_loss": …)}
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from budget.errors import ConfigError
from budget.vocabulary import AUG_PRESETS, STRATEGIES

log = logging.getLogger(__name__)

#: RandAugment settings (torchvision defaults: 2 ops, magnitude 9 of 31 bins).
RANDAUG_OPS = 2
RANDAUG_MAGNITUDE = 9
#: Crop scale of the augmentation presets' RandomResizedCrop (SLIP's CLIP view: 0.5–1).
AUG_CROP_SCALE = (0.5, 1.0)
#: SimCLR view crop scale (SLIP/SimCLR: 0.08–1).
SIMCLR_CROP_SCALE = (0.08, 1.0)


def _rgb(img):
    return img if getattr(img, "mode", "RGB") == "RGB" else img.convert("RGB")


def train_transform(aug: str, image_size: int, mean, std) -> Callable:
    """The CLIP view's training transform for an augmentation preset (PIL image of any mode → tensor).

    ``none`` (base CLIP, FLIP and SLIP's CLIP view) is open_clip's own training transform,
    ``open_clip.image_transform(is_train=True)``: bicubic RandomResizedCrop with scale 0.9–1, RGB, normalise,
    what ``open_clip_train`` trains with (no augmentation beyond that light crop). The other presets use
    bicubic RandomResizedCrop (scale 0.5–1) and horizontal flip, then RandAugment (``randaug``) or SimCLR
    jitter/greyscale + RandAugment (``stacked_randaug``).
    """
    from torchvision import transforms as T

    if aug not in AUG_PRESETS:
        raise ConfigError(f"unknown aug preset {aug!r} (valid: {', '.join(AUG_PRESETS)})")
    if aug == "none":
        import open_clip

        return open_clip.image_transform(image_size, is_train=True, mean=mean, std=std)
    steps: list[Any] = [
        T.Lambda(_rgb),
        T.RandomResizedCrop(image_size, scale=AUG_CROP_SCALE, interpolation=T.InterpolationMode.BICUBIC),
        T.RandomHorizontalFlip(),
    ]
    if aug == "stacked_randaug":
        steps += [T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8), T.RandomGrayscale(p=0.2)]
    if aug in ("randaug", "stacked_randaug"):
        steps.append(T.RandAugment(num_ops=RANDAUG_OPS, magnitude=RANDAUG_MAGNITUDE))
    steps += [T.ToTensor(), T.Normalize(mean, std)]
    return T.Compose(steps)


class SimCLRViews:
    """SLIP's two SimCLR views of one image: ``pil -> (view1, view2)`` tensors (picklable for workers)."""

    def __init__(self, image_size: int, mean, std):
        from torchvision import transforms as T

        blur_kernel = max(3, (image_size // 10) | 1)  # SimCLR: ~10 % of the image side, odd
        self.transform = T.Compose([
            T.Lambda(_rgb),
            T.RandomResizedCrop(image_size, scale=SIMCLR_CROP_SCALE, interpolation=T.InterpolationMode.BICUBIC),
            T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
            T.RandomGrayscale(p=0.2),
            T.RandomApply([T.GaussianBlur(blur_kernel, sigma=(0.1, 2.0))], p=0.5),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize(mean, std),
        ])

    def __call__(self, img):
        return self.transform(img), self.transform(img)


class SSLHead(nn.Module):
    """SLIP's SSL projection head: ``in_dim → mlp_dim → mlp_dim → out_dim`` (BN + ReLU after the first two)."""

    def __init__(self, in_dim: int, mlp_dim: int = 4096, out_dim: int = 256):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(in_dim, mlp_dim), nn.BatchNorm1d(mlp_dim), nn.ReLU(inplace=True),
            nn.Linear(mlp_dim, mlp_dim), nn.BatchNorm1d(mlp_dim), nn.ReLU(inplace=True),
            nn.Linear(mlp_dim, out_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class TrainModule(nn.Module):
    """What the loop trains (and DDP wraps): the open_clip model plus the strategy's head.

    ``forward(images, tokens, views=None)`` returns open_clip's output dict (``image_features``,
    ``text_features`` normalised, ``logit_scale`` exp'd) plus ``ssl_a``/``ssl_b`` [B, slip_emb_dim] when
    SimCLR ``views`` [B, 2, 3, H, W] are given.
    """

    def __init__(self, clip: nn.Module, head: nn.Module | None = None):
        super().__init__()
        self.clip = clip
        self.head = head

    def forward(self, images: torch.Tensor, tokens: torch.Tensor, views: torch.Tensor | None = None) -> dict:
        out = dict(self.clip(images, tokens))
        if self.head is not None and views is not None:
            b = views.shape[0]
            emb = self.clip.encode_image(views.flatten(0, 1))  # [2B, embed_dim], both views in one pass
            z = self.head(emb).view(b, 2, -1)
            out["ssl_a"], out["ssl_b"] = z[:, 0], z[:, 1]
        return out


def _gather_with_grad(x: torch.Tensor, world_size: int) -> torch.Tensor:
    if world_size <= 1:
        return x
    import torch.distributed.nn

    return torch.cat(torch.distributed.nn.all_gather(x), dim=0)


class ContrastiveLoss(nn.Module):
    """The CLIP loss: open_clip's ``ClipLoss`` with features gathered across ranks (with gradients).

    ``local_loss`` + ``gather_with_grad`` (open_clip's recommended multi-GPU setting): each rank scores its
    own rows against every rank's features; with DDP's gradient averaging this is the full-batch loss.
    Works with unequal per-rank batch sizes (a short last step) by padding the gather.
    """

    def __init__(self, rank: int = 0, world_size: int = 1):
        super().__init__()
        from open_clip.loss import ClipLoss

        self.rank, self.world_size = rank, world_size
        self.clip_loss = ClipLoss(local_loss=True, gather_with_grad=True, rank=rank, world_size=world_size)

    def forward(self, out: dict) -> dict[str, torch.Tensor]:
        img, txt, scale = out["image_features"], out["text_features"], out["logit_scale"]
        if self.world_size > 1 and len(set(_sizes(img.shape[0], self.world_size, img.device))) > 1:
            loss = _uneven_clip_loss(img, txt, scale, self.rank, self.world_size)  # a short last step
        else:
            loss = self.clip_loss(img, txt, scale)
        return {"loss": loss, "clip_loss": loss.detach()}


def _sizes(n: int, world_size: int, device) -> list[int]:
    import torch.distributed as dist

    t = torch.tensor([n], device=device, dtype=torch.long)
    out = [torch.zeros_like(t) for _ in range(world_size)]
    dist.all_gather(out, t)
    return [int(x.item()) for x in out]


def _gather_uneven(x: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """All-gather (with gradients) rows of possibly different counts per rank."""
    world = len(sizes)
    m = max(sizes)
    pad = torch.zeros((m - x.shape[0], *x.shape[1:]), dtype=x.dtype, device=x.device)
    parts = _gather_with_grad(torch.cat([x, pad]), world).split(m)
    return torch.cat([p[:s] for p, s in zip(parts, sizes)])


def _uneven_clip_loss(img, txt, scale, rank: int, world_size: int) -> torch.Tensor:
    """open_clip's local-loss ClipLoss over all ranks, for per-rank batches that may differ in size.

    Each rank's loss is weighted by its share of the global batch × world size, so that DDP's gradient
    average equals the gradient of the mean loss over the whole global batch.
    """
    sizes = _sizes(img.shape[0], world_size, img.device)
    all_img, all_txt = _gather_uneven(img, sizes), _gather_uneven(txt, sizes)
    total = sum(sizes)
    n = img.shape[0]
    if n == 0:
        return (all_img.sum() + all_txt.sum()) * 0.0 + scale * 0.0
    offset = sum(sizes[:rank])
    labels = torch.arange(offset, offset + n, device=img.device)
    li = scale * img @ all_txt.T
    lt = scale * txt @ all_img.T
    loss = (F.cross_entropy(li, labels, reduction="sum") + F.cross_entropy(lt, labels, reduction="sum")) / 2
    return loss * world_size / total


class NTXentLoss(nn.Module):
    """SimCLR's NT-Xent loss on two views (SLIP ``SIMCLRLoss``), views gathered across ranks with gradients."""

    def __init__(self, temperature: float = 0.1, rank: int = 0, world_size: int = 1):
        super().__init__()
        self.tau, self.rank, self.world_size = float(temperature), rank, world_size

    def forward(self, q_a: torch.Tensor, q_b: torch.Tensor) -> torch.Tensor:
        q_a, q_b = F.normalize(q_a.float(), dim=-1), F.normalize(q_b.float(), dim=-1)
        n = q_a.shape[0]
        if self.world_size > 1:
            sizes = _sizes(n, self.world_size, q_a.device)
            k_a, k_b = _gather_uneven(q_a, sizes), _gather_uneven(q_b, sizes)
            offset, total = sum(sizes[: self.rank]), sum(sizes)
        else:
            k_a, k_b, offset, total = q_a, q_b, 0, n
        if n == 0:
            return (k_a.sum() + k_b.sum()) * 0.0
        labels = torch.arange(offset, offset + n, device=q_a.device)
        mask = F.one_hot(labels, total).to(q_a.dtype) * 1e9
        aa = q_a @ k_a.T / self.tau - mask
        bb = q_b @ k_b.T / self.tau - mask
        ab = q_a @ k_b.T / self.tau
        ba = q_b @ k_a.T / self.tau
        loss = (F.cross_entropy(torch.cat([ab, aa], 1), labels, reduction="sum")
                + F.cross_entropy(torch.cat([ba, bb], 1), labels, reduction="sum")) / 2
        return loss * self.world_size / total


class SLIPLoss(nn.Module):
    """CLIP loss + ``ssl_weight`` × NT-Xent on the SSL head outputs (SLIP's defaults: weight 1, τ 0.1)."""

    def __init__(self, ssl_weight: float = 1.0, temperature: float = 0.1, rank: int = 0, world_size: int = 1):
        super().__init__()
        self.clip = ContrastiveLoss(rank, world_size)
        self.ssl = NTXentLoss(temperature, rank, world_size)
        self.ssl_weight = float(ssl_weight)

    def forward(self, out: dict) -> dict[str, torch.Tensor]:
        clip = self.clip(out)["loss"]
        ssl = self.ssl(out["ssl_a"], out["ssl_b"])
        return {"loss": clip + self.ssl_weight * ssl, "clip_loss": clip.detach(), "ssl_loss": ssl.detach()}


@dataclass
class Strategy:
    """One strategy's pieces (see the module docstring)."""

    name: str
    train_transform: Callable
    extra_views_transform: Callable | None
    loss: nn.Module
    head: nn.Module | None
    patch_dropout: float


def build_strategy(cfg, *, embed_dim: int, image_size: int, mean, std, rank: int = 0, world_size: int = 1) -> Strategy:
    """The :class:`Strategy` of a :class:`runners.config.RunConfig` for a model of ``embed_dim``/``image_size``."""
    name = cfg.strategy
    if name == "clip" or name == "flip":
        return Strategy(name, train_transform("none", image_size, mean, std), None,
                        ContrastiveLoss(rank, world_size), None,
                        float(cfg.flip_mask_ratio or 0.0) if name == "flip" else 0.0)
    if name == "clip_aug":
        return Strategy(name, train_transform(cfg.aug, image_size, mean, std), None,
                        ContrastiveLoss(rank, world_size), None, 0.0)
    if name == "slip":
        head = SSLHead(embed_dim, cfg.slip_mlp_dim, cfg.slip_emb_dim)
        return Strategy(name, train_transform("none", image_size, mean, std), SimCLRViews(image_size, mean, std),
                        SLIPLoss(cfg.slip_ssl_weight, cfg.slip_ssl_temperature, rank, world_size), head, 0.0)
    raise ConfigError(f"unknown strategy {name!r} (valid: {', '.join(STRATEGIES)})")


__all__ = [
    "AUG_PRESETS", "ContrastiveLoss", "NTXentLoss", "SLIPLoss", "SSLHead", "SimCLRViews", "Strategy",
    "TrainModule", "build_strategy", "train_transform",
]
