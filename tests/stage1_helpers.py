"""Small builders shared by the stage-1 tests."""
from __future__ import annotations

import datetime as dt

from pyspark.sql import functions as F

from interest_tracker.io import RAW_FIELDS

RUN_DATE = dt.date(2026, 11, 28)
T0 = 1764288000  # 2025-11-28T00:00:00Z, well inside the default time window


def raw_df(spark, rows):
    """Raw-contract rows (dicts; missing keys are null) -> the frame io.read_raw returns."""
    data = [tuple(None if r.get(f) is None else str(r.get(f)) for f in RAW_FIELDS) + (bool(r.get("_malformed", False)),)
            for r in rows]
    schema = ", ".join(f"{f} string" for f in RAW_FIELDS) + ", malformed boolean"
    df = spark.createDataFrame(data, schema)
    return df.withColumn("raw_record", F.to_json(F.struct(*RAW_FIELDS)))


def clean_events_df(spark, rows):
    """(user, item, epoch seconds[, event_type[, input_session_id]]) -> clean-event-like frame with event_id."""
    norm = []
    for r in rows:
        user, item, t = r[0], r[1], r[2]
        et = r[3] if len(r) > 3 else "view"
        sid = r[4] if len(r) > 4 else None
        norm.append((user, item, et, float(t), sid))
    df = spark.createDataFrame(norm, "user_id string, item_id string, event_type string, t double, input_session_id string")
    df = df.withColumn("event_time", F.expr("timestamp_micros(CAST(ROUND(t * 1000000) AS BIGINT))")).drop("t")
    return df.withColumn("event_id", F.sha2(F.concat_ws("|", "user_id", "item_id", "event_type",
                                                         F.expr("CAST(unix_micros(event_time) AS STRING)")), 256))
