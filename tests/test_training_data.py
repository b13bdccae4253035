"""The two window loaders (petastorm, pyarrow) behind one interface, reading what stage 1 wrote.

The dataset is stage 1's own output (``training_dataset`` in conftest.py: synthetic logs
through ``run_prepare``); the window rules themselves are tested in test_sequences.py.
"""
from __future__ import annotations

import importlib.util

import numpy as np
import pyarrow.parquet as pq
import pytest

from interest_tracker.layout import SequencesDataset
from interest_tracker.training.loaders import count_rows, make_loader, read_split, row_groups

# The GPU machine of bench/device_check.sh has no petastorm; everywhere else both loaders run.
NO_PETASTORM = pytest.mark.skipif(importlib.util.find_spec("petastorm") is None, reason="petastorm not installed")


def _train_rows(root) -> dict:
    """The train split read back directly with pyarrow (the expected rows)."""
    t = pq.read_table(str(root / "train"), columns=["input_items", "target_items", "length"])
    return {"input_items": np.stack(t.column("input_items").to_numpy(zero_copy_only=False)),
            "target_items": np.stack(t.column("target_items").to_numpy(zero_copy_only=False)),
            "length": t.column("length").to_numpy()}


def test_dataset_info_matches_the_row_groups_and_rows(training_dataset):
    info = SequencesDataset(str(training_dataset)).info()
    for split in ("train", "valid", "test"):
        assert info["rows"][split] == count_rows(str(training_dataset / split)) > 0
    assert len(row_groups(str(training_dataset / "train"))) >= 8  # >= 4 per rank for 2 ranks


@pytest.mark.parametrize("kind", [pytest.param("petastorm", marks=NO_PETASTORM), "pyarrow"])
def test_loaders_give_every_rank_the_same_number_of_full_batches_from_disjoint_shards(training_dataset, kind):
    url = str(training_dataset / "train")
    width = SequencesDataset(str(training_dataset)).info()["window_length"]
    for rank in range(2):
        loader = make_loader(kind, url, rank, 2, batch_size=5, seed=3, pool="dummy", buffer_batches=1,
                             fields=("input_items", "target_mask", "length"))
        batches = list(loader.epoch(0, steps=7))
        assert len(batches) == 7
        assert all(b["input_items"].shape == (5, width) and b["length"].shape == (5,) for b in batches)
    if kind == "pyarrow":
        g0 = make_loader(kind, url, 0, 2, 5, 3).groups
        g1 = make_loader(kind, url, 1, 2, 5, 3).groups
        assert not set(g0) & set(g1) and sorted(g0 + g1) == sorted(row_groups(url))


@NO_PETASTORM
def test_loaders_are_repeatable_for_the_same_seed_and_epoch(training_dataset):
    url = str(training_dataset / "train")
    for kind in ("petastorm", "pyarrow"):
        a = [b["input_items"] for b in make_loader(kind, url, 0, 1, 4, 9, pool="dummy").epoch(2, 5)]
        b = [b["input_items"] for b in make_loader(kind, url, 0, 1, 4, 9, pool="dummy").epoch(2, 5)]
        c = [b["input_items"] for b in make_loader(kind, url, 0, 1, 4, 9, pool="dummy").epoch(3, 5)]
        assert all(np.array_equal(x, y) for x, y in zip(a, b))
        assert not all(np.array_equal(x, y) for x, y in zip(a, c))


@NO_PETASTORM
def test_petastorm_and_pyarrow_read_exactly_the_rows_stage1_wrote(training_dataset):
    expected_arrays = _train_rows(training_dataset)
    n = len(expected_arrays["length"])
    expected = sorted(map(tuple, np.concatenate([expected_arrays["input_items"], expected_arrays["target_items"]],
                                                1).tolist()))
    rows = {}
    for kind in ("petastorm", "pyarrow"):
        got = next(iter(make_loader(kind, str(training_dataset / "train"), 0, 1, n, 1, pool="dummy",
                                    buffer_batches=1).epoch(0, 1)))
        rows[kind] = sorted(map(tuple, np.concatenate([got["input_items"], got["target_items"]], 1).tolist()))
    assert rows["petastorm"] == rows["pyarrow"] == expected
    one_pass = list(read_split(str(training_dataset / "valid"), 7))
    assert sum(len(b["window_id"]) for b in one_pass) == count_rows(str(training_dataset / "valid"))


def test_bucketing_by_length_groups_similar_rows_and_keeps_every_row(training_dataset):
    url = str(training_dataset / "train")
    n = count_rows(url)
    steps = n // 5
    plain = make_loader("pyarrow", url, 0, 1, 5, 4, buffer_batches=steps)
    bucketed = make_loader("pyarrow", url, 0, 1, 5, 4, buffer_batches=steps, bucket_by_length=True)
    a = list(plain.epoch(0, steps))
    b = list(bucketed.epoch(0, steps))
    rows = lambda bs: sorted(map(tuple, np.concatenate([x["input_items"] for x in bs]).tolist()))  # noqa: E731
    assert rows(a) == rows(b)  # the same rows, only grouped differently
    spans = sorted((int(x["length"].min()), int(x["length"].max())) for x in b)
    assert all(hi <= nxt_lo for (_, hi), (nxt_lo, _) in zip(spans, spans[1:]))  # length ranges don't interleave
    assert [int(x["length"].min()) for x in b] != sorted(int(x["length"].min()) for x in b)  # batch order is shuffled
    padding = lambda bs: sum(int(x["length"].max()) * len(x["length"]) - int(x["length"].sum()) for x in bs)  # noqa: E731
    assert padding(b) < padding(a)


def test_a_rank_without_row_groups_fails_with_the_fix(training_dataset):
    with pytest.raises(ValueError, match="write >= 4 row groups per rank"):
        make_loader("pyarrow", str(training_dataset / "train"), 99, 100, 4, 1)


@NO_PETASTORM
def test_petastorm_with_fewer_row_groups_than_ranks_fails_on_every_rank_with_the_fix(training_dataset):
    """Checked when the loader is made, on every rank (even one that has row groups), instead of
    petastorm's NoDataAvailableError inside the starved ranks."""
    url = str(training_dataset / "train")
    groups = len(row_groups(url))
    for rank in (0, groups):
        with pytest.raises(ValueError, match=rf"{groups + 1} ranks but .* has {groups} row group\(s\).*"
                                             r"write >= 4 row groups per rank"):
            make_loader("petastorm", url, rank, groups + 1, 4, 1)
    make_loader("petastorm", url, groups - 1, groups, 4, 1)  # one row group each is enough to start
