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


def extend_vocabulary(events: DataFrame, previous: DataFrame | None, version: int) -> tuple[DataFrame, DataFrame]:
    """Return (vocabulary, the rows it adds) after appending the items ``events`` adds.

    ``previous`` is the latest vocabulary (or None on the first run); ``version`` is the
    version number new rows are stamped with. The added rows come back on their own so the
    caller, which owns I/O and caching, can count them and write the vocabulary from one
    cache and drop that cache when it is done (the run's events are read once for both).
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
    )
    vocab = added if previous is None else previous.unionByName(added)
    return vocab, added
