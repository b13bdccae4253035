"""Exact duplicates and replays.

An *exact duplicate* repeats a whole record: the same event key (user, item, event
type, time, after trimming ids, lower-casing the type and parsing the time) and the same
session id and attributes. A *replay* repeats the event key with the session id or the
attributes changed, typically an upstream retry that re-stamped attributes. Of each key,
the first record in a fixed order is kept: the order of the records' JSON text
(``raw_record``), reproduced from the two fields that can differ (:func:`record_order`).

Why not the JSON text itself: the fields are already in every row, while serialising
each record to JSON cost about a tenth of stage 1 at 10M events (issue 10). ``raw_record``
is now built only for the rows whose evidence is kept (rejected and quarantined): once
nothing on the clean events' path reads it, Spark's column pruning drops it there. The
two orders agree except for records of one key whose fields hold characters that JSON
escapes, and records that differ only in the spelling of a key field (whitespace around
an id, the case of the type, another format of the same time), which were a replay until
2026-12-02 and are an exact duplicate now.

The window is partitioned by ``user_id`` and ordered by the canonical event order plus
those two columns (see :mod:`.ordering`), so the later per-user windows reuse this
shuffle and this sort.
"""
from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from .ordering import ORDER, with_event_us

EXACT = "exact"
REPLAY = "replay"
RECORD = ("input_session_id", "attributes")
"""The fields that tell an exact duplicate from a replay, and order a key's records."""


def record_order() -> list:
    """Sort keys that order one key's records as their JSON text did.

    The JSON ends ``[,"session_id":S][,"attributes":A]}``, a null field left out. Compared as
    text, ``,"attributes"`` comes before ``,"session_id"`` and both before the closing brace,
    so: records without a session id but with attributes first, then those with a session
    id (by id, then attributes, a record without them after), then records with neither.
    """
    session, attrs = F.col(RECORD[0]), F.col(RECORD[1])
    group = F.when(session.isNull() & attrs.isNotNull(), 0).when(session.isNotNull(), 1).otherwise(2)
    return [group, session.asc_nulls_first(), attrs.asc_nulls_last()]


def tag_duplicates(valid: DataFrame) -> DataFrame:
    """Add ``duplicate_kind``: null for the kept record, else 'exact' or 'replay'."""
    df = with_event_us(valid)
    w = Window.partitionBy("user_id").orderBy(*ORDER, *record_order())
    same_key = F.lit(True)
    for k in ORDER:
        same_key = same_key & (F.lag(k).over(w) == F.col(k))
    same_record = F.lit(True)
    for k in RECORD:
        same_record = same_record & F.lag(k).over(w).eqNullSafe(F.col(k))
    kind = (F.when(~F.coalesce(same_key, F.lit(False)), F.lit(None).cast("string"))
            .when(same_record, F.lit(EXACT))
            .otherwise(F.lit(REPLAY)))
    return df.withColumn("duplicate_kind", kind)
