"""Issue 8 point 4: rejected and quarantine tables stay readable whatever the input bytes.

Input lines with bytes that are not UTF-8, NULs and 10 MB fields go through stage 1 in
JSON lines, CSV and Parquet; the written tables are then read with DuckDB and pyarrow
(both validate UTF-8), and the evidence is checked against the original bytes.
"""
from __future__ import annotations

import datetime as dt
import hashlib

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from interest_tracker.prepare.clean import EVIDENCE_MAX_CHARS
from interest_tracker.prepare.config import InputConfig, PrepareConfig
from interest_tracker.prepare.pipeline import run_prepare

RUN_DATE = dt.date(2026, 11, 28)
T0 = 1764288000
BIG = 10 * 1024 * 1024


def _ordinary(n=5):
    return [b'{"user_id":"ok","item_id":"i%d","event_type":"view","event_time":"%d"}' % (i, T0 + 60 * i)
            for i in range(n)]


JSONL_BAD = {
    "invalid_utf8_in_string": b'{"user_id":"u\xff\xfe2","item_id":"i1","event_type":"view","event_time":"1764288000"}',
    "garbage_nul_invalid": b'not json \x00 \xc3\x28 at all',
    "escaped_nul_event_type": b'{"user_id":"u3","item_id":"i\\u00002","event_type":"vi\\u0000ew","event_time":"1764288000"}',
    "raw_nul_in_string": b'{"user_id":"u5\x00","item_id":"i1","event_type":"view","event_time":"1764288000"}',
    "big_attributes": (b'{"user_id":"u4","item_id":"i1","event_type":"view","event_time":"1764288000","attributes":"'
                       + b"x" * BIG + b'"}'),
    "big_malformed": b'{"user_id": "' + b"\xff" + b"y" * BIG,
}

CSV_HEADER = b"user_id,item_id,event_type,event_time,session_id,attributes"
CSV_BAD = {
    "nul_event_type": b"u1,i1,vi\x00ew,1764288000,s1,",
    "invalid_time": b"u2,i1,view,17642\xff\xfe88000,s1,",
    "big_user": b"u" * BIG + b",i1,view,1764288000,s1,",
    "extra_columns_invalid": b"a,b,c,d,e,f,g\xff\x00,h",
}


def _read_both(path):
    """The table as rows, read by pyarrow and by DuckDB (each fails on invalid UTF-8)."""
    arrow_rows = pq.read_table(str(path)).to_pylist()
    con = duckdb.connect()
    cur = con.execute(f"SELECT * FROM read_parquet('{path}/**/*.parquet', hive_partitioning = true)")
    names = [d[0] for d in cur.description]
    duck_rows = [dict(zip(names, r)) for r in cur.fetchall()]
    con.close()
    assert len(arrow_rows) == len(duck_rows)
    return arrow_rows, duck_rows


def _run(spark, tmp_path, fmt, path):
    cfg = PrepareConfig(input=InputConfig(path=str(path), format=fmt), output_root=str(tmp_path / "out"),
                        write_sequences=False)
    return run_prepare(spark, cfg, RUN_DATE)


def _check_evidence(row, original: bytes):
    """The evidence of one rejected record identifies its original bytes."""
    assert row["raw_record_length"] == len(original)
    text = row["raw_record"]
    assert len(text) <= EVIDENCE_MAX_CHARS and "\x00" not in text
    if len(original) > EVIDENCE_MAX_CHARS:
        assert row["raw_record_sha256"] == hashlib.sha256(original).hexdigest()
    else:
        assert row["raw_record_sha256"] is None
    try:
        exact = original.decode("utf-8") == text
    except UnicodeDecodeError:
        exact = False
    if exact:
        assert row["raw_record_bytes"] is None
    else:
        assert row["raw_record_bytes"] == original[:EVIDENCE_MAX_CHARS]


def test_jsonl_with_bad_bytes_gives_readable_rejected_table(spark, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "part-0.jsonl").write_bytes(b"\n".join(_ordinary() + list(JSONL_BAD.values())) + b"\n")
    rep = _run(spark, tmp_path, "jsonl", raw)
    assert rep["counts"]["clean"] == 5 and rep["reconciled"]
    rows, duck = _read_both(tmp_path / "out" / "rejected")
    assert len(rows) == len(JSONL_BAD)
    by_reason = {}
    for r in rows:
        by_reason.setdefault(r["reject_reason"], []).append(r)
    assert sorted(by_reason) == ["MALFORMED", "OVERSIZED_FIELD", "UNKNOWN_EVENT_TYPE"]
    # lines that do not parse keep their own bytes as evidence
    malformed = {r["raw_record_length"]: r for r in by_reason["MALFORMED"]}
    for key in ("invalid_utf8_in_string", "garbage_nul_invalid", "raw_nul_in_string", "big_malformed"):
        _check_evidence(malformed[len(JSONL_BAD[key])], JSONL_BAD[key])
    garbage = malformed[len(JSONL_BAD["garbage_nul_invalid"])]
    assert garbage["raw_record"] == "not json \\u0000 \ufffd( at all"
    # parsed records keep their fields as JSON, NUL escaped by the JSON writer; the detail is safe text
    (unknown,) = by_reason["UNKNOWN_EVENT_TYPE"]
    assert "\\u0000" in unknown["raw_record"] and unknown["reject_detail"].endswith("vi\\u0000ew")
    (big,) = by_reason["OVERSIZED_FIELD"]
    assert big["raw_record_length"] > BIG and len(big["raw_record"]) == EVIDENCE_MAX_CHARS
    assert big["raw_record"].startswith('{"user_id":"u4"') and big["raw_record_sha256"]
    assert {r["raw_record_sha256"] for r in duck} == {r["raw_record_sha256"] for r in rows}


def test_csv_with_bad_bytes_gives_readable_rejected_table(spark, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    ok = [b"ok,i%d,view,%d,s1," % (i, T0 + 60 * i) for i in range(5)]
    (raw / "part-0.csv").write_bytes(b"\n".join([CSV_HEADER] + ok + list(CSV_BAD.values())) + b"\n")
    rep = _run(spark, tmp_path, "csv", raw)
    assert rep["counts"]["clean"] == 5 and rep["reconciled"]
    rows, _ = _read_both(tmp_path / "out" / "rejected")
    reasons = sorted(r["reject_reason"] for r in rows)
    # A line that is not UTF-8 (the time's bytes) is MALFORMED, as in JSON lines: decoded, an
    # id with such bytes could merge with another. The line's own bytes are the evidence.
    assert reasons == ["MALFORMED", "MALFORMED", "OVERSIZED_FIELD", "UNKNOWN_EVENT_TYPE"]
    by = {r["reject_reason"]: r for r in rows}
    assert "\x00" not in by["UNKNOWN_EVENT_TYPE"]["reject_detail"]
    malformed = {r["raw_record_length"]: r for r in rows if r["reject_reason"] == "MALFORMED"}
    for key in ("invalid_time", "extra_columns_invalid"):
        _check_evidence(malformed[len(CSV_BAD[key])], CSV_BAD[key])
    assert "\\u0000" in malformed[len(CSV_BAD["extra_columns_invalid"])]["raw_record"]
    big = by["OVERSIZED_FIELD"]
    assert big["raw_record_length"] > BIG and len(big["raw_record"]) == EVIDENCE_MAX_CHARS
    assert len(big["raw_record_sha256"]) == 64
    for r in rows:
        assert "\x00" not in r["raw_record"] and "\x00" not in (r["reject_detail"] or "")


def test_parquet_bot_with_invalid_utf8_gives_readable_quarantine_table(spark, tmp_path):
    # A Parquet writer that does not validate can store any bytes in a string column.
    n = 70  # more than the default 60 events per minute: a bot
    items = [b"item-\xff-%d" % i for i in range(n)] + [b"i%d" % i for i in range(5)]
    users = ["bot"] * n + ["ok"] * 5
    times = [str(T0 + i * 0.5) for i in range(n)] + [str(T0 + 60 * i) for i in range(5)]
    binary = pa.array(items, pa.binary())
    item_col = pa.Array.from_buffers(pa.string(), len(binary), binary.buffers())  # no UTF-8 check
    table = pa.table({"user_id": users, "item_id": item_col, "event_type": ["view"] * (n + 5), "event_time": times})
    raw = tmp_path / "raw"
    raw.mkdir()
    pq.write_table(table, str(raw / "part-0.parquet"))
    rep = _run(spark, tmp_path, "parquet", raw)
    assert rep["counts"]["quarantined"] == {"BOT_RATE_MINUTE": n} and rep["counts"]["clean"] == 5
    rows, _ = _read_both(tmp_path / "out" / "quarantine")
    assert len(rows) == n
    assert sorted(r["item_id"] for r in rows) == sorted(f"item-\ufffd-{i}" for i in range(n))
    for r in rows:
        assert r["raw_record_length"] == len(r["raw_record"].encode()) and r["raw_record_sha256"] is None
