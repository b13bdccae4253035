"""Full-ranking Recall@K, MRR@K and NDCG@K, accumulated batch by batch.

Only the rank of each point's target is kept: a batch of ``n`` points is scored against
the whole catalog (``n x items``), reduced to ``n`` ranks, and dropped, so the evaluator
never holds ``users x items``. The rank of a target is ``1 + #items scoring strictly
higher`` (the GRU4Rec/session-rec convention); points whose target can never be
recommended (unknown item) still count, as misses.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

DEFAULT_KS = (10, 20)
MISS = np.iinfo(np.int64).max


def ranks_of_targets(scores, targets):
    """Rank (1 = best) of ``targets[i]`` in ``scores[i]``; works on torch tensors or numpy arrays.

    A target whose score is -inf or NaN (padding/unknown, or not scorable) gets rank MISS.
    """
    try:
        import torch
    except ImportError:  # pragma: no cover - evaluation of list baselines needs no torch
        torch = None
    if torch is not None and isinstance(scores, torch.Tensor):
        t = targets.long().view(-1, 1)
        target_scores = scores.gather(1, t)
        ranks = (scores > target_scores).sum(dim=1).long() + 1
        bad = ~torch.isfinite(target_scores.squeeze(1))
        ranks = torch.where(bad, torch.full_like(ranks, MISS), ranks)
        return ranks.cpu().numpy()
    scores = np.asarray(scores)
    targets = np.asarray(targets, dtype=np.int64)
    target_scores = scores[np.arange(len(targets)), targets][:, None]
    ranks = (scores > target_scores).sum(axis=1).astype(np.int64) + 1
    ranks[~np.isfinite(target_scores[:, 0])] = MISS
    return ranks


def ranks_from_lists(lists: Sequence[Sequence], targets: Sequence) -> np.ndarray:
    """Ranks of targets in ready-made top-N lists (peer recommendations); absent = MISS."""
    out = np.full(len(targets), MISS, dtype=np.int64)
    for i, (lst, t) in enumerate(zip(lists, targets)):
        for j, item in enumerate(lst):
            if item == t:
                out[i] = j + 1
                break
    return out


@dataclass
class RankingMetrics:
    """Accumulates ranks; ``result()`` gives ``{"recall@K", "mrr@K", "ndcg@K", "points"}``."""

    ks: tuple[int, ...] = DEFAULT_KS
    points: int = 0
    _hits: dict = field(default_factory=dict)
    _rr: dict = field(default_factory=dict)
    _dcg: dict = field(default_factory=dict)

    def add(self, ranks: Iterable[int]) -> None:
        r = np.asarray(list(ranks) if not isinstance(ranks, np.ndarray) else ranks, dtype=np.int64)
        self.points += int(r.size)
        for k in self.ks:
            hit = r <= k
            self._hits[k] = self._hits.get(k, 0.0) + float(hit.sum())
            self._rr[k] = self._rr.get(k, 0.0) + float(point_values(r, f"mrr@{k}")[hit].sum())
            self._dcg[k] = self._dcg.get(k, 0.0) + float(point_values(r, f"ndcg@{k}")[hit].sum())

    def merge(self, other: "RankingMetrics") -> None:
        self.points += other.points
        for k in self.ks:
            self._hits[k] = self._hits.get(k, 0.0) + other._hits.get(k, 0.0)
            self._rr[k] = self._rr.get(k, 0.0) + other._rr.get(k, 0.0)
            self._dcg[k] = self._dcg.get(k, 0.0) + other._dcg.get(k, 0.0)

    def result(self) -> dict:
        if self.points == 0:
            raise ValueError("no prediction points were evaluated; check that the split has "
                             "target_mask=1 positions (dataset_info.json 'targets')")
        out = {"points": self.points}
        for k in self.ks:
            out[f"recall@{k}"] = self._hits.get(k, 0.0) / self.points
            out[f"mrr@{k}"] = self._rr.get(k, 0.0) / self.points
            out[f"ndcg@{k}"] = self._dcg.get(k, 0.0) / self.points
        return out


def point_values(ranks: np.ndarray, metric: str) -> np.ndarray:
    """Each point's contribution to ``metric`` ("recall@K", "mrr@K" or "ndcg@K"), so that its
    mean is the metric: what ``RankingMetrics`` sums, and what a paired comparison of two
    scorers differences (evaluation/selection.py)."""
    name, k = metric.split("@")
    r = np.asarray(ranks, dtype=np.float64)
    hit = r <= int(k)
    if name == "recall":
        return hit.astype(np.float64)
    if name == "mrr":
        return np.where(hit, 1.0 / r, 0.0)
    if name == "ndcg":
        return np.where(hit, 1.0 / np.log2(r + 1.0), 0.0)
    raise ValueError(f"unknown metric {metric!r}; use recall@K, mrr@K or ndcg@K")


def metrics_from_ranks(ranks, ks: tuple[int, ...] = DEFAULT_KS) -> dict:
    m = RankingMetrics(ks=ks)
    m.add(np.asarray(ranks, dtype=np.int64))
    return m.result()


def ndcg_single(rank: int) -> float:
    """Standard NDCG of one point with one relevant item: 1/log2(rank + 1)."""
    return 1.0 / math.log2(rank + 1)
