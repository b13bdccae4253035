"""Optional minimum-support filters: rare items and users with too few events.

Filtered rows are not dropped: they are tagged and end up in the rejected table with
LOW_SUPPORT_ITEM or LOW_SUPPORT_USER, so input rows still reconcile exactly.
"""
from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from .clean import LOW_SUPPORT_ITEM, LOW_SUPPORT_USER
from .config import CleaningConfig


def tag_low_support(events: DataFrame, cfg: CleaningConfig) -> DataFrame:
    """Add ``support_reason``: LOW_SUPPORT_ITEM, then LOW_SUPPORT_USER (counted after the item filter)."""
    df = events.withColumn("support_reason", F.lit(None).cast("string"))
    if cfg.min_item_support:
        item_count = F.count(F.lit(1)).over(Window.partitionBy("item_id"))
        df = df.withColumn("support_reason", F.when(item_count < cfg.min_item_support, F.lit(LOW_SUPPORT_ITEM)))
    if cfg.min_user_events:
        kept = F.sum(F.col("support_reason").isNull().cast("long")).over(Window.partitionBy("user_id"))
        df = df.withColumn(
            "support_reason",
            F.when(F.col("support_reason").isNotNull(), F.col("support_reason"))
            .when(kept < cfg.min_user_events, F.lit(LOW_SUPPORT_USER)),
        )
    return df
