"""The numpy session numbering against the rules of prepare/sessionize.py, one row at a time.

The rules: a session starts at a user's first event, after a gap strictly greater than the
gap, or where the input session id changes (when respected); it is cut every
max_duration after the gap-session's start and every max_events events of that chunk;
its id is '<user>:<start ms>:<n>'. The builder must give the same ids however the
partition is cut into batches (the carry between batches). The same pass computes the
look-back features of prepare/features.py: pos (0-based position in the history) and
log_gap (log1p of the seconds since the user's previous event, 0 at the first).
"""
import math

import numpy as np
import pyarrow as pa
import pytest

from interest_tracker.prepare import session_arrays as sa


def _rows(rng, n_users=25):
    rows = []
    for u in range(n_users):
        t = 1_700_000_000_000_000 + int(rng.integers(0, 10**9))
        for k in range(int(rng.integers(1, 80))):
            t += int(rng.choice([0, 1, 10**6, 60 * 10**6, 29 * 60 * 10**6, 30 * 60 * 10**6, 30 * 60 * 10**6 + 1,
                                 5 * 3600 * 10**6]))
            isid = None if rng.random() < 0.3 else f"s{int(rng.integers(0, 3))}"
            rows.append((f"u{u:02d}", t, isid, k + 1))
    return rows


def _reference(rows, rules):
    out, prev = [], None
    for user, us, isid, rn in rows:
        if prev is None or prev["user"] != user:
            st = {"user": user, "n": 0}
            new = True
            log_gap = 0.0
        else:
            log_gap = math.log1p(max(us - prev["us"], 0) / 1e6)
            st = prev
            new = us - st["us"] > rules.gap_us or (rules.respect_input_sessions and st["isid"] != isid)
        if new:
            st["gap_start"] = us
        chunk = (us - st["gap_start"]) // rules.max_duration_us
        cb = new or chunk != st["chunk"]
        if cb:
            st["chunk_rn"] = rn
        piece = (rn - st["chunk_rn"]) // rules.max_events
        start = cb or piece != st["piece"]
        if start:
            st["n"] += 1
            st["start_ms"] = us // 1000
        st.update(us=us, isid=isid, chunk=chunk, piece=piece)
        out.append((f"{user}:{st['start_ms']}:{st['n']}", start, rn - 1, float(np.float32(log_gap))))
        prev = st
    return out


def _batches(rows, cuts):
    cols = list(zip(*rows))
    table = pa.table({"user_id": pa.array(cols[0], pa.string()), "event_us": pa.array(cols[1], pa.int64()),
                      "input_session_id": pa.array(cols[2], pa.string()), sa.RN: pa.array(cols[3], pa.int32()),
                      "item_id": pa.array([f"i{i}" for i in range(len(rows))], pa.string())})
    bounds = [0, *sorted(set(cuts)), len(rows)]
    return [table.slice(a, b - a).to_batches()[0] for a, b in zip(bounds, bounds[1:]) if b > a]


@pytest.mark.parametrize("respect", [True, False])
@pytest.mark.parametrize("max_events,max_minutes", [(3, 60), (1000, 45), (1, 10**6)])
def test_numbering_follows_the_rules_however_batches_are_cut(respect, max_events, max_minutes):
    rng = np.random.default_rng(max_events + max_minutes + respect)
    rows = _rows(rng)
    rules = sa.SessionRules(30 * 60 * 10**6, max_minutes * 60 * 10**6, max_events, respect)
    want = _reference(rows, rules)
    assert len({w[0] for w in want}) > 30
    assert len({w[3] for w in want}) > 5  # gaps of several sizes, not only zeros
    for cuts in ([], list(rng.integers(1, len(rows), 20)), list(range(1, len(rows)))):
        got = []
        for b in sa.number_sessions(_batches(rows, cuts), rules):
            assert sa.RN not in b.schema.names and "item_id" in b.schema.names
            assert b.schema.field("log_gap").type == pa.float32() and b.schema.field("pos").type == pa.int64()
            got += list(zip(*[b.column(c).to_pylist() for c in sa.OUTPUT_COLUMNS]))
        assert got == want


def test_a_user_split_across_partitions_is_refused():
    rows = [("a", 10, None, 3), ("a", 20, None, 4)]  # starts at its third event
    with pytest.raises(ValueError, match="split across partitions"):
        list(sa.number_sessions(_batches(rows, []), sa.SessionRules(1, 10, 5, True)))
