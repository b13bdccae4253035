"""Load the model artifact on the driver (docs/architecture.md, "Model artifact").

Only bytes and JSON leave this module: the weights are broadcast as ``torch.save`` bytes
and each Python worker rebuilds the model (``predict.py``), so no live module or pickle
crosses the wire.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from .. import io
from ..config import ConfigError
from ..model.weights import CONFIG_FILE, WEIGHTS_FILE

log = logging.getLogger(__name__)

ARTIFACT_FILE = "artifact.json"
VOCABULARY_FILE = "vocabulary.parquet"
VOCAB_SCHEMA = T.StructType([
    T.StructField("item_id", T.StringType(), False),
    T.StructField("item_index", T.IntegerType(), False),
])


@dataclass(frozen=True)
class Artifact:
    model_version: str
    url: str
    config_json: str
    weights: bytes
    window_length: int
    event_types: tuple[str, ...]
    item_ids: tuple  # item_ids[i] = the item id of vocabulary index i (None for 0 = pad, 1 = unknown)
    meta: dict


def _read_bytes(spark: SparkSession, url: str) -> bytes:
    # Binary files go through Spark's binaryFile source so any Hadoop filesystem works.
    rows = spark.read.format("binaryFile").load(url).select("content").collect()
    if len(rows) != 1:
        raise FileNotFoundError(f"expected exactly one file at {url}, found {len(rows)}")
    return bytes(rows[0]["content"])


def resolve_version(spark: SparkSession, artifact_root: str, model_version: str | None) -> str:
    if model_version:
        return model_version
    latest = io.join(io.to_url(artifact_root), "_LATEST")
    if not io.exists(spark, latest):
        raise ConfigError(f"no model_version given and {latest} does not exist; train a model first "
                          "(jobs/train_model.py) or set model_version in the scoring config")
    return io.read_text(spark, latest).strip()


def load_artifact(spark: SparkSession, artifact_root: str, model_version: str | None = None) -> Artifact:
    version = resolve_version(spark, artifact_root, model_version)
    url = io.join(io.to_url(artifact_root), version)
    for name in (ARTIFACT_FILE, CONFIG_FILE, WEIGHTS_FILE, VOCABULARY_FILE):
        if not io.exists(spark, io.join(url, name)):
            raise ConfigError(f"model artifact {url} has no {name}; is model_version {version!r} complete? "
                              "(docs/architecture.md, 'Model artifact')")
    meta = json.loads(io.read_text(spark, io.join(url, ARTIFACT_FILE)))
    config_json = io.read_text(spark, io.join(url, CONFIG_FILE))
    num_items = int(json.loads(config_json)["num_items"])
    try:
        window_length = int(meta["window_length"])
        event_types = tuple(str(e) for e in meta["event_types"])
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"{url}/{ARTIFACT_FILE} must hold window_length (int) and event_types (list); "
                          f"retrain or fix the artifact: {e}") from e
    vocab = read_vocabulary(spark, url).collect()
    item_ids: list = [None] * num_items
    for row in vocab:
        if not 2 <= row.item_index < num_items:
            raise ValueError(f"{url}/{VOCABULARY_FILE}: item_index {row.item_index} of {row.item_id!r} is outside "
                             f"2..{num_items - 1} (model num_items={num_items}); the vocabulary does not match the model")
        item_ids[row.item_index] = row.item_id
    log.info("model %s: %d items, window_length=%d, event_types=%s", version, len(vocab), window_length, event_types)
    return Artifact(version, url, config_json, _read_bytes(spark, io.join(url, WEIGHTS_FILE)),
                    window_length, event_types, tuple(item_ids), meta)


def read_vocabulary(spark: SparkSession, artifact_url: str) -> DataFrame:
    return spark.read.schema(VOCAB_SCHEMA).parquet(io.join(artifact_url, VOCABULARY_FILE))
