"""Parse and validate raw rows. Every failing row gets exactly one reason code.

Reasons are checked in a fixed order, and the first that applies wins, so the counts
per reason are deterministic and add up to the number of rejected rows:

MALFORMED > MISSING_FIELD > OVERSIZED_FIELD > BAD_TIME > TIME_OUT_OF_WINDOW > UNKNOWN_EVENT_TYPE
"""
from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from .config import CleaningConfig, parse_utc

MALFORMED = "MALFORMED"
MISSING_FIELD = "MISSING_FIELD"
OVERSIZED_FIELD = "OVERSIZED_FIELD"
BAD_TIME = "BAD_TIME"
TIME_OUT_OF_WINDOW = "TIME_OUT_OF_WINDOW"
UNKNOWN_EVENT_TYPE = "UNKNOWN_EVENT_TYPE"
LOW_SUPPORT_ITEM = "LOW_SUPPORT_ITEM"
LOW_SUPPORT_USER = "LOW_SUPPORT_USER"
REJECT_REASONS = (MALFORMED, MISSING_FIELD, OVERSIZED_FIELD, BAD_TIME, TIME_OUT_OF_WINDOW,
                  UNKNOWN_EVENT_TYPE, LOW_SUPPORT_ITEM, LOW_SUPPORT_USER)

REQUIRED = ("user_id", "item_id", "event_type", "event_time")
ID_FIELDS = ("user_id", "item_id", "event_type", "event_time", "session_id")

# ISO-8601 with a mandatory zone. A naive local time cannot be placed in UTC, so it is
# BAD_TIME rather than silently read in the cluster's zone.
ISO_WITH_ZONE = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}(:?\d{2})?)$"


def _blank(c: Column) -> Column:
    return c.isNull() | (F.length(F.trim(c)) == 0)


def parse_event_time(raw: Column, epoch_unit: str = "auto") -> Column:
    """Raw time text -> UTC timestamp, or null when unparsable.

    Numbers are epoch seconds (fractions kept to the microsecond) or milliseconds;
    text must be ISO-8601 with a zone. NaN and infinities are unparsable.
    """
    num = F.expr(f"try_cast({_sql(raw)} AS double)")
    finite = num.isNotNull() & ~F.isnan(num) & (F.abs(num) < F.lit(1e16))
    if epoch_unit == "s":
        seconds = num
    elif epoch_unit == "ms":
        seconds = num / 1000.0
    else:
        seconds = F.when(F.abs(num) >= 1e11, num / 1000.0).otherwise(num)
    from_number = F.expr(f"timestamp_micros(CAST(ROUND(({_sql(seconds)}) * 1000000) AS BIGINT))")
    from_text = F.when(F.trim(raw).rlike(ISO_WITH_ZONE), F.expr(f"try_cast(trim({_sql(raw)}) AS timestamp)"))
    return F.when(finite, from_number).otherwise(from_text)


def _sql(c: Column) -> str:
    # Column -> SQL text for use inside F.expr (try_cast has no Column API before Spark 4).
    return c._jc.expr().sql()  # noqa: SLF001


def validate(raw: DataFrame, cfg: CleaningConfig, run_date: dt.date) -> DataFrame:
    """Add ``event_time_utc``, ``reject_reason`` and ``reject_detail`` to raw rows.

    Input: the raw contract columns plus ``malformed`` and ``raw_record`` (see
    :func:`interest_tracker.io.read_raw`). Ids are trimmed and event types lower-cased,
    because whitespace and case differences in ids are ingestion artefacts.
    """
    min_time = parse_utc(cfg.min_event_time, "cleaning.min_event_time")
    max_time = dt.datetime.combine(run_date + dt.timedelta(days=1), dt.time(), dt.timezone.utc) + dt.timedelta(
        days=cfg.max_future_days)
    names = [e.name for e in cfg.event_types]

    df = raw.select(
        F.trim("user_id").alias("user_id"),
        F.trim("item_id").alias("item_id"),
        F.lower(F.trim("event_type")).alias("event_type"),
        F.trim("event_time").alias("event_time_raw"),
        F.trim("session_id").alias("session_id"),
        "attributes", "malformed", "raw_record",
    ).withColumn("event_time", parse_event_time(F.col("event_time_raw"), cfg.epoch_unit))

    missing = [F.when(_blank(F.col(c if c != "event_time" else "event_time_raw")), F.lit(c)) for c in REQUIRED]
    oversized = [F.when(F.length(F.col(c if c != "event_time" else "event_time_raw")) > cfg.max_field_length, F.lit(c))
                 for c in ID_FIELDS]
    oversized.append(F.when(F.length("attributes") > cfg.max_attributes_length, F.lit("attributes")))
    missing_field = F.coalesce(*missing)
    oversized_field = F.coalesce(*oversized)
    lo = F.lit(min_time.strftime("%Y-%m-%d %H:%M:%S")).cast("timestamp")
    hi = F.lit(max_time.strftime("%Y-%m-%d %H:%M:%S")).cast("timestamp")

    reason = (
        F.when(F.col("malformed"), F.lit(MALFORMED))
        .when(missing_field.isNotNull(), F.lit(MISSING_FIELD))
        .when(oversized_field.isNotNull(), F.lit(OVERSIZED_FIELD))
        .when(F.col("event_time").isNull(), F.lit(BAD_TIME))
        .when((F.col("event_time") < lo) | (F.col("event_time") >= hi), F.lit(TIME_OUT_OF_WINDOW))
        .when(~F.col("event_type").isin(names), F.lit(UNKNOWN_EVENT_TYPE))
    )
    detail = (
        F.when(F.col("malformed"), F.lit("record does not parse as the input format"))
        .when(missing_field.isNotNull(), F.concat(F.lit("missing or empty: "), missing_field))
        .when(oversized_field.isNotNull(), F.concat(F.lit("too long: "), oversized_field))
        .when(F.col("event_time").isNull(),
              F.concat(F.lit("unparsable event_time (need epoch s/ms or ISO-8601 with zone): "),
                       F.substring("event_time_raw", 1, 64)))
        .when((F.col("event_time") < lo) | (F.col("event_time") >= hi),
              F.concat(F.lit(f"event_time outside [{min_time.isoformat()}, {max_time.isoformat()}): "),
                       F.col("event_time").cast("string")))
        .when(~F.col("event_type").isin(names),
              F.concat(F.lit(f"event_type not in {names}: "), F.substring("event_type", 1, 64)))
    )
    return df.withColumn("reject_reason", reason).withColumn("reject_detail", detail)


def with_event_weights(valid: DataFrame, cfg: CleaningConfig) -> DataFrame:
    """Add ``event_weight`` from the configured event types."""
    weight = F.lit(None).cast("double")
    for e in reversed(cfg.event_types):
        weight = F.when(F.col("event_type") == e.name, F.lit(float(e.weight))).otherwise(weight)
    return valid.withColumn("event_weight", weight)


def with_event_id(valid: DataFrame) -> DataFrame:
    """Stable id of an event: sha-256 of (user, item, type, time in micros)."""
    return valid.withColumn(
        "event_id",
        F.sha2(F.concat_ws("\u0001", "user_id", "item_id", "event_type",
                           F.expr("CAST(unix_micros(event_time) AS STRING)")), 256),
    )


# --------------------------------------------------------------------------- evidence
# The rejected and quarantine tables keep the offending record, but a record can hold
# anything: bytes that are not UTF-8, NULs, a 10 MB field. Written as is, a string
# column with invalid UTF-8 makes the whole Parquet file unreadable for DuckDB (and
# for any reader that validates), so the evidence is kept in a form every reader takes.
EVIDENCE_MAX_CHARS = 65_536


def safe_text(c: Column) -> Column:
    """Valid UTF-8 rendering of a string: invalid byte sequences become U+FFFD, NUL the text ``\\u0000``.

    Spark strings are byte arrays that need not be valid UTF-8; ``encode`` goes through
    a Java string, which replaces what does not decode.
    """
    return F.regexp_replace(F.decode(F.encode(c, "UTF-8"), "UTF-8"), "\u0000", "\\\\u0000")


def evidence_columns(record: Column, max_chars: int = EVIDENCE_MAX_CHARS) -> list[Column]:
    """``raw_record`` (safe text, at most ``max_chars``), ``raw_record_bytes``, ``raw_record_length``, ``raw_record_sha256``.

    ``raw_record`` is the record itself whenever ``raw_record_bytes`` is null (the record
    was valid UTF-8 without NULs) and ``raw_record_sha256`` is null (not truncated).
    Otherwise ``raw_record_bytes`` keeps the original bytes (first ``max_chars``), and
    ``raw_record_length`` (bytes) and ``raw_record_sha256`` (of all the original bytes)
    identify what was cut.
    """
    text = safe_text(record)
    raw = record.cast("binary")
    altered = text != record
    truncated = (F.length(text) > max_chars) | (F.octet_length(record) > max_chars)
    return [
        F.substring(text, 1, max_chars).alias("raw_record"),
        F.when(altered, F.substring(raw, 1, max_chars)).alias("raw_record_bytes"),
        F.octet_length(record).cast("long").alias("raw_record_length"),
        F.when(truncated, F.sha2(raw, 256)).alias("raw_record_sha256"),
    ]
