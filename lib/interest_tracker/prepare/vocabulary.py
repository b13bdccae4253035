"""Stable item vocabulary: item_id -> dense index, append-only across runs.

Index 0 is padding and 1 the unknown item, so a model trained on version N can still
embed any index of version N; new items get ``max + 1, ...`` in (first_seen, item_id)
order, which makes the assignment deterministic for a rerun with the same input. An
existing item never changes index, so embeddings stay aligned across retrains and the
scoring stage can map indexes back to the original string ids.
"""
from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

PAD_INDEX = 0
UNKNOWN_INDEX = 1
FIRST_ITEM_INDEX = 2


def extend_vocabulary(events: DataFrame, previous: DataFrame | None, version: int) -> tuple[DataFrame, int]:
    """Return (vocabulary, number of new items) after appending the items ``events`` adds.

    ``previous`` is the latest vocabulary (or None on the first run); ``version`` is the
    version number new rows are stamped with.
    """
    seen = events.groupBy("item_id").agg(F.min("event_time").alias("first_seen"))
    if previous is None:
        new = seen
        base = FIRST_ITEM_INDEX - 1
    else:
        new = seen.join(previous.select("item_id"), "item_id", "left_anti")
        base = previous.agg(F.max("item_index")).first()[0] or (FIRST_ITEM_INDEX - 1)
    # A global order is needed for dense indexes; only the *new* items go through it.
    order = Window.orderBy("first_seen", "item_id")
    added = new.select(
        "item_id",
        (F.row_number().over(order) + F.lit(base)).cast("int").alias("item_index"),
        "first_seen",
        F.lit(version).cast("int").alias("vocab_version"),
    ).persist()  # small (one row per new item); counted here and written by the caller from the cache
    n_new = added.count()
    vocab = added if previous is None else previous.unionByName(added)
    return vocab, n_new
