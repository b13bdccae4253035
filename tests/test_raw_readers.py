"""Every raw record becomes exactly one row, read by its column names, or the run fails with the fix.

Faults an outside sweep found in the readers (2026-12-02), each once silent: a JSON line
holding two objects or an array, CSV columns taken by position, a quoted CSV line break,
CSV bytes that are not UTF-8, Parquet files with different column sets, files in
subdirectories; and a rerun that left an earlier run's windows in place.
"""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from interest_tracker import io
from interest_tracker.config import ConfigError, InputError
from interest_tracker.prepare.config import InputConfig, PrepareConfig, SequenceConfig
from interest_tracker.prepare.pipeline import run_prepare

RUN_DATE = dt.date(2026, 11, 28)
T0 = 1764288000


def _rows(spark, path, fmt):
    df = io.read_raw(spark, f"file://{path}", fmt)
    return [r.asDict() for r in df.collect()]


def _event(user, item, t=T0, **extra):
    return {"user_id": user, "item_id": item, "event_type": "view", "event_time": str(t), **extra}


def test_jsonl_line_that_is_not_exactly_one_object_is_one_malformed_row(spark, tmp_path):
    lines = [
        '{"user_id":"a","item_id":"i","event_type":"view","event_time":"1764288000"}',
        '{"user_id":"b","item_id":"i","event_type":"view","event_time":"1"}{"user_id":"c","item_id":"i"}',
        "[]",
        '[{"user_id":"d","item_id":"i"},{"user_id":"e","item_id":"i"}]',
        '{"user_id":"f","item_id":"i","event_type":"view","event_time":"1"} trailing',
        "null",
        "",
        "   \t",
        '{"user_id":12345.0,"item_id":7,"event_type":"view","event_time":1764288000,"attributes":{"x":[1,2]}}',
    ]
    (tmp_path / "p.jsonl").write_text("\n".join(lines) + "\n")
    rows = _rows(spark, tmp_path, "jsonl")
    # one row per non-blank line, in the file's order
    assert [r["malformed"] for r in rows] == [False, True, True, True, True, True, False]
    assert [r["raw_record"] for r in rows[1:6]] == [lines[1], lines[2], lines[3], lines[4], lines[5]]
    assert all(r["user_id"] is None for r in rows[1:6])
    assert (rows[0]["user_id"], rows[6]["user_id"], rows[6]["item_id"], rows[6]["attributes"]) == (
        "a", "12345.0", "7", '{"x":[1,2]}')


def test_jsonl_files_in_subdirectories_are_read(spark, tmp_path):
    (tmp_path / "hour=01").mkdir()
    (tmp_path / "a.jsonl").write_text('{"user_id":"x","item_id":"i","event_type":"view","event_time":"1"}\n')
    (tmp_path / "hour=01" / "b.jsonl").write_text('{"user_id":"y","item_id":"i","event_type":"view","event_time":"1"}\n')
    assert sorted(r["user_id"] for r in _rows(spark, tmp_path, "jsonl")) == ["x", "y"]


def test_csv_columns_are_taken_by_header_name(spark, tmp_path):
    (tmp_path / "a.csv").write_text(
        "\ufeffitem_id,event_time,user_id,event_type,attributes\n"     # another order, no session_id, a BOM
        'ITEM1,1764288000,USER1,view,"{""note"":""x, y""}"\n'
        "ITEM2,1764288060,USER1,view,\n")
    (tmp_path / "b.csv").write_text("ITEM3,1764288120,USER2,view,\n")  # no header: no row lost
    rows = sorted(_rows(spark, tmp_path, "csv"), key=lambda r: r["item_id"])
    assert [(r["user_id"], r["item_id"], r["event_time"], r["session_id"], r["attributes"], r["malformed"])
            for r in rows] == [("USER1", "ITEM1", "1764288000", None, '{"note":"x, y"}', False),
                               ("USER1", "ITEM2", "1764288060", None, None, False),
                               ("USER2", "ITEM3", "1764288120", None, None, False)]


def test_csv_line_with_an_unclosed_quote_is_malformed_not_cut_short(spark, tmp_path):
    lines = ["user_id,item_id,event_type,event_time,session_id,attributes",
             'u1,i1,view,1764288000,s1,"{""note"":""line1',      # a line break inside quotes...
             'line2""}"',                                          # ...leaves two broken lines
             'u2,"i2,view,1764288000,s1,',                         # a stray quote
             "u3,i3,view,1764288000,s1,",
             "u4,i4,view", "u5,i5,view,1764288000,s1,{},extra"]   # too few, too many columns
    (tmp_path / "p.csv").write_text("\n".join(lines) + "\n")
    rows = _rows(spark, tmp_path, "csv")
    assert [r["malformed"] for r in rows] == [True, True, True, False, True, True]
    assert [r["raw_record"] for r in rows if r["malformed"]] == lines[1:4] + lines[5:]
    assert rows[3]["user_id"] == "u3"


def test_csv_without_a_header_row_fails_with_the_fix(spark, tmp_path):
    (tmp_path / "p.csv").write_text("u1,i1,view,1764288000\nu2,i1,view,1764288000\n")
    with pytest.raises(InputError, match="must be a header naming the raw contract's columns"):
        io.read_raw(spark, f"file://{tmp_path}", "csv")


def test_csv_files_with_different_headers_fail_the_run_with_the_fix(spark, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.csv").write_text("user_id,item_id,event_type,event_time\nu1,i1,view,1764288000\n")
    (raw / "b.csv").write_text("item_id,user_id,event_type,event_time\ni2,u2,view,1764288000\n")
    cfg = PrepareConfig(input=InputConfig(path=str(raw), format="csv"), output_root=str(tmp_path / "out"),
                        write_sequences=False)
    with pytest.raises(InputError, match="does not conform to the first file's header.*b.csv"):
        run_prepare(spark, cfg, RUN_DATE)
    assert not (tmp_path / "out" / "_manifests" / "run_date=2026-11-28.json").exists()


def test_csv_bytes_that_are_not_utf8_make_the_record_malformed(spark, tmp_path):
    (tmp_path / "p.csv").write_bytes(b"user_id,item_id,event_type,event_time\n"
                                     b"u\xff\xfe1,i1,view,1764288000\nu\xfd\xfc1,i1,view,1764288000\n"
                                     b"ok,i1,view,1764288000\n")
    rows = _rows(spark, tmp_path, "csv")
    # decoded, both ids would read as "u\ufffd\ufffd1" and merge (tests/test_raw_evidence.py checks
    # that the rejected rows keep each line's own bytes)
    assert [r["malformed"] for r in rows] == [True, True, False]


def test_parquet_files_with_different_column_sets_keep_every_column(spark, tmp_path):
    pq.write_table(pa.table(pd.DataFrame([_event("a1", "i1")])), tmp_path / "part-a.parquet")
    pq.write_table(pa.table(pd.DataFrame([_event("b1", "i1", session_id="sess-b1", attributes='{"x":1}')])),
                   tmp_path / "part-b.parquet")
    rows = sorted(_rows(spark, tmp_path, "parquet"), key=lambda r: r["user_id"])
    assert [(r["user_id"], r["session_id"], r["attributes"]) for r in rows] == [
        ("a1", None, None), ("b1", "sess-b1", '{"x":1}')]


def test_parquet_integer_user_ids_are_read_as_text(spark, tmp_path):
    pq.write_table(pa.table({"user_id": pa.array([7, 8], pa.int64()), "item_id": ["i1", "i2"],
                             "event_type": ["view", "view"], "event_time": [str(T0), str(T0)]}),
                   tmp_path / "p.parquet")
    assert sorted(r["user_id"] for r in _rows(spark, tmp_path, "parquet")) == ["7", "8"]


def test_parquet_schema_problems_fail_with_the_fix(spark, tmp_path):
    nanos = tmp_path / "nanos"
    nanos.mkdir()
    pq.write_table(pa.table({"user_id": ["u"], "item_id": ["i"], "event_type": ["view"],
                             "event_time": pa.array([T0 * 10**9], pa.timestamp("ns", tz="UTC"))}),
                   nanos / "p.parquet", coerce_timestamps=None, version="2.6")
    with pytest.raises(InputError, match="coerce_timestamps='us'"):
        io.read_raw(spark, f"file://{nanos}", "parquet")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    pq.write_table(pa.table({"user_id": ["u"], "item_id": ["i"], "event_type": ["view"], "event_time": ["1"]}),
                   mixed / "a.parquet")
    pq.write_table(pa.table({"user_id": ["u"], "item_id": pa.array([5], pa.int64()), "event_type": ["view"],
                             "event_time": ["1"]}), mixed / "b.parquet")
    with pytest.raises(InputError, match="files disagree on a column's type"):
        io.read_raw(spark, f"file://{mixed}", "parquet")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _rows(spark, empty, "parquet") == []


def test_rerun_without_clean_rows_removes_that_dates_windows(spark, tmp_path):
    raw, bad = tmp_path / "raw", tmp_path / "bad"
    raw.mkdir()
    bad.mkdir()
    events = [_event(f"u{u}", f"i{(u + k) % 7}", T0 - 86400 * 3 + 21600 * k) for u in range(6) for k in range(12)]
    pd.DataFrame(events).to_json(raw / "p.jsonl", orient="records", lines=True)
    (bad / "p.jsonl").write_text('{"user_id":"u","item_id":"i","event_type":"view","event_time":"soon"}\n')
    out = tmp_path / "out"
    seq = SequenceConfig(window_length=4, num_row_groups=1)
    first = run_prepare(spark, PrepareConfig(input=InputConfig(path=str(raw)), output_root=str(out), sequences=seq),
                        RUN_DATE)
    windows = out / "sequences" / "run_date=2026-11-28"
    assert first["sequences"]["rows"]["train"] > 0 and windows.is_dir()
    again = run_prepare(spark, PrepareConfig(input=InputConfig(path=str(bad)), output_root=str(out), sequences=seq),
                        RUN_DATE)
    assert again["counts"]["clean"] == 0 and again["counts"]["rejected"] == {"BAD_TIME": 1}
    assert not windows.exists() and again["outputs"]["sequences"] is None
    assert not list((out / "sequences").glob("_*"))  # no staging or backup left behind


@pytest.mark.parametrize("override, key", [
    ("cleaning.max_future_days=1e9", "cleaning.max_future_days"),
    ("cleaning.max_future_days=inf", "cleaning.max_future_days"),
    ("sessions.gap_minutes=NaN", "sessions.gap_minutes"),
    ("sequences.valid_days=Infinity", "sequences.valid_days"),
    ("cleaning.min_event_time=0001-01-01T00:00:00+01:00", "cleaning.min_event_time"),
])
def test_out_of_range_settings_are_configuration_errors_naming_the_key(tmp_path, override, key):
    from interest_tracker.config import load

    path = tmp_path / "c.json"
    path.write_text('{"input": {"path": "x"}, "output_root": "y"}')
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load(PrepareConfig, path, [override])


def test_a_config_file_that_is_not_an_object_is_a_configuration_error(tmp_path):
    from interest_tracker.config import load

    path = tmp_path / "c.json"
    path.write_text("[]")
    with pytest.raises(ConfigError, match="must hold a JSON object"):
        load(PrepareConfig, path, ["output_root=y"])
