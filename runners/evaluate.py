"""Evaluation of a trained CLIP: zero-shot classification, image↔text retrieval, linear probe.

* **Zero-shot** (CLIP, Radford et al. 2021): a class's text embedding is the normalised mean of its
  normalised prompt embeddings (``template.format(classname)`` for every template); an image is assigned
  the class of highest cosine similarity. Top-1 and top-5 accuracy (top-k with k = min(5, classes)).
* **Retrieval**: one caption per image (``captions.jsonl`` of the evaluation set). Recall@1/@5 image→text
  (the image's own caption ranks in the top k) and text→image. Ties (identical templated captions embed
  identically) are broken by index order, as a stable sort would, so duplicates do not inflate recall.
* **Linear probe**: multinomial logistic regression (scikit-learn, L-BFGS) on frozen, normalised image
  features. The evaluation set is split per class into a fit half (even positions) and a test half (odd
  positions); the inverse regularisation ``C`` is chosen on a held-out quarter of the fit half, then the
  probe is refit on the whole fit half and scored once on the test half.

All metrics are fractions in [0, 1].

Example::

    metrics = evaluate(model, tokenizer, preprocess_val, load_eval_set("demo/eval"), device="cpu")
    metrics["zeroshot_top1"], metrics["retrieval_i2t_r1"], metrics["linear_probe_top1"]
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

#: Inverse regularisation strengths tried by the linear probe.
PROBE_CS = (0.1, 1.0, 10.0)


def _to_pil(arr: np.ndarray):
    from PIL import Image

    img = Image.fromarray(arr)
    return img.convert("RGB") if img.mode != "RGB" else img


@torch.no_grad()
def image_features(model, preprocess, images: np.ndarray, *, device="cpu", batch_size: int = 256) -> torch.Tensor:
    """Normalised image embeddings [N, E] (float32, CPU) of uint8 images [N, H, W(, 3)]."""
    out = []
    for i in range(0, len(images), batch_size):
        x = torch.stack([preprocess(_to_pil(a)) for a in images[i:i + batch_size]]).to(device)
        with _autocast(device):
            out.append(model.encode_image(x, normalize=True).float().cpu())
    return torch.cat(out) if out else torch.zeros(0, 0)


@torch.no_grad()
def text_features(model, tokenizer, texts: list[str], *, device="cpu", batch_size: int = 1024) -> torch.Tensor:
    """Normalised text embeddings [N, E] (float32, CPU)."""
    out = []
    for i in range(0, len(texts), batch_size):
        with _autocast(device):
            out.append(model.encode_text(tokenizer(texts[i:i + batch_size]).to(device), normalize=True).float().cpu())
    return torch.cat(out)


def _autocast(device):
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    import contextlib

    return contextlib.nullcontext()


def zeroshot_classifier(model, tokenizer, classnames: list[str], templates: list[str], *, device="cpu") -> torch.Tensor:
    """[E, C] class embeddings: normalised mean over templates of normalised prompt embeddings."""
    prompts = [t.format(c) for c in classnames for t in templates]
    feats = text_features(model, tokenizer, prompts, device=device).view(len(classnames), len(templates), -1)
    return F.normalize(F.normalize(feats, dim=-1).mean(1), dim=-1).T


def topk_accuracy(logits: torch.Tensor, labels: torch.Tensor, ks=(1, 5)) -> dict[int, float]:
    """Fraction of rows whose label is among the k highest logits, per k (k capped at the class count).

    >>> topk_accuracy(torch.tensor([[0.1, 0.9], [0.8, 0.2]]), torch.tensor([1, 1]), ks=(1, 5))
    {1: 0.5, 5: 1.0}
    """
    out = {}
    for k in ks:
        kk = min(k, logits.shape[1])
        top = logits.topk(kk, dim=1).indices
        out[k] = float((top == labels[:, None]).any(1).float().mean())
    return out


def recall_at_k(sim: torch.Tensor, ks=(1, 5), chunk: int = 1024) -> dict[int, float]:
    """Recall@k of a square similarity matrix whose diagonal holds the matching pairs (rows = queries).

    Rank of the match = candidates scoring higher + equal-scoring candidates of lower index.

    >>> recall_at_k(torch.tensor([[1.0, 0.0], [1.0, 1.0]]), ks=(1,))
    {1: 0.5}
    """
    n = sim.shape[0]
    ranks = torch.empty(n, dtype=torch.long)
    idx = torch.arange(n)
    for i in range(0, n, chunk):
        s = sim[i:i + chunk]
        rows = idx[i:i + chunk]
        correct = s[torch.arange(len(rows)), rows][:, None]
        higher = (s > correct).sum(1)
        tied_before = ((s == correct) & (idx[None, :] < rows[:, None])).sum(1)
        ranks[i:i + chunk] = higher + tied_before
    return {k: float((ranks < k).float().mean()) for k in ks}


def retrieval(img: torch.Tensor, txt: torch.Tensor) -> dict[str, float]:
    """R@1/R@5 in both directions for aligned image and caption embeddings."""
    i2t = recall_at_k(img @ txt.T)
    t2i = recall_at_k(txt @ img.T)
    return {"retrieval_i2t_r1": i2t[1], "retrieval_i2t_r5": i2t[5],
            "retrieval_t2i_r1": t2i[1], "retrieval_t2i_r5": t2i[5]}


def linear_probe(features: np.ndarray, labels: np.ndarray, *, seed: int = 0) -> float:
    """Top-1 accuracy of a logistic-regression probe (see the module docstring for the protocol)."""
    from sklearn.linear_model import LogisticRegression

    labels = np.asarray(labels)
    pos = np.zeros(len(labels), dtype=np.int64)
    for c in np.unique(labels):  # position of each sample within its class
        members = np.flatnonzero(labels == c)
        pos[members] = np.arange(len(members))
    fit, test = pos % 2 == 0, pos % 2 == 1
    if len(np.unique(labels[fit])) < 2 or test.sum() == 0:
        return float("nan")
    xf, yf = features[fit], labels[fit]
    val = (pos[fit] // 2) % 4 == 3
    best_c, best = PROBE_CS[0], -1.0
    if val.any() and (~val).any() and len(np.unique(yf[~val])) > 1:
        for c in PROBE_CS:
            clf = LogisticRegression(C=c, max_iter=1000, random_state=seed).fit(xf[~val], yf[~val])
            acc = float((clf.predict(xf[val]) == yf[val]).mean())
            if acc > best:
                best_c, best = c, acc
    clf = LogisticRegression(C=best_c, max_iter=1000, random_state=seed).fit(xf, yf)
    return float((clf.predict(features[test]) == labels[test]).mean())


def evaluate(model, tokenizer, preprocess, evalset, *, device="cpu", batch_size: int = 256,
             do_retrieval: bool = True, do_linear_probe: bool = True, seed: int = 0) -> dict[str, Any]:
    """Every metric of the result row for ``model`` on an :class:`runners.data.evalset.EvalSet`.

    Returns ``zeroshot_top1``, ``zeroshot_top5``, ``retrieval_{i2t,t2i}_r{1,5}`` (None without captions or
    with ``do_retrieval=False``), ``linear_probe_top1`` (None when off) and ``eval_dataset``.
    """
    t0 = time.monotonic()
    was_training = model.training
    model.eval()
    try:
        img = image_features(model, preprocess, evalset.images, device=device, batch_size=batch_size)
        labels = torch.as_tensor(np.asarray(evalset.labels), dtype=torch.long)
        classifier = zeroshot_classifier(model, tokenizer, list(evalset.classnames), list(evalset.templates),
                                         device=device)
        acc = topk_accuracy(img @ classifier, labels)
        out: dict[str, Any] = {"zeroshot_top1": acc[1], "zeroshot_top5": acc[5], "eval_dataset": evalset.name}
        for key in ("retrieval_i2t_r1", "retrieval_i2t_r5", "retrieval_t2i_r1", "retrieval_t2i_r5"):
            out[key] = None
        if do_retrieval and evalset.captions:
            txt = text_features(model, tokenizer, list(evalset.captions), device=device)
            out.update(retrieval(img, txt))
        out["linear_probe_top1"] = (linear_probe(img.numpy(), labels.numpy(), seed=seed)
                                    if do_linear_probe else None)
    finally:
        model.train(was_training)
    log.info("eval on %s (%d images): zero-shot top-1 %.4f, top-5 %.4f, linear probe %s (%.1f s)",
             evalset.name, len(evalset.labels), out["zeroshot_top1"], out["zeroshot_top5"],
             out["linear_probe_top1"], time.monotonic() - t0)
    return out


__all__ = ["evaluate", "image_features", "linear_probe", "recall_at_k", "retrieval", "text_features",
           "topk_accuracy", "zeroshot_classifier"]
