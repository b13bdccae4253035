"""Exact duplicates and replays.

An *exact duplicate* repeats a whole record. A *replay* repeats the event key
(user, item, event type, time) with other fields changed, typically an upstream retry
that re-stamped attributes. The first record of each key (in a fixed order) is kept.

The window is partitioned by ``user_id`` only, the same partitioning sessionization uses,
so Spark shuffles the events once for dedupe, bot detection and sessions together.
"""
from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

EXACT = "exact"
REPLAY = "replay"
KEY = ("user_id", "item_id", "event_type", "event_time")


def tag_duplicates(valid: DataFrame) -> DataFrame:
    """Add ``duplicate_kind``: null for the kept record, else 'exact' or 'replay'."""
    w = Window.partitionBy("user_id").orderBy("event_time", "item_id", "event_type", "raw_record")
    same_key = F.lit(True)
    for k in KEY[1:]:
        same_key = same_key & (F.lag(k).over(w) == F.col(k))
    kind = (F.when(~F.coalesce(same_key, F.lit(False)), F.lit(None).cast("string"))
            .when(F.lag("raw_record").over(w) == F.col("raw_record"), F.lit(EXACT))
            .otherwise(F.lit(REPLAY)))
    return valid.withColumn("duplicate_kind", kind)
