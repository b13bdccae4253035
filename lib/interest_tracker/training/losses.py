"""Next-item losses over interest vectors.

``full_softmax_loss`` scores every item: exact, and fine while ``points x catalog``
logits fit in memory (tens of thousands of items). ``sampled_softmax_loss`` scores
each point against its own target, the other targets of the batch (in-batch
negatives) and a shared set of popularity-sampled negatives, with the logQ correction
(subtract the log of each candidate's expected count in that candidate set) so that it
estimates the full softmax and popular items are not pushed down for being drawn often.
Its memory is ``points x (points + negatives)``, independent of the catalog, which is
what lets a 1M-item catalog train.
``bpr_max_loss`` is GRU4Rec's ranking loss (Hidasi & Karatzoglou, CIKM 2018) over the
same candidate set: the positive must beat the negatives, each weighted by its softmax
among the negatives, so the hardest negatives dominate; an L2 term on the weighted
negative scores keeps them from drifting up.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..model.interest_model import PAD_INDEX, UNKNOWN_INDEX


def full_softmax_loss(vectors: torch.Tensor, targets: torch.Tensor, item_vectors: torch.Tensor,
                      item_bias: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over all items. Padding/unknown never win (their logits are -inf)."""
    logits = vectors @ item_vectors.T + item_bias
    logits[:, PAD_INDEX] = float("-inf")
    logits[:, UNKNOWN_INDEX] = float("-inf")
    return F.cross_entropy(logits, targets)


class NegativeSampler:
    """Draws negatives with probability ``count ** alpha`` (item_stats' train counts).

    Reserved indexes (padding, unknown) get probability 0. ``probs`` (per draw) and
    ``unigram`` (each item's share of the train targets, what in-batch negatives are drawn
    from) give the sampled softmax its logQ correction.
    """

    def __init__(self, train_counts: torch.Tensor, alpha: float = 0.75):
        counts = train_counts.double().clamp(min=0)
        counts[PAD_INDEX] = 0
        counts[UNKNOWN_INDEX] = 0
        weights = counts.pow(alpha)
        weights[counts == 0] = 0.0
        if float(weights.sum()) <= 0:
            # No counts (e.g. an empty item_stats): fall back to uniform over real items.
            weights = torch.ones_like(counts)
            weights[PAD_INDEX] = 0
            weights[UNKNOWN_INDEX] = 0
        self.probs = (weights / weights.sum()).float()
        # Unigram probability of being a batch target: the in-batch candidates' sampler.
        uni = counts.clamp(min=1e-3)
        uni[PAD_INDEX] = 1e-3
        uni[UNKNOWN_INDEX] = 1e-3
        self.unigram = (uni / uni.sum()).float()

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.multinomial(self.probs, n, replacement=True, generator=generator)


def sampled_softmax_loss(vectors: torch.Tensor, targets: torch.Tensor, item_vectors: torch.Tensor,
                         item_bias: torch.Tensor, sampler: NegativeSampler, num_negatives: int,
                         in_batch: bool = True, generator: torch.Generator | None = None) -> torch.Tensor:
    """Sampled softmax with logQ correction; candidates = [own target, batch targets, sampled].

    Candidates equal to a point's own target (accidental hits) are masked out, except
    the positive itself, so a popular target is not also pushed down as a negative.
    """
    device = vectors.device
    negatives = sampler.sample(num_negatives, generator).to(device)
    # logQ correction: every candidate and the positive lose the log of how many times the
    # item is expected among the candidates, so that the copies of an item sum to its logit.
    # Sampled negatives are num_negatives draws from q; with in-batch negatives the batch's
    # points' targets are as many draws from the unigram distribution, so the candidate set is
    # a sample from the mixture and its expected count is the sum of both. (Until 2026-12-02
    # the in-batch candidates were corrected by the unigram probability alone, without the
    # number of points: they outweighed the sampled negatives about points-fold.)
    expected = num_negatives * sampler.probs.to(device)
    if in_batch:
        expected = expected + targets.numel() * sampler.unigram.to(device)
    log_e = torch.log(expected.clamp(min=1e-12))
    candidates = torch.cat([targets, negatives]) if in_batch else negatives
    pos_logit = (vectors * item_vectors[targets]).sum(-1) + item_bias[targets] - log_e[targets]
    cand_logits = vectors @ item_vectors[candidates].T + item_bias[candidates] - log_e[candidates]
    hits = candidates.unsqueeze(0) == targets.unsqueeze(1)
    cand_logits = cand_logits.masked_fill(hits, float("-inf"))
    logits = torch.cat([pos_logit.unsqueeze(1), cand_logits], dim=1)
    return F.cross_entropy(logits, torch.zeros_like(targets))


def _candidates(targets: torch.Tensor, sampler: NegativeSampler, num_negatives: int, in_batch: bool,
                generator: torch.Generator | None) -> torch.Tensor:
    negatives = sampler.sample(num_negatives, generator).to(targets.device)
    return torch.cat([targets, negatives]) if in_batch else negatives


def bpr_max_loss(vectors: torch.Tensor, targets: torch.Tensor, item_vectors: torch.Tensor,
                 item_bias: torch.Tensor, sampler: NegativeSampler, num_negatives: int,
                 in_batch: bool = True, reg: float = 1.0, elu: float = 0.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Mean BPR-max loss; candidates = [batch targets (``in_batch``), sampled negatives].

    Per point: ``-log(sum_j s_j * sigmoid(r_pos - r_j)) + reg * sum_j s_j * r_j**2`` with
    ``s = softmax(r_neg)``. Candidates equal to the point's own target get weight 0.
    ``elu > 0`` passes scores through ELU(alpha=elu) first, as the reference does (scores
    stay monotone in the model's logits, so ranking at serving time is unchanged). No logQ
    correction: the softmax weighting already focuses on the relevant negatives.
    """
    candidates = _candidates(targets, sampler, num_negatives, in_batch, generator)
    pos = (vectors * item_vectors[targets]).sum(-1) + item_bias[targets]
    neg = vectors @ item_vectors[candidates].T + item_bias[candidates]
    if elu > 0:
        pos, neg = F.elu(pos, alpha=elu), F.elu(neg, alpha=elu)
    hits = candidates.unsqueeze(0) == targets.unsqueeze(1)
    log_w = torch.log_softmax(neg.masked_fill(hits, float("-inf")), dim=1)
    # A point whose every candidate is its own target has nothing to rank against: loss 0.
    empty = hits.all(dim=1)
    log_w = torch.where(empty.unsqueeze(1), torch.zeros_like(log_w), log_w)
    w = log_w.exp().masked_fill(hits, 0.0)
    rank_term = -torch.logsumexp((log_w + F.logsigmoid(pos.unsqueeze(1) - neg)).masked_fill(hits, float("-inf")),
                                 dim=1)
    rank_term = torch.where(empty, torch.zeros_like(rank_term), rank_term)
    reg_term = (w * neg.masked_fill(hits, 0.0).pow(2)).sum(1)
    return (rank_term + reg * reg_term).mean()
