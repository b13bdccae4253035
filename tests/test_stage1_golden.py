"""Stage 1 gives the same outputs after the performance work of issue 10 as before it.

The expected digests below were computed with the stage-1 code *before* that work
(commit 3c6ff71, ``python tests/test_stage1_golden.py`` prints them), on the test
suite's synthetic data: one JSON-lines run with every kind of injected fault, and one
CSV run with the minimum-support filters, session splits and input sessions ignored.
Each table is digested as the sha-256 of its rows, every value written in a canonical
text form and the rows sorted, so any changed value, row or count fails the test, and
the message names the output. Should a representation change on purpose, the contract,
docs/data-contract.md and the golden value change together.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os

import pytest

from interest_tracker import io
from interest_tracker.layout import Stage1Layout
from interest_tracker.prepare.config import (CleaningConfig, InputConfig, PrepareConfig, SequenceConfig,
                                             SessionConfig)
from interest_tracker.prepare.pipeline import run_prepare
from interest_tracker.synthetic.config import InjectionConfig, SyntheticConfig
from interest_tracker.synthetic.generator import generate
from interest_tracker.synthetic.writers import write_raw

RUN_DATE = dt.date(2026, 11, 28)
INJECT = InjectionConfig(malformed=0.01, missing_field=0.01, oversized_field=0.01, bad_time=0.01,
                         out_of_window=0.01, unknown_event_type=0.01, exact_duplicate=0.02, replay=0.02, num_bots=2)

TABLES = ("events", "rejected", "quarantine", "sessions")
SPLITS = ("train", "valid", "test")
# rejected_events and quarantined_events v2 added evidence columns (issue 8 point 4); the
# v1 columns must be unchanged for records that are valid UTF-8 without NULs and short.
V1_COLUMNS = {"rejected": ("raw_record", "reject_reason", "reject_detail", "run_date"),
              "quarantine": ("user_id", "item_id", "event_type", "event_time", "quarantine_reason", "raw_record",
                             "run_date")}


def _canon(v) -> str:
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_canon(x) for x in v) + "]"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (dt.datetime, dt.date)):
        return v.isoformat()
    return repr(v)


def _digest(df) -> list:
    cols = sorted(df.columns)
    lines = sorted("|".join(_canon(r[c]) for c in cols) for r in df.select(*cols).collect())
    return [len(lines), hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()[:16]]


def output_digests(spark, out_root: str) -> dict:
    """Row count and digest of every stage-1 output under ``out_root`` (plus the dataset fingerprint)."""
    out = io.to_url(out_root)
    layout = Stage1Layout(out, RUN_DATE)
    dataset = layout.dataset()
    d = {t: _digest(spark.read.parquet(layout.table(t)).select(*V1_COLUMNS.get(t, ("*",)))) for t in TABLES}
    d["vocabulary"] = _digest(spark.read.parquet(layout.vocabulary))
    for split in SPLITS:
        d[split] = _digest(spark.read.parquet(dataset.split(split)))
    # the columns stage 1 wrote before the rework (later columns: decayed popularity, issue 13)
    d["item_stats"] = _digest(spark.read.parquet(dataset.item_stats).select("item_index", "train_count"))
    info = dataset.info()
    d["fingerprint"] = info["fingerprint"][:16]
    return d


def _run(spark, root, case: str) -> tuple[dict, dict]:
    """(report counts, output digests) of one golden case."""
    if case == "jsonl":
        syn = SyntheticConfig(num_users=40, num_items=300, num_categories=5, events_per_user=30,
                              min_events_per_user=10, max_events_per_user=60, end_time="2026-11-28T23:00:00Z",
                              seed=7, injection=INJECT)
        cfg = dict(sequences=SequenceConfig(window_length=10, num_row_groups=8))
    else:
        syn = SyntheticConfig(num_users=30, num_items=120, num_categories=4, events_per_user=30,
                              min_events_per_user=8, max_events_per_user=50, end_time="2026-11-28T23:00:00Z",
                              seed=21, injection=INJECT)
        cfg = dict(sequences=SequenceConfig(window_length=8, num_row_groups=4, split_by="session",
                                            train_stride=6, eval_stride=3),
                   cleaning=CleaningConfig(min_item_support=3, min_user_events=6),
                   sessions=SessionConfig(gap_minutes=20.0, max_events=7, respect_input_sessions=False))
    raw = os.path.join(str(root), "raw")
    write_raw(generate(spark, syn), raw, case)
    out = os.path.join(str(root), "out")
    rep = run_prepare(spark, PrepareConfig(input=InputConfig(path=raw, format=case), output_root=out, **cfg), RUN_DATE)
    return rep["counts"], output_digests(spark, out)


# Computed before the issue-10 changes (see the module docstring).
GOLDEN = {
    "csv": {
        "counts": {
            "clean": 688,
            "duplicates": {
                "exact": 12,
                "replay": 20
            },
            "input_rows": 1226,
            "quarantined": {
                "BOT_RATE_MINUTE": 400
            },
            "rejected": {
                "BAD_TIME": 12,
                "LOW_SUPPORT_ITEM": 61,
                "MALFORMED": 6,
                "MISSING_FIELD": 6,
                "OVERSIZED_FIELD": 7,
                "TIME_OUT_OF_WINDOW": 6,
                "UNKNOWN_EVENT_TYPE": 8
            }
        },
        "digests": {
            "events": [
                688,
                "352f351eed8bc7d8"
            ],
            "fingerprint": "630ca336517f29dc",
            "item_stats": [
                75,
                "d8ac95bd7d3b4770"
            ],
            "quarantine": [
                400,
                "05f3d7edea120487"
            ],
            "rejected": [
                106,
                "4038b5a7f92d346f"
            ],
            "sessions": [
                160,
                "9811b218a45a692a"
            ],
            "test": [
                99,
                "aea7959e80b1487f"
            ],
            "train": [
                34,
                "9aaf3cf7c6e9f196"
            ],
            "valid": [
                44,
                "f016dd9171ad660c"
            ],
            "vocabulary": [
                73,
                "534d78ae1c9ab49f"
            ]
        }
    },
    "jsonl": {
        "counts": {
            "clean": 1328,
            "duplicates": {
                "exact": 25,
                "replay": 26
            },
            "input_rows": 1867,
            "quarantined": {
                "BOT_RATE_MINUTE": 400
            },
            "rejected": {
                "BAD_TIME": 15,
                "MALFORMED": 16,
                "MISSING_FIELD": 13,
                "OVERSIZED_FIELD": 14,
                "TIME_OUT_OF_WINDOW": 13,
                "UNKNOWN_EVENT_TYPE": 17
            }
        },
        "digests": {
            "events": [
                1328,
                "1d8d2477aecde344"
            ],
            "fingerprint": "39c690dfeee6b960",
            "item_stats": [
                250,
                "3dd7f30fcd5fea89"
            ],
            "quarantine": [
                400,
                "31729e83fbc45a4f"
            ],
            "rejected": [
                88,
                "305083fdc6161521"
            ],
            "sessions": [
                195,
                "6f8dab068f9fdf49"
            ],
            "test": [
                122,
                "e0a7ef9ed424af78"
            ],
            "train": [
                56,
                "8e2682d299524c68"
            ],
            "valid": [
                57,
                "8e28b8d8f58b80bb"
            ],
            "vocabulary": [
                248,
                "c5cde131a8ced73e"
            ]
        }
    }
}


@pytest.mark.parametrize("case", ["jsonl", "csv"])
def test_outputs_identical_to_before_the_rework(spark, tmp_path, case):
    counts, digests = _run(spark, tmp_path, case)
    expected = GOLDEN[case]
    assert counts == expected["counts"]
    for name, value in expected["digests"].items():
        assert digests[name] == value, f"{case}: output '{name}' changed: {digests[name]} != {value}"
    assert set(digests) == set(expected["digests"])


if __name__ == "__main__":  # print the golden values for the current code
    import tempfile

    from interest_tracker.spark import get_session

    import time

    os.environ["TZ"] = "UTC"
    time.tzset()
    s = get_session("golden", master="local[2]", conf={
        "spark.sql.shuffle.partitions": "4", "spark.default.parallelism": "4", "spark.ui.enabled": "false",
        "spark.driver.memory": "3g", "spark.sql.adaptive.enabled": "false"})
    s.sparkContext.setLogLevel("WARN")
    result = {}
    for c in ("jsonl", "csv"):
        with tempfile.TemporaryDirectory() as d:
            counts, digests = _run(s, d, c)
            result[c] = {"counts": counts, "digests": digests}
    print(json.dumps(result, indent=1, sort_keys=True))
    s.stop()
