import itertools
import math

import numpy as np
import pytest
import torch

from aucseg.metrics import PairwiseAUC


def brute_force_auc(scores: np.ndarray, target: np.ndarray, ignore: int = 255) -> float:
    """Exact O(n^2) one-vs-one AUC: mean over ordered pairs of present classes."""
    c = scores.shape[1]
    s = scores.transpose(0, 2, 3, 1).reshape(-1, c)
    t = target.reshape(-1)
    keep = t != ignore
    s, t = s[keep], t[keep]
    present = np.unique(t)
    aucs = []
    for i, j in itertools.permutations(present, 2):
        pos, neg = s[t == i, i], s[t == j, i]
        diff = pos[:, None] - neg[None, :]
        aucs.append(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)
    return float(np.mean(aucs)) if aucs else float("nan")


def _data(seed: int, c: int = 4, shape=(2, 6, 7)):
    rng = np.random.default_rng(seed)
    target = rng.integers(0, c, size=shape)
    target[rng.random(shape) < 0.15] = 255
    logits = rng.normal(size=(shape[0], c, *shape[1:]))
    # make scores informative: boost the true class
    onehot = np.zeros_like(logits)
    for k in range(c):
        onehot[:, k][target == k] = 1.5
    scores = 1.0 / (1.0 + np.exp(-(logits + onehot)))
    return scores, target


def test_exact_when_scores_lie_on_bin_centres():
    scores, target = _data(0)
    bins = 50
    centred = (np.floor(scores * bins) + 0.5) / bins  # ties within a bin are real ties
    metric = PairwiseAUC(4, bins=bins)
    metric.update(torch.from_numpy(centred), torch.from_numpy(target))
    assert metric.compute() == pytest.approx(brute_force_auc(centred, target), abs=1e-12)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_binned_close_to_exact(seed):
    scores, target = _data(seed, c=5, shape=(2, 10, 9))
    metric = PairwiseAUC(5, bins=100)
    metric.update(torch.from_numpy(scores).float(), torch.from_numpy(target))
    exact = brute_force_auc(scores, target)
    assert 0.6 < exact < 1.0  # informative scores: the test is not trivially 0.5
    assert metric.compute() == pytest.approx(exact, abs=0.01)


def test_pairwise_matrix_entries_and_absent_classes():
    # class 0: scores of class 0 are 0.9 on class-0 pixels and 0.1 on class-1 pixels
    scores = torch.zeros(1, 3, 1, 4)
    scores[0, 0, 0] = torch.tensor([0.9, 0.9, 0.1, 0.1])
    scores[0, 1, 0] = torch.tensor([0.7, 0.2, 0.2, 0.7])
    target = torch.tensor([[[0, 0, 1, 1]]])
    metric = PairwiseAUC(3, bins=10)
    metric.update(scores, target)
    pw = metric.pairwise()
    assert pw[0, 1] == pytest.approx(1.0)
    assert pw[1, 0] == pytest.approx(0.5)  # one win, one loss
    assert torch.isnan(pw[0, 2]) and torch.isnan(pw[2, 0]) and torch.isnan(pw[0, 0])
    assert metric.compute() == pytest.approx(0.75)


def test_streaming_and_ignore():
    scores, target = _data(4)
    s, t = torch.from_numpy(scores).float(), torch.from_numpy(target)
    one = PairwiseAUC(4)
    one.update(s, t)
    two = PairwiseAUC(4)
    two.update(s[:1], t[:1])
    two.update(s[1:], t[1:])
    assert torch.equal(one.hist, two.hist)
    assert int(one.hist[:, 0].sum()) == int((t != 255).sum())
    two.reset()
    assert int(two.hist.sum()) == 0


def test_fewer_than_two_classes_is_nan():
    metric = PairwiseAUC(3)
    metric.update(torch.rand(1, 3, 4, 4), torch.full((1, 4, 4), 2))
    assert math.isnan(metric.compute())


def test_bad_inputs_raise():
    metric = PairwiseAUC(3)
    with pytest.raises(ValueError, match="B, 3, H, W"):
        metric.update(torch.rand(1, 2, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="target"):
        metric.update(torch.rand(1, 3, 4, 4), torch.zeros(1, 4, 5, dtype=torch.long))
    with pytest.raises(TypeError):
        metric.update(torch.rand(1, 3, 4, 4), torch.zeros(1, 4, 4))
    with pytest.raises(ValueError, match="bins"):
        PairwiseAUC(3, bins=0)


def test_chunked_update_equals_single_bincount(monkeypatch):
    import aucseg.metrics.auc as auc_module

    scores, target = _data(5, c=3, shape=(2, 9, 11))
    s, t = torch.from_numpy(scores).float(), torch.from_numpy(target)
    whole = PairwiseAUC(3, bins=7)
    whole.update(s, t)
    monkeypatch.setattr(auc_module, "_CHUNK_ELEMENTS", 13)  # many uneven chunks
    chunked = PairwiseAUC(3, bins=7)
    chunked.update(s, t)
    assert torch.equal(whole.hist, chunked.hist)
