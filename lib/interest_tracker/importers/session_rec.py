"""session-rec / GRU4Rec TSV (``SessionId<TAB>ItemId<TAB>Time``) -> raw event contract.

These logs have no user ids; as the data README says, each session is treated as a
user with one session: user_id = session_id = SessionId. Every event is a "click".
``Time`` (epoch seconds with a fraction) is kept as its original text, so no
precision is lost before the cleaner parses it.
"""
from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from .lines import read_lines, split_to_raw

SESSION_REC_HEADER = "SessionId\tItemId\tTime"


def read_session_rec(spark: SparkSession, url: str, event_type: str = "click") -> DataFrame:
    """Raw-contract rows of session-rec TSV files at ``url``; header lines are dropped."""
    lines = read_lines(spark, url, skip_line=SESSION_REC_HEADER)
    return split_to_raw(lines, "\t", 3, lambda f: {
        "user_id": f(0),
        "item_id": f(1),
        "event_type": F.lit(event_type),
        "event_time": f(2),
        "session_id": f(0),
    })
