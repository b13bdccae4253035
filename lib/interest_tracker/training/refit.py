"""Recent refit: a few passes over the validation and test windows after the selection.

Why: the artifact serves after the test period, but early stopping and the blend choice
need the model to learn the train split only. On a log that drifts, the newest days are
where the items that rise now first appear, and the trained model ranks them nowhere:
on the drifting synthetic log a tenth of the returning users' next items first appear
after the train split ended (docs/benchmarks.md, sixth session). Once selection has
used validation, its windows and the test windows are just the freshest training data,
so ``TrainConfig.refit_recent_epochs`` passes over them, with a fresh optimizer at the
training learning rate, bring the weights up to the run date before the artifact is
written. Off by default (0).

It runs on rank 0 only, after the distributed loop has ended: a copy of the model in a
plain objective with a plain optimizer, so no collective waits for the other ranks. The
figures in ``metrics.json`` stay those of the trained weights (scoring test after a refit
on its windows would leak); ``metrics["refit_recent"]`` says what the refit did.

Needs torch only (never pyspark).
"""
from __future__ import annotations

import copy
import logging
import math

log = logging.getLogger(__name__)


def refit_recent(model, cfg, dataset, sampler, device) -> dict:
    """Train ``model`` in place for ``cfg.refit_recent_epochs`` passes over the valid and
    test windows of ``dataset`` (a ``SequencesDataset``); return the record for metrics.json."""
    import torch

    from .loaders import TRAIN_FIELDS, count_rows, make_loader
    from .loop import _objective, _optimizer, _step, _to_tensors

    splits = []
    for name in ("valid", "test"):
        url = dataset.split(name)
        try:
            rows = count_rows(url)
        except (FileNotFoundError, OSError):
            continue
        if rows:
            splits.append((name, url, rows))
    record = {"epochs": cfg.refit_recent_epochs, "splits": [s[0] for s in splits], "steps": 0, "loss": []}
    if not splits:
        log.warning("refit_recent_epochs=%d but there are no valid or test windows to refit on; the artifact "
                    "holds the trained weights", cfg.refit_recent_epochs)
        return record
    work = copy.deepcopy(model).to(device)
    objective = _objective(work, cfg, sampler)
    optimizer = _optimizer(cfg, objective.parameters())
    for g in optimizer.param_groups:
        g["lr"] = cfg.learning_rate
    objective.train()
    torch.manual_seed(cfg.seed + 15485863)
    for epoch in range(cfg.refit_recent_epochs):
        total, n = 0.0, 0
        for i, (name, url, rows) in enumerate(splits):
            steps = max(1, math.ceil(rows / cfg.batch_size))
            loader = make_loader("pyarrow", url, 0, 1, cfg.batch_size, cfg.seed + 31 * epoch + i,
                                 fields=TRAIN_FIELDS, bucket_by_length=cfg.bucket_by_length)
            for batch in loader.epoch(epoch, steps):
                *tensors, lengths = _to_tensors(batch, device)
                loss = objective(*tensors, lengths if cfg.pack_sequences else None)
                optimizer.zero_grad()
                loss.backward()
                _step(optimizer, work, cfg.grad_clip, None)
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise FloatingPointError(f"refit loss is {value} at epoch {epoch}; lower learning_rate "
                                             f"or set refit_recent_epochs=0")
                total += value
                n += 1
        record["loss"].append(total / max(n, 1))
        record["steps"] += n
        log.info("recent refit epoch %d on %s: loss %.4f over %d steps", epoch, "+".join(record["splits"]),
                 record["loss"][-1], n)
    with torch.no_grad():
        model.load_state_dict(work.state_dict())
    return record
