"""Training configuration: one frozen dataclass, validated on the driver before Spark starts.

The same dataclass travels to every rank as a plain dict (``to_dict``) and is rebuilt
there with ``from_dict``, so a worker never receives a pickled driver object and a bad
value fails on the driver in milliseconds, not on a worker after the Spark job started.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from ..config import ConfigError, from_dict, require
from ..model.config import ModelConfig

URL_SCHEMES = ("file", "hdfs", "viewfs", "s3", "s3a", "gs", "abfs", "abfss")
LAUNCHERS = ("local", "horovod", "torch-distributor")
LOADERS = ("petastorm", "pyarrow")
LOSSES = ("full", "sampled", "bpr-max")
# The defaults below are the setting chosen on yoochoose-100k (train_tr -> train_valid; see
# docs/benchmarks.md, "yoochoose-100k through the jobs") and shipped as conf/train_yoochoose.json,
# except the ensemble size: ``model.members`` is 1 here and 4 in that file, because four members
# cost four times the training and encoding time (the tests, the demo and small logs keep one).
DEFAULT_MODEL = {"cell": "gru", "hidden_size": 100, "embedding_dim": 100, "tied_embeddings": True,
                 "dropout": 0.4, "embedding_dropout": 0.3}
METRICS = ("recall@10", "recall@20", "mrr@10", "mrr@20", "ndcg@10", "ndcg@20")


def _positive_half_life(name: str) -> bool:
    """``decay_<h>d`` with h a positive number: the only shape stage 1's item_stats columns
    have, checked here so ``decay_xd`` fails in milliseconds, not after every epoch."""
    m = re.fullmatch(r"decay_(\d+(?:\.\d+)?)d", name)
    return m is not None and float(m.group(1)) > 0


@dataclass(frozen=True)
class TrainConfig:
    dataset: str
    """Stage-1 output for one run date: ``{output_root}/sequences/run_date=D`` (a path or
    file:// URL) holding ``train/``, ``valid/``, ``test/``, ``item_stats/`` and
    ``dataset_info.json``."""
    artifact_root: str
    """Where ``{model_version}/`` and ``_LATEST`` are written (see docs/architecture.md): a path or a
    ``file://``, ``hdfs://``, ``s3://`` (``s3a://``), ``gs://`` or ``abfs://`` URL, written through the
    layout's pyarrow filesystem layer (S3 settings from the standard AWS environment variables)."""
    model_version: str = ""
    """Artifact directory name; empty = ``v{run_date}`` set by the job."""
    checkpoint_dir: str = ""
    """Per-epoch checkpoints; empty = ``{artifact_root}/_checkpoints/{model_version}``. Any URL
    ``artifact_root`` accepts; only rank 0 writes, every rank reads on resume."""
    resume: bool = True
    """Continue from the checkpoint in ``checkpoint_dir`` when there is one."""

    launcher: Literal["local", "horovod", "torch-distributor"] = "local"
    num_proc: int = 2
    """Training processes for ``horovod``/``torch-distributor`` (ignored by ``local``)."""
    start_timeout_s: int = 120
    """How long ``horovod.spark.run`` waits for its Spark tasks to start."""
    loader: Literal["petastorm", "pyarrow"] = "petastorm"
    reader_pool: Literal["thread", "dummy"] = "thread"
    """Petastorm reader pool. ``dummy`` reads in the caller's thread: deterministic order,
    needed for bit-exact resume; ``thread`` overlaps I/O with compute."""
    reader_workers: int = 2
    shuffle_buffer_batches: int = 4
    """Rows are shuffled inside a buffer of this many batches (plus row-group shuffling)."""
    bucket_by_length: bool = False
    """Group rows of similar length into a batch (within the shuffle buffer; batch order stays
    random). Batches are trimmed to their longest row, so short sessions stop paying for padding."""

    pack_sequences: bool = True
    """Run the RNN on packed sequences (``pack_padded_sequence``): each row's recurrence stops at
    its length, so padded positions cost nothing. The states at real positions are the same
    as without packing (the RNN is causal); only the arithmetic order may differ in the last bits."""

    model: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_MODEL))
    """``ModelConfig`` fields except ``num_items``/``num_event_types`` (read from the dataset).
    A config that sets ``model`` replaces this whole dict (ModelConfig's own defaults fill the rest)."""
    loss: Literal["full", "sampled", "bpr-max"] = "bpr-max"
    """``full`` softmax for small catalogs; ``sampled`` (popularity negatives + logQ +
    in-batch) for catalogs too big for a batch x catalog logit matrix; ``bpr-max``
    (GRU4Rec's ranking loss over the same candidates, see training/losses.py)."""
    num_negatives: int = 2048
    negative_alpha: float = 0.5
    """Negatives are drawn with probability proportional to ``train_count ** alpha``."""
    in_batch_negatives: bool = True
    bpr_reg: float = 1.0
    """``bpr-max`` only: weight of the L2 term on the softmax-weighted negative scores."""
    score_elu: float = 0.5
    """``bpr-max`` only: pass scores through ELU(alpha) inside the loss (0 = off); monotone, so
    serving ranks are unchanged."""

    optimizer: Literal["adam", "adagrad", "sgd"] = "adam"
    """``adagrad`` is GRU4Rec's Adagrad with ``momentum`` (training/optim.py); ``sgd`` uses momentum 0.9."""
    momentum: float = 0.0
    """``adagrad`` only: momentum on the Adagrad step (0 = plain Adagrad)."""
    learning_rate: float = 0.001
    """Per-worker base rate; multiplied by the number of workers when ``scale_lr``."""
    scale_lr: bool = True
    warmup_steps: int = 0
    """Linear warmup from ``learning_rate`` to the scaled rate over this many steps."""
    weight_decay: float = 0.0
    grad_clip: float = 5.0
    batch_size: int = 32
    """Windows per step per rank."""
    epochs: int = 15
    steps_per_epoch: int = 0
    """Fixed steps per epoch on every rank; 0 = ceil(train rows / (batch_size * ranks))."""
    seed: int = 42
    torch_threads: int = 1
    """Intra-op threads per rank; 1 keeps ranks from fighting for cores and makes runs repeatable."""
    device: Literal["auto", "cuda", "cpu"] = "auto"
    """Where each rank trains (interest_tracker.device): ``auto`` = the rank's GPU when one is
    visible, else the CPU; ``cuda`` fails when there is none. Horovod ranks use
    ``hvd.local_rank()`` and NCCL, TorchDistributor ranks the GPU Spark gave their task
    (``use_gpu=True``), ``local`` uses ``cuda:0``."""
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    """Mixed precision for the forward pass and loss (autocast); ``fp16`` (CUDA only) also
    scales the loss. Off (fp32) by default: results are then bitwise repeatable."""

    eval_batch_size: int = 512
    early_stopping_metric: Literal["recall@10", "recall@20", "mrr@10", "mrr@20", "ndcg@10", "ndcg@20"] = "mrr@20"
    patience: int = 3
    """Stop after this many epochs without improving ``early_stopping_metric`` on valid."""
    keep_best: bool = True
    """Publish the best validation epoch's weights (True) or the last epoch's (False: for a
    final run whose validation split overlaps training, e.g. session-rec's train_full)."""
    evaluate_test: bool = True
    """Score the test split once, with the best weights, after training."""
    log_every_steps: int = 50
    recent_prior: str = "auto"
    """The recent-popularity prior the blend and the rule use: ``auto`` = chosen on
    validation among plain popularity and stage 1's decayed popularities; or pin one,
    ``popularity`` or ``decay_{h}d`` (h = a half-life stage 1 wrote to item_stats: 1, 7, 30,
    180), e.g. as chosen by backtesting earlier cutoffs (bench/eval_drift.py)."""
    selection_min_gap_hours: float = 0.0
    """Choose what ``scorer=auto`` publishes (and the blend) on the validation targets that
    come at least this many hours after the user's previous event, judged with the window's
    items excluded as the tables exclude consumed items: the users a daily table serves
    (evaluation/selection.py). 0 = on every validation target (session logs without users).
    From ``selection.ENOUGH_RETURN_POINTS`` (100) such targets on, they decide; from
    ``MIN_RETURN_POINTS`` (30) to that, their choice is kept only where it beats the choice
    made on every target by ``RETURN_GATE_Z`` (2) paired standard errors on them; below 30,
    every target decides. ``metrics.json`` ``selection.grid.gate`` records which case applied."""
    cold_items: Literal["neighbours", "off"] = "neighbours"
    """``neighbours``: items that only the validation or test days hold (never a training
    target) get the count-weighted mean embedding of the trained items next to them in the
    log and their mean bias shifted by relative rarity (training/cold_items.py), after
    selection and before the artifact is written. Through the jobs it raised or kept every
    next-day HR@20 measured (docs/benchmarks.md, sixth session). ``metrics.json``'s model
    figures score the trained weights, before the fill: the fill uses the valid and test
    days' pairs, so scoring test after it would leak test targets into the test figure
    (``metrics["cold_items"]`` says how many items were filled). ``off``: the artifact
    holds exactly the scored weights."""

    def __post_init__(self) -> None:
        require(bool(self.dataset), "'dataset' must name the stage-1 sequences directory; set it in conf/train_*.json")
        require(bool(self.artifact_root), "'artifact_root' must be set; set it in conf/train_*.json")
        for key in ("artifact_root", "checkpoint_dir"):
            value = getattr(self, key)
            scheme = value.split("://", 1)[0].lower() if "://" in value else "file"
            require(scheme in URL_SCHEMES, f"'{key}' has an unsupported scheme {scheme!r} ({value!r}); use a path "
                    f"or one of {', '.join(s + '://' for s in URL_SCHEMES)}")
        require(self.launcher in LAUNCHERS, f"'launcher' must be one of {LAUNCHERS}, got {self.launcher!r}")
        require(self.loader in LOADERS, f"'loader' must be one of {LOADERS}, got {self.loader!r}")
        require(self.loss in LOSSES, f"'loss' must be one of {LOSSES}, got {self.loss!r}")
        require(self.num_proc >= 1, f"'num_proc' must be >= 1, got {self.num_proc}")
        require(self.batch_size >= 1 and self.eval_batch_size >= 1, "'batch_size' and 'eval_batch_size' must be >= 1")
        require(self.epochs >= 1, f"'epochs' must be >= 1, got {self.epochs}")
        require(self.steps_per_epoch >= 0, "'steps_per_epoch' must be >= 0 (0 = derived from the row count)")
        require(self.learning_rate > 0, f"'learning_rate' must be > 0, got {self.learning_rate}")
        require(self.warmup_steps >= 0 and self.patience >= 1, "'warmup_steps' must be >= 0 and 'patience' >= 1")
        require(self.num_negatives >= 1, "'num_negatives' must be >= 1")
        require(self.bpr_reg >= 0 and self.score_elu >= 0, "'bpr_reg' and 'score_elu' must be >= 0")
        require(0.0 <= self.momentum < 1.0, f"'momentum' must be in [0, 1), got {self.momentum}")
        require(self.recent_prior in ("auto", "popularity") or _positive_half_life(self.recent_prior),
                f"'recent_prior' must be 'auto', 'popularity' or 'decay_<h>d' (a half-life in item_stats), "
                f"got {self.recent_prior!r}")
        require(self.selection_min_gap_hours >= 0,
                f"'selection_min_gap_hours' must be >= 0 (0 = every validation target), got {self.selection_min_gap_hours}")
        require(self.cold_items in ("neighbours", "off"),
                f"'cold_items' must be 'neighbours' or 'off', got {self.cold_items!r}")
        require(self.torch_threads >= 1 and self.reader_workers >= 1, "'torch_threads'/'reader_workers' must be >= 1")
        require(self.device in ("auto", "cuda", "cpu"), f"'device' must be 'auto', 'cuda' or 'cpu', got {self.device!r}")
        require(self.precision in ("fp32", "bf16", "fp16"),
                f"'precision' must be 'fp32', 'bf16' or 'fp16', got {self.precision!r}")
        require(not (self.precision == "fp16" and self.device == "cpu"),
                "'precision'='fp16' needs a GPU; use precision='bf16' with device='cpu'")
        require(self.log_every_steps >= 1, "'log_every_steps' must be >= 1")
        reserved = {"num_items", "num_event_types"} & set(self.model)
        require(not reserved, f"'model.{sorted(reserved)}' come from dataset_info.json; remove them from the config")
        try:
            checked = self.model_config(num_items=3, num_event_types=2)
        except (TypeError, ConfigError) as e:
            raise ConfigError(f"'model' is not a valid ModelConfig: {e}; see lib/interest_tracker/model/config.py") from e
        # Keep the coerced values ("no" -> False, "32" -> 32), so what travels to the ranks, the
        # artifact's train_config and the checkpoint's record hold the types the model was built with.
        object.__setattr__(self, "model", {k: getattr(checked, k) for k in self.model})

    def model_config(self, num_items: int, num_event_types: int) -> ModelConfig:
        """The model's config, typed and validated like every other key (``model.hidden_size``
        must be an integer, ``model.tied_embeddings`` a boolean): a string "no" would otherwise
        train as a truthy value and the artifact would then fail to load in scoring."""
        return from_dict(ModelConfig, {**self.model, "num_items": num_items, "num_event_types": num_event_types},
                         prefix="model.")
