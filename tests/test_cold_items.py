"""Cold items (never a training target) get their trained neighbours' mean weights in the
artifact: checked by hand on a tiny model, and on a real training run's artifact."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from interest_tracker.model import InterestModel, ModelConfig, build_model
from interest_tracker.training.cold_items import cold_neighbour_weights, fill_cold_items, item_pair_counts

# train targets: items 2 and 3. Later splits add item 4 (next to 2 once and to 3 twice)
# and item 5 (next to the cold item 4 only: no trained neighbour).
TRAIN_TARGETS = np.array([2, 3, 3])
SRC = np.array([2, 3, 2, 4, 3, 4, 1])
DST = np.array([3, 2, 4, 3, 4, 5, 3])


def test_cold_neighbours_by_hand():
    cold, neighbour, counts = cold_neighbour_weights(7, TRAIN_TARGETS, SRC, DST)
    assert list(zip(cold.tolist(), neighbour.tolist(), counts.tolist())) == [(4, 2, 1.0), (4, 3, 2.0)]
    # the pair (1, 3) holds the unknown index and does not count
    assert item_pair_counts(7, SRC, DST).tolist() == [0, 0, 3, 4, 4, 1, 0]


def test_fill_sets_the_weighted_mean_and_leaves_the_rest():
    for tied in (False, True):
        torch.manual_seed(0)
        model = InterestModel(ModelConfig(num_items=7, num_event_types=2, hidden_size=4, embedding_dim=4,
                                          tied_embeddings=tied))
        with torch.no_grad():
            model.output_bias.copy_(torch.arange(7, dtype=torch.float32) - 10.0)
        before = {k: v.detach().clone() for k, v in model.state_dict().items()}
        assert fill_cold_items(model, TRAIN_TARGETS, SRC, DST) == 1
        after = model.state_dict()
        tables = ["item_embedding.weight"] + ([] if tied else ["output_embedding.weight"])
        for name in tables:
            e = before[name]
            torch.testing.assert_close(after[name][4], (e[2] + 2 * e[3]) / 3)
            keep = [0, 1, 2, 3, 5, 6]
            torch.testing.assert_close(after[name][keep], e[keep])
        # item 4 is in 4 of the 6 valid pairs; its neighbours 2 and 3 in 3 and 4 (weighted 1:2)
        expected_bias = (-8.0 + 2 * -7.0) / 3 + np.log((4 + 1) / ((3 + 2 * 4) / 3 + 1))
        assert after["output_bias"][4].item() == pytest.approx(expected_bias, rel=1e-6)
        torch.testing.assert_close(after["output_bias"][[0, 1, 2, 3, 5, 6]], before["output_bias"][[0, 1, 2, 3, 5, 6]])
        for name in before:
            if name not in tables + ["output_bias"]:
                assert torch.equal(after[name], before[name])


def test_nothing_cold_changes_nothing():
    model = InterestModel(ModelConfig(num_items=7, num_event_types=2, hidden_size=4, embedding_dim=4))
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    assert fill_cold_items(model, np.array([2, 3, 4, 5]), SRC, DST) == 0
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_fill_reaches_every_member_of_an_ensemble():
    torch.manual_seed(0)
    ens = build_model(ModelConfig(num_items=7, num_event_types=2, hidden_size=4, embedding_dim=4, members=2))
    before = [t.item_embedding.weight.detach().clone() for t in ens.towers]
    assert fill_cold_items(ens, TRAIN_TARGETS, SRC, DST) == 1
    for tower, e in zip(ens.towers, before):
        torch.testing.assert_close(tower.item_embedding.weight[4], (e[2] + 2 * e[3]) / 3)
