"""Windows, masks and the time split: every target counted once, no leakage."""
import datetime as dt
import random

import pytest

from interest_tracker.prepare import features, sequences
from interest_tracker.prepare.config import SessionConfig
from interest_tracker.prepare.sessionize import sessionize
from interest_tracker.prepare.vocabulary import extend_vocabulary

from stage1_helpers import T0, clean_events_df

UTC = dt.timezone.utc
T0_DT = dt.datetime.fromtimestamp(T0, UTC)


def _split_features(spark, rows, valid_start, test_start, split_by="event"):
    ev = sessionize(clean_events_df(spark, rows), SessionConfig())
    vocab, _ = extend_vocabulary(ev, None, 1)
    feats = features.with_sequence_features(ev, vocab, ["view", "click"])
    return sequences.assign_splits(feats, valid_start, test_start, split_by), vocab


def test_features_match_definition(spark):
    rows = [("u", "a", T0), ("u", "b", T0 + 99, "click"), ("u", "a", T0 + 99 + 3600)]
    ev = sessionize(clean_events_df(spark, rows), SessionConfig())
    vocab, added = extend_vocabulary(ev, None, 1)
    assert added.count() == 2
    idx = {r.item_id: r.item_index for r in vocab.collect()}
    assert idx == {"a": 2, "b": 3}  # 0 = pad, 1 = unknown; ordered by first_seen
    f = features.with_sequence_features(ev, vocab.where("item_id = 'a'"), ["view", "click"]).orderBy("pos").collect()
    assert [r.item_index for r in f] == [2, 1, 2]  # b missing from this vocabulary -> unknown (1)
    assert [r.event_type_index for r in f] == [1, 2, 1]
    assert [r.session_start for r in f] == [1, 0, 1]
    assert f[0].log_gap == 0.0
    assert f[1].log_gap == pytest.approx(4.6051702, rel=1e-6)  # log1p(99)


def test_the_session_pass_features_and_windows_equal_the_window_functions(spark):
    # Stage 1 cuts a run's windows from the session pass's pos / log_gap / session_start,
    # in the pass's own order (no sort); scoring and multi-run histories use the window
    # functions. Both must give the same features and the same windows.
    rng = random.Random(7)
    rows = []
    for u in range(12):
        t = T0 + rng.randint(0, 10**6)
        for _ in range(rng.randint(1, 60)):
            t += rng.choice([0, 0.001, 1, 59.5, 1800, 1800.001, 7200, 86400 * 3])
            rows.append((f"u{u}", f"i{rng.randint(0, 30)}", t, rng.choice(["view", "click"])))
    ev = sessionize(clean_events_df(spark, rows).repartition(4), SessionConfig()).cache()
    vocab, _ = extend_vocabulary(ev, None, 1)
    names = ["view", "click"]
    fast = features.with_sequence_features(ev, vocab, names, precomputed=True)
    slow = features.with_sequence_features(ev, vocab, names)
    cols = ["user_id", "pos", "item_index", "event_type_index", "log_gap", "session_start"]
    got, want = sorted(fast.select(cols).collect()), sorted(slow.select(cols).collect())
    assert len(got) == len(rows) and got == want
    assert len({r.log_gap for r in got}) > 5 and sum(r.session_start for r in got) > 12
    times = sorted(t for _, _, t, _ in rows)
    valid_start = dt.datetime.fromtimestamp(times[len(times) // 2], UTC)
    test_start = dt.datetime.fromtimestamp(times[3 * len(times) // 4], UTC)
    strides = {"train": 2, "valid": 3, "test": 3}
    w_fast = sequences.build_split_windows(sequences.assign_splits(fast, valid_start, test_start), strides, 5,
                                           in_order=True).collect()
    w_slow = sequences.build_split_windows(sequences.assign_splits(slow, valid_start, test_start), strides, 5).collect()
    assert {r.split for r in w_fast} == {"train", "valid", "test"}
    assert sorted(w_fast, key=lambda r: (r.split, r.window_id)) == sorted(w_slow, key=lambda r: (r.split, r.window_id))
    ev.unpersist()
    with pytest.raises(ValueError, match="log_gap"):
        features.with_sequence_features(ev.drop("log_gap"), vocab, names, precomputed=True)


@pytest.mark.parametrize("L,S", [(4, 4), (4, 2), (3, 1)])
def test_every_target_counted_exactly_once(spark, L, S):
    n = 11
    rows = [("u", f"i{k}", T0 + 60 * k) for k in range(n)] + [("w", "x", T0)]
    far = T0_DT + dt.timedelta(days=10)
    sf, _ = _split_features(spark, rows, far, far)
    w = sequences.build_split_windows(sf, {"train": S}, L).collect()
    assert sum(r.num_targets for r in w) == n - 1  # single-event user 'w' has no target
    counted = []
    for r in w:
        assert len(r.input_items) == L and len(r.target_mask) == L
        assert r.length == sum(1 for x in r.input_items if x != 0)
        counted += [r.target_items[j] for j in range(L) if r.target_mask[j]]
    assert sorted(counted) == sorted(r.item_index for r in sf.where("user_id='u' and pos > 0").collect())
    if S < L:  # later windows count only their last S slots -> each target has >= L-S context
        for r in w:
            if not r.window_id.endswith(":0"):
                assert all(r.target_mask[j] == 0 for j in range(L - S))


def test_no_leakage_across_the_split(spark):
    # items named after their period: t* before valid_start, v* in valid, s* in test
    rows = []
    for u in range(3):
        rows += [(f"u{u}", f"t{k}", T0 + 60 * k) for k in range(6)]
        rows += [(f"u{u}", f"v{k}", T0 + 3600 + 60 * k) for k in range(4)]
        rows += [(f"u{u}", f"s{k}", T0 + 7200 + 60 * k) for k in range(3)]
    sf, vocab = _split_features(spark, rows, T0_DT + dt.timedelta(seconds=3600), T0_DT + dt.timedelta(seconds=7200))
    name = {r.item_index: r.item_id for r in vocab.collect()}
    for split, allowed_inputs, target_prefix in [("train", "t", "t"), ("valid", "tv", "v"), ("test", "tvs", "s")]:
        w = sequences.build_split_windows(sf, {split: 2 if split != "train" else 5}, 5).collect()
        assert w, split
        for r in w:
            inputs = [name[i] for i in r.input_items if i]
            assert all(x[0] in allowed_inputs for x in inputs), (split, inputs)
            targets = [name[r.target_items[j]] for j in range(5) if r.target_mask[j]]
            assert all(t[0] == target_prefix for t in targets), (split, targets)
        per_user = {"train": 5, "valid": 4, "test": 3}[split]  # first event of the user is never a target
        assert sum(r.num_targets for r in w) == 3 * per_user


def test_split_by_session_keeps_sessions_whole(spark):
    # one session straddling test_start goes entirely to test (session-rec protocol)
    rows = [("a", "x", T0), ("a", "y", T0 + 60), ("b", "x", T0 + 100), ("b", "y", T0 + 200)]
    sf, _ = _split_features(spark, rows, T0_DT + dt.timedelta(seconds=150), T0_DT + dt.timedelta(seconds=150), "session")
    ranks = {(r.user_id, r.pos): r.split_rank for r in sf.collect()}
    assert ranks == {("a", 0): 0, ("a", 1): 0, ("b", 0): 2, ("b", 1): 2}


def test_cutoffs_default_to_the_last_days(spark):
    from interest_tracker.prepare.config import SequenceConfig

    ev = clean_events_df(spark, [("u", "a", T0), ("u", "b", T0 + 5 * 86400)])
    v, t = sequences.resolve_cutoffs(ev, SequenceConfig(valid_days=1, test_days=2))
    assert t == T0_DT + dt.timedelta(days=3) and v == T0_DT + dt.timedelta(days=2)


@pytest.mark.parametrize("split_by", ["event", "session"])
def test_one_pass_over_every_split_gives_each_splits_rows(spark, split_by):
    """The production pass (build_split_windows, all splits at once, different strides) writes, per
    split, exactly the rows of that split built alone: users with events in one split only, users
    spanning all three, a session straddling a cutoff, and a user whose history ends in train."""
    m = 40  # one time unit: 40 minutes, above the 30-minute session gap
    rows = []
    for u in range(4):
        rows += [(f"all{u}", f"i{(u + k) % 9}", T0 + 60 * m * k) for k in range(13)]  # train, valid and test
    rows += [("train_only", f"i{k}", T0 + 60 * m * k) for k in range(7)]
    rows += [("test_only", f"i{k}", T0 + 700 * m + 10 * k) for k in range(6)]
    rows += [("late", f"i{k}", T0 + 350 * m + 30 * m * k) for k in range(9)]  # starts in valid
    rows += [("straddle", f"i{k}", T0 + 630 * m - 300 + 200 * k) for k in range(3)]  # one session across test_start
    valid_start, test_start = T0_DT + dt.timedelta(seconds=330 * m), T0_DT + dt.timedelta(seconds=630 * m)
    sf, _ = _split_features(spark, rows, valid_start, test_start, split_by)
    strides = {"train": 5, "valid": 2, "test": 3}
    together = sequences.build_split_windows(sf, strides, 5).collect()
    by_split = {}
    for r in together:
        by_split.setdefault(r.split, []).append(r.asDict())
    assert set(by_split) == {"train", "valid", "test"}
    for split, stride in strides.items():
        alone = [r.asDict() for r in sequences.build_split_windows(sf, {split: stride}, 5).collect()]
        got = sorted((dict(d, split=None) for d in by_split[split]), key=lambda d: d["window_id"])
        want = sorted((dict(d, split=None) for d in alone), key=lambda d: d["window_id"])
        assert got == want, split
        assert sum(d["num_targets"] for d in want) > 0
