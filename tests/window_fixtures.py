"""Hand-made window datasets for tests that need a distribution the synthetic generator cannot
express (e.g. tests/test_blend_selection.py: walks a first-order rule cannot solve).

A TEST FIXTURE, not production code: it moved out of the package (issue 8) because it is a
pandas twin of stage 1's window builder. Training tests do not use it: they train on stage
1's own output (the ``training_dataset`` fixture in conftest.py, built by ``run_prepare``).
It follows the same layout (schemas/sequences.json, docs/architecture.md "Sequence
windows"): position p holds event p, the target at p is event p+1's item; window k covers
positions [k*S, k*S+L); window 0 counts every target, later windows count only their last
S slots; arrays are right-padded with 0.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from interest_tracker.layout import SequencesDataset

log = logging.getLogger(__name__)

ARRAY_FIELDS = ("input_items", "input_event_types", "input_log_gaps", "input_session_starts",
                "target_items", "target_mask")


def user_windows(user_id: str, items: np.ndarray, event_types: np.ndarray, log_gaps: np.ndarray,
                 session_starts: np.ndarray, window_length: int, stride: int) -> list[dict]:
    """Windows of one user's time-ordered events (see the module docstring for the rules)."""
    n = len(items)
    L, S = window_length, stride
    if n == 0:
        return []
    last_k = max(0, math.ceil((n - 1 - L) / S))
    rows = []
    for k in range(last_k + 1):
        start = k * S
        length = min(L, n - start)
        if length <= 0:
            break
        row = {f: np.zeros(L, dtype=np.float32 if f == "input_log_gaps" else np.int32) for f in ARRAY_FIELDS}
        sl = slice(start, start + length)
        row["input_items"][:length] = items[sl]
        row["input_event_types"][:length] = event_types[sl]
        row["input_log_gaps"][:length] = log_gaps[sl]
        row["input_session_starts"][:length] = session_starts[sl]
        tgt_len = min(L, n - 1 - start)
        if tgt_len > 0:
            row["target_items"][:tgt_len] = items[start + 1:start + 1 + tgt_len]
            counted = np.zeros(L, dtype=bool)
            counted[: tgt_len] = True
            if k > 0:
                counted[: L - S] = False
            row["target_mask"][counted] = 1
        row.update(window_id=f"{user_id}:{k}", user_id=str(user_id), length=int(length),
                   num_targets=int(row["target_mask"].sum()))
        rows.append(row)
    return rows


def build_windows(events: pd.DataFrame, window_length: int, stride: int) -> pd.DataFrame:
    """Windows for every user of ``events`` (columns: user_id, item_index, event_type_index,
    event_time [epoch seconds], session_start [0/1]), ordered by (event_time, input order)."""
    required = {"user_id", "item_index", "event_type_index", "event_time", "session_start"}
    missing = required - set(events.columns)
    if missing:
        raise ValueError(f"events are missing columns {sorted(missing)}; expected {sorted(required)}")
    ev = events.reset_index(drop=True)
    ev = ev.assign(_order=np.arange(len(ev))).sort_values(["user_id", "event_time", "_order"], kind="stable")
    rows: list[dict] = []
    for uid, g in ev.groupby("user_id", sort=True):
        t = g["event_time"].to_numpy(dtype=np.float64)
        gaps = np.log1p(np.clip(np.diff(t, prepend=t[0]), 0, None)).astype(np.float32)
        rows.extend(user_windows(str(uid), g["item_index"].to_numpy(np.int32),
                                 g["event_type_index"].to_numpy(np.int32), gaps,
                                 g["session_start"].to_numpy(np.int32), window_length, stride))
    cols = ["window_id", "user_id", "length", *ARRAY_FIELDS, "num_targets"]
    return pd.DataFrame(rows, columns=cols)


def unischema(window_length: int):
    """The Petastorm schema of the sequences contract: fixed-length arrays, codec None."""
    from petastorm.unischema import Unischema, UnischemaField

    L = window_length
    return Unischema("Sequences", [
        UnischemaField("window_id", np.str_, (), None, False),
        UnischemaField("user_id", np.str_, (), None, False),
        UnischemaField("length", np.int32, (), None, False),
        UnischemaField("input_items", np.int32, (L,), None, False),
        UnischemaField("input_event_types", np.int32, (L,), None, False),
        UnischemaField("input_log_gaps", np.float32, (L,), None, False),
        UnischemaField("input_session_starts", np.int32, (L,), None, False),
        UnischemaField("target_items", np.int32, (L,), None, False),
        UnischemaField("target_mask", np.int32, (L,), None, False),
        UnischemaField("num_targets", np.int32, (), None, False),
    ])


def write_petastorm(spark, windows: pd.DataFrame, url: str, window_length: int, num_files: int) -> int:
    """Write ``windows`` as a Petastorm dataset with ``num_files`` single-row-group files.

    Returns the number of row groups. Readers shard by row group, so ask for at least
    4 per training rank (DEVELOPERS.md).
    """
    from petastorm.etl.dataset_metadata import materialize_dataset

    from interest_tracker.contracts import load_contract

    schema = load_contract("sequences").spark_schema()
    pdf = windows.copy()
    for f in ARRAY_FIELDS:
        pdf[f] = pdf[f].map(lambda a: a.tolist())
    df = spark.createDataFrame(pdf, schema=schema)
    with materialize_dataset(spark, url, unischema(window_length), row_group_size_mb=256):
        df.repartition(num_files).write.mode("overwrite").parquet(url)
    return num_files


def write_item_stats(counts: np.ndarray, dataset: SequencesDataset) -> None:
    import pyarrow as pa

    dataset.write_item_stats(pa.table({"item_index": pa.array(np.arange(len(counts), dtype=np.int32)),
                                       "train_count": pa.array(counts.astype(np.int64))}))


def write_dataset(spark, root: str | Path, splits: dict[str, pd.DataFrame], *, num_items: int,
                  event_types: Iterable[str], window_length: int, train_stride: int, eval_stride: int,
                  vocab_version: int = 1, files_per_split: int = 8, run_date: str = "1970-01-01",
                  extra_info: dict | None = None) -> dict:
    """Write train/valid/test windows + item_stats + dataset_info.json under ``root``, where the
    layout (``SequencesDataset``) puts them."""
    root = Path(root)
    dataset = SequencesDataset(str(root.resolve()))
    for name, w in splits.items():
        top = max((int(a.max()) for a in w["input_items"]), default=0)
        if top >= num_items:
            raise ValueError(f"split {name!r} has item index {top} >= num_items={num_items}; "
                             "num_items must count every index including the reserved 0 and 1")
    root.mkdir(parents=True, exist_ok=True)
    rows, targets, row_groups = {}, {}, {}
    for name, w in splits.items():
        row_groups[name] = write_petastorm(spark, w, dataset.split(name), window_length, files_per_split)
        rows[name] = int(len(w))
        targets[name] = int(w["num_targets"].sum()) if len(w) else 0
    counts = np.zeros(num_items, dtype=np.int64)
    train = splits.get("train")
    if train is not None and len(train):
        t = np.stack(train["target_items"].to_numpy())[np.stack(train["target_mask"].to_numpy()) > 0]
        inp = np.stack(train["input_items"].to_numpy())[:, :1].ravel()  # first events are inputs only
        np.add.at(counts, t, 1)
        np.add.at(counts, inp[inp > 0], 1)
    write_item_stats(counts, dataset)
    event_types = list(event_types)
    info = {
        "run_date": run_date, "window_length": window_length, "train_stride": train_stride,
        "eval_stride": eval_stride, "num_items": num_items, "num_event_types": len(event_types) + 1,
        "event_types": event_types, "vocab_version": vocab_version, "valid_start": None,
        "test_start": None, "split_by": "user", "rows": rows, "targets": targets,
        "row_groups": row_groups, **(extra_info or {}),
    }
    info["fingerprint"] = hashlib.sha256(json.dumps(info, sort_keys=True).encode()).hexdigest()
    dataset.write_info(info)
    log.info("wrote window dataset %s: rows=%s targets=%s", root, rows, targets)
    return info
