"""Importers: the real yoochoose sample, MovieLens fixtures with exact values, bad lines."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from pyspark.sql import functions as F

from interest_tracker.contracts import load_contract, schema_matches
from interest_tracker.importers import read_movielens, read_session_rec
from interest_tracker.synthetic.movielens_sample import make_movielens_sample

REPO = Path(__file__).resolve().parents[1]


def _rows(df):
    return sorted((tuple(r) for r in df.collect()), key=_none_first)


def _none_first(row):
    return tuple("" if v is None else v for v in row)


def test_yoochoose_files_import_every_line(spark, yoochoose_dir):
    train = read_session_rec(spark, str(yoochoose_dir / "yoochoose-clicks-100k_train_full.txt"))
    test = read_session_rec(spark, str(yoochoose_dir / "yoochoose-clicks-100k_test.txt"))
    assert schema_matches(train.schema, load_contract("raw_event")) == []
    stats = {}
    for name, df in (("train", train), ("test", test)):
        r = df.agg(F.count(F.lit(1)).alias("rows"), F.countDistinct("session_id").alias("sessions"),
                   F.sum(F.col("user_id").isNull().cast("int")).alias("unsplit"),
                   F.sum((F.col("user_id") != F.col("session_id")).cast("int")).alias("user_not_session"),
                   F.collect_set("event_type").alias("types")).first()
        stats[name] = r
    assert stats["train"]["rows"] == 70278 and stats["test"]["rows"] == 13568
    assert stats["train"]["sessions"] == 17794 and stats["test"]["sessions"] == 3416
    for r in stats.values():
        assert r["unsplit"] == 0 and r["user_not_session"] == 0 and r["types"] == ["click"]
    first = train.where("session_id = '3'").orderBy("event_time").collect()
    assert [tuple(x) for x in first] == [
        ("3", "214716935", "click", "1396437466.94", "3", None),
        ("3", "214832672", "click", "1396438212.318", "3", None),
    ]


def test_session_rec_bad_lines_are_kept_for_the_cleaner(spark, tmp_path):
    path = tmp_path / "s.txt"
    path.write_text("SessionId\tItemId\tTime\n7\t100\t1396437466.5\n7\t101\n\n8\t5\t1396437499\textra\r\n"
                    "9\t6\t1396437500.25\r\n")
    rows = _rows(read_session_rec(spark, str(path)).fillna("~"))
    assert rows == sorted([
        ("7", "100", "click", "1396437466.5", "7", "~"),
        ("9", "6", "click", "1396437500.25", "9", "~"),
        ("~", "~", "~", "~", "~", json.dumps({"raw_line": "7\t101"}, separators=(",", ":"))),
        ("~", "~", "~", "~", "~", '{"raw_line":""}'),
        ("~", "~", "~", "~", "~", json.dumps({"raw_line": "8\t5\t1396437499\textra"}, separators=(",", ":"))),
    ])


def test_movielens_udata_maps_ratings_to_views_with_the_rating_kept(spark, tmp_path):
    path = tmp_path / "u.data"
    path.write_text("196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n244\t51\t2\n")
    rows = _rows(read_movielens(spark, str(path), "u.data"))
    assert rows == sorted([
        ("196", "242", "view", "881250949", None, '{"rating":"3"}'),
        ("186", "302", "view", "891717742", None, '{"rating":"3"}'),
        ("22", "377", "view", "878887116", None, '{"rating":"1"}'),
        (None, None, None, None, None, '{"raw_line":"244\\t51\\t2"}'),
    ], key=_none_first)


def test_movielens_ratings_csv_and_dat(spark, tmp_path):
    csv = tmp_path / "ratings.csv"
    csv.write_text("userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,3.5,964981247\n")
    assert _rows(read_movielens(spark, str(csv), "ratings.csv", event_type="click")) == [
        ("1", "1", "click", "964982703", None, '{"rating":"4.0"}'),
        ("1", "3", "click", "964981247", None, '{"rating":"3.5"}'),
    ]
    dat = tmp_path / "ratings.dat"
    dat.write_text("1::1193::5::978300760\n")
    assert _rows(read_movielens(spark, str(dat), "ratings.dat")) == [
        ("1", "1193", "view", "978300760", None, '{"rating":"5"}')]


def test_movielens_sample_is_a_valid_udata_file(spark, tmp_path):
    n = make_movielens_sample(spark, str(tmp_path / "ml"), num_ratings=600, seed=3)
    lines = (tmp_path / "ml" / "u.data").read_text().splitlines()
    assert n == len(lines) == 600
    fields = [line.split("\t") for line in lines]
    assert all(len(f) == 4 and all(x.isdigit() for x in f) for f in fields)
    assert {f[2] for f in fields} <= {"1", "2", "3", "4", "5"} and len({f[2] for f in fields}) == 5
    assert len({(f[0], f[1]) for f in fields}) == 600  # one rating per (user, item)
    assert min(int(f[3]) for f in fields) > 946684800  # after 2000-01-01: the cleaner keeps them
    back = read_movielens(spark, str(tmp_path / "ml" / "u.data"), "u.data")
    assert back.where("user_id is null").count() == 0 and back.count() == 600


def test_import_job_writes_the_raw_contract(spark, yoochoose_dir, tmp_path):
    from interest_tracker.cli import run_job
    from interest_tracker.importers.config import ImportConfig

    spec = importlib.util.spec_from_file_location("import_logs", REPO / "jobs" / "import_logs.py")
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    out = tmp_path / "raw"
    argv = ["--run-date", "2026-11-28", "--format", "session-rec", "--out", str(out),
            "--input", str(yoochoose_dir / "yoochoose-clicks-100k_test.txt")]
    assert run_job("t", ImportConfig, job.main, argv=argv, shorthands=job.SHORTHANDS) == 0
    written = spark.read.parquet(str(out))
    assert schema_matches(written.schema, load_contract("raw_event")) == []
    assert written.count() == 13568
    missing_input = ["--run-date", "2026-11-28", "--format", "movielens-udata", "--out", str(out)]
    assert run_job("t", ImportConfig, job.main, argv=missing_input, shorthands=job.SHORTHANDS) == 2
