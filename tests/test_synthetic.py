"""The synthetic generator: determinism, injected faults, Zipf skew, interest switches,
session gaps, bots, and the writers' round trip through the explicit raw schema."""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
from pyspark.sql import Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from interest_tracker.config import ConfigError
from interest_tracker.contracts import load_contract, schema_matches
from interest_tracker.synthetic import (INJECTION_KINDS, REJECT_REASON_OF_KIND, InjectionConfig, SyntheticConfig, generate,
                                        raw_schema, write_raw)

REPO = Path(__file__).resolve().parents[1]
END = "2026-11-28T23:59:59Z"
END_S = 1795910399  # END as epoch seconds
ALLOWED_TYPES = ("view", "click", "add_to_cart", "purchase")
INJECT = InjectionConfig(malformed=0.02, missing_field=0.02, oversized_field=0.01, bad_time=0.02,
                         out_of_window=0.02, unknown_event_type=0.02, exact_duplicate=0.02, replay=0.02,
                         num_bots=2, bot_events_per_bot=80)
TINY = SyntheticConfig(num_users=40, num_items=200, num_categories=5, events_per_user=60,
                       min_events_per_user=20, max_events_per_user=200, end_time=END, seed=11, injection=INJECT)


@pytest.fixture(scope="module")
def data(spark):
    d = generate(spark, TINY)
    d.labelled_events.cache()
    d.event_truth.cache()
    yield d
    d.labelled_events.unpersist()
    d.event_truth.unpersist()


@pytest.fixture(scope="module")
def counts(data):
    return data.injected_counts()


def _epoch_seconds(col):
    """Independent parse of the three valid time formats (null when not valid)."""
    iso = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$"
    return (F.when(col.rlike(r"^\d{12,}$"), col.cast("double") / 1000)
            .when(col.rlike(r"^\d{1,11}(\.\d+)?$"), col.cast("double"))
            .when(col.rlike(iso), F.to_timestamp(col).cast("double")))


def _violations(df):
    """The rules a row breaks, as an array of reason names (an independent mini-cleaner)."""
    req = ["user_id", "item_id", "event_type", "event_time"]
    secs = _epoch_seconds(F.col("event_time"))
    checks = [
        ("MISSING_FIELD", F.greatest(*[F.coalesce(F.length(c), F.lit(0)) == 0 for c in req])),
        ("OVERSIZED_FIELD", F.greatest(*[F.coalesce(F.length(c), F.lit(0)) > 256 for c in req + ["attributes"]])),
        ("BAD_TIME", F.col("event_time").isNotNull() & (F.length("event_time") > 0) & secs.isNull()),
        ("TIME_OUT_OF_WINDOW", (secs < 946684800) | (secs > END_S + 86400)),
        ("UNKNOWN_EVENT_TYPE", (F.length("event_type") > 0) & ~F.col("event_type").isin(*ALLOWED_TYPES)),
    ]
    arr = F.array(*[F.when(F.coalesce(cond, F.lit(False)), F.lit(name)) for name, cond in checks])
    return df.withColumn("violations", F.filter(arr, lambda x: x.isNotNull()))


# ---------------------------------------------------------------- config

@pytest.mark.parametrize("kwargs, words", [
    ({"injection": {"malformed": 0.6, "replay": 0.6}}, "sum"),
    ({"min_events_per_user": 4, "switches_per_user": 1}, "min_events_per_user"),
    ({"end_time": "2026-11-28T23:59:59"}, "zone"),
    ({"within_gap_min_s": 0.5}, "bots"),
    ({"max_events_per_user": 6000, "events_per_user": 100}, "5000"),
    ({"injection": {"bot_events_per_bot": 50}}, "60"),
    ({"num_users": 10, "colour": "red"}, "unknown config key"),
])
def test_bad_config_is_rejected_with_a_fix(kwargs, words):
    from interest_tracker.config import from_dict

    with pytest.raises(ConfigError, match=words):
        from_dict(SyntheticConfig, kwargs)


def test_history_before_2000_is_a_config_error(spark):
    cfg = SyntheticConfig(end_time="2001-01-01T00:00:00Z", max_events_per_user=1000)
    with pytest.raises(ConfigError, match="before 2000-01-01"):
        generate(spark, cfg)


# ---------------------------------------------------------------- contract and determinism

def test_events_follow_the_raw_contract(data):
    assert schema_matches(data.events.schema, load_contract("raw_event")) == []
    assert [f.name for f in data.items.schema] == ["item_id", "category", "popularity_rank", "available"]
    assert [f.name for f in data.ground_truth.schema] == [
        "user_id", "switch_number", "switch_event_index", "switch_time", "from_category", "to_category"]


def test_same_seed_same_rows_whatever_the_partitioning(spark, data):
    other = generate(spark, TINY, num_partitions=3)
    one = generate(spark, TINY, num_partitions=1)
    for a, b in ((data.events, other.events), (other.events, one.events)):
        assert a.exceptAll(b).count() == 0 and b.exceptAll(a).count() == 0
    assert one.ground_truth.exceptAll(data.ground_truth).count() == 0
    reseeded = generate(spark, SyntheticConfig(**{**TINY.__dict__, "seed": 12}))
    assert reseeded.events.intersect(data.events).count() < 0.01 * data.events.count()


# ---------------------------------------------------------------- injected faults

def test_injected_counts_match_the_rows(data, counts):
    by_kind = {r[0]: r[1] for r in data.labelled_events.groupBy("injected_kind").count().collect()}
    assert by_kind.pop(None) == counts["ordinary_events"]
    assert by_kind.pop("bot") == counts["bot_events"] == 2 * 80
    for kind in INJECTION_KINDS:
        if kind != "malformed":
            assert by_kind.get(kind, 0) == counts[kind], kind
    assert data.malformed.count() == counts["malformed"]
    # Each rate is 1-2% of ~2400 events: all kinds are present, none is implausible.
    expected = counts["ordinary_events"] * 0.02
    for kind in INJECTION_KINDS:
        rate = 0.01 if kind == "oversized_field" else 0.02
        n = counts["ordinary_events"] * rate
        assert n / 2 < counts[kind] < n * 2, (kind, counts[kind], expected)


def test_every_injected_row_breaks_exactly_one_rule(data):
    checked = _violations(data.labelled_events).groupBy("injected_kind", "violations").count().collect()
    found = {(r[0], tuple(r[1])): r[2] for r in checked}
    want = {"missing_field": ("MISSING_FIELD",), "oversized_field": ("OVERSIZED_FIELD",),
            "bad_time": ("BAD_TIME",), "out_of_window": ("TIME_OUT_OF_WINDOW",),
            "unknown_event_type": ("UNKNOWN_EVENT_TYPE",), "exact_duplicate": (), "replay": (), "bot": (), None: ()}
    for (kind, violations), n in found.items():
        assert violations == want[kind], (kind, violations, n)


def test_duplicates_and_replays_match_an_ordinary_event(data, counts):
    ev = data.labelled_events
    ordinary = ev.where("injected_kind is null").drop("injected_kind")
    key = ["user_id", "item_id", "event_type", "event_time"]
    dups = ev.where("injected_kind = 'exact_duplicate'").drop("injected_kind")
    assert dups.count() == counts["exact_duplicate"] and dups.exceptAll(ordinary).count() == 0
    replays = ev.where("injected_kind = 'replay'").alias("r").join(ordinary.alias("o"), key)
    assert replays.count() == counts["replay"]
    assert replays.where(F.col("r.attributes").eqNullSafe(F.col("o.attributes"))).count() == 0
    # Ordinary events never collide with each other on the duplicate key.
    assert ordinary.select(*key).distinct().count() == counts["ordinary_events"]


def test_bots_exceed_the_minute_rate_and_people_do_not(data):
    secs = _epoch_seconds(F.col("event_time"))
    ev = data.labelled_events.where("injected_kind is null or injected_kind = 'bot'").withColumn("t", secs)
    w = Window.partitionBy("user_id").orderBy("t")
    spans = (ev.withColumn("t60", F.lead("t", 60).over(w)).groupBy("user_id")
             .agg(F.min(F.col("t60") - F.col("t")).alias("tightest_61")).collect())
    bots = {r[0]: r[1] for r in spans if r[0].startswith("bot")}
    people = [r[1] for r in spans if not r[0].startswith("bot") and r[1] is not None]
    assert sorted(bots) == ["bot0000", "bot0001"]
    assert all(v < 60 for v in bots.values()), bots
    assert people and min(people) > 60


# ---------------------------------------------------------------- behaviour

def test_item_popularity_is_zipf_skewed(data):
    per_item = (data.event_truth.groupBy("item_id").count()
                .join(data.items, "item_id").select("popularity_rank", "count").collect())
    total = sum(r[1] for r in per_item)
    top10 = sum(r[1] for r in per_item if r[0] <= 10)
    tail = [r[1] for r in per_item if r[0] > 100]
    assert top10 / total > 0.2  # 5% of the catalogue; uniform would give 5% of events
    assert top10 / 10 > 8 * (sum(tail) / 100)


def test_interest_moves_at_the_ground_truth_switch(data):
    ev = data.event_truth.join(data.ground_truth, "user_id")
    after = F.col("event_index") >= F.col("switch_event_index")
    rows = ev.groupBy(after.alias("after")).agg(
        F.avg((F.col("category") == F.col("to_category")).cast("double")).alias("to_share"),
        F.avg((F.col("category") == F.col("from_category")).cast("double")).alias("from_share"),
        F.avg(F.when(F.col("source") == "interest",
                     (F.col("category") == F.when(after, F.col("to_category")).otherwise(F.col("from_category")))
                     .cast("double"))).alias("interest_on_target"),
    ).collect()
    by = {r["after"]: r for r in rows}
    assert by[True]["to_share"] > 0.5 and by[False]["to_share"] < 0.2
    assert by[False]["from_share"] > 0.5 and by[True]["from_share"] < 0.2
    assert by[True]["interest_on_target"] == 1.0 and by[False]["interest_on_target"] == 1.0
    # The switch time in ground_truth (a per-user aggregation) equals the event's time.
    at_switch = ev.where(F.col("event_index") == F.col("switch_event_index"))
    assert at_switch.count() == TINY.num_users
    assert at_switch.where(F.col("event_time") != F.col("switch_time")).count() == 0
    assert data.ground_truth.where("from_category = to_category").count() == 0


def test_sequential_events_follow_their_predecessor(data):
    w = Window.partitionBy("user_id").orderBy("event_index")
    ev = (data.event_truth.withColumn("prev", F.lag("item_id").over(w))
          .join(data.items.select(F.col("item_id").alias("prev"), F.col("popularity_rank").alias("prev_rank"),
                                  F.col("category").alias("prev_cat")), "prev")
          .join(data.items.select("item_id", "popularity_rank"), "item_id")
          .where("source = 'sequential'"))
    # successor of rank r (1-based) within its category is r + C, wrapping to the category's top
    c = TINY.num_categories
    ok = (F.col("popularity_rank") == F.col("prev_rank") + c) | (
        (F.col("prev_rank") + c > TINY.num_items) & (F.col("popularity_rank") == F.col("prev_cat") + 1))
    assert ev.count() > 100
    assert ev.where(~ok).count() == 0


def test_session_gaps_have_the_configured_scales(data):
    w = Window.partitionBy("user_id").orderBy("event_index")
    gaps = (data.event_truth
            .withColumn("gap", F.col("event_time").cast("double") - F.lag("event_time").over(w).cast("double"))
            .withColumn("new", F.col("session_number") != F.lag("session_number").over(w))
            .where("gap is not null"))
    stats = {r["new"]: r for r in gaps.groupBy("new").agg(
        F.min("gap").alias("lo"), F.max("gap").alias("hi"), F.avg("gap").alias("mean"),
        F.avg(F.log("gap")).alias("mean_log"), F.count(F.lit(1)).alias("n")).collect()}
    within, between = stats[False], stats[True]
    assert TINY.within_gap_min_s <= within["lo"] and within["hi"] <= TINY.within_gap_max_s
    assert 0.7 * TINY.within_gap_mean_s < within["mean"] < 1.3 * TINY.within_gap_mean_s
    assert TINY.between_gap_min_s <= between["lo"] and between["hi"] <= TINY.between_gap_max_s
    log_mid = (math.log(TINY.between_gap_min_s) + math.log(TINY.between_gap_max_s)) / 2
    assert abs(between["mean_log"] - log_mid) < 0.5  # log-uniform: mean of logs is the midpoint
    share_new = between["n"] / (between["n"] + within["n"])
    assert abs(share_new - 1 / TINY.mean_session_events) < 0.04
    last = data.event_truth.agg(F.max("event_time")).first()[0]
    assert last.isoformat() <= "2026-11-28T23:59:59"


# ---------------------------------------------------------------- writers

def _read_back(spark, path, fmt):
    schema = T.StructType(raw_schema().fields + [T.StructField("_corrupt_record", T.StringType())])
    if fmt == "parquet":
        return spark.read.schema(raw_schema()).parquet(path).withColumn("_corrupt_record", F.lit(None))
    reader = spark.read.schema(schema).option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord",
                                                                              "_corrupt_record")
    if fmt == "jsonl":
        return reader.json(path)
    return reader.option("header", True).option("escape", '"').csv(path)


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_writers_parse_back_with_the_explicit_schema(spark, data, counts, tmp_path, fmt):
    out = str(tmp_path / fmt)
    written = write_raw(data, out, fmt)
    back = _read_back(spark, out, fmt).cache()
    corrupt = back.where("_corrupt_record is not null")
    assert corrupt.count() == written["malformed"] == (0 if fmt == "parquet" else counts["malformed"])
    good = back.where("_corrupt_record is null").drop("_corrupt_record")
    events = data.events
    if fmt == "csv":  # CSV cannot tell "" from null: both read back as null
        events = events.select([F.when(F.col(c) != "", F.col(c)).alias(c) for c in events.columns])
    assert good.exceptAll(events).count() == 0 and events.exceptAll(good).count() == 0
    back.unpersist()
    _assert_stage1_cleaner_reconciles(spark, out, fmt, written)


def _assert_stage1_cleaner_reconciles(spark, url, fmt, counts):
    """Stage 1's own reader, validator, dedupe and bot rules find exactly what was injected."""
    import datetime as dt

    from interest_tracker import io
    from interest_tracker.prepare import bots, clean, dedupe
    from interest_tracker.prepare.config import CleaningConfig

    cc = CleaningConfig()
    validated = clean.validate(io.read_raw(spark, url, fmt), cc, dt.date(2026, 11, 28)).cache()
    reasons = {r[0]: r[1] for r in validated.groupBy("reject_reason").count().collect()}
    expected = {REJECT_REASON_OF_KIND[k]: counts[k] for k in REJECT_REASON_OF_KIND if counts[k]}
    valid_rows = reasons.pop(None)
    assert reasons == expected
    tagged = (validated.where("reject_reason is null")
              .select("user_id", "item_id", "event_type", "event_time", F.col("session_id").alias("input_session_id"),
                      "attributes", "raw_record")
              .transform(dedupe.tag_duplicates).transform(lambda d: bots.tag_bots(d, cc)))
    kinds = {(r[0], r[1] is not None): r[2] for r in
             tagged.groupBy("duplicate_kind", "quarantine_reason").count().collect()}
    assert kinds.get(("exact", False), 0) + kinds.get(("exact", True), 0) == counts["exact_duplicate"]
    assert kinds.get(("replay", False), 0) + kinds.get(("replay", True), 0) == counts["replay"]
    assert kinds[(None, True)] == counts["bot_events"]
    assert kinds[(None, False)] == counts["ordinary_events"]
    assert valid_rows == sum(kinds.values())
    validated.unpersist()


def _load_job(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "jobs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generate_job_writes_logs_truth_and_counts(spark, tmp_path):
    from interest_tracker.cli import run_job
    from interest_tracker.synthetic import SyntheticJobConfig

    job = _load_job("generate_synthetic")
    out = tmp_path / "synth"
    argv = ["--config", str(REPO / "conf" / "synthetic_tiny.json"), "--run-date", "2026-11-28",
            "--out", str(out), "--format", "csv", "--set", "num_users=12"]
    assert run_job("t", SyntheticJobConfig, job.main, argv=argv, shorthands=job.SHORTHANDS) == 0
    info = json.loads((out / "injected.json").read_text())
    raw = spark.read.schema(raw_schema()).option("header", True).option("escape", '"').csv(str(out / "raw"))
    c = info["counts"]
    expected_rows = sum(c[k] for k in INJECTION_KINDS) + c["ordinary_events"] + c["bot_events"]
    assert info["format"] == "csv" and raw.count() == expected_rows
    assert spark.read.parquet(str(out / "ground_truth")).count() == 12
    last = spark.read.parquet(str(out / "ground_truth")).agg(F.max("switch_time")).first()[0]
    assert last.isoformat() <= "2026-11-28T23:59:59"
    bad = ["--run-date", "2026-11-28", "--out", str(out), "--set", "injection.replay=2"]
    assert run_job("t", SyntheticJobConfig, job.main, argv=bad, shorthands=job.SHORTHANDS) == 2


# ---------------------------------------------------------------- drift (issue 13.4)

#: A small data set (with injected rows and a bot) and the digests of its rows as the
#: generator wrote them before the drift switches existed (commit 3c6ff71): with every
#: switch off (the default) the logs must stay exactly the same.
DIGEST_CFG = SyntheticConfig(num_users=30, num_items=120, num_categories=4, events_per_user=30,
                             min_events_per_user=12, max_events_per_user=80, end_time=END, seed=5,
                             injection=InjectionConfig(malformed=0.02, replay=0.02, bad_time=0.02, num_bots=1,
                                                       bot_events_per_bot=70))
DIGESTS = {
    "events": (924, "d76cfad7ef0f99174004cbfeb86d993be7386554905bb8895c7e524982b2d9c5"),
    "event_truth": (822, "f245975a0a07dcc6f6b53018f07531e3563453d4f19885ae82c435f6d436645e"),
    "ground_truth": (30, "89f721c4b0ffb5c4a579e333641c734e107493261d5f49fabdc62c1ee47c0d34"),
}
DAY = 86400.0
DRIFT = SyntheticConfig(num_users=80, num_items=400, num_categories=4, events_per_user=60, min_events_per_user=24,
                        max_events_per_user=150, between_gap_max_s=DAY, end_time=END, seed=3,
                        item_release_interval_s=DAY, item_lifetime_releases=8,
                        return_gaps_per_user=2, return_gap_min_s=7 * DAY, return_gap_max_s=20 * DAY)


def _digest(df):
    import hashlib

    rows = sorted(tuple("" if v is None else str(v) for v in r) for r in df.collect())
    return len(rows), hashlib.sha256(repr(rows).encode()).hexdigest()


def test_drift_is_off_by_default_and_leaves_the_logs_unchanged(spark):
    assert not SyntheticConfig().drifts and not DIGEST_CFG.drifts and DRIFT.drifts
    d = generate(spark, DIGEST_CFG)
    assert {name: _digest(getattr(d, name)) for name in DIGESTS} == DIGESTS


@pytest.mark.parametrize("kwargs, words", [
    ({"item_release_interval_s": -1}, "item_release_interval_s"),
    ({"item_lifetime_releases": 5}, "needs 'item_release_interval_s'"),
    ({"return_gaps_per_user": 30}, "return_gaps_per_user"),
    ({"return_gaps_per_user": 1, "return_gap_min_s": 3600.0}, "return_gap_min_s"),
])
def test_bad_drift_config_is_rejected_with_a_fix(kwargs, words):
    from interest_tracker.config import from_dict

    with pytest.raises(ConfigError, match=words):
        from_dict(SyntheticConfig, kwargs)


@pytest.fixture(scope="module")
def drift(spark):
    d = generate(spark, DRIFT)
    truth = d.event_truth.cache()
    yield d
    truth.unpersist()


def _release(col):
    """The release interval an event falls in (0 = the last before end_time), as the generator counts."""
    return F.floor((col.cast("double") - F.lit(END_S)) / DAY) + 1


def test_releases_make_items_rise_and_fade(drift):
    ev = drift.event_truth.where("source != 'sequential'").withColumn("release", _release(F.col("event_time")))
    # Within one release interval, fresh draws reach only the `life` newest items per category.
    per = ev.groupBy("release").agg(F.countDistinct("item_id").alias("items"), F.count(F.lit(1)).alias("n"))
    limit = DRIFT.num_categories * DRIFT.item_lifetime_releases
    stats = per.where("n >= 100").agg(F.max("items"), F.min("items"), F.count(F.lit(1))).first()
    assert stats[2] >= 5 and stats[0] <= limit and stats[1] >= limit // 2
    # An item is hot when released and fades: the top items of the early and the late
    # weeks are different items; the late week's top items did not exist yet early on.
    lo, hi = ev.agg(F.min("release"), F.max("release")).first()
    early = {r.item_id for r in ev.where(F.col("release") < lo + 7).groupBy("item_id").count()
             .orderBy(F.desc("count"), "item_id").limit(10).collect()}
    late = {r.item_id for r in ev.where(F.col("release") > hi - 7).groupBy("item_id").count()
            .orderBy(F.desc("count"), "item_id").limit(10).collect()}
    assert len(early & late) == 0


def test_successor_runs_survive_releases(drift):
    w = Window.partitionBy("user_id").orderBy("event_index")
    ev = (drift.event_truth.withColumn("prev", F.lag("item_id").over(w))
          .join(drift.items.select(F.col("item_id").alias("prev"), F.col("popularity_rank").alias("prev_rank"),
                                   F.col("category").alias("prev_cat")), "prev")
          .join(drift.items.select("item_id", "popularity_rank"), "item_id")
          .where("source = 'sequential'"))
    c = DRIFT.num_categories
    ok = (F.col("popularity_rank") == F.col("prev_rank") + c) | (
        (F.col("prev_rank") + c > DRIFT.num_items) & (F.col("popularity_rank") == F.col("prev_cat") + 1))
    assert ev.count() > 100
    assert ev.where(~ok).count() == 0


def test_returning_users_come_back_after_long_absences(drift):
    w = Window.partitionBy("user_id").orderBy("event_index")
    gaps = (drift.event_truth
            .withColumn("gap", F.col("event_time").cast("double") - F.lag("event_time").over(w).cast("double"))
            .withColumn("new", F.col("session_number") != F.lag("session_number").over(w))
            .where("gap is not null"))
    long_gap = F.col("gap") >= DRIFT.return_gap_min_s
    per_user = gaps.groupBy("user_id").agg(F.sum(long_gap.cast("int")).alias("absences"))
    lo, hi = per_user.agg(F.min("absences"), F.max("absences")).first()
    assert 1 <= lo and hi <= DRIFT.return_gaps_per_user  # two draws may pick the same event
    assert per_user.count() == DRIFT.num_users
    # Every gap is an ordinary one or an absence in the configured range, which starts a session.
    bad = gaps.where(~((F.col("gap") <= DRIFT.between_gap_max_s)
                       | (long_gap & (F.col("gap") <= DRIFT.return_gap_max_s) & F.col("new"))))
    assert bad.count() == 0
    # Switch times still match the events at the switch indexes.
    at = drift.event_truth.join(drift.ground_truth.select("user_id", F.col("switch_event_index").alias("event_index"),
                                                          "switch_time"), ["user_id", "event_index"])
    assert at.count() == DRIFT.num_users and at.where("event_time != switch_time").count() == 0
