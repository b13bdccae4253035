"""The recurrent interest model: a config dataclass plus an ``nn.Module``.

Nothing here knows about Spark, ranks or devices; training and scoring import it.
"""
from .config import ModelConfig
from .interest_model import InterestEnsemble, InterestModel, build_model
from .weights import load_model, save_model

__all__ = ["ModelConfig", "InterestModel", "InterestEnsemble", "build_model", "load_model", "save_model"]
