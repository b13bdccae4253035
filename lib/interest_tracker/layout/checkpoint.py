"""Training checkpoints: serialized state in, serialized state out, on any filesystem.

The trainer turns its state into bytes (``torch.save`` to a buffer) and loads them with
``weights_only=True``; this module only stores them. One file per directory,
``checkpoint.pt``, replaced atomically (temp file + rename, or a single PUT on object
stores), so a process killed while writing leaves the previous checkpoint intact.
"""
from __future__ import annotations

import logging

from . import fs

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.pt"


class CheckpointStore:
    def __init__(self, url: str):
        self.url = fs.to_url(url).rstrip("/")

    @property
    def file(self) -> str:
        return fs.join(self.url, CHECKPOINT_FILE)

    def write(self, data: bytes) -> str:
        fs.write_bytes(self.file, data)
        return self.file

    def read(self) -> bytes | None:
        """The checkpoint's bytes, or None when there is none yet."""
        if not fs.is_file(self.file):
            return None
        return fs.read_bytes(self.file)

    def exists(self) -> bool:
        return fs.is_file(self.file)
