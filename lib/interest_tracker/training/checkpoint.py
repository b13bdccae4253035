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
import json
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


RESUME_INDEPENDENT = frozenset({
    # where things are and whether to resume: the dataset's content is compared by fingerprint
    "dataset", "artifact_root", "model_version", "checkpoint_dir", "resume",
    # how long to go on: raising epochs or patience continues a run, by design
    "epochs", "patience", "log_every_steps",
    # where and on how many processes it runs: a rerun may land on other nodes or fewer slots
    "launcher", "num_proc", "start_timeout_s", "device", "torch_threads", "reader_pool", "reader_workers",
    # used after training only (evaluation, selection, the artifact)
    "eval_batch_size", "evaluate_test", "keep_best", "recent_prior", "selection_min_gap_hours", "cold_items",
})
"""TrainConfig keys a checkpoint may be resumed under with another value. Every other key
(the model, the loss, the optimizer and its rates, the batches, the seed, ...) decides
what the stored weights and optimizer state mean, so a change there starts training over."""


def resume_mismatch(ckpt: dict, config: dict, dataset_fingerprint: str) -> list[str]:
    """Why ``ckpt`` must not be resumed by a run of ``config`` (a ``to_dict(TrainConfig)``)
    on the dataset with ``dataset_fingerprint``; empty when it may be.

    A checkpoint only carries on the run that wrote it: resuming one trained on another
    dataset (a stage-1 rerun of the same date) or with another model would publish stale
    weights and metrics under the new dataset's name, or fail deep in ``load_state_dict``.
    A checkpoint that does not record its dataset (written before it did) is not trusted."""
    reasons = []
    stored_fp = ckpt.get("dataset_fingerprint")
    if stored_fp != dataset_fingerprint:
        reasons.append(f"dataset fingerprint {str(stored_fp)[:12]} != {dataset_fingerprint[:12]} "
                       "(another dataset, or a stage-1 rerun)")
    try:
        stored = json.loads(ckpt.get("config") or "{}")
    except (TypeError, ValueError):
        stored = {}
    for key in sorted((set(stored) | set(config)) - RESUME_INDEPENDENT):
        reasons.extend(_differences(key, stored.get(key, "<unset>"), config.get(key, "<unset>")))
    return reasons


def _differences(key: str, old, new) -> list[str]:
    """``key: old -> new`` per changed value, one level into dicts (``model.hidden_size: 16 -> 32``)."""
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        return [f"{key}.{k}: {old.get(k, '<unset>')!r} -> {new.get(k, '<unset>')!r}"
                for k in sorted(set(old) | set(new)) if old.get(k, "<unset>") != new.get(k, "<unset>")]
    return [f"{key}: {old!r} -> {new!r}"]


def rng_state() -> dict:
    return {"torch": torch.get_rng_state()}


def set_rng_state(state: dict) -> None:
    if state and "torch" in state:
        torch.set_rng_state(state["torch"])
