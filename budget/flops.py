"""Analytic per-sample FLOPs and parameter counts of CLIP models, and their strategy-adjusted cost.

Convention (the seed paper's and open_clip's ``docs/model_profile.csv``): **FLOPs = 2 × multiply-accumulates
(MACs)** of the matrix multiplications and convolutions of one forward pass of one sample. Norms,
activations, softmax, residual adds, pooling averages, positional-embedding adds and the token-embedding
gather are not counted (together well under 1 % for every catalog model). Cherti et al. (CVPR 2023) and
DataComp (Gadre et al. 2023) report MACs, half these numbers.

Per architecture (``L`` tokens, width ``d``, MLP width ``m = int(d · mlp_ratio)``, MACs):

* Transformer layer (open_clip ``ResidualAttentionBlock``): QKV ``3·L·d²`` + scores ``L²·d`` + attention × V
  ``L²·d`` + output projection ``L·d²`` + MLP ``2·L·d·m``. Attention is counted dense: the text tower's
  causal mask does not reduce it (as in open_clip's profile and fvcore).
* ViT image tower (open_clip ``VisionTransformer``): patch-embedding conv ``P·3·p²·d`` on all ``P`` patches,
  ``L = P + 1`` (class token), the layers, then the projection ``d·E`` of the pooled token (``tok``/``avg``;
  ``none`` projects every token); with ``attentional_pool`` the ``AttentionalPooler`` (``n_q`` queries,
  ``E``-wide multi-head attention over the ``L`` tokens) runs before pooling and the projection is ``E·E``.
* ModifiedResNet (open_clip ``modified_resnet.py``, from OpenAI CLIP): 3-conv stem (3×3, first with
  stride 2) + 2×2 avg-pool, bottlenecks (1×1, 3×3, avg-pool for stride 2, 1×1 expand ×4; a 2×2 avg-pool + 1×1
  conv shortcut where the shape changes), then ``AttentionPool2d``: multi-head attention over the
  ``H·W + 1`` tokens of width ``32·width`` (q, k, v for every token, as ``F.multi_head_attention_forward``
  computes them) and the output projection ``c_proj`` (to ``E``) on every token.
* timm ConvNeXt (Liu et al. 2022; timm ``convnext.py``; open_clip ``TimmModel``): 4×4/4 stem, blocks of
  depthwise 7×7 conv + pointwise MLP ``C → 4C → C``, 2×2/2 downsampling convs, global average pool, then
  open_clip's head: ``linear`` (``C·E``), ``mlp`` (``C·2E + 2E·E``) or ``none``.
* Text tower (open_clip ``TextTransformer``): token embedding is a gather (0 FLOPs); the layers at the
  context length (plus one for ``embed_cls``); the projection ``d·E`` of the pooled (EOT) token.

Validation: within 0.5 % of open_clip's ``docs/model_profile.csv`` (image 224, text 77) for every row of
``../shared/reference/published-numbers.md`` §2; see ``tests/test_budget_flops.py``.

Strategy adjustment (:func:`sample_cost`):

* ``clip``, ``clip_aug``: one forward of both towers (augmentation runs in the data loader).
* ``flip`` (Li et al. 2023, arXiv 2212.00794; open_clip ``PatchDropout``): the patch-embedding conv runs on
  *all* patches (``PatchDropout`` drops tokens after the embedding), then the transformer runs on
  ``max(1, int(P · (1 − mask))) + 1`` tokens (kept patches plus the class token, exactly as
  ``PatchDropout`` keeps them). ViT only: other image towers raise :class:`ConfigError`.
* ``slip`` (Mu et al. 2022, facebookresearch/SLIP): the CLIP view plus two SimCLR views through the image
  tower, plus SLIP's SSL MLP head on each SSL view's image embedding: ``E → slip_mlp_dim → slip_mlp_dim →
  slip_emb_dim`` (SLIP defaults 4096, 4096, 256). Those extras are ``extra_gflops``.

Training compute ≈ 3 × forward (backward ≈ 2 × forward: gradients with respect to activations and to
weights, each a matmul the size of the forward one; Kaplan et al. 2020, §2.1): ``TRAIN_FLOPS_PER_FORWARD``.

Example:
    >>> from budget.flops import sample_cost, tower_gflops
    >>> round(sum(tower_gflops("ViT-B-32")), 2)   # open_clip's profile: 14.78
    14.78
    >>> c = sample_cost("ViT-B-16", "flip", flip_mask_ratio=0.5)
    >>> c.strategy, round(c.image_gflops, 1), c.train_gflops == 3 * c.forward_gflops
    ('flip', 17.4, True)
"""

from __future__ import annotations

from dataclasses import dataclass

from budget.catalog import ModelSpec, TextSpec, VisionSpec, get_model
from budget.coerce import to_float
from budget.errors import ConfigError
from budget.vocabulary import DEFAULT_FLIP_MASK_RATIO, SLIP_EMB_DIM, SLIP_MLP_DIM, STRATEGIES

__all__ = [
    "DEFAULT_FLIP_MASK_RATIO", "FLOPS_PER_MAC", "SLIP_EMB_DIM", "SLIP_MLP_DIM", "STRATEGIES",
    "TRAIN_FLOPS_PER_FORWARD", "SampleCost", "image_tower_gflops", "kept_tokens", "param_counts", "sample_cost",
    "text_tower_gflops", "tower_gflops",
]

#: Training FLOPs per forward FLOP (forward 1 + backward 2).
TRAIN_FLOPS_PER_FORWARD = 3.0
#: FLOPs per multiply-accumulate.
FLOPS_PER_MAC = 2.0

# timm ConvNeXt stage depths and widths (timm ``convnext.py``: ``convnext_tiny`` … ``convnext_xxlarge``).
CONVNEXT_ARCHS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "convnext_atto": ((2, 2, 6, 2), (40, 80, 160, 320)),
    "convnext_femto": ((2, 2, 6, 2), (48, 96, 192, 384)),
    "convnext_pico": ((2, 2, 6, 2), (64, 128, 256, 512)),
    "convnext_nano": ((2, 2, 8, 2), (80, 160, 320, 640)),
    "convnext_tiny": ((3, 3, 9, 3), (96, 192, 384, 768)),
    "convnext_small": ((3, 3, 27, 3), (96, 192, 384, 768)),
    "convnext_base": ((3, 3, 27, 3), (128, 256, 512, 1024)),
    "convnext_large": ((3, 3, 27, 3), (192, 384, 768, 1536)),
    "convnext_xlarge": ((3, 3, 27, 3), (256, 512, 1024, 2048)),
    "convnext_xxlarge": ((3, 4, 30, 3), (384, 768, 1536, 3072)),
}


@dataclass(frozen=True)
class SampleCost:
    """Per-sample cost of one training step's forward pass, in GFLOPs (2 × MACs).

    ``image_gflops``: one pass of the image tower as the strategy runs it (FLIP: on the kept patches);
    ``text_gflops``: one pass of the text tower; ``extra_gflops``: what the strategy adds (SLIP: two more
    image-tower passes and the SSL head); ``forward_gflops`` = the sum, the paper convention;
    ``train_gflops`` = 3 × ``forward_gflops``; ``params_m``: parameters of both towers, millions.
    """

    model: str
    strategy: str
    image_size: int
    context_length: int
    flip_mask_ratio: float
    image_gflops: float
    text_gflops: float
    extra_gflops: float
    forward_gflops: float
    train_gflops: float
    params_m: float

    @property
    def forward_macs(self) -> float:
        """Per-sample forward multiply-accumulates (the Cherti et al./DataComp convention), in G."""
        return self.forward_gflops / FLOPS_PER_MAC


def sample_cost(
    spec_or_name: ModelSpec | str,
    strategy: str = "clip",
    *,
    image_size: int | None = None,
    context_length: int | None = None,
    flip_mask_ratio: float = DEFAULT_FLIP_MASK_RATIO,
    slip_mlp_dim: int = SLIP_MLP_DIM,
    slip_emb_dim: int = SLIP_EMB_DIM,
) -> SampleCost:
    """Strategy-adjusted per-sample forward and training GFLOPs of one model (see the module docstring).

    ``image_size`` (pixels) and ``context_length`` (tokens) default to the model config's.
    ``flip_mask_ratio`` (fraction of patches dropped, in [0, 1)) is used by ``flip`` only; the returned
    ``flip_mask_ratio`` is 0 for the other strategies.

    Example:
        >>> c = sample_cost("ViT-B-32", "slip")
        >>> round(c.image_gflops, 2), round(c.extra_gflops, 2)  # 2 more views + SSL head on each
        (8.82, 17.71)
    """
    spec = _spec(spec_or_name)
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown strategy {strategy!r}; valid: {', '.join(STRATEGIES)}")
    size = _image_size(spec, image_size)
    ctx = _context_length(spec, context_length)
    text = text_tower_gflops(spec, ctx)
    extra = 0.0
    mask = 0.0
    if strategy == "flip":
        mask = _mask_ratio(flip_mask_ratio)
        if spec.family != "vit":
            raise ConfigError(f"strategy 'flip' needs a ViT image tower (patch dropout is ViT-only); "
                              f"{spec.name!r} is {spec.family!r}; choose a ViT-* model or another strategy")
        image = image_tower_gflops(spec, size, mask_ratio=mask)
    else:
        image = image_tower_gflops(spec, size)
        if strategy == "slip":
            for value, label in ((slip_mlp_dim, "slip_mlp_dim"), (slip_emb_dim, "slip_emb_dim")):
                if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                    raise ConfigError(f"{label} must be a positive integer, got {value!r}")
            head_macs = spec.embed_dim * slip_mlp_dim + slip_mlp_dim * slip_mlp_dim + slip_mlp_dim * slip_emb_dim
            extra = 2 * image + 2 * head_macs * FLOPS_PER_MAC / 1e9
    forward = image + text + extra
    img_p, txt_p = param_counts(spec)
    return SampleCost(
        model=spec.name, strategy=strategy, image_size=size, context_length=ctx, flip_mask_ratio=mask,
        image_gflops=image, text_gflops=text, extra_gflops=extra, forward_gflops=forward,
        train_gflops=TRAIN_FLOPS_PER_FORWARD * forward, params_m=(img_p + txt_p) / 1e6,
    )


def tower_gflops(
    spec: ModelSpec | str, image_size: int | None = None, context_length: int | None = None
) -> tuple[float, float]:
    """Per-sample forward GFLOPs ``(image, text)`` of a plain forward pass at the given sizes."""
    spec = _spec(spec)
    return (image_tower_gflops(spec, _image_size(spec, image_size)),
            text_tower_gflops(spec, _context_length(spec, context_length)))


def image_tower_gflops(spec: ModelSpec | str, image_size: int | None = None, *, mask_ratio: float = 0.0) -> float:
    """Per-sample forward GFLOPs of the image tower; ``mask_ratio`` > 0 applies FLIP patch dropout (ViT)."""
    spec = _spec(spec)
    size = _image_size(spec, image_size)
    v = spec.vision
    if v.family == "vit":
        macs = _vit_macs(v, spec.embed_dim, size, mask_ratio)
    elif mask_ratio:
        raise ConfigError(f"patch dropout needs a ViT image tower; {spec.name!r} is {v.family!r}")
    elif v.family == "modified_resnet":
        macs = _resnet_macs(v, spec.embed_dim, size)
    else:
        macs = _convnext_macs(v, spec.embed_dim, size)
    return macs * FLOPS_PER_MAC / 1e9


def text_tower_gflops(spec: ModelSpec | str, context_length: int | None = None) -> float:
    """Per-sample forward GFLOPs of the text tower at ``context_length`` tokens."""
    spec = _spec(spec)
    t = spec.text
    n = _context_length(spec, context_length) + (1 if t.embed_cls else 0)
    macs = t.layers * _block_macs(n, t.width, int(t.width * t.mlp_ratio))
    if t.proj_type != "none" and spec.embed_dim:
        n_out = n if t.pool_type == "none" else 1
        macs += n_out * t.width * spec.embed_dim
    return macs * FLOPS_PER_MAC / 1e9


def param_counts(spec: ModelSpec | str) -> tuple[int, int]:
    """Parameters ``(image tower, text tower)`` as counts (open_clip's ``model.visual`` and the rest).

    Counted at the config's image size and context length (the positional embeddings depend on them).
    Buffers (BatchNorm running statistics, the causal mask) are not parameters; ``logit_scale`` (1
    parameter) is left out.
    """
    spec = _spec(spec)
    v = spec.vision
    if v.family == "vit":
        image = _vit_params(v, spec.embed_dim)
    elif v.family == "modified_resnet":
        image = _resnet_params(v, spec.embed_dim)
    else:
        image = _convnext_params(v, spec.embed_dim)
    return image, _text_params(spec.text, spec.embed_dim)


def kept_tokens(num_patches: int, mask_ratio: float) -> int:
    """Patch tokens open_clip's ``PatchDropout`` keeps: ``max(1, int(num_patches · (1 − mask_ratio)))``."""
    if mask_ratio <= 0:
        return num_patches
    return max(1, int(num_patches * (1.0 - mask_ratio)))


# --- internals -------------------------------------------------------------------------------------


def _spec(spec_or_name: ModelSpec | str) -> ModelSpec:
    return spec_or_name if isinstance(spec_or_name, ModelSpec) else get_model(spec_or_name)


def _image_size(spec: ModelSpec, image_size: int | None) -> int:
    if image_size is None:
        return spec.vision.image_size
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size <= 0:
        raise ConfigError(f"image_size must be a positive integer (pixels), got {image_size!r}")
    v = spec.vision
    if v.family == "vit" and image_size % v.patch_size:
        raise ConfigError(f"image_size {image_size} is not a multiple of {spec.name}'s patch size {v.patch_size}; "
                          f"try {max(v.patch_size, image_size // v.patch_size * v.patch_size)}")
    if v.family == "modified_resnet" and image_size < 32:
        raise ConfigError(f"image_size {image_size} is too small for ModifiedResNet {spec.name!r} (downsamples 32×); "
                          "use at least 32")
    if v.family == "convnext" and image_size < 32:
        raise ConfigError(f"image_size {image_size} is too small for ConvNeXt {spec.name!r} (downsamples 32×); "
                          "use at least 32")
    return image_size


def _context_length(spec: ModelSpec, context_length: int | None) -> int:
    if context_length is None:
        return spec.text.context_length
    if isinstance(context_length, bool) or not isinstance(context_length, int) or context_length <= 0:
        raise ConfigError(f"context_length must be a positive integer (tokens), got {context_length!r}")
    return context_length


def _mask_ratio(value: float) -> float:
    try:
        ratio = to_float(value, finite=False)
    except ValueError:
        raise ConfigError(f"flip_mask_ratio must be a number in [0, 1), got {value!r}") from None
    if not 0.0 <= ratio < 1.0:  # also rejects NaN
        raise ConfigError(f"flip_mask_ratio must be in [0, 1) (fraction of patches dropped), got {value!r}")
    return ratio


def _block_macs(tokens: int, width: int, mlp_width: int) -> int:
    """MACs of one pre-norm transformer block on ``tokens`` tokens (dense attention)."""
    return 4 * tokens * width * width + 2 * tokens * tokens * width + 2 * tokens * width * mlp_width


def _vit_macs(v: VisionSpec, embed_dim: int, image_size: int, mask_ratio: float) -> int:
    grid = image_size // v.patch_size
    patches = grid * grid
    macs = patches * 3 * v.patch_size * v.patch_size * v.width  # patch embedding, all patches
    tokens = kept_tokens(patches, mask_ratio) + 1  # + class token
    macs += v.layers * _block_macs(tokens, v.width, int(v.width * v.mlp_ratio))
    pool_dim = v.width
    out_tokens = tokens
    if v.attentional_pool:
        q, e, w = v.attn_pooler_queries, embed_dim, v.width
        macs += q * e * e + 2 * tokens * w * e + 2 * q * tokens * e + q * e * e
        pool_dim, out_tokens = embed_dim, q
    n_proj = out_tokens if v.pool_type == "none" else 1
    macs += n_proj * pool_dim * embed_dim
    return macs


def _resnet_macs(v: VisionSpec, embed_dim: int, image_size: int) -> int:
    w = v.width
    h = (image_size - 1) // 2 + 1  # 3×3 conv, stride 2, padding 1
    macs = h * h * 9 * (3 * (w // 2) + (w // 2) * (w // 2) + (w // 2) * w)
    h //= 2  # stem avg-pool
    inplanes = w
    for stage, blocks in enumerate(v.layers):
        planes = w * 2 ** stage
        for b in range(blocks):
            stride = 2 if (stage > 0 and b == 0) else 1
            macs += h * h * inplanes * planes + h * h * 9 * planes * planes
            h_out = h // stride
            macs += h_out * h_out * planes * 4 * planes
            if stride > 1 or inplanes != 4 * planes:
                macs += h_out * h_out * inplanes * 4 * planes
            inplanes, h = 4 * planes, h_out
    if h < 1:
        raise ConfigError(f"image_size {image_size} is too small for this ModifiedResNet (feature map vanishes)")
    c, tokens = w * 32, h * h + 1
    macs += 3 * tokens * c * c + 2 * tokens * tokens * c + tokens * c * embed_dim
    return macs


def _convnext_arch(v: VisionSpec) -> tuple[tuple[int, ...], tuple[int, ...]]:
    name = v.timm_model_name or ""
    base = name.split(".")[0]
    if base not in CONVNEXT_ARCHS:
        raise ConfigError(f"timm ConvNeXt {name!r} is not in the accounting table; valid: {', '.join(CONVNEXT_ARCHS)}")
    return CONVNEXT_ARCHS[base]


def _convnext_macs(v: VisionSpec, embed_dim: int, image_size: int) -> int:
    depths, dims = _convnext_arch(v)
    h = image_size // 4
    macs = h * h * 3 * 16 * dims[0]  # 4×4 stride-4 stem
    for i, (depth, c) in enumerate(zip(depths, dims)):
        if i > 0:
            h //= 2
            macs += h * h * dims[i - 1] * 4 * c  # 2×2 stride-2 downsampling conv
        macs += depth * (h * h * 49 * c + 8 * h * h * c * c)  # dw 7×7 + MLP C→4C→C
    if h < 1:
        raise ConfigError(f"image_size {image_size} is too small for ConvNeXt (feature map vanishes)")
    macs += _convnext_head_macs(v, dims[-1], embed_dim)
    return macs


def _convnext_head_macs(v: VisionSpec, c: int, e: int) -> int:
    if v.timm_proj == "linear":
        return c * e
    if v.timm_proj == "mlp":
        return c * 2 * e + 2 * e * e
    return 0  # proj "none": the trunk's pooled features are the embedding


def _block_params(width: int, mlp_width: int, layer_scale: bool, custom: tuple[str, ...], heads: int) -> int:
    p = 4 * width * width + 4 * width  # in_proj (3d² + 3d) + out_proj (d² + d)
    p += 2 * width * mlp_width + mlp_width + width  # c_fc, c_proj with biases
    p += 4 * width  # ln_1, ln_2
    if layer_scale:
        p += 2 * width
    head_dim = width // max(heads, 1)
    if "scale_attn_inner" in custom:
        p += 2 * width
    if "scale_attn" in custom:
        p += 2 * width
    if "scale_fc" in custom:
        p += 2 * mlp_width
    if "scale_heads" in custom:
        p += heads
    if "scaled_cosine_attn" in custom:
        p += heads
    if "qk_norm" in custom:
        p += 4 * head_dim
    return p


def _vit_params(v: VisionSpec, embed_dim: int) -> int:
    w = v.width
    grid = v.image_size // v.patch_size
    p = 3 * v.patch_size * v.patch_size * w + w + (grid * grid + 1) * w  # conv1, class, positional
    if not v.no_ln_pre:
        p += 2 * w
    p += v.layers * _block_params(w, int(w * v.mlp_ratio), v.layer_scale, v.custom_block, v.heads)
    pool_dim = w
    if v.attentional_pool:
        e = embed_dim
        p += v.attn_pooler_queries * e + (e * e + 2 * w * e + 3 * e) + (e * e + e) + 2 * e + 2 * w
        pool_dim = e
    return p + 2 * pool_dim + pool_dim * embed_dim  # ln_post, proj


def _resnet_params(v: VisionSpec, embed_dim: int) -> int:
    w = v.width
    p = 9 * (3 * (w // 2) + (w // 2) * (w // 2) + (w // 2) * w) + 2 * (w // 2 + w // 2 + w)
    inplanes = w
    for stage, blocks in enumerate(v.layers):
        planes = w * 2 ** stage
        for b in range(blocks):
            stride = 2 if (stage > 0 and b == 0) else 1
            p += inplanes * planes + 9 * planes * planes + planes * 4 * planes + 2 * (planes + planes + 4 * planes)
            if stride > 1 or inplanes != 4 * planes:
                p += inplanes * 4 * planes + 2 * 4 * planes
            inplanes = 4 * planes
    c = w * 32
    spatial = v.image_size // 32
    p += (spatial * spatial + 1) * c + 3 * (c * c + c) + c * embed_dim + embed_dim
    return p


def _convnext_params(v: VisionSpec, embed_dim: int) -> int:
    depths, dims = _convnext_arch(v)
    p = 3 * 16 * dims[0] + dims[0] + 2 * dims[0]  # stem conv + bias + LayerNorm2d
    for i, (depth, c) in enumerate(zip(depths, dims)):
        if i > 0:
            p += 2 * dims[i - 1] + dims[i - 1] * 4 * c + c  # LayerNorm2d + 2×2 conv + bias
        # dw conv + bias, LayerNorm, fc1 + bias, fc2 + bias, layer-scale gamma
        p += depth * (49 * c + c + 2 * c + (4 * c * c + 4 * c) + (4 * c * c + c) + c)
    c, e = dims[-1], embed_dim
    p += 2 * c  # head norm
    if v.timm_proj == "linear":
        p += c * e + (e if v.timm_proj_bias else 0)
    elif v.timm_proj == "mlp":
        p += c * 2 * e + 2 * e + 2 * e * e + (e if v.timm_proj_bias else 0)
    return p


def _text_params(t: TextSpec, embed_dim: int) -> int:
    w = t.width
    n_pos = t.context_length + (1 if t.embed_cls else 0)
    p = t.vocab_size * w + n_pos * w + (w if t.embed_cls else 0)
    p += t.layers * _block_params(w, int(w * t.mlp_ratio), t.layer_scale, t.custom_block, t.heads)
    p += 2 * w  # ln_final
    if t.proj_type != "none" and embed_dim:
        p += w * embed_dim + (embed_dim if t.proj_bias else 0)
    return p
