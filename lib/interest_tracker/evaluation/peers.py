"""Published session-rec top-N lists ("peer recommendations"), scored by our evaluator.

session-rec wrote one row per prediction point: ``SessionId;Position;Recommendations;
Scores``. The list at ``Position`` p was made after seeing items 1..p+1 of the session
(1-based) and predicts item p+2, i.e. the event with 0-based index p+1. Our harness
keys a point by (user_id, 0-based index of the target event), so a peer point is
``(str(SessionId), Position + 1)`` and the two can be compared on the same points.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .metrics import DEFAULT_KS, RankingMetrics, ranks_from_lists


def load_peer_lists(path: str | Path) -> pd.DataFrame:
    """Columns: SessionId (int), Position (int), recommendations (list of int item ids)."""
    df = pd.read_csv(path, sep=";", dtype={"SessionId": np.int64, "Position": np.int64,
                                           "Recommendations": str, "Scores": str})
    missing = {"SessionId", "Position", "Recommendations"} - set(df.columns)
    if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)}; expected SessionId;Position;Recommendations;Scores")
    df["recommendations"] = df["Recommendations"].fillna("").map(
        lambda s: [int(x) for x in s.split(",") if x])
    return df[["SessionId", "Position", "recommendations"]]


def session_items(events: pd.DataFrame) -> dict[int, np.ndarray]:
    """SessionId -> item ids in time order (stable for equal times), from a session-rec TSV frame."""
    ev = events.reset_index(drop=True)
    ev = ev.assign(_o=np.arange(len(ev))).sort_values(["SessionId", "Time", "_o"], kind="stable")
    return {int(s): g["ItemId"].to_numpy(np.int64) for s, g in ev.groupby("SessionId", sort=False)}


def score_peer_lists(peers: pd.DataFrame, sessions: dict[int, np.ndarray], ks=DEFAULT_KS) -> tuple[dict, dict]:
    """Metrics of a peer's lists and ``{point_key: rank}``; a point whose target is outside the
    session (a malformed row) raises instead of being skipped."""
    targets, lists, keys = [], [], []
    for sid, pos, recs in peers.itertuples(index=False):
        items = sessions.get(int(sid))
        if items is None or pos + 1 >= len(items):
            raise ValueError(f"peer row SessionId={sid} Position={pos} has no target in the test events; "
                             "is this the matching test file?")
        targets.append(int(items[pos + 1]))
        lists.append(recs)
        keys.append((str(sid), int(pos) + 1))
    ranks = ranks_from_lists(lists, targets)
    m = RankingMetrics(ks=tuple(ks))
    m.add(ranks)
    return m.result(), dict(zip(keys, ranks.tolist()))
