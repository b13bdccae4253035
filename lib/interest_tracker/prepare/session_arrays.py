"""Session numbering with numpy over each partition's user-sorted Arrow batches.

Why: the rules of :mod:`.sessionize` (gap, duration cap, length cap) written as Spark
window functions need a chain of six window operators, each copying every row, and at
10M events that chain was a large part of stage 1 (issue 10). Every rule only looks
back along the user's history, so one forward pass over sorted rows can apply them all
with array arithmetic, carrying a handful of numbers from one batch to the next: memory
does not grow with the length of a history. The same pass also computes the sequence
features that only look back along the history, ``pos`` and ``log_gap`` (their one
definition is :mod:`.features`), so that stage 1 can cut a run's windows without sorting
its events again. No pyspark here; the Spark side is ``sessionize.sessionize``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

RN = "_rn"
"""Input column: the row's 1-based position in its user's history (``row_number``), which
lets the builder check that each user arrives whole and in order."""

OUTPUT_SCHEMA = pa.schema([pa.field("session_id", pa.string(), nullable=False),
                           pa.field("session_start", pa.bool_(), nullable=False),
                           pa.field("pos", pa.int64(), nullable=False),
                           pa.field("log_gap", pa.float32(), nullable=False)])
"""Added to every row, the one declaration of their names and types (``sessionize`` derives
the Spark schema from it): the session id and whether the row starts its session, and the
features ``pos`` (0-based position in the user's history) and ``log_gap`` (log1p of the
seconds since the user's previous event, 0 at the first) of :mod:`.features`."""
OUTPUT_COLUMNS = tuple(OUTPUT_SCHEMA.names)


@dataclass(frozen=True)
class SessionRules:
    gap_us: int
    max_duration_us: int
    max_events: int
    respect_input_sessions: bool


@dataclass
class _Carry:
    """The last row of the previous batch and the running values the rules need from it."""

    user: str
    rn: int
    us: int
    input_session: str | None
    gap_start: int
    chunk: int
    chunk_rn: int
    piece: int
    n: int
    start_ms: int


def _ffill(values: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """Each row gets ``values`` at the last flagged row at or before it (row 0 must be flagged)."""
    last = np.maximum.accumulate(np.where(flags, np.arange(len(flags)), 0))
    return values[last]


def _fill(values: np.ndarray, flags: np.ndarray, seed) -> np.ndarray:
    """``values`` at the last flagged row at or before each row; row 0 (flagged) holds ``seed``
    when it is not None (the value carried from the previous batch)."""
    src = np.where(flags, values, 0)
    if seed is not None:
        src[0] = seed
    return _ffill(src, flags)


def _seeded(values: np.ndarray, seed) -> np.ndarray:
    if seed is not None:
        values[0] = seed
    return values


def _neq_null_safe(a: pa.Array, b: pa.Array) -> np.ndarray:
    eq = pc.fill_null(pc.equal(a, b), False).to_numpy(zero_copy_only=False)
    both_null = (pc.is_null(a).to_numpy(zero_copy_only=False) & pc.is_null(b).to_numpy(zero_copy_only=False))
    return ~(eq | both_null)


def _sessions(batch: pa.RecordBatch, rules: SessionRules, carry: _Carry | None):
    """(batch with the :data:`OUTPUT_COLUMNS`, the carry for the next batch)."""
    n = batch.num_rows
    user = batch.column("user_id")
    us = batch.column("event_us").to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    rn = batch.column(RN).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    isid = batch.column("input_session_id") if rules.respect_input_sessions else None
    first = np.ones(n, bool)
    if n > 1:
        first[1:] = pc.not_equal(user.slice(1), user.slice(0, n - 1)).to_numpy(zero_copy_only=False)
    cont = carry is not None and carry.user == user[0].as_py()
    first[0] = not cont
    expected_rn = np.arange(n) - np.maximum.accumulate(np.where(first, np.arange(n), 0)) + 1
    if cont:
        head = ~np.maximum.accumulate(first)  # rows of the carried user
        expected_rn[head] += carry.rn
    if np.any(rn != expected_rn):
        raise ValueError("events reach the session builder split across partitions or out of order; "
                         "sessionize needs them partitioned by user_id and in the canonical order")
    # Prepend the carried row (index 0) so every "previous row" and forward fill has a source;
    # without a carry it is a placeholder that no real row reads (row 1 starts a user).
    us0 = np.concatenate([[carry.us if cont else 0], us])
    rn0 = np.concatenate([[carry.rn if cont else 0], rn])
    first0 = np.concatenate([[True], first])
    new = first0 | ((us0 - np.roll(us0, 1)) > rules.gap_us)
    if rules.respect_input_sessions:
        none = pa.array([None], isid.type)
        prev = pa.concat_arrays([none, pa.array([carry.input_session if cont else None], isid.type),
                                 isid.slice(0, n - 1)])
        new |= _neq_null_safe(prev, pa.concat_arrays([none, isid]))
    seed = carry if cont else None  # the carried values seed row 0 of every running column
    gap_start = _fill(us0, new, seed and seed.gap_start)
    chunk = _seeded((us0 - gap_start) // rules.max_duration_us, seed and seed.chunk)
    cb = new | (chunk != np.roll(chunk, 1))
    cb[0] = True
    chunk_rn = _fill(rn0, cb, seed and seed.chunk_rn)
    piece = _seeded((rn0 - chunk_rn) // rules.max_events, seed and seed.piece)
    boundary = cb | (piece != np.roll(piece, 1))
    boundary[0] = True
    start_ms = _fill(us0 // 1000, boundary, seed and seed.start_ms)
    counts = np.cumsum(boundary[1:])  # boundaries of the real rows only
    seg_first = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    before = counts[seg_first] - boundary[1:][seg_first]
    n_sess = counts - before
    if cont:
        n_sess[~np.maximum.accumulate(first)] += carry.n
    start_ms, boundary = start_ms[1:], boundary[1:]
    # The features of prepare/features.py that look one row back: 0 at a user's first row.
    gap_s = np.maximum(us - us0[:-1], 0) / 1e6
    log_gap = np.where(first, 0.0, np.log1p(gap_s)).astype(np.float32)
    sid = pc.binary_join_element_wise(user.cast(pa.string()), pc.cast(pa.array(start_ms), pa.string()),
                                      pc.cast(pa.array(n_sess), pa.string()), ":")
    out = pa.RecordBatch.from_arrays(
        [batch.column(i) for i in range(batch.num_columns) if batch.schema.names[i] != RN]
        + [array.cast(field.type) for array, field in
           zip((sid, pa.array(boundary), pa.array(rn - 1), pa.array(log_gap)), OUTPUT_SCHEMA)],
        names=[name for name in batch.schema.names if name != RN] + list(OUTPUT_COLUMNS))
    last = n - 1
    nxt = _Carry(user=user[last].as_py(), rn=int(rn[last]), us=int(us[last]), input_session=isid[last].as_py() if isid is not None else None,
                 gap_start=int(gap_start[last + 1]), chunk=int(chunk[last + 1]), chunk_rn=int(chunk_rn[last + 1]),
                 piece=int(piece[last + 1]), n=int(n_sess[last]), start_ms=int(start_ms[last]))
    return out, nxt


def number_sessions(batches: Iterable[pa.RecordBatch], rules: SessionRules) -> Iterator[pa.RecordBatch]:
    """``batches`` (one partition: users contiguous, each in the canonical order, with
    ``event_us``, :data:`RN` and, when the rules respect them, ``input_session_id``) with
    the :data:`OUTPUT_COLUMNS` added and :data:`RN` dropped."""
    carry = None
    for batch in batches:
        if batch.num_rows == 0:
            continue
        out, carry = _sessions(batch, rules, carry)
        yield out
