"""Duplicates, replays and bot quarantine."""
import datetime as dt

from pyspark.sql import functions as F

from interest_tracker.prepare import bots, clean, dedupe
from interest_tracker.prepare.config import CleaningConfig

from stage1_helpers import RUN_DATE, T0, raw_df


def _valid(spark, rows):
    v = clean.validate(raw_df(spark, rows), CleaningConfig(), RUN_DATE)
    assert v.where("reject_reason is not null").count() == 0
    # the columns the pipeline hands to dedupe (prepare/pipeline.py), raw_record included
    return v.select("user_id", "item_id", "event_type", "event_time", F.col("session_id").alias("input_session_id"),
                    "attributes", "raw_record")


def test_exact_duplicates_and_replays(spark):
    e = {"user_id": "u", "item_id": "i", "event_type": "view", "event_time": str(T0)}
    rows = [e, e, e,                                   # one kept, two exact duplicates
            {**e, "attributes": '{"retry": "1"}'},     # replay: same key, other fields differ
            {**e, "event_time": str(T0 + 1)},          # a different event
            {**e, "user_id": "v"}]                     # same item/time, other user: not a duplicate
    out = _valid(spark, rows).transform(dedupe.tag_duplicates)
    counts = {r[0]: r[1] for r in out.groupBy("duplicate_kind").count().collect()}
    assert counts == {None: 3, "exact": 2, "replay": 1}


def test_duplicates_compare_the_parsed_key_and_keep_the_first_record_in_json_text_order(spark):
    e = {"user_id": "u", "item_id": "i", "event_type": "view", "event_time": str(T0), "session_id": "s2"}
    rows = [e,
            {**e, "user_id": " u ", "event_type": "VIEW"},                # the same record, spelt differently
            {**e, "event_time": dt.datetime.fromtimestamp(T0, dt.timezone.utc).isoformat()},  # same time, ISO
            {**e, "session_id": "s1", "attributes": '{"retry": "2"}'},     # replay
            {**e, "session_id": None, "attributes": '{"retry": "1"}'},     # replay
            {**e, "session_id": None, "attributes": '{"retry": "3"}'},     # replay
            {**e, "session_id": None}]                                     # replay
    out = _valid(spark, rows).transform(dedupe.tag_duplicates)
    got = sorted((r["duplicate_kind"] or "", r["input_session_id"] or "", r["attributes"] or "")
                 for r in out.collect())
    assert got == [("", "", '{"retry": "1"}'),
                   ("exact", "s2", ""), ("exact", "s2", ""),
                   ("replay", "", ""), ("replay", "", '{"retry": "3"}'), ("replay", "s1", '{"retry": "2"}'),
                   ("replay", "s2", "")]
    # Among records spelt alike, the one kept is the first in the order of their JSON text,
    # and the order of the others follows that text too.
    alike = list(rows[3:]) + [e]
    text_order = [r["raw_record"] for r in _valid(spark, alike).orderBy("raw_record").collect()]
    kept_first = [r["raw_record"] for r in _valid(spark, alike).transform(dedupe.tag_duplicates)
                  .orderBy("event_us", *dedupe.record_order()).collect()]
    assert kept_first == text_order


def test_bots_are_quarantined_not_deleted(spark):
    rows = [{"user_id": "bot", "item_id": f"i{k}", "event_type": "click", "event_time": str(T0 + k * 0.5)}
            for k in range(70)]                                    # 70 events in 35 s > 60 / minute
    rows += [{"user_id": "human", "item_id": f"i{k}", "event_type": "view", "event_time": str(T0 + k * 2)}
             for k in range(40)]                                   # 30 per minute at most
    rows += [{"user_id": "daybot", "item_id": f"i{k}", "event_type": "view", "event_time": str(T0 + k * 10)}
             for k in range(120)]                                  # 6 / minute, 120 / 20 min
    cfg = CleaningConfig(bot_max_events_per_minute=60, bot_max_events_per_day=100)
    out = _valid(spark, rows).withColumn("duplicate_kind", F.lit(None).cast("string")).transform(
        lambda d: bots.tag_bots(d, cfg))
    got = {(r[0], r[1]): r[2] for r in out.groupBy("user_id", "quarantine_reason").count().collect()}
    assert got == {("bot", "BOT_RATE_MINUTE"): 70, ("human", None): 40, ("daybot", "BOT_RATE_DAY"): 120}


def test_minute_window_is_sliding_not_calendar(spark):
    # 61 events straddling a minute boundary: 31 in [:30,:59], 30 in [1:00,1:29] -> one 60 s window holds 61
    rows = [{"user_id": "b", "item_id": str(k), "event_type": "view", "event_time": str(T0 + 30 + k * 0.98)}
            for k in range(61)]
    out = _valid(spark, rows).transform(lambda d: bots.tag_bots(d, CleaningConfig(bot_max_events_per_minute=60)))
    assert {r[0] for r in out.select("quarantine_reason").distinct().collect()} == {"BOT_RATE_MINUTE"}


def test_duplicates_do_not_count_towards_bot_rates(spark):
    e = {"user_id": "u", "item_id": "i", "event_type": "view", "event_time": str(T0)}
    out = (_valid(spark, [e] * 100).transform(dedupe.tag_duplicates)
           .transform(lambda d: bots.tag_bots(d, CleaningConfig(bot_max_events_per_minute=60))))
    assert out.where("quarantine_reason is not null").count() == 0
    assert out.where("duplicate_kind is null").count() == 1


def test_min_support_filters_tag_items_then_users(spark):
    from interest_tracker.prepare import support

    rows = ([{"user_id": "a", "item_id": "pop", "event_type": "view", "event_time": str(T0 + k)} for k in range(3)]
            + [{"user_id": "b", "item_id": "pop", "event_type": "view", "event_time": str(T0 + 10)},
               {"user_id": "b", "item_id": "rare", "event_type": "view", "event_time": str(T0 + 11)},
               {"user_id": "c", "item_id": "pop", "event_type": "view", "event_time": str(T0 + 12)},
               {"user_id": "c", "item_id": "pop", "event_type": "view", "event_time": str(T0 + 13)}])
    cfg = CleaningConfig(min_item_support=2, min_user_events=2)
    out = _valid(spark, rows).transform(lambda d: support.tag_low_support(d, cfg))
    got = {(r.user_id, r.item_id, r.support_reason) for r in out.collect()}
    # 'rare' has 1 event < 2; user b keeps 1 event after the item filter < 2; a and c keep theirs
    assert got == {("a", "pop", None), ("b", "pop", "LOW_SUPPORT_USER"), ("b", "rare", "LOW_SUPPORT_ITEM"),
                   ("c", "pop", None)}
    counts = {r[0]: r[1] for r in out.groupBy("support_reason").count().collect()}
    assert counts == {None: 5, "LOW_SUPPORT_ITEM": 1, "LOW_SUPPORT_USER": 1}
    assert out.where("support_reason is null").count() == 5
    off = _valid(spark, rows).transform(lambda d: support.tag_low_support(d, CleaningConfig()))
    assert off.where("support_reason is not null").count() == 0
