"""MovieLens ratings -> raw event contract, and a MovieLens-format sample maker.

Formats: ``u.data`` (ML-100K: ``user<TAB>item<TAB>rating<TAB>timestamp``, no header),
``ratings.csv`` (ML-latest / ML-25M: header ``userId,movieId,rating,timestamp``) and
``ratings.dat`` (ML-1M: ``user::item::rating::timestamp``).

A rating is not one of the configured event types, and inventing types per rating
would make the model learn our mapping, so every rating becomes one event of
``event_type`` (default "view") and the rating is kept, as written in the source,
in ``attributes``: ``{"rating":"4"}``.

No MovieLens file is available offline, so :func:`make_movielens_sample` writes a
u.data-style file from the synthetic generator for demos and docs.
"""
from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from .lines import read_lines, split_to_raw

#: format name -> (separator regex, header line to drop or None)
MOVIELENS_FORMATS = {
    "u.data": ("\t", None),
    "ratings.csv": (",", "userId,movieId,rating,timestamp"),
    "ratings.dat": ("::", None),
}
#: ML-100K's rating distribution (1..5), used by the sample maker.
RATING_WEIGHTS = {"1": 0.06, "2": 0.11, "3": 0.27, "4": 0.34, "5": 0.22}


def read_movielens(spark: SparkSession, url: str, fmt: str = "u.data", event_type: str = "view") -> DataFrame:
    """Raw-contract rows of MovieLens ratings at ``url`` in format ``fmt``."""
    if fmt not in MOVIELENS_FORMATS:
        raise ValueError(f"unknown MovieLens format {fmt!r}; use one of {sorted(MOVIELENS_FORMATS)}")
    separator, header = MOVIELENS_FORMATS[fmt]
    lines = read_lines(spark, url, skip_line=header)
    return split_to_raw(lines, separator, 4, lambda f: {
        "user_id": f(0),
        "item_id": f(1),
        "event_type": F.lit(event_type),
        "event_time": f(3),
        "attributes": F.to_json(F.struct(f(2).alias("rating"))),
    })


def make_movielens_sample(spark: SparkSession, url: str, num_ratings: int = 5000, seed: int = 7,
                          end_time: str = "2026-11-27T23:59:59Z") -> int:
    """Write a u.data-style file (``<url>/u.data``) of at most ``num_ratings`` synthetic
    ratings; returns the number written. One rating per (user, item), the first time
    the synthetic user met the item; ids are numbers from 1 as in MovieLens.

    Times end at ``end_time``, not in 1997-98 like the real ML-100K: the cleaner rejects
    times before 2000-01-01 (see docs/real-data.md)."""
    from ..synthetic import SyntheticConfig, generate
    from ..synthetic.random_columns import pick, uniform
    from ..synthetic.writers import write_text_file

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
