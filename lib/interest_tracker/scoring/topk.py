"""Blocked top-K: best K items per user without materialising the users x items matrix.

Scores are ``vector . item_vector + bias``. The bias is folded into the product as an
extra coordinate (vector gets a trailing 1, items get their bias), so each block is one
GEMM. Excluded items get a bias of -inf (all users) or are masked per user (consumed
items). Items are processed in blocks of ``item_block_size``; each block's top-K is
merged into a running top-K, so memory stays at users x block.

Selection inside a block is two-stage and exact: items are cut into groups of
``GROUP`` consecutive indexes, the K groups with the highest maximum are kept and the
top-K is taken over their ``K * GROUP`` items only. A group holding one of the block's
top-K items has a maximum at least the K-th best score, and at most K groups can, so no
candidate is lost; this replaces a K-selection over every score (as costly as a third of
the product) with a max over groups, which is a cheap streaming pass.

Every product is padded to exactly ``batch_size`` user rows: BLAS picks different
kernels (and so different rounding) for different shapes, and a fixed shape makes a
user's scores bitwise independent of the other users in the batch. That is what lets
an incremental run reproduce a full run exactly.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch


GROUP = 64


def augmented_items(item_vectors: torch.Tensor, bias: torch.Tensor, excluded: np.ndarray | None) -> torch.Tensor:
    """(N', D+1) item matrix [item_vector | bias]; excluded items (bool mask) get bias -inf.

    N' is N rounded up to a multiple of GROUP; the padding rows score -inf.
    """
    b = bias.detach().clone().float()
    if excluded is not None:
        b[torch.from_numpy(np.asarray(excluded, dtype=bool))] = float("-inf")
    m = torch.cat([item_vectors.detach().float(), b.unsqueeze(1)], dim=1)
    pad = (-m.shape[0]) % GROUP
    if pad:
        filler = torch.zeros((pad, m.shape[1]), dtype=m.dtype)
        filler[:, -1] = float("-inf")
        m = torch.cat([m, filler], dim=0)
    return m.contiguous()


def _block_topk(s: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k (values, column indexes) of ``s`` (rows, n) with n a multiple of GROUP."""
    rows, n = s.shape
    groups = s.view(rows, n // GROUP, GROUP)
    kg = min(k, n // GROUP)
    _, gi = torch.topk(groups.amax(dim=2), kg, dim=1)
    # Whole groups copied by indexing: same values as a gather, a third cheaper on the CPU.
    cand = groups[torch.arange(rows, device=s.device).unsqueeze(1), gi].reshape(rows, kg * GROUP)
    cols = (gi.unsqueeze(-1) * GROUP + torch.arange(GROUP, device=s.device)).reshape(rows, kg * GROUP)
    vals, pos = torch.topk(cand, min(k, kg * GROUP), dim=1)
    return vals, torch.gather(cols, 1, pos)


def blocked_topk(
    vectors: torch.Tensor,
    items_aug: torch.Tensor,
    k: int,
    consumed: Sequence[np.ndarray] | None = None,
    batch_size: int = 256,
    item_block_size: int = 16384,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` item indexes and scores per row of ``vectors`` (n, D).

    Returns (indexes int32 (n, k), scores float32 (n, k)), best first, equal scores in the list
    by the smaller index. Which of several items tied at the k-th score make the list is
    ``torch.topk``'s choice (it can depend on ``item_block_size``): selecting exactly on
    (score, index) measured 2-3.5% slower on this hot path, so docs/data-contract.md promises
    only the order within the list. Slots beyond the number of eligible items hold index -1
    and score -inf.
    ``consumed[i]`` (int array) lists items excluded for row i only.
    """
    n = vectors.shape[0]
    num_items, item_block_size = item_blocks(items_aug, item_block_size)
    device = items_aug.device
    out_idx = np.full((n, k), -1, dtype=np.int32)
    out_score = np.full((n, k), -np.inf, dtype=np.float32)
    ones = torch.ones((batch_size, 1), dtype=items_aug.dtype, device=device)
    # One score tile per block width, reused by every block and batch: the same product as a
    # fresh ``v @ block.T`` (same shapes, so the same bits), without allocating and
    # page-faulting a new batch_size x item_block_size tile per block (~20% of the product
    # on the CPU). select_topk masks the tile in place and keeps only copies of the top-K.
    tiles: dict[int, torch.Tensor] = {}

    def score_block(v, b0, b1):
        tile = tiles.get(b1 - b0)
        if tile is None:
            tile = tiles[b1 - b0] = torch.empty((batch_size, b1 - b0), dtype=items_aug.dtype, device=device)
        return torch.mm(v, items_aug[b0:b1].T, out=tile)

    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        rows = stop - start
        v = torch.zeros((batch_size, vectors.shape[1]), dtype=items_aug.dtype, device=device)
        v[:rows] = vectors[start:stop].to(device=device, dtype=items_aug.dtype)
        v = torch.cat([v, ones], dim=1)
        i_np, s_np = select_topk(lambda b0, b1, v=v: score_block(v, b0, b1), num_items, item_block_size, k,
                                 consumed, start, stop, batch_size, items_aug.dtype, device)
        w = s_np.shape[1]
        out_idx[start:stop, :w] = i_np
        out_score[start:stop, :w] = s_np
    return out_idx, out_score


def item_blocks(items_aug: torch.Tensor, item_block_size: int) -> tuple[int, int]:
    """(number of item rows, block size rounded down to a multiple of GROUP), checking that
    ``items_aug`` came from :func:`augmented_items` (whole groups only)."""
    num_items = items_aug.shape[0]
    if num_items % GROUP:
        raise ValueError(f"items_aug must have a multiple of {GROUP} rows; build it with augmented_items()")
    return num_items, max(GROUP, item_block_size - item_block_size % GROUP)


def select_topk(score_block, num_items: int, item_block_size: int, k: int, consumed, start: int, stop: int,
                batch_size: int, dtype, device) -> tuple[np.ndarray, np.ndarray]:
    """Running exact top-``k`` over item blocks for users ``start:stop`` (one padded batch).

    ``score_block(b0, b1)`` returns the (batch_size, b1 - b0) scores of items b0..b1; the
    plain dot product and the blended scorer (``blend.py``) share this loop, so both keep
    the same exclusion, tie order and fixed-shape determinism. Returns (indexes, scores)
    for the real rows, score descending then index ascending (among the selected; see
    :func:`blocked_topk` on ties at the k-th score), -1 where the score is -inf.
    """
    rows = stop - start
    mask_rows, mask_cols = _consumed_pairs(consumed, start, stop, device)
    best_s = torch.full((batch_size, 0), float("-inf"), dtype=dtype, device=device)
    best_i = torch.zeros((batch_size, 0), dtype=torch.long, device=device)
    for b0 in range(0, num_items, item_block_size):
        b1 = min(b0 + item_block_size, num_items)
        s = score_block(b0, b1)
        if mask_rows is not None:
            sel = (mask_cols >= b0) & (mask_cols < b1)
            s[mask_rows[sel], mask_cols[sel] - b0] = float("-inf")
        bs, bi = _block_topk(s, k)
        best_s = torch.cat([best_s, bs], dim=1)
        best_i = torch.cat([best_i, bi + b0], dim=1)
        if best_s.shape[1] > k:
            best_s, pos = torch.topk(best_s, k, dim=1)
            best_i = torch.gather(best_i, 1, pos)
    s_np = best_s[:rows].float().cpu().numpy()
    i_np = best_i[:rows].cpu().numpy()
    # Deterministic order: score descending, then index ascending.
    order = np.lexsort((i_np, -s_np), axis=-1)
    s_np = np.take_along_axis(s_np, order, axis=1)
    i_np = np.take_along_axis(i_np, order, axis=1)
    return np.where(np.isneginf(s_np), -1, i_np), s_np


def _consumed_pairs(consumed, start: int, stop: int, device):
    if consumed is None:
        return None, None
    parts = [np.asarray(consumed[i], dtype=np.int64) for i in range(start, stop)]
    lens = [len(p) for p in parts]
    if sum(lens) == 0:
        return None, None
    rows = np.repeat(np.arange(stop - start), lens)
    cols = np.concatenate(parts)
    return torch.from_numpy(rows).to(device), torch.from_numpy(cols).to(device)
