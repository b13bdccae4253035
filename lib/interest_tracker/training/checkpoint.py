"""Per-epoch checkpoints: a dict of states, written by rank 0, loaded with ``weights_only``.

A checkpoint holds the model and optimizer state dicts, the completed epoch and global
step, the RNG states, the best validation metric so far (with the best weights, so the
final artifact is the best epoch, not the last), and the per-epoch history that the
learning curves are drawn from. It is serialized here (``torch.save`` into a buffer) and
stored by ``layout.CheckpointStore`` on any filesystem (local, HDFS, S3): atomically, so
a process killed while writing leaves the previous checkpoint intact.
"""
from __future__ import annotations

import io
import logging
from pathlib import Path

import torch

from ..layout import CheckpointStore
from ..layout.checkpoint import CHECKPOINT_FILE  # noqa: F401 - re-exported

log = logging.getLogger(__name__)


def save_checkpoint(directory: str | Path, state: dict) -> str:
    buf = io.BytesIO()
    torch.save(state, buf)
    url = CheckpointStore(str(directory)).write(buf.getvalue())
    log.info("checkpoint epoch=%s step=%s -> %s", state.get("epoch"), state.get("global_step"), url)
    return url


def load_checkpoint(directory: str | Path) -> dict | None:
    """The latest checkpoint, or None when there is none. A corrupt file raises with the fix."""
    store = CheckpointStore(str(directory))
    data = store.read()
    if data is None:
        return None
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - re-raised with the path and the fix
        raise RuntimeError(f"checkpoint {store.file} cannot be read ({e}); delete it to start over, "
                           "or set resume=false") from e


def rng_state() -> dict:
    return {"torch": torch.get_rng_state()}


def set_rng_state(state: dict) -> None:
    if state and "torch" in state:
        torch.set_rng_state(state["torch"])
