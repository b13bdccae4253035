"""Embeddings for the items that the training split never had as a target ("cold" items).

Why: the model trains on the train split, but the artifact serves after the test
period. Items that first appear in the validation or test days are in the vocabulary
(stage 1 numbers every item up to the run date), yet their embedding is still its random
initialisation and every softmax step pushed their output bias down, so the model never
ranks them, even when they are what is rising now. On the drifting synthetic log
(issue 13.4) a tenth of the returning users' next items are such items, and the model's
tables hit none of them while last-item co-occurrence hits 19%.

Their neighbours in the log are trained: the items a cold item followed, and those that
followed it, in any split. So each cold item gets the count-weighted mean of its trained
neighbours' input and output embeddings: the model places a new item where the company it
keeps is, the item-kNN answer to cold start. Its output bias is the neighbours' mean bias
shifted by the log of how much rarer it is than they are,
``log((n(j) + 1) / (mean n(neighbours) + 1))`` with ``n`` the item's pairs in the log: a
softmax bias tracks log popularity, and a long-tail item that merely sits next to popular
ones must not inherit their popularity (with the plain mean, a log whose tail only the
last days hold had its model-only tables flooded: HR@20 0.097 -> 0.022). Items with no
trained neighbour keep their weights. This runs after the blend was chosen on validation, on
rank 0 only, so no validation target shapes the weights that selection scored.

On by default (``TrainConfig.cold_items``); its figures through the jobs are in
docs/benchmarks.md (sixth and seventh sessions). The model's figures in ``metrics.json``
are those of the trained weights: the fill reads the valid and test days' pairs, so
scoring the test split after it would leak.

Needs numpy and torch only (never pyspark).
"""
from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

PAD_INDEX, UNKNOWN_INDEX = 0, 1


def _real_pairs(num_items: int, src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pairs whose both items are real vocabulary items (not pad, unknown or out of range)."""
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    ok = (src > UNKNOWN_INDEX) & (dst > UNKNOWN_INDEX) & (src < num_items) & (dst < num_items)
    return src[ok], dst[ok]


def cold_neighbour_weights(num_items: int, train_targets: np.ndarray, src: np.ndarray, dst: np.ndarray):
    """(cold items, their trained neighbours, counts): every (previous, next) pair of
    ``src``/``dst`` links both items; a cold item (never a training target) collects the
    pairs whose other item is warm. Pure numpy, so tests can check it by hand."""
    warm = np.bincount(np.asarray(train_targets, dtype=np.int64), minlength=num_items)[:num_items] > 0
    warm[[PAD_INDEX, UNKNOWN_INDEX]] = False
    src, dst = _real_pairs(num_items, src, dst)
    a = np.concatenate([src, dst])
    b = np.concatenate([dst, src])
    keep = ~warm[a] & warm[b]
    key, counts = np.unique(a[keep] * num_items + b[keep], return_counts=True)
    return key // num_items, key % num_items, counts.astype(np.float64)


def item_pair_counts(num_items: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """n(j): how many of the (previous, next) pairs hold item j, on either side."""
    src, dst = _real_pairs(num_items, src, dst)
    return np.bincount(np.concatenate([src, dst]), minlength=num_items)[:num_items].astype(np.float64)


def fill_cold_items(model, train_targets: np.ndarray, src: np.ndarray, dst: np.ndarray) -> int:
    """Set every cold item's embeddings to the count-weighted mean of its trained
    neighbours', and its output bias to their mean shifted by its relative rarity (in
    place); returns how many items were filled."""
    import torch

    n = model.config.num_items
    cold, neighbour, counts = cold_neighbour_weights(n, train_targets, src, dst)
    if len(cold) == 0:
        return 0
    items = np.unique(cold)
    with torch.no_grad():
        w = torch.as_tensor(counts)
        c = torch.as_tensor(cold)
        nb = torch.as_tensor(neighbour)
        total = torch.zeros(n, dtype=torch.float64).index_add_(0, c, w)
        idx = torch.as_tensor(items)
        pairs = torch.as_tensor(item_pair_counts(n, src, dst))
        mean_pairs = torch.zeros(n, dtype=torch.float64).index_add_(0, c, pairs[nb] * w)[idx] / total[idx]
        for tower in model.towers:  # each member of an ensemble has its own tables
            tables = [tower.item_embedding.weight]
            if tower.output_embedding is not None:
                tables.append(tower.output_embedding.weight)
            for t in tables:
                cpu = t.detach().double().cpu()
                acc = torch.zeros((n, t.shape[1]), dtype=torch.float64).index_add_(0, c, cpu[nb] * w[:, None])
                t[idx.to(t.device)] = (acc[idx] / total[idx, None]).to(device=t.device, dtype=t.dtype)
            bias = tower.output_bias
            cpu = bias.detach().double().cpu()
            mean_bias = torch.zeros(n, dtype=torch.float64).index_add_(0, c, cpu[nb] * w)[idx] / total[idx]
            new_bias = mean_bias + torch.log((pairs[idx] + 1.0) / (mean_pairs + 1.0))
            bias[idx.to(bias.device)] = new_bias.to(device=bias.device, dtype=bias.dtype)
    return int(len(items))


def fill_and_report(model, train_targets: np.ndarray, src: np.ndarray, dst: np.ndarray) -> dict:
    """Fill the cold items from every split's (previous, next) pairs ``src``/``dst`` (the
    ones the selection already read) and say what was done (``metrics["cold_items"]``)."""
    filled = fill_cold_items(model, train_targets, src, dst)
    seen = np.unique(np.concatenate([np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)]))
    seen = seen[(seen > UNKNOWN_INDEX) & (seen < model.config.num_items)]
    cold_total = int(len(np.setdiff1d(seen, np.unique(np.asarray(train_targets, dtype=np.int64)))))
    log.info("cold items: %d items appear only after the train split; %d got their trained neighbours' mean "
             "embedding and bias (cold_items='neighbours')", cold_total, filled)
    return {"policy": "neighbours", "cold": cold_total, "filled": filled}
