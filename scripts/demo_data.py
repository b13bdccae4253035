"""Demo only: cut one synthetic history into two daily log drops, and name the item categories.

    spark-submit scripts/demo_data.py SYNTHETIC_DIR DAY2

Why: the demo shows interests moving from one day to the next, so it needs the logs of
two consecutive days of the SAME users and catalogue. The generator writes one history
that ends on DAY2 (with known interest switches in ``ground_truth/``); a log shipper
would deliver it as one folder per day. This script does that cut:

* ``SYNTHETIC_DIR/landing/day=DAY1/``: every raw line whose event time is before DAY2
  00:00 UTC, plus the lines with no readable time (malformed, bad time, missing field),
  so stage 1 of day 1 still meets every kind of fault;
* ``SYNTHETIC_DIR/landing/day=DAY2/``: the lines of DAY2 (and any later, out-of-window ones).

Times are read with stage 1's own parser (``prepare.clean.parse_event_time``), so the cut
agrees with what stage 1 will see. The line counts of both drops add up to the input's,
which the script checks.

It also writes ``SYNTHETIC_DIR/item_categories/`` (item_id, category as text ``c07``) from
the generator's catalogue: scoring (``item_categories_path``) and the report use it for the
top recommended category, which is how the demo shows an interest switch.
"""
from __future__ import annotations

import datetime as dt
import logging
import sys
import time

from pyspark.sql import functions as F

from interest_tracker.logs import setup_logging
from interest_tracker.prepare.clean import parse_event_time
from interest_tracker.spark import get_session

log = logging.getLogger("demo_data")


def main(root: str, day2: dt.date) -> None:
    setup_logging("INFO")
    t0 = time.perf_counter()
    spark = get_session("interest-tracker-demo-data")
    root = root.rstrip("/")
    lines = spark.read.text(f"{root}/raw")
    cut = dt.datetime.combine(day2, dt.time(0, 0), tzinfo=dt.timezone.utc)
    when = parse_event_time(F.get_json_object("value", "$.event_time"))
    tagged = lines.select("value", F.when(when >= F.lit(cut), F.lit(2)).otherwise(F.lit(1)).alias("day")).cache()
    per_day = {r["day"]: r["n"] for r in tagged.groupBy("day").agg(F.count(F.lit(1)).alias("n")).collect()}
    total = lines.count()
    if sum(per_day.values()) != total:
        raise RuntimeError(f"the cut lost lines: {per_day} from {total}; this is a bug")
    for day, name in ((1, day2 - dt.timedelta(days=1)), (2, day2)):
        tagged.where(F.col("day") == day).select("value").coalesce(2).write.mode("overwrite") \
            .text(f"{root}/landing/day={name.isoformat()}")
    categories = spark.read.parquet(f"{root}/items").select(
        "item_id", F.format_string("c%02d", F.col("category")).alias("category"))
    categories.coalesce(1).write.mode("overwrite").parquet(f"{root}/item_categories")
    log.info("cut %d raw lines into day %s: %d and day %s: %d (%s/landing), item categories written, %.1f s",
             total, day2 - dt.timedelta(days=1), per_day.get(1, 0), day2, per_day.get(2, 0), root,
             time.perf_counter() - t0)


if __name__ == "__main__":
    main(sys.argv[1], dt.date.fromisoformat(sys.argv[2]))
