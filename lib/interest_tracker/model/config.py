"""Model hyper-parameters. Saved as JSON beside the weights; never pickled."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..config import require


@dataclass(frozen=True)
class ModelConfig:
    num_items: int
    """Vocabulary size including the reserved indexes (0 = padding, 1 = unknown)."""
    num_event_types: int = 5
    """Event-type vocabulary size including 0 = padding."""
    cell: Literal["gru", "lstm"] = "gru"
    hidden_size: int = 100
    num_layers: int = 1
    embedding_dim: int = 100
    """Item embedding size; also the interest-vector size."""
    event_type_dim: int = 8
    use_time_gap: bool = True
    tied_embeddings: bool = True
    """Score with the input item embeddings (True) or a separate output table."""
    dropout: float = 0.0
    embedding_dropout: float = 0.0
    members: int = 1
    """Independently initialised and trained copies of this network whose scores are averaged
    (``InterestEnsemble``); 1 = one network. The interest vector is then the members' vectors
    side by side, so top-K scoring stays one matrix product. Training and encoding cost
    ``members`` times one network's, and each rank opens one train-split reader per member."""

    def __post_init__(self) -> None:
        require(self.num_items >= 3, f"num_items must be >= 3 (2 reserved + items), got {self.num_items}")
        require(self.num_event_types >= 2, "num_event_types must be >= 2 (padding + one type)")
        require(self.cell in ("gru", "lstm"), f"cell must be 'gru' or 'lstm', got {self.cell!r}")
        for key in ("hidden_size", "num_layers", "embedding_dim"):
            require(getattr(self, key) > 0, f"model.{key} must be positive, got {getattr(self, key)}")
        for key in ("dropout", "embedding_dropout"):
            require(0.0 <= getattr(self, key) < 1.0, f"model.{key} must be in [0, 1), got {getattr(self, key)}")
        require(1 <= self.members <= 16, f"model.members must be in [1, 16], got {self.members}")
