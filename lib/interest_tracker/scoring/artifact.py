"""Load the model artifact on the driver (docs/architecture.md, "Model artifact").

The artifact is read through the layout's pyarrow filesystem layer (``layout.ArtifactStore``),
so ``artifact_root`` may be local, HDFS or S3 without Hadoop connector jars on the Spark
side. Only bytes and JSON leave this module: the weights are broadcast as ``torch.save``
bytes and each Python worker rebuilds the model (``predict.py``), so no live module or
pickle crosses the wire.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from pyspark.sql import SparkSession
from pyspark.sql import types as T

from ..config import ConfigError
from ..layout import ArtifactNotFound, ArtifactStore
from ..layout.artifact import ARTIFACT_FILE, CONFIG_FILE, VOCABULARY_FILE, WEIGHTS_FILE

log = logging.getLogger(__name__)

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


def resolve_version(artifact_root: str, model_version: str | None) -> str:
    try:
        return ArtifactStore(artifact_root).resolve(model_version)
    except ArtifactNotFound as e:
        raise ConfigError(str(e)) from e


def load_artifact(spark: SparkSession | None, artifact_root: str, model_version: str | None = None) -> Artifact:
    """The artifact's bytes and metadata (``spark`` is unused: the driver reads through pyarrow)."""
    store = ArtifactStore(artifact_root)
    version = resolve_version(artifact_root, model_version)
    url = store.version_url(version)
    try:
        store.check_complete(version)
    except ArtifactNotFound as e:
        raise ConfigError(str(e)) from e
    meta = store.manifest(version)
    config_json = store.read_text(version, CONFIG_FILE)
    num_items = int(json.loads(config_json)["num_items"])
    try:
        window_length = int(meta["window_length"])
        event_types = tuple(str(e) for e in meta["event_types"])
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"{url}/{ARTIFACT_FILE} must hold window_length (int) and event_types (list); "
                          f"retrain or fix the artifact: {e}") from e
    vocab = store.read_vocabulary(version).select(["item_id", "item_index"]).to_pylist()
    item_ids: list = [None] * num_items
    for row in vocab:
        index, item = row["item_index"], row["item_id"]
        if index is None or item is None or not 2 <= index < num_items:
            raise ValueError(f"{url}/{VOCABULARY_FILE}: item_index {index} of {item!r} is outside "
                             f"2..{num_items - 1} (model num_items={num_items}); the vocabulary does not match the model")
        item_ids[index] = item
    log.info("model %s: %d items, window_length=%d, event_types=%s", version, len(vocab), window_length, event_types)
    return Artifact(version, url, config_json, store.read_bytes(version, WEIGHTS_FILE),
                    window_length, event_types, tuple(item_ids), meta)
