"""Per-event model features, shared by sequence building (stage 1) and scoring (stage 3).

Both stages must compute identical inputs for the model, so this is the one definition:
the item index from the vocabulary, the event-type index, log1p of the gap to the
user's previous event, the session-start flag, and the event's position in the user's
history (the canonical order of :mod:`.ordering`).

Stage 1's session pass (:mod:`.session_arrays`) computes ``pos``, ``log_gap`` and
``session_start`` for the run's own events as it numbers the sessions, by the same
definitions; ``precomputed=True`` uses those and skips the window, whose shuffle and sort
of every event were most of what cutting the windows cost (issue 10).
"""
from __future__ import annotations

from typing import Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from .ordering import user_window, with_event_us
from .vocabulary import UNKNOWN_INDEX


def event_type_index(event_types: Sequence[str]):
    """Column: 1-based index of ``event_type`` in ``event_types`` (0 = padding, never produced)."""
    col = F.lit(None).cast("int")
    for i, name in reversed(list(enumerate(event_types, start=1))):
        col = F.when(F.col("event_type") == name, F.lit(i)).otherwise(col)
    return col


PASS_FEATURES = ("pos", "log_gap", "session_start")
"""The features that only look back along a user's history (the session pass computes them)."""


def with_sequence_features(events: DataFrame, vocabulary: DataFrame, event_types: Sequence[str],
                           broadcast_vocabulary: bool = True, precomputed: bool = False) -> DataFrame:
    """Add item_index, event_type_index, log_gap, session_start (0/1) and pos to clean events.

    ``events`` has the clean_events columns; ``vocabulary`` has item_id and item_index.
    Items missing from the vocabulary map to the unknown index 1. The vocabulary is
    broadcast by default so the user partitioning of ``events`` is kept (no shuffle).
    With ``precomputed``, ``events`` are whole histories that already carry
    :data:`PASS_FEATURES` (from ``sessionize.sessionize``): only the lookups are added, and
    the rows keep their partitions and order.
    """
    vocab = vocabulary.select("item_id", "item_index")
    if broadcast_vocabulary:
        vocab = F.broadcast(vocab)
    if precomputed:
        missing = [c for c in PASS_FEATURES if c not in events.columns]
        if missing:
            raise ValueError(f"precomputed features need the session pass's columns {missing}")
        return (events.join(vocab, "item_id", "left")
                .withColumn("item_index", F.coalesce(F.col("item_index"), F.lit(UNKNOWN_INDEX)).cast("int"))
                .withColumn("event_type_index", event_type_index(event_types))
                .withColumn("log_gap", F.col("log_gap").cast("float"))
                .withColumn("session_start", F.col("session_start").cast("int"))
                .withColumn("pos", F.col("pos").cast("long")))
    events = events.drop(*PASS_FEATURES)
    by_user = user_window()
    us = F.col("event_us")
    prev_us = F.lag(us).over(by_user)
    prev_session = F.lag("session_id").over(by_user)
    return (
        with_event_us(events).join(vocab, "item_id", "left")
        .withColumn("item_index", F.coalesce(F.col("item_index"), F.lit(UNKNOWN_INDEX)).cast("int"))
        .withColumn("event_type_index", event_type_index(event_types))
        .withColumn("log_gap",
                    F.when(prev_us.isNull(), F.lit(0.0))
                    .otherwise(F.log1p(F.greatest(us - prev_us, F.lit(0)) / F.lit(1e6))).cast("float"))
        .withColumn("session_start", F.when(prev_session.isNull() | (prev_session != F.col("session_id")), 1)
                    .otherwise(0).cast("int"))
        .withColumn("pos", (F.row_number().over(by_user) - 1).cast("long"))
    )
