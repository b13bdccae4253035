"""Baselines measured by the same harness as the model.

* ``PopularityBaseline``: every point gets the global training counts.
* ``TransitionBaseline``: the items that most often followed the current (last seen)
  item in training, counting an item followed by itself (repeats stay, per the
  session-rec protocol); ties and unseen transitions fall back to popularity.

Both are fitted from the training windows' counted (input, target) pairs, so they see
exactly the training events the model sees. Scores are float64: integer counts plus a
popularity tie-break in [0, 0.5), so ties never make a baseline look better than it is.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

PAD_INDEX, UNKNOWN_INDEX = 0, 1


def _tie_break(counts: np.ndarray) -> np.ndarray:
    """A value in [0, 0.5) that orders items by popularity, then by index (deterministic)."""
    order = np.lexsort((np.arange(len(counts)), counts))  # ascending popularity
    tb = np.empty(len(counts), dtype=np.float64)
    tb[order] = np.arange(len(counts)) / (2.0 * len(counts))
    return tb


def training_pairs(batches: Iterable[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(previous item, next item) for every counted training target."""
    src, dst = [], []
    for b in batches:
        mask = np.asarray(b["target_mask"]) > 0
        src.append(np.asarray(b["input_items"])[mask])
        dst.append(np.asarray(b["target_items"])[mask])
    if not src:
        raise ValueError("no training windows: cannot fit baselines on an empty train split")
    return np.concatenate(src).astype(np.int64), np.concatenate(dst).astype(np.int64)


class PopularityBaseline:
    def __init__(self, num_items: int, targets: np.ndarray):
        counts = np.bincount(targets, minlength=num_items).astype(np.float64)
        self.scores = counts + _tie_break(counts)
        self.scores[[PAD_INDEX, UNKNOWN_INDEX]] = -np.inf

    def __call__(self, batch, rows, positions):
        return np.broadcast_to(self.scores, (len(rows), len(self.scores)))


class TransitionBaseline:
    def __init__(self, num_items: int, src: np.ndarray, dst: np.ndarray):
        self.num_items = num_items
        pop = np.bincount(dst, minlength=num_items).astype(np.float64)
        self.base = _tie_break(pop)
        self.base[[PAD_INDEX, UNKNOWN_INDEX]] = -np.inf
        key = src * num_items + dst
        uniq, counts = np.unique(key, return_counts=True)
        self.src = uniq // num_items
        self.dst = uniq % num_items
        self.counts = counts.astype(np.float64)
        self.indptr = np.searchsorted(self.src, np.arange(num_items + 1))

    def __call__(self, batch, rows, positions):
        last = np.asarray(batch["input_items"])[rows, positions].astype(np.int64)
        scores = np.tile(self.base, (len(rows), 1))
        starts, ends = self.indptr[last], self.indptr[last + 1]
        lens = ends - starts
        if lens.sum():
            row_idx = np.repeat(np.arange(len(rows)), lens)
            offs = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
            pos = np.repeat(starts, lens) + offs
            scores[row_idx, self.dst[pos]] += self.counts[pos]
        return scores
