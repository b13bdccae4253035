"""Typed configuration of the scoring job, validated on the driver before Spark starts."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

from ..config import require


@dataclass(frozen=True)
class ExecutorConfig:
    """Where and in what batches the model runs. Tuning only: results do not depend on it
    except ``encode_batch_size``/``score_batch_size``, which fix the matrix shapes (see
    ``predict.py``) and so must stay the same between a full and an incremental run."""

    device: Literal["cpu", "gpu"] = "cpu"
    """'gpu' runs the model on the GPU Spark assigned to the task (needs
    spark.executor.resource.gpu.amount / spark.task.resource.gpu.amount on spark-submit)."""
    arrow_batch_size: Optional[int] = None
    """spark.sql.execution.arrow.maxRecordsPerBatch (users per Arrow batch handed to the
    UDF) for this job; None keeps the session's value (cluster/score_users.properties).
    Memory per predict call is bounded by score_batch_size x item_block_size, not by this."""
    encode_batch_size: int = 64
    """Users per RNN forward pass. Every pass is padded to exactly this many rows so a user's
    vector is bitwise independent of which other users share the batch."""
    score_batch_size: int = 256
    """Users per top-K matrix product (also padded to a fixed shape)."""
    item_block_size: int = 16384
    """Items per block of the blocked top-K product; bounds memory at score_batch_size x this."""
    torch_threads: int = 1
    """Intra-op threads per Python worker; 1 because Spark already runs one worker per core."""

    def __post_init__(self) -> None:
        require(self.device in ("cpu", "gpu"), f"executor.device must be 'cpu' or 'gpu', got {self.device!r}")
        for name in ("encode_batch_size", "score_batch_size", "item_block_size", "torch_threads"):
            require(getattr(self, name) > 0, f"executor.{name} must be > 0, got {getattr(self, name)}")
        require(self.arrow_batch_size is None or self.arrow_batch_size > 0,
                f"executor.arrow_batch_size must be > 0 or null, got {self.arrow_batch_size}")


@dataclass(frozen=True)
class ScoringConfig:
    events_root: str
    """Stage-1 output root; clean events are read from {events_root}/events/run_date=D/."""
    artifact_root: str
    """Model artifacts; {artifact_root}/_LATEST names the version unless model_version is set."""
    warehouse_root: str
    """Tables are written to {warehouse_root}/<table>/run_date=D/."""
    model_version: Optional[str] = None
    mode: Literal["full", "incremental"] = "incremental"
    """'incremental' runs the model only for users with events in stage-1 partitions after
    the previous state; 'full' recomputes every user from all partitions up to the run date.
    Both write identical tables."""
    top_k: int = 20
    scorer: Literal["model", "blend", "rule", "auto"] = "auto"
    """What user_recommendations publishes. 'model': the model's scores; 'blend': the
    model mixed with the rule priors shipped in the artifact (item transitions after the
    user's last item, recent popularity) with weights chosen on validation at training
    time; 'rule': the priors alone; 'auto': whichever of the three was best on
    validation (the artifact's scorer.choice; the model for artifacts without one).
    user_interest always holds the model's vector. See scoring/blend.py."""
    blend: Optional[dict] = None
    """With ``scorer='blend'``: the blend's weights, overriding the one the artifact chose on
    validation, e.g. as chosen by backtesting earlier cutoffs (bench/eval_drift.py). The
    fields of ``scoring.blend.BlendWeights``: ``model``, ``transitions``, ``recent`` (summing
    to 1), optional ``smoothing``, ``gap_half_life_days`` and ``model_power`` (> 0: the
    product form, with ``model`` 0). The priors are still the artifact's."""
    exclude_consumed: bool = True
    """Never recommend an item the user already had any event with."""
    item_availability_path: Optional[str] = None
    """Optional parquet with columns item_id string, available boolean; items with
    available=false are never recommended."""
    item_categories_path: Optional[str] = None
    """Optional parquet with columns item_id string, category string; enables the
    top-category change in user_interest_drift."""
    database: str = "interest_tracker"
    """Spark catalog database the tables are registered in."""
    register_tables: bool = True
    show_users: int = 0
    """After the run, log the recommendations of the first N users (the demo uses 5)."""
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)

    def __post_init__(self) -> None:
        for name in ("events_root", "artifact_root", "warehouse_root"):
            require(bool(getattr(self, name)), f"'{name}' is required; set it in conf/score_*.json or --set {name}=...")
        require(self.mode in ("full", "incremental"), f"'mode' must be 'full' or 'incremental', got {self.mode!r}")
        require(self.scorer in ("model", "blend", "rule", "auto"),
                f"'scorer' must be 'model', 'blend', 'rule' or 'auto', got {self.scorer!r}")
        require(1 <= self.top_k <= 1000, f"'top_k' must be in 1..1000, got {self.top_k}")
        if self.blend is not None:
            require(self.scorer == "blend", f"'blend' weights are set, so 'scorer' must be 'blend' (got "
                    f"{self.scorer!r}); remove 'blend' to use the artifact's choice")
            self.blend_weights()
        require(self.show_users >= 0, f"'show_users' must be >= 0, got {self.show_users}")
        require(self.database.isidentifier(), f"'database' must be a plain identifier, got {self.database!r}")

    def blend_weights(self):
        """``blend`` as ``BlendWeights`` (None when unset); a bad value names the setting."""
        if self.blend is None:
            return None
        from .blend import BlendWeights

        unknown = sorted(set(self.blend) - set(BlendWeights.__dataclass_fields__))
        require(not unknown, f"'blend' has unknown keys {unknown}; use {sorted(BlendWeights.__dataclass_fields__)}")
        try:
            return BlendWeights.from_dict(self.blend)
        except (KeyError, TypeError, ValueError) as e:
            from ..config import ConfigError

            raise ConfigError(f"'blend' is not a valid set of blend weights ({e}); it needs model, transitions and "
                              "recent summing to 1, e.g. {\"model\": 0, \"transitions\": 0, \"recent\": 1, "
                              "\"model_power\": 0.5}") from e
