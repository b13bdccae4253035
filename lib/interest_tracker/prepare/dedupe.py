"""Exact duplicates and replays.

An *exact duplicate* repeats a whole record. A *replay* repeats the event key
(user, item, event type, time) with other fields changed, typically an upstream retry
that re-stamped attributes. The first record of each key (in a fixed order) is kept.

The window is partitioned by ``user_id`` and ordered by the canonical event order plus
the record (see :mod:`.ordering`), so the later per-user windows reuse this shuffle and
this sort.
"""
from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from .ordering import ORDER, with_event_us

EXACT = "exact"
REPLAY = "replay"


def tag_duplicates(valid: DataFrame) -> DataFrame:
    """Add ``duplicate_kind``: null for the kept record, else 'exact' or 'replay'."""
    df = with_event_us(valid)
    w = Window.partitionBy("user_id").orderBy(*ORDER, "raw_record")
    same_key = F.lit(True)
    for k in ORDER:
        same_key = same_key & (F.lag(k).over(w) == F.col(k))
    kind = (F.when(~F.coalesce(same_key, F.lit(False)), F.lit(None).cast("string"))
            .when(F.lag("raw_record").over(w) == F.col("raw_record"), F.lit(EXACT))
            .otherwise(F.lit(REPLAY)))
    return df.withColumn("duplicate_kind", kind)
