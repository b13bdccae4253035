"""The final model artifact: one directory per model version, published atomically.

Layout (docs/architecture.md): ``weights.pt`` + ``model_config.json`` (read by scoring
through ``interest_tracker.model.load_model``), ``artifact.json`` (version, vocabulary
version, dataset path + fingerprint, window length, event types, train config, training
environment), ``metrics.json``, ``vocabulary.parquet`` (copied from stage 1 when it is
found), ``learning_curves.png``. The directory is built under a temporary name and
renamed; ``_LATEST`` is rewritten last, so a reader never sees half an artifact.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import platform
import shutil
import socket
from pathlib import Path

from ..model import save_model

log = logging.getLogger(__name__)


def environment(comm_name: str, world: int) -> dict:
    import torch

    env = {"python": platform.python_version(), "platform": platform.platform(), "host": socket.gethostname(),
           "cpu_count": os.cpu_count(), "torch": torch.__version__, "launcher": comm_name, "world_size": world,
           "torch_threads": torch.get_num_threads(), "cuda": torch.cuda.is_available()}
    for mod in ("pyspark", "petastorm", "pyarrow", "numpy", "horovod"):
        try:
            env[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - an absent optional package is recorded as such
            env[mod] = None
    return env


def find_vocabulary(dataset_dir: Path, vocab_version) -> Path | None:
    """``{output_root}/vocabulary/version=N`` for a dataset at ``{output_root}/sequences/run_date=D``."""
    cand = dataset_dir.parent.parent / "vocabulary" / f"version={vocab_version}"
    return cand if cand.is_dir() else None


def write_artifact(root: str | Path, version: str, model, *, metrics: dict, info: dict, dataset: str,
                   train_config: dict, env: dict, history: list[dict], plot_metric: str) -> Path:
    from .plots import plot_learning_curves

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / version
    staging = root / f".{version}.staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    save_model(model, staging)
    dataset_dir = Path(dataset.replace("file://", ""))
    vocab = find_vocabulary(dataset_dir, info.get("vocab_version"))
    if vocab is not None:
        import pyarrow.parquet as pq

        pq.write_table(pq.read_table(vocab), staging / "vocabulary.parquet")
    else:
        log.warning("no vocabulary/version=%s next to %s: the artifact has no vocabulary.parquet "
                    "(artifact.json records vocabulary=null)", info.get("vocab_version"), dataset_dir)
    manifest = {
        "model_version": version,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "vocab_version": info.get("vocab_version"),
        "vocabulary": "vocabulary.parquet" if vocab is not None else None,
        "dataset": dataset,
        "dataset_fingerprint": info.get("fingerprint"),
        "window_length": info.get("window_length"),
        "event_types": info.get("event_types"),
        "train_config": train_config,
        "environment": env,
    }
    (staging / "artifact.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    (staging / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    if history:
        plot_learning_curves(history, staging / "learning_curves.png", plot_metric)
    if final.exists():
        shutil.rmtree(final)
    os.replace(staging, final)
    latest_tmp = root / f"._LATEST.{os.getpid()}"
    latest_tmp.write_text(version + "\n")
    os.replace(latest_tmp, root / "_LATEST")
    log.info("artifact %s written", final)
    return final
