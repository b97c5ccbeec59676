"""Evaluation metrics on hand-made embeddings (exact answers), and zero-shot on a real model and eval set."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests._data_fixtures import demo_data  # noqa: F401 - fixture
from tests._train_fixtures import micro_model, one_thread  # noqa: F401 - fixtures


def test_topk_accuracy_exact():
    from runners.evaluate import topk_accuracy

    logits = torch.tensor([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0], [2.0, 3.0, 1.0]])
    labels = torch.tensor([0, 0, 2])
    assert topk_accuracy(logits, labels, ks=(1, 2, 5)) == {1: pytest.approx(1 / 3), 2: pytest.approx(1 / 3),
                                                          5: 1.0}


def test_recall_breaks_ties_by_index_not_in_favour_of_the_match():
    """Identical captions embed identically: a tie must not count as a hit for every duplicate."""
    from runners.evaluate import recall_at_k, retrieval

    img = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0]]), dim=-1)
    txt = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), dim=-1)  # 0 == 1
    r = recall_at_k(img @ txt.T, ks=(1, 2))
    assert r[1] == pytest.approx(2 / 3) and r[2] == 1.0  # image 1 ties with caption 0, which comes first
    out = retrieval(torch.eye(4), torch.eye(4))
    assert out == {"retrieval_i2t_r1": 1.0, "retrieval_i2t_r5": 1.0, "retrieval_t2i_r1": 1.0, "retrieval_t2i_r5": 1.0}
    assert recall_at_k(-torch.eye(6), ks=(1, 5))[1] == 0.0


def test_linear_probe_separable_and_random():
    from runners.evaluate import linear_probe

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 40)
    centers = rng.normal(size=(4, 8)) * 5
    feats = centers[labels] + rng.normal(size=(160, 8)) * 0.1
    assert linear_probe(feats, labels) == 1.0
    noise = rng.normal(size=(160, 8))
    assert linear_probe(noise, labels) < 0.6


def test_zeroshot_classifier_on_real_eval_set(demo_data, micro_model, one_thread):  # noqa: F811
    from runners.data.evalset import load_eval_set
    from runners.evaluate import evaluate, zeroshot_classifier
    from runners.models import build_model

    _, evald = demo_data
    ev = load_eval_set(evald)
    built = build_model(str(micro_model))
    clf = zeroshot_classifier(built.model, built.tokenizer, ev.classnames, ev.templates)
    assert clf.shape == (32, len(ev.classnames))
    assert torch.allclose(clf.norm(dim=0), torch.ones(len(ev.classnames)), atol=1e-5)
    m = evaluate(built.model, built.tokenizer, built.preprocess_val, ev, do_linear_probe=False)
    assert 0.0 <= m["zeroshot_top1"] <= m["zeroshot_top5"] <= 1.0
    assert m["eval_dataset"] == "fashion-mnist" and m["linear_probe_top1"] is None
    assert m["retrieval_i2t_r1"] is not None  # the demo eval set carries captions
