"""The model artifact: one directory per model version under ``artifact_root``, plus ``_LATEST``.

```
{artifact_root}/{model_version}/weights.pt          torch.save'd state dict (loaded with weights_only)
                               /model_config.json   ModelConfig as JSON
                               /vocabulary.parquet  the vocabulary the model was trained with
                               /metrics.json
                               /learning_curves.png
                               /artifact.json       written LAST: the version is complete once it exists
{artifact_root}/_LATEST                             names the newest complete version (the commit point)
{artifact_root}/_checkpoints/{model_version}/       training checkpoints (layout.checkpoint)
```

Callers hand in serialized content (bytes, dicts, PNG bytes); this module imports no
stage. On filesystems with a directory rename (local, HDFS) the version is built under
``_staging-*`` and renamed into place; on object stores (S3, GCS) the files are PUT
under the version's prefix with ``artifact.json`` last. In both cases ``_LATEST`` is
written last, so a reader that follows it never sees half an artifact.
"""
from __future__ import annotations

import logging
import uuid

from . import fs

log = logging.getLogger(__name__)

LATEST = "_LATEST"
CHECKPOINTS = "_checkpoints"
WEIGHTS_FILE = "weights.pt"
CONFIG_FILE = "model_config.json"
ARTIFACT_FILE = "artifact.json"
METRICS_FILE = "metrics.json"
VOCABULARY_FILE = "vocabulary.parquet"
CURVES_FILE = "learning_curves.png"
REQUIRED = (ARTIFACT_FILE, CONFIG_FILE, WEIGHTS_FILE, VOCABULARY_FILE)


class ArtifactNotFound(FileNotFoundError):
    """No artifact (or no ``_LATEST``) where the config points; the message says how to fix it."""


class ArtifactStore:
    def __init__(self, root: str):
        self.root = fs.to_url(root).rstrip("/")

    def version_url(self, version: str) -> str:
        return fs.join(self.root, version)

    def file_url(self, version: str, name: str) -> str:
        return fs.join(self.root, version, name)

    @property
    def latest_url(self) -> str:
        return fs.join(self.root, LATEST)

    def checkpoint_dir(self, version: str) -> str:
        return fs.join(self.root, CHECKPOINTS, version)

    # ---- write
    def write(self, version: str, files: dict[str, bytes], manifest: dict, metrics: dict) -> str:
        """Publish ``version`` (``files`` by name + ``artifact.json`` + ``metrics.json``), then ``_LATEST``."""
        if not version or "/" in version or version.startswith(("_", ".")):
            raise ValueError(f"model_version {version!r} must be a plain name not starting with '_' or '.'")
        files = {**files, METRICS_FILE: _json_bytes(metrics)}
        final = self.version_url(version)
        if fs.is_object_store(self.root):
            fs.delete(final)
            for name, data in files.items():
                fs.write_bytes(fs.join(final, name), data)
            fs.write_bytes(fs.join(final, ARTIFACT_FILE), _json_bytes(manifest))
        else:
            staging = fs.join(self.root, f"_staging-{version}-{uuid.uuid4().hex[:12]}")
            try:
                for name, data in files.items():
                    fs.write_bytes(fs.join(staging, name), data)
                fs.write_bytes(fs.join(staging, ARTIFACT_FILE), _json_bytes(manifest))
                old = None
                if fs.exists(final):
                    old = fs.join(self.root, f"_old-{version}-{uuid.uuid4().hex[:12]}")
                    fs.rename_dir(final, old)
                fs.rename_dir(staging, final)
                if old is not None:
                    fs.delete(old)
            finally:
                fs.delete(staging)
        self.set_latest(version)
        log.info("artifact %s written", final)
        return final

    def set_latest(self, version: str) -> None:
        """Point ``_LATEST`` at an existing complete version (also how an operator rolls a model back)."""
        if not fs.is_file(self.file_url(version, ARTIFACT_FILE)):
            raise ArtifactNotFound(f"{self.version_url(version)} has no {ARTIFACT_FILE}: not a complete artifact, "
                                   "so _LATEST cannot point at it")
        fs.write_text(self.latest_url, version + "\n")

    # ---- read
    def latest(self) -> str | None:
        if not fs.is_file(self.latest_url):
            return None
        return fs.read_text(self.latest_url).strip() or None

    def resolve(self, version: str | None = None) -> str:
        """``version`` when given, else what ``_LATEST`` names; raises ArtifactNotFound with the fix."""
        if version:
            return version
        latest = self.latest()
        if latest is None:
            raise ArtifactNotFound(f"no model_version given and {self.latest_url} does not exist; train a model "
                                   "first (jobs/train_model.py) or set model_version in the config")
        return latest

    def exists(self, version: str, name: str | None = None) -> bool:
        return fs.exists(self.file_url(version, name) if name else self.version_url(version))

    def check_complete(self, version: str) -> None:
        for name in REQUIRED:
            if not fs.is_file(self.file_url(version, name)):
                raise ArtifactNotFound(f"model artifact {self.version_url(version)} has no {name}; is model_version "
                                       f"{version!r} complete? (docs/architecture.md, 'Model artifact')")

    def read_bytes(self, version: str, name: str) -> bytes:
        return fs.read_bytes(self.file_url(version, name))

    def read_text(self, version: str, name: str) -> str:
        return fs.read_text(self.file_url(version, name))

    def read_json(self, version: str, name: str) -> dict:
        return fs.read_json(self.file_url(version, name))

    def manifest(self, version: str) -> dict:
        return self.read_json(version, ARTIFACT_FILE)

    def metrics(self, version: str) -> dict:
        return self.read_json(version, METRICS_FILE)

    def read_vocabulary(self, version: str):
        """The artifact's vocabulary as a pyarrow Table (item_id, item_index, ...)."""
        import pyarrow.parquet as pq

        return pq.read_table(_io_bytes(self.read_bytes(version, VOCABULARY_FILE)))


def _json_bytes(obj) -> bytes:
    import json

    return (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode("utf-8")


def _io_bytes(data: bytes):
    import pyarrow as pa

    return pa.BufferReader(data)
