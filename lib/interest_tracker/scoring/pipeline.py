"""Stage 3 end to end: events + model artifact -> the four scoring tables for one run date.

Full mode recomputes every user; incremental mode runs the model only for users with
events in stage-1 partitions newer than the previous state, and carries the other
users' vectors (and, when nothing that shapes recommendations changed, their
recommendations) forward from the state. Both modes write identical tables; the tests
check that row for row.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass

import numpy as np
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from .. import io

from . import state as st
from . import tables as tb
from ..layout.warehouse import Warehouse
from ..spark import session_conf
from .artifact import VOCAB_SCHEMA, Artifact, load_artifact
from .blend import resolve_scorer
from .config import ScoringConfig
from .predict import OUTPUT_SCHEMA, ScoringPayload, make_score_fn

log = logging.getLogger(__name__)

AVAILABILITY_SCHEMA = T.StructType([T.StructField("item_id", T.StringType()),
                                    T.StructField("available", T.BooleanType())])
CATEGORY_SCHEMA = T.StructType([T.StructField("item_id", T.StringType()),
                                T.StructField("category", T.StringType())])


@dataclass(frozen=True)
class RunResult:
    run_date: dt.date
    model_version: str
    mode: str
    """The mode actually run: 'incremental' falls back to 'full' without a usable state."""
    users: int
    users_encoded: int
    tables: dict
    scorer: str = "model"
    """What user_recommendations holds: 'model', 'blend' or 'rule' (ScoringConfig.scorer,
    'auto' resolved from the artifact)."""


def unavailable_items(spark: SparkSession, path: str | None) -> list[str]:
    if not path:
        return []
    df = spark.read.schema(AVAILABILITY_SCHEMA).parquet(io.to_url(path))
    nulls = df.where(F.col("item_id").isNull() | F.col("available").isNull()).count()
    if nulls:
        raise ValueError(f"{path}: {nulls} rows have a null item_id or available; "
                         "every row needs both (item_id string, available boolean)")
    return sorted(r.item_id for r in df.where(~F.col("available")).select("item_id").distinct().collect())


def settings_fingerprint(cfg: ScoringConfig, model_version: str, unavailable: list[str],
                         scorer: str = "model", blend: tuple | None = None) -> str:
    """What decides a user's recommendations besides their vector, consumed and last items."""
    settings = {"model_version": model_version, "top_k": cfg.top_k, "exclude_consumed": cfg.exclude_consumed,
                "unavailable": unavailable}
    if scorer != "model":  # the model's fingerprint stays what it was before blends existed
        settings.update(scorer=scorer, blend=list(blend or ()))
    text = json.dumps(settings, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def build_payload(art: Artifact, unavailable: list[str], scorer: str = "model", blend: tuple | None = None,
                  priors: bytes | None = None) -> ScoringPayload:
    mask = None
    if unavailable:
        wanted = set(unavailable)
        mask = np.array([i is not None and i in wanted for i in art.item_ids], dtype=bool)
        log.info("%d items marked unavailable (%d of them in the model's vocabulary)", len(wanted), int(mask.sum()))
    return ScoringPayload(art.model_version, art.config_json, art.weights, art.item_ids, mask, scorer, blend, priors)


def _features_fn():
    from ..prepare.features import with_sequence_features

    return with_sequence_features


def _model_input(windows: DataFrame) -> DataFrame:
    return windows.select("user_id", "items", "event_types", "log_gaps", "session_starts", "consumed_item_ids",
                          F.lit(None).cast("array<float>").alias("vector"), "events_used", "last_event_time",
                          F.element_at("item_ids", -1).alias("last_item_id"))


def _carried_input(unchanged: DataFrame) -> DataFrame:
    """Users without new events, fed to top-K with their state vector (no RNN)."""
    empty_i = F.array().cast("array<int>")
    return unchanged.select("user_id", empty_i.alias("items"), empty_i.alias("event_types"),
                            F.array().cast("array<float>").alias("log_gaps"), empty_i.alias("session_starts"),
                            "consumed_item_ids", "vector", "events_used", "last_event_time",
                            F.element_at("item_ids", -1).alias("last_item_id"))


def _carried_recommendations(unchanged: DataFrame, previous_recs: DataFrame) -> DataFrame:
    """Users without new events and unchanged settings keep the previous run's lists."""
    lists = previous_recs.groupBy("user_id").agg(
        F.sort_array(F.collect_list(F.struct("rank", "item_id", "score"))).alias("r"))
    return unchanged.join(lists, "user_id", "left").select(
        "user_id", "vector",
        F.coalesce(F.col("r.item_id"), F.array().cast("array<string>")).alias("rec_item_ids"),
        F.coalesce(F.col("r.score"), F.array().cast("array<float>")).alias("rec_scores"),
        "events_used", "last_event_time")


#: Rows per Arrow batch sent to the scoring UDF (``executor.arrow_batch_size``).
ARROW_BATCH_CONF = "spark.sql.execution.arrow.maxRecordsPerBatch"


def score_run(spark: SparkSession, cfg: ScoringConfig, run_date: dt.date) -> RunResult:
    """Score ``run_date``; ``executor.arrow_batch_size`` holds for this run only (the session may go on)."""
    batch = cfg.executor.arrow_batch_size
    with session_conf(spark, {ARROW_BATCH_CONF: None if batch is None else str(batch)}):
        return _score_run(spark, cfg, run_date)


def _check_inputs(spark: SparkSession, cfg: ScoringConfig) -> None:
    """The optional item tables the config names must exist: checked before any work, so a typo
    fails with the key to fix instead of Spark's PATH_NOT_FOUND once the run is under way."""
    from ..config import ConfigError

    for key in ("item_availability_path", "item_categories_path"):
        path = getattr(cfg, key)
        if path and not io.exists(spark, io.to_url(path)):
            raise ConfigError(f"'{key}' is {path!r}, which does not exist; point it at the parquet table "
                              "(see ScoringConfig in scoring/config.py) or remove the key")


def _score_run(spark: SparkSession, cfg: ScoringConfig, run_date: dt.date) -> RunResult:
    _check_inputs(spark, cfg)
    art = load_artifact(spark, cfg.artifact_root, cfg.model_version)
    warehouse = Warehouse(cfg.warehouse_root)
    warehouse.recover(spark)  # a run killed while publishing is rolled back before anything reads the tables
    L = art.window_length
    unavailable = unavailable_items(spark, cfg.item_availability_path)
    scorer, weights, priors = resolve_scorer(cfg.scorer, art.url, art.meta)
    if cfg.blend is not None:  # pinned by the operator (e.g. backtested on earlier cutoffs)
        weights = cfg.blend_weights()
    blend = weights.as_tuple() if scorer != "model" else None
    log.info("scorer %s (requested %s)%s", scorer, cfg.scorer, f": weights {weights.to_dict()}" if blend else "")
    gap_aware = scorer != "model" and weights.gap_half_life_days > 0
    # A gap-aware blend changes with the run date for every user, so no list is carried over.
    fingerprint = settings_fingerprint(cfg, art.model_version, unavailable, scorer,
                                       blend + (run_date.isoformat(),) if gap_aware else blend)
    payload = spark.sparkContext.broadcast(build_payload(art, unavailable, scorer, blend, priors))
    vocab = spark.createDataFrame([(item, i) for i, item in enumerate(art.item_ids) if item is not None],
                                  VOCAB_SCHEMA)
    categories = None
    if cfg.item_categories_path:
        categories = (spark.read.schema(CATEGORY_SCHEMA).parquet(io.to_url(cfg.item_categories_path))
                      .where(F.col("category").isNotNull()).dropDuplicates(["item_id"]))

    state, state_date = (None, None)
    if cfg.mode == "incremental":
        state, state_date = st.read_previous_state(spark, cfg.warehouse_root, run_date)
        if state is None:
            log.info("incremental: no state before %s; scoring every user", run_date)
        else:
            versions = [r.model_version for r in state.select("model_version").distinct().collect()]
            if versions != [art.model_version]:
                log.warning("incremental: state of %s holds model version(s) %s, scoring with %s; "
                            "vectors are not comparable, so every user is recomputed",
                            state_date, versions, art.model_version)
                state, state_date = None, None

    unchanged = None
    if state is None:
        mode = "full"
        events = st.dedupe_events(st.read_events(spark, cfg.events_root, None, run_date))
        consumed_src = events.select("user_id", "item_id")
    else:
        mode = "incremental"
        new = st.read_events(spark, cfg.events_root, state_date, run_date)
        changed = new.select("user_id").distinct()
        old = state.join(changed, "user_id", "left_semi")
        events = st.dedupe_events(st.state_events(old).unionByName(new))
        consumed_src = st.state_consumed(old).unionByName(new.select("user_id", "item_id"))
        unchanged = state.join(changed, "user_id", "left_anti")

    tail = st.latest_events(events, L + 1)
    feats = _features_fn()(tail, vocab, art.event_types)
    windows = st.user_windows(feats, L).join(st.consumed_items(consumed_src), "user_id")
    windows = windows.persist(StorageLevel.MEMORY_AND_DISK)
    score_fn = make_score_fn(payload, L, cfg.top_k, cfg.exclude_consumed, cfg.executor)

    model_input = _model_input(windows)
    carried = None
    if unchanged is not None:
        same_settings = unchanged.where(F.col("settings_fingerprint") != fingerprint).limit(1).count() == 0
        if same_settings and warehouse.has_partition(spark, tb.RECOMMENDATIONS, state_date):
            prev_recs = warehouse.read_partition(spark, tb.RECOMMENDATIONS, state_date)
            carried = _carried_recommendations(unchanged, prev_recs)
        else:
            if gap_aware:  # the fingerprint holds the run date on purpose: only the day changed
                log.info("gap-aware blend: every list depends on the run date; rescoring every user from stored "
                         "vectors")
            else:
                log.info("recommendation settings changed since %s: rescoring every user from stored vectors",
                         state_date)
            model_input = model_input.unionByName(_carried_input(unchanged))
    if gap_aware:  # seconds from the user's last event to the end of the run date (UTC)
        as_of = dt.datetime.combine(run_date + dt.timedelta(days=1), dt.time(), dt.timezone.utc).timestamp()
        model_input = model_input.withColumn("since_last_s", F.lit(as_of) - F.col("last_event_time").cast("double"))
    scored = model_input.mapInPandas(score_fn, OUTPUT_SCHEMA)
    if carried is not None:
        scored = scored.unionByName(carried)
    scored = scored.persist(StorageLevel.MEMORY_AND_DISK)
    users = scored.count()
    users_encoded = windows.count()
    if users == 0:
        raise ValueError(f"no user has events in {cfg.events_root}/events up to {run_date}; "
                         "nothing to score (check events_root and the run date)")
    log.info("%s run %s: %d users, %d encoded by the model", mode, run_date, users, users_encoded)

    interest = tb.interest_table(scored, art.model_version, run_date)
    recs = tb.recommendations_table(scored, art.model_version, run_date)
    prev_date = warehouse.previous_run_date(spark, tb.INTEREST, run_date)
    prev_interest = warehouse.read_partition(spark, tb.INTEREST, prev_date) if prev_date else None
    prev_drift = (warehouse.read_partition(spark, tb.DRIFT, prev_date)
                  if prev_date and warehouse.has_partition(spark, tb.DRIFT, prev_date) else None)
    drift = tb.drift_table(interest, recs, run_date, categories, prev_interest, prev_drift, prev_date)

    new_state = tb.state_table(scored, windows, art.model_version, fingerprint, run_date)
    if unchanged is not None:
        kept = unchanged.withColumn("settings_fingerprint", F.lit(fingerprint)).withColumn("run_date", F.lit(run_date))
        new_state = new_state.unionByName(tb.conform(kept, tb.STATE))
    frames = {tb.INTEREST: interest, tb.RECOMMENDATIONS: recs, tb.DRIFT: drift, tb.STATE: new_state}
    try:
        published = tb.publish_tables(spark, cfg.warehouse_root, run_date, frames, model_version=art.model_version,
                                      extra={"mode": mode, "scorer": scorer})
    finally:
        scored.unpersist()
        windows.unpersist()
    if cfg.register_tables:
        tb.register_tables(spark, cfg.database, cfg.warehouse_root, run_date)
    return RunResult(run_date, art.model_version, mode, users, users_encoded, published, scorer)
