"""A MovieLens-format (``u.data``) sample made from the synthetic generator, for demos and docs.

No MovieLens file is available offline; this writes one in the ML-100K layout so the
MovieLens importer (``importers/movielens.py``) can be tried end to end. It lives with
the generator: production code never imports it.
"""
from __future__ import annotations

from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F

from .config import SyntheticConfig
from .generator import generate
from .random_columns import pick, uniform
from .writers import write_text_file

#: ML-100K's rating distribution (1..5).
RATING_WEIGHTS = {"1": 0.06, "2": 0.11, "3": 0.27, "4": 0.34, "5": 0.22}


def make_movielens_sample(spark: SparkSession, url: str, num_ratings: int = 5000, seed: int = 7,
                          end_time: str = "2026-11-27T23:59:59Z") -> int:
    """Write a u.data-style file (``<url>/u.data``) of at most ``num_ratings`` synthetic
    ratings; returns the number written. One rating per (user, item), the first time
    the synthetic user met the item; ids are numbers from 1 as in MovieLens.

    Times end at ``end_time``, not in 1997-98 like the real ML-100K: the cleaner rejects
    times before 2000-01-01 (see docs/real-data.md)."""
    if num_ratings < 1:
        raise ValueError(f"num_ratings must be >= 1, got {num_ratings}; pass --make-movielens-sample N with N >= 1")
    num_users = num_ratings // 15 + 1  # ~60 events, ~30 distinct items each: enough to fill num_ratings
    cfg = SyntheticConfig(num_users=num_users, num_items=max(200, num_ratings // 5), num_categories=18,
                          events_per_user=60, min_events_per_user=20, max_events_per_user=300,
                          end_time=end_time, between_gap_max_s=86400.0, seed=seed)
    truth = generate(spark, cfg).event_truth
    first = Window.partitionBy("user_id", "item_id").orderBy("event_index")
    ratings = (truth.withColumn("k", F.row_number().over(first)).where("k = 1")
               .select((F.substring("user_id", 2, 12).cast("int") + 1).alias("user"),
                       (F.substring("item_id", 2, 12).cast("int") + 1).alias("item"),
                       pick(uniform(seed, "rating", "user_id", "item_id"), RATING_WEIGHTS).alias("rating"),
                       F.unix_timestamp("event_time").alias("ts"))
               .orderBy("user", "ts", "item").limit(num_ratings))
    rows = ratings.collect()
    text = "".join(f"{r.user}\t{r.item}\t{r.rating}\t{r.ts}\n" for r in rows)
    write_text_file(spark, f"{url.rstrip('/')}/u.data", text)
    return len(rows)
