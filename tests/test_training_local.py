"""Local training end to end on stage 1's own output: the artifact, learning, early stopping,
config errors, mixed precision, and resume after SIGKILL (proved to use the checkpoint).

The device comes from ``INTEREST_TRACKER_TEST_DEVICE`` (default ``cpu``); bench/device_check.sh
runs this file with ``cuda``.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from interest_tracker.config import ConfigError, from_dict, load, to_dict
from interest_tracker.evaluation.baselines import training_pairs
from interest_tracker.layout import ArtifactStore, SequencesDataset
from interest_tracker.model import load_model
from interest_tracker.training.checkpoint import load_checkpoint, save_checkpoint
from interest_tracker.training.config import TrainConfig
from interest_tracker.training.launchers import launch
from interest_tracker.training.loaders import read_split
from interest_tracker.training.loop import evaluate_split, train
from kill_helpers import train_until_killed

REPO = Path(__file__).resolve().parents[1]
DEVICE = os.environ.get("INTEREST_TRACKER_TEST_DEVICE", "cpu")


def _cfg(dataset, artifacts, **kw) -> TrainConfig:
    base = dict(dataset=str(dataset), artifact_root=str(artifacts), model_version="v1", batch_size=16,
                epochs=3, model={"hidden_size": 16, "embedding_dim": 16}, log_every_steps=10,
                learning_rate=0.01, warmup_steps=0, patience=5, device=DEVICE, loss="full", optimizer="adam")
    base.update(kw)
    return from_dict(TrainConfig, base)


def _popularity_mrr20(dataset) -> float:
    """MRR@20 of the most-popular-items baseline on the test split (same harness)."""
    from interest_tracker.evaluation.baselines import PopularityBaseline, training_pairs
    from interest_tracker.evaluation.harness import evaluate
    from interest_tracker.training.loaders import read_split

    info = SequencesDataset(str(dataset)).info()
    _, dst = training_pairs(read_split(str(dataset / "train"), 512))
    metrics, _ = evaluate(PopularityBaseline(int(info["num_items"]), dst), read_split(str(dataset / "test"), 512))
    return metrics["mrr@20"]


def test_local_training_writes_a_complete_artifact_and_learns(training_dataset, tmp_path):
    dataset = training_dataset
    cfg = _cfg(dataset, tmp_path / "art", epochs=4, cold_items="off")  # the artifact holds the scored weights
    out = launch(cfg)
    art = Path(out["artifact"])
    assert art == tmp_path / "art" / "v1" and ArtifactStore(str(tmp_path / "art")).latest() == "v1"
    names = {p.name for p in art.iterdir()}
    assert {"weights.pt", "model_config.json", "artifact.json", "metrics.json", "learning_curves.png"} <= names
    manifest = json.loads((art / "artifact.json").read_text())
    info = SequencesDataset(str(dataset)).info()
    assert manifest["dataset_fingerprint"] == info["fingerprint"] and manifest["vocab_version"] == 1
    assert manifest["train_config"]["batch_size"] == 16 and manifest["environment"]["world_size"] == 1
    metrics = json.loads((art / "metrics.json").read_text())
    assert metrics["device"].startswith("cuda" if DEVICE == "cuda" else "cpu")
    assert [h["device"] for h in metrics["history"]] == [metrics["device"]] * 4
    losses = [h["train_loss"] for h in metrics["history"]]
    assert losses[-1] < losses[0] * 0.9
    # every test target was scored, and the sequential users were learned: far above popularity
    assert metrics["test"]["points"] == info["targets"]["test"]
    assert metrics["test"]["mrr@20"] > 1.5 * _popularity_mrr20(dataset)
    # the epoch's time is accounted for, part by part
    split = metrics["history"][0]["time_split_s"]
    assert set(split) == {"loading", "forward_backward", "allreduce_update", "other"}
    assert sum(split.values()) == pytest.approx(metrics["history"][0]["seconds"], rel=1e-6)
    assert metrics["cold_items"] == {"policy": "off"}
    # the saved weights are the best epoch's, and reproduce the recorded metrics (on the CPU)
    reloaded, _ = evaluate_split(load_model(art), str(dataset / "test"), cfg)
    assert reloaded == pytest.approx(metrics["test"], rel=1e-4, abs=1e-6)


def test_an_ensemble_trains_its_members_and_publishes_their_mean(training_dataset, tmp_path):
    """``model.members=2``: two networks, each on its own loader's batches and its own loss, in
    one run; the artifact loads as an ensemble whose recorded metrics its weights reproduce."""
    from interest_tracker.model import InterestEnsemble

    cfg = _cfg(training_dataset, tmp_path / "e", epochs=3, cold_items="off", loader="pyarrow",
               model={"hidden_size": 16, "embedding_dim": 16, "members": 2})
    out = train(to_dict(cfg))
    model = load_model(out["artifact"])
    assert isinstance(model, InterestEnsemble) and model.vector_dim == 32
    a, b = (t.rnn.weight_hh_l0 for t in model.towers)
    assert not torch.allclose(a, b)
    metrics = out["metrics"]
    assert metrics["test"]["mrr@20"] > 1.5 * _popularity_mrr20(training_dataset)
    reloaded, _ = evaluate_split(model, str(training_dataset / "test"), cfg)
    assert reloaded == pytest.approx(metrics["test"], rel=1e-4, abs=1e-6)


def test_packing_changes_nothing_but_the_cost(training_dataset, tmp_path):
    """Packed sequences skip the padding inside the RNN; the states at real positions, so the
    losses and metrics, stay the same up to float rounding."""
    kw = dict(epochs=2, steps_per_epoch=20, loader="pyarrow", evaluate_test=False)
    packed = train(to_dict(_cfg(training_dataset, tmp_path / "p", pack_sequences=True, **kw)))
    padded = train(to_dict(_cfg(training_dataset, tmp_path / "u", pack_sequences=False, **kw)))
    for a, b in zip(packed["metrics"]["history"], padded["metrics"]["history"]):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert a["valid"]["mrr@20"] == pytest.approx(b["valid"]["mrr@20"], abs=2e-3)


def test_sampled_softmax_training_reads_item_stats_and_learns(training_dataset, tmp_path):
    out = train(to_dict(_cfg(training_dataset, tmp_path / "s", epochs=4, loss="sampled", num_negatives=8)))
    losses = [h["train_loss"] for h in out["metrics"]["history"]]
    assert losses[-1] < losses[0]
    assert out["metrics"]["test"]["mrr@20"] > _popularity_mrr20(training_dataset)


def test_bpr_max_with_adagrad_refits_without_a_validation_split(training_dataset, tmp_path):
    # A refit (stage 1 run with valid_start == test_start): no valid targets, so every epoch
    # runs, the last weights are published, baselines are scored on test only and 'auto'
    # keeps the model. Also: BPR-max with GRU4Rec's Adagrad + momentum learns.
    data = tmp_path / "refit"
    shutil.copytree(training_dataset, data)
    refit = SequencesDataset(str(data))
    info = refit.info()
    info["targets"]["valid"] = 0
    refit.write_info(info)
    out = train(to_dict(_cfg(data, tmp_path / "r", epochs=3, patience=1, loss="bpr-max", num_negatives=16,
                             optimizer="adagrad", learning_rate=0.05, momentum=0.4)))
    m = out["metrics"]
    assert m["epochs_run"] == 3 and m["valid"] is None and m["weights"] == "last" and m["best_epoch"] is None
    assert set(m["baselines"]) == {"test"} and m["selection"]["choice"] == "model"
    losses = [h["train_loss"] for h in m["history"]]
    assert losses[-1] < losses[0]
    assert m["test"]["mrr@20"] > _popularity_mrr20(training_dataset)


def _unmask_train_targets(split, items) -> None:
    """Rewrite a split's parquet files in place, row group by row group, with every target
    of ``items`` no longer counted (target_mask 0)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for f in sorted(split.glob("*.parquet")):
        pf = pq.ParquetFile(f)
        groups = [pf.read_row_group(i) for i in range(pf.num_row_groups)]
        with pq.ParquetWriter(f, pf.schema_arrow) as w:
            for t in groups:
                targets = np.array(t.column("target_items").to_pylist())
                mask = np.array(t.column("target_mask").to_pylist()) * ~np.isin(targets, items)
                t = t.set_column(t.schema.get_field_index("target_mask"), t.schema.field("target_mask"),
                                 pa.array(mask.tolist(), t.schema.field("target_mask").type))
                t = t.set_column(t.schema.get_field_index("num_targets"), t.schema.field("num_targets"),
                                 pa.array(mask.sum(axis=1).tolist(), t.schema.field("num_targets").type))
                w.write_table(t)


def test_cold_items_get_their_neighbours_weights_in_the_artifact(training_dataset, tmp_path):
    """cold_items='neighbours': the items no training target holds, counted independently,
    are the ones filled; every other weight is what training left."""
    from interest_tracker.training.cold_items import cold_neighbour_weights

    # Make items cold: every train target of two items becomes padding (unmasked), so only
    # the later splits hold them as targets.
    data = tmp_path / "cold"
    shutil.copytree(training_dataset, data)
    _, valid_targets = training_pairs(read_split(str(data / "valid"), 512))
    made_cold = np.argsort(-np.bincount(valid_targets), kind="stable")[:2]
    _unmask_train_targets(data / "train", made_cold)
    kw = dict(epochs=2, steps_per_epoch=10, evaluate_test=False, loader="pyarrow")
    ref = train(to_dict(_cfg(data, tmp_path / "off", cold_items="off", **kw)))
    on = train(to_dict(_cfg(data, tmp_path / "on", **kw)))  # the default
    assert TrainConfig.__dataclass_fields__["cold_items"].default == "neighbours"
    assert on["param_digest"] == ref["param_digest"]  # the same training; only the artifact differs
    src, dst = training_pairs(read_split(str(data / "train"), 512))
    a, b = [src], [dst]
    for s in ("valid", "test"):
        x, y = training_pairs(read_split(str(data / s), 512))
        a.append(x)
        b.append(y)
    n = int(SequencesDataset(str(data)).info()["num_items"])
    cold, _, _ = cold_neighbour_weights(n, dst, np.concatenate(a), np.concatenate(b))
    expected = sorted(set(cold.tolist()))
    assert set(made_cold.tolist()) <= set(expected)
    m = on["metrics"]["cold_items"]
    assert m["policy"] == "neighbours" and m["filled"] == len(expected) <= m["cold"]
    before = load_model(Path(ref["artifact"])).state_dict()
    after = load_model(Path(on["artifact"])).state_dict()
    changed = sorted(set(torch.nonzero((after["output_bias"] != before["output_bias"])).flatten().tolist()))
    assert changed == expected
    keep = [i for i in range(n) if i not in set(expected)]
    assert torch.equal(after["item_embedding.weight"][keep], before["item_embedding.weight"][keep])


def test_mixed_precision_trains(training_dataset, tmp_path):
    precision = "fp16" if DEVICE == "cuda" else "bf16"
    out = train(to_dict(_cfg(training_dataset, tmp_path / "mp", epochs=3, precision=precision,
                             evaluate_test=False)))
    losses = [h["train_loss"] for h in out["metrics"]["history"]]
    assert out["metrics"]["precision"] == precision and losses[-1] < losses[0]


def test_early_stopping_stops_when_validation_does_not_improve(training_dataset, tmp_path):
    # a learning rate this small cannot move mrr@20 in 1 step/epoch, so patience=1 stops after 2 epochs
    out = train(to_dict(_cfg(training_dataset, tmp_path / "a", epochs=10, patience=1, learning_rate=1e-9,
                             steps_per_epoch=1, evaluate_test=False)))
    assert out["metrics"]["epochs_run"] == 2 and out["metrics"]["best_epoch"] == 0
    assert out["steps_run"] == 2


def test_config_errors_name_the_key_and_the_fix(tmp_path, spark):
    good = {"dataset": "d", "artifact_root": "a"}
    with pytest.raises(ConfigError, match="unknown config key"):
        from_dict(TrainConfig, {**good, "epoch": 3})
    with pytest.raises(ConfigError, match="come from dataset_info.json"):
        from_dict(TrainConfig, {**good, "model": {"num_items": 5}})
    with pytest.raises(ConfigError, match="not a valid ModelConfig"):
        from_dict(TrainConfig, {**good, "model": {"cell": "rnn"}})
    with pytest.raises(ConfigError, match="'launcher' must be one of"):
        load(TrainConfig, None, ["dataset=d", "artifact_root=a", "launcher=mpi"])
    with pytest.raises(ConfigError, match="'recent_prior' must be 'auto', 'popularity' or 'decay_<h>d'"):
        from_dict(TrainConfig, {**good, "recent_prior": "recent"})
    for bad in ("decay_xd", "decay_0d", "decay_-7d"):
        with pytest.raises(ConfigError, match="'recent_prior' must be 'auto', 'popularity' or 'decay_<h>d'"):
            from_dict(TrainConfig, {**good, "recent_prior": bad})
    # model values are typed like every other key, and the error names the key
    for value in (2.5, "big"):
        with pytest.raises(ConfigError, match=f"'model.hidden_size' must be an integer, got {value!r}"):
            load(TrainConfig, None, ["dataset=d", "artifact_root=a", f"model.hidden_size={json.dumps(value)}"])
    coerced = load(TrainConfig, None, ["dataset=d", "artifact_root=a", "model.tied_embeddings=no",
                                       "model.hidden_size=\"24\""])
    assert coerced.model == {"tied_embeddings": False, "hidden_size": 24}
    assert to_dict(coerced)["model"] == {"tied_embeddings": False, "hidden_size": 24}  # what the ranks get
    assert coerced.model_config(5, 3).tied_embeddings is False
    with pytest.raises(ConfigError, match="'selection_min_gap_hours' must be >= 0"):
        from_dict(TrainConfig, {**good, "selection_min_gap_hours": -1})
    with pytest.raises(ConfigError, match="task slots"):
        launch(from_dict(TrainConfig, {**good, "launcher": "torch-distributor", "num_proc": 64}), spark)
    with pytest.raises(FileNotFoundError, match="run jobs/prepare_events.py first"):
        train(to_dict(from_dict(TrainConfig, {"dataset": str(tmp_path), "artifact_root": str(tmp_path)})))


def test_resume_after_sigkill_uses_the_checkpoint(training_dataset, tmp_path):
    dataset = training_dataset
    steps = 120
    kw = dict(epochs=3, steps_per_epoch=steps, batch_size=8, loader="pyarrow", torch_threads=1)
    reference = train(to_dict(_cfg(dataset, tmp_path / "ref", **kw)))
    assert reference["steps_run"] == 3 * steps

    cfg = _cfg(dataset, tmp_path / "killed", **kw)
    train_until_killed(to_dict(cfg), tmp_path, f"epoch 1 step 20/{steps}")  # mid-way through the second epoch
    ckpt_dir = tmp_path / "killed" / "_checkpoints" / "v1"
    ckpt = load_checkpoint(ckpt_dir)
    assert ckpt["epoch"] == 1 and ckpt["global_step"] == steps  # only the first epoch was saved
    assert not (tmp_path / "killed" / "v1").exists()

    # A perturbed copy of the same checkpoint, to show the resumed run really starts from it.
    perturbed_dir = tmp_path / "perturbed_ckpt"
    shutil.copytree(ckpt_dir, perturbed_dir)
    bad = load_checkpoint(perturbed_dir)
    bad["model"]["rnn.weight_hh_l0"] = bad["model"]["rnn.weight_hh_l0"] + 0.05
    save_checkpoint(perturbed_dir, bad)

    resumed = train(to_dict(cfg))
    assert resumed["steps_run"] == 2 * steps  # epochs 1 and 2 only: epoch 0 came from the checkpoint
    assert resumed["metrics"]["global_step"] == reference["metrics"]["global_step"] == 3 * steps
    if DEVICE == "cpu":  # bitwise repeatable on the CPU (single thread, seeded)
        assert resumed["param_digest"] == reference["param_digest"]
        assert resumed["metrics"]["test"] == reference["metrics"]["test"]
        assert [h["valid"] for h in resumed["metrics"]["history"]] == \
            [h["valid"] for h in reference["metrics"]["history"]]

    other = train(to_dict(_cfg(dataset, tmp_path / "other", checkpoint_dir=str(perturbed_dir), **kw)))
    assert other["steps_run"] == 2 * steps
    assert other["param_digest"] != reference["param_digest"]


def _copy_dataset(training_dataset, dst, **info_changes):
    """A copy of the dataset whose dataset_info.json has ``info_changes`` (and so, for a stage-1
    rerun's stand-in, another fingerprint when ``fingerprint`` is given)."""
    shutil.copytree(training_dataset, dst)
    ds = SequencesDataset(str(dst))
    info = ds.info()
    for key, value in info_changes.items():
        if isinstance(value, dict):
            info[key] = {**info[key], **value}
        else:
            info[key] = value
    ds.write_info(info)
    return dst


def test_resume_only_continues_the_run_that_wrote_the_checkpoint(training_dataset, tmp_path, caplog):
    """A checkpoint of another dataset (a stage-1 rerun of the date) or of another model size is
    not resumed: training starts over with a warning, instead of publishing the old weights or
    failing in load_state_dict. A finished run continues when ``epochs`` is raised."""
    rerun = _copy_dataset(training_dataset, tmp_path / "rerun", fingerprint="f" * 64)
    steps = 4
    kw = dict(steps_per_epoch=steps, loader="pyarrow", evaluate_test=False, cold_items="off",
              checkpoint_dir=str(tmp_path / "ckpt"))
    first = train(to_dict(_cfg(training_dataset, tmp_path / "a", epochs=2, **kw)))
    assert first["steps_run"] == 2 * steps

    caplog.clear()
    other = train(to_dict(_cfg(rerun, tmp_path / "b", epochs=2, **kw)))
    assert other["steps_run"] == 2 * steps  # trained on the rerun's data, not resumed as done
    assert [h["epoch"] for h in other["metrics"]["history"]] == [0, 1]
    assert "not resuming" in caplog.text and "dataset fingerprint" in caplog.text
    assert load_checkpoint(tmp_path / "ckpt")["dataset_fingerprint"] == "f" * 64

    more = train(to_dict(_cfg(rerun, tmp_path / "c", epochs=3, **kw)))
    assert more["steps_run"] == steps  # epoch 2 only: epochs 0-1 came from the checkpoint
    assert [h["epoch"] for h in more["metrics"]["history"]] == [0, 1, 2]
    assert more["metrics"]["global_step"] == 3 * steps
    assert more["metrics"]["first_loss"] == other["metrics"]["first_loss"] is not None

    caplog.clear()
    bigger = train(to_dict(_cfg(rerun, tmp_path / "d", epochs=3, model={"hidden_size": 24, "embedding_dim": 16},
                                **kw)))
    assert bigger["steps_run"] == 3 * steps and "model.hidden_size: 16 -> 24" in caplog.text


def test_an_early_stopped_run_stays_done_when_epochs_are_raised(training_dataset, tmp_path):
    kw = dict(patience=1, learning_rate=1e-9, steps_per_epoch=1, evaluate_test=False, cold_items="off")
    stopped = train(to_dict(_cfg(training_dataset, tmp_path / "a", epochs=10, **kw)))
    assert stopped["metrics"]["epochs_run"] == 2
    again = train(to_dict(_cfg(training_dataset, tmp_path / "a", epochs=20, **kw)))
    assert again["steps_run"] == 0 and again["metrics"]["epochs_run"] == 2


def test_an_empty_test_split_is_skipped_with_a_warning(training_dataset, tmp_path, caplog):
    data = _copy_dataset(training_dataset, tmp_path / "notest", targets={"test": 0})
    _, test_targets = training_pairs(read_split(str(data / "test"), 512))
    _unmask_train_targets(data / "test", np.unique(test_targets))  # no counted target left
    out = train(to_dict(_cfg(data, tmp_path / "a", epochs=1, steps_per_epoch=3, loader="pyarrow")))
    m = out["metrics"]
    assert m["test"] is None and set(m["baselines"]) == {"valid"} and m["valid"]["points"] > 0
    assert "the test split has no targets" in caplog.text
    assert json.loads((Path(out["artifact"]) / "metrics.json").read_text())["test"] is None


def test_dataset_problems_fail_before_the_first_epoch(training_dataset, tmp_path):
    """A pinned recent_prior the item_stats lack, and an empty train split, are configuration
    errors found before anything trains (no checkpoint written), with the fix."""
    with pytest.raises(ConfigError, match=r"recent_prior='decay_2d' is not in this dataset .*"
                                          r"\['popularity', 'decay_1d', 'decay_7d', 'decay_30d', 'decay_180d'\]"):
        train(to_dict(_cfg(training_dataset, tmp_path / "a", recent_prior="decay_2d")))
    assert not (tmp_path / "a" / "_checkpoints").exists()

    import pyarrow.parquet as pq

    data = _copy_dataset(training_dataset, tmp_path / "notrain", rows={"train": 0}, targets={"train": 0})
    files = sorted((data / "train").glob("*.parquet"))
    schema = pq.read_schema(files[0])
    for f in files:
        f.unlink()
    pq.write_table(schema.empty_table(), data / "train" / "part-00000.parquet")
    with pytest.raises(ConfigError, match=r"the train split of .*notrain.* has no windows.*sequences.valid_days"):
        train(to_dict(_cfg(data, tmp_path / "b", loader="pyarrow")))
    assert not (tmp_path / "b" / "_checkpoints").exists()
