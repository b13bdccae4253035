"""Validation: every reject reason, time parsing, and the reason precedence."""
import datetime as dt

import pytest

from interest_tracker.prepare import clean
from interest_tracker.prepare.config import CleaningConfig

from stage1_helpers import RUN_DATE, T0, raw_df


def _validate(spark, rows, **cfg):
    out = clean.validate(raw_df(spark, rows), CleaningConfig(**cfg), RUN_DATE)
    return {r["raw_record"]: r for r in out.collect()}, out


def test_time_formats_are_parsed_to_utc(spark):
    rows = [
        {"user_id": "a", "item_id": "1", "event_type": "view", "event_time": "1764288000"},
        {"user_id": "b", "item_id": "1", "event_type": "view", "event_time": "1764288000.25"},
        {"user_id": "c", "item_id": "1", "event_type": "view", "event_time": "1764288000123"},
        {"user_id": "d", "item_id": "1", "event_type": "view", "event_time": "2025-11-28T02:00:00+02:00"},
        {"user_id": "e", "item_id": "1", "event_type": "view", "event_time": "2025-11-28T00:00:00.5Z"},
        {"user_id": "f", "item_id": "1", "event_type": "VIEW ", "event_time": "1.7642880005E9"},
    ]
    out = clean.validate(raw_df(spark, rows), CleaningConfig(), RUN_DATE).orderBy("user_id").collect()
    got = {r["user_id"]: (r["event_time"], r["reject_reason"]) for r in out}
    base = dt.datetime(2025, 11, 28)
    assert got["a"] == (base, None)
    assert got["b"] == (base + dt.timedelta(milliseconds=250), None)
    assert got["c"] == (base + dt.timedelta(milliseconds=123), None)
    assert got["d"] == (base, None)
    assert got["e"] == (base + dt.timedelta(milliseconds=500), None)
    assert got["f"] == (base + dt.timedelta(milliseconds=500), None)  # upper-case type normalised


def test_every_reject_reason_with_exact_counts(spark):
    ok = {"user_id": "u", "item_id": "i", "event_type": "view", "event_time": str(T0)}
    rows = [
        ok,
        {"user_id": "garbage", "_malformed": True},                                   # MALFORMED
        {**ok, "user_id": None},                                                      # MISSING_FIELD
        {**ok, "item_id": "   "},                                                     # MISSING_FIELD (blank)
        {**ok, "event_time": None},                                                   # MISSING_FIELD
        {**ok, "item_id": "x" * 300},                                                 # OVERSIZED_FIELD
        {**ok, "attributes": "{" + "a" * 5000 + "}"},                                 # OVERSIZED_FIELD
        {**ok, "event_time": "yesterday"},                                            # BAD_TIME
        {**ok, "event_time": "2025-11-28T10:00:00"},                                  # BAD_TIME (no zone)
        {**ok, "event_time": "NaN"},                                                  # BAD_TIME
        {**ok, "event_time": "2025-13-45T10:00:00Z"},                                 # BAD_TIME
        {**ok, "event_time": "0"},                                                    # TIME_OUT_OF_WINDOW (epoch 0)
        {**ok, "event_time": "2099-01-01T00:00:00Z"},                                 # TIME_OUT_OF_WINDOW (future)
        {**ok, "event_type": "teleport"},                                             # UNKNOWN_EVENT_TYPE
    ]
    _, out = _validate(spark, rows)
    counts = {r[0]: r[1] for r in out.groupBy("reject_reason").count().collect()}
    assert counts == {None: 1, "MALFORMED": 1, "MISSING_FIELD": 3, "OVERSIZED_FIELD": 2, "BAD_TIME": 4,
                      "TIME_OUT_OF_WINDOW": 2, "UNKNOWN_EVENT_TYPE": 1}
    details = {r["reject_reason"]: r["reject_detail"] for r in out.where("reject_reason is not null").collect()}
    assert "ISO-8601 with zone" in details["BAD_TIME"]
    assert "teleport" in details["UNKNOWN_EVENT_TYPE"]


def test_reason_precedence_first_failing_check_wins(spark):
    # missing user AND unknown type AND bad time -> MISSING_FIELD only (one reason per row)
    rows = [{"user_id": "", "item_id": "i", "event_type": "teleport", "event_time": "soon"}]
    _, out = _validate(spark, rows)
    assert [r["reject_reason"] for r in out.collect()] == ["MISSING_FIELD"]


def test_time_window_boundaries(spark):
    # run date 2026-11-28, max_future_days=1 -> events must be < 2026-11-30T00:00Z
    rows = [
        {"user_id": "in", "item_id": "i", "event_type": "view", "event_time": "2026-11-29T23:59:59Z"},
        {"user_id": "out", "item_id": "i", "event_type": "view", "event_time": "2026-11-30T00:00:00Z"},
    ]
    _, out = _validate(spark, rows)
    got = {r["user_id"]: r["reject_reason"] for r in out.collect()}
    assert got == {"in": None, "out": "TIME_OUT_OF_WINDOW"}


def test_epoch_unit_can_be_forced(spark):
    rows = [{"user_id": "a", "item_id": "1", "event_type": "view", "event_time": "1764288000000"}]
    out = clean.validate(raw_df(spark, rows), CleaningConfig(epoch_unit="s"), RUN_DATE).select("reject_reason").collect()
    # read as seconds this is far in the future
    assert out[0]["reject_reason"] == "TIME_OUT_OF_WINDOW"


@pytest.mark.parametrize("bad,msg", [
    ({"event_types": ()}, "at least one event type"),
    ({"min_event_time": "2000-01-01"}, "zone"),
    ({"bot_max_events_per_minute": -1}, ">= 0"),
])
def test_config_errors_say_how_to_fix(bad, msg):
    from interest_tracker.config import ConfigError

    with pytest.raises(ConfigError, match=msg):
        CleaningConfig(**bad)
