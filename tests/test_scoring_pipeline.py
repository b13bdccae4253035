"""Stage 3 end to end on tiny data: contracts, exclusions, incremental == full,
idempotent reruns, failed writes, and a second engine reading the tables."""
from __future__ import annotations

import datetime as dt
import shutil

import numpy as np
import pytest

from interest_tracker.config import ConfigError, from_dict
from interest_tracker.contracts import load_contract, schema_matches
from interest_tracker.layout import ArtifactStore
from interest_tracker.scoring import state as st
from interest_tracker.scoring import tables as tb
from interest_tracker.scoring.config import ScoringConfig
from interest_tracker.scoring.pipeline import score_run
from test_scoring_support import (EVENT_TYPES, WINDOW_LENGTH, build_artifact, item_id, make_events,
                                  scoring_config, write_events, write_items)

D1, D2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)
UNAVAILABLE = ("i05", "i06")
TABLES = tb.TABLES


def _rows(spark, warehouse, name, run_date):
    df = st.read_partition(spark, tb.table_url(str(warehouse), name), name, run_date)
    key = ["user_id", "rank"] if name == tb.RECOMMENDATIONS else ["user_id"]
    return df.orderBy(*key).collect()


@pytest.fixture(scope="module")
def world(spark, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scoring")
    build_artifact(tmp / "artifacts")
    ev1 = make_events(range(0, 30), D1, seed=1, category_of_user=lambda u: u % 6)
    # a tie in time: u003's last two events share a timestamp (order falls back to item id, event type)
    u3 = [e for e in ev1 if e["user_id"] == "u003"]
    assert len(u3) >= 3
    u3[-1]["event_time"] = u3[-2]["event_time"]
    # users 20..29 get new events (often more than L, in another category), 30..39 are new
    ev2 = make_events(range(20, 40), D2, seed=2, per_user=(1, 8), category_of_user=lambda u: (u + 3) % 6,
                      unknown_items=True)
    write_events(spark, tmp / "stage1", D1, ev1)
    write_events(spark, tmp / "stage1", D2, ev2)
    extra = {
        "item_availability_path": write_items(spark, tmp / "availability",
                                              [(item_id(i), item_id(i) not in UNAVAILABLE) for i in range(60)],
                                              "item_id string, available boolean"),
        "item_categories_path": write_items(spark, tmp / "categories",
                                            [(item_id(i), f"c{i // 10}") for i in range(60)],
                                            "item_id string, category string"),
    }
    wa, wb = tmp / "wa", tmp / "wb"
    r1 = score_run(spark, scoring_config(tmp, wa, mode="full", database="scoring_a", **extra), D1)
    shutil.copytree(wa, wb)
    inc = scoring_config(tmp, wa, mode="incremental", database="scoring_a", **extra)
    r2 = score_run(spark, inc, D2)
    full = scoring_config(tmp, wb, mode="full", database="scoring_b", **extra)
    r2_full = score_run(spark, full, D2)
    snapshot = {name: _rows(spark, wa, name, D2) for name in TABLES}
    return dict(tmp=tmp, wa=wa, wb=wb, inc=inc, runs=(r1, r2, r2_full), events=ev1 + ev2, snapshot=snapshot,
                extra=extra)


def test_runs_report_what_they_did(world):
    r1, r2, r2_full = world["runs"]
    assert (r1.mode, r1.users, r1.users_encoded) == ("full", 30, 30)
    assert (r2.mode, r2.users, r2.users_encoded) == ("incremental", 40, 20)
    assert (r2_full.mode, r2_full.users, r2_full.users_encoded) == ("full", 40, 40)


def test_runs_leave_the_sessions_arrow_batch_size_as_they_found_it(spark, world):
    """executor.arrow_batch_size (16 here) holds for the run only: after the three runs of
    ``world`` the session's value is unset again, and an explicit value survives the helper."""
    from interest_tracker.scoring.pipeline import ARROW_BATCH_CONF
    from interest_tracker.spark import session_conf

    assert world["inc"].executor.arrow_batch_size == 16
    assert spark.conf.get(ARROW_BATCH_CONF, None) is None
    spark.conf.set(ARROW_BATCH_CONF, "777")
    try:
        with session_conf(spark, {ARROW_BATCH_CONF: "16", "spark.sql.session.timeZone": None}):
            assert spark.conf.get(ARROW_BATCH_CONF) == "16"
        assert spark.conf.get(ARROW_BATCH_CONF) == "777"
        with pytest.raises(RuntimeError), session_conf(spark, {ARROW_BATCH_CONF: "8"}):
            raise RuntimeError("a failed run")
        assert spark.conf.get(ARROW_BATCH_CONF) == "777"
    finally:
        spark.conf.unset(ARROW_BATCH_CONF)
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"


def test_each_table_schema_equals_its_contract(spark, world):
    for name in TABLES:
        contract = load_contract(name)
        assert schema_matches(spark.table(f"scoring_a.{name}").schema, contract) == []
        assert schema_matches(st.read_partition(spark, tb.table_url(str(world["wa"]), name), name, D2).schema,
                              contract) == []
        assert spark.table(f"scoring_a.{name}").where(f"run_date = DATE'{D2}'").count() == len(
            world["snapshot"][name])


def test_incremental_equals_full_recomputation(spark, world):
    for name in TABLES:
        inc = world["snapshot"][name]
        full = _rows(spark, world["wb"], name, D2)
        assert len(inc) == len(full) > 0, name
        # exact equality, floats included: both modes run the same code on the same
        # inputs in fixed-shape batches (see topk.py), so no tolerance is needed
        assert inc == full, name


def test_consumed_and_unavailable_items_are_never_recommended(world):
    recs = world["snapshot"][tb.RECOMMENDATIONS]
    consumed = {}
    for e in world["events"]:
        consumed.setdefault(e["user_id"], set()).add(e["item_id"])
    assert len(recs) == 40 * 5
    for r in recs:
        assert r.item_id not in consumed[r.user_id], r
        assert r.item_id not in UNAVAILABLE
    assert all(r.item_id.startswith("i") for r in recs)  # original string ids, not indexes


def test_vectors_and_topk_match_an_independent_numpy_computation(world):
    """Recompute a few users from the raw events in plain Python: features, last L
    events, the model's encode_last, and brute-force top-K with numpy."""
    import torch

    from interest_tracker.model import load_model

    model = load_model(world["tmp"] / "artifacts" / "v1")
    interest = {r.user_id: r for r in world["snapshot"][tb.INTEREST]}
    recs = {}
    for r in world["snapshot"][tb.RECOMMENDATIONS]:
        recs.setdefault(r.user_id, []).append(r)
    items = model.item_vectors().detach().numpy().astype(np.float64)
    bias = model.output_bias.detach().numpy().astype(np.float64)
    for user in ("u003", "u025", "u034"):
        evs = sorted((e for e in world["events"] if e["user_id"] == user),
                     key=lambda e: (e["event_time"], e["item_id"], e["event_type"]))  # prepare.ordering.ORDER
        feats = []
        for i, e in enumerate(evs):
            prev = evs[i - 1] if i else None
            gap = np.log1p((e["event_time"] - prev["event_time"]).total_seconds()) if prev else 0.0
            start = 1 if prev is None or prev["session_id"] != e["session_id"] else 0
            index = int(e["item_id"][1:]) + 2 if e["item_id"].startswith("i") else 1
            feats.append((index, EVENT_TYPES.index(e["event_type"]) + 1, gap, start))
        last = feats[-WINDOW_LENGTH:]
        t = [torch.tensor([[f[j] for f in last]]) for j in range(4)]
        with torch.no_grad():
            want = model.encode_last(t[0], t[1], t[2].float(), t[3], torch.tensor([len(last)]))[0].numpy()
        row = interest[user]
        assert row.events_used == len(last) and row.last_event_time == evs[-1]["event_time"]
        # different batch shape than Spark's run -> float32 rounding differences only
        np.testing.assert_allclose(np.array(row.vector), want, rtol=1e-5, atol=1e-6)
        scores = items @ np.array(row.vector, dtype=np.float64) + bias
        banned = {0, 1} | {int(x[1:]) + 2 for x in UNAVAILABLE} | {f[0] for f in feats}
        order = [i for i in np.argsort(-scores, kind="stable") if i not in banned][:5]
        assert [r.item_id for r in recs[user]] == [item_id(i - 2) for i in order]
        assert [r.rank for r in recs[user]] == [1, 2, 3, 4, 5]
        np.testing.assert_allclose([r.score for r in recs[user]], scores[order], rtol=1e-5, atol=1e-5)


def test_drift_compares_with_the_previous_run(world):
    drift = {r.user_id: r for r in world["snapshot"][tb.DRIFT]}
    assert len(drift) == 40
    assert all(drift[f"u{u:03d}"].cosine_similarity is None for u in range(30, 40))  # new users
    assert all(drift[f"u{u:03d}"].cosine_similarity == pytest.approx(1.0, abs=1e-6) for u in range(0, 20))
    changed = [drift[f"u{u:03d}"].cosine_similarity for u in range(20, 30)]
    assert all(-1.0 <= c <= 1.0 for c in changed) and min(changed) < 0.99
    assert all(r.previous_run_date == D1 for r in drift.values())
    # top category = most frequent category of the user's recommendations (ties: smallest)
    recs = {}
    for r in world["snapshot"][tb.RECOMMENDATIONS]:
        recs.setdefault(r.user_id, []).append(f"c{int(r.item_id[1:]) // 10}")
    for user, cats in recs.items():
        counts = {c: cats.count(c) for c in cats}
        top = sorted(counts, key=lambda c: (-counts[c], c))[0]
        d = drift[user]
        assert d.top_category == top
        if d.previous_top_category is None:
            assert d.top_category_changed is None and user >= "u030"
        else:
            assert d.top_category_changed == (d.previous_top_category != top)


def test_rerun_same_date_gives_same_output_without_duplicates(spark, world):
    result = score_run(spark, world["inc"], D2)
    assert result.mode == "incremental"
    for name in TABLES:
        again = _rows(spark, world["wa"], name, D2)
        assert again == world["snapshot"][name], name
    recs = world["snapshot"][tb.RECOMMENDATIONS]
    assert len({(r.user_id, r.rank) for r in recs}) == len(recs)
    assert spark.table("scoring_a.user_interest").where(f"run_date = DATE'{D2}'").count() == 40


def test_failure_mid_write_leaves_previous_tables_readable(spark, world, monkeypatch):
    calls = []
    real = tb.write_staging

    def fail_on_second_table(df, url):
        calls.append(url)
        if len(calls) == 2:
            real(df.limit(3), url)  # half-written staging output, then the job dies
            raise RuntimeError("executor lost (injected)")
        real(df, url)

    monkeypatch.setattr(tb, "write_staging", fail_on_second_table)
    with pytest.raises(RuntimeError, match="injected"):
        score_run(spark, world["inc"], D2)
    assert len(calls) == 2
    for name in TABLES:
        assert _rows(spark, world["wa"], name, D2) == world["snapshot"][name], name
        # readers of the whole table see exactly the two published partitions
        df = spark.read.schema(load_contract(name).spark_schema()).parquet(tb.table_url(str(world["wa"]), name))
        assert sorted(r.run_date for r in df.select("run_date").distinct().collect()) == [D1, D2]


def test_a_second_engine_reads_the_tables(spark, world):
    duckdb = pytest.importorskip("duckdb")
    root = world["wa"]
    con = duckdb.connect()
    rows = con.execute(
        f"SELECT user_id, rank, item_id, score, run_date FROM read_parquet('{root}/user_recommendations/"
        f"run_date=*/*.parquet', hive_partitioning = true) WHERE run_date = DATE '{D2}' ORDER BY user_id, rank"
    ).fetchall()
    want = [(r.user_id, r.rank, r.item_id, r.score, r.run_date) for r in world["snapshot"][tb.RECOMMENDATIONS]]
    assert [(u, k, i, r) for u, k, i, _, r in rows] == [(u, k, i, r) for u, k, i, _, r in want]
    np.testing.assert_allclose([r[3] for r in rows], [w[3] for w in want], rtol=0, atol=0)
    vec = con.execute(f"SELECT vector FROM read_parquet('{root}/user_interest/run_date={D2}/*.parquet') "
                      "WHERE user_id = 'u025'").fetchone()[0]
    spark_vec = next(r.vector for r in world["snapshot"][tb.INTEREST] if r.user_id == "u025")
    assert np.array_equal(np.array(vec, dtype=np.float32), np.array(spark_vec, dtype=np.float32))


def test_model_change_makes_incremental_recompute_everyone(spark, world):
    """The new model is an ensemble of two members (``model.members``): its interest vector is
    twice as wide, and its top-K is the mean of the members' scores."""
    from interest_tracker.model import load_model

    tmp = world["tmp"]
    build_artifact(tmp / "artifacts", version="v2", seed=7, members=2)
    try:
        cfg = scoring_config(tmp, world["wb"], mode="incremental", database="scoring_b", model_version="v2",
                             **world["extra"])
        result = score_run(spark, cfg, dt.date(2026, 11, 3))
    finally:
        ArtifactStore(str(tmp / "artifacts")).set_latest("v1")
    assert (result.mode, result.users, result.users_encoded) == ("full", 40, 40)
    drift = _rows(spark, world["wb"], tb.DRIFT, dt.date(2026, 11, 3))
    assert all(r.cosine_similarity is None for r in drift)  # vectors of different models are not compared
    model = load_model(tmp / "artifacts" / "v2")
    interest = {r.user_id: np.array(r.vector, dtype=np.float64)
                for r in _rows(spark, world["wb"], tb.INTEREST, dt.date(2026, 11, 3))}
    assert {len(v) for v in interest.values()} == {16}
    recs = [r for r in _rows(spark, world["wb"], tb.RECOMMENDATIONS, dt.date(2026, 11, 3)) if r.user_id == "u003"]
    v = interest["u003"]
    members = [t.item_vectors().detach().numpy() @ v[8 * i:8 * (i + 1)] + t.output_bias.detach().numpy()
               for i, t in enumerate(model.towers)]
    mean = (members[0] + members[1]) / 2
    np.testing.assert_allclose([r.score for r in recs], [mean[int(r.item_id[1:]) + 2] for r in recs], rtol=1e-4)
    consumed = {e["item_id"] for e in world["events"] if e["user_id"] == "u003"} | set(UNAVAILABLE)
    best = [i for i in np.argsort(-mean[2:], kind="stable") if item_id(i) not in consumed][:len(recs)]
    assert [r.item_id for r in recs] == [item_id(i) for i in best]


def test_config_errors_say_how_to_fix_them(spark, tmp_path):
    with pytest.raises(ConfigError, match="unknown config key"):
        from_dict(ScoringConfig, {"events_root": "a", "artifact_root": "b", "warehouse_root": "c", "topk": 3})
    with pytest.raises(ConfigError, match="top_k"):
        from_dict(ScoringConfig, {"events_root": "a", "artifact_root": "b", "warehouse_root": "c", "top_k": 0})
    cfg = scoring_config(tmp_path, tmp_path / "w")
    with pytest.raises(ConfigError, match="train a model first"):
        score_run(spark, cfg, D1)
    # a missing optional item table names its key, before anything else is read
    for key in ("item_availability_path", "item_categories_path"):
        with pytest.raises(ConfigError, match=f"'{key}' is '.*nope', which does not exist"):
            score_run(spark, scoring_config(tmp_path, tmp_path / "w", **{key: str(tmp_path / "nope")}), D1)


def test_incremental_rescoring_after_availability_change_equals_full(spark, world):
    """No new events, but one more item became unavailable: incremental mode must rescore
    every user from the stored vectors (not carry old lists) and still equal a full run."""
    tmp, d5 = world["tmp"], dt.date(2026, 11, 5)
    before = [r.item_id for r in world["snapshot"][tb.RECOMMENDATIONS]]
    hot = max(sorted(set(before)), key=before.count)  # the most recommended item goes out of stock
    wc = tmp / "wc"
    shutil.copytree(world["wa"], wc)
    extra = dict(world["extra"])
    extra["item_availability_path"] = write_items(
        spark, tmp / "availability2", [(item_id(i), item_id(i) not in UNAVAILABLE + (hot,)) for i in range(60)],
        "item_id string, available boolean")
    inc = score_run(spark, scoring_config(tmp, world["wa"], mode="incremental", database="scoring_a", **extra), d5)
    full = score_run(spark, scoring_config(tmp, wc, mode="full", database="scoring_c", **extra), d5)
    assert (inc.mode, inc.users, inc.users_encoded) == ("incremental", 40, 0)
    assert (full.mode, full.users_encoded) == ("full", 40)
    for name in TABLES:
        assert _rows(spark, world["wa"], name, d5) == _rows(spark, wc, name, d5), name
    recs = _rows(spark, world["wa"], tb.RECOMMENDATIONS, d5)
    assert len(recs) == 200 and all(r.item_id != hot for r in recs)
