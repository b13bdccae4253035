"""Baselines in every run and 'auto' never worse than a rule, end to end through training
and scoring: on data a first-order rule cannot solve the model is published; on tiny,
sparse data the rule (or a blend) is; the published tables follow the choice."""
from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from interest_tracker.config import ConfigError, from_dict, to_dict
from interest_tracker.layout import Stage1Layout, fs
from interest_tracker.model import load_model
from interest_tracker.scoring import state as st
from interest_tracker.scoring import tables as tb
from interest_tracker.scoring.blend import PRIORS_FILE, PRODUCT_FLOOR, BlendWeights, Priors
from interest_tracker.scoring.pipeline import score_run
from interest_tracker.training.config import TrainConfig
from interest_tracker.training.loop import train
from window_fixtures import build_windows, write_dataset  # hand-made distributions (tests/)
from test_scoring_support import scoring_config, write_events

RUN = dt.date(2026, 11, 28)
METRIC_NAMES = {"points", "recall@10", "recall@20", "mrr@10", "mrr@20", "ndcg@10", "ndcg@20"}


def item_id(i: int) -> str:
    return f"it{i:03d}"


def two_way_walks(users: int, seed: int, num_items: int) -> pd.DataFrame:
    """Half the users walk the catalogue up (i -> i+1), half down: after item i the next
    item is i+1 or i-1 with equal odds for a rule that sees only i, and certain for a
    model that also sees the item before."""
    rng = np.random.default_rng(seed)
    rows, span = [], num_items - 2
    for u in range(users):
        step = 1 if u % 2 else -1
        it = int(rng.integers(0, span))
        for i in range(int(rng.integers(6, 16))):
            rows.append((f"s{seed}u{u}", 2 + it, 1, 60.0 * i, int(i == 0)))
            it = (it + step) % span
    return pd.DataFrame(rows, columns=["user_id", "item_index", "event_type_index", "event_time", "session_start"])


def sparse_chains(users: int, seed: int, num_items: int) -> pd.DataFrame:
    """Every user follows one fixed random successor table over a catalogue much larger than
    what a few epochs on a few hundred clicks can teach a model; the rule reads it off."""
    succ = np.random.default_rng(99).permutation(num_items - 2) + 2
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(users):
        it = int(rng.integers(2, num_items))
        for i in range(int(rng.integers(4, 8))):
            rows.append((f"s{seed}u{u}", it, 1, 60.0 * i, int(i == 0)))
            it = int(succ[it - 2])
    return pd.DataFrame(rows, columns=["user_id", "item_index", "event_type_index", "event_time", "session_start"])


def _dataset(spark, root: Path, make, num_items: int, users: tuple[int, int, int]) -> Path:
    layout = Stage1Layout(str(root / "out"), RUN)
    seq = Path(fs.local_path(layout.sequences))
    splits = {"train": build_windows(make(users[0], 1, num_items), 8, 8),
              "valid": build_windows(make(users[1], 2, num_items), 8, 4),
              "test": build_windows(make(users[2], 3, num_items), 8, 4)}
    write_dataset(spark, seq, splits, num_items=num_items, event_types=["click"], window_length=8, train_stride=8,
                  eval_stride=4, files_per_split=2)
    vocab = Path(fs.local_path(layout.vocabulary_version(1)))
    vocab.mkdir(parents=True)
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"item_id": pa.array([item_id(i) for i in range(2, num_items)]),
                             "item_index": pa.array(np.arange(2, num_items, dtype=np.int32))}), vocab / "part-0.parquet")
    return seq


def _train(dataset: Path, artifacts: Path, **kw) -> dict:
    base = dict(dataset=str(dataset), artifact_root=str(artifacts), model_version="v1", batch_size=16,
                model={"hidden_size": 32, "embedding_dim": 32}, log_every_steps=1000, learning_rate=0.01,
                warmup_steps=0, patience=20, loss="full", optimizer="adam")
    base.update(kw)
    return train(to_dict(from_dict(TrainConfig, base)))


@pytest.fixture(scope="module")
def model_world(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("model_wins")
    ds = _dataset(spark, root, two_way_walks, 24, (300, 60, 60))
    out = _train(ds, root / "artifacts", epochs=8)
    return root, Path(out["artifact"]), out["metrics"]


@pytest.fixture(scope="module")
def rule_world(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("rule_wins")
    ds = _dataset(spark, root, sparse_chains, 202, (120, 60, 60))
    out = _train(ds, root / "artifacts", epochs=1, learning_rate=0.001)
    return root, Path(out["artifact"]), out["metrics"]


def test_every_run_scores_the_baselines_with_the_models_metric_names(model_world):
    _, art, metrics = model_world
    saved = json.loads((art / "metrics.json").read_text())
    for split in ("valid", "test"):
        assert set(saved["baselines"][split]) == {"popularity", "transitions"}
        for name in ("popularity", "transitions"):
            assert set(saved["baselines"][split][name]) == METRIC_NAMES == set(saved[split])
            assert saved["baselines"][split][name]["points"] == saved[split]["points"]
    # a rule that sees the last item only gets half of the next items first: about 0.75 MRR@20
    assert 0.6 < saved["baselines"]["valid"]["transitions"]["mrr@20"] < 0.85
    assert saved["valid"]["mrr@20"] > saved["baselines"]["valid"]["transitions"]["mrr@20"] * 1.05


def test_auto_picks_the_model_where_the_model_must_win(model_world):
    _, art, metrics = model_world
    manifest = json.loads((art / "artifact.json").read_text())
    sel = json.loads((art / "metrics.json").read_text())["selection"]
    assert manifest["scorer"]["choice"] == "model" == sel["choice"]
    assert manifest["scorer"]["priors"] == PRIORS_FILE and (art / PRIORS_FILE).is_file()
    assert sel["scorers"]["valid"]["model"]["mrr@20"] > sel["scorers"]["valid"]["rule"]["mrr@20"]
    assert set(sel["scorers"]["test"]) == {"model", "blend", "rule"}
    assert set(sel["grid"]["gap_half_life_days"]) == {"0", "0.0416667", "1", "7", "30"}


def test_auto_picks_the_rule_or_a_blend_on_tiny_sparse_data_and_warns(spark, tmp_path, caplog):
    root = tmp_path
    ds = _dataset(spark, root, sparse_chains, 202, (120, 60, 60))
    with caplog.at_level(logging.WARNING, logger="interest_tracker.evaluation.selection"):
        out = _train(ds, root / "artifacts", epochs=1, learning_rate=0.001)
    metrics = out["metrics"]
    assert any("does not beat the item-transition baseline" in r.getMessage() for r in caplog.records)
    assert metrics["valid"]["mrr@20"] < metrics["baselines"]["valid"]["transitions"]["mrr@20"]
    sel = metrics["selection"]
    assert sel["choice"] in ("rule", "blend")
    chosen = sel["scorers"]["valid"][sel["choice"]]["mrr@20"]
    assert chosen > 1.5 * metrics["valid"]["mrr@20"]
    # the rule in the harness is the transition baseline, up to the popularity smoothing
    assert sel["scorers"]["valid"]["rule"]["mrr@20"] >= metrics["baselines"]["valid"]["transitions"]["mrr@20"] - 0.02
    # the shipped priors hold the successors the data follows (refit on every split)
    priors = Priors.from_bytes((Path(out["artifact"]) / PRIORS_FILE).read_bytes())
    succ = np.random.default_rng(99).permutation(200) + 2
    seen = [a for a in range(2, 202) if priors.indptr[a + 1] > priors.indptr[a]]
    assert len(seen) > 100 and all(priors.successors[priors.indptr[a]] == succ[a - 2] for a in seen)


# ------------------------------------------------------------------ scoring follows the choice

def _events(users: int, num_items: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    base = dt.datetime.combine(RUN, dt.time(1, 0))
    for u in range(users):
        for k in range(int(rng.integers(2, 7))):
            rows.append({"event_id": f"e{u}:{k}", "user_id": f"u{u:02d}",
                         "item_id": item_id(int(rng.integers(2, num_items))), "event_type": "click",
                         "event_weight": 1.0, "event_time": base + dt.timedelta(minutes=u, seconds=10 * k),
                         "session_id": f"u{u:02d}:0", "input_session_id": None, "attributes": None})
    return rows


def _expected_top(art: Path, vectors: dict, events: list[dict], weights: BlendWeights | None, k: int,
                  as_of: dt.datetime | None = None) -> dict:
    """Each user's top-k computed densely from the model, the shipped priors and the weights."""
    model = load_model(art)
    with torch.no_grad():
        items = model.item_vectors().double()
        bias = model.output_bias.double()
    priors = Priors.from_bytes((art / PRIORS_FILE).read_bytes())
    last, consumed, last_time = {}, {}, {}
    for e in sorted(events, key=lambda e: (e["event_time"], e["item_id"])):
        idx = int(e["item_id"][2:])
        last[e["user_id"]] = idx
        last_time[e["user_id"]] = e["event_time"]
        consumed.setdefault(e["user_id"], set()).add(idx)
    out = {}
    for user, vec in vectors.items():
        logits = torch.tensor(vec, dtype=torch.float64) @ items.T + bias
        logits[:2] = float("-inf")
        if weights is None:
            s = logits.numpy()
        else:
            p = torch.softmax(logits, 0).numpy()
            pop_coef, _, cols, vals = priors.transition_terms(np.array([last[user]]), weights.smoothing)
            trans = pop_coef[0] * priors.popularity
            trans[cols] += vals
            trust = 1.0
            if as_of is not None and weights.gap_half_life_days > 0:
                trust = 2 ** (-(as_of - last_time[user]).total_seconds() / (weights.gap_half_life_days * 86400))
            if weights.product:  # log(rules) + power * log softmax(model)
                s = (np.log(weights.transitions * trans + weights.recent * priors.recent + PRODUCT_FLOOR)
                     + weights.model_power * trust * torch.log_softmax(logits, 0).numpy())
            else:
                s = (weights.model * trust * p + weights.transitions * trans
                     + (weights.recent + weights.model * (1 - trust)) * priors.recent)
            s[:2] = -np.inf
        s[list(consumed[user])] = -np.inf
        out[user] = np.sort(s)[::-1][:k]
    return out


def _score(spark, root: Path, art_root: Path, events: list[dict], warehouse: Path, **kw):
    cfg = scoring_config(root, warehouse, mode="full", register_tables=False, **kw)
    cfg = from_dict(type(cfg), {**to_dict(cfg), "artifact_root": str(art_root), "events_root": str(root / "stage1")})
    result = score_run(spark, cfg, RUN)
    recs = st.read_partition(spark, tb.table_url(str(warehouse), tb.RECOMMENDATIONS), tb.RECOMMENDATIONS, RUN)
    interest = st.read_partition(spark, tb.table_url(str(warehouse), tb.INTEREST), tb.INTEREST, RUN)
    lists = {}
    for r in recs.orderBy("user_id", "rank").collect():
        lists.setdefault(r.user_id, []).append((r.item_id, r.score))
    vectors = {r.user_id: r.vector for r in interest.collect()}
    return result, lists, vectors


@pytest.mark.parametrize("world", ["rule_world", "model_world"])
def test_published_tables_follow_the_choice(spark, tmp_path, request, world):
    root, art, metrics = request.getfixturevalue(world)
    num_items = 202 if world == "rule_world" else 24
    events = _events(12, num_items, seed=5)
    write_events(spark, tmp_path / "stage1", RUN, events)
    choice = json.loads((art / "artifact.json").read_text())["scorer"]
    auto, lists, vectors = _score(spark, tmp_path, art.parent, events, tmp_path / "wa", scorer="auto")
    assert auto.scorer == choice["choice"]
    weights = None if auto.scorer == "model" else BlendWeights.from_dict(choice[auto.scorer])
    want = _expected_top(art, vectors, events, weights, 5)
    assert set(lists) == set(want)
    for user, got in lists.items():
        assert [s for _, s in got] == pytest.approx(list(want[user]), rel=1e-4, abs=1e-7)
    model_want = _expected_top(art, vectors, events, None, 5)
    differs = any(not np.allclose([s for _, s in got], model_want[u], rtol=1e-4) for u, got in lists.items())
    assert differs == (auto.scorer != "model")
    if world == "model_world":  # 'model' forced publishes what 'auto' did
        forced, model_lists, _ = _score(spark, tmp_path, art.parent, events, tmp_path / "wm", scorer="model")
        assert forced.scorer == "model" and model_lists == lists


def test_a_gap_aware_blend_follows_the_time_since_each_users_last_event(spark, tmp_path, model_world):
    import shutil

    from interest_tracker.layout import ArtifactStore
    from interest_tracker.layout.warehouse import Warehouse

    _, art, _ = model_world
    copy = tmp_path / "artifacts" / "v1"
    shutil.copytree(art, copy)
    ArtifactStore(str(tmp_path / "artifacts")).set_latest("v1")
    manifest = json.loads((copy / "artifact.json").read_text())
    # half a day of half-life: users last seen at 01:00-01:12 keep about 1/4 of the model's share
    w = BlendWeights(0.6, 0.2, 0.2, 1.0, gap_half_life_days=0.5)
    manifest["scorer"].update(choice="blend", blend=w.to_dict())
    (copy / "artifact.json").write_text(json.dumps(manifest))
    events = _events(12, 24, seed=7)
    write_events(spark, tmp_path / "stage1", RUN, events)
    result, lists, vectors = _score(spark, tmp_path, tmp_path / "artifacts", events, tmp_path / "w", scorer="auto")
    assert result.scorer == "blend"
    as_of = dt.datetime.combine(RUN + dt.timedelta(days=1), dt.time())
    want = _expected_top(copy, vectors, events, w, 5, as_of=as_of)
    without = _expected_top(copy, vectors, events, w, 5)
    for user, got in lists.items():
        assert [s for _, s in got] == pytest.approx(list(want[user]), rel=1e-4, abs=1e-7)
    assert any(not np.allclose(want[u], without[u], rtol=1e-3) for u in want)  # the gap mattered
    extra = Warehouse(str(tmp_path / "w")).read_manifest(spark, RUN)["extra"]
    assert extra["scorer"] == "blend"


def test_pinned_product_blend_publishes_the_rules_reranked_by_the_model(spark, tmp_path, model_world):
    """``scorer=blend`` with ``blend`` weights set in the scoring config (chosen by backtesting
    earlier cutoffs) overrides the artifact's choice; the tables hold the product form."""
    from interest_tracker.layout.warehouse import Warehouse

    _, art, _ = model_world
    events = _events(12, 24, seed=9)
    write_events(spark, tmp_path / "stage1", RUN, events)
    w = BlendWeights(0.0, 0.25, 0.75, model_power=0.5)
    result, lists, vectors = _score(spark, tmp_path, art.parent, events, tmp_path / "w", scorer="blend",
                                    blend=w.to_dict())
    assert result.scorer == "blend"
    want = _expected_top(art, vectors, events, w, 5)
    for user, got in lists.items():
        assert [s for _, s in got] == pytest.approx(list(want[user]), rel=1e-4, abs=1e-6)
    rules = _expected_top(art, vectors, events, BlendWeights(0.0, 0.25, 0.75), 5)
    assert any(not np.allclose(np.log(rules[u] + PRODUCT_FLOOR), want[u], rtol=1e-3) for u in want)  # the model counts
    extra = Warehouse(str(tmp_path / "w")).read_manifest(spark, RUN)["extra"]
    assert extra["scorer"] == "blend"


def test_pinned_blend_weights_are_checked_before_spark_starts(tmp_path):
    from test_scoring_support import scoring_config as make

    with pytest.raises(ConfigError, match="'scorer' must be 'blend'"):
        make(tmp_path, tmp_path / "w", scorer="auto", blend={"model": 0, "transitions": 0, "recent": 1})
    with pytest.raises(ConfigError, match="unknown keys \\['power'\\]"):
        make(tmp_path, tmp_path / "w", scorer="blend", blend={"model": 0, "transitions": 0, "recent": 1, "power": 1})
    with pytest.raises(ConfigError, match="'blend' is not a valid set of blend weights.*needs model=0"):
        make(tmp_path, tmp_path / "w", scorer="blend",
             blend={"model": 0.5, "transitions": 0, "recent": 0.5, "model_power": 1})
    ok = make(tmp_path, tmp_path / "w", scorer="blend", blend={"model": 0, "transitions": 0, "recent": 1,
                                                               "model_power": 0.5})
    assert ok.blend_weights() == BlendWeights(0.0, 0.0, 1.0, model_power=0.5)


def test_blend_needs_an_artifact_with_priors(spark, tmp_path):
    from test_scoring_support import build_artifact

    build_artifact(tmp_path / "artifacts")
    write_events(spark, tmp_path / "stage1", RUN, _events(2, 40, seed=1))
    with pytest.raises(ConfigError, match="scorer='blend' needs the rule priors"):
        score_run(spark, scoring_config(tmp_path, tmp_path / "w", mode="full", register_tables=False,
                                        scorer="blend"), RUN)


def test_item_stats_carry_decayed_popularity_as_of_the_train_end_and_the_last_event(spark):
    from interest_tracker.prepare.sequences import DECAY_HALF_LIVES_DAYS, item_train_counts

    t0 = dt.datetime(2026, 11, 1)
    # item 2: train events at day 0 and day 7 (train ends at day 7); item 3: train day 7, valid day 8;
    # item 4: test only, day 14 (the last event)
    rows = [(2, 0, t0), (2, 0, t0 + dt.timedelta(days=7)), (3, 0, t0 + dt.timedelta(days=7)),
            (3, 1, t0 + dt.timedelta(days=8)), (4, 2, t0 + dt.timedelta(days=14))]
    feats = spark.createDataFrame(rows, "item_index int, split_rank int, event_time timestamp")
    vocab = spark.createDataFrame([(i,) for i in (2, 3, 4, 5)], "item_index int")
    got = {r.item_index: r.asDict() for r in item_train_counts(feats, vocab).collect()}
    assert sorted(got) == [0, 1, 2, 3, 4, 5]
    assert [got[i]["train_count"] for i in (0, 1, 2, 3, 4, 5)] == [0, 0, 2, 1, 0, 0]
    assert 7 in DECAY_HALF_LIVES_DAYS
    assert got[2]["train_decay_7d"] == pytest.approx(1.0 + 0.5)       # day 7 -> 1, day 0 -> 2^-1
    assert got[3]["train_decay_7d"] == pytest.approx(1.0)             # the valid event is not seen
    assert got[4]["train_decay_7d"] == 0.0 and got[5]["decay_7d"] == 0.0
    assert got[2]["decay_7d"] == pytest.approx(2 ** -2 + 2 ** -1)       # days 0 and 7, as of day 14
    assert got[3]["decay_7d"] == pytest.approx(2 ** (-1) + 2 ** (-6 / 7))  # days 7 and 8, as of day 14
    assert got[4]["decay_7d"] == pytest.approx(1.0)
    assert got[2]["decay_1d"] == pytest.approx(2 ** -14 + 2 ** -7)
