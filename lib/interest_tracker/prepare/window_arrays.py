"""The padded training windows of sorted events, built with numpy over Arrow batches.

Why not Spark SQL: exploding every event into its windows and ``collect_list``-ing
structs per (user, split, window) cost about 40% of stage 1 at 10M events (issue
10). The events already arrive partitioned by user and sorted in the canonical order
(the features' window), so one pass over each partition's Arrow batches can cut every
window of every split with array arithmetic: no explode, no aggregation, no extra sort.

Memory stays bounded however long a user's history is: rows are buffered until their
user ends, and when one user's rows pass ``max_buffered_rows`` the windows that are
already complete are emitted and the rows no later window needs are dropped. The
result does not depend on where the batches or that limit cut the rows (tested).

The rules are those of :mod:`.sequences`: window k of split r covers the user's
positions [k*S, k*S + L) among the events of splits <= r (a prefix of the history,
because the split never decreases along it); the target at position p is the next
event's item when that event is in the prefix (else 0), and it is counted when the next
event is in split r and the window is the first or p is among its last S slots. Only
windows that count a target are kept. No pyspark here: the Spark side is
``sequences.build_split_windows``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

INPUT_COLUMNS = ("user_id", "pos", "split_rank", "item_index", "event_type_index", "log_gap", "session_start")
"""The columns the builder reads, in the canonical order of each user's events."""

SPLIT_RANK = {"train": 0, "valid": 1, "test": 2}

_ARRAYS = (  # output field, the per-slot value it pads, its numpy dtype
    ("input_items", "item", np.int32),
    ("input_event_types", "etype", np.int32),
    ("input_log_gaps", "gap", np.float32),
    ("input_session_starts", "sstart", np.int32),
    ("target_items", "target", np.int32),
    ("target_mask", "mask", np.int32),
)

OUTPUT_SCHEMA = pa.schema(
    [("window_id", pa.string()), ("user_id", pa.string()), ("length", pa.int32())]
    + [(name, pa.list_(pa.float32() if dtype is np.float32 else pa.int32())) for name, _, dtype in _ARRAYS]
    + [("num_targets", pa.int32()), ("split", pa.string())]
)
OUTPUT_DDL = ("window_id string, user_id string, length int, input_items array<int>, "
              "input_event_types array<int>, input_log_gaps array<float>, input_session_starts array<int>, "
              "target_items array<int>, target_mask array<int>, num_targets int, split string")
"""``OUTPUT_SCHEMA`` as Spark DDL: the ``sequences`` contract plus the ``split`` column."""

DEFAULT_MAX_BUFFERED_ROWS = 1 << 18


@dataclass(frozen=True)
class WindowSpec:
    """Window length and, per split name, its stride."""

    window_length: int
    strides: Mapping[str, int]

    def __post_init__(self):
        if self.window_length < 1:
            raise ValueError(f"sequences.window_length must be >= 1, got {self.window_length}")
        for split, stride in self.strides.items():
            if split not in SPLIT_RANK:
                raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLIT_RANK)}")
            if not 1 <= stride <= self.window_length:
                raise ValueError(f"the {split} stride must be in [1, window_length], got {stride}")


_COLUMNS = {  # buffered array -> (input column, dtype)
    "pos": ("pos", np.int64), "rank": ("split_rank", np.int8), "item": ("item_index", np.int32),
    "etype": ("event_type_index", np.int32), "gap": ("log_gap", np.float32), "sstart": ("session_start", np.int32),
}


class _Rows:
    """Column arrays of buffered events (numpy, user ids as an Arrow array)."""

    def __init__(self, user: pa.Array, cols: dict):
        self.user, self.cols = user, cols

    @classmethod
    def of(cls, batch: pa.RecordBatch) -> "_Rows":
        return cls(batch.column("user_id"), {
            key: batch.column(name).to_numpy(zero_copy_only=False).astype(dtype, copy=False)
            for key, (name, dtype) in _COLUMNS.items()})

    @classmethod
    def empty(cls) -> "_Rows":
        return cls(pa.array([], pa.string()), {key: np.zeros(0, dtype) for key, (_, dtype) in _COLUMNS.items()})

    def __len__(self):
        return len(self.user)

    def concat(self, other: "_Rows") -> "_Rows":
        if not len(self):
            return other
        user = pa.concat_arrays([self.user, other.user])
        return _Rows(user, {k: np.concatenate([v, other.cols[k]]) for k, v in self.cols.items()})

    def slice(self, start: int, stop: int | None = None) -> "_Rows":
        stop = len(self) if stop is None else stop
        return _Rows(self.user.slice(start, stop - start), {k: v[start:stop] for k, v in self.cols.items()})


def _segments(user: pa.Array) -> np.ndarray:
    """Start index of each user's run of rows, plus the end (len) as the last element."""
    n = len(user)
    if n == 0:
        return np.zeros(1, np.int64)
    changed = pc.not_equal(user.slice(1), user.slice(0, n - 1)).to_numpy(zero_copy_only=False)
    return np.concatenate([[0], np.flatnonzero(changed) + 1, [n]]).astype(np.int64)


def _windows(rows: _Rows, seg: np.ndarray, spec: WindowSpec, last_complete: bool,
             k_floor: Mapping[int, int]) -> tuple[list[pa.RecordBatch], dict[int, int]]:
    """The windows of ``rows`` (users' runs starting at ``seg``): every window of the complete
    users; of the last user, when ``last_complete`` is False, only the windows whose positions
    and targets are all buffered. ``k_floor``: per split rank, the first window of the first
    user not emitted before. Returns (batches, per split rank the last user's next window)."""
    L = spec.window_length
    c, n_rows = rows.cols, len(rows)
    pos, rank = c["pos"], c["rank"]
    n_users = len(seg) - 1
    seg_id = np.repeat(np.arange(n_users), np.diff(seg))
    base = pos[seg[:-1]]  # the first buffered row's position, per user
    if np.any(base[1:] != 0) or (base[0] != 0 and not k_floor):
        raise ValueError("a user's events reach the window builder split across partitions or without "
                         "their first event; build_split_windows needs the user-partitioned features")
    if np.any(pos - base[seg_id] != np.arange(n_rows) - seg[:-1][seg_id]):
        raise ValueError("the events reaching the window builder are not in each user's position order; "
                         "build_split_windows needs the output of sequences.assign_splits, unshuffled")
    same_next = np.zeros(n_rows, bool)
    same_next[:-1] = seg_id[1:] == seg_id[:-1]
    if np.any(rank[1:][same_next[:-1]] < rank[:-1][same_next[:-1]]):
        raise ValueError("a user's split rank decreases along their history; the splits must be cut by time")
    nxt_item = np.where(same_next, np.roll(c["item"], -1), 0)
    nxt_rank = np.where(same_next, np.roll(rank, -1), 127)  # 127: no next event buffered
    last_end = pos[-1] if n_rows else 0  # position of the last buffered row (last user)
    out, k_next = [], {}
    j = np.arange(L)
    for split, S in spec.strides.items():
        r = SPLIT_RANK[split]
        counted = nxt_rank == r
        prefix_len = base + np.add.reduceat((rank <= r).astype(np.int64), seg[:-1]) if n_rows else base
        idx = np.flatnonzero(counted)
        k_first = np.full(n_users, -1, np.int64)
        k_last = np.full(n_users, -2, np.int64)
        if len(idx):
            # idx is ascending, so each user's counted positions are one run of it
            has, first_i = np.unique(seg_id[idx], return_index=True)
            last_i = np.append(first_i[1:], len(idx)) - 1
            k_first[has] = np.maximum(0, (pos[idx[first_i]] - L) // S + 1)
            k_last[has] = pos[idx[last_i]] // S
        k_first[0] = max(k_first[0], k_floor.get(r, 0))
        if not last_complete and n_users:
            # the last user's window k is final when its L positions and the last one's next
            # event are buffered: k*S + L <= last buffered position
            k_next[r] = max(k_floor.get(r, 0) if n_users == 1 else 0, (last_end - L) // S + 1, 0)
            k_last[-1] = min(k_last[-1], k_next[r] - 1)
        n_win = np.maximum(k_last - k_first + 1, 0)
        if not n_win.sum():
            continue
        w_user = np.repeat(np.arange(n_users), n_win)
        w_k = k_first[w_user] + (np.arange(n_win.sum()) - np.repeat(np.cumsum(n_win) - n_win, n_win))
        p = w_k[:, None] * S + j[None, :]  # absolute positions of each slot
        valid = p < prefix_len[w_user][:, None]
        at = np.where(valid, seg[:-1][w_user][:, None] + (p - base[w_user][:, None]), 0)
        mask = valid & counted[at] & ((w_k == 0)[:, None] | (j >= L - S)[None, :])
        num_targets = mask.sum(axis=1)
        keep = num_targets > 0
        if not keep.any():
            continue
        w_user, w_k, valid, at, mask = w_user[keep], w_k[keep], valid[keep], at[keep], mask[keep]
        values = {"item": c["item"][at], "etype": c["etype"][at], "gap": c["gap"][at], "sstart": c["sstart"][at],
                  "target": np.where(nxt_rank[at] <= r, nxt_item[at], 0), "mask": mask}
        n_out = len(w_k)
        offsets = pa.array(np.arange(0, (n_out + 1) * L, L, dtype=np.int32))
        users = rows.user.take(pa.array(seg[:-1][w_user]))
        users = users.cast(pa.string()) if users.type != pa.string() else users
        window_id = pc.binary_join_element_wise(users, pc.cast(pa.array(w_k), pa.string()), ":")
        arrays = [window_id, users, pa.array(valid.sum(axis=1).astype(np.int32))]
        for _, key, dtype in _ARRAYS:
            flat = np.where(valid, values[key], 0).astype(dtype, copy=False).ravel()
            arrays.append(pa.ListArray.from_arrays(offsets, pa.array(flat)))
        arrays += [pa.array(num_targets[keep].astype(np.int32)), pa.array(np.full(n_out, split, object), pa.string())]
        out.append(pa.RecordBatch.from_arrays(arrays, schema=OUTPUT_SCHEMA))
    return out, k_next


def build_windows(batches: Iterable[pa.RecordBatch], spec: WindowSpec,
                  max_buffered_rows: int = DEFAULT_MAX_BUFFERED_ROWS) -> Iterator[pa.RecordBatch]:
    """Every window of ``batches`` (one partition's events, users contiguous, each user's rows
    in position order; columns :data:`INPUT_COLUMNS`), as batches of :data:`OUTPUT_SCHEMA`."""
    carry = _Rows.empty()
    k_floor: dict[int, int] = {}  # for carry's first user, when part of their windows were emitted
    for batch in batches:
        if batch.num_rows == 0:
            continue
        rows = carry.concat(_Rows.of(batch))
        seg = _segments(rows.user)
        if len(seg) > 2:  # complete users before the last one
            done = rows.slice(0, int(seg[-2]))
            yield from _windows(done, seg[:-1], spec, True, k_floor)[0]
            k_floor = {}
            rows = rows.slice(int(seg[-2]))
            seg = seg[-2:] - seg[-2]
        if len(rows) > max_buffered_rows:  # one long history: emit what is final, keep what is needed
            batches_out, k_next = _windows(rows, seg, spec, False, k_floor)
            yield from batches_out
            k_floor = k_next
            keep_from = min(k * spec.strides[s] for s, k in ((s, k_next[SPLIT_RANK[s]]) for s in spec.strides))
            rows = rows.slice(int(max(0, keep_from - rows.cols["pos"][0])))
        carry = rows
    if len(carry):
        yield from _windows(carry, _segments(carry.user), spec, True, k_floor)[0]
