"""Local training end to end: the artifact, early stopping, config errors, and resume after SIGKILL."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from interest_tracker.config import ConfigError, from_dict, load, to_dict
from interest_tracker.model import load_model
from interest_tracker.training.checkpoint import load_checkpoint
from interest_tracker.training.config import TrainConfig
from interest_tracker.training.launchers import launch
from interest_tracker.training.loop import evaluate_split, train
from interest_tracker.training.window_datasets import build_windows, write_dataset

REPO = Path(__file__).resolve().parents[1]


def synthetic_events(users: int, seed: int, num_items: int = 30) -> pd.DataFrame:
    """Users walk the catalog mostly in order (item i -> i+1), so the next item is learnable."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(users):
        it = int(rng.integers(2, num_items))
        for i in range(int(rng.integers(3, 16))):
            rows.append((f"s{seed}u{u}", it, 1, 60.0 * i, int(i == 0)))
            it = (it + 1 if it + 1 < num_items else 2) if rng.random() < 0.85 else int(rng.integers(2, num_items))
    return pd.DataFrame(rows, columns=["user_id", "item_index", "event_type_index", "event_time", "session_start"])


@pytest.fixture(scope="module")
def dataset(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("train_local") / "sequences" / "run_date=2026-11-28"
    splits = {"train": build_windows(synthetic_events(150, 1), 8, 8),
              "valid": build_windows(synthetic_events(30, 2), 8, 4),
              "test": build_windows(synthetic_events(30, 3), 8, 4)}
    write_dataset(spark, root, splits, num_items=30, event_types=["click"], window_length=8, train_stride=8,
                  eval_stride=4, files_per_split=4)
    return root


def _cfg(dataset, artifacts, **kw) -> TrainConfig:
    base = dict(dataset=str(dataset), artifact_root=str(artifacts), model_version="v1", batch_size=16,
                epochs=3, model={"hidden_size": 16, "embedding_dim": 16}, log_every_steps=10,
                learning_rate=0.01, warmup_steps=0, patience=5)
    base.update(kw)
    return from_dict(TrainConfig, base)


def test_local_training_writes_a_complete_artifact_and_the_loss_falls(dataset, tmp_path):
    cfg = _cfg(dataset, tmp_path / "art", epochs=4)
    out = launch(cfg)
    art = Path(out["artifact"])
    assert art == tmp_path / "art" / "v1" and (tmp_path / "art" / "_LATEST").read_text().strip() == "v1"
    names = {p.name for p in art.iterdir()}
    assert {"weights.pt", "model_config.json", "artifact.json", "metrics.json", "learning_curves.png"} <= names
    manifest = json.loads((art / "artifact.json").read_text())
    info = json.loads((dataset / "dataset_info.json").read_text())
    assert manifest["dataset_fingerprint"] == info["fingerprint"] and manifest["vocab_version"] == 1
    assert manifest["train_config"]["batch_size"] == 16 and manifest["environment"]["world_size"] == 1
    metrics = json.loads((art / "metrics.json").read_text())
    losses = [h["train_loss"] for h in metrics["history"]]
    assert losses[-1] < losses[0] * 0.8
    # the walk is learnable: far better than the ~20/28 chance of a random top-20
    assert metrics["test"]["mrr@20"] > 0.3 and metrics["test"]["points"] == info["targets"]["test"]
    # the saved weights are the best epoch's, and reproduce the recorded metrics
    reloaded, _ = evaluate_split(load_model(art), str(dataset / "test"), cfg)
    assert reloaded == pytest.approx(metrics["test"])


def test_sampled_softmax_training_reads_item_stats_and_learns(dataset, tmp_path):
    out = train(to_dict(_cfg(dataset, tmp_path / "s", epochs=4, loss="sampled", num_negatives=8)))
    losses = [h["train_loss"] for h in out["metrics"]["history"]]
    assert losses[-1] < losses[0]
    # a uniformly random ranking of the 28 items scores MRR@20 ~ 0.13
    assert out["metrics"]["test"]["mrr@20"] > 0.25


def test_early_stopping_stops_when_validation_does_not_improve(dataset, tmp_path):
    # a learning rate this small cannot move mrr@20 in 1 step/epoch, so patience=1 stops after 2 epochs
    out = train(to_dict(_cfg(dataset, tmp_path / "a", epochs=10, patience=1, learning_rate=1e-9,
                             steps_per_epoch=1, evaluate_test=False)))
    assert out["metrics"]["epochs_run"] == 2 and out["metrics"]["best_epoch"] == 0


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
    with pytest.raises(ConfigError, match="task slots"):
        launch(from_dict(TrainConfig, {**good, "launcher": "torch-distributor", "num_proc": 64}), spark)
    with pytest.raises(FileNotFoundError, match="run jobs/prepare_events.py first"):
        train(to_dict(from_dict(TrainConfig, {"dataset": str(tmp_path), "artifact_root": str(tmp_path)})))


def test_resume_after_sigkill_ends_where_an_uninterrupted_run_ends(dataset, tmp_path):
    kw = dict(epochs=3, steps_per_epoch=120, batch_size=8, loader="pyarrow", torch_threads=1)
    reference = train(to_dict(_cfg(dataset, tmp_path / "ref", **kw)))

    cfg = _cfg(dataset, tmp_path / "killed", **kw)
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps(to_dict(cfg)))
    code = ("import json, sys; from interest_tracker.training.loop import train; "
            "train(json.load(open(sys.argv[1])))")
    env = {**os.environ, "PYTHONPATH": str(REPO / "lib")}
    proc = subprocess.Popen([sys.executable, "-c", code, str(cfg_file)], stderr=subprocess.PIPE, text=True, env=env)
    killed_at = None
    deadline = time.monotonic() + 180
    for line in proc.stderr:
        if "epoch 1 step 20/120" in line:  # mid-way through the second epoch
            proc.send_signal(signal.SIGKILL)
            killed_at = line
            break
        assert time.monotonic() < deadline, "training subprocess made no progress"
    proc.wait(timeout=30)
    assert killed_at is not None and proc.returncode == -signal.SIGKILL
    ckpt = load_checkpoint(tmp_path / "killed" / "_checkpoints" / "v1")
    assert ckpt["epoch"] == 1 and ckpt["global_step"] == 120  # only the first epoch was saved
    assert not (tmp_path / "killed" / "v1").exists()

    resumed = train(to_dict(cfg))
    assert resumed["metrics"]["global_step"] == reference["metrics"]["global_step"] == 360
    assert resumed["param_digest"] == reference["param_digest"]
    assert resumed["metrics"]["test"] == reference["metrics"]["test"]
    assert [h["valid"] for h in resumed["metrics"]["history"]] == [h["valid"] for h in reference["metrics"]["history"]]
