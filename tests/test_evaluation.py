"""The evaluator against metrics computed by hand, the baselines, and the peer-list reader."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from interest_tracker.evaluation.baselines import PopularityBaseline, TransitionBaseline, training_pairs
from interest_tracker.evaluation.harness import evaluate, model_scorer, point_keys, prediction_points
from interest_tracker.evaluation.metrics import MISS, RankingMetrics, ranks_from_lists, ranks_of_targets
from interest_tracker.evaluation.peers import load_peer_lists, score_peer_lists, session_items
from interest_tracker.model import InterestModel, ModelConfig


def test_metrics_equal_hand_computation():
    m = RankingMetrics(ks=(10, 20))
    m.add(np.array([1, 3, 11, 25]))
    m.add(np.array([MISS]))
    r = m.result()
    assert r["points"] == 5
    assert r["recall@10"] == pytest.approx(2 / 5)
    assert r["recall@20"] == pytest.approx(3 / 5)
    assert r["mrr@10"] == pytest.approx((1 + 1 / 3) / 5)
    assert r["mrr@20"] == pytest.approx((1 + 1 / 3 + 1 / 11) / 5)
    assert r["ndcg@10"] == pytest.approx((1 + 1 / math.log2(4)) / 5)
    assert r["ndcg@20"] == pytest.approx((1 + 1 / math.log2(4) + 1 / math.log2(12)) / 5)


def test_metrics_refuse_an_empty_evaluation():
    with pytest.raises(ValueError, match="no prediction points"):
        RankingMetrics().result()


def test_rank_counts_strictly_higher_scores_and_marks_unscorable_targets_missed():
    scores = np.array([[-np.inf, -np.inf, 0.5, 0.9, 0.5, 0.1],
                       [-np.inf, -np.inf, 0.2, 0.1, 0.3, 0.0]])
    assert ranks_of_targets(scores, np.array([4, 5])).tolist() == [2, 4]
    assert ranks_of_targets(scores, np.array([1, 3])).tolist() == [MISS, 3]
    assert ranks_of_targets(torch.tensor(scores), torch.tensor([4, 5])).tolist() == [2, 4]
    assert ranks_from_lists([[7, 8, 9], [1]], [9, 5]).tolist() == [3, MISS]


def _windows():
    # two windows of length 4, stride 2: user a (events 0..3) and user b's second window (k=1)
    return {
        "window_id": np.array(["a:0", "b:1"], dtype=object),
        "input_items": np.array([[2, 3, 2, 4], [5, 2, 3, 0]]),
        "input_event_types": np.ones((2, 4), dtype=np.int64),
        "input_log_gaps": np.zeros((2, 4), dtype=np.float32),
        "input_session_starts": np.zeros((2, 4), dtype=np.int64),
        "target_items": np.array([[3, 2, 4, 0], [2, 3, 0, 0]]),
        "target_mask": np.array([[1, 1, 1, 0], [0, 1, 0, 0]]),
        "length": np.array([4, 3]),
    }


def test_harness_counts_only_masked_targets_and_keys_points_by_event_index():
    b = _windows()
    rows, pos = prediction_points(b)
    assert list(zip(rows.tolist(), pos.tolist())) == [(0, 0), (0, 1), (0, 2), (1, 1)]
    assert point_keys(b, rows, pos, stride=2) == [("a", 1), ("a", 2), ("a", 3), ("b", 4)]

    table = np.array([-np.inf, -np.inf, 5.0, 4.0, 3.0, 2.0])  # fixed ranking 2,3,4,5

    def scorer(batch, r, p):
        return np.tile(table, (len(r), 1))

    result, per_point = evaluate(scorer, [b], ks=(1, 2), stride=2)
    # targets 3,2,4,3 -> ranks 2,1,3,2
    assert per_point == {("a", 1): 2, ("a", 2): 1, ("a", 3): 3, ("b", 4): 2}
    assert result["recall@1"] == pytest.approx(1 / 4) and result["recall@2"] == pytest.approx(3 / 4)
    assert result["mrr@2"] == pytest.approx((0.5 + 1 + 0.5) / 4)
    only, _ = evaluate(scorer, [b], ks=(1,), stride=2, keep={("a", 2)})
    assert only["points"] == 1 and only["recall@1"] == 1.0
    chunked, _ = evaluate(scorer, [b], ks=(1, 2), stride=2, max_points=1)
    assert chunked == result


def test_baselines_rank_as_computed_by_hand():
    train = {"input_items": np.array([[2, 3, 2, 3, 4]]), "target_items": np.array([[3, 2, 3, 4, 0]]),
             "target_mask": np.array([[1, 1, 1, 1, 0]])}
    src, dst = training_pairs([train])
    assert src.tolist() == [2, 3, 2, 3] and dst.tolist() == [3, 2, 3, 4]
    pop = PopularityBaseline(6, dst)       # counts: 3->2, 2->1, 4->1: ranking 3, then 4 (tie-break by index), 2
    trans = TransitionBaseline(6, src, dst)  # after 2: {3:2}; after 3: {2:1, 4:1}
    b = {"input_items": np.array([[2, 3, 5]]), "target_items": np.array([[3, 4, 2]]),
         "target_mask": np.array([[1, 1, 1]]), "window_id": np.array(["u:0"], dtype=object)}
    rp, _ = evaluate(pop, [b], ks=(1, 2, 3))
    assert rp["mrr@3"] == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)
    rt, per = evaluate(trans, [b], ks=(1, 3), stride=2)
    # after 2 -> 3 is first; after 3 -> {2,4} tie at one count, broken by popularity (tie: 4 > 2 by index);
    # after 5 (no transitions) -> popularity order 3, 4, 2: target 2 is third
    assert per == {("u", 1): 1, ("u", 2): 1, ("u", 3): 3}
    assert rt["recall@1"] == pytest.approx(2 / 3)


def test_model_scorer_scores_the_state_at_each_point():
    torch.manual_seed(0)
    model = InterestModel(ModelConfig(num_items=6, num_event_types=2, hidden_size=4, embedding_dim=4)).eval()
    b = _windows()
    result, per = evaluate(model_scorer(model), [b], ks=(20,), stride=2)
    with torch.no_grad():
        states = model(torch.tensor(b["input_items"]), torch.tensor(b["input_event_types"]),
                       torch.tensor(b["input_log_gaps"]), torch.tensor(b["input_session_starts"]).float())
        s = model.score_all(states[1, 1].view(1, -1))[0]
    expected = int((s > s[3]).sum()) + 1
    assert per[("b", 4)] == expected
    assert result["recall@20"] == 1.0  # 6 items: every target is in the top 20


def test_peer_lists_are_scored_on_their_target_event(tmp_path):
    events = pd.DataFrame({"SessionId": [1, 1, 1, 2, 2], "ItemId": [10, 11, 12, 20, 21],
                           "Time": [1.0, 2.0, 3.0, 1.0, 2.0]})
    f = tmp_path / "peer.csv"
    # position 0 predicts the 2nd item (index 1), position 1 the 3rd
    f.write_text("SessionId;Position;Recommendations;Scores\n"
                 "1;0;99,11,12;1,0.5,0.2\n1;1;12;1\n2;0;5,6;1,1\n")
    peers = load_peer_lists(f)
    res, per = score_peer_lists(peers, session_items(events), ks=(1, 2))
    assert per == {("1", 1): 2, ("1", 2): 1, ("2", 1): MISS}
    assert res["recall@2"] == pytest.approx(2 / 3) and res["mrr@2"] == pytest.approx(0.5)
    bad = pd.DataFrame({"SessionId": [2], "Position": [1], "recommendations": [[1]]})
    with pytest.raises(ValueError, match="no target"):
        score_peer_lists(bad, session_items(events))
