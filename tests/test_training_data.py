"""Windows builder and the two loaders (petastorm, pyarrow) behind one interface."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from interest_tracker.training.loaders import count_rows, make_loader, read_split, row_groups
from interest_tracker.training.window_datasets import build_windows, user_windows, write_dataset


def test_windows_follow_the_architecture_rules():
    items = np.arange(2, 10)  # 8 events -> 7 targets (positions 0..6)
    ws = user_windows("u", items, np.ones(8, int), np.zeros(8, np.float32), np.eye(1, 8, 0, int)[0], 4, 2)
    assert [w["window_id"] for w in ws] == ["u:0", "u:1", "u:2"]
    assert ws[0]["input_items"].tolist() == [2, 3, 4, 5] and ws[0]["target_items"].tolist() == [3, 4, 5, 6]
    assert ws[0]["target_mask"].tolist() == [1, 1, 1, 1]
    assert ws[1]["input_items"].tolist() == [4, 5, 6, 7] and ws[1]["target_mask"].tolist() == [0, 0, 1, 1]
    assert ws[2]["input_items"].tolist() == [6, 7, 8, 9] and ws[2]["target_items"].tolist() == [7, 8, 9, 0]
    assert ws[2]["target_mask"].tolist() == [0, 0, 1, 0] and ws[2]["length"] == 4
    # every target event counted exactly once
    assert sum(w["num_targets"] for w in ws) == 7
    counted = sorted(int(w["target_items"][j]) for w in ws for j in np.nonzero(w["target_mask"])[0])
    assert counted == list(range(3, 10))
    short = user_windows("v", np.array([5, 6]), np.ones(2, int), np.zeros(2, np.float32), np.array([1, 0]), 4, 2)
    assert len(short) == 1 and short[0]["input_items"].tolist() == [5, 6, 0, 0]
    assert short[0]["target_mask"].tolist() == [1, 0, 0, 0] and short[0]["length"] == 2


def test_build_windows_orders_by_time_and_computes_log_gaps():
    ev = pd.DataFrame({"user_id": ["u", "u", "u"], "item_index": [4, 2, 3], "event_type_index": [1, 1, 1],
                       "event_time": [30.0, 0.0, 10.0], "session_start": [0, 1, 0]})
    w = build_windows(ev, 4, 4).iloc[0]
    assert w["input_items"].tolist() == [2, 3, 4, 0]
    assert np.allclose(w["input_log_gaps"], [0, np.log1p(10), np.log1p(20), 0])
    with pytest.raises(ValueError, match="missing columns"):
        build_windows(ev.drop(columns=["session_start"]), 4, 4)


@pytest.fixture(scope="module")
def tiny_dataset(spark, tmp_path_factory):
    rng = np.random.default_rng(0)
    rows = []
    for u in range(60):
        for i in range(int(rng.integers(2, 12))):
            rows.append((f"u{u:02d}", int(rng.integers(2, 20)), 1, float(i), int(i == 0)))
    ev = pd.DataFrame(rows, columns=["user_id", "item_index", "event_type_index", "event_time", "session_start"])
    root = tmp_path_factory.mktemp("loaders") / "sequences"
    train = build_windows(ev, 6, 6)
    info = write_dataset(spark, root, {"train": train, "valid": build_windows(ev, 6, 3)}, num_items=20,
                         event_types=["click"], window_length=6, train_stride=6, eval_stride=3, files_per_split=8)
    return root, train, info


def test_dataset_info_and_row_groups(tiny_dataset):
    root, train, info = tiny_dataset
    saved = json.loads((root / "dataset_info.json").read_text())
    assert saved["rows"]["train"] == len(train) == count_rows(str(root / "train"))
    assert saved["targets"]["train"] == int(train["num_targets"].sum())
    assert len(row_groups(str(root / "train"))) == 8 and saved["fingerprint"] == info["fingerprint"]


@pytest.mark.parametrize("kind", ["petastorm", "pyarrow"])
def test_loaders_give_every_rank_the_same_number_of_full_batches_from_disjoint_shards(tiny_dataset, kind):
    root, train, _ = tiny_dataset
    url = str(root / "train")
    for rank in range(2):
        loader = make_loader(kind, url, rank, 2, batch_size=5, seed=3, pool="dummy", buffer_batches=1,
                             fields=("input_items", "target_mask", "length"))
        batches = list(loader.epoch(0, steps=7))
        assert len(batches) == 7
        assert all(b["input_items"].shape == (5, 6) and b["length"].shape == (5,) for b in batches)
    if kind == "pyarrow":
        g0 = make_loader(kind, url, 0, 2, 5, 3).groups
        g1 = make_loader(kind, url, 1, 2, 5, 3).groups
        assert not set(g0) & set(g1) and sorted(g0 + g1) == sorted(row_groups(url))


def test_loaders_are_repeatable_for_the_same_seed_and_epoch(tiny_dataset):
    root, _, _ = tiny_dataset
    for kind in ("petastorm", "pyarrow"):
        a = [b["input_items"] for b in make_loader(kind, str(root / "train"), 0, 1, 4, 9, pool="dummy").epoch(2, 5)]
        b = [b["input_items"] for b in make_loader(kind, str(root / "train"), 0, 1, 4, 9, pool="dummy").epoch(2, 5)]
        c = [b["input_items"] for b in make_loader(kind, str(root / "train"), 0, 1, 4, 9, pool="dummy").epoch(3, 5)]
        assert all(np.array_equal(x, y) for x, y in zip(a, b))
        assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_petastorm_and_pyarrow_read_the_same_rows(tiny_dataset):
    root, train, _ = tiny_dataset
    n = len(train)
    rows = {}
    for kind in ("petastorm", "pyarrow"):
        got = next(iter(make_loader(kind, str(root / "train"), 0, 1, n, 1, pool="dummy", buffer_batches=1)
                        .epoch(0, 1)))
        rows[kind] = sorted(map(tuple, np.concatenate([got["input_items"], got["target_items"]], 1).tolist()))
    expected = sorted(tuple(a.tolist() + b.tolist()) for a, b in zip(train["input_items"], train["target_items"]))
    assert rows["petastorm"] == rows["pyarrow"] == expected
    one_pass = list(read_split(str(root / "valid"), 7))
    assert sum(len(b["window_id"]) for b in one_pass) == count_rows(str(root / "valid"))


def test_bucketing_by_length_groups_similar_rows_and_keeps_every_row(tiny_dataset):
    root, train, _ = tiny_dataset
    n = len(train)
    steps = n // 5
    plain = make_loader("pyarrow", str(root / "train"), 0, 1, 5, 4, buffer_batches=steps)
    bucketed = make_loader("pyarrow", str(root / "train"), 0, 1, 5, 4, buffer_batches=steps, bucket_by_length=True)
    a = list(plain.epoch(0, steps))
    b = list(bucketed.epoch(0, steps))
    rows = lambda bs: sorted(map(tuple, np.concatenate([x["input_items"] for x in bs]).tolist()))  # noqa: E731
    assert rows(a) == rows(b)  # the same rows, only grouped differently
    spans = sorted((int(x["length"].min()), int(x["length"].max())) for x in b)
    assert all(hi <= nxt_lo for (_, hi), (nxt_lo, _) in zip(spans, spans[1:]))  # length ranges don't interleave
    assert [int(x["length"].min()) for x in b] != sorted(int(x["length"].min()) for x in b)  # batch order is shuffled
    padding = lambda bs: sum(int(x["length"].max()) * len(x["length"]) - int(x["length"].sum()) for x in bs)  # noqa: E731
    assert padding(b) < padding(a)


def test_a_rank_without_row_groups_fails_with_the_fix(tiny_dataset):
    root, _, _ = tiny_dataset
    with pytest.raises(ValueError, match="write >= 4 row groups per rank"):
        make_loader("pyarrow", str(root / "train"), 9, 10, 4, 1)
