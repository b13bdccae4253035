"""Blocked top-K against a brute-force numpy reference (no Spark)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from interest_tracker.scoring.topk import augmented_items, blocked_topk


def _reference(vectors, items, bias, excluded, consumed, k):
    scores = vectors.astype(np.float64) @ items.astype(np.float64).T + bias
    scores[:, excluded] = -np.inf
    idx, sc = [], []
    for i in range(len(vectors)):
        s = scores[i].copy()
        if consumed is not None:
            s[consumed[i]] = -np.inf
        order = np.lexsort((np.arange(len(s)), -s))[:k]
        order = order[np.isfinite(s[order])]
        idx.append(order)
        sc.append(s[order])
    return idx, sc


@pytest.mark.parametrize("block", [7, 64, 1000])
def test_topk_equals_numpy_bruteforce(block):
    rng = np.random.default_rng(1)
    n, d, num_items, k = 37, 6, 203, 10
    vectors = rng.normal(size=(n, d)).astype(np.float32)
    items = rng.normal(size=(num_items, d)).astype(np.float32)
    bias = rng.normal(size=num_items).astype(np.float32)
    excluded = np.zeros(num_items, dtype=bool)
    excluded[[0, 1, 17, 150]] = True
    consumed = [rng.choice(num_items, size=rng.integers(0, 30), replace=False) for _ in range(n)]
    aug = augmented_items(torch.from_numpy(items), torch.from_numpy(bias), excluded)
    got_idx, got_sc = blocked_topk(torch.from_numpy(vectors), aug, k, consumed, batch_size=8, item_block_size=block)
    ref_idx, ref_sc = _reference(vectors, items, bias, excluded, consumed, k)
    for i in range(n):
        np.testing.assert_array_equal(got_idx[i], ref_idx[i])
        # float32 GEMM vs float64 reference: agreement to float32 rounding
        np.testing.assert_allclose(got_sc[i], ref_sc[i], rtol=1e-5, atol=1e-5)
        assert not set(got_idx[i]) & set(consumed[i].tolist())
        assert not set(got_idx[i]) & {0, 1, 17, 150}


def test_topk_fewer_eligible_items_than_k_pads_with_minus_one():
    items = torch.eye(5)
    aug = augmented_items(items, torch.zeros(5), np.array([True, True, False, False, False]))
    idx, sc = blocked_topk(torch.ones((2, 5)), aug, k=4, consumed=[np.array([2]), np.array([], dtype=np.int64)],
                           batch_size=4, item_block_size=2)
    # user 0: only items 3, 4 remain (tie on score 1.0 -> smaller index first)
    np.testing.assert_array_equal(idx[0], [3, 4, -1, -1])
    np.testing.assert_array_equal(idx[1], [2, 3, 4, -1])
    assert np.isneginf(sc[0, 2:]).all() and (sc[1, :3] == 1.0).all()


def test_scores_do_not_depend_on_batch_neighbours():
    # The incremental == full guarantee rests on this: a user's scores are bitwise the
    # same whichever other users share the fixed-shape batch.
    rng = np.random.default_rng(2)
    vectors = torch.from_numpy(rng.normal(size=(50, 16)).astype(np.float32))
    aug = augmented_items(torch.from_numpy(rng.normal(size=(300, 16)).astype(np.float32)), torch.zeros(300), None)
    all_idx, all_sc = blocked_topk(vectors, aug, 5, None, batch_size=16, item_block_size=128)
    pick = np.array([3, 41, 7])
    sub_idx, sub_sc = blocked_topk(vectors[pick], aug, 5, None, batch_size=16, item_block_size=128)
    np.testing.assert_array_equal(sub_idx, all_idx[pick])
    np.testing.assert_array_equal(sub_sc, all_sc[pick])


@pytest.mark.parametrize("block", [64, 128, 1000, 16384])
def test_with_ties_the_scores_are_exact_and_the_list_is_index_ordered(block):
    """What docs/data-contract.md promises with ties (small integer coordinates make float32
    products exact, so ties are exact ties): the score at every rank is the true K-best score,
    and equal scores in the list are ordered by index. Which items tied at the K-th score are
    listed is not promised."""
    rng = np.random.default_rng(3)
    n, d, num_items, k = 21, 3, 700, 12
    vectors = rng.integers(-1, 2, size=(n, d)).astype(np.float32)
    items = rng.integers(-1, 2, size=(num_items, d)).astype(np.float32)
    bias = rng.integers(0, 2, size=num_items).astype(np.float32)
    consumed = [rng.choice(num_items, size=rng.integers(0, 40), replace=False) for _ in range(n)]
    aug = augmented_items(torch.from_numpy(items), torch.from_numpy(bias), None)
    got_idx, got_sc = blocked_topk(torch.from_numpy(vectors), aug, k, consumed, batch_size=8, item_block_size=block)
    _, ref_sc = _reference(vectors, items, bias, np.zeros(num_items, dtype=bool), consumed, k)
    exact = vectors.astype(np.float64) @ items.astype(np.float64).T + bias
    for i in range(n):
        np.testing.assert_array_equal(got_sc[i], ref_sc[i])
        np.testing.assert_array_equal(exact[i, got_idx[i]], got_sc[i])  # each listed item has its score
        assert not set(got_idx[i]) & set(consumed[i].tolist())
        assert all((a > b) or (a == b and x < y) for a, b, x, y in
                   zip(got_sc[i], got_sc[i][1:], got_idx[i], got_idx[i][1:]))
