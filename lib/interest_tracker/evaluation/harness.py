"""One evaluation harness for the model and the baselines.

A *scorer* maps a batch of prediction points to scores over the whole catalog:
``scorer(batch, rows, positions) -> (n, num_items)`` where ``rows``/``positions`` index
the counted targets (``target_mask == 1``) of the window batch. The harness turns scores
into target ranks batch by batch (never users x items) and accumulates the metrics, so
the model and the baselines are measured by exactly the same code.
"""
from __future__ import annotations

from typing import Callable, Iterable

import numpy as np

from .metrics import DEFAULT_KS, RankingMetrics, ranks_of_targets

Scorer = Callable[[dict, np.ndarray, np.ndarray], object]


def prediction_points(batch: dict) -> tuple[np.ndarray, np.ndarray]:
    """(rows, positions) of the counted targets of a window batch."""
    mask = np.asarray(batch["target_mask"]) > 0
    rows, positions = np.nonzero(mask)
    return rows, positions


def point_keys(batch: dict, rows: np.ndarray, positions: np.ndarray, stride: int) -> list[tuple[str, int]]:
    """(user_id, index of the target event in the user's sequence) for each point.

    Window ``'<user_id>:<k>'`` starts at event ``k * stride``, so the target at position
    ``j`` is event ``k * stride + j + 1`` (0-based).
    """
    out = []
    wids = batch["window_id"]
    for r, p in zip(rows, positions):
        uid, k = str(wids[r]).rsplit(":", 1)
        out.append((uid, int(k) * stride + int(p) + 1))
    return out


def evaluate(scorer: Scorer, batches: Iterable[dict], ks=DEFAULT_KS, stride: int | None = None,
             keep: set | None = None, max_points: int = 512) -> tuple[dict, dict]:
    """Metrics of ``scorer`` over all counted targets of ``batches``.

    With ``stride`` given, also returns ``{point_key: rank}`` (used to compare with peer
    lists on a subset); ``keep`` restricts the evaluation to those point keys. Points are
    scored ``max_points`` at a time, so memory is ``max_points x num_items``.
    """
    metrics = RankingMetrics(ks=tuple(ks))
    per_point: dict = {}
    for batch in batches:
        rows, positions = prediction_points(batch)
        if keep is not None:
            keys = point_keys(batch, rows, positions, stride)
            sel = np.array([k in keep for k in keys], dtype=bool)
            rows, positions = rows[sel], positions[sel]
        if len(rows) == 0:
            continue
        prepare = getattr(scorer, "prepare", None)
        if prepare is not None:
            prepare(batch)
        for s in range(0, len(rows), max_points):
            r, p = rows[s:s + max_points], positions[s:s + max_points]
            targets = np.asarray(batch["target_items"])[r, p]
            scores = scorer(batch, r, p)
            ranks = ranks_of_targets(scores, _like(scores, targets))
            metrics.add(ranks)
            if stride is not None:
                per_point.update(zip(point_keys(batch, r, p, stride), ranks.tolist()))
    return metrics.result(), per_point


def _like(scores, targets):
    try:
        import torch

        if isinstance(scores, torch.Tensor):
            return torch.as_tensor(targets, dtype=torch.long, device=scores.device)
    except ImportError:  # pragma: no cover
        pass
    return targets


def encode_windows(model, batch, device):
    """The model's state at every position of a window batch (no gradient); shared by every
    harness scorer that runs the model, so they all see the same inputs."""
    import torch

    with torch.no_grad():
        t = {k: torch.as_tensor(np.array(batch[k]), device=device) for k in
             ("input_items", "input_event_types", "input_log_gaps", "input_session_starts")}
        return model(t["input_items"].long(), t["input_event_types"].long(),
                     t["input_log_gaps"].float(), t["input_session_starts"].float())


class ModelScorer:
    """Scores from the model's interest vector at each point (one forward per window batch)."""

    def __init__(self, model, device: str = "cpu"):
        self.model, self.device, self.states = model, device, None

    def prepare(self, batch) -> None:
        self.states = encode_windows(self.model, batch, self.device)

    def __call__(self, batch, rows, positions):
        import torch

        with torch.no_grad():
            idx_r = torch.as_tensor(rows, device=self.device)
            idx_p = torch.as_tensor(positions, device=self.device)
            return self.model.score_all(self.states[idx_r, idx_p])


def model_scorer(model, device: str = "cpu") -> ModelScorer:
    return ModelScorer(model, device)
