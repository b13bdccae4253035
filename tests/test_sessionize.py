"""Sessionization edge cases, all through window functions."""
from pyspark.sql import functions as F

from interest_tracker.prepare.config import SessionConfig
from interest_tracker.prepare.sessionize import sessionize, sessions_table

from stage1_helpers import T0, clean_events_df

GAP = 30 * 60


def _session_numbers(df):
    """user -> list of session index (0-based, in time order) per event, in event order."""
    rows = df.select("user_id", "event_time", "event_id", "session_id").orderBy("user_id", "event_time", "event_id").collect()
    out, seen = {}, {}
    for r in rows:
        ids = seen.setdefault(r.user_id, [])
        if r.session_id not in ids:
            ids.append(r.session_id)
        out.setdefault(r.user_id, []).append(ids.index(r.session_id))
    return out


def test_gap_exactly_at_threshold_stays_in_session(spark):
    rows = [("u", "a", T0), ("u", "b", T0 + GAP), ("u", "c", T0 + 2 * GAP + 0.001)]
    got = _session_numbers(sessionize(clean_events_df(spark, rows), SessionConfig(gap_minutes=30)))
    assert got["u"] == [0, 0, 1]  # == threshold: same session; threshold + 1 ms: new session


def test_out_of_order_input_is_ordered_by_time(spark):
    rows = [("u", "c", T0 + 5000), ("u", "a", T0), ("u", "b", T0 + 60)]
    df = sessionize(clean_events_df(spark, rows), SessionConfig())
    got = df.orderBy("event_time").select("item_id", "session_start").collect()
    assert [(r.item_id, r.session_start) for r in got] == [("a", True), ("b", False), ("c", True)]


def test_equal_timestamps_are_deterministic_and_one_session(spark):
    rows = [("u", item, T0) for item in "edcba"]
    a = sessionize(clean_events_df(spark, rows), SessionConfig()).orderBy("event_id").collect()
    b = sessionize(clean_events_df(spark, list(reversed(rows))).repartition(3), SessionConfig()).orderBy("event_id").collect()
    assert [r.session_id for r in a] == [r.session_id for r in b]
    assert len({r.session_id for r in a}) == 1
    assert sum(r.session_start for r in a) == 1


def test_single_event_user(spark):
    df = sessionize(clean_events_df(spark, [("solo", "x", T0)]), SessionConfig())
    s = sessions_table(df).collect()
    assert len(s) == 1 and s[0].event_count == 1 and s[0].duration_s == 0.0
    assert s[0].session_id == f"solo:{T0 * 1000}:1"


def test_caps_on_length_and_duration(spark):
    # 7 events 1 minute apart; max 3 events -> 3 + 3 + 1
    rows = [("u", f"i{k}", T0 + 60 * k) for k in range(7)]
    got = _session_numbers(sessionize(clean_events_df(spark, rows), SessionConfig(max_events=3)))
    assert got["u"] == [0, 0, 0, 1, 1, 1, 2]
    # events every 20 min for 2 h, max duration 60 min -> cut at 60 and 120 min after start
    rows = [("v", f"i{k}", T0 + 1200 * k) for k in range(7)]
    got = _session_numbers(sessionize(clean_events_df(spark, rows), SessionConfig(max_duration_minutes=60)))
    assert got["v"] == [0, 0, 0, 1, 1, 1, 2]


def test_input_session_change_starts_a_session(spark):
    rows = [("u", "a", T0, "view", "s1"), ("u", "b", T0 + 10, "view", "s1"), ("u", "c", T0 + 20, "view", "s2")]
    df = clean_events_df(spark, rows)
    assert _session_numbers(sessionize(df, SessionConfig()))["u"] == [0, 0, 1]
    assert _session_numbers(sessionize(df, SessionConfig(respect_input_sessions=False)))["u"] == [0, 0, 0]


def test_user_with_a_million_events(spark):
    """One heavy user must not need to fit in one task's memory as a Python object."""
    n = 1_000_000
    # an event every 10 s, with a 2 h pause after every 1000th event -> 1000 sessions
    ev = (spark.range(n).select(
        F.lit("heavy").alias("user_id"),
        (F.col("id") % 5000).cast("string").alias("item_id"),
        F.lit("view").alias("event_type"),
        F.lit(None).cast("string").alias("input_session_id"),
        F.expr(f"timestamp_seconds({T0} + id * 10 + floor(id / 1000) * 7200)").alias("event_time"),
        F.col("id").cast("string").alias("event_id"),
    ))
    s = sessions_table(sessionize(ev, SessionConfig(max_events=100_000))).agg(
        F.count(F.lit(1)), F.sum("event_count"), F.min("event_count"), F.max("event_count")).first()
    assert tuple(s) == (1000, n, 1000, 1000)
