"""The recurrent interest model: overfits a tiny batch, saves/loads without pickle, and
its interest vector is the state after each row's latest event."""
from __future__ import annotations

import json

import pytest
import torch

from interest_tracker.model import InterestEnsemble, InterestModel, ModelConfig, build_model, load_model, save_model
from interest_tracker.model.weights import model_from_bytes
from interest_tracker.config import ConfigError


def _batch(seed=0, B=8, L=6, items=30):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(2, L + 1, (B,), generator=g)
    pos = torch.arange(L).unsqueeze(0)
    valid = pos < lengths.unsqueeze(1)
    x = torch.randint(2, items, (B, L), generator=g) * valid
    types = torch.ones(B, L, dtype=torch.long) * valid
    gaps = torch.rand(B, L, generator=g) * valid
    starts = (pos == 0).float().expand(B, L)
    targets = torch.randint(2, items, (B, L), generator=g) * valid
    return x, types, gaps, starts, targets, valid, lengths


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_model_overfits_a_tiny_batch(cell):
    torch.set_num_threads(1)  # the CI machine is small and shared; one thread is the fastest here
    torch.manual_seed(0)
    model = InterestModel(ModelConfig(num_items=30, num_event_types=2, cell=cell, hidden_size=32,
                                      embedding_dim=32, tied_embeddings=False))
    x, types, gaps, starts, targets, valid, _ = _batch()
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    first = None
    for _ in range(150):
        states = model(x, types, gaps, starts)
        logits = model.score_all(states[valid])
        loss = torch.nn.functional.cross_entropy(logits, targets[valid])
        first = first if first is not None else float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        pred = model.score_all(model(x, types, gaps, starts)[valid]).argmax(-1)
    assert float(loss.detach()) < 0.05 < first
    assert (pred == targets[valid]).float().mean().item() == 1.0


def test_save_load_roundtrip_uses_weights_and_json(tmp_path):
    torch.manual_seed(1)
    model = InterestModel(ModelConfig(num_items=20, num_event_types=3, hidden_size=8, embedding_dim=8)).eval()
    save_model(model, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model_config.json", "weights.pt"]
    assert json.loads((tmp_path / "model_config.json").read_text())["num_items"] == 20
    loaded = load_model(tmp_path)
    x, types, gaps, starts, _, _, lengths = _batch(items=20)
    types = types.clamp(max=2)
    a = model.encode_last(x, types, gaps, starts, lengths)
    b = loaded.encode_last(x, types, gaps, starts, lengths)
    assert torch.equal(a, b)
    again = model_from_bytes((tmp_path / "model_config.json").read_text(), (tmp_path / "weights.pt").read_bytes())
    assert torch.equal(again.score_all(a), model.score_all(a))


def test_weights_file_refuses_pickled_objects(tmp_path):
    model = InterestModel(ModelConfig(num_items=5, hidden_size=4, embedding_dim=4))
    save_model(model, tmp_path)
    torch.save({"evil": ConfigError("not a tensor")}, tmp_path / "weights.pt")
    with pytest.raises(Exception, match="(?i)weights_only|unsupported|global"):
        load_model(tmp_path)


def test_encode_last_is_the_state_at_the_last_event_and_ignores_padding():
    torch.manual_seed(2)
    model = InterestModel(ModelConfig(num_items=20, num_event_types=2, hidden_size=8, embedding_dim=8)).eval()
    x, types, gaps, starts, _, _, lengths = _batch(items=20)
    with torch.no_grad():
        states = model(x, types, gaps, starts)
        last = model.encode_last(x, types, gaps, starts, lengths)
        for i, n in enumerate(lengths.tolist()):
            assert torch.allclose(last[i], states[i, n - 1])
            alone = model.encode_last(x[i:i + 1, :n], types[i:i + 1, :n], gaps[i:i + 1, :n],
                                      starts[i:i + 1, :n], lengths[i:i + 1])
            assert torch.allclose(last[i], alone[0], atol=1e-6)


def test_padding_and_unknown_are_never_recommended():
    model = InterestModel(ModelConfig(num_items=10, hidden_size=4, embedding_dim=4))
    scores = model.score_all(torch.randn(3, 4))
    assert torch.isinf(scores[:, :2]).all() and torch.isfinite(scores[:, 2:]).all()


def test_model_config_rejects_bad_values_with_the_fix():
    with pytest.raises(ConfigError, match="cell must be 'gru' or 'lstm'"):
        ModelConfig(num_items=10, cell="rnn")
    with pytest.raises(ConfigError, match="num_items must be >= 3"):
        ModelConfig(num_items=2)
    with pytest.raises(ConfigError, match="model.hidden_size must be positive, got 0"):
        ModelConfig(num_items=10, hidden_size=0)
    with pytest.raises(ConfigError, match=r"model.embedding_dropout must be in \[0, 1\), got 1.0"):
        ModelConfig(num_items=10, embedding_dropout=1.0)


def test_one_member_keeps_the_single_model_and_its_parameter_names():
    """``members=1`` (the default) builds exactly today's network, so earlier artifacts load."""
    single = build_model(ModelConfig(num_items=12, hidden_size=4, embedding_dim=4))
    assert type(single) is InterestModel and single.vector_dim == 4 and single.towers == [single]
    assert "output_bias" in single.state_dict() and not any(k.startswith("members.") for k in single.state_dict())


def test_ensemble_scores_are_the_mean_of_its_members_scores(tmp_path):
    torch.manual_seed(3)
    ens = build_model(ModelConfig(num_items=20, num_event_types=2, hidden_size=8, embedding_dim=6, members=3)).eval()
    assert isinstance(ens, InterestEnsemble) and ens.vector_dim == 18 and len(ens.towers) == 3
    # the members start apart (else their mean would be one model)
    a, b = (t.item_embedding.weight for t in ens.towers[:2])
    assert not torch.allclose(a, b)
    x, types, gaps, starts, _, valid, lengths = _batch(items=20)
    types = types.clamp(max=1)
    with torch.no_grad():
        vectors = ens(x, types, gaps, starts)
        assert vectors.shape == (8, 6, 18)
        member_scores = torch.stack([t.score_all(t(x, types, gaps, starts)[valid]) for t in ens.towers])
        torch.testing.assert_close(ens.score_all(vectors[valid])[:, 2:], member_scores.mean(0)[:, 2:])
        last = ens.encode_last(x, types, gaps, starts, lengths)
        torch.testing.assert_close(last, torch.cat([t.encode_last(x, types, gaps, starts, lengths)
                                                    for t in ens.towers], dim=1))
        # scoring's top-K is one product of the interest vector with item_vectors() plus the bias
        torch.testing.assert_close(ens.score_all(last)[:, 2:], (last @ ens.item_vectors().T + ens.output_bias)[:, 2:])
    save_model(ens, tmp_path)
    assert json.loads((tmp_path / "model_config.json").read_text())["members"] == 3
    loaded = load_model(tmp_path)
    assert isinstance(loaded, InterestEnsemble)
    with torch.no_grad():
        assert torch.equal(loaded.encode_last(x, types, gaps, starts, lengths), last)


def test_model_config_rejects_a_bad_member_count():
    with pytest.raises(ConfigError, match=r"model.members must be in \[1, 16\], got 0"):
        ModelConfig(num_items=10, members=0)
