"""Full and sampled softmax, BPR-max and Adagrad with momentum: exact values on tiny cases,
and a 1M-item catalog trains."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from interest_tracker.model import InterestModel, ModelConfig
from interest_tracker.training.losses import NegativeSampler, bpr_max_loss, full_softmax_loss, sampled_softmax_loss
from interest_tracker.training.optim import AdagradMomentum


def test_full_softmax_is_cross_entropy_without_reserved_items():
    torch.manual_seed(0)
    v, E, b = torch.randn(4, 3), torch.randn(6, 3), torch.randn(6)
    t = torch.tensor([2, 3, 5, 4])
    logits = v @ E.T + b
    expected = torch.stack([-(logits[i, t[i]] - torch.logsumexp(logits[i, 2:], 0)) for i in range(4)]).mean()
    assert torch.allclose(full_softmax_loss(v, t, E, b), expected, atol=1e-6)


def test_sampler_never_draws_reserved_items_and_follows_count_power():
    counts = torch.tensor([100, 100, 1, 16, 0, 81])
    s = NegativeSampler(counts, alpha=0.5)
    assert s.probs[:2].sum() == 0 and s.probs[4] == 0
    assert torch.allclose(s.probs[[2, 3, 5]], torch.tensor([1.0, 4.0, 9.0]) / 14)
    draws = s.sample(20000, torch.Generator().manual_seed(0))
    assert set(draws.unique().tolist()) <= {2, 3, 5}
    assert abs((draws == 5).float().mean().item() - 9 / 14) < 0.02


def test_sampled_softmax_matches_hand_computation():
    torch.manual_seed(1)
    v, E, b = torch.randn(2, 3), torch.randn(6, 3), torch.randn(6)
    t = torch.tensor([2, 3])
    s = NegativeSampler(torch.tensor([0, 0, 10, 10, 10, 10]), alpha=1.0)
    g = torch.Generator().manual_seed(7)
    got = sampled_softmax_loss(v, t, E, b, s, num_negatives=3, in_batch=False, generator=g)
    neg = s.sample(3, torch.Generator().manual_seed(7))
    logq = math.log(3 * 0.25)
    losses = []
    for i in range(2):
        pos = v[i] @ E[t[i]] + b[t[i]] - logq
        negs = torch.stack([v[i] @ E[j] + b[j] - logq if j != t[i] else torch.tensor(float("-inf")) for j in neg])
        losses.append(-(pos - torch.logsumexp(torch.cat([pos.view(1), negs]), 0)))
    assert torch.allclose(got, torch.stack(losses).mean(), atol=1e-5)


def test_sampled_softmax_in_batch_corrects_by_the_mixtures_expected_count():
    # Candidates = the batch's 3 targets (3 draws from the unigram distribution) + 2 draws from
    # q: each copy of item j loses log(3 * unigram(j) + 2 * q(j)), the positive too.
    torch.manual_seed(2)
    v, E, b = torch.randn(3, 3), torch.randn(6, 3), torch.randn(6)
    t = torch.tensor([2, 3, 2])
    s = NegativeSampler(torch.tensor([0, 0, 30, 10, 10, 50]), alpha=0.5)
    got = sampled_softmax_loss(v, t, E, b, s, num_negatives=2, in_batch=True,
                               generator=torch.Generator().manual_seed(5))
    neg = s.sample(2, torch.Generator().manual_seed(5))
    counts = torch.tensor([0.0, 0.0, 30, 10, 10, 50])
    unigram = counts / counts.sum()
    q = counts.sqrt() / counts.sqrt().sum()
    log_e = lambda j: math.log(3 * float(unigram[j]) + 2 * float(q[j]))  # noqa: E731
    losses = []
    for i in range(3):
        logit = lambda j: v[i] @ E[j] + b[j] - log_e(j)  # noqa: E731
        pos = logit(t[i])
        negs = [logit(j) for j in torch.cat([t, neg]) if j != t[i]]
        losses.append(-(pos - torch.logsumexp(torch.stack([pos, *negs]), 0)))
    assert torch.allclose(got, torch.stack(losses).mean(), atol=1e-5)


def test_sampled_softmax_masks_accidental_hits_in_batch():
    # Both points have the same target: the other's copy must not count as a negative.
    v, E, b = torch.ones(2, 2), torch.eye(4, 2), torch.zeros(4)
    t = torch.tensor([2, 2])
    s = NegativeSampler(torch.tensor([0, 0, 5, 0]), alpha=1.0)  # the only sampleable item is 2 itself
    loss = sampled_softmax_loss(v, t, E, b, s, num_negatives=4, in_batch=True)
    assert torch.allclose(loss, torch.tensor(0.0), atol=1e-6)


def test_one_million_item_catalog_trains_with_sampled_softmax():
    torch.set_num_threads(1)  # a shared 2-core CI machine: more threads only oversubscribe
    torch.manual_seed(0)
    n_items = 1_000_000
    model = InterestModel(ModelConfig(num_items=n_items, num_event_types=2, hidden_size=8, embedding_dim=8))
    counts = torch.randint(1, 50, (n_items,))
    sampler = NegativeSampler(counts)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    items = torch.randint(2, n_items, (32, 10))
    targets = torch.randint(2, n_items, (32, 10))
    types, gaps, starts = torch.ones_like(items), torch.zeros(32, 10), torch.zeros(32, 10)
    losses = []
    for _ in range(5):
        states = model(items, types, gaps, starts).reshape(-1, 8)
        loss = sampled_softmax_loss(states, targets.reshape(-1), model.item_vectors(), model.output_bias,
                                    sampler, num_negatives=256)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]
    # what the full softmax would allocate for this batch alone: 320 x 1M floats = 1.28 GB of logits
    assert 320 * n_items * 4 > 1e9


def test_bpr_max_matches_hand_computation():
    torch.manual_seed(0)
    v, E, b = torch.randn(3, 4), torch.randn(7, 4), torch.randn(7)
    t = torch.tensor([2, 3, 2])
    s = NegativeSampler(torch.tensor([0, 0, 5, 5, 5, 5, 5]), alpha=1.0)
    got = bpr_max_loss(v, t, E, b, s, num_negatives=4, in_batch=True, reg=0.5, elu=1.0,
                       generator=torch.Generator().manual_seed(3))
    candidates = torch.cat([t, s.sample(4, torch.Generator().manual_seed(3))])
    losses = []
    for i in range(3):
        pos = F.elu(v[i] @ E[t[i]] + b[t[i]])
        neg = torch.stack([F.elu(v[i] @ E[j] + b[j]) for j in candidates if j != t[i]])  # own target: weight 0
        w = torch.softmax(neg, 0)
        losses.append(-torch.log((w * torch.sigmoid(pos - neg)).sum()) + 0.5 * (w * neg ** 2).sum())
    assert torch.allclose(got, torch.stack(losses).mean(), atol=1e-5)


def test_bpr_max_point_with_only_its_own_target_as_candidate_costs_nothing():
    v, E, b = torch.ones(2, 2), torch.eye(4, 2), torch.zeros(4)
    t = torch.tensor([2, 2])
    s = NegativeSampler(torch.tensor([0, 0, 5, 0]), alpha=1.0)
    loss = bpr_max_loss(v, t, E, b, s, num_negatives=4, in_batch=True)
    assert torch.isfinite(loss) and float(loss) == 0.0


def test_adagrad_momentum_matches_hand_computation():
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = AdagradMomentum([p], lr=0.1, momentum=0.5, eps=1e-6)
    grads = [torch.tensor([0.5, 1.0]), torch.tensor([-1.0, 2.0])]
    acc, vel, expected = torch.zeros(2), torch.zeros(2), torch.tensor([1.0, -2.0])
    for g in grads:
        p.grad = g.clone()
        opt.step()
        acc = acc + g * g
        vel = 0.5 * vel - 0.1 * g / torch.sqrt(acc + 1e-6)
        expected = expected + vel
    assert torch.allclose(p.detach(), expected, atol=1e-6)
    # momentum 0 is plain Adagrad (torch's, with the same eps and no initial accumulator)
    q1, q2 = torch.nn.Parameter(torch.tensor([1.0, -2.0])), torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    o1, o2 = AdagradMomentum([q1], lr=0.1, eps=1e-10), torch.optim.Adagrad([q2], lr=0.1, eps=1e-10)
    for g in grads:
        q1.grad, q2.grad = g.clone(), g.clone()
        o1.step()
        o2.step()
    assert torch.allclose(q1.detach(), q2.detach(), atol=1e-5)


def test_each_ensemble_member_learns_on_its_own_loss():
    """The training objective of an ensemble is the sum of its members' losses, each on its own
    loader's batch, so a member's gradient is what it would be alone (the mean of the members'
    scores is only how they rank)."""
    from types import SimpleNamespace

    from interest_tracker.model import build_model
    from interest_tracker.training.loop import _objective

    torch.manual_seed(0)
    ens = build_model(ModelConfig(num_items=12, num_event_types=2, hidden_size=4, embedding_dim=4, members=2))
    items = torch.randint(2, 12, (6, 5))  # two members' batches of 3 rows, stacked (loop._next_batch)
    targets = torch.randint(2, 12, (6, 5))
    types, gaps, starts, mask = torch.ones_like(items), torch.zeros(6, 5), torch.zeros(6, 5), torch.ones(6, 5)
    objective = _objective(ens, SimpleNamespace(loss="full"), None)
    loss = objective(items, types, gaps, starts, targets, mask)
    alone = [full_softmax_loss(t(items[3 * k:3 * k + 3], types[:3], gaps[:3], starts[:3]).reshape(-1, 4),
                               targets[3 * k:3 * k + 3].reshape(-1), t.item_vectors(), t.output_bias)
             for k, t in enumerate(ens.towers)]
    assert torch.allclose(loss, alone[0] + alone[1])
    with pytest.raises(ValueError, match="5 rows do not split into 2 members' batches"):
        objective(items[:5], types[:5], gaps[:5], starts[:5], targets[:5], mask[:5])
    alone[0].backward()
    expected = ens.towers[0].rnn.weight_hh_l0.grad.clone()
    ens.zero_grad()
    loss.backward()
    torch.testing.assert_close(ens.towers[0].rnn.weight_hh_l0.grad, expected)
