"""Stage 1 end to end on synthetic logs: exact reconciliation, reruns, vocabulary, Petastorm shards."""
import datetime as dt

import pytest
from pyspark.sql import functions as F

from interest_tracker import io
from interest_tracker.layout import Stage1Layout
from interest_tracker.prepare.config import InputConfig, PrepareConfig, SequenceConfig
from interest_tracker.prepare.pipeline import run_prepare
from interest_tracker.synthetic.config import REJECT_REASON_OF_KIND, InjectionConfig, SyntheticConfig
from interest_tracker.synthetic.generator import generate
from interest_tracker.synthetic.writers import write_raw

RUN_DATE = dt.date(2026, 11, 28)
INJECT = InjectionConfig(malformed=0.01, missing_field=0.01, oversized_field=0.01, bad_time=0.01,
                         out_of_window=0.01, unknown_event_type=0.01, exact_duplicate=0.02, replay=0.02, num_bots=2)


def _synthetic(num_users=40, seed=7, injection=INJECT):
    return SyntheticConfig(num_users=num_users, num_items=300, num_categories=5, events_per_user=30,
                           min_events_per_user=10, max_events_per_user=60, end_time="2026-11-28T23:00:00Z",
                           seed=seed, injection=injection)


def _prepare_cfg(raw_url, fmt, out, **seq):
    return PrepareConfig(input=InputConfig(path=raw_url, format=fmt), output_root=out,
                         sequences=SequenceConfig(window_length=10, num_row_groups=8, **seq))


def _expected(counts):
    rejected = {REJECT_REASON_OF_KIND[k]: counts[k] for k in REJECT_REASON_OF_KIND if counts[k]}
    dups = {k: v for k, v in {"exact": counts["exact_duplicate"], "replay": counts["replay"]}.items() if v}
    return rejected, dups


@pytest.fixture(scope="module")
def jsonl_run(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("prep")
    data = generate(spark, _synthetic())
    counts = write_raw(data, str(root / "raw"), "jsonl")
    cfg = _prepare_cfg(str(root / "raw"), "jsonl", str(root / "out"))
    report = run_prepare(spark, cfg, RUN_DATE)
    return {"root": root, "counts": counts, "cfg": cfg, "report": report}


def test_jsonl_counts_reconcile_exactly_with_injected_faults(jsonl_run):
    c, rep = jsonl_run["counts"], jsonl_run["report"]["counts"]
    rejected, dups = _expected(c)
    assert rep["rejected"] == rejected
    assert rep["duplicates"] == dups
    assert rep["quarantined"] == {"BOT_RATE_MINUTE": c["bot_events"]}
    assert rep["clean"] == c["ordinary_events"]
    assert rep["input_rows"] == rep["clean"] + sum(rejected.values()) + sum(dups.values()) + c["bot_events"]
    assert jsonl_run["report"]["reconciled"] is True


def test_outputs_match_their_contracts_and_rejects_keep_the_record(spark, jsonl_run):
    from interest_tracker.contracts import load_contract, schema_matches

    out = io.to_url(str(jsonl_run["root"] / "out"))
    for table, contract in [("events", "clean_events"), ("rejected", "rejected_events"),
                            ("quarantine", "quarantined_events"), ("sessions", "sessions")]:
        df = spark.read.parquet(io.join(out, table))  # read as written, then compare to the contract
        assert schema_matches(df.select(*load_contract(contract).columns).schema, load_contract(contract)) == []
    rejected = spark.read.parquet(io.join(out, "rejected"))
    mal = rejected.where("reject_reason = 'MALFORMED'").collect()
    assert mal and all(r.raw_record and r.reject_detail for r in mal)
    assert rejected.where("raw_record is null").count() == 0


def test_rerun_same_date_is_idempotent(spark, jsonl_run, tmp_path):
    out = io.to_url(str(jsonl_run["root"] / "out"))

    def snapshot():
        snap = {}
        for table in ("events", "rejected", "quarantine", "sessions"):
            df = spark.read.parquet(io.join(out, table))
            snap[table] = sorted(tuple(r) for r in df.collect())
        for split in ("train", "valid", "test"):
            df = spark.read.parquet(Stage1Layout(out, RUN_DATE).dataset().split(split))
            snap[split] = sorted((r.window_id, tuple(r.input_items), tuple(r.target_mask)) for r in df.collect())
        return snap

    before = snapshot()
    layout = Stage1Layout(out, RUN_DATE)
    info_before = layout.read_dataset_info(spark)
    report = run_prepare(spark, jsonl_run["cfg"], RUN_DATE)
    after = snapshot()
    assert after == before
    assert report["counts"] == jsonl_run["report"]["counts"]
    info_after = layout.read_dataset_info(spark)
    assert info_after["fingerprint"] == info_before["fingerprint"]
    assert info_after["vocab_version"] == 1


def test_petastorm_two_shards_hold_every_row_once(jsonl_run):
    from petastorm import make_batch_reader, make_reader

    url = Stage1Layout(str(jsonl_run["root"] / "out"), RUN_DATE).dataset().split("train")
    shards = []
    for shard in range(2):
        ids = []
        with make_batch_reader(url, num_epochs=1, cur_shard=shard, shard_count=2, workers_count=1,
                               shuffle_row_groups=False) as reader:
            for batch in reader:
                assert batch.input_items.shape[1] == 10  # fixed-length arrays
                ids += list(batch.window_id)
        shards.append(ids)
    assert shards[0] and shards[1]
    assert not set(shards[0]) & set(shards[1])
    all_ids = shards[0] + shards[1]
    assert len(all_ids) == len(set(all_ids)) == jsonl_run["report"]["sequences"]["rows"]["train"]
    with make_reader(url, num_epochs=1, workers_count=1) as reader:  # Unischema attached
        row = next(iter(reader))
        assert row.input_items.shape == (10,) and row.input_items.dtype.name == "int32"


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_csv_and_parquet_inputs_reconcile(spark, tmp_path, fmt):
    data = generate(spark, _synthetic(num_users=15, seed=11))
    counts = write_raw(data, str(tmp_path / "raw"), fmt)
    cfg = PrepareConfig(input=InputConfig(path=str(tmp_path / "raw"), format=fmt), output_root=str(tmp_path / "out"),
                        write_sequences=False)
    rep = run_prepare(spark, cfg, RUN_DATE)["counts"]
    rejected, dups = _expected(counts)
    assert rep["rejected"] == rejected
    assert rep["duplicates"] == dups
    assert rep["clean"] == counts["ordinary_events"]


def test_vocabulary_is_stable_across_runs_with_new_items(spark, tmp_path):
    spark.catalog.clearCache()  # below: the three runs leave nothing cached in the session
    clean_cfg = InjectionConfig()
    out = str(tmp_path / "out")
    # day 1: users of seed 1 over a small catalogue; day 2: a larger catalogue brings new items
    d1 = generate(spark, SyntheticConfig(num_users=10, num_items=50, num_categories=2, events_per_user=20,
                                         min_events_per_user=10, max_events_per_user=30,
                                         end_time="2026-11-27T23:00:00Z", seed=1, injection=clean_cfg))
    write_raw(d1, str(tmp_path / "raw1"), "jsonl")
    run_prepare(spark, _prepare_cfg(str(tmp_path / "raw1"), "jsonl", out), dt.date(2026, 11, 27))
    v1 = {r.item_id: r.item_index for r in io.read_table(spark, io.join(io.to_url(out), "vocabulary", "version=1"), "vocabulary").collect()}
    d2 = generate(spark, SyntheticConfig(num_users=10, num_items=400, num_categories=2, events_per_user=20,
                                         min_events_per_user=10, max_events_per_user=30,
                                         end_time="2026-11-28T23:00:00Z", seed=2, injection=clean_cfg))
    write_raw(d2, str(tmp_path / "raw2"), "jsonl")
    rep = run_prepare(spark, _prepare_cfg(str(tmp_path / "raw2"), "jsonl", out), RUN_DATE)
    assert rep["sequences"]["vocab_version"] == 2
    v2 = {r.item_id: r.item_index for r in io.read_table(spark, io.join(io.to_url(out), "vocabulary", "version=2"), "vocabulary").collect()}
    assert {k: v2[k] for k in v1} == v1                      # existing items keep their index
    new = sorted(v2[k] for k in set(v2) - set(v1))
    assert new and new == list(range(max(v1.values()) + 1, max(v1.values()) + 1 + len(new)))  # appended densely
    assert sorted(v2.values()) == list(range(2, 2 + len(v2)))  # 0 pad, 1 unknown reserved
    # the day-2 sequences use history from day 1 too (history = all)
    assert rep["sequences"]["num_items"] == 2 + len(v2)
    # rerunning day 2 does not create a new version
    rep2 = run_prepare(spark, _prepare_cfg(str(tmp_path / "raw2"), "jsonl", out), RUN_DATE)
    assert rep2["sequences"]["vocab_version"] == 2
    assert Stage1Layout(out).latest_vocabulary_version(spark) == 2
    # A session outlives one run (tests, notebooks, chained bench scripts): every frame a
    # run caches (the parsed input, the events, the vocabulary and its new rows) is dropped.
    assert spark._jsparkSession.sharedState().cacheManager().isEmpty()


def test_failed_publish_keeps_previous_partition(spark, tmp_path):
    table = io.to_url(str(tmp_path / "t"))
    io.write_partition(spark.createDataFrame([(1,)], "x int"), table, "run_date=2026-11-28")

    # the new data fails in the middle of the write: some tasks finish, one raises
    bad = spark.range(100).repartition(4).select(
        F.expr("CASE WHEN id = 77 THEN CAST(raise_error('disk full') AS INT) ELSE CAST(id AS INT) END").alias("x"))
    with pytest.raises(Exception, match="disk full"):
        io.write_partition(bad, table, "run_date=2026-11-28")
    assert [r.x for r in spark.read.parquet(table).collect()] == [1]


def test_min_support_rows_go_to_rejected_and_reconcile(spark, tmp_path):
    from interest_tracker.prepare.config import CleaningConfig

    data = generate(spark, _synthetic(num_users=15, seed=5, injection=InjectionConfig()))
    counts = write_raw(data, str(tmp_path / "raw"), "parquet")
    cfg = PrepareConfig(input=InputConfig(path=str(tmp_path / "raw"), format="parquet"),
                        output_root=str(tmp_path / "out"), write_sequences=False,
                        cleaning=CleaningConfig(min_item_support=3, min_user_events=5))
    rep = run_prepare(spark, cfg, RUN_DATE)
    c = rep["counts"]
    assert c["rejected"].get("LOW_SUPPORT_ITEM", 0) > 0
    assert c["clean"] + sum(c["rejected"].values()) == counts["ordinary_events"]
    rejected = spark.read.parquet(str(tmp_path / "out" / "rejected"))
    by_reason = {r[0]: r[1] for r in rejected.groupBy("reject_reason").count().collect()}
    assert by_reason == c["rejected"]
    assert rep["reconciled"] is True


def test_a_clean_log_gets_an_empty_rejected_table_with_its_contract(spark, tmp_path):
    """No row fails validation: the rejected table is written empty (without a second pass over
    the input), still with its contract's columns, and DuckDB reads it; the counts reconcile."""
    import duckdb

    from interest_tracker.contracts import load_contract, schema_matches

    data = generate(spark, _synthetic(num_users=8, seed=3, injection=InjectionConfig()))
    counts = write_raw(data, str(tmp_path / "raw"), "parquet")
    cfg = PrepareConfig(input=InputConfig(path=str(tmp_path / "raw"), format="parquet"),
                        output_root=str(tmp_path / "out"), write_sequences=False)
    rep = run_prepare(spark, cfg, RUN_DATE)
    c = rep["counts"]
    assert c["rejected"] == {} and c["duplicates"] == {} and rep["reconciled"] is True
    assert c["clean"] == c["input_rows"] == counts["ordinary_events"] > 0
    rejected = spark.read.parquet(str(tmp_path / "out" / "rejected"))
    contract = load_contract("rejected_events")
    assert schema_matches(rejected.select(*contract.columns).schema, contract) == []
    assert rejected.count() == 0
    files = str(tmp_path / "out" / "rejected" / "run_date=*" / "*.parquet")
    assert duckdb.sql(f"select count(*) from read_parquet('{files}')").fetchone()[0] == 0
