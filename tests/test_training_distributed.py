"""Two training processes from local Spark: through horovod.spark.run and through TorchDistributor.

In both, every rank must end with identical parameters (gradients really are averaged
and the initial state really is broadcast) and the loss must fall.
"""
from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest

from interest_tracker.config import from_dict
from interest_tracker.training.config import TrainConfig
from interest_tracker.training.launchers import launch
from interest_tracker.training.window_datasets import build_windows, write_dataset


def _events(users: int, seed: int, num_items: int = 25) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(users):
        it = int(rng.integers(2, num_items))
        for i in range(int(rng.integers(3, 12))):
            rows.append((f"d{seed}u{u}", it, 1, 30.0 * i, int(i == 0)))
            it = it + 1 if it + 1 < num_items else 2
    return pd.DataFrame(rows, columns=["user_id", "item_index", "event_type_index", "event_time", "session_start"])


@pytest.fixture(scope="module")
def dataset(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("train_dist") / "sequences"
    write_dataset(spark, root, {"train": build_windows(_events(120, 1), 6, 6),
                                "valid": build_windows(_events(20, 2), 6, 3)},
                  num_items=25, event_types=["click"], window_length=6, train_stride=6, eval_stride=3,
                  files_per_split=8)
    return root


def _cfg(dataset, tmp_path, launcher):
    return from_dict(TrainConfig, dict(
        dataset=str(dataset), artifact_root=str(tmp_path / launcher), launcher=launcher, num_proc=2,
        batch_size=16, epochs=2, steps_per_epoch=8, learning_rate=0.02, warmup_steps=4,
        model={"hidden_size": 8, "embedding_dim": 8}, evaluate_test=False, log_every_steps=4,
        start_timeout_s=180))


def _check(out):
    assert out["world_size"] == 2
    digests = out["param_digests"]
    assert len(digests) == 2 and digests[0] == digests[1], "ranks ended with different parameters"
    losses = [h["train_loss"] for h in out["metrics"]["history"]]
    assert out["metrics"]["global_step"] == 16
    assert losses[-1] < losses[0] < out["metrics"]["first_loss"] + 1e-6


@pytest.mark.skipif(importlib.util.find_spec("horovod") is None,
                    reason="horovod is not installed: run scripts/build_horovod.sh (make env)")
def test_horovod_spark_run_two_ranks_end_identical_and_learn(spark, dataset, tmp_path):
    out = launch(_cfg(dataset, tmp_path, "horovod"), spark)
    _check(out)
    assert out["rank_digests"] == out["param_digests"]  # what each rank returned to the driver


def test_torch_distributor_two_ranks_end_identical_and_learn(spark, dataset, tmp_path):
    _check(launch(_cfg(dataset, tmp_path, "torch-distributor"), spark))
