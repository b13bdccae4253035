"""The final model artifact: serialized here, stored by ``layout.ArtifactStore`` on any filesystem.

Contents (docs/architecture.md, "Model artifact"): ``weights.pt`` + ``model_config.json``
(read by scoring through ``interest_tracker.model.model_from_bytes``), ``artifact.json``
(version, vocabulary version, dataset path + fingerprint, window length, event types,
train config, training environment), ``metrics.json``, ``vocabulary.parquet`` (copied
from stage 1 when it is found), ``learning_curves.png``. The store publishes the version
whole and rewrites ``_LATEST`` last, so a reader never sees half an artifact.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import platform
import socket
import sys
import tempfile
from pathlib import Path

from ..layout import ArtifactStore, SequencesDataset, fs
from ..layout.artifact import CONFIG_FILE, CURVES_FILE, VOCABULARY_FILE, WEIGHTS_FILE
from ..model.weights import model_to_bytes

log = logging.getLogger(__name__)


def environment(comm_name: str, world: int) -> dict:
    import torch

    env = {"python": platform.python_version(), "executable": sys.executable, "platform": platform.platform(),
           "host": socket.gethostname(),
           "cpu_count": os.cpu_count(), "torch": torch.__version__, "launcher": comm_name, "world_size": world,
           "torch_threads": torch.get_num_threads(), "cuda": torch.cuda.is_available()}
    for mod in ("pyspark", "petastorm", "pyarrow", "numpy", "horovod"):
        try:
            env[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - an absent optional package is recorded as such
            env[mod] = None
    return env


def _curves_png(history: list[dict], metric: str) -> bytes:
    from .plots import plot_learning_curves

    with tempfile.TemporaryDirectory() as d:
        return plot_learning_curves(history, Path(d) / CURVES_FILE, metric).read_bytes()


def write_artifact(root: str | Path, version: str, model, *, metrics: dict, info: dict, dataset: str,
                   train_config: dict, env: dict, history: list[dict], plot_metric: str,
                   files: dict[str, bytes] | None = None, manifest_extra: dict | None = None) -> str:
    """Serialize the model, metrics and plots, and publish them as ``{root}/{version}``; returns its URL
    (a plain path for local roots given as paths). ``files`` adds serialized extras by file name,
    ``manifest_extra`` adds keys to ``artifact.json``."""
    config_json, weights = model_to_bytes(model)
    files = {**(files or {}), WEIGHTS_FILE: weights, CONFIG_FILE: config_json.encode("utf-8")}
    ds = SequencesDataset(dataset)
    vocab = ds.vocabulary_parquet(info.get("vocab_version"))
    if vocab is not None:
        files[VOCABULARY_FILE] = vocab
    else:
        log.warning("no vocabulary/version=%s next to %s: the artifact has no vocabulary.parquet "
                    "(artifact.json records vocabulary=null)", info.get("vocab_version"), ds.url)
    if history:
        files[CURVES_FILE] = _curves_png(history, plot_metric)
    manifest = {
        "model_version": version,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "vocab_version": info.get("vocab_version"),
        "vocabulary": VOCABULARY_FILE if vocab is not None else None,
        "dataset": dataset,
        "dataset_fingerprint": info.get("fingerprint"),
        "window_length": info.get("window_length"),
        "event_types": info.get("event_types"),
        "train_config": train_config,
        "environment": env,
        **(manifest_extra or {}),
    }
    url = ArtifactStore(str(root)).write(version, files, manifest, metrics)
    return url if "://" in str(root) else fs.local_path(url)
