"""The predict function: builds the model once per Python worker, encodes users, runs top-K.

The driver broadcasts the artifact as bytes (``torch.save`` weights + JSON config + the
index -> item id table) once. ``mapInPandas`` calls :func:`score_batches` per task; the
model is rebuilt from the broadcast only the first time a (reused) Python worker sees
that model version, and cached in a module global for the worker's lifetime, the same
pattern as ``pyspark.ml.functions.predict_batch_udf``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pandas as pd
from pyspark.sql import types as T

from .config import ExecutorConfig

log = logging.getLogger(__name__)

# Input columns the predict function reads (one row per user).
INPUT_COLUMNS = ("user_id", "items", "event_types", "log_gaps", "session_starts",
                 "consumed_item_ids", "vector", "events_used", "last_event_time", "last_item_id")

OUTPUT_SCHEMA = T.StructType([
    T.StructField("user_id", T.StringType(), False),
    T.StructField("vector", T.ArrayType(T.FloatType(), False), False),
    T.StructField("rec_item_ids", T.ArrayType(T.StringType(), False), False),
    T.StructField("rec_scores", T.ArrayType(T.FloatType(), False), False),
    T.StructField("events_used", T.IntegerType(), False),
    T.StructField("last_event_time", T.TimestampType(), False),
])


@dataclass(frozen=True)
class ScoringPayload:
    """What the driver broadcasts: plain bytes, strings and arrays, never a module."""

    model_version: str
    config_json: str
    weights: bytes
    item_ids: tuple  # item id per vocabulary index; None for 0 (pad) and 1 (unknown)
    unavailable: np.ndarray | None  # bool per vocabulary index
    scorer: str = "model"  # what is published: 'model', 'blend' or 'rule' (scoring/blend.py)
    blend: tuple | None = None  # BlendWeights fields (model, transitions, recent, smoothing)
    priors: bytes | None = None  # priors.npz bytes (plain arrays, read with allow_pickle=False)


@dataclass
class WorkerModel:
    model: object
    items_aug: object
    index_of: dict
    device: object
    priors: object = None  # blend.PriorTensors when the payload publishes a blend or the rule


_WORKER_CACHE: dict[str, WorkerModel] = {}


def _device(executor: ExecutorConfig):
    """The torch device of this Python worker, by the same rule as training
    (:mod:`interest_tracker.device`): inside a Spark task, the GPU Spark assigned to it, and an
    error (not a silent ``cuda:0``) when it assigned none; outside Spark (a bench or a test
    calling the predict function directly), ``cuda:0``."""
    from ..device import resolve_device

    if executor.device == "cpu":
        return resolve_device("cpu", "spark-task")
    from pyspark import TaskContext

    ctx = TaskContext.get()
    if ctx is None:
        return resolve_device("cuda", "local")
    gpus = ctx.resources().get("gpu")
    return resolve_device("cuda", "spark-task", task_gpus=list(gpus.addresses) if gpus is not None else None)


def worker_model(payload: ScoringPayload, executor: ExecutorConfig, token=None) -> WorkerModel:
    """Build (first call in this Python worker) or return the cached model.

    The cache key includes ``token`` (one per run's payload, made on the driver): two runs
    in one Spark application (tests, notebooks) may score two artifacts that share a
    version name, and must not share a cached model."""
    import torch

    from ..model.interest_model import PAD_INDEX, UNKNOWN_INDEX
    from ..model.weights import model_from_bytes
    from .topk import augmented_items

    device = _device(executor)
    key = f"{payload.model_version}@{device}:{payload.scorer}:{token}"
    cached = _WORKER_CACHE.get(key)
    if cached is not None:
        return cached
    torch.set_num_threads(executor.torch_threads)
    model = model_from_bytes(payload.config_json, payload.weights).to(device)
    n = model.config.num_items
    excluded = np.zeros(n, dtype=bool)
    excluded[[PAD_INDEX, UNKNOWN_INDEX]] = True
    if payload.unavailable is not None:
        excluded |= payload.unavailable
    with torch.no_grad():
        items_aug = augmented_items(model.item_vectors(), model.output_bias, excluded).to(device)
    index_of = {item: i for i, item in enumerate(payload.item_ids) if item is not None}
    priors = None
    if payload.scorer != "model":
        from .blend import PriorTensors, Priors

        priors = PriorTensors(Priors.from_bytes(payload.priors), device, items_aug.dtype, width=items_aug.shape[0])
    built = WorkerModel(model, items_aug, index_of, device, priors)
    _WORKER_CACHE.clear()  # one model per worker: a new version replaces the old one
    _WORKER_CACHE[key] = built
    log.info("built model %s on %s", payload.model_version, device)
    return built


def _pad(arrays, length: int, dtype) -> np.ndarray:
    out = np.zeros((len(arrays), length), dtype=dtype)
    for i, a in enumerate(arrays):
        out[i, : len(a)] = a
    return out


def encode(model, frame: pd.DataFrame, window_length: int, batch_size: int, device) -> np.ndarray:
    """Interest vectors (n, D) from the users' latest events, in fixed-shape batches."""
    import torch

    n = len(frame)
    lengths = frame["items"].map(len).to_numpy()
    if n and lengths.min() < 1:
        raise ValueError("a user with no events reached the model; state.user_windows must drop them")
    items = _pad(frame["items"], window_length, np.int64)
    types = _pad(frame["event_types"], window_length, np.int64)
    gaps = _pad(frame["log_gaps"], window_length, np.float32)
    starts = _pad(frame["session_starts"], window_length, np.float32)
    out = np.empty((n, model.vector_dim), dtype=np.float32)
    with torch.no_grad():
        for s in range(0, n, batch_size):
            e = min(s + batch_size, n)
            idx = np.arange(s, s + batch_size).clip(max=e - 1)  # pad with copies of the last row
            vec = model.encode_last(
                torch.from_numpy(items[idx]).to(device), torch.from_numpy(types[idx]).to(device),
                torch.from_numpy(gaps[idx]).to(device), torch.from_numpy(starts[idx]).to(device),
                torch.from_numpy(lengths[idx]).to(device),
            )
            out[s:e] = vec[: e - s].float().cpu().numpy()
    return out


def score_frame(frame: pd.DataFrame, wm: WorkerModel, payload: ScoringPayload, window_length: int,
                k: int, exclude_consumed: bool, executor: ExecutorConfig) -> pd.DataFrame:
    import torch

    from .topk import blocked_topk

    n = len(frame)
    dim = wm.model.vector_dim
    vectors = np.empty((n, dim), dtype=np.float32)
    given = frame["vector"].notna().to_numpy()
    if given.any():
        vectors[given] = np.stack(frame.loc[given, "vector"].to_numpy()).astype(np.float32)
    if (~given).any():
        vectors[~given] = encode(wm.model, frame.loc[~given], window_length, executor.encode_batch_size, wm.device)
    consumed = None
    if exclude_consumed:
        index_of = wm.index_of
        consumed = [np.fromiter((index_of[i] for i in ids if i in index_of), dtype=np.int64)
                    for ids in frame["consumed_item_ids"]]
    if payload.scorer == "model":
        idx, scores = blocked_topk(torch.from_numpy(vectors), wm.items_aug, k, consumed,
                                   executor.score_batch_size, executor.item_block_size)
    else:
        from .blend import BlendWeights, blended_topk

        from ..model.interest_model import UNKNOWN_INDEX

        last = np.fromiter((wm.index_of.get(i, UNKNOWN_INDEX) for i in frame["last_item_id"]), dtype=np.int64,
                           count=n)
        gaps = frame["since_last_s"].to_numpy(np.float64) if "since_last_s" in frame else None
        idx, scores = blended_topk(torch.from_numpy(vectors), wm.items_aug, wm.priors, BlendWeights(*payload.blend),
                                   last, k, consumed, executor.score_batch_size, executor.item_block_size, gaps)
    ids = np.asarray(payload.item_ids, dtype=object)
    valid = idx >= 0
    rec_ids = [ids[idx[i, valid[i]]] for i in range(n)]
    rec_scores = [scores[i, valid[i]] for i in range(n)]
    return pd.DataFrame({
        "user_id": frame["user_id"].to_numpy(),
        "vector": list(vectors),
        "rec_item_ids": rec_ids,
        "rec_scores": rec_scores,
        "events_used": frame["events_used"].to_numpy(),
        "last_event_time": frame["last_event_time"].to_numpy(),
    })


def make_score_fn(payload_broadcast, window_length: int, k: int, exclude_consumed: bool, executor: ExecutorConfig):
    """The function given to ``DataFrame.mapInPandas``; it captures only the broadcast handle
    and small settings (and a token naming this run's payload in the worker cache)."""
    import uuid

    token = uuid.uuid4().hex

    def score_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        payload = payload_broadcast.value
        wm = worker_model(payload, executor, token)
        for frame in batches:
            yield score_frame(frame, wm, payload, window_length, k, exclude_consumed, executor)

    return score_batches
