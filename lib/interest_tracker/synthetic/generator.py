"""The synthetic behaviour-log generator: pure Spark SQL on ``spark.range``.

Why synthetic data needs structure: the model is judged on tracking how interests
move, so the data carries a known answer. Each user has an interest category that
moves to another category at known event indexes (``ground_truth``); fresh items come
from the current interest (``p_interest``) or from global Zipf popularity; with
``p_sequential`` the next item is the within-category successor of the previous one,
so a sequence model has real order to learn (a bag-of-items model cannot).

Catalogue arithmetic, so no joins are needed: the item of global popularity rank r
(0 = most popular) has category ``r % C`` and within-category rank ``r // C``; its
successor is ``r + C`` (wrapping within the category). Item ids are a fixed
permutation of ranks, so an id says nothing about popularity.

Drift (issue 13.4, every switch off by default so existing logs stay byte-identical):
``item_release_interval_s`` makes popularity move: each category releases an item at
the top every interval and the others move one rank down, so items rise and fade and a
recent-popularity rule has something real to follow; ``item_lifetime_releases`` stops
fresh draws of items older than that; ``return_gaps_per_user`` gives each user long
absences (weeks) after which they come back, as returning users of a real log do.

Determinism: every draw is a hash of (seed, tag, user, event index); see
:mod:`.random_columns`. Times come from per-user cumulative sums of gaps (a window
partitioned by user), anchored so each user's last event is just before ``end_time``:
no ordinary event is ever later than the run date.

Injected faults are EXTRA rows next to the ordinary events, each breaking exactly one
rule, so after cleaning: kept = ordinary events, rejected per reason = ``injected``,
removed duplicates = exact_duplicate + replay, quarantined = bot events.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from functools import partial

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from ..config import ConfigError
from ..contracts import load_contract
from .config import INJECTION_KINDS, SyntheticConfig
from .random_columns import exponential, log_uniform, pick, uniform, zipf_rank

log = logging.getLogger(__name__)

RAW_COLUMNS = ("user_id", "item_id", "event_type", "event_time", "session_id", "attributes")
DEVICES = ("mobile", "desktop", "tablet")
UNKNOWN_EVENT_TYPES = ("share", "hover", "wishlist")
#: Time formats used row by row when time_format is "mixed" (all valid for the cleaner).
MIXED_FORMATS = {"epoch_s": 0.3, "epoch_ms": 0.3, "iso": 0.3, "iso_offset": 0.1}
_MS_2000 = 946_684_800_000  # 2000-01-01T00:00:00Z
_MS_2100 = 4_102_444_800_000  # 2100-01-01T00:00:00Z
_TEN_YEARS_MS = 10 * 365 * 86_400_000
_OFFSET_MS = (5 * 60 + 30) * 60_000  # +05:30, the zone of "iso_offset"


@dataclass(frozen=True)
class SyntheticData:
    """Lazy DataFrames of one generated data set (nothing runs until an action).

    events:          the raw event contract (6 string columns): ordinary events, the
                     injected bad-value rows, duplicates, replays and bot events.
                     Malformed lines are not rows of any schema: see ``malformed``.
    labelled_events: ``events`` + ``injected_kind`` (null for ordinary events, the kind
                     name for injected rows, "bot" for bot events).
    malformed:       user_id, json_line, csv_line: the lines that writers add to text
                     formats (none can exist in Parquet).
    items:           item_id, category, popularity_rank (1 = most popular), available.
    ground_truth:    user_id, switch_number, switch_event_index, switch_time,
                     from_category, to_category.
    event_truth:     the ordinary events with their labels: user_id, event_index,
                     item_id, category, interest_category, source (interest | popular |
                     sequential), event_type, event_time (timestamp), session_number.
    injected:        kind, rows: counts per injected kind (cheap: no window pass).
    """

    config: SyntheticConfig
    events: DataFrame
    labelled_events: DataFrame
    malformed: DataFrame
    items: DataFrame
    ground_truth: DataFrame
    event_truth: DataFrame
    injected: DataFrame
    _users: DataFrame

    def injected_counts(self) -> dict[str, int]:
        """Counts per injected kind (every kind present, 0 when none), plus
        ``bot_users``, ``bot_events`` and ``ordinary_events``. Runs two small jobs."""
        counts = {k: 0 for k in INJECTION_KINDS}
        counts.update({r["kind"]: int(r["rows"]) for r in self.injected.collect() if r["kind"] != "bot"})
        inj = self.config.injection
        counts["bot_users"] = inj.num_bots
        counts["bot_events"] = inj.num_bots * inj.bot_events_per_bot
        counts["ordinary_events"] = int(self._users.agg(F.sum("n")).first()[0] or 0)
        return counts


def generate(spark: SparkSession, cfg: SyntheticConfig, num_partitions: int | None = None) -> SyntheticData:
    """Build the lazy DataFrames of a synthetic data set for ``cfg``.

    ``num_partitions`` only sets the parallelism of ``spark.range``; rows do not
    depend on it (tests check this).
    """
    end_ms = _end_ms(cfg)
    tz = spark.conf.get("spark.sql.session.timeZone")
    if tz != "UTC":
        raise ConfigError(f"spark.sql.session.timeZone is {tz!r}; the generator renders times in UTC. "
                          f"Build the session with interest_tracker.spark.get_session")
    users = _users(spark, cfg, num_partitions)
    index = _event_index(cfg, users)
    main = _ordinary_events(cfg, index, end_ms)
    labelled = _with_injected_rows(cfg, main)
    bots = _bot_events(spark, cfg, end_ms, num_partitions)
    labelled = labelled.unionByName(bots)
    events = labelled.select(*RAW_COLUMNS)
    injected = (index.where(F.col("inj_kind").isNotNull()).groupBy(F.col("inj_kind").alias("kind"))
                .agg(F.count(F.lit(1)).alias("rows")))
    if cfg.injection.num_bots:
        inj = cfg.injection
        injected = injected.unionByName(
            spark.createDataFrame([("bot", inj.num_bots * inj.bot_events_per_bot)], "kind string, rows bigint"))
    return SyntheticData(
        config=cfg,
        events=events,
        labelled_events=labelled,
        malformed=_malformed_lines(cfg, index, end_ms),
        items=items(spark, cfg),
        ground_truth=_ground_truth(cfg, index, end_ms),
        event_truth=_event_truth(cfg, main),
        injected=injected,
        _users=users,
    )


def raw_schema():
    """The raw event contract's Spark schema (all strings)."""
    return load_contract("raw_event").spark_schema()


# ---------------------------------------------------------------- catalogue

def _width(count: int, minimum: int) -> int:
    return max(minimum, len(str(max(count - 1, 0))))


def _item_permutation(num_items: int, seed: int) -> tuple[int, int]:
    """(a, b) with gcd(a, n) = 1: rank r -> id number (r * a + b) mod n is a bijection."""
    a = max(1, int(num_items * 0.6180339887)) | 1
    while math.gcd(a, num_items) != 1:
        a += 1
    return a, (seed * 7919) % num_items


def item_id_of(rank: Column, cfg: SyntheticConfig) -> Column:
    """Item id ("i000123") of a global popularity rank."""
    a, b = _item_permutation(cfg.num_items, cfg.seed)
    number = F.pmod(rank.cast("long") * a + b, F.lit(cfg.num_items))
    return F.concat(F.lit("i"), F.lpad(number.cast("string"), _width(cfg.num_items, 6), "0"))


def _category_size(category: Column, cfg: SyntheticConfig) -> Column:
    """Items in a category: ranks c, c + C, c + 2C, ... below num_items."""
    return (F.floor((F.lit(cfg.num_items) - category - 1) / cfg.num_categories) + 1).cast("long")


def items(spark: SparkSession, cfg: SyntheticConfig) -> DataFrame:
    """The catalogue: item_id, category, popularity_rank (1 = most popular), available.

    With catalogue drift on (``item_release_interval_s``), popularity_rank is the rank in
    the last release interval before end_time (an item's rank moves by one per release)."""
    r = F.col("id")
    return spark.range(cfg.num_items).select(
        item_id_of(r, cfg).alias("item_id"),
        (r % cfg.num_categories).cast("int").alias("category"),
        (r + 1).cast("int").alias("popularity_rank"),
        (uniform(cfg.seed, "available", r) >= cfg.p_unavailable).alias("available"),
    )


# ---------------------------------------------------------------- users and event indexes

def _users(spark: SparkSession, cfg: SyntheticConfig, num_partitions: int | None) -> DataFrame:
    """One row per user: uid, user_id, n (events), sw (switch indexes), cats (interest per segment)."""
    u = partial(uniform, cfg.seed)
    k, n_cat = cfg.switches_per_user, cfg.num_categories
    extra = cfg.events_per_user - cfg.min_events_per_user
    n = F.least(F.lit(cfg.max_events_per_user),
                F.lit(cfg.min_events_per_user) + F.floor(exponential(u("n", "uid"), extra))).cast("int")
    df = spark.range(0, cfg.num_users, 1, num_partitions).withColumnRenamed("id", "uid").withColumn("n", n)
    # Switch j sits near n*j/(k+1), jittered by at most n/(4(k+1)): strictly increasing, in [1, n).
    sw = F.transform(
        F.sequence(F.lit(1), F.lit(k)),
        lambda j: F.floor(F.col("n") * j / (k + 1)
                          + (uniform(cfg.seed, "switch", F.col("uid"), j) - 0.5) * F.col("n") / (2 * (k + 1))
                          ).cast("int"),
    )
    c0 = F.floor(u("cat0", "uid") * n_cat).cast("int")
    # Each move adds 1..C-1 (mod C), so the category always changes.
    cats = F.aggregate(
        F.sequence(F.lit(1), F.lit(k)),
        F.array(c0),
        lambda acc, j: F.concat(acc, F.array(F.pmod(
            F.element_at(acc, -1) + 1 + F.floor(uniform(cfg.seed, "cat", F.col("uid"), j) * (n_cat - 1)).cast("int"),
            F.lit(n_cat)))),
    )
    user_id = F.concat(F.lit("u"), F.lpad(F.col("uid").cast("string"), _width(cfg.num_users, 5), "0"))
    extra_cols = []
    if cfg.return_gaps_per_user:
        # Event indexes in [1, n) after which the user is away for a long time (may coincide).
        extra_cols.append(F.transform(
            F.sequence(F.lit(1), F.lit(cfg.return_gaps_per_user)),
            lambda j: (F.lit(1) + F.floor(uniform(cfg.seed, "return_at", F.col("uid"), j) * (F.col("n") - 1))
                       ).cast("int")).alias("returns"))
    return df.select("uid", user_id.alias("user_id"), "n", sw.alias("sw"), cats.alias("cats"),
                     (F.lit(_end_spread_ms(cfg)) * u("end", "uid")).cast("long").alias("end_offset_ms"),
                     *extra_cols)


def _event_index(cfg: SyntheticConfig, users: DataFrame) -> DataFrame:
    """One row per ordinary event with everything that needs no window: gaps, session
    starts and the injected kind. Counting injected rows reads only this (cheap) plan."""
    u = partial(uniform, cfg.seed)
    df = users.withColumn("idx", F.explode(F.sequence(F.lit(0), F.col("n") - 1)))
    new_session = (F.col("idx") == 0) | (u("session", "uid", "idx") < 1.0 / cfg.mean_session_events)
    g = u("gap", "uid", "idx")
    within = F.least(F.greatest(exponential(g, cfg.within_gap_mean_s), F.lit(cfg.within_gap_min_s)),
                     F.lit(cfg.within_gap_max_s))
    between = log_uniform(g, cfg.between_gap_min_s, cfg.between_gap_max_s)
    if cfg.return_gaps_per_user:
        # A returning user: a long absence before this event, which starts a new session.
        is_return = F.array_contains("returns", F.col("idx").cast("int"))
        between = F.when(is_return, log_uniform(u("return_gap", "uid", "idx"), cfg.return_gap_min_s,
                                                cfg.return_gap_max_s)).otherwise(between)
        new_session = new_session | is_return
    gap_ms = F.when(F.col("idx") == 0, F.lit(0)).otherwise(
        F.round(F.when(new_session, between).otherwise(within) * 1000.0)).cast("long")
    inj = cfg.injection
    kind = F.lit(None).cast("string")
    bound = sum(inj.rate_of(k) for k in INJECTION_KINDS)
    u_inj = u("inject", "uid", "idx")
    for name in reversed(INJECTION_KINDS):
        rate = inj.rate_of(name)
        if rate > 0:
            kind = F.when(u_inj < bound, F.lit(name)).otherwise(kind)
        bound -= rate
    return df.select("uid", "user_id", "n", "sw", "cats", "end_offset_ms", "idx",
                     new_session.alias("new_session"), gap_ms.alias("gap_ms"), kind.alias("inj_kind"))


# ---------------------------------------------------------------- ordinary events

def _ordinary_events(cfg: SyntheticConfig, index: DataFrame, end_ms: int) -> DataFrame:
    """Items, times and types of the ordinary events (one window pass, partitioned by user)."""
    u = partial(uniform, cfg.seed)
    n_cat, s = cfg.num_categories, cfg.zipf_exponent
    idx = F.col("idx")
    # Number of switches at or before this event (a sum of comparisons: code-generated,
    # unlike a higher-order filter over the array).
    segment = sum((idx >= F.element_at("sw", j)).cast("int") for j in range(1, cfg.switches_per_user + 1))
    interest = F.element_at("cats", segment + 1)
    is_seq = (idx > 0) & (u("sequential", "uid", "idx") < cfg.p_sequential)
    from_interest = u("source", "uid", "idx") < cfg.p_interest
    u_item = u("item", "uid", "idx")
    life = cfg.item_lifetime_releases
    # With lifetimes, fresh draws reach only the `life` newest items of a category.
    in_cat = _category_size(interest, cfg)
    in_cat = F.least(in_cat, F.lit(life).cast("long")) if life else in_cat
    fresh = F.when(from_interest,
                   zipf_rank(u_item, in_cat, s) * n_cat + interest
                   ).otherwise(zipf_rank(u_item, min(cfg.num_items, n_cat * life) if life else cfg.num_items, s))
    df = index.select("*", interest.alias("interest_category"), is_seq.alias("is_seq"),
                      F.when(is_seq, "sequential").when(from_interest, "interest").otherwise("popular").alias("source"),
                      fresh.cast("long").alias("fresh_rank"))
    upto = Window.partitionBy("uid").orderBy("idx").rowsBetween(Window.unboundedPreceding, Window.currentRow)
    whole = Window.partitionBy("uid")
    df = df.select(
        "*",
        F.last(F.when(~F.col("is_seq"), F.col("fresh_rank")), ignorenulls=True).over(upto).alias("anchor_rank"),
        F.last(F.when(~F.col("is_seq"), idx), ignorenulls=True).over(upto).alias("anchor_idx"),
        F.sum("gap_ms").over(upto).alias("cum_ms"),
        F.sum("gap_ms").over(whole).alias("total_ms"),
        F.sum(F.col("new_session").cast("int")).over(upto).alias("session_number"),
    )
    # A run of successors walks the anchor's category: rank = (m_a + steps) mod size * C + c_a.
    c_a = F.col("anchor_rank") % n_cat
    m_a = F.floor(F.col("anchor_rank") / n_cat)
    t_ms = F.lit(end_ms) - F.col("end_offset_ms") - F.col("total_ms") + F.col("cum_ms")
    if cfg.item_release_interval_s > 0:
        # Catalogue drift: the fresh draw is a popularity position m at the event's time; the
        # item in that position moves one slot per release, so the item at slot s has
        # position (s + shift) mod size: it tops the category when released and fades after.
        # shift = 0 in the last interval before end_time, so items() ranks hold there.
        # The shift is taken at the run's anchor (its fresh draw), so a run of successors
        # stays a walk of +1 slot even when it crosses a release.
        df = df.withColumn("anchor_cum_ms", F.last(F.when(~F.col("is_seq"), F.col("cum_ms")),
                                                   ignorenulls=True).over(upto))
        t_anchor = F.lit(end_ms) - F.col("end_offset_ms") - F.col("total_ms") + F.col("anchor_cum_ms")
        shift = F.floor((t_anchor - F.lit(end_ms)) / F.lit(cfg.item_release_interval_s * 1000.0)) + 1
        rank = F.pmod(m_a + idx - F.col("anchor_idx") - shift, _category_size(c_a, cfg)) * n_cat + c_a
    else:
        rank = F.pmod(m_a + idx - F.col("anchor_idx"), _category_size(c_a, cfg)) * n_cat + c_a
    attributes = F.when(
        u("attributes", "uid", "idx") < cfg.p_attributes,
        F.concat(F.lit('{"device":"'), _device(u("device", "uid", "idx")), F.lit('"}')))
    df = df.select(
        "uid", "user_id", "idx", "interest_category", "source", "session_number", "inj_kind",
        rank.cast("long").alias("rank"),
        t_ms.alias("t_ms"),
        pick(u("event_type", "uid", "idx"), cfg.event_type_weights).alias("event_type"),
        attributes.alias("attributes"),
        _time_format(cfg, u("time_format", "uid", "idx")).alias("time_format"),
    )
    return df.withColumn("item_id", item_id_of(F.col("rank"), cfg))


def _event_truth(cfg: SyntheticConfig, main: DataFrame) -> DataFrame:
    """The ordinary events with the labels a tracking-accuracy check needs."""
    return main.select(
        "user_id",
        F.col("idx").cast("int").alias("event_index"),
        "item_id",
        (F.col("rank") % cfg.num_categories).cast("int").alias("category"),
        F.col("interest_category").cast("int").alias("interest_category"),
        "source",
        "event_type",
        _timestamp(F.col("t_ms")).alias("event_time"),
        F.col("session_number").cast("int").alias("session_number"),
    )


def _ground_truth(cfg: SyntheticConfig, index: DataFrame, end_ms: int) -> DataFrame:
    """Switch points with their times: per-user sums of gaps (a hash aggregation, no sort)."""
    k = cfg.switches_per_user
    sums = [F.sum(F.when(F.col("idx") <= F.element_at("sw", j), F.col("gap_ms")).otherwise(0)).alias(f"cum{j}")
            for j in range(1, k + 1)]
    per_user = index.groupBy("uid", "user_id", "sw", "cats", "end_offset_ms").agg(
        F.sum("gap_ms").alias("total_ms"), *sums)
    base = F.lit(end_ms) - F.col("end_offset_ms") - F.col("total_ms")
    switches = F.array(*[
        F.struct(
            F.lit(j).alias("switch_number"),
            F.element_at("sw", j).alias("switch_event_index"),
            _timestamp(base + F.col(f"cum{j}")).alias("switch_time"),
            F.element_at("cats", j).alias("from_category"),
            F.element_at("cats", j + 1).alias("to_category"),
        ) for j in range(1, k + 1)])
    return per_user.select("user_id", F.explode(switches).alias("s")).select(
        "user_id",
        F.col("s.switch_number").cast("int").alias("switch_number"),
        F.col("s.switch_event_index").cast("int").alias("switch_event_index"),
        F.col("s.switch_time").alias("switch_time"),
        F.col("s.from_category").cast("int").alias("from_category"),
        F.col("s.to_category").cast("int").alias("to_category"),
    )


# ---------------------------------------------------------------- injected rows

def _raw_struct(user_id, item_id, event_type, event_time, attributes, kind) -> Column:
    return F.struct(
        user_id.cast("string").alias("user_id"),
        item_id.cast("string").alias("item_id"),
        event_type.cast("string").alias("event_type"),
        event_time.cast("string").alias("event_time"),
        F.lit(None).cast("string").alias("session_id"),
        attributes.cast("string").alias("attributes"),
        kind.cast("string").alias("injected_kind"),
    )


def _with_injected_rows(cfg: SyntheticConfig, main: DataFrame) -> DataFrame:
    """Each ordinary event, plus (when drawn) one faulty copy that breaks exactly one rule.

    Done with one explode so the window pass runs once. Malformed lines are not
    rows of the contract; they come from :func:`_malformed_lines`.
    """
    u = partial(uniform, cfg.seed)
    user, item, etype, attrs = F.col("user_id"), F.col("item_id"), F.col("event_type"), F.col("attributes")
    t_ms, fmt, kind = F.col("t_ms"), F.col("time_format"), F.col("inj_kind")
    time_text = render_time(t_ms, fmt)
    ordinary = _raw_struct(user, item, etype, time_text, attrs, F.lit(None))

    # missing_field: one of the four required fields null or "".
    which = F.floor(u("missing_which", "uid", "idx") * 4)
    blank = F.when(u("missing_blank", "uid", "idx") < 0.5, F.lit("")).otherwise(F.lit(None).cast("string"))
    required = [user, item, etype, time_text]
    missing = [F.when(which == i, blank).otherwise(c) for i, c in enumerate(required)]
    # bad_time: not epoch and not ISO-with-zone (ISO without a zone is BAD_TIME too).
    secs = F.floor(t_ms / 1000)
    bad_choice = F.floor(u("bad_time", "uid", "idx") * 3)
    bad_time = (F.when(bad_choice == 0, F.from_unixtime(secs, "yyyy-MM-dd'T'HH:mm:ss"))
                .when(bad_choice == 1, F.from_unixtime(secs, "dd/MM/yyyy HH:mm:ss"))
                .otherwise(F.lit("yesterday")))
    # out_of_window: a well-formed time before 2000-01-01 or after 2100-01-01.
    u_w = u("window_offset", "uid", "idx")
    far = F.when(u("window_side", "uid", "idx") < 0.5,
                 F.lit(_MS_2000 - 86_400_000) - (u_w * _TEN_YEARS_MS).cast("long")
                 ).otherwise(F.lit(_MS_2100) + (u_w * _TEN_YEARS_MS).cast("long"))
    unknown_type = F.element_at(F.array(*[F.lit(t) for t in UNKNOWN_EVENT_TYPES]),
                                (F.floor(u("unknown_type", "uid", "idx") * len(UNKNOWN_EVENT_TYPES)) + 1).cast("int"))
    oversized_item = F.concat(item, F.lit("x" * cfg.injection.max_field_length))
    replay_attrs = F.concat(F.lit('{"device":"'), _device(u("replay_device", "uid", "idx")),
                            F.lit('","replayed":"true"}'))

    variant = (
        F.when(kind == "missing_field", _raw_struct(*missing, attrs, kind))
        .when(kind == "oversized_field", _raw_struct(user, oversized_item, etype, time_text, attrs, kind))
        .when(kind == "bad_time", _raw_struct(user, item, etype, bad_time, attrs, kind))
        .when(kind == "out_of_window", _raw_struct(user, item, etype, render_time(far, fmt), attrs, kind))
        .when(kind == "unknown_event_type", _raw_struct(user, item, unknown_type, time_text, attrs, kind))
        .when(kind == "exact_duplicate", _raw_struct(user, item, etype, time_text, attrs, kind))
        .when(kind == "replay", _raw_struct(user, item, etype, time_text, replay_attrs, kind))
    )
    has_variant = kind.isNotNull() & (kind != "malformed")
    rows = F.when(has_variant, F.array(ordinary, variant)).otherwise(F.array(ordinary))
    return main.select(F.explode(rows).alias("r")).select("r.*")


def _malformed_lines(cfg: SyntheticConfig, index: DataFrame, end_ms: int) -> DataFrame:
    """Lines that no parser accepts, for the text formats (from the cheap plan)."""
    u = partial(uniform, cfg.seed)
    item = item_id_of(zipf_rank(u("malformed_item", "uid", "idx"), cfg.num_items, cfg.zipf_exponent), cfg)
    t = (F.lit(end_ms) - F.col("end_offset_ms") - (u("malformed_t", "uid", "idx") * 3_600_000).cast("long"))
    t_text = F.floor(t / 1000).cast("string")
    user = F.col("user_id")
    v = F.floor(u("malformed_form", "uid", "idx") * 3)
    json_line = (
        F.when(v == 0, F.concat(F.lit('{"user_id": "'), user, F.lit('", "item_id": "'), item,
                                F.lit('", "event_type": "view", "event_time": "'), F.substring(t_text, 1, 5)))
        .when(v == 1, F.concat(F.lit("user_id="), user, F.lit(" item_id="), item, F.lit(" event_type=view")))
        .otherwise(F.concat(F.lit('{"user_id": "'), user, F.lit('", "item_id": "'), item,
                            F.lit('",, "event_type": "view"}'))))
    csv_line = (
        F.when(v == 0, F.concat(user, F.lit(","), item, F.lit(",view")))
        .when(v == 1, F.concat(user, F.lit(","), item, F.lit(",view,"), t_text, F.lit(",,{},extra")))
        .otherwise(F.concat(user, F.lit(',"'), item, F.lit(",view,"), t_text, F.lit(",,"))))
    return (index.where(F.col("inj_kind") == "malformed")
            .select("user_id", F.col("idx").cast("int").alias("event_index"),
                    json_line.alias("json_line"), csv_line.alias("csv_line")))


def _bot_events(spark: SparkSession, cfg: SyntheticConfig, end_ms: int, num_partitions: int | None) -> DataFrame:
    """Bots: valid events every bot_interval_ms, far above any human rate."""
    inj = cfg.injection
    per_bot = inj.bot_events_per_bot
    df = spark.range(0, inj.num_bots * per_bot, 1, num_partitions).select(
        F.floor(F.col("id") / per_bot).alias("b"), (F.col("id") % per_bot).alias("k"))
    u = partial(uniform, cfg.seed)
    end_b = F.lit(end_ms) - (u("bot_end", "b") * _end_spread_ms(cfg)).cast("long")
    t = end_b - (F.lit(per_bot - 1) - F.col("k")) * inj.bot_interval_ms
    rank = zipf_rank(u("bot_item", "b", "k"), cfg.num_items, cfg.zipf_exponent)
    user = F.concat(F.lit("bot"), F.lpad(F.col("b").cast("string"), _width(inj.num_bots, 4), "0"))
    time_text = render_time(t, _time_format(cfg, u("bot_time_format", "b", "k")))
    return df.select(_raw_struct(user, item_id_of(rank, cfg), F.lit("click"), time_text,
                                 F.lit(None), F.lit("bot")).alias("r")).select("r.*")


# ---------------------------------------------------------------- time rendering

def _end_ms(cfg: SyntheticConfig) -> int:
    end = cfg.end_datetime()
    end_ms = int(round(end.timestamp() * 1000))
    # Conservative bound: the longest possible user history must stay after 2000-01-01.
    longest_ms = int(cfg.max_events_per_user * max(cfg.between_gap_max_s, cfg.within_gap_max_s) * 1000
                     + cfg.return_gaps_per_user * cfg.return_gap_max_s * 1000 + _end_spread_ms(cfg))
    if end_ms - longest_ms <= _MS_2000:
        raise ConfigError(
            f"with end_time={cfg.end_time}, max_events_per_user={cfg.max_events_per_user} and "
            f"between_gap_max_s={cfg.between_gap_max_s} a user's history could start before 2000-01-01 "
            f"(the cleaner's window); lower max_events_per_user or between_gap_max_s")
    return end_ms


def _end_spread_ms(cfg: SyntheticConfig) -> int:
    return int(cfg.end_spread_s * 1000)


def _timestamp(ms: Column) -> Column:
    """Epoch milliseconds -> timestamp, exactly (decimal arithmetic, no floating point)."""
    return (ms.cast("decimal(20,0)") / F.lit(1000)).cast("timestamp")


def _time_format(cfg: SyntheticConfig, u: Column) -> Column:
    """The format name of a row: the configured one, or a weighted pick when "mixed"."""
    if cfg.time_format == "mixed":
        return pick(u, MIXED_FORMATS)
    return F.lit(cfg.time_format)


def render_time(ms: Column, fmt: Column) -> Column:
    """Epoch ms as text in ``fmt``: epoch_s ("1764374399.123"), epoch_ms, iso
    ("2025-11-28T23:59:59.123Z") or iso_offset (the same instant at +05:30).
    Needs the session time zone to be UTC (checked by :func:`generate`)."""
    secs = F.floor(ms / 1000)
    millis = F.lpad(F.pmod(ms, F.lit(1000)).cast("string"), 3, "0")
    shifted = ms + _OFFSET_MS
    iso_z = F.concat(F.from_unixtime(secs, "yyyy-MM-dd'T'HH:mm:ss"), F.lit("."), millis, F.lit("Z"))
    iso_off = F.concat(F.from_unixtime(F.floor(shifted / 1000), "yyyy-MM-dd'T'HH:mm:ss"), F.lit("."),
                       F.lpad(F.pmod(shifted, F.lit(1000)).cast("string"), 3, "0"), F.lit("+05:30"))
    return (F.when(fmt == "epoch_s", F.concat(secs.cast("string"), F.lit("."), millis))
            .when(fmt == "epoch_ms", ms.cast("string"))
            .when(fmt == "iso", iso_z)
            .otherwise(iso_off))


def _device(u: Column) -> Column:
    return F.element_at(F.array(*[F.lit(d) for d in DEVICES]), (F.floor(u * len(DEVICES)) + 1).cast("int"))
