"""Per-epoch checkpoints: a dict of states, written by rank 0, loaded with ``weights_only``.

A checkpoint holds the model and optimizer state dicts, the completed epoch and global
step, the RNG states, the best validation metric so far (with the best weights, so the
final artifact is the best epoch, not the last), and the per-epoch history that the
learning curves are drawn from. It is written to a temporary file and renamed, so a
process killed while writing leaves the previous checkpoint intact.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.pt"


def save_checkpoint(directory: str | Path, state: dict) -> Path:
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    final = d / CHECKPOINT_FILE
    tmp = d / f".{CHECKPOINT_FILE}.{os.getpid()}.tmp"
    torch.save(state, tmp)
    os.replace(tmp, final)
    log.info("checkpoint epoch=%s step=%s -> %s", state.get("epoch"), state.get("global_step"), final)
    return final


def load_checkpoint(directory: str | Path) -> dict | None:
    """The latest checkpoint, or None when there is none. A corrupt file raises with the fix."""
    path = Path(directory) / CHECKPOINT_FILE
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - re-raised with the path and the fix
        raise RuntimeError(f"checkpoint {path} cannot be read ({e}); delete it to start over, "
                           "or set resume=false") from e


def rng_state() -> dict:
    return {"torch": torch.get_rng_state()}


def set_rng_state(state: dict) -> None:
    if state and "torch" in state:
        torch.set_rng_state(state["torch"])
