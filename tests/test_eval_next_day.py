"""bench/eval_next_day.py: metric functions and rules on small hand-computed cases.

The bench script is what produces the figures in docs/benchmarks.md, so the test
imports that file itself (by path: bench/ is not a package) rather than a copy.
"""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("eval_next_day", ROOT / "bench" / "eval_next_day.py")
ev = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ev)

CUTOFF = pd.Timestamp("2026-11-29", tz="UTC")


def _events(rows):
    """rows: (user, item, 'YYYY-MM-DD HH:MM:SS') -> the frame the evaluator works on."""
    return pd.DataFrame({"user_id": [r[0] for r in rows], "item_id": [r[1] for r in rows],
                         "event_type": "view", "ts": pd.to_datetime([r[2] for r in rows], utc=True)})


def test_hit_rate_mrr_recall_by_hand():
    recs = {"a": ["x", "y", "z"], "b": ["y", "x"], "c": ["q"]}
    first = {"a": "y", "b": "z", "d": "x"}  # d has no list: a miss
    assert ev.hit_rate(recs, first, 3) == pytest.approx(1 / 3)
    assert ev.hit_rate(recs, first, 1) == 0.0
    assert ev.mrr(recs, first, 3) == pytest.approx((1 / 2) / 3)
    nxt = {"a": ["x", "w"], "b": ["x", "y", "z", "v"]}
    # k=2: a {x} of {x, w} = 1/2, b {y, x} of 4 = 1/2 ; k=1: a {x} = 1/2, b {y} = 1/4
    assert ev.recall(recs, nxt, 2) == pytest.approx((0.5 + 0.5) / 2)
    assert ev.recall(recs, nxt, 1) == pytest.approx((0.5 + 0.25) / 2)
    assert math.isnan(ev.hit_rate(recs, {}, 3))


def test_targets_first_item_and_next_distinct_in_canonical_order():
    fut = _events([("a", "m", "2026-11-30 10:00:00"), ("a", "k", "2026-11-30 10:00:00"),  # tie: k < m
                   ("a", "k", "2026-11-30 11:00:00"), ("a", "z", "2026-11-30 12:00:00"),
                   ("b", "q", "2026-12-01 00:00:00")])
    first, nxt = ev.targets(fut, 3)
    assert first == {"a": "k", "b": "q"}
    assert nxt == {"a": ["k", "m"], "b": ["q"]}  # the first 3 events of a: k, m, k


def test_rules_by_hand():
    hist = _events([
        ("a", "p", "2026-10-01 00:00:00"), ("b", "p", "2026-10-02 00:00:00"), ("c", "p", "2026-10-03 00:00:00"),
        ("a", "r", "2026-11-20 00:00:00"), ("b", "r", "2026-11-25 00:00:00"),
        ("b", "s", "2026-11-26 00:00:00"), ("c", "t", "2026-11-27 00:00:00"),
    ])
    consumed = {u: set(g) for u, g in hist.groupby("user_id").item_id}
    assert ev.popularity(hist, ["a"], 2) == {"a": ["p", "r"]}
    # a consumed p and r: s, t (count 1, by id)
    assert ev.popularity_unconsumed(hist, consumed, ["a"], 2) == {"a": ["s", "t"]}
    # last 7 days (from 11-22): r, s, t once each; c consumed p and t -> r, s, then backfill (nothing left)
    assert ev.recent_popularity(hist, consumed, ["c"], 3, CUTOFF, 7) == {"c": ["r", "s"]}
    # a's last item is r; within 1 event of r: b's p->r->s gives p and s, a's p->r gives p
    # -> p (2), s (1); a consumed p -> s, then the fallback
    got = ev.cooccurrence(hist, consumed, ["a"], 3, 1, {"a": ["t", "s"]})
    assert got == {"a": ["s", "t"]}


def test_evaluate_end_to_end_by_hand():
    hist = _events([("a", "p", "2026-11-20 00:00:00"), ("b", "p", "2026-11-21 00:00:00"),
                    ("b", "q", "2026-11-22 00:00:00"), ("c", "q", "2026-11-23 00:00:00")])
    fut = _events([("a", "q", "2026-11-29 01:00:00"), ("b", "r", "2026-11-29 02:00:00"),
                   ("z", "p", "2026-11-29 03:00:00")])  # z is not returning
    tables = {"tables": {"a": ["r", "q"], "b": ["p"]}}
    res = ev.evaluate(hist, fut, tables, CUTOFF, k=2, next_n=10, recent_days=(30,), cooc_window=1)
    assert res["returning_users"] == 2
    assert res["first_item_unseen_before_cutoff"] == 1  # b's r: no one had it before the cutoff
    t = res["rows"]["tables"]
    assert t["hr@2"] == pytest.approx(0.5) and t["mrr@2"] == pytest.approx(0.25)
    assert t["covered"] == 2
    # popularity: p (2), q (2) -> [p, q]: a's q hit at rank 2, b's r missed
    assert res["rows"]["popularity"]["hr@2"] == pytest.approx(0.5)
    # unconsumed: a -> [q], b -> [] (only p, q exist): a hit at rank 1
    assert res["rows"]["popularity_unconsumed"]["mrr@2"] == pytest.approx(0.5)
    assert res["best_rule"] in res["rows"]
    assert "tables vs best rule" in ev.format_table(res)


def test_reads_raw_contract_and_table_partition(tmp_path):
    raw = pd.DataFrame({"user_id": ["a", "a", "b", "", "b"], "item_id": ["x", "y", "x", "x", "x"],
                        "event_type": ["view", "VIEW", "view", "view", "view"],
                        "event_time": ["1764374400", "1764374400123", "2025-11-29T00:00:00Z",
                                       "1764374400", "2025-11-29T00:00:00"],  # naive ISO: dropped
                        "session_id": None, "attributes": None})
    raw.to_json(tmp_path / "raw.jsonl", orient="records", lines=True)
    got = ev.read_raw_events(str(tmp_path / "raw.jsonl"))
    assert got.user_id.tolist() == ["a", "a", "b"]
    assert got.event_type.tolist() == ["view", "view", "view"]
    assert got.ts.tolist() == [pd.Timestamp(1764374400, unit="s", tz="UTC"),
                               pd.Timestamp(1764374400123, unit="ms", tz="UTC"),
                               pd.Timestamp("2025-11-29", tz="UTC")]
    part = tmp_path / "user_recommendations" / "run_date=2026-11-28"
    part.mkdir(parents=True)
    pq.write_table(pa.table({"user_id": ["a", "a", "b"], "rank": pa.array([2, 1, 1], pa.int32()),
                             "item_id": ["y", "x", "z"], "score": pa.array([0.1, 0.2, 0.3], pa.float32())}),
                   part / "part-0.parquet")
    import datetime as dt
    recs = ev.read_recommendations(str(tmp_path / "user_recommendations"), dt.date(2026, 11, 28))
    assert recs == {"a": ["x", "y"], "b": ["z"]}
    with pytest.raises(FileNotFoundError, match="run_date"):
        ev.read_recommendations(str(tmp_path / "nope"), dt.date(2026, 11, 28))


def test_main_prints_and_writes_json(tmp_path, capsys):
    raw = pd.DataFrame({"user_id": ["a", "a", "b", "b"], "item_id": ["x", "y", "x", "z"], "event_type": "view",
                        "event_time": ["1764300000", "1764460800", "1764300000", "1764460900"]})
    raw.to_csv(tmp_path / "raw.csv", index=False)
    out = tmp_path / "res.json"
    assert ev.main(["--run-date", "2025-11-28", "--events", str(tmp_path / "raw.csv"), "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["returning_users"] == 2
    # a's next item is y, b's z; popularity (unconsumed) has nothing left for either but y/z
    assert res["rows"]["popularity_unconsumed"]["hr@20"] == pytest.approx(0.0)
    assert "cooccurrence" in capsys.readouterr().out
    # a labelled table whose path holds '=' (as partition paths do)
    part = tmp_path / "cut=1" / "user_recommendations" / "run_date=2025-11-28"
    part.mkdir(parents=True)
    pq.write_table(pa.table({"user_id": ["a", "b"], "rank": pa.array([1, 1], pa.int32()), "item_id": ["y", "q"]}),
                   part / "p.parquet")
    ev.main(["--run-date", "2025-11-28", "--events", str(tmp_path / "raw.csv"), "--json", str(out),
             "--recommendations", f"model={tmp_path / 'cut=1' / 'user_recommendations'}"])
    res = json.loads(out.read_text())
    assert res["rows"]["model"]["hr@20"] == pytest.approx(0.5) and res["rows"]["model"]["covered"] == 2
    with pytest.raises(ValueError, match="no user has events both before and after"):
        ev.main(["--run-date", "2026-11-28", "--events", str(tmp_path / "raw.csv")])
