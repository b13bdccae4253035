"""The training function that every launcher ships to its workers: ``train(config_dict)``.

One top-level function, importable by reference (so cloudpickle ships a name, not a
closure over driver state). It takes the validated ``TrainConfig`` as a plain dict,
imports torch inside, trains with whatever backend ``config["launcher"]`` names, lets
only rank 0 evaluate and write (checkpoints, artifact), and returns something small:
the artifact path, the metrics and a digest of the final parameters per rank (so tests
and operators can check that all ranks ended identical). Never the model.

Determinism: torch runs with ``torch_threads`` (default 1) threads, the global RNG is
reseeded from ``(seed, epoch, rank)`` at every epoch start and the loaders' order is a
function of ``(seed, epoch, rank)``, so resuming from the checkpoint of epoch e repeats
exactly what an uninterrupted run does from epoch e on (with the pyarrow loader or the
petastorm ``dummy`` pool; the thread pool reorders row groups).

Device: each rank trains on the device ``make_comm`` resolved (``interest_tracker.device``):
the model, the batches (pinned host memory, ``non_blocking`` copies), the loss and the
evaluation all run there; checkpoints and the artifact are written from CPU copies, so
a GPU-trained model loads on a CPU-only scorer. Optional autocast (``precision``).
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import time

import numpy as np

log = logging.getLogger(__name__)

MEMBER_SEED_STRIDE = 1009
"""Ensemble member ``k`` shuffles its batches with seed ``seed + 1009 * k`` (member 0: ``seed``)."""


def train(config: dict) -> dict:
    """Train on this rank; rank 0 returns ``{"artifact", "metrics", "param_digests", ...}``."""
    import torch

    from ..config import from_dict
    from ..logs import setup_logging
    from .config import TrainConfig
    from .distributed import make_comm

    if not logging.getLogger().handlers:
        setup_logging("INFO")
    cfg = from_dict(TrainConfig, config)
    torch.set_num_threads(cfg.torch_threads)
    comm = make_comm(cfg.launcher, cfg.device)
    try:
        return _train(cfg, comm)
    finally:
        comm.shutdown()


def read_dataset_info(dataset: str) -> dict:
    """``dataset_info.json`` of a stage-1 sequences directory (any filesystem, via the layout)."""
    from ..layout import SequencesDataset

    return SequencesDataset(dataset).info()


def read_item_counts(dataset: str, num_items: int) -> np.ndarray:
    from ..layout import SequencesDataset

    ds = SequencesDataset(dataset)
    path = ds.item_stats
    t = ds.read_item_stats()
    counts = np.zeros(num_items, dtype=np.int64)
    idx = t.column("item_index").to_numpy()
    if len(idx) and (idx.max() >= num_items or idx.min() < 0):
        raise ValueError(f"{path}: item_index outside [0, {num_items}); item_stats and dataset_info.json "
                         "come from different runs")
    counts[idx] = t.column("train_count").to_numpy()
    return counts


def _objective(model, cfg, sampler):
    import torch
    from torch import nn

    from ..model.interest_model import UNKNOWN_INDEX
    from .losses import bpr_max_loss, full_softmax_loss, sampled_softmax_loss

    class NextItemObjective(nn.Module):
        """Model + loss in one forward, so DDP sees every parameter used inside ``forward``."""

        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, items, types, gaps, starts, targets, mask, lengths=None):
            # An ensemble's members each learn on their own loss (their sum) from their own block
            # of rows (their own loader's batch): the mean of their scores is what ranks, but
            # training that mean would make one wider model instead.
            towers = self.model.towers
            if items.shape[0] % len(towers):
                raise ValueError(f"{items.shape[0]} rows do not split into {len(towers)} members' batches")
            n = items.shape[0] // len(towers)
            total = None
            for k, tower in enumerate(towers):
                rows = slice(k * n, (k + 1) * n)
                sel = (mask[rows] > 0) & (targets[rows] > UNKNOWN_INDEX)
                t = targets[rows][sel]
                states = tower(items[rows], types[rows], gaps[rows], starts[rows],
                               lengths=None if lengths is None else lengths[rows])
                loss = states.sum() * 0.0 if t.numel() == 0 else self._loss(tower, states[sel], t)
                total = loss if total is None else total + loss
            return total

        @staticmethod
        def _loss(tower, vectors, t):
            if cfg.loss == "full":
                return full_softmax_loss(vectors, t, tower.item_vectors(), tower.output_bias)
            if cfg.loss == "bpr-max":
                return bpr_max_loss(vectors, t, tower.item_vectors(), tower.output_bias, sampler,
                                    cfg.num_negatives, cfg.in_batch_negatives, cfg.bpr_reg, cfg.score_elu)
            return sampled_softmax_loss(vectors, t, tower.item_vectors(), tower.output_bias,
                                        sampler, cfg.num_negatives, cfg.in_batch_negatives)

    return NextItemObjective()


def _optimizer(cfg, params):
    import torch

    if cfg.optimizer == "adam":
        # fused: one kernel over all parameters instead of a dozen per tensor. On the CPU the
        # update of the 100-unit model at batch 32 drops from ~2.0 to ~0.5 ms a step (about
        # 10% of the step; bench/bench_training.py).
        return torch.optim.Adam(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay, fused=True)
    if cfg.optimizer == "adagrad":
        from .optim import AdagradMomentum

        return AdagradMomentum(params, lr=cfg.learning_rate, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.learning_rate, momentum=0.9, weight_decay=cfg.weight_decay)


def learning_rate(cfg, step: int, world: int) -> float:
    """Linear warmup from the base rate to ``base * world`` (when ``scale_lr``)."""
    target = cfg.learning_rate * (world if cfg.scale_lr else 1)
    if cfg.warmup_steps <= 0 or step >= cfg.warmup_steps:
        return target
    return cfg.learning_rate + (target - cfg.learning_rate) * step / cfg.warmup_steps


def param_digest(model) -> str:
    h = hashlib.sha256()
    for name, p in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def evaluate_split(model, url: str, cfg, stride: int | None = None, keep: set | None = None):
    """Metrics of ``model`` on a split, computed on the device the model's parameters are on."""
    from ..evaluation.harness import evaluate, model_scorer
    from .loaders import read_split

    model.eval()
    device = next(model.parameters()).device
    return evaluate(model_scorer(model, device), read_split(url, cfg.eval_batch_size), stride=stride, keep=keep)


def _next_batch(streams: list):
    """The next step's batch: one member's batch, or the members' batches stacked row-wise (the
    objective hands member ``k`` the ``k``-th block of rows); None when a stream has ended."""
    parts = [next(s, None) for s in streams]
    if any(p is None for p in parts):
        return None
    if len(parts) == 1:
        return parts[0]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _to_tensors(batch, device=None):
    """Batch arrays as tensors on ``device``, trimmed to the batch's longest row: right-padding
    past it changes nothing (the RNN is causal) but costs compute, and most sessions are short.

    For a CUDA device the arrays are copied into pinned (page-locked) host memory and sent
    with ``non_blocking=True``, so the copy overlaps the previous step's kernels. The last
    element is the rows' lengths, kept on the CPU (``pack_padded_sequence`` wants them there)."""
    import torch

    width = max(1, int(np.max(batch["length"]))) if len(batch["length"]) else 1
    cuda = device is not None and torch.device(device).type == "cuda"

    def t(name, dtype):
        host = torch.from_numpy(np.ascontiguousarray(batch[name][:, :width])).to(dtype)
        if cuda:
            return host.pin_memory().to(device, non_blocking=True)
        return host if device is None else host.to(device)

    return (t("input_items", torch.long), t("input_event_types", torch.long), t("input_log_gaps", torch.float),
            t("input_session_starts", torch.float), t("target_items", torch.long), t("target_mask", torch.long),
            torch.from_numpy(np.asarray(batch["length"], dtype=np.int64)) if "length" in batch else None)


def dataset_fingerprint(info: dict) -> str:
    """What identifies the data a checkpoint was trained on: stage 1's ``fingerprint`` in
    ``dataset_info.json`` (it changes when stage 1 reruns the date on other events), or a hash
    of the whole info for datasets written without one."""
    return str(info.get("fingerprint") or hashlib.sha256(json.dumps(info, sort_keys=True).encode()).hexdigest())


def _check_dataset(cfg, dataset, info: dict) -> None:
    """Fail before the first epoch on a dataset this config cannot train on: an empty train
    split (else 0 windows read as "1 step per epoch" and a loader error about row groups), or
    a pinned ``recent_prior`` the dataset's item_stats lacks (else found after every epoch)."""
    from ..config import ConfigError
    from ..evaluation.selection import check_recent_prior
    from .loaders import count_rows

    rows = (info.get("rows") or {}).get("train")
    if rows is None:
        rows = count_rows(dataset.split("train"))
    if int(rows) <= 0:
        raise ConfigError(f"the train split of {dataset.url} has no windows: nothing to train on. Its validation "
                          "and test days take every event: rerun stage 1 (jobs/prepare_events.py) with shorter "
                          "sequences.valid_days / sequences.test_days, or later sequences.valid_start / "
                          "sequences.test_start, or on more days of data")
    check_recent_prior(cfg, dataset.url, info)


def _cpu_copy(state: dict) -> dict:
    """A CPU copy of a state dict (best weights kept across epochs; checkpoints load anywhere)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


def _train(cfg, comm) -> dict:
    import torch

    from ..config import to_dict
    from ..model import build_model
    from .artifact import environment, write_artifact
    from .checkpoint import load_checkpoint, resume_mismatch, rng_state, save_checkpoint, set_rng_state
    from .loaders import count_rows, make_loader
    from .losses import NegativeSampler

    from ..device import autocast_dtype

    rank, world = comm.rank, comm.size
    device = comm.device
    amp_dtype = autocast_dtype(cfg.precision, device.type)
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
    from ..layout import ArtifactStore, SequencesDataset

    dataset = SequencesDataset(cfg.dataset)
    root = dataset.url
    info = read_dataset_info(cfg.dataset)
    _check_dataset(cfg, dataset, info)
    fingerprint = dataset_fingerprint(info)
    model_cfg = cfg.model_config(int(info["num_items"]), int(info["num_event_types"]))
    # Each rank initialises from its own seed: the parameters are equal only because rank 0's
    # are broadcast (comm.wrap), which every multi-rank run thus exercises (and returns proof of).
    torch.manual_seed(cfg.seed + rank)
    model = build_model(model_cfg).to(device)
    sampler = None
    if cfg.loss in ("sampled", "bpr-max"):
        sampler = NegativeSampler(torch.from_numpy(read_item_counts(cfg.dataset, model_cfg.num_items)),
                                  cfg.negative_alpha)
    objective = _objective(model, cfg, sampler)
    optimizer = _optimizer(cfg, objective.parameters())

    version = cfg.model_version or "model"
    ckpt_dir = cfg.checkpoint_dir or ArtifactStore(cfg.artifact_root).checkpoint_dir(version)
    state = {"epoch": 0, "global_step": 0, "best": None, "best_epoch": None, "bad_epochs": 0,
             "history": [], "done": False, "stopped_early": False, "first_loss": None}
    best_weights = None
    config_record = json.loads(json.dumps(to_dict(cfg)))
    ckpt = load_checkpoint(ckpt_dir) if cfg.resume else None
    if ckpt is not None:
        reasons = resume_mismatch(ckpt, config_record, fingerprint)
        if reasons:
            if rank == 0:
                log.warning("not resuming from the checkpoint in %s: it was trained on other data or settings (%s); "
                            "training from scratch (its checkpoint is replaced after the first epoch)",
                            ckpt_dir, "; ".join(reasons))
            ckpt = None
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        best_weights = ckpt.get("best_model")  # CPU tensors (map_location="cpu")
        state.update({k: ckpt[k] for k in state if k in ckpt})
        state["history"] = json.loads(ckpt["history_json"])
        set_rng_state(ckpt.get("rng", {}))
        if state["done"] and not state["stopped_early"] and state["epoch"] < cfg.epochs:
            # It ran out of epochs, and now has more: carry on. An early-stopped run stays done.
            state["done"] = False
        if rank == 0:
            log.info("resuming from %s at epoch %d, step %d%s", ckpt_dir, state["epoch"], state["global_step"],
                     " (finished: nothing left to train)" if state["done"] else "")
    init_digest = param_digest(model)  # before the broadcast: differs between ranks
    module, optimizer = comm.wrap(objective, optimizer)
    steps_run = 0

    train_url = dataset.split("train")
    rows = count_rows(train_url)
    steps = cfg.steps_per_epoch or max(1, math.ceil(rows / (cfg.batch_size * world)))
    # One loader per ensemble member, each with its own shuffle, so the members differ in batch
    # order as well as in initialisation, as independently trained members would. On yoochoose
    # this measured level with one shared loader (+0.001 MRR@20; docs/benchmarks.md, issue 11).
    loaders = [make_loader(cfg.loader, train_url, rank, world, cfg.batch_size, cfg.seed + MEMBER_SEED_STRIDE * k,
                           pool=cfg.reader_pool, workers=cfg.reader_workers,
                           buffer_batches=cfg.shuffle_buffer_batches, bucket_by_length=cfg.bucket_by_length)
               for k in range(model_cfg.members)]
    if rank == 0:
        log.info("training %s%s on %d rank(s) (%s, %s): %d train windows, %d steps/epoch of %d windows per rank%s, "
                 "lr %.4g -> %.4g over %d warmup steps", model_cfg.cell,
                 f" x {model_cfg.members} members" if model_cfg.members > 1 else "", world, device, cfg.precision,
                 rows, steps, cfg.batch_size, " and member" if model_cfg.members > 1 else "", cfg.learning_rate,
                 learning_rate(cfg, 10**9, world), cfg.warmup_steps)

    metric = cfg.early_stopping_metric
    has_valid = int(info.get("targets", {}).get("valid", 1)) > 0
    if rank == 0 and not has_valid:
        log.warning("the valid split has no targets (valid_start == test_start?): training %d epochs without "
                    "validation or early stopping and publishing the last epoch's weights", cfg.epochs)
    has_test = int(info.get("targets", {}).get("test", 1)) > 0
    if rank == 0 and cfg.evaluate_test and not has_test:
        log.warning("the test split has no targets (test_start at or after the data's last event?): no test "
                    "evaluation after training; metrics.json records 'test': null")
    first_loss = state["first_loss"]  # the first step's loss of the run, across resumes
    train_time = 0.0
    trained_points = 0
    for epoch in range(state["epoch"], cfg.epochs):
        if state["done"]:
            break
        torch.manual_seed(cfg.seed + 7919 * (epoch + 1) + 104729 * rank)
        module.train()
        loss_sum, loss_n, win_points, t0, t_win = 0.0, 0, 0, time.perf_counter(), time.perf_counter()
        cpu0 = (time.thread_time(), time.process_time())
        # Where the epoch's time goes (host wall clock, no device sync: on a GPU the split
        # between compute and step is approximate, the total is exact). allreduce_update is
        # optimizer.step(): horovod waits there for its allreduces (DDP's overlap the backward).
        split = {"loading": 0.0, "forward_backward": 0.0, "allreduce_update": 0.0}
        streams = [iter(loader.epoch(epoch, steps)) for loader in loaders]
        for i in range(steps):
            tl = time.perf_counter()
            batch = _next_batch(streams)
            if batch is None:
                break
            tc = time.perf_counter()
            split["loading"] += tc - tl
            lr = learning_rate(cfg, state["global_step"], world)
            for g in optimizer.param_groups:
                g["lr"] = lr
            *tensors, lengths = _to_tensors(batch, device)
            with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                loss = module(*tensors, lengths if cfg.pack_sequences else None)
            optimizer.zero_grad()
            (scaler.scale(loss) if scaler is not None else loss).backward()
            ts = time.perf_counter()
            split["forward_backward"] += ts - tc
            _step(optimizer, model, cfg.grad_clip, scaler)
            value_t = loss.detach()
            # One host sync per step costs little on a CPU; on a GPU check at log points only.
            if device.type == "cpu" or first_loss is None or (i + 1) % cfg.log_every_steps == 0 or i + 1 == steps:
                value = float(value_t)
                if not math.isfinite(value):
                    raise FloatingPointError(f"loss is {value} at (or before) epoch {epoch} step "
                                             f"{state['global_step']} on rank {rank}; lower learning_rate "
                                             f"(now {lr:.3g}) or grad_clip")
                if first_loss is None:
                    first_loss = value
            split["allreduce_update"] += time.perf_counter() - ts
            n_pts = int(((batch["target_mask"] > 0) & (batch["target_items"] > 1)).sum())
            loss_sum += value_t.float() if device.type != "cpu" else float(value_t)
            loss_n += 1
            win_points += n_pts
            trained_points += n_pts
            state["global_step"] += 1
            steps_run += 1
            if (i + 1) % cfg.log_every_steps == 0:
                total = comm.allreduce_sum(win_points)
                if rank == 0:
                    dt_ = time.perf_counter() - t_win
                    log.info("epoch %d step %d/%d loss %.4f lr %.3g %.0f events/s", epoch, i + 1, steps,
                             loss_sum / loss_n, lr, total / max(dt_, 1e-9))
                win_points, t_win = 0, time.perf_counter()
        for stream in streams:
            stream.close()  # stops the reader now (the generator is parked after its last batch)
        epoch_time = time.perf_counter() - t0
        # Where the cores went, per rank (averaged over ranks): the training thread's CPU time and
        # the rest of the process's (horovod's background thread, Gloo's I/O threads, the loader),
        # as shares of the epoch's wall time. The training thread's idle share is time spent
        # waiting: for the other ranks' gradients, or for a core.
        cpu_main = (time.thread_time() - cpu0[0]) / max(epoch_time, 1e-9)
        cpu_helpers = (time.process_time() - cpu0[1]) / max(epoch_time, 1e-9) - cpu_main
        cpu_split = {"main_thread_busy": comm.allreduce_sum(cpu_main) / world,
                     "helper_threads": comm.allreduce_sum(cpu_helpers) / world}
        train_time += epoch_time
        loss_sum = float(loss_sum)
        epoch_loss = comm.allreduce_sum(loss_sum / max(loss_n, 1)) / world
        epoch_points = comm.allreduce_sum(trained_points)
        decision = None
        if rank == 0 and not has_valid:
            # No validation split (a refit on everything before the test cutoff): run every
            # epoch and publish the last weights; nothing to stop on.
            state["history"].append({"epoch": epoch, "train_loss": epoch_loss, "valid": {},
                                     "seconds": epoch_time, "events_per_s": epoch_points / max(epoch_time, 1e-9),
                                     "steps": loss_n, "device": str(device),
                                     "time_split_s": {**split, "other": max(0.0, epoch_time - sum(split.values()))},
                                     "cpu_per_rank": cpu_split})
            log.info("epoch %d: train loss %.4f (no validation split), %.1fs, %.0f events/s", epoch, epoch_loss,
                     epoch_time, epoch_points / max(epoch_time, 1e-9))
            stop = False
        elif rank == 0:
            valid, _ = evaluate_split(model, dataset.split("valid"), cfg)
            score = valid[metric]
            improved = state["best"] is None or score > state["best"]
            if improved:
                state.update(best=score, best_epoch=epoch, bad_epochs=0)
                best_weights = _cpu_copy(model.state_dict())
            else:
                state["bad_epochs"] += 1
            state["history"].append({"epoch": epoch, "train_loss": epoch_loss, "valid": valid,
                                     "seconds": epoch_time, "events_per_s": epoch_points / max(epoch_time, 1e-9),
                                     "steps": loss_n, "device": str(device),
                                     "time_split_s": {**split, "other": max(0.0, epoch_time - sum(split.values()))},
                                     "cpu_per_rank": cpu_split})
            log.info("epoch %d: train loss %.4f, valid %s %.4f (best %.4f at epoch %s), %.1fs, %.0f events/s",
                     epoch, epoch_loss, metric, score, state["best"], state["best_epoch"], epoch_time,
                     epoch_points / max(epoch_time, 1e-9))
            stop = state["bad_epochs"] >= cfg.patience
        if rank == 0:
            if stop:
                log.info("early stopping: %s did not improve for %d epochs", metric, cfg.patience)
            state["epoch"] = epoch + 1
            state["stopped_early"] = stop
            state["done"] = stop or epoch + 1 >= cfg.epochs
            state["first_loss"] = first_loss
            save_checkpoint(ckpt_dir, {
                **{k: v for k, v in state.items() if k != "history"},
                "history_json": json.dumps(state["history"]),
                "model": _cpu_copy(model.state_dict()), "optimizer": optimizer.state_dict(),
                "best_model": best_weights, "rng": rng_state(), "config": json.dumps(config_record),
                "dataset_fingerprint": fingerprint,
            })
            decision = {"stop": stop}
        decision = comm.broadcast_object(decision)
        trained_points = 0
        if decision["stop"]:
            break

    digest = param_digest(model)
    digests = _gather_digests(comm, digest)
    init_digests = _gather_digests(comm, init_digest)
    if rank != 0:
        return {"rank": rank, "param_digest": digest, "init_digest": init_digest, "steps_run": steps_run}
    final_params = digest
    if best_weights is not None and cfg.keep_best:
        model.load_state_dict(best_weights)
    hist = state["history"]
    if hist and cfg.keep_best and state["best_epoch"] is not None:
        published_valid = next(h["valid"] for h in hist if h["epoch"] == state["best_epoch"])
    else:
        published_valid = (hist[-1]["valid"] or None) if hist else None
    metrics = {"best_epoch": state["best_epoch"], "early_stopping_metric": metric,
               "weights": "best" if cfg.keep_best and has_valid else "last", "valid": published_valid,
               "epochs_run": len(hist), "global_step": state["global_step"],
               "first_loss": first_loss, "history": hist, "device": str(device), "precision": cfg.precision}
    if cfg.evaluate_test and not has_test:
        metrics["test"] = None  # as 'valid' is without a validation split: nothing to score
    elif cfg.evaluate_test:
        metrics["test"], _ = evaluate_split(model, dataset.split("test"), cfg)
        log.info("test: %s", _fmt(metrics["test"]))
    # Baselines on valid/test, and what scoring's 'auto' publishes (evaluation/selection.py).
    from ..evaluation.selection import baselines_and_selection

    priors, scorer, pairs = baselines_and_selection(model, root, cfg, info, metrics)
    metrics["cold_items"] = {"policy": "off"}
    if cfg.cold_items == "neighbours":  # after selection: no validation target shapes the scored weights
        from .cold_items import fill_and_report

        metrics["cold_items"] = fill_and_report(model, *pairs)
    path = write_artifact(cfg.artifact_root, version, model, metrics=metrics, info=info, dataset=cfg.dataset,
                          train_config=to_dict(cfg), env=environment(comm.name, world),
                          history=state["history"], plot_metric=metric,
                          files={"priors.npz": priors}, manifest_extra={"scorer": scorer})
    return {"rank": 0, "artifact": str(path), "metrics": metrics, "param_digest": final_params,
            "param_digests": digests, "init_digests": init_digests, "world_size": world,
            "steps_run": steps_run}


def _step(optimizer, model, grad_clip: float, scaler) -> None:
    """Apply the averaged gradients: unscale (fp16), clip, update. Horovod's optimizer averages
    in ``synchronize()``, so clipping and unscaling happen between that and the update."""
    import torch

    if hasattr(optimizer, "synchronize") and (grad_clip > 0 or scaler is not None):
        optimizer.synchronize()
        if scaler is not None:
            scaler.unscale_(optimizer)
        if grad_clip > 0:
            _clip(model, grad_clip)
        with optimizer.skip_synchronize():
            scaler.step(optimizer) if scaler is not None else optimizer.step()
    else:
        if scaler is not None:
            scaler.unscale_(optimizer)
        if grad_clip > 0:
            _clip(model, grad_clip)
        scaler.step(optimizer) if scaler is not None else optimizer.step()
    if scaler is not None:
        scaler.update()


def _clip(model, grad_clip: float) -> None:
    """Clip each member's gradient norm on its own: an ensemble member steps as it would alone."""
    import torch

    for tower in model.towers:
        torch.nn.utils.clip_grad_norm_(tower.parameters(), grad_clip)


def _gather_digests(comm, digest: str) -> list[str]:
    """Every rank's final-parameter digest, on every rank (an allreduce of one-hot byte vectors)."""
    import torch

    if comm.size == 1:
        return [digest]
    raw = torch.zeros(comm.size, 64, dtype=torch.float64)
    raw[comm.rank] = torch.tensor(list(digest.encode()), dtype=torch.float64)
    flat = _allreduce_vector(comm, raw.view(-1))
    return [bytes(int(v) for v in flat.view(comm.size, 64)[r].tolist()).decode() for r in range(comm.size)]


def _allreduce_vector(comm, vec):
    import torch

    if comm.name == "horovod":
        return comm.hvd.allreduce(vec, op=comm.hvd.Sum)
    if comm.name == "torch-distributor":
        v = vec.to(comm.device)  # NCCL reduces CUDA tensors only
        comm.dist.all_reduce(v)
        return v.cpu()
    return vec


def _fmt(m: dict) -> str:
    return ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in sorted(m.items()))
