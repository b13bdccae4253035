"""The numpy window builder against the windowing rules written out one window at a time.

The rules (docs/architecture.md, prepare/sequences.py): window k of split r covers positions
[k*S, k*S + L) of the user's events of splits <= r; the target at p is the next event's item
when that event is in the prefix (else 0), counted when the next event is in split r and the
window is the first or p is among its last S slots; only windows that count a target exist.
The builder must give exactly those rows however the partition is cut into batches and
however small its buffer is (a long history emitted in pieces).
"""
import numpy as np
import pyarrow as pa
import pytest

from interest_tracker.prepare import window_arrays as wa


def _events(rng, n_users=30, max_len=60):
    """Random users (some with one event, one long), ranks non-decreasing along each history."""
    rows = []
    lengths = list(rng.integers(1, max_len, n_users)) + [1, 2, 5 * max_len]
    for u, n in enumerate(lengths):
        cuts = np.sort(rng.integers(0, n + 1, 2))  # train [0, a), valid [a, b), test [b, n)
        for p in range(n):
            rank = 0 if p < cuts[0] else (1 if p < cuts[1] else 2)
            rows.append((f"user{u:03d}", p, rank, int(rng.integers(2, 50)), int(rng.integers(1, 4)),
                         float(rng.random()), int(rng.random() < 0.3)))
    return rows


def _reference(rows, L, strides):
    """Every window by the rules, one at a time: {(split, window_id): row dict}."""
    by_user = {}
    for r in rows:
        by_user.setdefault(r[0], []).append(r)
    out = {}
    for user, evs in by_user.items():
        for split, S in strides.items():
            rk = wa.SPLIT_RANK[split]
            prefix = [e for e in evs if e[2] <= rk]
            for k in range(0, len(prefix) // S + 1):
                slots = prefix[k * S:k * S + L]
                if not slots:
                    continue
                items, types, gaps, starts, targets, mask = [], [], [], [], [], []
                for j, e in enumerate(slots):
                    p = k * S + j
                    nxt = evs[p + 1] if p + 1 < len(evs) else None
                    items.append(e[3]); types.append(e[4]); gaps.append(e[5]); starts.append(e[6])
                    targets.append(nxt[3] if nxt is not None and nxt[2] <= rk else 0)
                    mask.append(int(nxt is not None and nxt[2] == rk and (k == 0 or j >= L - S)))
                if not sum(mask):
                    continue
                pad = L - len(slots)
                out[(split, f"{user}:{k}")] = {
                    "user_id": user, "length": len(slots), "input_items": items + [0] * pad,
                    "input_event_types": types + [0] * pad,
                    "input_log_gaps": [pytest.approx(g, rel=1e-6) for g in gaps] + [0.0] * pad,
                    "input_session_starts": starts + [0] * pad, "target_items": targets + [0] * pad,
                    "target_mask": mask + [0] * pad, "num_targets": sum(mask)}
    return out


def _batches(rows, cuts):
    cols = list(zip(*rows))
    table = pa.table({"user_id": pa.array(cols[0], pa.string()), "pos": pa.array(cols[1], pa.int64()),
                      "split_rank": pa.array(cols[2], pa.int32()), "item_index": pa.array(cols[3], pa.int32()),
                      "event_type_index": pa.array(cols[4], pa.int32()), "log_gap": pa.array(cols[5], pa.float32()),
                      "session_start": pa.array(cols[6], pa.int32())})
    bounds = [0, *sorted(cuts), len(rows)]
    return [table.slice(a, b - a).to_batches()[0] if b > a else pa.RecordBatch.from_pylist([], table.schema)
            for a, b in zip(bounds, bounds[1:])]


def _built(batches, L, strides, max_rows):
    got = {}
    for b in wa.build_windows(batches, wa.WindowSpec(L, strides), max_rows):
        assert b.schema == wa.OUTPUT_SCHEMA
        for row in b.to_pylist():
            key = (row.pop("split"), row.pop("window_id"))
            assert key not in got, f"window {key} emitted twice"
            got[key] = row
    return got


@pytest.mark.parametrize("L,strides,max_rows", [
    (5, {"train": 5, "valid": 2, "test": 3}, 1 << 18),
    (5, {"train": 5, "valid": 2, "test": 3}, 7),     # long histories emitted in pieces
    (4, {"train": 2, "valid": 4, "test": 1}, 13),
    (1, {"train": 1, "valid": 1}, 3),
    (20, {"train": 20, "valid": 10, "test": 10}, 40),
])
def test_builder_gives_the_rules_windows_however_the_batches_are_cut(L, strides, max_rows):
    rng = np.random.default_rng(L * 100 + max_rows)
    rows = _events(rng)
    want = _reference(rows, L, strides)
    assert want and {s for s, _ in want} == set(strides)
    for cuts in ([], list(rng.integers(0, len(rows), 25)), list(range(1, len(rows)))):
        got = _built(_batches(rows, cuts), L, strides, max_rows)
        assert got.keys() == want.keys()
        for key, row in want.items():
            assert got[key] == row, key


def test_events_out_of_order_or_split_across_partitions_are_refused():
    rows = [("a", 0, 0, 2, 1, 0.0, 1), ("a", 2, 0, 3, 1, 0.0, 0), ("a", 1, 0, 4, 1, 0.0, 0)]
    with pytest.raises(ValueError, match="position order"):
        list(wa.build_windows(_batches(rows, []), wa.WindowSpec(3, {"train": 3})))
    tail_only = [("a", 5, 0, 2, 1, 0.0, 1), ("a", 6, 0, 3, 1, 0.0, 0)]
    with pytest.raises(ValueError, match="split across partitions"):
        list(wa.build_windows(_batches(tail_only, []), wa.WindowSpec(3, {"train": 3})))
    decreasing = [("a", 0, 1, 2, 1, 0.0, 1), ("a", 1, 0, 3, 1, 0.0, 0)]
    with pytest.raises(ValueError, match="split rank decreases"):
        list(wa.build_windows(_batches(decreasing, []), wa.WindowSpec(3, {"train": 3})))


@pytest.mark.parametrize("L,strides,message", [(0, {"train": 1}, "window_length"),
                                               (4, {"train": 5}, "stride"), (4, {"eval": 2}, "unknown split")])
def test_a_bad_window_spec_names_the_setting(L, strides, message):
    with pytest.raises(ValueError, match=message):
        wa.WindowSpec(L, strides)
